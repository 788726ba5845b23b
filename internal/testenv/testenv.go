// Package testenv starts the real parts tests run against: an in-process
// nats-server with JetStream storing under t.TempDir(), the SentinelOne
// emulator over loopback HTTP, and a connector wired to both. Everything is
// stopped by t.Cleanup.
package testenv

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
)

// Token is the API token the test emulators accept.
const Token = "test-token-5f0c1b2a9e"

// NATSServer starts a nats-server with JetStream on a random loopback port.
func NATSServer(t testing.TB) *server.Server {
	t.Helper()
	return NATSServerAt(t, -1, t.TempDir())
}

// NATSServerAt starts a nats-server with JetStream on port (-1: random) with
// its store in dir, so a test can restart it on the same port and store.
func NATSServerAt(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	return NATSServerWith(t, func(o *server.Options) { o.Port, o.StoreDir = port, dir })
}

// NATSServerWith starts a nats-server with JetStream on a random loopback
// port, its store under t.TempDir() and an 8 MB max payload, with edit
// applied to those options (authentication, TLS, accounts ...).
func NATSServerWith(t testing.TB, edit func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	}
	// A nats-server sets the process's block profile rate to its
	// ProfBlockRate when it starts (0, off, by default), which silently
	// empties go test -blockprofile: hand it the test's rate instead.
	if f := flag.Lookup("test.blockprofile"); f != nil && f.Value.String() != "" {
		if r := flag.Lookup("test.blockprofilerate"); r != nil {
			o.ProfBlockRate, _ = strconv.Atoi(r.Value.String())
		}
	}
	if edit != nil {
		edit(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Conn connects to s; the connection is closed at cleanup.
func Conn(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Emulator starts an emulator accepting Token over loopback HTTP and
// returns it with its base URL.
func Emulator(t testing.TB, opts ...emulator.Option) (*emulator.Emulator, string) {
	t.Helper()
	emu, err := emulator.New(append([]emulator.Option{emulator.WithToken(Token)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return emu, srv.URL()
}

// Config returns a valid configuration for one console "main" at url with
// Token, NATS at natsURL, quick timeouts, ingestion off and the HTTP server
// on a free port.
// Tests adjust it before calling Connector.
func Config(natsURL, url string) *config.Config {
	cfg := config.Default()
	cfg.NATS.URL = natsURL
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Streams.Events.Storage = config.StorageFile
	c := config.DefaultConsole()
	c.URL = url
	c.APIToken = config.NewSecret(Token)
	c.Timeout = 5 * time.Second
	c.Retry.WaitMin, c.Retry.WaitMax = 10*time.Millisecond, 100*time.Millisecond
	c.RateLimit.PerSecond, c.RateLimit.Burst = 100000, 100000
	c.Ingest.Enabled = false
	c.Ingest.Interval = 200 * time.Millisecond
	c.Monitor.PollInterval = time.Second
	cfg.Consoles = map[string]config.Console{"main": c}
	cfg.Service.ActionTimeout = 10 * time.Second
	return cfg
}

// Logger logs to the test's output at level (or discards when S1BRIDGE_TEST_LOG is unset).
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("S1BRIDGE_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// Connector starts a connector for cfg and stops it at cleanup.
func Connector(t testing.TB, cfg *config.Config, opts ...connector.Option) *connector.Connector {
	t.Helper()
	c, err := connector.New(cfg, Logger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		c.Stop(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	return c
}

// Env is a whole running system: NATS, an emulator, a connector and a client
// connection.
type Env struct {
	Server    *server.Server
	NC        *nats.Conn
	Emu       *emulator.Emulator
	EmuURL    string
	Cfg       *config.Config
	Connector *connector.Connector
}

// Start runs NATS, an emulator (with emuOpts) and a connector whose
// configuration edit may adjust.
func Start(t testing.TB, edit func(*config.Config), emuOpts ...emulator.Option) *Env {
	t.Helper()
	e := &Env{}
	e.Server = NATSServer(t)
	e.Emu, e.EmuURL = Emulator(t, emuOpts...)
	e.Cfg = Config(e.Server.ClientURL(), e.EmuURL)
	if edit != nil {
		edit(e.Cfg)
	}
	e.Connector = Connector(t, e.Cfg)
	e.NC = Conn(t, e.Server)
	return e
}

// Call sends one action request to console main and returns the reply.
func (e *Env) Call(t testing.TB, action, data string) *connector.Reply {
	t.Helper()
	return e.CallConsole(t, "main", action, data)
}

// CallConsole sends one action request to console and returns the reply.
func (e *Env) CallConsole(t testing.TB, console, action, data string) *connector.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := connector.Call(ctx, e.NC, e.Connector.Subjects().Action(console, action), action, "/test", []byte(data))
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}
