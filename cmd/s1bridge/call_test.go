package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// requestsSeen counts the action requests a NATS server receives.
func requestsSeen(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var n atomic.Int64
	if _, err := nc.Subscribe("*.*.action.>", func(*nats.Msg) { n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// TestCallListsActions: `s1bridge call` with no action lists every action
// of the table with its description, and which ones mutate or can --wait.
func TestCallListsActions(t *testing.T) {
	out, errOut, code := runCmd(t, "call")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := map[string]string{}
	for l := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(l, "  ") {
			lines[f[0]] = l
		}
	}
	all := handlers.All()
	if len(lines) != len(all) {
		t.Errorf("%d actions listed, the table has %d:\n%s", len(lines), len(all), out)
	}
	for _, a := range all {
		l, ok := lines[a.Name]
		switch {
		case !ok:
			t.Errorf("%s is not listed", a.Name)
		case !strings.Contains(l, a.Description):
			t.Errorf("%s is listed without its description: %q", a.Name, l)
		case a.Mutating != strings.Contains(l, "mutating"):
			t.Errorf("%s (mutating %t): %q", a.Name, a.Mutating, l)
		}
	}
	if !strings.Contains(lines["threats.monitor"], "--wait") || strings.Contains(lines["agents.list"], "--wait") {
		t.Errorf("--wait marks: %q, %q", lines["threats.monitor"], lines["agents.list"])
	}
}

// TestCallRefusesLocally: an unknown action (with the nearest name), a
// malformed JSON request (with where it breaks) and bad flags are refused
// with exit status 2, and nothing is sent.
func TestCallRefusesLocally(t *testing.T) {
	srv := testenv.NATSServer(t)
	sent := requestsSeen(t, srv.ClientURL())
	s := "--server=" + srv.ClientURL()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "agent.list"}, `unknown action "agent.list"; did you mean "agents.list"?`},
		{[]string{"call", "agents.lsit", `{"limit":2}`}, `did you mean "agents.list"?`},
		{[]string{"call", "threats.mitgate"}, `did you mean "threats.mitigate"?`},
		{[]string{"call", "Threats.List"}, `did you mean "threats.list"?`},
		{[]string{"call", "uam.alert.get"}, `did you mean "uam.alerts.get"?`},
		{[]string{"call", "isolate"}, `unknown action "isolate" (s1bridge call with no action lists them all)`},
		{[]string{"call", "agents.list", `{"limit":2,}`}, "malformed at line 1, column 12 (byte 11): invalid character '}'"},
		{[]string{"call", "agents.list", "{\n  \"limit\": 2\n  \"all\": true\n}"}, "line 3, column 3 (byte 17): invalid character '\"' after object key:value pair\n    \"all\": true\n    ^"},
		{[]string{"call", "agents.list", `{"limit":2`}, "line 1, column 11 (byte 10): unexpected end of JSON input"},
		{[]string{"call", "agents.list", `{"computerName":"é","limit":x}`}, "line 1, column 29 (byte 29): invalid character 'x'"},
		{[]string{"call", "agents.list", `[{"limit":2}]`}, "a request is a JSON object ({...}), not an array"},
		{[]string{"call", "agents.list", `{"limit":2} {"limit":3}`}, "line 1, column 13 (byte 12): invalid character '{' after top-level value"},
		{[]string{"call", "agents.list", `{}`, `{}`}, "too many arguments (3)"},
		{[]string{"call", "agents.list", "--console", "eu.west"}, `--console "eu.west" is not a console name`},
		{[]string{"call", "agents.list", "--timeout", "0s"}, "--timeout 0s: give a positive duration"},
		{[]string{"call", "agents.list", "--id", "two words"}, `--id "two words"`},
		{[]string{"call", "agents.list", "--prefix", "s1.x"}, `--prefix "s1.x" is not one NATS subject token`},
		{[]string{"call", "agents.list", "--server", " "}, "--server is empty"},
		{[]string{"call", "agents.list", "--wait"}, "--wait: agents.list publishes no outcome event to wait for (these do: "},
		{[]string{"call", "agents.list", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"call", "agents.list", "--bogus"}, "flag provided but not defined: -bogus"},
	} {
		args := append(tc.args, s)
		if tc.args[len(tc.args)-1] == " " { // --server given empty: no default after it
			args = tc.args
		}
		out, errOut, code := runCmd(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant it to contain:\n%s", tc.args, code, out, errOut, tc.want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := sent.Load(); n != 0 {
		t.Errorf("%d requests were sent", n)
	}
}

