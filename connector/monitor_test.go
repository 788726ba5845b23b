package connector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// monitorEvent is one monitor outcome read back from the stream.
type monitorEvent struct {
	Subject, ID, Type, Source, ThreatID, CorrelationID, TraceParent string
	Time                                                            time.Time
	Data                                                            struct {
		MonitorID string          `json:"monitorId"`
		ThreatID  string          `json:"threatId"`
		Threat    json.RawMessage `json:"threat"`
		StartedAt time.Time       `json:"startedAt"`
		EndedAt   time.Time       `json:"endedAt"`
	}
}

// Outcome is the last subject token.
func (e monitorEvent) Outcome() string { return e.Subject[strings.LastIndexByte(e.Subject, '.')+1:] }

// monitors drives the monitor actions of console main of a running system.
type monitors struct {
	t   testing.TB
	nc  *nats.Conn
	sub subjects.Subjects
	cfg *config.Config
}

func newMonitors(t testing.TB, nc *nats.Conn, cfg *config.Config) *monitors {
	sub, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	return &monitors{t: t, nc: nc, sub: sub, cfg: cfg}
}

// call sends action with data as a binary CloudEvent with id (new when "").
func (m *monitors) call(action, id, data string) *connector.Reply {
	m.t.Helper()
	return m.callFrom("/monitor-test", action, id, data)
}

// callFrom is call with the request's source.
func (m *monitors) callFrom(source, action, id, data string) *connector.Reply {
	m.t.Helper()
	req := newRequest(action, data)
	if id != "" {
		req.ID = id
	}
	req.Source = source
	h, body, err := ce.Encode(req, ce.ModeBinary)
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	msg, err := m.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: m.sub.Action("main", action), Header: h, Data: body})
	if err != nil {
		m.t.Fatalf("%s: %v", action, err)
	}
	r, err := connector.ParseReply(msg)
	if err != nil {
		m.t.Fatal(err)
	}
	return r
}

// start starts a monitor and returns its reply; id "" is a new request.
func (m *monitors) start(id, data string) handlers.MonitorReply {
	m.t.Helper()
	r := m.call(handlers.ActionThreatsMonitor, id, data)
	if r.Err != nil {
		m.t.Fatalf("threats.monitor %s: %d %s", data, r.Err.Code, r.Err.Message)
	}
	var rep handlers.MonitorReply
	if err := json.Unmarshal(r.Event.Data, &rep); err != nil {
		m.t.Fatal(err)
	}
	return rep
}

func (m *monitors) list(data string) handlers.ListReply {
	m.t.Helper()
	r := m.call(handlers.ActionMonitorsList, "", data)
	if r.Err != nil {
		m.t.Fatalf("monitors.list: %d %s", r.Err.Code, r.Err.Message)
	}
	var l handlers.ListReply
	if err := json.Unmarshal(r.Event.Data, &l); err != nil {
		m.t.Fatal(err)
	}
	return l
}

func (m *monitors) cancel(id string) *connector.Reply {
	m.t.Helper()
	return m.call(handlers.ActionMonitorsCancel, "", `{"monitorId":"`+id+`"}`)
}

