package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/logging"
)

// refusedToken is the token of console "refused", which the emulator does
// not accept: a real 401, not an injected one.
const refusedToken = "refused-token-3c8e41d07b"

// panicAction is a handler with a bug that panics with a value holding a
// token, the worst a panic can carry. The panic is real: it unwinds through
// the connector's dispatch like any handler's would.
var panicAction = handlers.Define("test.panic", "Panic", "panics with the API token in its value", false,
	func(context.Context, *handlers.Env, *struct{}) (*struct{}, error) {
		panic(fmt.Errorf("handler bug while calling with ApiToken %s", testenv.Token))
	})

// TestTokenNeverLeaks runs a connector at debug level through a successful
// action, a console that refuses its token (401, also stopping that
// console's ingestion), a console answering 500 until the retries run out,
// and a handler panic, and then looks for either API token in every reply's
// headers and body, in /metrics, /readyz and /healthz, and in the logs.
//
// The logs are captured twice: as the connector writes them (a JSON handler
// with no redaction, so the code itself must not log a token) and through
// the redacting handler `s1bridge run` installs. The only record that may
// hold a token before redaction is the panic's, whose value the test put it
// in; after redaction none may.
func TestTokenNeverLeaks(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithThreats(seededThreats))
	cfg := testenv.Config(srv.ClientURL(), url)
	cfg.Log.Level = config.LevelDebug
	main := cfg.Consoles["main"]
	main.Retry.Max = 2
	main.Ingest.Enabled = true
	main.Ingest.FirstFetch = 100 * 365 * 24 * time.Hour
	refused := main
	refused.APIToken = config.NewSecret(refusedToken)
	cfg.Consoles["main"], cfg.Consoles["refused"] = main, refused
	secrets := []string{testenv.Token, refusedToken}

	var raw, redacted testenv.SyncBuffer
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	log := slog.New(slog.NewMultiHandler(
		slog.NewJSONHandler(&raw, debug),
		logging.Redact(slog.NewJSONHandler(&redacted, debug), cfg.Secrets()),
	))
	c, err := connector.New(cfg, log, connector.WithActions(append(handlers.All(), panicAction)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	nc := testenv.Conn(t, srv)

	// Everything a caller or a scraper sees, to search afterwards.
	var seen strings.Builder
	call := func(console, action, data string) *connector.Reply {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: c.Subjects().Action(console, action), Data: []byte(data)})
		if err != nil {
			t.Fatalf("%s %s: %v", console, action, err)
		}
		fmt.Fprintf(&seen, "reply %s %s: %v %s\n", console, action, msg.Header, msg.Data)
		r, err := connector.ParseReply(msg)
		if err != nil {
			t.Fatalf("%s %s: %v", console, action, err)
		}
		return r
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + c.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		fmt.Fprintf(&seen, "GET %s: %d %v %s\n", path, resp.StatusCode, resp.Header, b.String())
		return resp.StatusCode, b.String()
	}

	if r := call("main", "agents.list", `{"limit":1}`); r.Err != nil {
		t.Fatalf("agents.list: %v", r.Err)
	}
	for _, action := range []string{"agents.list", "threats.update"} {
		data := `{"limit":1}`
		if action == "threats.update" {
			data = `{"threatIds":["1938475610293847561"],"incidentStatus":"resolved"}`
		}
		r := call("refused", action, data)
		if r.Err == nil || r.Err.UpstreamStatus != http.StatusUnauthorized {
			t.Fatalf("%s with a refused token: want an error reply with upstream status 401, got %+v", action, r.Err)
		}
	}
	if err := emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: http.StatusInternalServerError, Path: "/agents"}); err != nil {
		t.Fatal(err)
	}
	r := call("main", "agents.list", `{"limit":1}`)
	emu.ClearFaults()
	if r.Err == nil || r.Err.UpstreamStatus != http.StatusInternalServerError || !r.Err.Retryable {
		t.Fatalf("agents.list on a failing console: want a retryable error with upstream status 500, got %+v", r.Err)
	}
	if r := call("main", "test.panic", `{}`); r.Err == nil || r.Err.Code != handlers.CodeInternal {
		t.Fatalf("test.panic: want a 500 reply, got %+v", r.Err)
	}
	call("refused", "ingest.status", `{}`)

	// The refused console's ingestion stops on the 401, and /readyz says why.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "ingestion stopped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not report the refused console's stopped ingestion: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	call("refused", "ingest.status", `{}`)
	get("/healthz")
	_, metrics := get("/metrics")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`s1bridge_upstream_requests_total\{console="refused",[^}]*status="401"\} [1-9]`),
		regexp.MustCompile(`s1bridge_upstream_requests_total\{console="main",[^}]*status="500"\} [1-9]`),
		regexp.MustCompile(`s1bridge_upstream_retries_total\{console="main",[^}]*\} [2-9]`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics does not show what the test did (%s):\n%s", want, metrics)
		}
	}

	if os.Getenv("S1BRIDGE_TEST_LOG") != "" {
		t.Log(seen.String())
	}
	for _, s := range secrets {
		if strings.Contains(seen.String(), s) {
			t.Errorf("a token shows in what callers and scrapers see:\n%s", seen.String())
		}
		if strings.Contains(redacted.String(), s) {
			t.Errorf("a token shows in the redacted logs:\n%s", redacted.String())
		}
	}

	// Before redaction, only the panic's record holds a token. The debug
	// records of the upstream calls and the 401 must be there, or the test
	// proved nothing about them.
	panics := 0
	for line := range strings.Lines(raw.String()) {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "action panicked" {
			// The control: this record does carry the token, so the
			// redacted logs' lack of it is the redaction's doing.
			if !strings.Contains(line, testenv.Token) {
				t.Errorf("the panic record does not carry the token, so its redaction was not tested: %s", line)
			}
			panics++
			continue
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("the connector logged a token: %s", line)
			}
		}
	}
	if panics != 1 {
		t.Errorf("%d panic records, want 1", panics)
	}
	for _, want := range []string{`"level":"DEBUG"`, `"console":"refused"`, "401", "500"} {
		if !strings.Contains(raw.String(), want) {
			t.Errorf("the logs do not show %s: the paths under test were not logged", want)
		}
	}
}

