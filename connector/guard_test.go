package connector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// Idempotency and audit of the mutating actions (DESIGN.md §12), through
// NATS against the emulator.

// replica is a connector a test may stop before its end (another replica
// then serves the requests).
type replica struct {
	*connector.Connector
	stop func()
}

func startReplica(t *testing.T, cfg *config.Config) *replica {
	t.Helper()
	c, err := connector.New(cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		c.Stop(context.Background())
		t.Fatal(err)
	}
	var once sync.Once
	r := &replica{Connector: c, stop: func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c.Stop(ctx)
		})
	}}
	t.Cleanup(r.stop)
	return r
}

// metric reads one series of c's /metrics ("name{labels}"); -1 when absent.
func metric(t *testing.T, c *connector.Connector, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

// callsTo counts the emulator's recorded requests "METHOD /path".
func callsTo(emu *emulator.Emulator, methodPath string) int {
	n := 0
	for _, c := range upstreamCalls(emu) {
		if c == methodPath {
			n++
		}
	}
	return n
}

// auditMsg is one audit record as the stream holds it.
type auditMsg struct {
	Subject, ID, Type string
	Raw               []byte // headers and data, for looking for secrets
	Event             ce.Event
	Rec               events.AuditRecord
	seq               uint64
	stored            time.Time // when the stream stored it
}

// readAudit reads every record of the audit stream of cfg, checking that
// each is a binary-mode CloudEvent whose id is its Nats-Msg-Id and whose
// data the schema package accepts.
func readAudit(t *testing.T, nc *nats.Conn, cfg *config.Config) []auditMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := testparts.StreamMessages(ctx, nc, cfg.AuditStreamName())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]auditMsg, 0, len(msgs))
	for _, m := range msgs {
		ev, err := ce.Decode(m.Headers(), m.Data())
		if err != nil || ev.Mode != ce.ModeBinary {
			t.Fatalf("audit record %s: %v (mode %v)", m.Subject(), err, ev.Mode)
		}
		if id := m.Headers().Get(subjects.HeaderMsgID); id != ev.ID {
			t.Errorf("audit record %s: Nats-Msg-Id %q, id %q", m.Subject(), id, ev.ID)
		}
		if err := schema.ValidateEvent(ev.Type, ev.Data); err != nil {
			t.Errorf("audit record %s: %v: %s", ev.ID, err, ev.Data)
		}
		md, _ := m.Metadata()
		a := auditMsg{Subject: m.Subject(), ID: ev.ID, Type: ev.Type, Event: ev, seq: md.Sequence.Stream, stored: md.Timestamp}
		for k, vs := range m.Headers() {
			a.Raw = append(a.Raw, k+": "+strings.Join(vs, ",")+"\n"...)
		}
		a.Raw = append(a.Raw, m.Data()...)
		if err := json.Unmarshal(ev.Data, &a.Rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// byID indexes audit records by id, failing on an id stored twice.
func byID(t *testing.T, msgs []auditMsg) map[string]auditMsg {
	t.Helper()
	out := map[string]auditMsg{}
	for _, m := range msgs {
		if _, dup := out[m.ID]; dup {
			t.Errorf("audit id %s stored twice", m.ID)
		}
		out[m.ID] = m
	}
	return out
}

// auditID is the id of the record of phase of the attempt-th execution of
// req on console main.
func auditID(req ce.Event, attempt int, phase string) string {
	return subjects.AuditID("main", subjects.AuditKey(subjects.RequestHash("main", req.Source, req.ID), attempt), phase)
}

const disconnect = "POST /agents/actions/disconnect"

// TestIdempotentAcrossReplicas: a mutating request sent to one replica,
// then again (same source and id) to another, runs once: one upstream
// call, and the repeat's reply carries the first reply's data (with its own
// reply id, and its own request id as correlationid). A stored 4xx is
// replayed alike; a retryable 5xx is not stored, so a repeat runs the
// request again, and both attempts are audited.
func TestIdempotentAcrossReplicas(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithRequestLog(1000))
	cfg := testenv.Config(srv.ClientURL(), url)
	nc := testenv.Conn(t, srv)
	subj, _ := subjects.New(cfg.Subjects.Prefix)
	subject := subj.Action("main", handlers.ActionAgentsDisconnect)
	agent := emu.IDs().Agents[0]
	req := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+agent+`"]}`)

	a := startReplica(t, cfg)
	first := roundTrip(t, nc, subject, req, ce.ModeBinary)
	checkOK(t, handlers.ActionAgentsDisconnect, req, first, ce.ModeBinary)
	a.stop() // the repeat can only reach the other replica
	b := startReplica(t, cfg)
	if n := metric(t, b.Connector, `s1bridge_idempotent_replays_total{console="main"}`); n != 0 {
		t.Fatalf("replays at start: %v, want the series at 0", n)
	}
	second := roundTrip(t, nc, subject, req, ce.ModeStructured)
	checkOK(t, handlers.ActionAgentsDisconnect, req, second, ce.ModeStructured)
	if !bytes.Equal(first.Event.Data, second.Event.Data) {
		t.Errorf("the repeat answered %s, the first %s", second.Event.Data, first.Event.Data)
	}
	var rep struct{ Affected int }
	if err := json.Unmarshal(first.Event.Data, &rep); err != nil || rep.Affected != 1 {
		t.Errorf("first reply %s, want affected 1", first.Event.Data)
	}
	if first.Event.ID == second.Event.ID {
		t.Error("the repeat's reply has the first reply's id")
	}
	if n := callsTo(emu, disconnect); n != 1 {
		t.Errorf("%d disconnect calls, want 1", n)
	}
	if n := metric(t, b.Connector, `s1bridge_idempotent_replays_total{console="main"}`); n != 1 {
		t.Errorf("the other replica counted %v replays, want 1", n)
	}

	// SentinelOne's 400 answers this request for good: replayed.
	if err := emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: http.StatusBadRequest, Path: emulator.PathAgentsDisconnect}); err != nil {
		t.Fatal(err)
	}
	bad := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+emu.IDs().Agents[1]+`"]}`)
	r1 := roundTrip(t, nc, subject, bad, ce.ModeBinary)
	checkError(t, r1, handlers.CodeInvalid, "")
	emu.ClearFaults()
	r2 := roundTrip(t, nc, subject, bad, ce.ModeBinary)
	checkError(t, r2, handlers.CodeInvalid, "")
	if r1.Err.Message != r2.Err.Message || !bytes.Equal(r1.Event.Data, r2.Event.Data) {
		t.Errorf("the repeat of a 400 answered %s, the first %s", r2.Event.Data, r1.Event.Data)
	}
	if n := callsTo(emu, disconnect); n != 2 {
		t.Errorf("%d disconnect calls, want 2 (the 400 was replayed)", n)
	}

	// A 5xx describes the moment, not the request: a repeat runs it again.
	if err := emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: http.StatusInternalServerError, Path: emulator.PathAgentsDisconnect}); err != nil {
		t.Fatal(err)
	}
	flaky := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+emu.IDs().Agents[2]+`"]}`)
	r1 = roundTrip(t, nc, subject, flaky, ce.ModeBinary)
	checkError(t, r1, handlers.CodeUpstream, "")
	emu.ClearFaults()
	before := callsTo(emu, disconnect)
	checkOK(t, handlers.ActionAgentsDisconnect, flaky, roundTrip(t, nc, subject, flaky, ce.ModeBinary), ce.ModeBinary)
	if n := callsTo(emu, disconnect) - before; n != 1 {
		t.Errorf("the repeat of a 502 made %d calls, want 1 (it runs again)", n)
	}
	recs := byID(t, readAudit(t, nc, cfg))
	for _, c := range []struct {
		attempt int
		phase   string
		code    int
	}{{1, subjects.PhaseRequested, 0}, {1, subjects.PhaseCompleted, handlers.CodeUpstream}, {2, subjects.PhaseRequested, 0}, {2, subjects.PhaseCompleted, 200}} {
		m, ok := recs[auditID(flaky, c.attempt, c.phase)]
		if !ok {
			t.Errorf("no audit record %s", auditID(flaky, c.attempt, c.phase))
			continue
		}
		if c.code != 0 && (m.Rec.Outcome == nil || m.Rec.Outcome.Code != c.code) {
			t.Errorf("%s: outcome %+v, want code %d", m.ID, m.Rec.Outcome, c.code)
		}
	}
	// The request that ran once is audited once, by the replica that ran it.
	for _, phase := range []string{subjects.PhaseRequested, subjects.PhaseCompleted} {
		if m, ok := recs[auditID(req, 1, phase)]; !ok || m.Rec.Replica == "" {
			t.Errorf("no %s record of the first request", phase)
		}
		if _, ok := recs[auditID(req, 2, phase)]; ok {
			t.Errorf("the replayed request was audited as a second execution")
		}
	}
}

