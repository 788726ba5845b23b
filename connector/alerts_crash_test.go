package connector_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// TestAlertIngestSurvivesSIGKILL is TestIngestSurvivesSIGKILL for Unified
// Alerts: a child connector ingesting a 5,000-alert backlog in pages of 100
// is killed with SIGKILL five times at random points while it publishes;
// between kills alerts are added and others change status. A last child
// runs to completion: every alert has exactly one created event, every
// change of an alert already published is there once, nothing else.
func TestAlertIngestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the connector as a subprocess six times")
	}
	const seeded, rounds = 5000, 5
	start := time.Now()
	srv := testenv.NATSServer(t)
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, UAMAlerts: seeded}))
	nc := testenv.Conn(t, srv)
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	subj, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	stream := cfg.EventsStreamName()
	rnd := rand.New(rand.NewPCG(11, 11))

	// Each round changes alerts no earlier round touched, once each, while
	// no child runs: a change must appear exactly once when the alert's
	// created event was already out with another status; otherwise the
	// created event carries the new status and there is no change event.
	ids := emu.IDs().UAMAlerts
	next := 0
	wantChanges := map[string]bool{}
	var killedAt []uint64
	for round := range rounds {
		before := testenv.StreamMsgs(nc, stream)
		child := startChildMode(t, childAlerts, srv.ClientURL(), emuURL)
		// Kill at a random point of this round's publishing, counted in
		// events rather than time, so that the kills fall inside the backlog
		// however fast ingestion is.
		at := before + 1 + uint64(rnd.IntN(seeded/(2*rounds)))
		testenv.WaitFor(t, 30*time.Second, "the child to publish", func() bool {
			return testenv.StreamMsgs(nc, stream) >= at
		})
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		n := testenv.StreamMsgs(nc, stream)
		killedAt = append(killedAt, n)
		t.Logf("round %d: killed; stream holds %d events", round, n)
		emu.AddUAMAlerts(20, time.Time{})
		for range 20 {
			id := ids[next]
			next += 37 // spread over the backlog: some published, some not yet
			before, _ := emu.UAMAlert(id)
			to := sentinelone.UAMStatusResolved
			if before.Status == to {
				to = sentinelone.UAMStatusInProgress
			}
			at := time.Now().UTC()
			if !at.After(before.UpdatedAt.Add(time.Millisecond)) {
				at = before.UpdatedAt.Add(2 * time.Millisecond)
			}
			if err := emu.UpdateUAMAlert(id, emulator.UAMAlertUpdate{Status: to, At: at}); err != nil {
				t.Fatal(err)
			}
			after, _ := emu.UAMAlert(id)
			if status, ok := publishedAlertStatus(t, nc, stream, subj, id); ok && status != to {
				wantChanges[subjects.ChangeEventID("main", subjects.EntityAlert, id, events.FieldStatus, sentinelone.LowerSnake(to), after.UpdatedAt)] = true
			}
		}
	}
	t.Logf("%d changes to alerts already published", len(wantChanges))
	// The kills must have fallen inside the backlog, or the test shows
	// nothing about crashes while publishing it.
	if inside := killedAt[rounds-2]; inside >= seeded {
		t.Fatalf("the stream held %d events at the fourth kill: the kills came after the %d-alert backlog (%v)", inside, seeded, killedAt)
	}
	// A last run to completion.
	child := startChildMode(t, childAlerts, srv.ClientURL(), emuURL)
	defer func() { _ = child.Process.Signal(os.Interrupt); _ = child.Wait() }()
	all := emu.IDs().UAMAlerts
	checkCrashStream(t, nc, cfg, subjects.EntityAlert, all, wantChanges)
	t.Logf("%d alerts, %d kills at %v events, %d changes: 0 lost, 0 duplicated, in %s",
		len(all), rounds, killedAt, len(wantChanges), time.Since(start).Round(100*time.Millisecond))
}

// publishedAlertStatus returns the status (UAM's UPPER_SNAKE) in the
// created event of alert id, and whether there is one.
func publishedAlertStatus(t *testing.T, nc *nats.Conn, stream string, subj subjects.Subjects, id string) (string, bool) {
	t.Helper()
	data, ok := lastEventData(t, nc, stream, subj.AlertEvent("main", id, subjects.KindCreated, ""))
	if !ok {
		return "", false
	}
	var d events.AlertCreated
	var a sentinelone.UAMAlert
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(d.Alert, &a); err != nil {
		t.Fatal(err)
	}
	return a.Status, true
}