// events reads every monitor event of console main from the stream.
func (m *monitors) events() []monitorEvent {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, _ := jetstream.New(m.nc)
	s, err := js.Stream(ctx, m.cfg.EventsStreamName())
	if err != nil {
		m.t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{m.sub.MonitorWildcard("main", "*")}})
	if err != nil {
		m.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		m.t.Fatal(err)
	}
	var out []monitorEvent
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		m.t.Fatal(err)
	}
	defer it.Stop()
	for range info.NumPending {
		msg, err := it.Next()
		if err != nil {
			m.t.Fatalf("read monitor events: %v", err)
		}
		ev := testenv.CheckEvent(m.t, msg.Subject(), nats.Header(msg.Headers()), msg.Data())
		e := monitorEvent{Subject: msg.Subject(), ID: msg.Headers().Get(subjects.HeaderMsgID), Type: ev.Type, Source: ev.Source,
			ThreatID: ev.Subject, CorrelationID: ev.CorrelationID(), TraceParent: ev.TraceParent(), Time: ev.Time}
		if ev.ID != e.ID {
			m.t.Errorf("event id %q but Nats-Msg-Id %q", ev.ID, e.ID)
		}
		if err := json.Unmarshal(ev.Data, &e.Data); err != nil {
			m.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// outcomes groups the stream's monitor events by monitor id.
func (m *monitors) outcomes() map[string][]monitorEvent {
	out := map[string][]monitorEvent{}
	for _, e := range m.events() {
		out[e.Data.MonitorID] = append(out[e.Data.MonitorID], e)
	}
	return out
}

// ended waits for monitor id's outcome and returns it.
func (m *monitors) ended(id string, within time.Duration) monitorEvent {
	m.t.Helper()
	var got []monitorEvent
	testenv.WaitFor(m.t, within, "the outcome of monitor "+id, func() bool {
		got = m.outcomes()[id]
		return len(got) > 0
	})
	if len(got) != 1 {
		m.t.Fatalf("monitor %s has %d outcomes: %+v", id, len(got), got)
	}
	return got[0]
}

// records counts the monitor records of console main left in KV (the poll
// cursor aside).
func (m *monitors) records() int {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, _ := jetstream.New(m.nc)
	kv, err := js.KeyValue(ctx, m.sub.BucketName(subjects.BucketMonitors))
	if err != nil {
		m.t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(ctx, subjects.MonitorKeys("main"))
	if err != nil {
		m.t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n
}

// resolve resolves threat id in the emulator and returns its new
// updatedAt. It may run on any goroutine.
func resolve(t testing.TB, emu *emulator.Emulator, id string) time.Time {
	t.Helper()
	if err := emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: "resolved"}); err != nil {
		t.Error(err)
	}
	st, _ := emu.Threat(id)
	return st.UpdatedAt
}

func startMonitorEnv(t testing.TB, edit func(*config.Config)) (*testenv.Env, *monitors) {
	env := testenv.Start(t, edit, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 20}), emulator.WithRequestLog(10000))
	return env, newMonitors(t, env.NC, env.Cfg)
}

func TestMonitorResolves(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	reqID := "req-" + t.Name()
	before := time.Now()
	rep := m.start(reqID, `{"threatId":"`+threat+`","pollInterval":"1s"}`)
	if rep.State != handlers.MonitorWatching || rep.ThreatID != threat || rep.MonitorID == "" {
		t.Fatalf("reply %+v", rep)
	}
	if want := "s1.main.event.monitor." + rep.MonitorID + ".*"; rep.Subject != want {
		t.Errorf("subject %q, want %q", rep.Subject, want)
	}
	if d := rep.Deadline.Sub(before); d < 12*time.Hour-time.Minute || d > 12*time.Hour+time.Minute {
		t.Errorf("deadline %s is not the default timeout (12h) from now", rep.Deadline)
	}
	if l := m.list(`{}`); l.TotalItems != 1 || len(l.Items) != 1 || l.NextCursor != nil || l.Truncated {
		t.Errorf("monitors.list: %+v", l)
	}
	// The outcome is published on the reply's subject.
	sub, err := env.NC.SubscribeSync(rep.Subject)
	if err != nil {
		t.Fatal(err)
	}
	resolvedAt := resolve(t, env.Emu, threat)
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no outcome within 5s of the resolution (poll interval 1s): %v", err)
	}
	testenv.CheckEvent(t, msg.Subject, msg.Header, msg.Data)
	if msg.Subject != m.sub.MonitorEvent("main", rep.MonitorID, subjects.OutcomeResolved) {
		t.Errorf("outcome on %s", msg.Subject)
	}
	e := m.ended(rep.MonitorID, 5*time.Second)
	if e.Type != "s1bridge.monitor.resolved" || e.Source != "/s1bridge/main" || e.ThreatID != threat ||
		e.ID != "main/monitor/"+rep.MonitorID+"/resolved" || e.CorrelationID != reqID {
		t.Errorf("event attributes %+v", e)
	}
	if !e.Time.Equal(resolvedAt) {
		t.Errorf("time %s, want the resolving updatedAt %s", e.Time, resolvedAt)
	}
	var th struct {
		ID         string `json:"id"`
		ThreatInfo struct {
			IncidentStatus string `json:"incidentStatus"`
		} `json:"threatInfo"`
	}
	if err := json.Unmarshal(e.Data.Threat, &th); err != nil || th.ID != threat || th.ThreatInfo.IncidentStatus != "resolved" {
		t.Errorf("event threat %s (%v)", e.Data.Threat, err)
	}
	if e.Data.ThreatID != threat || e.Data.StartedAt.IsZero() || !e.Data.EndedAt.After(e.Data.StartedAt) {
		t.Errorf("event data %+v", e.Data)
	}
	testenv.WaitFor(t, 5*time.Second, "the record to go", func() bool { return m.records() == 0 })
	if l := m.list(`{}`); l.TotalItems != 0 {
		t.Errorf("an ended monitor is listed: %+v", l)
	}
	if r := m.cancel(rep.MonitorID); r.Err == nil || r.Err.Code != handlers.CodeNotFound {
		t.Errorf("cancel of an ended monitor: %+v", r.Err)
	}
	// A repeat of the request starts nothing new and answers as the first
	// time.
	if again := m.start(reqID, `{"threatId":"`+threat+`","pollInterval":"1s"}`); again != rep {
		t.Errorf("repeat after the end: %+v, want %+v", again, rep)
	}
	if m.records() != 0 || len(m.events()) != 1 {
		t.Errorf("the repeat started a monitor")
	}
}

