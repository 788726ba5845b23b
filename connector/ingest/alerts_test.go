package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The alert tests are the threat tests (ingest_test.go, recovery_test.go)
// for Unified Alerts: the same machinery, the GraphQL source.

// uamSized seeds an emulator with n Unified Alerts and no threats.
func uamSized(n int) emulator.Option {
	return emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, UAMAlerts: n})
}

// alertIngester returns a new ingester of the console's Unified Alerts held
// as holder, asking a console without them again after retry.
func (h *harness) alertIngester(holder string, retry time.Duration) *Ingester {
	m := h.cfg.Consoles["main"]
	return New(Config{
		Console: "main", Source: Alerts(h.client, retry),
		Interval: m.Ingest.Interval, FirstFetch: m.Ingest.FirstFetch, Overlap: m.Ingest.Overlap, PageSize: m.Ingest.Alerts.PageSize,
		Store: h.st, Holder: holder, LeaseTTL: time.Second,
		Log: testparts.Logger(h.t).With("holder", holder, "source", "alerts"),
	})
}

// alertPageSize sets the alerts' page size of the harness's console.
func alertPageSize(n int) func(*config.Config) {
	return func(c *config.Config) {
		m := c.Consoles["main"]
		m.Ingest.Alerts.PageSize = n
		c.Consoles["main"] = m
	}
}

// checkAlertTiesAtPageEdges asserts that, read by (updatedAt, id) as the
// emulator orders them, pages of pageSize end inside runs of equal
// updatedAt: the case the cursor and the overlap must get right.
func checkAlertTiesAtPageEdges(t *testing.T, emu *emulator.Emulator, ids []string, pageSize int) {
	t.Helper()
	type alert struct {
		id string
		at time.Time
	}
	as := make([]alert, len(ids))
	for i, id := range ids {
		st, _ := emu.UAMAlert(id)
		as[i] = alert{id, st.UpdatedAt}
	}
	sort.Slice(as, func(i, j int) bool {
		if !as[i].at.Equal(as[j].at) {
			return as[i].at.Before(as[j].at)
		}
		return as[i].id < as[j].id
	})
	edges := 0
	for k := pageSize; k < len(as); k += pageSize {
		if as[k-1].at.Equal(as[k].at) {
			edges++
		}
	}
	if edges < 2 {
		t.Fatalf("only %d page edges of %d alerts fall inside a run of equal updatedAt", edges, pageSize)
	}
	t.Logf("%d page edges inside runs of equal updatedAt", edges)
}

// TestAlertIngestBacklogExactlyOnce: a 2,000-alert backlog of every source
// and confidence level (informational and none included), read in pages
// of 50 whose edges fall inside runs of equal updatedAt, gives exactly one
// created event per alert, each as DESIGN.md §10 says. (The 5,000-alert
// backlog is the SIGKILL test's, in package connector.)
func TestAlertIngestBacklogExactlyOnce(t *testing.T) {
	const n, pageSize = 2000, 50
	h := newHarness(t, alertPageSize(pageSize), uamSized(n))
	want := h.emu.IDs().UAMAlerts
	if len(want) != n {
		t.Fatalf("emulator seeded %d alerts", len(want))
	}
	checkAlertTiesAtPageEdges(t, h.emu, want, pageSize)
	in := h.alertIngester("a", 0)
	h.run(in)
	testparts.WaitFor(t, 120*time.Second, "the backlog in the stream", func() bool { return h.msgs() >= n })
	h.waitPolls(in, 2)
	evs := h.events()
	if len(evs) != n {
		t.Errorf("stream holds %d events, want %d created events", len(evs), n)
	}
	testparts.CheckExactlyOnceOf(t, evs, subjects.EntityAlert, want)
	// Nothing hidden: the informational alerts and those without a level
	// are in the stream like the others.
	levels := map[string]int{}
	for _, id := range want {
		st, _ := h.emu.UAMAlert(id)
		levels[st.ConfidenceLevel]++
	}
	if levels[sentinelone.UAMConfidenceInformational] == 0 || levels[""] == 0 {
		t.Fatalf("the seed has no informational alerts or none without a level: %v", levels)
	}
	// Every created event as DESIGN.md §10 has it, for a sample.
	for _, e := range evs[:min(50, len(evs))] {
		checkCreatedEvent(t, h, e.Seq)
	}
}

