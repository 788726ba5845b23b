// Package testparts starts the real parts tests run against, short of the
// connector: an in-process nats-server with JetStream storing under
// t.TempDir() (alone or as a three-node cluster), the SentinelOne emulator
// over loopback HTTP, and a configuration pointing at both. Everything is
// stopped by t.Cleanup. Package testenv adds a connector on top; the
// connector's own packages (store, lease, ingest, monitor), which testenv
// imports through the connector, use this one.
package testparts

import (
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