// TestRepeatWhileRunning: a repeat that arrives while the first request
// runs waits for its reply. One message reaches two replicas at once (each
// in a queue group of its own): one runs it, the other waits, and both
// answer with the same data after one upstream call. A repeat whose own
// deadline passes first answers 504, retryable.
func TestRepeatWhileRunning(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithRequestLog(1000))
	nc := testenv.Conn(t, srv)
	var reps []*replica
	for _, group := range []string{"replica-a", "replica-b"} {
		cfg := testenv.Config(srv.ClientURL(), url)
		cfg.Service.QueueGroup = group
		reps = append(reps, startReplica(t, cfg))
	}
	subject := reps[0].Subjects().Action("main", handlers.ActionAgentsDisconnect)
	if err := emu.Inject(emulator.Fault{Kind: emulator.FaultLatency, Latency: 700 * time.Millisecond, Path: emulator.PathAgentsDisconnect}); err != nil {
		t.Fatal(err)
	}
	send := func(req ce.Event) *nats.Subscription {
		t.Helper()
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		h, body, err := ce.Encode(req, ce.ModeBinary)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Header: h, Data: body}); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	replies := func(sub *nats.Subscription, n int) []*connector.Reply {
		t.Helper()
		var out []*connector.Reply
		for range n {
			m, err := sub.NextMsg(15 * time.Second)
			if err != nil {
				t.Fatalf("reply %d of %d: %v", len(out)+1, n, err)
			}
			out = append(out, parse(t, m))
		}
		return out
	}

	req := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+emu.IDs().Agents[0]+`"]}`)
	start := time.Now()
	both := replies(send(req), 2)
	for _, r := range both {
		checkOK(t, handlers.ActionAgentsDisconnect, req, r, ce.ModeBinary)
		if !bytes.Equal(r.Event.Data, both[0].Event.Data) {
			t.Errorf("replies differ: %s and %s", both[0].Event.Data, r.Event.Data)
		}
	}
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("both replies within %s, before SentinelOne answered", took)
	}
	if both[0].Event.ID == both[1].Event.ID {
		t.Error("both replies have one id")
	}
	if n := callsTo(emu, disconnect); n != 1 {
		t.Errorf("%d disconnect calls, want 1", n)
	}
	if n := metric(t, reps[0].Connector, `s1bridge_idempotent_replays_total{console="main"}`) +
		metric(t, reps[1].Connector, `s1bridge_idempotent_replays_total{console="main"}`); n != 1 {
		t.Errorf("%v replays, want 1: the waiting replica's", n)
	}

	// A repeat with a short deadline, sent once the first is running.
	slow := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+emu.IDs().Agents[1]+`"]}`)
	firstSub := send(slow)
	testenv.WaitFor(t, 10*time.Second, "the first to call SentinelOne", func() bool { return callsTo(emu, disconnect) == 2 })
	hurried := slow
	hurried.Extensions = map[string]string{subjects.ExtExpiryTime: time.Now().Add(300 * time.Millisecond).UTC().Format(time.RFC3339Nano)}
	r := roundTrip(t, nc, subject, hurried, ce.ModeBinary)
	checkError(t, r, handlers.CodeUpstreamTimeout, "still running")
	if !r.Err.Retryable {
		t.Error("504 of a waiting repeat not retryable")
	}
	for _, r := range replies(firstSub, 2) {
		checkOK(t, handlers.ActionAgentsDisconnect, slow, r, ce.ModeBinary)
	}
	if n := callsTo(emu, disconnect); n != 2 {
		t.Errorf("%d disconnect calls, want 2", n)
	}
}

