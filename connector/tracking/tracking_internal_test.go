package tracking

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// mitigationKinds are threats.mitigate's actions (handlers refuses others).
var mitigationKinds = []string{"kill", "quarantine", "remediate", "rollback_remediation", "un_quarantine"}

// TestConfirmationsCoverTrackedActions: every action whose reply is a
// TrackedReply (every kind of threats.mitigate) has a confirmation, and
// every confirmation is of such an action; the bounds of trackTimeout are
// the configuration's.
func TestConfirmationsCoverTrackedActions(t *testing.T) {
	want := map[string]bool{}
	for _, a := range handlers.All() {
		if reflect.TypeOf(a.Response) != reflect.TypeOf(handlers.TrackedReply{}) {
			continue
		}
		if a.Name == handlers.ActionThreatsMitigate {
			for _, k := range mitigationKinds {
				want[confirmKey(a.Name, k)] = true
			}
			continue
		}
		want[a.Name] = true
	}
	if len(want) != 10 {
		t.Errorf("%d tracked actions and kinds, want the 6 actions of DESIGN.md §13 with 5 kinds of mitigation", len(want))
	}
	for k := range want {
		if confirmations[k] == nil {
			t.Errorf("tracked action %s has no confirmation", k)
		}
	}
	for k, c := range confirmations {
		if !want[k] {
			t.Errorf("confirmation of %s, which is not a tracked action", k)
		}
		if len(c.succeeded) == 0 || c.targets == 0 {
			t.Errorf("%s: nothing confirms it", k)
		}
		for _, typ := range c.types() {
			if n := len(slices.DeleteFunc(c.types(), func(x int) bool { return x != typ })); n != 1 {
				t.Errorf("%s: activity type %d has %d meanings", k, typ, n)
			}
		}
	}
	if handlers.MinTrackTimeout != config.MinTrackTimeout || handlers.MaxTrackTimeout != config.MaxTrackTimeout {
		t.Errorf("trackTimeout bounds %s..%s, tracking.timeout bounds %s..%s",
			handlers.MinTrackTimeout, handlers.MaxTrackTimeout, config.MinTrackTimeout, config.MaxTrackTimeout)
	}
}

// TestREADMEConfirmations keeps the README's table "What confirms each
// action" equal to the confirmations: one row per action (and kind), its
// activity types succeeded / failed / still pending, and its networkStatus.
func TestREADMEConfirmations(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "#### What confirms each action")
	if !ok {
		t.Fatal("README.md has no section \"What confirms each action\"")
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z._]+)`( `([a-z_]+)`)? \\| ([^|]*)\\| ([^|]*)\\| ([^|]*)\\| ([^|]*)\\|")
	ints := func(cell string) []int {
		var out []int
		for _, f := range regexp.MustCompile(`\d+`).FindAllString(cell, -1) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		key := confirmKey(m[1], m[3])
		c := confirmations[key]
		if c == nil {
			t.Errorf("README row %q: not a tracked action", m[0])
			continue
		}
		seen[key] = true
		network := strings.Trim(strings.TrimSpace(m[7]), "`")
		if network == "none" {
			network = ""
		}
		if !slices.Equal(ints(m[4]), c.succeeded) || !slices.Equal(ints(m[5]), c.failed) || !slices.Equal(ints(m[6]), c.waiting) || network != c.network {
			t.Errorf("README row %q, code: succeeded %v failed %v pending %v networkStatus %q", m[0], c.succeeded, c.failed, c.waiting, c.network)
		}
	}
	for key := range confirmations {
		if !seen[key] {
			t.Errorf("README's table has no row for %s", key)
		}
	}
}

