package ingest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/subjects"
)

// startIngester returns a harness with n threats and an ingester of them,
// its loop off: the test drives load and poll.
func startIngester(t *testing.T, n int) (*harness, *Ingester) {
	t.Helper()
	h := newHarness(t, nil, sized(n))
	return h, h.ingester("test")
}

// otherVerdict is an analyst verdict threat id does not have.
func otherVerdict(emu *emulator.Emulator, id string) string {
	if st, _ := emu.Threat(id); st.AnalystVerdict != "false_positive" {
		return "false_positive"
	}
	return "suspicious"
}

// TestIngestRecoversStateLostAfterPublish fails the commit after the events
// are acknowledged and before the states are written (what a crash there
// leaves), then changes the threat: the change must still be published,
// once, and the threat must not be announced as created again.
func TestIngestRecoversStateLostAfterPublish(t *testing.T) {
	ctx := context.Background()
	h, in := startIngester(t, 3)
	failNextCommit(in)
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated crash did not fail the poll")
	}
	id := h.emu.IDs().Threats[0]
	verdict := otherVerdict(h.emu, id)
	if err := h.emu.UpdateThreat(id, emulator.ThreatUpdate{AnalystVerdict: verdict, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	// As a successor would: reload from KV, then poll.
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	created := h.count(h.subj.ThreatEvent("main", id, subjects.KindCreated, ""))
	changed := h.count(h.subj.ThreatEvent("main", id, subjects.KindVerdict, verdict))
	if created != 1 || changed != 1 {
		t.Fatalf("created %d, verdict.%s %d events; want 1 and 1", created, verdict, changed)
	}
}

// A threat published by a failed commit, recovered unchanged by the next
// poll, must have its state stored then: the watermark moves past it, and
// after a reload its next change must not be taken for a new threat.
func TestIngestStoresRecoveredUnchangedState(t *testing.T) {
	ctx := context.Background()
	h, in := startIngester(t, 3)
	failNextCommit(in)
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated failure did not fail the poll")
	}
	if err := in.poll(ctx); err != nil { // recovers the three, unchanged
		t.Fatal(err)
	}
	h.emu.AddThreats(1, time.Time{}) // moves the watermark past the three
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	in.cfg.Overlap = time.Millisecond
	if err := in.load(ctx); err != nil { // a successor
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	id := h.emu.IDs().Threats[0]
	verdict := otherVerdict(h.emu, id)
	if err := h.emu.UpdateThreat(id, emulator.ThreatUpdate{AnalystVerdict: verdict, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.count(h.subj.ThreatEvent("main", id, subjects.KindVerdict, verdict)); n != 1 {
		t.Fatalf("%d verdict.%s events, want 1", n, verdict)
	}
}

// A change published by a failed commit (its state not stored), then a
// further change before the retry: the second event must go from the
// first's value, not from the stored one.
func TestIngestRecoversChangePublishedWithoutState(t *testing.T) {
	ctx := context.Background()
	h, in := startIngester(t, 3)
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	id := h.emu.IDs().Threats[0]
	st, _ := h.emu.Threat(id)
	first, second := "in_progress", "resolved"
	if st.IncidentStatus == first {
		first = "unresolved"
	}
	if err := h.emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: first, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	failNextCommit(in)
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated failure did not fail the poll")
	}
	if err := h.emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: second, At: time.Now().UTC().Add(time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := h.st.Events().GetLastMsgForSubject(ctx, h.subj.ThreatEvent("main", id, subjects.KindStatus, second))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"from":"` + first + `"`; !bytes.Contains(m.Data, []byte(want)) {
		t.Fatalf("status.%s event %s; want it %s", second, m.Data[max(0, len(m.Data)-120):], want)
	}
}
