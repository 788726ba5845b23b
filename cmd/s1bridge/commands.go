package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/credentials"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/logging"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// newFlags returns a flag set that reports errors instead of exiting, and
// accepts flags after positional arguments (s1bridge call ACTION JSON --console x).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("s1bridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterleaved parses flags that may stand before, between or after the
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// loadConfig loads the configuration and builds the logger from it. The
// caller closes the returned closer.
func loadConfig(o config.Options, stderr io.Writer) (*config.Config, *slog.Logger, io.Closer, error) {
	o.Actions = handlers.Names()
	cfg, err := config.LoadWith(o)
	if err != nil {
		return nil, nil, nil, err
	}
	log, closer, err := logging.New(cfg.Log, cfg.Secrets())
	if err != nil {
		return nil, nil, nil, err
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	return cfg, log, closer, nil
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	file := fs.String("config", config.DefaultFile, "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, log, closer, err := loadConfig(config.Options{File: *file}, stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	c, err := connector.New(cfg, log, connector.WithEmulator(startEmulator(ctx, false)))
	if err != nil {
		return err
	}
	log.Info("s1bridge starting", "version", connector.Version, "config", *file)
	return c.Run(ctx)
}

func cmdVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "s1bridge %s (commit %s, %s %s/%s)\n", connector.Version, connector.Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// cmdCheck validates the configuration, reaches NATS and checks each
// console's token with GET /system/info. It prints one line per check and
// fails if any failed. Token values never appear: errors come from the client,
// which redacts them.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	file := fs.String("config", config.DefaultFile, "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := config.LoadWith(config.Options{File: *file, Actions: handlers.Names()})
	if err != nil {
		fmt.Fprintf(stdout, "FAIL config %s:\n%v\n", *file, err)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "ok   config %s (%d console(s))\n", *file, len(cfg.Consoles))
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warn %s\n", w)
	}
	failed := false
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if cfg.NATS.URL == "" {
		fmt.Fprintf(stdout, "ok   nats: embedded server (nats.url is empty), store %s\n", cfg.NATS.Embedded.StoreDir)
	} else {
		n := cfg.NATS
		nc, err := connector.Connect(connector.NATSOptions{
			URL: n.URL, Name: n.Name + "-check", CredsFile: n.CredsFile, NkeyFile: n.NKeyFile,
			Token: n.Token.Reveal(), User: n.User, Password: n.Password.Reveal(),
			CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		}, "", slog.New(slog.DiscardHandler))
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL nats: %v\n", err)
		} else {
			err := nc.FlushWithContext(ctx)
			js := "no JetStream"
			if _, jerr := nc.RTT(); jerr == nil {
				if info, jerr := jetStreamAccount(ctx, nc); jerr == nil {
					js = info
				}
			}
			if err != nil {
				failed = true
				fmt.Fprintf(stdout, "FAIL nats %s: %v\n", nc.ConnectedUrlRedacted(), err)
			} else {
				fmt.Fprintf(stdout, "ok   nats %s (server %s, %s)\n", nc.ConnectedUrlRedacted(), nc.ConnectedServerVersion(), js)
			}
			nc.Close()
		}
	}

	stopEmu := []func(){}
	defer func() {
		for _, s := range stopEmu {
			s()
		}
	}()
	for _, name := range cfg.ConsoleNames() {
		cc := cfg.Consoles[name]
		url := cc.URL
		if url == config.Emulator {
			u, stop, err := startEmulator(ctx, false)(cc.APIToken.Reveal())
			if err != nil {
				failed = true
				fmt.Fprintf(stdout, "FAIL console %s: emulator: %v\n", name, err)
				continue
			}
			stopEmu = append(stopEmu, stop)
			url = u
		}
		client, err := sentinelone.New(sentinelone.Config{
			BaseURL: url, Token: cc.APIToken.Reveal(), Timeout: cc.Timeout, RetryMax: -1,
			RatePerSecond: cc.RateLimit.PerSecond, RateBurst: cc.RateLimit.Burst,
		})
		if err == nil {
			_, err = client.SystemInfo(ctx)
		}
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL console %s (%s): %v\n", name, cc.URL, err)
			continue
		}
		st := credentials.New(credentials.Config{Console: name, Client: client}).Check(ctx)
		fmt.Fprintf(stdout, "ok   console %s (%s): token accepted, %s\n", name, cc.URL, tokenExpiry(st))
		if note := st.Note(); note != "" {
			fmt.Fprintf(stdout, "warn console %s: %s\n", name, note)
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// tokenExpiry says when a token expires, for people: the date and the
// days left, or unknown (and why, when the console could not be read).
func tokenExpiry(st credentials.Status) string {
	switch {
	case st.Err != nil:
		return fmt.Sprintf("expiry unknown (could not read it: %v)", st.Err)
	case st.ExpiresAt.IsZero():
		return "expiry unknown (the console does not report it)"
	}
	return fmt.Sprintf("expires %s (%d days left)", st.ExpiresAt.Format(time.RFC3339), credentials.DaysLeft(st.Left))
}

// jetStreamAccount describes the JetStream account of nc, or fails when
// JetStream is not enabled for it.
func jetStreamAccount(ctx context.Context, nc *nats.Conn) (string, error) {
	msg, err := nc.RequestWithContext(ctx, "$JS.API.INFO", nil)
	if err != nil {
		return "", err
	}
	var info struct {
		Streams int `json:"streams"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		return "", err
	}
	if info.Error != nil {
		return "", errors.New(info.Error.Description)
	}
	return fmt.Sprintf("JetStream, %d stream(s)", info.Streams), nil
}