func TestConfirmationClass(t *testing.T) {
	c := confirmationOf(handlers.ActionThreatsMitigate, "kill")
	for typ, want := range map[int]string{2001: classSucceeded, 2006: classFailed, 2031: classWaiting, 2011: "", 2004: "", 1001: ""} {
		if got := c.class(typ); got != want {
			t.Errorf("kill, activity %d: %q, want %q", typ, got, want)
		}
	}
	if confirmationOf(handlers.ActionThreatsMitigate, "network_quarantine") != nil || confirmationOf(handlers.ActionThreatsUpdate, "") != nil {
		t.Error("a confirmation for an action that is not tracked")
	}
}

// startSet runs the tracked actions of console main on a new server and
// emulator, polling every second.
func startSet(t *testing.T, edit func(*config.Config)) (*Set, *emulator.Emulator) {
	t.Helper()
	srv := testparts.NATSServer(t)
	emu, url := testparts.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 2}))
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
	m.Tracking.PollInterval = time.Second
	client, err := sentinelone.New(sentinelone.Config{BaseURL: url, Token: testparts.Token, Timeout: m.Timeout, RatePerSecond: 1e6, RateBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{
		Console: "main", Client: client, Tracking: m.Tracking, Overlap: m.Ingest.Overlap, PageSize: m.Ingest.PageSize,
		Store: st, Holder: "test", LeaseTTL: time.Second, Log: testparts.Logger(t),
	})
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, emu
}

