package tracking

import (
	"context"
	"encoding/json"
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
			RequestedAt: past.Add(-time.Hour), Deadline: past, RequestID: strconv.Itoa(i), End: e,
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
