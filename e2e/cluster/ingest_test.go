package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The streams of the default prefix (s1) ingestion and monitors write to,
// as JetStream names them (a bucket's stream is KV_<bucket>).
var (
	defaultSubjects, _ = subjects.New(config.Default().Subjects.Prefix)
	eventsStream       = defaultSubjects.EventsStream()
	stateStream        = "KV_" + defaultSubjects.BucketName(subjects.BucketState)
	leaseStream        = "KV_" + defaultSubjects.BucketName(subjects.BucketLeases)
	monitorsStream     = "KV_" + defaultSubjects.BucketName(subjects.BucketMonitors)
)

func TestIngestionSurvivesLeaderLoss(t *testing.T) {
	const backlog = 1500
	cl := testenv.NATSCluster(t, 3)
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 2, Agents: 20, Threats: backlog}))
	// And slow pages: the backlog's ten pages take about two seconds however
	// fast the connector commits them, so that the first kill comes while it
	// is still being published.
	if err := emu.Inject(emulator.Fault{Path: emulator.PathThreats, Kind: emulator.FaultLatency, Latency: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cfg := clusterConfig(cl, emuURL)
	// Small pages: the backlog takes many commits, so a kill lands in the
	// middle of one.
	ingestOn(cfg, 150)
	// Two replicas: one leads ingestion, the other takes over at the end.
	// A shorter lease TTL (default 9 s) keeps the handover quick: the
	// successor tries to take the lease every TTL/3.
	ttl := connector.WithLeaseTTL(6 * time.Second)
	replicas := []*connector.Connector{testenv.Connector(t, cfg, ttl), testenv.Connector(t, cfg, ttl)}
	c := replicas[0]
	nc := clientConn(t, cl)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := c.Subjects()
	checkReplicas(t, js, eventsStream, stateStream, leaseStream, monitorsStream)

	// The console keeps changing all along: new threats, and status,
	// verdict and mitigation changes to threats old and new.
	churnCtx, stopChurn := context.WithCancel(context.Background())
	var churned sync.WaitGroup
	churned.Go(func() { churn(churnCtx, t, emu) })
	defer func() { stopChurn(); churned.Wait() }()

	msgs := func() uint64 {
		info, err := streamInfo(js, eventsStream)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	testenv.WaitFor(t, 30*time.Second, "ingestion to publish", func() bool { return msgs() >= 300 })

	// Kill the leader of the events stream, then (the first node back) the
	// leader of the state bucket, each while ingestion publishes.
	for round, target := range []string{eventsStream, stateStream} {
		leader := leaderOf(t, js, target, "", 10*time.Second)
		node := cl.Index(leader)
		before := msgs()
		if round == 0 && before >= backlog {
			t.Fatalf("the backlog was published (%d events) before the first kill", before)
		}
		cl.Stop(node)
		down := time.Now() // measured from here: the node is gone
		// New leaders, and ingestion recovered: a poll that began after the
		// node was gone has completed.
		took := sideBySide(40*time.Second, func() bool {
			return cl.StreamLeader(eventsStream) != "" && cl.StreamLeader(target) != ""
		}, func() bool { return pollSince(nc, subj, down) })
		elected, recovered := took[0], took[1]
		if elected < 0 {
			t.Fatalf("no new leaders of %s and %s within 40s of killing %s", eventsStream, target, leader)
		}
		if recovered < 0 {
			t.Fatalf("ingestion did not complete a poll within 40s of killing %s", leader)
		}
		after := msgs()
		if after <= before {
			t.Fatalf("nothing published after killing %s (%d events before, %d after)", leader, before, after)
		}
		t.Logf("killed %s (leader of %s) with %d events in the stream: new leaders after %s, ingestion recovered after %s (%d events)",
			leader, target, before, elected.Round(time.Millisecond), recovered.Round(time.Millisecond), after)
		restarted := time.Now()
		cl.Restart(t, node)
		waitRejoined(t, js, leader, 30*time.Second, eventsStream, stateStream, leaseStream)
		t.Logf("%s restarted and a current replica again after %s", leader, time.Since(restarted).Round(time.Millisecond))
	}

	// Hand ingestion over to the other replica, as a rolling upgrade does:
	// the successor loads the states from KV and resumes from the
	// watermark, so what the failures above left unfinished must be there.
	testenv.WaitFor(t, 20*time.Second, "an ingestion leader", func() bool {
		return replicas[0].IngestLeader("main") || replicas[1].IngestLeader("main")
	})
	leading, next := replicas[0], replicas[1]
	if next.IngestLeader("main") {
		leading, next = next, leading
	}
	handed := time.Now()
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err = leading.Stop(stopCtx)
	cancel()
	if err != nil {
		t.Fatalf("stop the leading replica: %v", err)
	}
	testenv.WaitFor(t, 20*time.Second, "the other replica to lead ingestion", func() bool { return next.IngestLeader("main") })
	tookOver := time.Since(handed)
	// The console goes on changing under the new leader, past its first
	// poll (which reads again behind the watermark).
	waitPollSince(t, nc, subj, time.Now().Add(2*time.Second), 40*time.Second)
	t.Logf("the other replica led ingestion %s after the first stopped", tookOver.Round(time.Millisecond))

	stopChurn()
	churned.Wait()
	// Last, every threat changes once more: a threat whose state the
	// failures left behind the stream (or missing) would now be announced
	// from the wrong value, or taken for new and its change lost.
	swept := sweep(t, emu)
	stoppedAt := time.Now()
	waitPollSince(t, nc, subj, stoppedAt, 40*time.Second)
	t.Logf("changed all %d threats once more", swept)

	events := readEvents(t, js)
	checkEvents(t, emu, events)
}

// churn changes the console until ctx ends: every 100 ms a new threat and
// two changes to random threats.
func churn(ctx context.Context, t testing.TB, emu *emulator.Emulator) {
	rnd := rand.New(rand.NewPCG(1, 2))
	statuses := []string{"unresolved", "in_progress", "resolved"}
	verdicts := []string{"undefined", "true_positive", "false_positive", "suspicious"}
	mitigations := []string{"not_mitigated", "mitigated", "marked_as_benign"}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		emu.AddThreats(1, time.Time{})
		ids := emu.IDs().Threats
		for range 2 {
			id := ids[rnd.IntN(len(ids))]
			before, _ := emu.Threat(id)
			u := emulator.ThreatUpdate{At: time.Now().UTC()}
			if !u.At.After(before.UpdatedAt) {
				u.At = before.UpdatedAt.Add(time.Microsecond)
			}
			switch rnd.IntN(3) {
			case 0:
				u.IncidentStatus = other(rnd, statuses, before.IncidentStatus)
			case 1:
				u.AnalystVerdict = other(rnd, verdicts, before.AnalystVerdict)
			default:
				u.MitigationStatus = other(rnd, mitigations, before.MitigationStatus)
			}
			if err := emu.UpdateThreat(id, u); err != nil {
				t.Error(err)
				return
			}
		}
	}
}

// sweep changes the analyst verdict of every threat and returns how many
// it changed.
func sweep(t testing.TB, emu *emulator.Emulator) int {
	t.Helper()
	rnd := rand.New(rand.NewPCG(3, 4))
	verdicts := []string{"undefined", "true_positive", "false_positive", "suspicious"}
	ids := emu.IDs().Threats
	for _, id := range ids {
		before, _ := emu.Threat(id)
		u := emulator.ThreatUpdate{AnalystVerdict: other(rnd, verdicts, before.AnalystVerdict), At: time.Now().UTC()}
		if !u.At.After(before.UpdatedAt) {
			u.At = before.UpdatedAt.Add(time.Microsecond)
		}
		if err := emu.UpdateThreat(id, u); err != nil {
			t.Fatal(err)
		}
	}
	return len(ids)
}

// other picks a value of values other than cur.
func other(rnd *rand.Rand, values []string, cur string) string {
	for {
		if v := values[rnd.IntN(len(values))]; v != cur {
			return v
		}
	}
}

// event is one threat event read back from the stream.
type event struct {
	seq    uint64
	id     string // Nats-Msg-Id
	ceID   string
	typ    string
	threat string // the CloudEvents subject
	// created: the threat's fields when first seen; a change: the change.
	status, verdict, mitigation string
	field, from, to             string
}

// readEvents reads the whole events stream.
func readEvents(t testing.TB, js jetstream.JetStream) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := testparts.StreamMessages(ctx, js.Conn(), eventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	for _, m := range msgs {
		md, _ := m.Metadata()
		h := m.Headers()
		e := event{
			seq: md.Sequence.Stream, id: h.Get(subjects.HeaderMsgID), ceID: h.Get("ce-id"),
			typ: h.Get("ce-type"), threat: h.Get("ce-subject"),
		}
		var d struct {
			Threat struct {
				ThreatInfo struct {
					IncidentStatus   string `json:"incidentStatus"`
					AnalystVerdict   string `json:"analystVerdict"`
					MitigationStatus string `json:"mitigationStatus"`
				} `json:"threatInfo"`
			} `json:"threat"`
			Change struct{ Field, From, To string } `json:"change"`
		}
		if err := json.Unmarshal(m.Data(), &d); err != nil {
			t.Fatalf("event %d (%s): %v", e.seq, e.id, err)
		}
		ti := d.Threat.ThreatInfo
		e.status, e.verdict, e.mitigation = sentinelone.LowerSnake(ti.IncidentStatus), sentinelone.LowerSnake(ti.AnalystVerdict), sentinelone.LowerSnake(ti.MitigationStatus)
		e.field, e.from, e.to = d.Change.Field, d.Change.From, d.Change.To
		out = append(out, e)
	}
	return out
}

// checkEvents compares the stream with the console: every threat created
// once, no id twice, and per threat and field a chain of changes from the
// created event's value to the console's current one, each change starting
// where the previous one ended.
func checkEvents(t testing.TB, emu *emulator.Emulator, events []event) {
	t.Helper()
	type chain struct{ status, verdict, mitigation string }
	chains := map[string]*chain{}
	ids := map[string]uint64{}
	creates, changes, bad := 0, 0, 0
	fail := func(format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, e := range events {
		if e.id == "" || e.id != e.ceID {
			fail("event %d: Nats-Msg-Id %q, ce-id %q", e.seq, e.id, e.ceID)
		}
		if seq, ok := ids[e.id]; ok {
			fail("event %s twice: sequences %d and %d", e.id, seq, e.seq)
			continue
		}
		ids[e.id] = e.seq
		c := chains[e.threat]
		if e.typ == subjects.TypeThreatCreated {
			creates++
			if c != nil {
				fail("threat %s created twice (sequence %d)", e.threat, e.seq)
				continue
			}
			chains[e.threat] = &chain{e.status, e.verdict, e.mitigation}
			continue
		}
		changes++
		if c == nil {
			fail("event %s (sequence %d) before its threat's created event", e.id, e.seq)
			continue
		}
		var cur *string
		switch e.field {
		case "incidentStatus":
			cur = &c.status
		case "analystVerdict":
			cur = &c.verdict
		case "mitigationStatus":
			cur = &c.mitigation
		default:
			fail("event %s: unknown change field %q", e.id, e.field)
			continue
		}
		if e.from != *cur {
			fail("threat %s: %s event %s goes from %q but the stream had it at %q: a change is missing or out of order; its events: %s", e.threat, e.field, e.id, e.from, *cur, threatEvents(events, e.threat))
		}
		*cur = e.to
	}
	want := emu.IDs().Threats
	for _, id := range want {
		c := chains[id]
		if c == nil {
			fail("threat %s has no created event", id)
			continue
		}
		s, _ := emu.Threat(id)
		if c.status != s.IncidentStatus || c.verdict != s.AnalystVerdict || c.mitigation != s.MitigationStatus {
			fail("threat %s (created %s, updated %s): the stream ends at %s/%s/%s, the console has %s/%s/%s; its events: %s", id,
				s.CreatedAt.Format(time.StampMicro), s.UpdatedAt.Format(time.StampMicro),
				c.status, c.verdict, c.mitigation, s.IncidentStatus, s.AnalystVerdict, s.MitigationStatus, threatEvents(events, id))
		}
	}
	if len(chains) != len(want) {
		fail("%d threats created in the stream, %d in the console", len(chains), len(want))
	}
	t.Logf("stream: %d events (%d created, %d changes) for %d threats; %d problems", len(events), creates, changes, len(want), bad)
	if bad > 0 {
		t.FailNow()
	}
}

// threatEvents describes the events of one threat, for a failure message.
func threatEvents(events []event, threat string) string {
	var b strings.Builder
	for _, e := range events {
		if e.threat != threat {
			continue
		}
		if e.typ == subjects.TypeThreatCreated {
			fmt.Fprintf(&b, "\n\t#%d created %s/%s/%s", e.seq, e.status, e.verdict, e.mitigation)
		} else {
			fmt.Fprintf(&b, "\n\t#%d %s %s -> %s (%s)", e.seq, e.field, e.from, e.to, e.id)
		}
	}
	return b.String()
}