// monitorReply decodes the reply threats.monitor printed.
func monitorReply(t *testing.T, out string) handlers.MonitorReply {
	t.Helper()
	var r handlers.MonitorReply
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil || r.MonitorID == "" {
		t.Fatalf("no monitor reply in %q: %v", out, err)
	}
	return r
}

// outcomeEvent decodes the event --wait printed after the reply.
func outcomeEvent(t *testing.T, out string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var reply, ev map[string]any
	if err := dec.Decode(&reply); err != nil {
		t.Fatalf("reply: %v in %q", err, out)
	}
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("no event after the reply: %v in %q", err, out)
	}
	data, _ := json.Marshal(ev["data"])
	if err := schema.ValidateEvent(ev["type"].(string), data); err != nil {
		t.Error(err)
	}
	return ev
}

// TestCallWait: --wait prints the outcome of threats.monitor: one already
// published when the reply came (a resolved threat), one that comes later
// (a cancel from elsewhere), a timed-out monitor (exit 1); and gives up at
// its timeout with a hint (exit 1).
func TestCallWait(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) { c.Consoles["main"] = withPoll(c.Consoles["main"]) })
	s := "--server=" + env.Server.ClientURL()
	var resolved, open []string
	for _, id := range env.Emu.IDs().Threats {
		if st, _ := env.Emu.Threat(id); st.IncidentStatus == "resolved" {
			resolved = append(resolved, id)
		} else {
			open = append(open, id)
		}
	}

	// Resolved at the start: the event is in the stream before the reply.
	out, errOut, code := runCmd(t, "call", "threats.monitor", `{"threatId":"`+resolved[0]+`"}`, "--wait", s)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := monitorReply(t, out)
	ev := outcomeEvent(t, out)
	if r.State != handlers.MonitorResolved || ev["type"] != "s1bridge.monitor.resolved" || ev["subject"] != resolved[0] ||
		ev["id"] != subjects.MonitorEventID("main", r.MonitorID, subjects.OutcomeResolved) {
		t.Errorf("reply %+v, event %v", r, ev)
	}

	// Cancelled by somebody else while the command waits.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bout, berr testenv.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"call", "threats.monitor", `{"threatId":"` + open[0] + `","timeout":"1h"}`, "--wait", "--id", "case-42", s}, &bout, &berr)
	}()
	testenv.WaitFor(t, 10*time.Second, "the waiting call's reply", func() bool { return strings.Contains(bout.String(), "monitorId") })
	r = monitorReply(t, bout.String())
	if c := env.Call(t, "monitors.cancel", `{"monitorId":"`+r.MonitorID+`"}`); c.Err != nil {
		t.Fatal(c.Err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("call --wait: %v\n%s", err, berr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("call --wait did not print the cancel:\n%s\n%s", bout.String(), berr.String())
	}
	if ev := outcomeEvent(t, bout.String()); ev["type"] != "s1bridge.monitor.cancelled" {
		t.Errorf("event %v", ev)
	}
	// The same --id is the same request: the same monitor, and its outcome
	// (long published) at once.
	out, _, code = runCmd(t, "call", "threats.monitor", `{"threatId":"`+open[0]+`","timeout":"1h"}`, "--wait", "--id", "case-42", s)
	if r2 := monitorReply(t, out); code != 0 || r2.MonitorID != r.MonitorID || outcomeEvent(t, out)["type"] != "s1bridge.monitor.cancelled" {
		t.Errorf("repeat with --id case-42: exit %d, %s", code, out)
	}

	// A monitor that times out: printed, exit 1.
	out, errOut, code = runCmd(t, "call", "threats.monitor", `{"threatId":"`+open[1]+`","timeout":"2s","pollInterval":"1s"}`, "--wait", s)
	if code != 1 || outcomeEvent(t, out)["type"] != "s1bridge.monitor.timed_out" || !strings.Contains(errOut, "outcome s1bridge.monitor.timed_out") {
		t.Errorf("timed out: exit %d\n%s\n%s", code, out, errOut)
	}

	// Nothing within --timeout: exit 1 and how to see it later.
	out, errOut, code = runCmd(t, "call", "threats.monitor", `{"threatId":"`+open[2]+`","timeout":"1h"}`, "--wait", "--timeout", "2s", s)
	r = monitorReply(t, out)
	if code != 1 || !strings.Contains(errOut, "no outcome on "+r.Subject+" within 2s") || !strings.Contains(errOut, "s1bridge events --subject '"+r.Subject+"' --follow") {
		t.Errorf("timeout: exit %d\n%s", code, errOut)
	}
}

// withPoll makes monitors poll every second.
func withPoll(c config.Console) config.Console {
	c.Monitor.PollInterval = time.Second
	return c
}

// TestEvents: `s1bridge events` prints the stream's events as CloudEvents
// in JSON, one a line, filtered by subject and start, follows new ones, and
// refuses bad flags and a stream that is not there.
func TestEvents(t *testing.T) {
	for _, mode := range []string{config.ModeBinary, config.ModeStructured} {
		t.Run(mode, func(t *testing.T) {
			env := testenv.Start(t, func(c *config.Config) {
				testenv.IngestOn(c)
				c.Streams.Events.Mode = mode
			})
			s := "--server=" + env.Server.ClientURL()
			ids := env.Emu.IDs()
			threats := ids.Threats
			// Threats and Unified Alerts are ingested side by side: the
			// stream is complete once both backlogs are in.
			testenv.WaitFor(t, 20*time.Second, "every threat and alert ingested", func() bool {
				return testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName()) >= uint64(len(threats)+len(ids.UAMAlerts))
			})
			stored := testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName())
			out, errOut, code := runCmd(t, "events", s)
			lines := eventLines(t, out)
			if code != 0 || uint64(len(lines)) != stored || !strings.Contains(errOut, "event(s) from S1_EVENTS") {
				t.Fatalf("exit %d, %d lines for %d events; stderr %s", code, len(lines), stored, errOut)
			}
			// One threat's events.
			out, _, _ = runCmd(t, "events", s, "--subject", "s1.main.event.threat."+threats[3]+".>")
			if l := eventLines(t, out); len(l) != 1 || l[0]["subject"] != threats[3] || l[0]["type"] != subjects.TypeThreatCreated {
				t.Errorf("--subject: %v", l)
			}
			// --since: an hour back holds them all, a future time none.
			if out, errOut, code = runCmd(t, "events", s, "--since", "1h"); code != 0 || uint64(len(eventLines(t, out))) != stored {
				t.Errorf("--since 1h: exit %d, %d events of %d: %s", code, len(eventLines(t, out)), stored, errOut)
			}
			if out, _, _ = runCmd(t, "events", s, "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); out != "" {
				t.Errorf("--since in an hour: %q", out)
			}
			// --follow prints what comes next, until stopped.
			ctx, cancel := context.WithCancel(context.Background())
			var fout, ferr testenv.SyncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"events", s, "--follow", "--since", "1s", "--subject", "s1.main.event.threat.*.created"}, &fout, &ferr)
			}()
			added := env.Emu.AddThreats(1, time.Time{})[0]
			testenv.WaitFor(t, 20*time.Second, "the new threat's event", func() bool { return strings.Contains(fout.String(), `"subject":"`+added+`"`) })
			cancel()
			if err := <-done; err != nil {
				t.Errorf("--follow: %v\n%s", err, ferr.String())
			}
		})
	}
}

