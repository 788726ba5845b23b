package connector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// streamEvent is one event read back from the stream.
type streamEvent struct {
	Seq     uint64
	Subject string
	ID      string // Nats-Msg-Id = CloudEvents id
	Type    string
	Threat  string // threat id (CloudEvents subject)
}

// readStream reads every event of the events stream.
func readStream(t testing.TB, nc *nats.Conn, stream string) []streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := info.State.Msgs
	if total == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []streamEvent
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for uint64(len(out)) < total {
		m, err := it.Next()
		if err != nil {
			t.Fatalf("read stream after %d of %d: %v", len(out), total, err)
		}
		md, _ := m.Metadata()
		h := m.Headers()
		out = append(out, streamEvent{
			Seq: md.Sequence.Stream, Subject: m.Subject(), ID: h.Get(subjects.HeaderMsgID),
			Type: h.Get("ce-type"), Threat: h.Get("ce-subject"),
		})
	}
	return out
}

// checkExactlyOnce fails the test when an event id appears twice, or when a
// threat of want has no created event or more than one.
func checkExactlyOnce(t testing.TB, events []streamEvent, want []string) {
	t.Helper()
	ids := map[string]int{}
	created := map[string]int{}
	for _, e := range events {
		ids[e.ID]++
		if e.Type == subjects.TypeThreatCreated {
			created[e.Threat]++
		}
	}
	dups := 0
	for id, n := range ids {
		if n > 1 {
			dups++
			if dups < 5 {
				t.Errorf("event %s published %d times", id, n)
			}
		}
	}
	gaps := 0
	for _, id := range want {
		if created[id] != 1 {
			gaps++
			if gaps < 5 {
				t.Errorf("threat %s has %d created events, want 1", id, created[id])
			}
		}
	}
	if dups+gaps > 0 || len(created) != len(want) {
		t.Fatalf("%d duplicate ids, %d threats without exactly one created event, %d threats created, %d expected", dups, gaps, len(created), len(want))
	}
}

func TestIngestBacklogExactlyOnce(t *testing.T) {
	const n = 25000
	env := testenv.Start(t, testenv.IngestOn, emulator.WithSizes(emulator.Sizes{Sites: 2, GroupsPerSite: 2, Agents: 50, Threats: n}))
	want := env.Emu.IDs().Threats
	if len(want) != n {
		t.Fatalf("emulator seeded %d threats", len(want))
	}
	checkTies(t, env.Emu, want)
	testenv.WaitFor(t, 120*time.Second, "the backlog in the stream", func() bool {
		return testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName()) >= n
	})
	// One more poll must add nothing.
	waitPolls(t, env, 2)
	events := readStream(t, env.NC, env.Cfg.EventsStreamName())
	if len(events) != n {
		t.Errorf("stream holds %d events, want %d created events", len(events), n)
	}
	checkExactlyOnce(t, events, want)
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

// waitPolls waits until the leader has completed k more polls.
func waitPolls(t testing.TB, env *testenv.Env, k int) {
	t.Helper()
	start := lastPoll(t, env)
	seen := 0
	prev := start
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more polls", k), func() bool {
		lp := lastPoll(t, env)
		if lp.After(prev) {
			seen++
			prev = lp
		}
		return seen >= k
	})
}

func lastPoll(t testing.TB, env *testenv.Env) time.Time {
	r := env.Call(t, "ingest.status", `{}`)
	if r.Err != nil {
		t.Fatalf("ingest.status: %d %s", r.Err.Code, r.Err.Message)
	}
	var s handlers.IngestStatusReply
	if err := json.Unmarshal(r.Event.Data, &s); err != nil {
		t.Fatal(err)
	}
	if s.LastPollAt == nil {
		return time.Time{}
	}
	return *s.LastPollAt
}

