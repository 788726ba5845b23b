package monitor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testparts"
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
	ms, emu := startForMonitors(t, func(cfg *config.Config) { cfg.Streams.Events.Duplicates = 200 * time.Millisecond })
	ctx := t.Context()
	const window = 200 * time.Millisecond
	threats := emu.AddThreats(3, time.Time{})
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
	if _, err := ms.st.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * window) // the window passes: a repeat would be stored
	for _, r := range []*monitorRecord{unpublished, published, overdue} {
		b, _ := json.Marshal(r)
		if _, err := ms.kv.Create(ctx, ms.key(r.MonitorID), b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := ms.kv.ListKeysFiltered(ctx, subjects.MonitorKeys("main"))
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
	info, err := ms.st.Events().Info(ctx, jetstream.WithSubjectFilter(ms.subj.MonitorWildcard("main", "*")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		ms.subj.MonitorEvent("main", unpublished.MonitorID, subjects.OutcomeCancelled): 1,
		ms.subj.MonitorEvent("main", published.MonitorID, subjects.OutcomeCancelled):   1,
		ms.subj.MonitorEvent("main", overdue.MonitorID, subjects.OutcomeTimedOut):      1,
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
	ms, emu := startForMonitors(t, nil)
	ctx := t.Context()
	threat := emu.AddThreats(1, time.Time{})[0]
	rep, err := ms.Start(ctx, handlers.MonitorSpec{ThreatID: threat, PollInterval: time.Hour, Request: handlers.RequestInfo{ID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	// A poller's view from before the cancel.
	l := newMonitorLoop(ms)
	e, err := ms.kv.Get(ctx, ms.key(rep.MonitorID))
	if err != nil {
		t.Fatal(err)
	}
	l.apply(e)
	if err := ms.Cancel(ctx, rep.MonitorID); err != nil {
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
	info, err := ms.st.Events().Info(ctx, jetstream.WithSubjectFilter(ms.subj.MonitorWildcard("main", rep.MonitorID)))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects; len(got) != 1 || got[ms.subj.MonitorEvent("main", rep.MonitorID, subjects.OutcomeCancelled)] != 1 {
		t.Errorf("outcomes %v, want the cancel alone", got)
	}
}

// startForMonitors runs the monitors of console main (lease TTL 1s) on a
// new NATS server and an emulator with no threats; edit, when not nil,
// adjusts the configuration.
func startForMonitors(t *testing.T, edit func(*config.Config)) (*Set, *emulator.Emulator) {
	t.Helper()
	srv := testparts.NATSServer(t)
	emu, url := testparts.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 2, Threats: 0}))
	cfg := testparts.Config(srv.ClientURL(), url)
	if edit != nil {
		edit(cfg)
	}
	nc := testparts.Conn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, nc, store.Options{Config: cfg, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{BaseURL: url, Token: testparts.Token, Timeout: m.Timeout, RatePerSecond: 1e6, RateBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	ms := New(Config{
		Console: "main", Client: client, Monitor: m.Monitor, Overlap: m.Ingest.Overlap, PageSize: m.Ingest.PageSize,
		Store: st, Conn: nc, Holder: "test", LeaseTTL: time.Second, Log: testparts.Logger(t),
	})
	done := make(chan struct{})
	go func() { defer close(done); ms.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ms, emu
}