// checkCreatedEvent checks the created event at seq: subject, type, id,
// subject attribute, time (detectedAt) and data, against the emulator's
// alert and the event catalog's schema.
func checkCreatedEvent(t *testing.T, h *harness, seq uint64) {
	t.Helper()
	m, err := h.st.Events().GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	id := m.Header.Get("ce-subject")
	st, ok := h.emu.UAMAlert(id)
	if !ok {
		t.Fatalf("event %d is about alert %q, which the console does not have", seq, id)
	}
	if want := h.subj.AlertEvent("main", id, subjects.KindCreated, ""); m.Subject != want {
		t.Errorf("subject %s, want %s", m.Subject, want)
	}
	if got, want := m.Header.Get("ce-id"), subjects.CreatedEventID("main", subjects.EntityAlert, id); got != want || m.Header.Get(subjects.HeaderMsgID) != want {
		t.Errorf("ce-id %s, Nats-Msg-Id %s, want %s", got, m.Header.Get(subjects.HeaderMsgID), want)
	}
	if got := m.Header.Get("ce-type"); got != subjects.TypeAlertCreated {
		t.Errorf("ce-type %s", got)
	}
	if at, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time")); err != nil || !at.Equal(st.DetectedAt) {
		t.Errorf("ce-time %s (%v), want detectedAt %s", m.Header.Get("ce-time"), err, st.DetectedAt)
	}
	if err := schema.ValidateEvent(subjects.TypeAlertCreated, m.Data); err != nil {
		t.Error(err)
	}
	var d events.AlertCreated
	var alert sentinelone.UAMAlert
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(d.Alert, &alert); err != nil || alert.ID != id || !alert.UpdatedAt.Equal(st.UpdatedAt) {
		t.Errorf("data.alert %s (%v)", d.Alert, err)
	}
}

