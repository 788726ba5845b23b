package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
)

// startEmulator returns the connector's hook for consoles whose url is
// "emulator": an in-process emulator on a free loopback port, accepting
// token, with the README's example objects (emulator.WithExamples). With
// live set it keeps producing threats and status changes until ctx ends.
func startEmulator(ctx context.Context, live bool) func(token string) (string, func(), error) {
	return func(token string) (string, func(), error) {
		emu, err := emulator.New(emulator.WithToken(token), emulator.WithExamples())
		if err != nil {
			return "", nil, err
		}
		srv, err := emu.Start("127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if live {
				emu.RunLive(lctx, 3*time.Second)
			}
		}()
		return srv.URL(), func() { cancel(); <-done; srv.Close() }, nil
	}
}

func cmdEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulator", stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	token := fs.String("token", envOr("S1BRIDGE_EMULATOR_TOKEN", config.DemoToken), "API token to accept (default $S1BRIDGE_EMULATOR_TOKEN or the demo token)")
	seed := fs.Int64("seed", 1, "seed of the generated data")
	threats := fs.Int("threats", 0, "number of threats to generate (0: the default size)")
	live := fs.Bool("live", false, "keep producing new threats and status changes")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	opts := []emulator.Option{emulator.WithToken(*token), emulator.WithSeed(*seed), emulator.WithExamples()}
	if *threats > 0 {
		opts = append(opts, emulator.WithThreats(*threats))
	}
	emu, err := emulator.New(opts...)
	if err != nil {
		return err
	}
	srv, err := emu.Start(*listen)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "SentinelOne emulator listening on %s/web/api/v2.1 (token from --token; Ctrl-C stops it)\n", srv.URL())
	if *live {
		go emu.RunLive(ctx, 3*time.Second)
	}
	<-ctx.Done()
	return nil
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	// A fresh store each run: the demo's threats are new each time too.
	store, err := os.MkdirTemp("", "s1bridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	base := config.Demo()
	base.NATS.Embedded.StoreDir = store
	cfg, log, closer, err := loadConfig(config.Options{Base: base}, stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	c, err := connector.New(cfg, log, connector.WithEmulator(startEmulator(ctx, true)))
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		c.Stop(context.Background())
		return err
	}
	url := "nats://" + cfg.NATS.Embedded.Listen
	if e := c.Embedded(); e != nil {
		url = e.ClientURL() // the address it listens on, a port picked for :0 included
	}
	// s1bridge call and events reach nats://127.0.0.1:4222 unless told
	// otherwise: when the demo listens elsewhere, its hints say where.
	server := ""
	if url != defaultServer {
		server = " --server " + url
	}
	subj := c.Subjects()
	fmt.Fprintf(stdout, demoText, url, cfg.EventsStreamName(), c.HTTPAddr(), subj.Action("main", "agents.list"), subj.ConsoleEvents("main"), server)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Stop(stopCtx)
}

const demoText = `
s1bridge demo is running: embedded NATS with JetStream at %[1]s, the SentinelOne
emulator producing threats, and the connector. Try, in another terminal:

  go run ./cmd/s1bridge call%[6]s
  go run ./cmd/s1bridge call agents.list '{"limit":2}'%[6]s
  go run ./cmd/s1bridge call threats.list '{"incidentStatuses":["unresolved"],"limit":3}'%[6]s
  go run ./cmd/s1bridge call hash.reputation '{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}'%[6]s
  go run ./cmd/s1bridge call ingest.status%[6]s
  go run ./cmd/s1bridge events --since 5m%[6]s

The README's examples work here: its ids are seeded (threat 1938475610293847561,
agent 1559342436290084702, ...).

With the nats CLI (go install github.com/nats-io/natscli/nats@latest):

  nats -s %[1]s micro ls
  nats -s %[1]s micro info s1bridge
  nats -s %[1]s req %[4]s '{"limit":2}'
  nats -s %[1]s sub '%[5]s'
  nats -s %[1]s stream view %[2]s

Health and metrics: http://%[3]s/healthz  /readyz  /metrics
Ctrl-C stops everything.
`
