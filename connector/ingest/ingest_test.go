package ingest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/subjects"
)

func TestIngestBacklogExactlyOnce(t *testing.T) {
	const n = 25000
	h := newHarness(t, nil, emulator.WithSizes(emulator.Sizes{Sites: 2, GroupsPerSite: 2, Agents: 50, Threats: n}))
	want := h.emu.IDs().Threats
	if len(want) != n {
		t.Fatalf("emulator seeded %d threats", len(want))
	}
	checkTies(t, h.emu, want)
	in := h.ingester("a")
	h.run(in)
	testparts.WaitFor(t, 120*time.Second, "the backlog in the stream", func() bool { return h.msgs() >= n })
	// One more poll must add nothing.
	h.waitPolls(in, 2)
	events := h.events()
	if len(events) != n {
		t.Errorf("stream holds %d events, want %d created events", len(events), n)
	}
	testparts.CheckExactlyOnce(t, events, want)
	checkEventObjects(t, h)
}

// checkEventObjects: every event carries the object it is about. Items
// share their page's answer (4 MB for 1000 threats) and are dropped as soon
// as their events are made, while the next page is read: an event built
// from the wrong bytes would carry another threat, or broken JSON.
func checkEventObjects(t *testing.T, h *harness) {
	t.Helper()
	msgs, err := testparts.StreamMessages(t.Context(), h.nc, h.cfg.EventsStreamName())
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, m := range msgs {
		ev, err := ce.Decode(m.Headers(), m.Data())
		var data map[string]struct {
			ID string `json:"id"`
		}
		if err == nil {
			err = json.Unmarshal(ev.Data, &data)
		}
		if got := data[string(subjects.EntityThreat)].ID; err != nil || got != ev.Subject {
			if bad++; bad < 5 {
				t.Errorf("event %s about %s carries threat %q (%v)", ev.ID, ev.Subject, got, err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d events carry another object than theirs", bad, len(msgs))
	}
}

// checkTies asserts that the seed makes threats share updatedAt values, so
// page edges fall inside runs of equal timestamps.
func checkTies(t testing.TB, emu *emulator.Emulator, ids []string) {
	t.Helper()
	seen := map[time.Time]int{}
	for _, id := range ids {
		s, _ := emu.Threat(id)
		seen[s.UpdatedAt]++
	}
	maxRun := 0
	for _, n := range seen {
		maxRun = max(maxRun, n)
	}
	if maxRun < 3 || len(seen) == len(ids) {
		t.Fatalf("seeded threats have no ties in updatedAt (longest run %d)", maxRun)
	}
}

func TestIngestChangesArriveWithinTwoIntervals(t *testing.T) {
	h := newHarness(t, nil, sized(20))
	ids := h.emu.IDs().Threats
	in := h.ingester("a")
	h.run(in)
	testparts.WaitFor(t, 20*time.Second, "the seeded threats", func() bool { return h.msgs() >= uint64(len(ids)) })
	interval := h.cfg.Consoles["main"].Ingest.Interval
	// A threat that is unresolved, undefined and not mitigated, so that each
	// step below is a change.
	id := ""
	for _, tid := range ids {
		st, _ := h.emu.Threat(tid)
		if st.IncidentStatus == "unresolved" && st.AnalystVerdict == "undefined" && st.MitigationStatus == "not_mitigated" {
			id = tid
			break
		}
	}
	if id == "" {
		id = ids[0]
		if err := h.emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: "unresolved", AnalystVerdict: "undefined", MitigationStatus: "not_mitigated", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		h.waitPolls(in, 2)
	}
	sub, err := h.nc.SubscribeSync(h.subj.EventsWildcard())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		u    emulator.ThreatUpdate
		kind string
		to   string
		typ  string
	}{
		{emulator.ThreatUpdate{IncidentStatus: "in_progress"}, subjects.KindStatus, "in_progress", subjects.TypeThreatStatusChanged},
		{emulator.ThreatUpdate{AnalystVerdict: "true_positive"}, subjects.KindVerdict, "true_positive", subjects.TypeThreatVerdictChanged},
		{emulator.ThreatUpdate{MitigationStatus: "mitigated"}, subjects.KindMitigation, "mitigated", subjects.TypeThreatMitigationChanged},
		{emulator.ThreatUpdate{IncidentStatus: "resolved"}, subjects.KindStatus, "resolved", subjects.TypeThreatResolved},
		{emulator.ThreatUpdate{IncidentStatus: "in_progress"}, subjects.KindStatus, "in_progress", subjects.TypeThreatStatusChanged}, // A→B→A: a new fact
	}
	for _, st := range steps {
		before, _ := h.emu.Threat(id)
		// A distinct, later updatedAt for each step, as a console sets it.
		st.u.At = time.Now().UTC()
		if !st.u.At.After(before.UpdatedAt) {
			st.u.At = before.UpdatedAt.Add(time.Millisecond)
		}
		changed := time.Now()
		if err := h.emu.UpdateThreat(id, st.u); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(2*interval + 2*time.Second)
		if err != nil {
			t.Fatalf("%s.%s: no event: %v", st.kind, st.to, err)
		}
		took := time.Since(changed)
		testparts.CheckEvent(t, m.Subject, m.Header, m.Data)
		want := h.subj.ThreatEvent("main", id, st.kind, st.to)
		if m.Subject != want || m.Header.Get("ce-type") != st.typ {
			t.Fatalf("got %s (%s), want %s (%s)", m.Subject, m.Header.Get("ce-type"), want, st.typ)
		}
		if took > 2*interval+time.Second {
			t.Errorf("%s arrived after %s (interval %s)", want, took, interval)
		}
		var data struct {
			Threat json.RawMessage `json:"threat"`
			Change struct{ Field, From, To string }
		}
		if err := json.Unmarshal(m.Data, &data); err != nil || len(data.Threat) == 0 || data.Change.To == "" || data.Change.From == data.Change.To {
			t.Fatalf("event data %s (%v)", m.Data, err)
		}
		if got := m.Header.Get("ce-time"); !strings.HasPrefix(got, st.u.At.UTC().Format("2006-01-02T15:04:05")) {
			t.Errorf("ce-time %s, want the updatedAt %s", got, st.u.At.UTC())
		}
	}
	if m, err := sub.NextMsg(2 * interval); err == nil {
		t.Errorf("unexpected extra event %s", m.Subject)
	}
}

func TestIngestLateIndexedThreats(t *testing.T) {
	clock := newClock(time.Now().UTC())
	h := newHarness(t, nil, emulator.WithClock(clock.Now), sized(10))
	in := h.ingester("a")
	h.run(in)
	h.waitPolls(in, 2)
	// Threats updated a minute ago but indexed only in a few seconds: the
	// watermark passes them, the overlap must still find them.
	at := clock.Now().Add(-time.Minute)
	late := h.emu.AddLateThreats(7, at, clock.Now().Add(2*time.Second))
	fresh := h.emu.AddThreats(3, time.Time{})
	h.waitPolls(in, 2)
	clock.Advance(3 * time.Second)
	h.waitPolls(in, 2)
	events := h.events()
	testparts.CheckExactlyOnce(t, events, h.emu.IDs().Threats)
	for _, id := range append(late, fresh...) {
		if !slices.ContainsFunc(events, func(e testparts.StreamEvent) bool { return e.Object == id }) {
			t.Errorf("threat %s never published", id)
		}
	}
}

// TestIngestTwoReplicasHandOver: two replicas, each with its connection;
// the leader is killed the hard way (its connection goes: it can neither
// renew nor release), so the lease must expire and the other take over
// with nothing lost or repeated.
func TestIngestTwoReplicasHandOver(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	h := newHarness(t, nil, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 10, Threats: 3000}))
	other := openHarness(t, h.cfg, testparts.Conn(t, h.srv), h.emu)
	a, b := h.ingester("a"), other.ingester("b")
	a.cfg.LeaseTTL, b.cfg.LeaseTTL = ttl, ttl
	h.run(a)
	other.run(b)
	testparts.WaitFor(t, 30*time.Second, "a leader", func() bool { return a.Leader() != b.Leader() })
	leader, next := h, other
	successor := b
	if b.Leader() {
		leader, next, successor = other, h, a
	}
	time.Sleep(100 * time.Millisecond)
	leader.nc.Close()
	killed := time.Now()
	testparts.WaitFor(t, 3*ttl, "the other replica to take over", successor.Leader)
	t.Logf("handover after %s (lease TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
	added := h.emu.AddThreats(50, time.Time{})
	testparts.WaitFor(t, 30*time.Second, "every threat", func() bool { return next.msgs() >= uint64(3000+len(added)) })
	next.waitPolls(successor, 2)
	testparts.CheckExactlyOnce(t, next.events(), h.emu.IDs().Threats)
}

func TestIngestBacksOffAndLosesNothing(t *testing.T) {
	h := newHarness(t, nil, sized(2500))
	if err := h.emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Path: "/threats", Rate: 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.Inject(emulator.Fault{Kind: emulator.FaultMalformed, Path: "/threats", Rate: 0.2}); err != nil {
		t.Fatal(err)
	}
	in := h.ingester("a")
	h.run(in)
	h.emu.AddThreats(300, time.Time{})
	time.Sleep(2 * time.Second)
	h.emu.ClearFaults()
	want := h.emu.IDs().Threats
	testparts.WaitFor(t, 60*time.Second, "every threat", func() bool { return h.msgs() >= uint64(len(want)) })
	h.waitPolls(in, 2)
	testparts.CheckExactlyOnce(t, h.events(), want)
}

// TestIngestStatus: the leader answers from memory, another replica from
// KV, both naming the leader; lagSeconds is rounded to milliseconds.
func TestIngestStatus(t *testing.T) {
	h := newHarness(t, nil, sized(30))
	a, b := h.ingester("a"), h.ingester("b")
	h.run(a)
	testparts.WaitFor(t, 20*time.Second, "every threat", func() bool { return h.msgs() >= 30 })
	h.waitPolls(a, 1)
	ctx := t.Context()
	sa, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sa.Leader || sb.Leader || sa.LeaderID != "a" || sb.LeaderID != "a" {
		t.Errorf("leader %t/%t, leaderId %q/%q: want a, seen by both", sa.Leader, sb.Leader, sa.LeaderID, sb.LeaderID)
	}
	if sa.Published != 30 || sb.Published != 0 {
		t.Errorf("published %d/%d, want 30 by the leader, 0 by the other", sa.Published, sb.Published)
	}
	if sa.Watermark == nil || sb.Watermark == nil || sb.LastPollAt == nil || sb.Watermark.After(*sa.Watermark) {
		t.Fatalf("watermarks %v/%v, last poll %v", sa.Watermark, sb.Watermark, sb.LastPollAt)
	}
	for _, s := range []*float64{sa.LagSeconds, sb.LagSeconds} {
		b, _ := json.Marshal(s)
		if _, frac, _ := strings.Cut(string(b), "."); s == nil || *s < 0 || len(frac) > 3 {
			t.Errorf("lagSeconds %s, want milliseconds without float noise", b)
		}
	}
	if sa.LastError != "" {
		t.Errorf("lastError %q", sa.LastError)
	}
}