func TestAlertIngestChangesArriveWithinTwoIntervals(t *testing.T) {
	h := newHarness(t, nil, uamSized(20))
	ids := h.emu.IDs().UAMAlerts
	in := h.alertIngester("a", 0)
	h.run(in)
	testparts.WaitFor(t, 20*time.Second, "the seeded alerts", func() bool { return h.msgs() >= uint64(len(ids)) })
	interval := h.cfg.Consoles["main"].Ingest.Interval
	// A new, undecided alert the console lets us change (not the mobile
	// one), so that each step below is a change.
	id := emulator.UAMSeedIDs()[0]
	if st, _ := h.emu.UAMAlert(id); st.Status != sentinelone.UAMStatusNew || st.AnalystVerdict != "UNDEFINED" {
		t.Fatalf("seeded alert %s is %s/%s, want NEW/UNDEFINED", id, st.Status, st.AnalystVerdict)
	}
	sub, err := h.nc.SubscribeSync(h.subj.EventsWildcard())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		u           emulator.UAMAlertUpdate
		kind, field string
		from, to    string
		typ         string
	}{
		{emulator.UAMAlertUpdate{Status: "IN_PROGRESS"}, subjects.KindStatus, events.FieldStatus, "new", "in_progress", subjects.TypeAlertStatusChanged},
		{emulator.UAMAlertUpdate{AnalystVerdict: "TRUE_POSITIVE_MALWARE"}, subjects.KindVerdict, events.FieldAnalystVerdict, "undefined", "true_positive_malware", subjects.TypeAlertVerdictChanged},
		{emulator.UAMAlertUpdate{Status: "RESOLVED"}, subjects.KindStatus, events.FieldStatus, "in_progress", "resolved", subjects.TypeAlertResolved},
		{emulator.UAMAlertUpdate{Status: "IN_PROGRESS"}, subjects.KindStatus, events.FieldStatus, "resolved", "in_progress", subjects.TypeAlertStatusChanged}, // A→B→A: a new fact
	}
	for _, st := range steps {
		before, _ := h.emu.UAMAlert(id)
		// A later updatedAt for each step, as a console sets it (UAM keeps
		// milliseconds).
		st.u.At = time.Now().UTC()
		if !st.u.At.After(before.UpdatedAt.Add(time.Millisecond)) {
			st.u.At = before.UpdatedAt.Add(2 * time.Millisecond)
		}
		changed := time.Now()
		if err := h.emu.UpdateUAMAlert(id, st.u); err != nil {
			t.Fatal(err)
		}
		after, _ := h.emu.UAMAlert(id)
		m, err := sub.NextMsg(2*interval + 2*time.Second)
		if err != nil {
			t.Fatalf("%s.%s: no event: %v", st.kind, st.to, err)
		}
		took := time.Since(changed)
		want := h.subj.AlertEvent("main", id, st.kind, st.to)
		if m.Subject != want || m.Header.Get("ce-type") != st.typ {
			t.Fatalf("got %s (%s), want %s (%s)", m.Subject, m.Header.Get("ce-type"), want, st.typ)
		}
		if took > 2*interval+time.Second {
			t.Errorf("%s arrived after %s (interval %s)", want, took, interval)
		}
		checkChangeEvent(t, m, id, st.field, st.from, st.to, after.UpdatedAt)
	}
	if m, err := sub.NextMsg(2 * interval); err == nil {
		t.Errorf("unexpected extra event %s", m.Subject)
	}
}

// checkChangeEvent checks a change event of alert id: its id, subject
// attribute, time (the new updatedAt) and data {alert, change}.
func checkChangeEvent(t *testing.T, m *nats.Msg, id, field, from, to string, at time.Time) {
	t.Helper()
	if got, want := m.Header.Get("ce-id"), subjects.ChangeEventID("main", subjects.EntityAlert, id, field, to, at); got != want || m.Header.Get(subjects.HeaderMsgID) != want {
		t.Errorf("ce-id %s, want %s", got, want)
	}
	if got := m.Header.Get("ce-subject"); got != id {
		t.Errorf("ce-subject %s, want the alert id %s", got, id)
	}
	if got, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time")); err != nil || !got.Equal(at) {
		t.Errorf("ce-time %s (%v), want the updatedAt %s", m.Header.Get("ce-time"), err, at)
	}
	if err := schema.ValidateEvent(m.Header.Get("ce-type"), m.Data); err != nil {
		t.Error(err)
	}
	var d events.AlertChanged
	var alert sentinelone.UAMAlert
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Change != (events.Change{Field: field, From: from, To: to}) {
		t.Errorf("change %+v, want %s from %s to %s", d.Change, field, from, to)
	}
	if err := json.Unmarshal(d.Alert, &alert); err != nil || alert.ID != id || !alert.UpdatedAt.Equal(at) {
		t.Errorf("data.alert %s (%v)", d.Alert, err)
	}
}