// TestIDReusedConflicts: the same key with other data or another type is a
// 409 naming the id, audited as refused; the same data written otherwise
// (members in another order, other spacing) is the same request. Plain
// JSON requests, which get a fresh id each, are never deduplicated.
func TestIDReusedConflicts(t *testing.T) {
	env := startWith(t, nil)
	subject := env.Connector.Subjects().Action("main", handlers.ActionThreatsUpdate)
	ids := env.Emu.IDs().Threats
	req := newRequest(handlers.ActionThreatsUpdate, `{"threatIds":["`+ids[0]+`"],"incidentStatus":"in_progress","analystVerdict":"suspicious"}`)
	first := roundTrip(t, env.NC, subject, req, ce.ModeBinary)
	checkOK(t, handlers.ActionThreatsUpdate, req, first, ce.ModeBinary)

	same := req
	same.Data = json.RawMessage(" {\n \"analystVerdict\" : \"suspicious\", \"incidentStatus\":\"in_progress\",\"threatIds\":[ \"" + ids[0] + "\" ] }")
	r := roundTrip(t, env.NC, subject, same, ce.ModeStructured)
	checkOK(t, handlers.ActionThreatsUpdate, same, r, ce.ModeStructured)
	if !bytes.Equal(r.Event.Data, first.Event.Data) {
		t.Errorf("the same data written otherwise answered %s, want the first reply %s", r.Event.Data, first.Event.Data)
	}

	other := req
	other.Data = json.RawMessage(`{"threatIds":["` + ids[1] + `"],"incidentStatus":"in_progress","analystVerdict":"suspicious"}`)
	checkError(t, roundTrip(t, env.NC, subject, other, ce.ModeBinary), handlers.CodeConflict, "id: ")
	otherType := req
	otherType.Type = "com.example.soar.update"
	checkError(t, roundTrip(t, env.NC, subject, otherType, ce.ModeBinary), handlers.CodeConflict, req.ID)
	if n := callsTo(env.Emu, "POST /threats/incident"); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	recs := byID(t, readAudit(t, env.NC, env.Cfg))
	m, ok := recs[auditID(req, 1, subjects.PhaseRefused)]
	if !ok || m.Rec.Outcome == nil || m.Rec.Outcome.Code != handlers.CodeConflict || m.Type != subjects.TypeAuditRefused {
		t.Fatalf("refused record of the 409: %+v (found %t)", m.Rec.Outcome, ok)
	}
	if !strings.Contains(string(m.Rec.Request.Data), ids[1]) || len(m.Rec.Upstream) != 0 {
		t.Errorf("refused record holds %s, upstream %v: want the refused request's data and no call", m.Rec.Request.Data, m.Rec.Upstream)
	}

	// Plain JSON: the same payload twice runs twice, audited twice.
	plain := env.Connector.Subjects().Action("main", handlers.ActionAgentsDisconnect)
	before := len(readAudit(t, env.NC, env.Cfg))
	for range 2 {
		msg, err := env.NC.Request(plain, []byte(`{"agentIds":["`+env.Emu.IDs().Agents[0]+`"]}`), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r := parse(t, msg); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := callsTo(env.Emu, disconnect); n != 2 {
		t.Errorf("two plain-JSON requests made %d calls, want 2", n)
	}
	if n := len(readAudit(t, env.NC, env.Cfg)) - before; n != 4 {
		t.Errorf("two plain-JSON requests wrote %d audit records, want 4", n)
	}
}

// TestTakeoverAfterReplicaDied: the replica running a request is killed
// (SIGKILL, a child process) while SentinelOne has not answered. A repeat
// to another replica waits until the request's startedAt +
// service.action_timeout, then runs it again; both attempts are audited
// (the dead one has only its requested record).
func TestTakeoverAfterReplicaDied(t *testing.T) {
	const timeout = 2 * time.Second
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithRequestLog(1000))
	nc := testenv.Conn(t, srv)
	cfg := testenv.Config(srv.ClientURL(), url)
	cfg.Service.ActionTimeout = timeout
	subject := subjectsOf(t, cfg).Action("main", handlers.ActionAgentsDisconnect)
	if err := emu.Inject(emulator.Fault{Kind: emulator.FaultLatency, Latency: time.Minute, Path: emulator.PathAgentsDisconnect}); err != nil {
		t.Fatal(err)
	}

	t.Setenv(envChildActionTimeout, timeout.String())
	child := startChildMode(t, childActions, srv.ClientURL(), url)
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	testenv.WaitFor(t, 30*time.Second, "the child to serve", func() bool {
		_, err := nc.Request(subjectsOf(t, cfg).Action("main", handlers.ActionIngestStatus), nil, time.Second)
		return err == nil
	})
	req := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+emu.IDs().Agents[0]+`"]}`)
	h, body, _ := ce.Encode(req, ce.ModeBinary)
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: nc.NewRespInbox(), Header: h, Data: body}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the child to call SentinelOne", func() bool { return callsTo(emu, disconnect) == 1 })
	killedAt := time.Now()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	emu.ClearFaults()

	startReplica(t, cfg)
	r := roundTrip(t, nc, subject, req, ce.ModeBinary)
	checkOK(t, handlers.ActionAgentsDisconnect, req, r, ce.ModeBinary)
	if waited := time.Since(killedAt); waited < timeout-time.Second {
		t.Errorf("the repeat ran %s after the kill, before the first could have timed out (%s)", waited, timeout)
	}
	if n := callsTo(emu, disconnect); n != 2 {
		t.Errorf("%d disconnect calls, want 2 (the dead attempt's and the takeover's)", n)
	}
	recs := byID(t, readAudit(t, nc, cfg))
	for _, id := range []string{auditID(req, 1, subjects.PhaseRequested), auditID(req, 2, subjects.PhaseRequested), auditID(req, 2, subjects.PhaseCompleted)} {
		if _, ok := recs[id]; !ok {
			t.Errorf("no audit record %s", id)
		}
	}
	if m := recs[auditID(req, 2, subjects.PhaseRequested)]; m.Rec.Replica == recs[auditID(req, 1, subjects.PhaseRequested)].Rec.Replica {
		t.Errorf("both attempts audited by replica %q", m.Rec.Replica)
	}
	if _, ok := recs[auditID(req, 1, subjects.PhaseCompleted)]; ok {
		t.Error("the killed attempt has a completed record")
	}
	// A further repeat replays the takeover's reply.
	again := roundTrip(t, nc, subject, req, ce.ModeBinary)
	checkOK(t, handlers.ActionAgentsDisconnect, req, again, ce.ModeBinary)
	if !bytes.Equal(again.Event.Data, r.Event.Data) || callsTo(emu, disconnect) != 2 {
		t.Errorf("after the takeover a repeat answered %s with %d calls", again.Event.Data, callsTo(emu, disconnect))
	}
}