// eventLines decodes the output of s1bridge events: a CloudEvent a line,
// each valid against its schema.
func eventLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		ev, err := ce.Decode(nats.Header{"Content-Type": {subjects.ContentTypeCloudEvent}}, []byte(l))
		if err != nil {
			t.Fatalf("not a structured CloudEvent: %v: %s", err, l)
		}
		if err := schema.ValidateEvent(ev.Type, ev.Data); err != nil {
			t.Error(err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(l), &m)
		evs = append(evs, m)
	}
	return evs
}

// TestEventsRefuses: bad flags exit 2 naming the flag; a stream that is
// not there (here the audit stream, turned off) exits 1 saying so.
func TestEventsRefuses(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) { c.Streams.Audit.Enabled = false })
	s := "--server=" + env.Server.ClientURL()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--since", "yesterday"}, 2, `--since "yesterday" is neither a Go duration (90m, 24h) nor an RFC 3339 time`},
		{[]string{"--since", "-2h"}, 2, `--since "-2h" is negative`},
		{[]string{"--since", "2026-13-01T00:00:00Z"}, 2, "--since"},
		{[]string{"--subject", "s1.>.threat"}, 2, `--subject "s1.>.threat" is not a NATS subject filter`},
		{[]string{"--subject", "s1..x"}, 2, "is not a NATS subject filter"},
		{[]string{"--subject", "s2.main.event.>"}, 2, "--subject s2.main.event.> is outside stream S1_EVENTS, which holds s1.*.event.>"},
		{[]string{"--subject", "s1.main.audit.>"}, 2, "outside stream S1_EVENTS"},
		{[]string{"--stream", "threats"}, 2, `--stream "threats": want events or audit`},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--prefix", "a.b"}, 2, `--prefix "a.b"`},
		{[]string{"--stream", "audit"}, 1, "no stream holds the subjects s1.*.audit.> on this server (usually stream S1_AUDIT)"},
		{[]string{"--prefix", "s9"}, 1, "no stream holds the subjects s9.*.event.> on this server (usually stream S9_EVENTS)"},
	} {
		out, errOut, code := runCmd(t, append([]string{"events", s}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

// TestCallWaitTrackedAction: --wait prints the outcome of a tracked action
// (its reply names the subject), and s1bridge events --stream audit prints
// the action's audit records.
func TestCallWaitTrackedAction(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.Tracking.PollInterval = time.Second
		c.Consoles["main"] = m
	})
	s := "--server=" + env.Server.ClientURL()
	agent := ""
	for _, id := range env.Emu.IDs().Agents {
		if a, _ := env.Emu.Agent(id); a.IsActive && a.NetworkStatus == "connected" {
			agent = id
			break
		}
	}
	out, errOut, code := runCmd(t, "call", "agents.disconnect", `{"agentIds":["`+agent+`"]}`, "--wait", "--timeout", "30s", s)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	ev := outcomeEvent(t, out)
	if ev["type"] != "s1bridge.action.completed" || !strings.HasPrefix(ev["id"].(string), "main/action/") {
		t.Errorf("outcome %v", ev)
	}
	out, errOut, code = runCmd(t, "events", s, "--stream", "audit")
	lines := eventLines(t, out)
	if code != 0 || len(lines) < 2 || !strings.Contains(errOut, "from S1_AUDIT") {
		t.Fatalf("audit: exit %d, %d records\n%s", code, len(lines), errOut)
	}
	types := map[any]bool{}
	for _, l := range lines {
		types[l["type"]] = true
	}
	if !types["s1bridge.audit.requested"] || !types["s1bridge.audit.completed"] {
		t.Errorf("audit record types %v", types)
	}
}