func TestMonitorResolvedAtStart(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	resolvedAt := resolve(t, env.Emu, threat)
	rep := m.start("already-resolved", `{"threatId":"`+threat+`","timeout":"1h"}`)
	if rep.State != handlers.MonitorResolved {
		t.Fatalf("state %q, want resolved", rep.State)
	}
	// The event is in the stream when the reply arrives.
	evs := m.events()
	if len(evs) != 1 || evs[0].Outcome() != subjects.OutcomeResolved || !evs[0].Time.Equal(resolvedAt) {
		t.Fatalf("events %+v", evs)
	}
	if !evs[0].Data.EndedAt.Equal(evs[0].Data.StartedAt) {
		t.Errorf("a monitor resolved at the start ended at %s, started at %s", evs[0].Data.EndedAt, evs[0].Data.StartedAt)
	}
	if n := m.records(); n != 0 {
		t.Errorf("%d records left", n)
	}
	if again := m.start("already-resolved", `{"threatId":"`+threat+`","timeout":"1h"}`); again != rep {
		t.Errorf("repeat: %+v, want %+v", again, rep)
	}
	if n := len(m.events()); n != 1 {
		t.Errorf("%d events after the repeat", n)
	}
}

func TestMonitorTimesOut(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	rep := m.start("", `{"threatId":"`+threat+`","timeout":"1s","pollInterval":"1s"}`)
	e := m.ended(rep.MonitorID, 5*time.Second)
	if e.Outcome() != subjects.OutcomeTimedOut || e.Type != "s1bridge.monitor.timed_out" {
		t.Fatalf("outcome %s (%s)", e.Outcome(), e.Type)
	}
	if !e.Time.Equal(rep.Deadline) {
		t.Errorf("time %s, want the deadline %s", e.Time, rep.Deadline)
	}
	if e.Data.EndedAt.Before(rep.Deadline) || e.Data.EndedAt.Sub(rep.Deadline) > 2*time.Second {
		t.Errorf("ended at %s, deadline %s", e.Data.EndedAt, rep.Deadline)
	}
	var th struct{ ID string }
	if err := json.Unmarshal(e.Data.Threat, &th); err != nil || th.ID != threat {
		t.Errorf("timed_out carries threat %s (%v)", e.Data.Threat, err)
	}
	testenv.WaitFor(t, 5*time.Second, "the record to go", func() bool { return m.records() == 0 })
}