// TestLoopCompletesLeftClaims puts in KV what crashes leave behind and
// checks that the poller finishes each once: a claim whose event was never
// published, a claim whose event was (long enough ago that the stream would
// not drop a repeat), and a tracked action whose deadline passed while no
// replica ran.
func TestLoopCompletesLeftClaims(t *testing.T) {
	const window = 200 * time.Millisecond
	s, emu := startSet(t, func(cfg *config.Config) { cfg.Streams.Events.Duplicates = window })
	ctx := t.Context()
	agents := emu.IDs().Agents
	past := now().Add(-time.Minute)
	rec := func(i int, e *end) *record {
		return &record{
			TrackingID: subjects.TrackingID("main", "/test", strconv.Itoa(i)), Action: handlers.ActionAgentsDisconnect,
			Targets:     []events.ActionTarget{{ID: agents[i%len(agents)], State: events.TargetPending}},
			RequestedAt: past.Add(-time.Hour), Deadline: past, Correlation: ce.Correlation{RequestID: strconv.Itoa(i)}, End: e,
		}
	}
	unpublished := rec(0, &end{Outcome: subjects.OutcomeTimedOut, At: past, EndedAt: past})
	published := rec(1, &end{Outcome: subjects.OutcomeTimedOut, At: past, EndedAt: past})
	overdue := rec(2, nil)
	m, err := s.event(published)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * window) // the window passes: a repeat would be stored
	for _, r := range []*record{unpublished, published, overdue} {
		b, _ := json.Marshal(r)
		if _, err := s.kv.Create(ctx, s.key(r.TrackingID), b); err != nil {
			t.Fatal(err)
		}
	}
	testparts.WaitFor(t, 10*time.Second, "every record to go", func() bool {
		keys, err := s.kv.ListKeysFiltered(ctx, subjects.TrackingKeys("main"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n == 0
	})
	info, err := s.st.Events().Info(ctx, jetstream.WithSubjectFilter(s.subj.ActionOutcomeWildcard("main", "*")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		s.subj.ActionOutcomeEvent("main", unpublished.TrackingID, subjects.OutcomeTimedOut): 1,
		s.subj.ActionOutcomeEvent("main", published.TrackingID, subjects.OutcomeTimedOut):   1,
		s.subj.ActionOutcomeEvent("main", overdue.TrackingID, subjects.OutcomeTimedOut):     1,
	}
	if !reflect.DeepEqual(info.State.Subjects, want) {
		t.Errorf("events %v, want %v", info.State.Subjects, want)
	}
}

// TestConfirm feeds activities to a loop holding a kill of two threats and
// an isolation of one agent: only an activity of a confirming type, about a
// target of the record, created after the request (less clockSkew) and no
// later than the deadline counts; the first decisive one wins; a
// pending-reboot report keeps its target pending with its message.
func TestConfirm(t *testing.T) {
	req := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	l := &loop{all: map[string]*tracked{}, byTarget: map[targetKey][]ref{}, uncovered: map[string]*tracked{}}
	add := func(id, action, variant string, targets ...string) *tracked {
		w := &tracked{rev: 1, conf: confirmationOf(action, variant), rec: record{TrackingID: id, Action: action, Variant: variant,
			RequestedAt: req, Deadline: req.Add(time.Hour)}}
		for _, tg := range targets {
			w.rec.Targets = append(w.rec.Targets, events.ActionTarget{ID: tg, State: events.TargetPending})
		}
		l.all[id] = w
		l.index(w)
		return w
	}
	kill := add("k", handlers.ActionThreatsMitigate, "kill", "111", "222")
	isolate := add("i", handlers.ActionAgentsDisconnect, "", "900")
	act := func(typ int, agent, threat string, at time.Duration, msg string) {
		l.confirm(&sentinelone.Activity{ID: fmt.Sprint("a", typ, at), ActivityType: typ, AgentID: agent, ThreatID: threat, CreatedAt: req.Add(at), PrimaryDescription: msg})
	}
	act(2001, "900", "333", time.Second, "another threat's kill")        // not a target of the kill
	act(2001, "900", "111", -2*time.Second, "before the request")        // too early
	act(2001, "900", "111", time.Hour+time.Second, "after the deadline") // too late
	act(2004, "900", "111", time.Second, "a quarantine")                 // another kind
	act(2031, "900", "111", 2*time.Second, "waits for a reboot")         // keeps it pending
	act(2006, "900", "222", -500*time.Millisecond, "failed to kill")     // within the skew
	act(2001, "900", "222", 3*time.Second, "killed after all")           // too late: decided
	act(1001, "900", "111", 4*time.Second, "Agent disconnected")         // the isolation's, not the kill's
	want := []events.ActionTarget{{ID: "111", State: events.TargetPending, Message: "waits for a reboot"}, {ID: "222", State: events.TargetFailed, Message: "failed to kill"}}
	for i, w := range want {
		got := kill.rec.Targets[i]
		if got.ID != w.ID || got.State != w.State || got.Message != w.Message || (got.State == events.TargetPending) != (got.ActivityID == nil) {
			t.Errorf("kill target %d: %+v, want %+v", i, got, w)
		}
	}
	if kill.pending != 1 || !kill.dirty {
		t.Errorf("kill: %d pending, dirty %t", kill.pending, kill.dirty)
	}
	if tg := isolate.rec.Targets[0]; tg.State != events.TargetSucceeded || *tg.ActivityID != fmt.Sprint("a", 1001, 4*time.Second) || !tg.At.Equal(req.Add(4*time.Second)) || isolate.pending != 0 {
		t.Errorf("isolation: %+v", tg)
	}
	ends := l.decide(req.Add(time.Minute), true)
	if len(ends) != 1 || ends[0].w != isolate || ends[0].end.Outcome != subjects.OutcomeCompleted || !ends[0].end.At.Equal(req.Add(4*time.Second)) {
		t.Errorf("decided %+v", ends)
	}
	// Past the deadline, the kill times out; before a successful poll, it
	// waits.
	if ends := l.decide(req.Add(2*time.Hour), false); len(ends) != 1 {
		t.Errorf("without a poll, %d endings", len(ends))
	}
	ends = l.decide(req.Add(2*time.Hour), true)
	if len(ends) != 2 {
		t.Fatalf("%d endings", len(ends))
	}
	for _, e := range ends {
		if e.w == kill && (e.end.Outcome != subjects.OutcomeTimedOut || !e.end.At.Equal(kill.rec.Deadline)) {
			t.Errorf("kill: %+v", e.end)
		}
	}
}
