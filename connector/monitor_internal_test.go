package connector

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

func TestResolves(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := &monitorRecord{ThreatUpdatedAt: start.Add(-time.Hour), StartedAt: start, Deadline: start.Add(time.Hour)}
	for _, tc := range []struct {
		name    string
		status  string
		updated time.Time
		want    bool
	}{
		{"resolved after the start", "resolved", start.Add(time.Minute), true},
		{"resolved at the deadline", "resolved", start.Add(time.Hour), true},
		{"resolved after the deadline: a timeout", "resolved", start.Add(time.Hour + time.Microsecond), false},
		{"the version seen at the start", "resolved", start.Add(-time.Hour), false},
		{"an earlier resolution, since undone", "resolved", start.Add(-2 * time.Hour), false},
		{"changed but not resolved", "in_progress", start.Add(time.Minute), false},
		// The console's clock may lag ours: a resolution after the version
		// seen at the start counts even if it looks earlier than the start.
		{"resolved between the lookup and the start", "resolved", start.Add(-time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := &sentinelone.Threat{IncidentStatus: tc.status, UpdatedAt: tc.updated}
			if got := resolves(rec, th); got != tc.want {
				t.Errorf("resolves = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestNewMonitorID(t *testing.T) {
	r := handlers.RequestInfo{ID: "abc", Source: "/soar"}
	id := newMonitorID("main", r)
	if len(id) != 24 || !subjects.ValidToken(id) {
		t.Fatalf("id %q is not 24 token characters", id)
	}
	if again := newMonitorID("main", r); again != id {
		t.Errorf("same request, ids %q and %q", id, again)
	}
	for _, other := range []string{
		newMonitorID("other", r),
		newMonitorID("main", handlers.RequestInfo{ID: "abc", Source: "/other"}),
		newMonitorID("main", handlers.RequestInfo{ID: "abd", Source: "/soar"}),
		newMonitorID("main", handlers.RequestInfo{ID: "", Source: "/soar"}),
	} {
		if other == id {
			t.Errorf("another request has id %q too", id)
		}
	}
	first, second := newMonitorID("main", handlers.RequestInfo{}), newMonitorID("main", handlers.RequestInfo{})
	if first == second {
		t.Error("requests without an id share a monitor")
	}
}

// TestMonitorLoopCompletesLeftClaims puts in KV what crashes leave behind
// and checks that the poller finishes each once: a claim whose event was
// never published, a claim whose event was (long enough ago that the stream
// would not drop a repeat), and a monitor whose deadline passed while no
// replica ran.
func TestMonitorLoopCompletesLeftClaims(t *testing.T) {
	c, emu := startForMonitors(t, func(cfg *config.Config) { cfg.Streams.Events.Duplicates = 200 * time.Millisecond })
	ctx := t.Context()
	cfg := c.cfg
	threats := emu.AddThreats(3, time.Time{})
	ms := c.monitors["main"]
	past := monitorNow().Add(-time.Minute)
	rec := func(i int, end *monitorEnd) *monitorRecord {
		return &monitorRecord{
			MonitorID: newMonitorID("main", handlers.RequestInfo{ID: threats[i]}), ThreatID: threats[i],
			StartedAt: past.Add(-time.Hour), Deadline: past, PollInterval: jsonDuration(time.Hour),
			State: handlers.MonitorWatching, End: end,
		}
	}
	unpublished := rec(0, &monitorEnd{Outcome: subjects.OutcomeCancelled, At: past, EndedAt: past, Threat: json.RawMessage(`{"id":"` + threats[0] + `"}`)})
	published := rec(1, &monitorEnd{Outcome: subjects.OutcomeCancelled, At: past, EndedAt: past})
	overdue := rec(2, nil)
	m, err := ms.event(published)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.st.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cfg.Streams.Events.Duplicates) // the window passes: a repeat would be stored
	for _, r := range []*monitorRecord{unpublished, published, overdue} {
		b, _ := json.Marshal(r)
		if _, err := ms.st.monitors.Create(ctx, ms.key(r.MonitorID), b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := ms.st.monitors.ListKeysFiltered(ctx, ms.key("*"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	info, err := ms.st.events.Info(ctx, jetstream.WithSubjectFilter(c.subj.MonitorWildcard("main", "*")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		c.subj.MonitorEvent("main", unpublished.MonitorID, subjects.OutcomeCancelled): 1,
		c.subj.MonitorEvent("main", published.MonitorID, subjects.OutcomeCancelled):   1,
		c.subj.MonitorEvent("main", overdue.MonitorID, subjects.OutcomeTimedOut):      1,
	}
	if len(info.State.Subjects) != len(want) {
		t.Errorf("events %v, want %v", info.State.Subjects, want)
	}
	for subj, n := range want {
		if info.State.Subjects[subj] != n {
			t.Errorf("%s: %d events, want %d", subj, info.State.Subjects[subj], n)
		}
	}
}

// TestMonitorClaimLosesToCancel gives the poller a view of a monitor that
// a cancel on another replica has ended since: its claim must fail, and the
// monitor keep its one outcome.
func TestMonitorClaimLosesToCancel(t *testing.T) {
	c, emu := startForMonitors(t, func(*config.Config) {})
	ctx := t.Context()
	ms := c.monitors["main"]
	threat := emu.AddThreats(1, time.Time{})[0]
	rep, err := ms.start(ctx, handlers.MonitorSpec{ThreatID: threat, PollInterval: time.Hour, Request: handlers.RequestInfo{ID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	// A poller's view from before the cancel.
	l := newMonitorLoop(ms)
	e, err := ms.st.monitors.Get(ctx, ms.key(rep.MonitorID))
	if err != nil {
		t.Fatal(err)
	}
	l.apply(e)
	if err := ms.cancel(ctx, rep.MonitorID); err != nil {
		t.Fatal(err)
	}
	if err := emu.UpdateThreat(threat, emulator.ThreatUpdate{IncidentStatus: "resolved"}); err != nil {
		t.Fatal(err)
	}
	th, err := ms.fetchThreats(ctx, []string{threat})
	if err != nil {
		t.Fatal(err)
	}
	ends := l.resolutions(th[threat], nil)
	if len(ends) != 1 {
		t.Fatalf("the stale view ends %d monitors, want 1", len(ends))
	}
	l.finish(ctx, ends)
	info, err := ms.st.events.Info(ctx, jetstream.WithSubjectFilter(c.subj.MonitorWildcard("main", rep.MonitorID)))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects; len(got) != 1 || got[c.subj.MonitorEvent("main", rep.MonitorID, subjects.OutcomeCancelled)] != 1 {
		t.Errorf("outcomes %v, want the cancel alone", got)
	}
}

// startForMonitors runs a connector for console main (ingestion off, lease
// TTL 1s) on a new NATS server and emulator; edit adjusts the configuration.
func startForMonitors(t *testing.T, edit func(*config.Config)) (*Connector, *emulator.Emulator) {
	t.Helper()
	return startInternal(t, 0, edit, WithLeaseTTL(time.Second))
}