func TestMonitorCancel(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	rep := m.start("to-cancel", `{"threatId":"`+threat+`"}`)
	before := time.Now()
	r := m.cancel(rep.MonitorID)
	if r.Err != nil {
		t.Fatalf("cancel: %d %s", r.Err.Code, r.Err.Message)
	}
	if string(r.Event.Data) != `{"cancelled":true}` {
		t.Errorf("cancel reply %s", r.Event.Data)
	}
	// Published before the reply.
	evs := m.events()
	if len(evs) != 1 || evs[0].Outcome() != subjects.OutcomeCancelled || evs[0].Data.MonitorID != rep.MonitorID {
		t.Fatalf("events %+v", evs)
	}
	if at := evs[0].Time; at.Before(before.Add(-time.Millisecond)) || at.After(time.Now()) || !at.Equal(evs[0].Data.EndedAt) {
		t.Errorf("cancelled at %s (ended %s), want the cancel time", at, evs[0].Data.EndedAt)
	}
	if m.records() != 0 || m.list(`{}`).TotalItems != 0 {
		t.Error("a cancelled monitor is still there")
	}
	if r := m.cancel(rep.MonitorID); r.Err == nil || r.Err.Code != handlers.CodeNotFound {
		t.Errorf("second cancel: %+v", r.Err)
	}
	// Resolving the threat now changes nothing.
	resolve(t, env.Emu, threat)
	time.Sleep(2 * env.Cfg.Consoles["main"].Monitor.PollInterval)
	if n := len(m.events()); n != 1 {
		t.Errorf("%d events: a cancelled monitor ended again", n)
	}
}

func TestMonitorIdempotentStart(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threats := env.Emu.AddThreats(2, time.Time{})
	data := `{"threatId":"` + threats[0] + `","timeout":"2h","pollInterval":"5s"}`
	first := m.start("same-id", data)
	calls := env.Emu.RequestCount("/threats")
	var wg sync.WaitGroup
	replies := make([]handlers.MonitorReply, 8)
	for i := range replies {
		wg.Go(func() { replies[i] = m.start("same-id", data) })
	}
	wg.Wait()
	for _, r := range replies {
		if r != first {
			t.Errorf("repeat %+v, want %+v", r, first)
		}
	}
	if n := env.Emu.RequestCount("/threats") - calls; n != 0 {
		t.Errorf("repeats made %d SentinelOne calls", n)
	}
	if l := m.list(`{}`); l.TotalItems != 1 {
		t.Errorf("%d monitors after repeats", l.TotalItems)
	}
	// Another source may use the same id: it is another request.
	other := m.callFrom("/another-router", handlers.ActionThreatsMonitor, "same-id", data)
	if other.Err != nil {
		t.Fatal(other.Err)
	}
	// The same id for something else is a conflict.
	for _, d := range []string{
		`{"threatId":"` + threats[1] + `","timeout":"2h","pollInterval":"5s"}`,
		`{"threatId":"` + threats[0] + `","timeout":"3h","pollInterval":"5s"}`,
	} {
		r := m.call(handlers.ActionThreatsMonitor, "same-id", d)
		checkError(t, r, handlers.CodeConflict, "same-id")
	}
	// Concurrent first requests with one id start one monitor.
	var got sync.Map
	for i := range 8 {
		wg.Go(func() { got.Store(i, m.start("race-id", `{"threatId":"`+threats[1]+`"}`)) })
	}
	wg.Wait()
	ids := map[string]bool{}
	got.Range(func(_, v any) bool { ids[v.(handlers.MonitorReply).MonitorID] = true; return true })
	if len(ids) != 1 || m.list(`{}`).TotalItems != 3 {
		t.Errorf("concurrent first requests started %d monitors", len(ids))
	}
}