func TestIngestChangesArriveWithinTwoIntervals(t *testing.T) {
	env := testenv.Start(t, testenv.IngestOn, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 20}))
	ids := env.Emu.IDs().Threats
	testenv.WaitFor(t, 20*time.Second, "the seeded threats", func() bool {
		return testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName()) >= uint64(len(ids))
	})
	interval := env.Cfg.Consoles["main"].Ingest.Interval
	// A threat that is unresolved, undefined and not mitigated, so that each
	// step below is a change.
	id := ""
	for _, tid := range ids {
		st, _ := env.Emu.Threat(tid)
		if st.IncidentStatus == "unresolved" && st.AnalystVerdict == "undefined" && st.MitigationStatus == "not_mitigated" {
			id = tid
			break
		}
	}
	if id == "" {
		id = ids[0]
		if err := env.Emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: "unresolved", AnalystVerdict: "undefined", MitigationStatus: "not_mitigated", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		waitPolls(t, env, 2)
	}
	sub, err := env.NC.SubscribeSync(env.Connector.Subjects().EventsWildcard())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		u       emulator.ThreatUpdate
		subject string
		typ     string
	}{
		{emulator.ThreatUpdate{IncidentStatus: "in_progress"}, "status.in_progress", subjects.TypeThreatStatusChanged},
		{emulator.ThreatUpdate{AnalystVerdict: "true_positive"}, "verdict.true_positive", subjects.TypeThreatVerdictChanged},
		{emulator.ThreatUpdate{MitigationStatus: "mitigated"}, "mitigation.mitigated", subjects.TypeThreatMitigationChanged},
		{emulator.ThreatUpdate{IncidentStatus: "resolved"}, "status.resolved", subjects.TypeThreatResolved},
		{emulator.ThreatUpdate{IncidentStatus: "in_progress"}, "status.in_progress", subjects.TypeThreatStatusChanged}, // A→B→A: a new fact
	}
	for _, st := range steps {
		before, _ := env.Emu.Threat(id)
		// A distinct, later updatedAt for each step, as a console sets it.
		st.u.At = time.Now().UTC()
		if !st.u.At.After(before.UpdatedAt) {
			st.u.At = before.UpdatedAt.Add(time.Millisecond)
		}
		changed := time.Now()
		if err := env.Emu.UpdateThreat(id, st.u); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(2*interval + 2*time.Second)
		if err != nil {
			t.Fatalf("%s: no event: %v", st.subject, err)
		}
		took := time.Since(changed)
		want := env.Connector.Subjects().Prefix() + ".main.event.threat." + id + "." + st.subject
		if m.Subject != want || m.Header.Get("ce-type") != st.typ {
			t.Fatalf("got %s (%s), want %s (%s)", m.Subject, m.Header.Get("ce-type"), want, st.typ)
		}
		if took > 2*interval+time.Second {
			t.Errorf("%s arrived after %s (interval %s)", st.subject, took, interval)
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
	env := testenv.Start(t, testenv.IngestOn, emulator.WithClock(clock.Now), emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 10}))
	waitPolls(t, env, 2)
	// Threats updated a minute ago but indexed only in a few seconds: the
	// watermark passes them, the overlap must still find them.
	at := clock.Now().Add(-time.Minute)
	late := env.Emu.AddLateThreats(7, at, clock.Now().Add(2*time.Second))
	fresh := env.Emu.AddThreats(3, time.Time{})
	waitPolls(t, env, 2)
	clock.Advance(3 * time.Second)
	waitPolls(t, env, 2)
	events := readStream(t, env.NC, env.Cfg.EventsStreamName())
	want := append(env.Emu.IDs().Threats[:0:0], env.Emu.IDs().Threats...)
	checkExactlyOnce(t, events, want)
	for _, id := range append(late, fresh...) {
		found := false
		for _, e := range events {
			found = found || e.Threat == id
		}
		if !found {
			t.Errorf("threat %s never published", id)
		}
	}
}

func TestIngestTwoReplicasHandOver(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 10, Threats: 3000}))
	cfg := testenv.Config(srv.ClientURL(), url)
	testenv.IngestOn(cfg)
	ttl := 1500 * time.Millisecond
	a := testenv.Connector(t, cfg, connector.WithLeaseTTL(ttl))
	b := testenv.Connector(t, cfg, connector.WithLeaseTTL(ttl))
	nc := testenv.Conn(t, srv)
	testenv.WaitFor(t, 30*time.Second, "a leader", func() bool { return a.IngestLeader("main") != b.IngestLeader("main") })
	leader, other := a, b
	if b.IngestLeader("main") {
		leader, other = b, a
	}
	// Kill the leader the hard way: its connection goes, it cannot renew
	// nor release, so the lease must expire.
	time.Sleep(100 * time.Millisecond)
	leader.Conn().Close()
	killed := time.Now()
	testenv.WaitFor(t, 3*ttl, "the other replica to take over", func() bool { return other.IngestLeader("main") })
	t.Logf("handover after %s (lease TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
	added := emu.AddThreats(50, time.Time{})
	testenv.WaitFor(t, 30*time.Second, "every threat", func() bool {
		return testenv.StreamMsgs(nc, cfg.EventsStreamName()) >= uint64(3000+len(added))
	})
	time.Sleep(cfg.Consoles["main"].Ingest.Interval * 3)
	events := readStream(t, nc, cfg.EventsStreamName())
	ids := emu.IDs().Threats
	sort.Strings(ids)
	checkExactlyOnce(t, events, ids)
}

func TestIngestStopsOnRefusedToken(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		m := c.Consoles["main"]
		m.APIToken = config.NewSecret("not-the-token")
		c.Consoles["main"] = m
	})
	var s handlers.IngestStatusReply
	testenv.WaitFor(t, 10*time.Second, "ingest.status to report the refused token", func() bool {
		r := env.Call(t, "ingest.status", `{}`)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		_ = json.Unmarshal(r.Event.Data, &s)
		return s.LastError != ""
	})
	if !strings.Contains(s.LastError, "401") || s.Watermark != nil {
		t.Errorf("status %+v: want a 401 and no watermark", s)
	}
	calls := env.Emu.RequestCount("/web/api/v2.1/threats")
	time.Sleep(5 * env.Cfg.Consoles["main"].Ingest.Interval)
	if n := env.Emu.RequestCount("/web/api/v2.1/threats"); n != calls {
		t.Errorf("ingestion kept calling SentinelOne with a refused token: %d more calls", n-calls)
	}
	resp, err := http.Get("http://" + env.Connector.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "ingestion stopped") {
		t.Errorf("/readyz %d %s", resp.StatusCode, body)
	}
	if strings.Contains(s.LastError, "not-the-token") || strings.Contains(string(body), "not-the-token") {
		t.Error("the token leaked into the status")
	}
}

func TestIngestBacksOffAndLosesNothing(t *testing.T) {
	env := testenv.Start(t, testenv.IngestOn, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 2500}))
	if err := env.Emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Path: "/threats", Rate: 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := env.Emu.Inject(emulator.Fault{Kind: emulator.FaultMalformed, Path: "/threats", Rate: 0.2}); err != nil {
		t.Fatal(err)
	}
	env.Emu.AddThreats(300, time.Time{})
	time.Sleep(2 * time.Second)
	env.Emu.ClearFaults()
	want := env.Emu.IDs().Threats
	testenv.WaitFor(t, 60*time.Second, "every threat", func() bool {
		return testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName()) >= uint64(len(want))
	})
	waitPolls(t, env, 2)
	checkExactlyOnce(t, readStream(t, env.NC, env.Cfg.EventsStreamName()), want)
}
