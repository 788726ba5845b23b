package security_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// seededThreats is how many threats the emulators of this package hold:
// ingestion must publish them all through the connection under test.
const seededThreats = 3

// emulatorURL starts an emulator accepting testenv.Token with a few threats.
func emulatorURL(t *testing.T) string {
	t.Helper()
	_, url := testenv.Emulator(t, emulator.WithThreats(seededThreats))
	return url
}

// loadConfig writes dir/config.yaml with the given nats section (a YAML
// flow mapping) and one console main at emuURL with ingestion on, and loads
// it the way `s1bridge run` does: file paths relative to dir, no
// environment. So the keys the tests use are the documented ones.
func loadConfig(t *testing.T, dir, nats, emuURL string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`nats: %s
http: {listen: "127.0.0.1:0"}
consoles:
  main:
    url: %q
    api_token: %q
    retry: {wait_min: 10ms, wait_max: 100ms}
    rate_limit: {per_second: 1000, burst: 1000}
    ingest: {enabled: true, interval: 200ms, first_fetch: 175200h}
`, nats, emuURL, testenv.Token)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWith(config.Options{File: path, Environ: []string{}, Actions: handlers.Names()})
	if err != nil {
		t.Fatalf("load %s:\n%s\n%v", path, text, err)
	}
	return cfg
}

// startConnector starts a connector for cfg logging to log (nil: the
// test's log) and returns it, or the error of New or Start together with how
// long they took. A started connector is stopped at cleanup.
func startConnector(t *testing.T, cfg *config.Config, log *slog.Logger) (*connector.Connector, time.Duration, error) {
	t.Helper()
	if log == nil {
		log = testenv.Logger(t)
	}
	began := time.Now()
	c, err := connector.New(cfg, log)
	if err != nil {
		return nil, time.Since(began), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = c.Start(ctx)
	took := time.Since(began)
	if err != nil {
		c.Stop(context.Background())
		return nil, took, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	return c, took, nil
}

// mustStart starts a connector for cfg or fails the test.
func mustStart(t *testing.T, cfg *config.Config) *connector.Connector {
	t.Helper()
	c, _, err := startConnector(t, cfg, nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return c
}

// refusedQuickly starts a connector that must not start and returns its
// error. A refusal must come at once: retrying a certificate or a credential
// the server refused cannot succeed, and a start that hangs until a timeout
// says nothing about why.
func refusedQuickly(t *testing.T, cfg *config.Config) error {
	t.Helper()
	_, took, err := startConnector(t, cfg, nil)
	if err == nil {
		t.Fatal("the connector started")
	}
	t.Logf("refused: %v", err)
	if took > 5*time.Second {
		t.Errorf("the refusal took %s: %v", took.Round(time.Millisecond), err)
	}
	return err
}

// client connects a test client to s with opts; it is closed at cleanup.
func client(t *testing.T, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// checkServes proves that c works end to end over its NATS connection: an
// action answered through nc (another client of the same server),
// ingestion's events in the stream (so the stream and the KV buckets it
// needs were created through that connection), and /readyz ready.
func checkServes(t *testing.T, c *connector.Connector, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := connector.Call(ctx, nc, c.Subjects().Action("main", "agents.list"), "agents.list", "/security-test", []byte(`{"limit":2}`))
	if err != nil {
		t.Fatalf("agents.list: %v", err)
	}
	if r.Err != nil {
		t.Fatalf("agents.list: error reply %v", r.Err)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(r.Event.Data, &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("agents.list reply %s (%v)", r.Event.Data, err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var msgs uint64
	for msgs < seededThreats {
		if ctx.Err() != nil {
			t.Fatalf("the events stream holds %d events, want the %d seeded threats", msgs, seededThreats)
		}
		time.Sleep(50 * time.Millisecond)
		if s, err := js.Stream(ctx, "S1_EVENTS"); err == nil {
			if info, err := s.Info(ctx); err == nil {
				msgs = info.State.Msgs
			}
		}
	}

	code, body := httpGet(t, c, "/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz %d: %s", code, body)
	}
}

// httpGet fetches path from the connector's health and metrics server.
func httpGet(t *testing.T, c *connector.Connector, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