func TestAlertIngestLateIndexed(t *testing.T) {
	clock := newClock(time.Now().UTC())
	h := newHarness(t, nil, emulator.WithClock(clock.Now), uamSized(10))
	in := h.alertIngester("a", 0)
	h.run(in)
	h.waitPolls(in, 2)
	// Alerts updated a minute ago but indexed only a minute from now (on
	// the emulator's clock, which the test moves): the watermark passes
	// them, the overlap (5 minutes) must still find them.
	at := clock.Now().Add(-time.Minute)
	late := h.emu.AddLateUAMAlerts(7, at, clock.Now().Add(time.Minute))
	fresh := h.emu.AddUAMAlerts(3, time.Time{})
	h.waitPolls(in, 2)
	if n := h.msgs(); n != 13 {
		t.Fatalf("before the late alerts are visible, the stream holds %d events, want 10 + 3", n)
	}
	clock.Advance(2 * time.Minute)
	h.waitPolls(in, 2)
	evs := h.events()
	testparts.CheckExactlyOnceOf(t, evs, subjects.EntityAlert, h.emu.IDs().UAMAlerts)
	for _, id := range append(late, fresh...) {
		if !slices.ContainsFunc(evs, func(e testparts.StreamEvent) bool { return e.Object == id }) {
			t.Errorf("alert %s never published", id)
		}
	}
}

// TestAlertIngestRecoversStateLostAfterPublish is the threat test of the
// same name for alerts: the state a successor recovers comes from the
// alert in the last event (Source.Decode of data.alert).
func TestAlertIngestRecoversStateLostAfterPublish(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, uamSized(3))
	in := h.alertIngester("test", 0)
	failNextCommit(in)
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated crash did not fail the poll")
	}
	id := h.emu.IDs().UAMAlerts[0]
	st, _ := h.emu.UAMAlert(id)
	verdict := "FALSE_POSITIVE_BENIGN"
	if st.AnalystVerdict == verdict {
		verdict = "TRUE_POSITIVE_PHISHING_ATTACK"
	}
	if err := h.emu.UpdateUAMAlert(id, emulator.UAMAlertUpdate{AnalystVerdict: verdict, At: st.UpdatedAt.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// As a successor would: reload from KV, then poll.
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	to := sentinelone.LowerSnake(verdict)
	created := h.count(h.subj.AlertEvent("main", id, subjects.KindCreated, ""))
	changed := h.count(h.subj.AlertEvent("main", id, subjects.KindVerdict, to))
	if created != 1 || changed != 1 {
		t.Fatalf("created %d, verdict.%s %d events; want 1 and 1", created, to, changed)
	}
	// And nothing else: a recovered state that differs from what the poll
	// reads (the stored lower_snake values) would publish changes that
	// never happened.
	if n := h.msgs(); n != 3+1 {
		t.Fatalf("stream holds %d events, want 3 created and 1 change", n)
	}
}

// TestAlertHalt: a console without Unified Alerts (404 or 403 on the
// GraphQL path) halts alert ingestion without making the replica unready
// and asks again after the retry; a refused token halts it until restart;
// anything else is retried with backoff.
func TestAlertHalt(t *testing.T) {
	src := Alerts(nil, 0)
	uam := func(status int) error {
		return &sentinelone.APIError{Method: http.MethodPost, Path: sentinelone.PathUAMGraphQL, StatusCode: status}
	}
	for _, tc := range []struct {
		name  string
		err   error
		halt  bool
		ready bool
		retry time.Duration
	}{
		{"404 on the GraphQL path", uam(http.StatusNotFound), true, true, UAMRetry},
		{"403 on the GraphQL path", uam(http.StatusForbidden), true, true, UAMRetry},
		{"401", uam(http.StatusUnauthorized), true, false, 0},
		{"500", uam(http.StatusInternalServerError), false, false, 0},
		{"404 elsewhere", &sentinelone.APIError{Method: http.MethodGet, Path: "/threats", StatusCode: http.StatusNotFound}, false, false, 0},
		{"GraphQL error", &sentinelone.GraphQLError{Operation: "ListAlerts"}, false, false, 0},
		{"transport", errors.New("connection refused"), false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := src.Halt(tc.err)
			if (h != nil) != tc.halt {
				t.Fatalf("Halt(%v) = %+v, want a halt: %t", tc.err, h, tc.halt)
			}
			if h == nil {
				return
			}
			if h.Ready != tc.ready || h.RetryIn != tc.retry || !errors.Is(h.Err, tc.err) || h.Advice == "" {
				t.Errorf("Halt(%v) = %+v, want ready %t, retry in %s, the error kept", tc.err, h, tc.ready, tc.retry)
			}
		})
	}
	if h := Alerts(nil, time.Minute).Halt(uam(http.StatusNotFound)); h == nil || h.RetryIn != time.Minute {
		t.Errorf("a retry of a minute: %+v", h)
	}
}