func TestMonitorErrors(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	for _, tc := range []struct {
		action, data string
		code         int
		mention      string
	}{
		{handlers.ActionThreatsMonitor, `{"threatId":"100000000000000001"}`, handlers.CodeNotFound, "100000000000000001"},
		{handlers.ActionThreatsMonitor, `{}`, handlers.CodeInvalid, "threatId"},
		{handlers.ActionThreatsMonitor, `{"threatId":"abc"}`, handlers.CodeInvalid, "threatId"},
		{handlers.ActionThreatsMonitor, `{"threatId":"` + threat + `","pollInterval":"500ms"}`, handlers.CodeInvalid, "pollInterval"},
		{handlers.ActionThreatsMonitor, `{"threatId":"` + threat + `","pollInterval":"5"}`, handlers.CodeInvalid, "pollInterval"},
		{handlers.ActionThreatsMonitor, `{"threatId":"` + threat + `","timeout":"-1s"}`, handlers.CodeInvalid, "timeout"},
		{handlers.ActionThreatsMonitor, `{"threatId":"` + threat + `","timeout":"soon"}`, handlers.CodeInvalid, "timeout"},
		{handlers.ActionMonitorsCancel, `{"monitorId":"aaaaaaaaaaaaaaaaaaaaaaaa"}`, handlers.CodeNotFound, "aaaaaaaaaaaaaaaaaaaaaaaa"},
		{handlers.ActionMonitorsCancel, `{"monitorId":"a.b"}`, handlers.CodeInvalid, "monitorId"},
		{handlers.ActionMonitorsCancel, `{}`, handlers.CodeInvalid, "monitorId"},
		{handlers.ActionMonitorsList, `{"cursor":"nonsense"}`, handlers.CodeInvalid, "cursor"},
	} {
		t.Run(tc.action+" "+tc.data, func(t *testing.T) {
			checkError(t, m.call(tc.action, "", tc.data), tc.code, tc.mention)
		})
	}
	if n := m.records(); n != 0 {
		t.Errorf("refused requests left %d monitors", n)
	}
}

func TestMonitorsListPages(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	threats := env.Emu.AddThreats(3, time.Time{})
	var want []string
	for _, id := range threats {
		want = append(want, m.start("", `{"threatId":"`+id+`","pollInterval":"7s"}`).MonitorID)
	}
	var got []string
	l := m.list(`{"limit":2}`)
	for {
		if l.TotalItems != 3 || l.Truncated {
			t.Fatalf("page %+v", l)
		}
		for _, raw := range l.Items {
			var it handlers.MonitorItem
			if err := json.Unmarshal(raw, &it); err != nil {
				t.Fatal(err)
			}
			if it.PollInterval != "7s" || it.Deadline.Sub(it.StartedAt) != 12*time.Hour || it.ThreatID == "" {
				t.Errorf("item %s", raw)
			}
			got = append(got, it.MonitorID)
		}
		if l.NextCursor == nil {
			break
		}
		l = m.list(`{"limit":2,"cursor":"` + *l.NextCursor + `"}`)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v, want %v (oldest first)", got, want)
	}
}

// TestMonitorEndsFromIngestion: when ingestion publishes the resolution,
// the monitor ends without a call of its own.
func TestMonitorEndsFromIngestion(t *testing.T) {
	env, m := startMonitorEnv(t, testenv.IngestOn)
	threat := env.Emu.AddThreats(1, time.Time{})[0]
	waitPolls(t, env, 2) // ingestion has seen the threat
	// Its first poll would be in an hour.
	rep := m.start("", `{"threatId":"`+threat+`","pollInterval":"1h"}`)
	resolve(t, env.Emu, threat)
	e := m.ended(rep.MonitorID, 5*time.Second)
	if e.Outcome() != subjects.OutcomeResolved {
		t.Fatalf("outcome %s", e.Outcome())
	}
	if n := monitorCalls(env.Emu); n != 1 {
		t.Errorf("monitors made %d calls; want 1, the lookup of the threat at the start", n)
	}
}

// monitorCalls counts the threat lookups and polls of monitors: lookups
// by ids, polls for resolved threats (ingestion asks for neither).
func monitorCalls(emu *emulator.Emulator) int {
	n := 0
	for _, r := range emu.Requests() {
		if strings.HasSuffix(r.Path, "/threats") && (strings.Contains(r.RawQuery, "ids=") || strings.Contains(r.RawQuery, "incidentStatuses=")) {
			n++
		}
	}
	return n
}

