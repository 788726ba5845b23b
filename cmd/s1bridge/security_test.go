package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// tokenServer starts a nats-server with JetStream that requires token.
func tokenServer(t *testing.T, token string) *server.Server {
	t.Helper()
	return testenv.NATSServerWith(t, func(o *server.Options) { o.Authorization = token })
}

// TestCheckNeverPrintsSecrets runs `s1bridge check` with one console whose
// token the console accepts (read from a token file others may read), one
// whose token it refuses, and NATS that requires a token: each line names
// its check, the refused console's line says why, and no secret is printed.
// Then with a NATS token the server refuses: the nats line says which key to
// check, again without the token.
func TestCheckNeverPrintsSecrets(t *testing.T) {
	const (
		natsToken    = "nats-token-0b6f2e9d"
		refusedToken = "refused-token-a4c19e"
		wrongNATS    = "wrong-nats-token-77d3"
	)
	srv := tokenServer(t, natsToken)
	_, url := testenv.Emulator(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(testenv.Token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := func(natsToken string) string {
		p := filepath.Join(dir, "config.yaml")
		text := fmt.Sprintf(`nats: {url: %q, token: %q}
consoles:
  main: {url: %q, api_token_file: api-token}
  refused: {url: %q, api_token: %q}
`, srv.ClientURL(), natsToken, url, url, refusedToken)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secrets := []string{testenv.Token, refusedToken, natsToken, wrongNATS}
	noSecrets := func(out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("check printed a secret:\n%s", out)
			}
		}
	}

	out, errOut, code := runCmd(t, "check", "--config", conf(natsToken))
	noSecrets(out + errOut)
	if code != 1 {
		t.Errorf("exit %d with a refused token, want 1", code)
	}
	lines := map[string]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "console" {
			lines[f[2]] = line
		} else if len(f) >= 2 {
			lines[strings.TrimSuffix(f[1], ":")] = line
		}
	}
	for _, want := range []struct{ check, prefix, says string }{
		{"config", "ok ", "2 console(s)"},
		{"consoles.main.api_token_file", "warn ", "readable by group or others"},
		{"nats", "ok ", "JetStream"},
		{"main", "ok ", "token accepted"},
		{"refused", "FAIL ", "HTTP 401"},
	} {
		line := lines[want.check]
		if !strings.HasPrefix(line, want.prefix) || !strings.Contains(line, want.says) {
			t.Errorf("check %s: got %q, want a line starting %q that says %q\nall output:\n%s", want.check, line, want.prefix, want.says, out)
		}
	}

	out, errOut, code = runCmd(t, "check", "--config", conf(wrongNATS))
	noSecrets(out + errOut)
	if code != 1 || !strings.Contains(out, "FAIL nats: ") || !strings.Contains(out, "check nats.token") {
		t.Errorf("check with a refused NATS token: exit %d, want a FAIL nats line naming nats.token:\n%s", code, out)
	}
}

// TestTokenFileReadOnce runs `s1bridge run` with the console token in a
// file, changes the file while it runs, and checks that the running
// connector keeps the token it read at start (a rotated token takes a
// restart), while a new `s1bridge check` reads the new one. The run's log,
// at debug level, holds neither token.
func TestTokenFileReadOnce(t *testing.T) {
	const rotated = "rotated-token-e81f0c"
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	dir := t.TempDir()
	tokenFile, logFile := filepath.Join(dir, "api-token"), filepath.Join(dir, "s1bridge.log")
	if err := os.WriteFile(tokenFile, []byte(testenv.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf(`nats: {url: %q}
http: {listen: "127.0.0.1:0"}
log: {level: debug, format: json, output: %q}
consoles:
  main: {url: %q, api_token_file: api-token, ingest: {enabled: false}}
`, srv.ClientURL(), logFile, url)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var errb testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", conf}, &errb, &errb) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v\n%s", err, errb.String())
			}
		}
	}
	defer stop()

	nc := testenv.Conn(t, srv)
	call := func() *connector.Reply {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := connector.Call(ctx, nc, "s1.main.action.agents.list", "agents.list", "/test", []byte(`{"limit":1}`))
		if err != nil {
			t.Fatalf("agents.list: %v", err)
		}
		return r
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := connector.Call(ctx, nc, "s1.main.action.agents.list", "agents.list", "/test", nil)
		cancel()
		if !errors.Is(err, connector.ErrNoResponders) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s1bridge run did not start serving:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := call(); r.Err != nil {
		t.Fatalf("agents.list before the change: %v", r.Err)
	}

	if err := os.WriteFile(tokenFile, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := call(); r.Err != nil {
		t.Errorf("agents.list after the token file changed: %v (the file was read again)", r.Err)
	}
	// The control: the new file's token is refused, so had the running
	// connector read it, the call above would have failed.
	if out, _, code := runCmd(t, "check", "--config", conf); code != 1 || !strings.Contains(out, "FAIL console main") {
		t.Errorf("check with the rotated token file: exit %d, want FAIL console main:\n%s", code, out)
	}

	stop()
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), `"level":"DEBUG"`) {
		t.Errorf("the run's log has no debug lines:\n%s", logs)
	}
	for _, s := range []string{testenv.Token, rotated} {
		if strings.Contains(string(logs)+errb.String(), s) {
			t.Errorf("the run's log shows a token:\n%s", logs)
		}
	}
}