// TestAlertIngestResumesWhenUAMComesBack: while the GraphQL path answers
// 404, alert ingestion is halted (ready) and asks again only every retry;
// when the path answers, the backlog is published and the halt cleared.
func TestAlertIngestResumesWhenUAMComesBack(t *testing.T) {
	const retry = 3 * time.Second
	h := newHarness(t, nil, uamSized(30), emulator.WithRequestLog(10000))
	if err := h.emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: http.StatusNotFound, Path: sentinelone.PathUAMGraphQL}); err != nil {
		t.Fatal(err)
	}
	in := h.alertIngester("a", retry)
	h.run(in)
	testparts.WaitFor(t, 10*time.Second, "the halt", func() bool { return in.Halted() != nil })
	halt := in.Halted()
	if !halt.Ready || halt.RetryIn != retry || !errors.Is(halt.Err, sentinelone.ErrUAMUnavailable) {
		t.Fatalf("halt %+v", halt)
	}
	s, err := in.Status(t.Context())
	if err != nil || !s.Leader || s.LastError == "" || s.Watermark != nil {
		t.Fatalf("status %+v (%v): want the leader, the reason, no watermark", s, err)
	}
	calls := h.emu.RequestCount(sentinelone.APIPrefix + sentinelone.PathUAMGraphQL)
	time.Sleep(retry / 3)
	if n := h.emu.RequestCount(sentinelone.APIPrefix + sentinelone.PathUAMGraphQL); n != calls {
		t.Errorf("%d GraphQL calls within a third of the retry (interval %s): the halt must wait for the retry", n-calls, h.cfg.Consoles["main"].Ingest.Interval)
	}
	h.emu.ClearFaults()
	testparts.WaitFor(t, 3*retry, "every alert once the path answers", func() bool { return h.msgs() >= 30 })
	testparts.WaitFor(t, 5*time.Second, "the halt to clear", func() bool { return in.Halted() == nil })
	h.waitPolls(in, 1)
	if s, err := in.Status(t.Context()); err != nil || s.LastError != "" {
		t.Errorf("status after the resumption %+v (%v)", s, err)
	}
	testparts.CheckExactlyOnceOf(t, h.events(), subjects.EntityAlert, h.emu.IDs().UAMAlerts)
}

// TestAlertIngestInBackgroundLane: every GraphQL call alert ingestion makes
// waits for the console's rate limiter in the background lane, behind
// mutating and read actions (DESIGN.md §14), whatever lane the loop's
// context carries.
func TestAlertIngestInBackgroundLane(t *testing.T) {
	h := newHarness(t, nil, uamSized(30))
	lim := sentinelone.NewLaneLimiter(100000, 100000)
	m := h.cfg.Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{BaseURL: m.URL, Token: m.APIToken.Reveal(), Timeout: m.Timeout, RetryMax: -1}, sentinelone.WithLimiter(lim))
	if err != nil {
		t.Fatal(err)
	}
	src := Alerts(client, 0)
	n := 0
	for page, err := range src.Pages(sentinelone.WithLane(t.Context(), sentinelone.LaneRead), time.Time{}, 10) {
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
	}
	s := lim.Stats()
	if n != 30 || s.Granted[sentinelone.LaneBackground] != 3 || s.Served() != 3 {
		t.Errorf("%d alerts in %v calls by lane (indexed by sentinelone.Lane); want 30 in 3 background calls", n, s.Granted)
	}
}
