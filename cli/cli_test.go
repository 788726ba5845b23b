package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/handlers"
)

func TestNearest(t *testing.T) {
	names := handlers.Names()
	for in, want := range map[string]string{
		"agents.list": "agents.list", "agent.list": "agents.list", "agents.lsit": "agents.list", "agents_list": "agents.list",
		"AGENTS.LIST": "agents.list", "threats.mitgate": "threats.mitigate", "threat.update": "threats.update",
		"monitor.cancel": "monitors.cancel", "uam.alert.update": "uam.alerts.update", "threats.fetchfile": "threats.fetch_file",
		"isolate": "", "list": "", "x": "", "": "", "agents": "", "threats.list.all.of.them": "",
	} {
		if got := Nearest(in, names); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		line, column, offset int
		reason               string
	}{
		{in: `{"limit":2}`},
		{in: ``},
		{in: " \n "},
		{in: `{"limit":2,}`, line: 1, column: 12, offset: 11, reason: "looking for beginning of object key"},
		{in: "{\n\t\"a\": tru\n}", line: 2, column: 10, offset: 11, reason: "invalid character '\\n' in literal true"},
		{in: `{"é":"ü",x}`, line: 1, column: 10, offset: 11, reason: "invalid character 'x'"},
		{in: `{"limit":2`, line: 1, column: 11, offset: 10, reason: "unexpected end of JSON input"},
		{in: `{"a":"b`, line: 1, column: 8, offset: 7, reason: "unexpected end"},
		{in: `  [1,2]`, line: 1, column: 3, offset: 2, reason: "not an array"},
		{in: `"hello"`, line: 1, column: 1, offset: 0, reason: "not a string"},
		{in: `null`, line: 1, column: 1, offset: 0, reason: "not null"},
		{in: `{} {}`, line: 1, column: 4, offset: 3, reason: "after top-level value"},
		{in: `limit=2`, line: 1, column: 1, offset: 0, reason: "invalid character 'l'"},
	} {
		err := CheckJSON([]byte(tc.in))
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
			}
			continue
		}
		var je *JSONError
		if !errors.As(err, &je) {
			t.Errorf("%q: %v, want a JSONError", tc.in, err)
			continue
		}
		if je.Line != tc.line || je.Column != tc.column || je.Offset != tc.offset || !strings.Contains(je.Error(), tc.reason) {
			t.Errorf("%q: line %d column %d offset %d: %v; want %d %d %d %q", tc.in, je.Line, je.Column, je.Offset, je, tc.line, tc.column, tc.offset, tc.reason)
		}
		if !strings.HasSuffix(je.Error(), "\n  "+je.Excerpt+"\n  "+strings.Repeat(" ", je.Column-1)+"^") {
			t.Errorf("%q: no caret under the column:\n%s", tc.in, je)
		}
	}
}

func TestWithinAndValidFilter(t *testing.T) {
	const events = "s1.*.event.>"
	for filter, want := range map[string]bool{
		"s1.main.event.>": true, "s1.*.event.>": true, "s1.main.event.threat.123.created": true, "s1.main.event.monitor.m.*": true,
		"s1.main.event": false, "s1.>": false, "s2.main.event.>": false, "s1.main.audit.>": false, "*.main.event.>": false, ">": false,
	} {
		if got := Within(filter, events); got != want {
			t.Errorf("Within(%q, %q) = %t", filter, events, got)
		}
	}
	if !Within("s1.main.audit.agents.connect.requested", "s1.*.audit.>") {
		t.Error("audit subject not within the audit stream")
	}
	for filter, want := range map[string]bool{
		"s1.main.event.>": true, "s1.*.event.*": true, "a": true,
		"": false, "s1..x": false, "s1.>.x": false, "s1.ma*n": false, "s1.main event": false, ".s1": false, "s1.": false,
	} {
		if got := ValidFilter(filter); got != want {
			t.Errorf("ValidFilter(%q) = %t", filter, got)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90m": now.Add(-90 * time.Minute), "24h": now.Add(-24 * time.Hour), "0s": now,
		"2026-04-30T08:00:00Z": time.Date(2026, 4, 30, 8, 0, 0, 0, time.UTC), "2026-04-30T10:00:00+02:00": time.Date(2026, 4, 30, 8, 0, 0, 0, time.UTC),
	} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "2026-04-30", "1d"} {
		if _, err := ParseSince(in, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", in)
		}
	}
}

// TestHasOutcome finds the actions whose reply names an outcome subject,
// also through an embedded struct (as tracked replies may be built).
func TestHasOutcome(t *testing.T) {
	// threats.monitor has one; the tracked actions (agents.*, threats.*)
	// gain one when action tracking puts subject in their replies.
	for _, a := range handlers.All() {
		if got, want := HasOutcome(a), a.Name == handlers.ActionThreatsMonitor; got != want && !strings.HasPrefix(a.Name, "agents.") && !strings.HasPrefix(a.Name, "threats.") {
			t.Errorf("%s: HasOutcome %t", a.Name, got)
		}
	}
	type tracked struct {
		TrackingID string `json:"trackingId"`
		Subject    string `json:"subject"`
	}
	type reply struct {
		Affected int `json:"affected"`
		tracked
	}
	type other struct {
		Subject int `json:"subject"` // not a string
	}
	for v, want := range map[any]bool{&reply{}: true, reply{}: true, &other{}: false, &handlers.MonitorReply{}: true, &handlers.ListReply{}: false} {
		if got := HasOutcome(handlers.Action{Response: v}); got != want {
			t.Errorf("HasOutcome(%T) = %t", v, got)
		}
	}
	if OutcomeSubject([]byte(`{"subject":"s1.main.event.monitor.m.*"}`)) != "s1.main.event.monitor.m.*" || OutcomeSubject([]byte(`{"dryRun":true}`)) != "" {
		t.Error("OutcomeSubject")
	}
}
