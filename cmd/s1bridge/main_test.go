package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb testenv.SyncBuffer
	err := run(context.Background(), args, &out, &errb)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		fmt.Fprintln(&errb, err)
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestVersionAndUsage(t *testing.T) {
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "s1bridge ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %q (%d)", out, code)
	}
	if _, errOut, code := runCmd(t, "bogus"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %q (%d)", errOut, code)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	good := writeConfig(t, fmt.Sprintf("nats: {url: %q}\nconsoles:\n  main: {url: %q, api_token: %q}\n", srv.ClientURL(), url, testenv.Token))
	out, _, code := runCmd(t, "check", "--config", good)
	if code != 0 || strings.Count(out, "ok ") != 3 {
		t.Errorf("check of a good config: exit %d\n%s", code, out)
	}
	const wrong = "wrong-token-7f1e5d"
	bad := writeConfig(t, fmt.Sprintf("nats: {url: %q}\nconsoles:\n  main: {url: %q, api_token: %q}\n", srv.ClientURL(), url, wrong))
	out, errOut, code := runCmd(t, "check", "--config", bad)
	if code != 1 || !strings.Contains(out, "FAIL console main") {
		t.Errorf("check with a refused token: exit %d\n%s", code, out)
	}
	if strings.Contains(out+errOut, wrong) {
		t.Error("check printed the API token")
	}
	typo := writeConfig(t, "nats: {ulr: x}\n")
	out, _, code = runCmd(t, "check", "--config", typo)
	if code != 1 || !strings.Contains(out, "nats.ulr") {
		t.Errorf("check of a config with a typo: exit %d\n%s", code, out)
	}
}

// TestCheckPrintsTokenExpiry: s1bridge check prints when each console's
// token expires, warns under 14 days left, and says unknown (not a failure)
// where the console cannot say.
func TestCheckPrintsTokenExpiry(t *testing.T) {
	srv := testenv.NATSServer(t)
	now := time.Now().UTC().Truncate(time.Second)
	soon := now.Add(3*24*time.Hour + time.Hour)
	_, soonURL := testenv.Emulator(t, emulator.WithTokenExpiry(now.Add(-87*24*time.Hour), soon))
	_, oldURL := testenv.Emulator(t, emulator.WithoutTokenDetails())
	_, farURL := testenv.Emulator(t)
	cfg := writeConfig(t, fmt.Sprintf("nats: {url: %q}\nconsoles:\n  soon: {url: %q, api_token: %q}\n  old: {url: %q, api_token: %q}\n  far: {url: %q, api_token: %q}\n",
		srv.ClientURL(), soonURL, testenv.Token, oldURL, testenv.Token, farURL, testenv.Token))
	out, _, code := runCmd(t, "check", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"ok   console soon (" + soonURL + "): token accepted, expires " + soon.Format(time.RFC3339) + " (3 days left)",
		"warn console soon: API token expires at " + soon.Format(time.RFC3339) + " (3 days left): replace it",
		"ok   console old (" + oldURL + "): token accepted, expiry unknown (the console does not report it)",
		"ok   console far (" + farURL + "): token accepted, expires ",
	} {
		if !strings.Contains(out, want+"") {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "warn console") != 1 {
		t.Errorf("want one warning (console soon):\n%s", out)
	}
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	p := writeConfig(t, "consoles:\n  main: {url: 'not a url', api_token: x, timeout: 3 days}\n")
	_, errOut, code := runCmd(t, "run", "--config", p)
	if code == 0 || !strings.Contains(errOut, "consoles.main.url") || !strings.Contains(errOut, "consoles.main.timeout") {
		t.Errorf("run with an invalid config: exit %d\n%s", code, errOut)
	}
}

func TestCall(t *testing.T) {
	env := testenv.Start(t, nil)
	out, errOut, code := runCmd(t, "call", "agents.list", `{"limit":2}`, "--server", env.Server.ClientURL())
	if code != 0 {
		t.Fatalf("call: exit %d: %s", code, errOut)
	}
	var reply struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil || len(reply.Items) != 2 {
		t.Fatalf("call output %q (%v)", out, err)
	}
	_, errOut, code = runCmd(t, "call", "agents.connect", `{"agentIds":[]}`, "--server", env.Server.ClientURL())
	if code != 1 || !strings.Contains(errOut, "400") || !strings.Contains(errOut, "agentIds") {
		t.Errorf("call with an error reply: exit %d: %s", code, errOut)
	}
	_, errOut, code = runCmd(t, "call", "agents.list", "--console", "nope", "--server", env.Server.ClientURL())
	if code != 1 || !strings.Contains(errOut, "no s1bridge serves") {
		t.Errorf("call to an unknown console: exit %d: %s", code, errOut)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestDemoServesActionsAndEvents(t *testing.T) {
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	t.Setenv("S1BRIDGE_NATS__EMBEDDED__LISTEN", natsAddr)
	t.Setenv("S1BRIDGE_HTTP__LISTEN", httpAddr)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo"}, &out, &errb) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v\n%s", err, errb.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "s1bridge demo is running") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("s1.main.event.>")
	if err != nil {
		t.Fatal(err)
	}
	o, e, code := runCmd(t, "call", "threats.list", `{"limit":1}`, "--server", "nats://"+natsAddr)
	if code != 0 || !strings.Contains(o, `"items"`) {
		t.Fatalf("call against the demo: %d %s %s", code, o, e)
	}
	// The live emulator produces new threats and changes; the demo polls
	// every few seconds.
	if _, err := sub.NextMsg(20 * time.Second); err != nil {
		t.Fatalf("no threat event from the demo within 20s: %v", err)
	}
}
