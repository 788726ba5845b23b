package credentials_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/credentials"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// expiries records what the Observer receives.
type expiries struct {
	mu  sync.Mutex
	got []time.Time
}

func (e *expiries) TokenExpiry(console string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, at)
}

func (e *expiries) last() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		return time.Time{}
	}
	return e.got[len(e.got)-1]
}

// fixture is a console (the emulator over HTTP) and the store of console
// main on a NATS server.
type fixture struct {
	t      *testing.T
	emu    *emulator.Emulator
	client *sentinelone.Client
	st     *store.Store
	obs    *expiries
	log    *testparts.SyncBuffer
	now    time.Time
}

func newFixture(t *testing.T, emuOpts ...emulator.Option) *fixture {
	t.Helper()
	srv := testparts.NATSServer(t)
	emu, url := testparts.Emulator(t, emuOpts...)
	cfg := testparts.Config(srv.ClientURL(), url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, testparts.Conn(t, srv), store.Options{Config: cfg, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sentinelone.New(sentinelone.Config{BaseURL: url, Token: testparts.Token, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, emu: emu, client: client, st: st, obs: &expiries{}, log: &testparts.SyncBuffer{}, now: time.Now().UTC()}
}

// checker is a replica's checker of console main, on the fixture's clock.
func (f *fixture) checker(mode ce.Mode) *credentials.Checker {
	return credentials.New(credentials.Config{
		Console: "main", Client: f.client, Store: f.st, Mode: mode, Observer: f.obs,
		Log: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: func() time.Time { return f.now },
	})
}

func TestSoonExpiring(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	expires := t0.Add(10*24*time.Hour + time.Hour)
	f := newFixture(t, emulator.WithTokenExpiry(t0.Add(-80*24*time.Hour), expires))
	f.now = t0
	a, b := f.checker(ce.ModeBinary), f.checker(ce.ModeStructured) // two replicas
	ctx := context.Background()

	st := a.Check(ctx)
	if !st.Checked || st.Err != nil || !st.ExpiresAt.Equal(expires) || !st.Expiring {
		t.Fatalf("status %+v", st)
	}
	if n := credentials.DaysLeft(st.Left); n != 10 {
		t.Errorf("days left %d, want 10", n)
	}
	if note := st.Note(); !strings.Contains(note, expires.Format(time.RFC3339)) || !strings.Contains(note, "10 days left") {
		t.Errorf("note %q", note)
	}
	if !f.obs.last().Equal(expires) {
		t.Errorf("observer got %v", f.obs.last())
	}
	// The other replica, and this one again later the same day: nothing new.
	b.Check(ctx)
	a.Check(ctx)
	evs := f.events()
	if len(evs) != 1 {
		t.Fatalf("%d events the first day, want 1: %+v", len(evs), evs)
	}
	checkEvent(t, evs[0], expires, t0, 10)

	// The next day: one more, with the new day in its id and a day less.
	f.now = t0.Add(24 * time.Hour)
	a.Check(ctx)
	b.Check(ctx)
	evs = f.events()
	if len(evs) != 2 {
		t.Fatalf("%d events after the second day, want 2", len(evs))
	}
	checkEvent(t, evs[1], expires, f.now, 9)
	if strings.Contains(f.log.String(), "could not") {
		t.Errorf("unexpected failure logged:\n%s", f.log)
	}
}

// checkEvent checks a console.token_expiring event against DESIGN.md §14.
func checkEvent(t *testing.T, ev ce.Event, expires, day time.Time, daysLeft int) {
	t.Helper()
	if ev.Type != subjects.TypeTokenExpiring || ev.Source != "/s1bridge/main" || ev.Subject != "main" ||
		ev.ID != "main/token/"+expires.Format(time.RFC3339)+"/"+day.Format(time.DateOnly) {
		t.Errorf("event attributes: type %q source %q subject %q id %q", ev.Type, ev.Source, ev.Subject, ev.ID)
	}
	var d events.TokenExpiring
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.Console != "main" || !d.ExpiresAt.Equal(expires) || d.DaysLeft != daysLeft {
		t.Errorf("event data %s (%v), want %d days left", ev.Data, err, daysLeft)
	}
}

func TestFarFromExpiring(t *testing.T) {
	f := newFixture(t) // the emulator's default: 150 days left
	st := f.checker(0).Check(context.Background())
	if st.Err != nil || st.ExpiresAt.IsZero() || st.Expiring || st.Note() != "" {
		t.Fatalf("status %+v, note %q", st, st.Note())
	}
	if n := credentials.DaysLeft(st.Left); n < 148 || n > 150 {
		t.Errorf("days left %d, want about 150", n)
	}
	if evs := f.events(); len(evs) != 0 {
		t.Errorf("%d events for a token far from its expiry", len(evs))
	}
}

func TestExpired(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	expired := t0.Add(-2 * time.Hour)
	f := newFixture(t, emulator.WithTokenExpiry(t0.Add(-30*24*time.Hour), expired))
	f.now = t0
	st := f.checker(0).Check(context.Background())
	if st.Err != nil || !st.Expiring || st.Left >= 0 || !strings.Contains(st.Note(), "expired at "+expired.Format(time.RFC3339)) {
		t.Fatalf("status %+v, note %q", st, st.Note())
	}
	evs := f.events()
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	checkEvent(t, evs[0], expired, t0, 0)
}

func TestUnknownExpiry(t *testing.T) {
	f := newFixture(t, emulator.WithoutTokenDetails()) // an older console: 404
	f.obs.TokenExpiry("main", time.Unix(1, 0))         // something to overwrite
	st := f.checker(0).Check(context.Background())
	if !st.Checked || st.Err != nil || !st.ExpiresAt.IsZero() || st.Expiring || st.Note() != "" {
		t.Fatalf("status %+v", st)
	}
	if !f.obs.last().IsZero() {
		t.Errorf("observer got %v, want the zero time (unknown)", f.obs.last())
	}
	if evs := f.events(); len(evs) != 0 {
		t.Errorf("%d events", len(evs))
	}
	if strings.Contains(f.log.String(), "WARN") {
		t.Errorf("a console that cannot say is no fault, but:\n%s", f.log)
	}
}

// TestUnreadableAnswer: an answer that cannot be read is logged once,
// reported unknown, and forgotten once a read succeeds.
func TestUnreadableAnswer(t *testing.T) {
	f := newFixture(t)
	c := f.checker(0)
	ctx := context.Background()
	for _, fault := range []emulator.Fault{
		{Path: sentinelone.PathAPITokenDetails, Kind: emulator.FaultMalformed},
		{Path: sentinelone.PathAPITokenDetails, Kind: emulator.FaultServerError, Status: http.StatusBadGateway},
		{Path: sentinelone.PathAPITokenDetails, Kind: emulator.FaultServerError, Status: http.StatusInternalServerError, HTML: true},
	} {
		f.emu.ClearFaults()
		if err := f.emu.Inject(fault); err != nil {
			t.Fatal(err)
		}
		st := c.Check(ctx)
		if st.Err == nil || !st.ExpiresAt.IsZero() || st.Expiring || !f.obs.last().IsZero() {
			t.Fatalf("fault %v: status %+v", fault.Kind, st)
		}
	}
	if n := strings.Count(f.log.String(), "could not read the API token's expiry"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, f.log)
	}
	f.emu.ClearFaults()
	if st := c.Check(ctx); st.Err != nil || st.ExpiresAt.IsZero() {
		t.Fatalf("after the faults: %+v", st)
	}
	// A new failure after a success is logged again.
	if err := f.emu.Inject(emulator.Fault{Path: sentinelone.PathAPITokenDetails, Kind: emulator.FaultMalformed}); err != nil {
		t.Fatal(err)
	}
	c.Check(ctx)
	if n := strings.Count(f.log.String(), "could not read the API token's expiry"); n != 2 {
		t.Errorf("logged %d times after a success and a new failure, want 2", n)
	}
}

// events returns the console.token_expiring events in the stream, in
// order, each checked against its schema.
func (f *fixture) events() []ce.Event {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := f.st.Events().OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.st.Subjects().TokenExpiringEvent("main")},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []ce.Event
	for range info.NumPending {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, testparts.CheckEvent(f.t, m.Subject(), m.Headers(), m.Data()))
	}
	return out
}

// TestRun reads at start, then every interval, until its context ends.
func TestRun(t *testing.T) {
	f := newFixture(t, emulator.WithRequestLog(100))
	c := credentials.New(credentials.Config{Console: "main", Client: f.client, Interval: 50 * time.Millisecond, Observer: f.obs})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	testparts.WaitFor(t, 5*time.Second, "three reads", func() bool {
		return f.emu.RequestCount(sentinelone.PathAPITokenDetails) >= 3
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if st := c.Status(); !st.Checked || st.ExpiresAt.IsZero() {
		t.Errorf("status %+v", st)
	}
}
