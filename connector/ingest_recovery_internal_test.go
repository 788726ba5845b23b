package connector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/subjects"
)

// startIngester runs NATS, an emulator with n threats and a connector whose
// ingestion loop is off, and returns the console's ingester to drive by hand.
func startIngester(t *testing.T, n int) (*Connector, *ingester, *emulator.Emulator) {
	t.Helper()
	c, emu := startInternal(t, n, nil)
	in := c.ingesters["main"]
	in.cfg.FirstFetch = 24 * 365 * time.Hour
	return c, in, emu
}

// failNextCommit makes the next commit fail after its events are
// acknowledged and before the states are written.
func failNextCommit(in *ingester) {
	fail := true
	in.afterPublish = func() error {
		if fail {
			fail = false
			return errors.New("simulated failure after publish")
		}
		return nil
	}
}

func eventCount(t *testing.T, c *Connector, subject string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, _ := jetstream.New(c.nc)
	s, err := js.Stream(ctx, c.cfg.Streams.Events.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(c.subj.ConsoleEvents("main")))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// A threat published by a failed commit, recovered unchanged by the next
// poll, must have its state stored then: the watermark moves past it, and
// after a reload its next change must not be taken for a new threat.
func TestIngestStoresRecoveredUnchangedState(t *testing.T) {
	ctx := context.Background()
	c, in, emu := startIngester(t, 3)
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
	emu.AddThreats(1, time.Time{}) // moves the watermark past the three
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
	id := emu.IDs().Threats[0]
	if st, _ := emu.Threat(id); st.AnalystVerdict == "false_positive" {
		t.Fatalf("seeded threat %s already has the verdict this test sets", id)
	}
	if err := emu.UpdateThreat(id, emulator.ThreatUpdate{AnalystVerdict: "false_positive", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := eventCount(t, c, c.subj.ThreatEvent("main", id, subjects.KindVerdict, "false_positive")); n != 1 {
		t.Fatalf("%d verdict.false_positive events, want 1", n)
	}
}

// A change published by a failed commit (its state not stored), then a
// further change before the retry: the second event must go from the
// first's value, not from the stored one.
func TestIngestRecoversChangePublishedWithoutState(t *testing.T) {
	ctx := context.Background()
	c, in, emu := startIngester(t, 3)
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	id := emu.IDs().Threats[0]
	st, _ := emu.Threat(id)
	first, second := "in_progress", "resolved"
	if st.IncidentStatus == first {
		first = "unresolved"
	}
	if err := emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: first, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	failNextCommit(in)
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated failure did not fail the poll")
	}
	if err := emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: second, At: time.Now().UTC().Add(time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(c.nc)
	s, _ := js.Stream(ctx, c.cfg.Streams.Events.Name)
	m, err := s.GetLastMsgForSubject(ctx, c.subj.ThreatEvent("main", id, subjects.KindStatus, second))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"from":"` + first + `"`; !bytes.Contains(m.Data, []byte(want)) {
		t.Fatalf("status.%s event %s; want it %s", second, m.Data[max(0, len(m.Data)-120):], want)
	}
}

// Work that gives up on its own (ingestion after a failed compare-and-set)
// releases the lease: it is taken again after TTL/3, not after the TTL.
func TestLeaseReleasedWhenWorkGivesUp(t *testing.T) {
	c, _, _ := startIngester(t, 1)
	const ttl = 3 * time.Second
	kv, err := c.st.js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "LEASE_TEST", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	l := &lease{kv: kv, key: "k", holder: "h", log: slog.New(slog.DiscardHandler), ttl: ttl}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	starts := make(chan time.Time, 2)
	go l.hold(ctx, func(context.Context) {
		starts <- time.Now()
		if len(starts) == 2 {
			cancel()
		}
	})
	first := <-starts
	select {
	case second := <-starts:
		if d := second.Sub(first); d > ttl/3+time.Second {
			t.Fatalf("lease taken again after %s", d)
		}
	case <-time.After(2 * ttl):
		t.Fatal("lease not taken again")
	}
}