// TestMonitorExactlyOnceUnderRace resolves and cancels the same monitors at
// once: each ends once, cancelled exactly when its cancel succeeded.
func TestMonitorExactlyOnceUnderRace(t *testing.T) {
	env, m := startMonitorEnv(t, nil)
	const n = 40
	threats := env.Emu.AddThreats(n, time.Time{})
	ids := make([]string, n)
	for i, th := range threats {
		ids[i] = m.start("", `{"threatId":"`+th+`","pollInterval":"1s"}`).MonitorID
	}
	cancelled := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { resolve(t, env.Emu, threats[i]) })
		wg.Go(func() {
			time.Sleep(time.Duration(i%8) * 150 * time.Millisecond) // some before the poll, some after
			r := m.cancel(ids[i])
			switch {
			case r.Err == nil:
				cancelled[i] = true
			case r.Err.Code != handlers.CodeNotFound:
				t.Errorf("cancel: %d %s", r.Err.Code, r.Err.Message)
			}
		})
	}
	wg.Wait()
	testenv.WaitFor(t, 10*time.Second, "every monitor to end", func() bool { return m.records() == 0 })
	out := m.outcomes()
	kinds := map[string]int{}
	for i, id := range ids {
		evs := out[id]
		if len(evs) != 1 {
			t.Errorf("monitor %s: %d outcomes", id, len(evs))
			continue
		}
		kinds[evs[0].Outcome()]++
		if want := map[bool]string{true: subjects.OutcomeCancelled, false: subjects.OutcomeResolved}[cancelled[i]]; evs[0].Outcome() != want {
			t.Errorf("monitor %s: outcome %s, but cancel succeeded: %t", id, evs[0].Outcome(), cancelled[i])
		}
	}
	t.Logf("outcomes: %v", kinds)
}

// TestMonitorsOnePollerAcrossReplicas: of two replicas one polls, and when
// it stops the other takes over the monitors it started.
func TestMonitorsOnePollerAcrossReplicas(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 10}), emulator.WithRequestLog(10000))
	cfg := testenv.Config(srv.ClientURL(), url)
	a := testenv.Connector(t, cfg, connector.WithLeaseTTL(1500*time.Millisecond))
	b := testenv.Connector(t, cfg, connector.WithLeaseTTL(1500*time.Millisecond))
	testenv.WaitFor(t, 10*time.Second, "a monitors leader", func() bool { return a.MonitorLeader("main") != b.MonitorLeader("main") })
	leader, other := a, b
	if b.MonitorLeader("main") {
		leader, other = b, a
	}
	m := newMonitors(t, testenv.Conn(t, srv), cfg)
	threats := emu.AddThreats(20, time.Time{})
	var ids []string
	for _, th := range threats {
		ids = append(ids, m.start("", `{"threatId":"`+th+`","pollInterval":"1s"}`).MonitorID)
	}
	emu.ResetRequests()
	time.Sleep(3 * time.Second)
	if n := monitorCalls(emu); n < 2 || n > 4 {
		t.Errorf("%d polls in 3s at a 1s interval, by two replicas", n)
	}
	if err := leader.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the other replica to take over", func() bool { return other.MonitorLeader("main") })
	for _, th := range threats[:10] {
		resolve(t, emu, th)
	}
	for i, id := range ids[:10] {
		if e := m.ended(id, 10*time.Second); e.Outcome() != subjects.OutcomeResolved || e.ThreatID != threats[i] {
			t.Errorf("monitor %s: %s of %s", id, e.Outcome(), e.ThreatID)
		}
	}
	if l := m.list(`{}`); l.TotalItems != 10 {
		t.Errorf("%d monitors left, want 10", l.TotalItems)
	}
}