func subjectsOf(t *testing.T, cfg *config.Config) subjects.Subjects {
	t.Helper()
	s, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fetchPassword is the fetch-file password of the conformance case; it must
// never be stored.
const fetchPassword = "Zip-Pass-2024!x9"

// TestAuditOfEveryMutatingAction: every mutating action of the
// conformance suite writes its requested and completed records under
// deterministic ids (a repeat writes nothing new), with its targets and
// the SentinelOne calls it made; a 400, 403, 408 and 409 write a refused
// record; no record and no idempotency record holds the fetch-file
// password.
func TestAuditOfEveryMutatingAction(t *testing.T) {
	var mutating []string
	for _, a := range handlers.All() {
		if a.Mutating {
			mutating = append(mutating, a.Name)
		}
	}
	env := startWith(t, func(c *config.Config) {
		locked := c.Consoles["main"]
		locked.Actions.Deny = mutating
		c.Consoles["locked"] = locked
	})
	env.Emu.ResetRequests()
	ran := 0
	for _, tc := range conformanceCases() {
		a, _ := handlers.Lookup(tc.action)
		if !a.Mutating {
			continue
		}
		ran++
		t.Run(tc.action, func(t *testing.T) {
			subject := env.Connector.Subjects().Action("main", tc.action)
			req := newRequest(tc.action, tc.data(t, env))
			req.Source = "/audit-test"
			req.Extensions[subjects.ExtTraceParent] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			env.Emu.ResetRequests()
			reply := roundTrip(t, env.NC, subject, req, ce.ModeBinary)
			repliedBy := time.Now()
			checkOK(t, tc.action, req, reply, ce.ModeBinary)
			made := env.Emu.Requests()
			all := readAudit(t, env.NC, env.Cfg)
			recs := byID(t, all)
			requested, ok1 := recs[auditID(req, 1, subjects.PhaseRequested)]
			completed, ok2 := recs[auditID(req, 1, subjects.PhaseCompleted)]
			if !ok1 || !ok2 {
				t.Fatalf("records %s: requested %t, completed %t", auditID(req, 1, ""), ok1, ok2)
			}
			if requested.Seq() >= completed.Seq() {
				t.Error("completed stored before requested")
			}
			if len(made) == 0 || !requested.stored.Before(made[0].At) {
				t.Errorf("the requested record was stored at %s, SentinelOne called at %v", requested.stored, made)
			}
			if !completed.stored.Before(repliedBy) {
				t.Errorf("the completed record was stored at %s, after the reply came (%s)", completed.stored, repliedBy)
			}
			for _, m := range []auditMsg{requested, completed} {
				r := m.Rec
				if r.Action != tc.action || r.Console != "main" || r.Request.ID != req.ID || r.Request.Source != "/audit-test" ||
					r.Request.Type != req.Type || r.Request.TraceParent != req.Extensions[subjects.ExtTraceParent] || r.Request.Time == nil || r.DryRun || r.Replica == "" {
					t.Errorf("%s: %+v", m.ID, r)
				}
				if m.Subject != env.Connector.Subjects().Audit("main", tc.action, strings.TrimPrefix(m.Type, "s1bridge.audit.")) || m.Event.Subject != tc.action {
					t.Errorf("%s on %s (subject attribute %q)", m.ID, m.Subject, m.Event.Subject)
				}
				checkTargets(t, a, req, r.Targets)
			}
			if requested.Rec.Outcome != nil || len(requested.Rec.Upstream) != 0 || requested.Type != subjects.TypeAuditRequested {
				t.Errorf("requested record: outcome %+v, upstream %v", requested.Rec.Outcome, requested.Rec.Upstream)
			}
			out := completed.Rec.Outcome
			if out == nil || out.Code != 200 || out.Message != "" {
				t.Fatalf("completed outcome %+v", out)
			}
			var rep struct{ Affected *int }
			_ = json.Unmarshal(reply.Event.Data, &rep)
			if (rep.Affected == nil) != (out.Affected == nil) || rep.Affected != nil && *rep.Affected != *out.Affected {
				t.Errorf("outcome affected %v, reply %s", out.Affected, reply.Event.Data)
			}
			checkUpstream(t, completed.Rec.Upstream, made)

			// A repeat writes nothing.
			checkOK(t, tc.action, req, roundTrip(t, env.NC, subject, req, ce.ModeBinary), ce.ModeBinary)
			if n := len(readAudit(t, env.NC, env.Cfg)); n != len(all) {
				t.Errorf("a repeat wrote %d records", n-len(all))
			}

			// Refusals: 409, 400, 408, 403.
			reused := req
			reused.Type = "com.example.other"
			refused := func(r ce.Event, subject string, code int) {
				t.Helper()
				checkError(t, roundTrip(t, env.NC, subject, r, ce.ModeBinary), code, "")
				console := strings.Split(subject, ".")[1]
				id := subjects.AuditID(console, subjects.RequestHash(console, r.Source, r.ID), subjects.PhaseRefused)
				m, ok := byID(t, readAudit(t, env.NC, env.Cfg))[id]
				if !ok {
					t.Errorf("no refused record %s for a %d", id, code)
					return
				}
				if m.Rec.Outcome == nil || m.Rec.Outcome.Code != code || m.Rec.Console != console || len(m.Rec.Upstream) != 0 {
					t.Errorf("refused record of a %d: %+v", code, m.Rec)
				}
			}
			refused(reused, subject, handlers.CodeConflict)
			invalid := newRequest(tc.action, strings.Replace(tc.data(t, env), "{", `{"bogusField":1,`, 1))
			refused(invalid, subject, handlers.CodeInvalid)
			expired := newRequest(tc.action, tc.data(t, env))
			expired.Extensions[subjects.ExtExpiryTime] = time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
			refused(expired, subject, handlers.CodeExpired)
			refused(newRequest(tc.action, tc.data(t, env)), env.Connector.Subjects().Action("locked", tc.action), handlers.CodeDenied)
		})
	}
	if ran < 11 {
		t.Fatalf("only %d mutating actions in the conformance suite", ran)
	}

	// The fetch-file password: nowhere in the audit stream, nor in the
	// requests bucket (every revision of every key).
	all := readAudit(t, env.NC, env.Cfg)
	sawRedacted := false
	for _, m := range all {
		if bytes.Contains(m.Raw, []byte(fetchPassword)) {
			t.Errorf("audit record %s holds the fetch-file password", m.ID)
		}
		if m.Rec.Action == handlers.ActionThreatsFetchFile && strings.Contains(string(m.Rec.Request.Data), `"password":"[REDACTED]"`) {
			sawRedacted = true
		}
	}
	if !sawRedacted {
		t.Error("no fetch-file record shows the password as [REDACTED]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kvs, err := testparts.StreamMessages(ctx, env.NC, "KV_"+env.Connector.Subjects().BucketName(subjects.BucketRequests))
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) < ran {
		t.Fatalf("%d idempotency records for %d actions", len(kvs), ran)
	}
	for _, m := range kvs {
		if bytes.Contains(m.Data(), []byte(fetchPassword)) || bytes.Contains(m.Data(), []byte("Zip-Pass")) {
			t.Errorf("idempotency record %s holds the fetch-file password: %s", m.Subject(), m.Data())
		}
	}
}

// Seq is the record's stream sequence (its order of storage).
func (m auditMsg) Seq() uint64 { return m.seq }

// checkTargets checks an audit record's targets against the request's
// (handlers.Targeted), null for an action that names none.
func checkTargets(t *testing.T, a handlers.Action, req ce.Event, got *events.AuditTargets) {
	t.Helper()
	parsed, err := a.Decode(&handlers.Env{Console: "main"}, req.Data)
	if err != nil {
		t.Fatal(err)
	}
	tg, ok := parsed.(handlers.Targeted)
	if !ok {
		if got != nil {
			t.Errorf("targets %+v for %s, which names none", got, a.Name)
		}
		return
	}
	field, ids := tg.Targets()
	if got == nil || got.Field != field || !slices.Equal(got.IDs, ids) && len(ids)+len(got.IDs) > 0 {
		t.Errorf("targets %+v, want %s %v", got, field, ids)
	}
}

// checkUpstream checks a completed record's upstream list against the
// calls the emulator received: same number, methods and paths (the record
// has the client's path templates), each with a status (blocklist.add
// reads an entry already there from a 400) and SentinelOne's request id.
func checkUpstream(t *testing.T, got []events.UpstreamCall, made []emulator.Request) {
	t.Helper()
	if len(got) != len(made) {
		t.Fatalf("upstream %+v, the emulator saw %d calls", got, len(made))
	}
	for i, c := range got {
		path := strings.TrimPrefix(made[i].Path, apiPrefix)
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(c.Path), `[^/]+`) + "$")
		if c.Method != made[i].Method || !re.MatchString(path) || c.Status == 0 || c.RequestID == "" {
			t.Errorf("upstream[%d] %+v, the emulator saw %s %s", i, c, made[i].Method, path)
		}
	}
}

