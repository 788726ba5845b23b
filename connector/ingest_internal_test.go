package connector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/subjects"
)

// TestIngestRecoversStateLostAfterPublish fails the commit after the events
// are acknowledged and before the states are written (what a crash there
// leaves), then changes the threat: the change must still be published,
// once, and the threat must not be announced as created again.
func TestIngestRecoversStateLostAfterPublish(t *testing.T) {
	c, emu := startInternal(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	in := c.ingesters["main"]
	in.cfg.FirstFetch = 24 * 365 * time.Hour
	crashes := 1
	in.afterPublish = func() error {
		if crashes > 0 {
			crashes--
			return errors.New("simulated crash after publish")
		}
		return nil
	}
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err == nil {
		t.Fatal("the simulated crash did not fail the poll")
	}
	id := emu.IDs().Threats[0]
	if st, _ := emu.Threat(id); st.AnalystVerdict == "false_positive" {
		t.Fatalf("seeded threat %s already has the verdict this test sets", id)
	}
	if err := emu.UpdateThreat(id, emulator.ThreatUpdate{AnalystVerdict: "false_positive", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	// As a successor would: reload from KV, then poll.
	if err := in.load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.poll(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(c.nc)
	s, _ := js.Stream(ctx, c.cfg.Streams.Events.Name)
	info, _ := s.Info(ctx, jetstream.WithSubjectFilter(c.subj.ConsoleEvents("main")))
	counts := info.State.Subjects
	created := c.subj.ThreatEvent("main", id, subjects.KindCreated, "")
	changed := c.subj.ThreatEvent("main", id, subjects.KindVerdict, "false_positive")
	if counts[created] != 1 || counts[changed] != 1 {
		t.Fatalf("created %d, verdict.false_positive %d events; want 1 and 1 (all: %v)", counts[created], counts[changed], counts)
	}
}