// BenchmarkMonitors holds 10,000 monitors and measures what one poll
// interval costs upstream (calls/interval: the target is at most 3) and
// what the monitors cost in memory: the heap of this process before and
// after they start, which counts the poller's state, the NATS server's
// store of the records, and the connections' buffers. Each iteration is one
// poll interval (1s): run it with -benchtime 5x.
func BenchmarkMonitors(b *testing.B) {
	const n = 10000
	env := testenv.Start(b, func(c *config.Config) {
		c.Service.MaxInFlight = 512
	}, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 50, Threats: 0}), emulator.WithRequestLog(20000))
	m := newMonitors(b, env.NC, env.Cfg)
	threats := env.Emu.AddThreats(n, time.Time{})
	// The emulator renders each threat once and keeps it: render them all
	// now, so that the heap measured below is the monitors'.
	listAll(b, env, handlers.ActionThreatsList)
	env.Emu.ResetRequests()
	heapBefore := heapInUse()
	start := time.Now()
	reqs := make([]benchCall, len(threats))
	for i, th := range threats {
		reqs[i] = benchCall{handlers.ActionThreatsMonitor, `{"threatId":"` + th + `","pollInterval":"1s"}`}
	}
	callAll(b, env, reqs, nil)
	b.Logf("started %d monitors in %s", n, time.Since(start).Round(time.Millisecond))
	testenv.WaitFor(b, 30*time.Second, "every monitor listed", func() bool { return m.list(`{"limit":1}`).TotalItems == n })
	env.Emu.ResetRequests() // the emulator's log of the lookups is not the monitors'
	heapAfter := heapInUse()
	interval := time.Second
	// Steady state: no threat changes.
	env.Emu.ResetRequests()
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(interval)
	}
	b.StopTimer()
	calls := float64(monitorCalls(env.Emu)) / float64(b.N)
	// Resolutions: 100 threats resolved at once end their monitors within
	// a few intervals, still with one query per interval.
	env.Emu.ResetRequests()
	resolvedStart := time.Now()
	for _, th := range threats[:100] {
		resolve(b, env.Emu, th)
	}
	testenv.WaitFor(b, 30*time.Second, "100 monitors to end", func() bool { return m.list(`{"limit":1}`).TotalItems == n-100 })
	took := time.Since(resolvedStart)
	resolveCalls := monitorCalls(env.Emu)
	b.ReportMetric(calls, "calls/interval")
	b.ReportMetric(float64(heapAfter-heapBefore)/n, "heap-B/monitor")
	b.Logf("%d monitors: %.2f upstream calls per %s poll interval in steady state; heap in use %d MB before, %d MB after (%.0f B/monitor, NATS server included); 100 resolutions ended in %s with %d calls",
		n, calls, interval, heapBefore>>20, heapAfter>>20, float64(heapAfter-heapBefore)/n, took.Round(time.Millisecond), resolveCalls)
}

// listAll reads every page of list action of console main of env.
func listAll(b *testing.B, env *testenv.Env, action string) {
	b.Helper()
	for cursor := ""; ; {
		r := env.Call(b, action, `{"limit":1000,"cursor":"`+cursor+`"}`)
		var l handlers.ListReply
		if r.Err != nil || json.Unmarshal(r.Event.Data, &l) != nil {
			b.Fatalf("%s: %v", action, r.Err)
		}
		if l.NextCursor == nil {
			return
		}
		cursor = *l.NextCursor
	}
}

// benchCall is one request of a benchmark: an action and its data.
type benchCall struct{ action, data string }