// TestAuditFailsClosed: with the audit stream gone, a mutating action
// answers 503 (retryable) and SentinelOne is not called; the failure is
// counted. Once the stream is back, a retry with the same id runs (its
// claim was left open) as a new attempt.
func TestAuditFailsClosed(t *testing.T) {
	env := startWith(t, nil)
	failures := `s1bridge_audit_failures_total{console="main"}`
	if n := metric(t, env.Connector, failures); n != 0 {
		t.Fatalf("audit failures at start: %v, want the series at 0", n)
	}
	js, _ := jetstream.New(env.NC)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, env.Cfg.AuditStreamName()); err != nil {
		t.Fatal(err)
	}
	env.Emu.ResetRequests()
	subject := env.Connector.Subjects().Action("main", handlers.ActionAgentsDisconnect)
	req := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+env.Emu.IDs().Agents[0]+`"]}`)
	r := roundTrip(t, env.NC, subject, req, ce.ModeBinary)
	checkError(t, r, handlers.CodeUnavailable, "audit")
	if !r.Err.Retryable {
		t.Error("503 not retryable")
	}
	if got := upstreamCalls(env.Emu); len(got) != 0 {
		t.Errorf("SentinelOne called without an audit record: %q", got)
	}
	if n := metric(t, env.Connector, failures); n != 1 {
		t.Errorf("audit failures %v, want 1", n)
	}
	if code, body := readyz(t, env.Connector); code != http.StatusServiceUnavailable || !strings.Contains(body, `"audit":"audit stream is missing`) {
		t.Errorf("/readyz with the audit stream gone: %d %s", code, body)
	}
	// Reads are not audited and go on.
	if r := env.Call(t, handlers.ActionAgentsList, `{"limit":1}`); r.Err != nil {
		t.Fatal(r.Err)
	}

	if _, err := js.CreateStream(ctx, store.AuditStreamConfig(env.Cfg, env.Connector.Subjects())); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, env.Connector); code != http.StatusOK || !strings.Contains(body, `"audit":"ok"`) {
		t.Errorf("/readyz with the audit stream back: %d %s", code, body)
	}
	checkOK(t, handlers.ActionAgentsDisconnect, req, roundTrip(t, env.NC, subject, req, ce.ModeBinary), ce.ModeBinary)
	if n := callsTo(env.Emu, disconnect); n != 1 {
		t.Errorf("%d disconnect calls, want 1", n)
	}
	recs := byID(t, readAudit(t, env.NC, env.Cfg))
	for _, id := range []string{auditID(req, 2, subjects.PhaseRequested), auditID(req, 2, subjects.PhaseCompleted)} {
		if _, ok := recs[id]; !ok {
			t.Errorf("no record %s", id)
		}
	}
}

