package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// TestClientAgainstDemoParts builds the example as an integrator would and
// runs it against the demo's parts: an embedded NATS server with JetStream,
// the emulator and a connector ingesting its threats.
func TestClientAgainstDemoParts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := testenv.Start(t, testenv.IngestOn)
	testenv.WaitFor(t, 20*time.Second, "ingested threats", func() bool {
		return testenv.StreamMsgs(e.NC, e.Cfg.EventsStreamName()) >= 10
	})
	runClient := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"--server", e.Server.ClientURL(), "--timeout", "20s"}, args...)...).CombinedOutput()
		return string(out), err
	}

	// A request, its reply with the request's id as correlationid, and
	// five events from the durable consumer.
	out, err := runClient("--action", "agents.list", "--data", `{"limit":2}`, "--events", "5")
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^reply type=s1bridge\.agents\.list\.response correlationid=[0-9a-f-]{36}$`).MatchString(out) {
		t.Errorf("no reply line:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^data \{"items":\[\{.*\],"nextCursor":"[^"]+","totalItems":\d+,"truncated":false\}$`).MatchString(out) {
		t.Errorf("no list reply data:\n%s", out)
	}
	first := eventLines(out)
	if len(first) != 5 {
		t.Fatalf("%d events, want 5:\n%s", len(first), out)
	}
	// Created events of threats and of Unified Alerts, both ingested.
	created := regexp.MustCompile(`^event subject=s1\.main\.event\.(threat|alert)\.[^ ]+\.created type=s1bridge\.(threat|alert)\.created `)
	for _, l := range first {
		if m := created.FindStringSubmatch(l); m == nil || m[1] != m[2] {
			t.Errorf("event line %q", l)
		}
	}

	// The durable consumer goes on after the acknowledged events: a second
	// run reads the next ones, none twice.
	out, err = runClient("--action", "ingest.status", "--data", `{}`, "--events", "5")
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	second := eventLines(out)
	if len(second) != 5 {
		t.Fatalf("second run: %d events:\n%s", len(second), out)
	}
	for _, l := range second {
		for _, f := range first {
			if l == f {
				t.Errorf("event read twice: %s", l)
			}
		}
	}

	// An error reply: the micro error headers are read and the exit status
	// is non-zero.
	out, err = runClient("--action", "threats.monitor", "--data", `{"threatId":"nope"}`, "--events", "0")
	if err == nil || !strings.Contains(out, "error code=400 retryable=false message=threatId:") {
		t.Errorf("bad request: err %v\n%s", err, out)
	}
	// A console nobody serves.
	out, err = runClient("--console", "nowhere", "--events", "0")
	if err == nil || !strings.Contains(out, `no s1bridge serves console "nowhere"`) {
		t.Errorf("unknown console: err %v\n%s", err, out)
	}
}

// TestClientReadsStructuredEvents: the same program reads the events of a
// deployment with streams.events.mode: structured.
func TestClientReadsStructuredEvents(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		c.Streams.Events.Mode = config.ModeStructured
	})
	testenv.WaitFor(t, 20*time.Second, "ingested threats", func() bool {
		return testenv.StreamMsgs(e.NC, e.Cfg.EventsStreamName()) >= 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--server", e.Server.ClientURL(), "--timeout", "20s", "--events", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	// Threats and Unified Alerts are ingested side by side: either may come first.
	if ls := eventLines(string(out)); len(ls) != 3 || !strings.Contains(ls[0], ".created id=main/") {
		t.Errorf("events:\n%s", out)
	}
}

func eventLines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "event ") {
			ls = append(ls, l)
		}
	}
	return ls
}