// TestNATSCredentialsNeverShown starts connectors whose NATS password or
// token the server refuses, given in the keys or inside nats.url (one URL of
// a list), and checks that the start error names the key to check and that
// neither it nor the logs show the secret. `s1bridge run` prints that error
// as it is, with no log redaction in between.
func TestNATSCredentialsNeverShown(t *testing.T) {
	const (
		wrongPassword = "wrong-password-9d2c7a"
		wrongToken    = "wrong-nats-token-51b0e3"
	)
	users := testenv.NATSServerWith(t, func(o *server.Options) { o.Username, o.Password = "s1bridge", "right-password" })
	tokens := testenv.NATSServerWith(t, func(o *server.Options) { o.Authorization = "right-token" })
	// A list of two URLs of the same server, the second with the secret:
	// redaction must cover every URL of the list. (Both are refused, so the
	// error is the refusal whichever nats.go tries last.)
	withUserInfo := func(s *server.Server, info string) string {
		return s.ClientURL() + "," + strings.Replace(s.ClientURL(), "nats://", "nats://"+info+"@", 1)
	}
	emu := emulatorURL(t)
	for _, tc := range []struct {
		name, secret, want string
		edit               func(*config.NATS)
	}{
		{"password", wrongPassword, "check nats.user and nats.password", func(n *config.NATS) {
			n.URL, n.User, n.Password = users.ClientURL(), "s1bridge", config.NewSecret(wrongPassword)
		}},
		{"password in the URL", wrongPassword, "check the user or token in nats.url", func(n *config.NATS) {
			n.URL = withUserInfo(users, "s1bridge:"+wrongPassword)
		}},
		{"token", wrongToken, "check nats.token", func(n *config.NATS) {
			n.URL, n.Token = tokens.ClientURL(), config.NewSecret(wrongToken)
		}},
		{"token in the URL", wrongToken, "check the user or token in nats.url", func(n *config.NATS) {
			n.URL = withUserInfo(tokens, wrongToken)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.Config("nats://unused:4222", emu)
			tc.edit(&cfg.NATS)
			var logs testenv.SyncBuffer
			c, err := connector.New(cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = c.Start(ctx)
			c.Stop(context.Background())
			if err == nil {
				t.Fatal("the connector started with credentials the server refuses")
			}
			wantError(t, err, "authorization violation", tc.want)
			if strings.Contains(err.Error(), tc.secret) || strings.Contains(logs.String(), tc.secret) {
				t.Errorf("the secret shows:\nerror: %v\nlogs: %s", err, logs.String())
			}
		})
	}
}