// readyz returns the status and body of c's /readyz.
func readyz(t *testing.T, c *connector.Connector) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestPanicInAMutatingAction: a mutating action that panics answers 500;
// its completed record says so, and its claim is left open, so that a
// repeat runs it again (as a second attempt) instead of waiting for a
// takeover.
func TestPanicInAMutatingAction(t *testing.T) {
	type boomRequest struct {
		N int `json:"n"`
	}
	var runs atomic.Int32
	boom := handlers.Define("test.boom", "Boom", "Panics.", true, func(context.Context, *handlers.Env, *boomRequest) (*handlers.AffectedReply, error) {
		runs.Add(1)
		panic("boom")
	})
	env := startWith(t, nil, connector.WithActions(append(handlers.All(), boom)))
	subject := env.Connector.Subjects().Action("main", boom.Name)
	req := newRequest(boom.Name, `{"n":1}`)
	start := time.Now()
	for attempt := 1; attempt <= 2; attempt++ {
		checkError(t, roundTrip(t, env.NC, subject, req, ce.ModeBinary), handlers.CodeInternal, "")
		recs := byID(t, readAudit(t, env.NC, env.Cfg))
		m, ok := recs[auditID(req, attempt, subjects.PhaseCompleted)]
		if _, requested := recs[auditID(req, attempt, subjects.PhaseRequested)]; !ok || !requested || m.Rec.Outcome == nil || m.Rec.Outcome.Code != handlers.CodeInternal {
			t.Errorf("attempt %d: requested %t, completed %+v", attempt, requested, m.Rec.Outcome)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the action ran %d times, want 2", n)
	}
	if took := time.Since(start); took > env.Cfg.Service.ActionTimeout {
		t.Errorf("the repeat waited %s: it should find the claim open", took)
	}
}

// TestDeadlineAudited: an action whose deadline passes before SentinelOne
// answers is answered 504; its completed record says 504, as the caller
// saw it, and a repeat runs it again (a 504 is not stored).
func TestDeadlineAudited(t *testing.T) {
	env := startWith(t, nil)
	if err := env.Emu.Inject(emulator.Fault{Kind: emulator.FaultLatency, Latency: 3 * time.Second, Path: emulator.PathAgentsDisconnect}); err != nil {
		t.Fatal(err)
	}
	subject := env.Connector.Subjects().Action("main", handlers.ActionAgentsDisconnect)
	req := newRequest(handlers.ActionAgentsDisconnect, `{"agentIds":["`+env.Emu.IDs().Agents[0]+`"]}`)
	hurried := req
	hurried.Extensions = map[string]string{subjects.ExtExpiryTime: time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)}
	checkError(t, roundTrip(t, env.NC, subject, hurried, ce.ModeBinary), handlers.CodeUpstreamTimeout, "")
	m, ok := byID(t, readAudit(t, env.NC, env.Cfg))[auditID(req, 1, subjects.PhaseCompleted)]
	if !ok || m.Rec.Outcome == nil || m.Rec.Outcome.Code != handlers.CodeUpstreamTimeout {
		t.Fatalf("completed record of the 504: %+v (found %t)", m.Rec.Outcome, ok)
	}
	env.Emu.ClearFaults()
	checkOK(t, handlers.ActionAgentsDisconnect, req, roundTrip(t, env.NC, subject, req, ce.ModeBinary), ce.ModeBinary)
	if n := callsTo(env.Emu, disconnect); n != 2 {
		t.Errorf("%d disconnect calls, want 2: the 504 is not replayed", n)
	}
	if _, ok := byID(t, readAudit(t, env.NC, env.Cfg))[auditID(req, 2, subjects.PhaseCompleted)]; !ok {
		t.Error("the second run is not audited as attempt 2")
	}
}