// callAll sends calls to console main of env, 256 at a time, and fails b
// at the first error reply, or reply check refuses (when not nil).
func callAll(b *testing.B, env *testenv.Env, calls []benchCall, check func(r *connector.Reply) error) {
	b.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	errs := make(chan error, 1)
	for _, c := range calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := connector.Call(ctx, env.NC, env.Connector.Subjects().Action("main", c.action), c.action, "/bench", []byte(c.data))
			switch {
			case err != nil:
			case r.Err != nil:
				err = r.Err
			case check != nil:
				err = check(r)
			}
			if err != nil {
				select {
				case errs <- fmt.Errorf("%s: %w", c.action, err):
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestMonitorsSurviveSIGKILL runs the connector as a child process, kills
// it with SIGKILL while monitors end (resolutions, deadlines, cancels in
// flight), restarts it, and checks that every monitor ends exactly once,
// with the outcome it should have.
func TestMonitorsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the connector as a subprocess three times")
	}
	const group = 100
	srv := testenv.NATSServer(t)
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 20, Threats: 0}))
	nc := testenv.Conn(t, srv)
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	m := newMonitors(t, nc, cfg)
	rnd := rand.New(rand.NewPCG(11, 11))
	want := map[string]string{} // monitor id → outcome
	var toCancel []string       // cancels not yet confirmed
	call := func(action, data string, timeout time.Duration) (*connector.Reply, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return connector.Call(ctx, nc, m.sub.Action("main", action), action, "/crash-test", []byte(data))
	}
	// cancelAll sends the pending cancels at once; those that fail (the
	// child died under them) stay pending.
	cancelAll := func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var left []string
		for _, id := range toCancel {
			wg.Go(func() {
				r, err := call(handlers.ActionMonitorsCancel, `{"monitorId":"`+id+`"}`, 3*time.Second)
				// 404: an earlier attempt went through before its reply.
				if err == nil && (r.Err == nil || r.Err.Code == handlers.CodeNotFound) {
					return
				}
				mu.Lock()
				left = append(left, id)
				mu.Unlock()
			})
		}
		wg.Wait()
		toCancel = left
	}
	serving := func() {
		testenv.WaitFor(t, 20*time.Second, "the child to serve", func() bool {
			_, err := call(handlers.ActionMonitorsList, `{"limit":1}`, time.Second)
			return err == nil
		})
	}
	for round := range 2 {
		t0 := time.Now()
		child := startChildMode(t, childMonitors, srv.ClientURL(), emuURL)
		serving()
		t.Logf("serving after %s", time.Since(t0))
		cancelAll() // those a kill interrupted
		t.Logf("cancelled after %s", time.Since(t0))
		threats := emu.AddThreats(3*group, time.Time{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, th := range threats {
			data := `{"threatId":"` + th + `","pollInterval":"1s"}`
			outcome := subjects.OutcomeResolved
			switch i % 3 {
			case 1:
				data = `{"threatId":"` + th + `","pollInterval":"1s","timeout":"2s"}`
				outcome = subjects.OutcomeTimedOut
			case 2:
				outcome = subjects.OutcomeCancelled
			}
			wg.Go(func() {
				r, err := call(handlers.ActionThreatsMonitor, data, 10*time.Second)
				if err != nil || r.Err != nil {
					t.Errorf("threats.monitor: %v %v", err, r.Err)
					return
				}
				var rep handlers.MonitorReply
				_ = json.Unmarshal(r.Event.Data, &rep)
				mu.Lock()
				want[rep.MonitorID] = outcome
				if outcome == subjects.OutcomeCancelled {
					toCancel = append(toCancel, rep.MonitorID)
				}
				if outcome == subjects.OutcomeResolved {
					resolve(t, emu, th)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		t.Logf("started after %s", time.Since(t0))
		// Kill while the resolutions are polled, the deadlines pass and the
		// cancels run.
		cancelled := make(chan struct{})
		go func() { defer close(cancelled); cancelAll() }()
		time.Sleep(time.Duration(500+rnd.IntN(2000)) * time.Millisecond)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		<-cancelled
		t.Logf("round %d: killed with %d monitor records and %d outcomes; %d cancels to retry", round, m.records(), len(m.events()), len(toCancel))
	}
	child := startChildMode(t, childMonitors, srv.ClientURL(), emuURL)
	defer func() { _ = child.Process.Signal(os.Interrupt); _ = child.Wait() }()
	serving()
	cancelAll()
	if len(toCancel) > 0 {
		t.Fatalf("%d cancels failed on a running connector", len(toCancel))
	}
	t1 := time.Now()
	testenv.WaitFor(t, 20*time.Second, "every monitor to end", func() bool { return m.records() == 0 })
	t.Logf("all ended after %s", time.Since(t1))
	out := m.outcomes()
	t.Logf("read after %s", time.Since(t1))
	ids := map[string]bool{}
	for id, outcome := range want {
		evs := out[id]
		if len(evs) != 1 {
			t.Errorf("monitor %s: %d outcomes, want one %s", id, len(evs), outcome)
			continue
		}
		if evs[0].Outcome() != outcome {
			t.Errorf("monitor %s: %s, want %s", id, evs[0].Outcome(), outcome)
		}
		if ids[evs[0].ID] {
			t.Errorf("event id %s twice", evs[0].ID)
		}
		ids[evs[0].ID] = true
	}
	if len(out) != len(want) {
		t.Errorf("%d monitors have outcomes, %d were started", len(out), len(want))
	}
}
