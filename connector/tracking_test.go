package connector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
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
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The tracking tests run a connector whose tracking poller asks every
// second (the shortest interval configuration allows) against an emulator
// whose agents answer after actionDelay.
const (
	trackInterval = time.Second
	actionDelay   = 300 * time.Millisecond
	trackSource   = "/tracking-test"
	traceParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

// outcome is one action outcome read back from the events stream.
type outcome struct {
	Subject string
	MsgID   string
	Event   ce.Event
	Data    events.ActionOutcome
}

// Outcome is the last subject token.
func (o outcome) Outcome() string { return o.Subject[strings.LastIndexByte(o.Subject, '.')+1:] }

// target returns the outcome's target id.
func (o outcome) target(t testing.TB, id string) events.ActionTarget {
	t.Helper()
	for _, tg := range o.Data.Targets {
		if tg.ID == id {
			return tg
		}
	}
	t.Fatalf("outcome %s has no target %s", o.Data.TrackingID, id)
	return events.ActionTarget{}
}

// tracker drives the tracked actions of console main of a running system.
type tracker struct {
	t   testing.TB
	env *testenv.Env
	sub subjects.Subjects
}

func startTracker(t testing.TB, edit func(*config.Config), opts ...emulator.Option) *tracker {
	t.Helper()
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.Tracking.PollInterval = trackInterval
		c.Consoles["main"] = m
		if edit != nil {
			edit(c)
		}
	}, append([]emulator.Option{emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 8}),
		emulator.WithActionDelay(actionDelay), emulator.WithRequestLog(10000)}, opts...)...)
	// Every agent online, but for the seed's one isolated earlier.
	for _, id := range env.Emu.IDs().Agents {
		if err := env.Emu.SetAgentActive(id, true); err != nil {
			t.Fatal(err)
		}
	}
	return &tracker{t: t, env: env, sub: env.Connector.Subjects()}
}

// agents returns the agents whose networkStatus is status.
func (k *tracker) agents(status string) []string {
	var out []string
	for _, id := range k.env.Emu.IDs().Agents {
		if a, _ := k.env.Emu.Agent(id); a.NetworkStatus == status {
			out = append(out, id)
		}
	}
	return out
}

// send sends action as a binary CloudEvent with id and the test's source
// and trace context, and returns the reply.
func (k *tracker) send(action, id, data string) *connector.Reply {
	k.t.Helper()
	req := newRequest(action, data)
	req.ID, req.Source = id, trackSource
	req.SetExtension(subjects.ExtTraceParent, traceParent)
	h, body, err := ce.Encode(req, ce.ModeBinary)
	if err != nil {
		k.t.Fatal(err)
	}
	r, err := k.env.NC.RequestMsgWithContext(ctxFor(k.t, 15*time.Second), &nats.Msg{Subject: k.sub.Action("main", action), Header: h, Data: body})
	if err != nil {
		k.t.Fatalf("%s: %v", action, err)
	}
	reply, err := connector.ParseReply(r)
	if err != nil {
		k.t.Fatal(err)
	}
	return reply
}

// track sends a tracked action that must succeed and be tracked, and
// returns its reply.
func (k *tracker) track(action, id, data string) handlers.TrackedReply {
	k.t.Helper()
	r := k.send(action, id, data)
	if r.Err != nil {
		k.t.Fatalf("%s %s: %d %s", action, data, r.Err.Code, r.Err.Message)
	}
	var rep handlers.TrackedReply
	if err := json.Unmarshal(r.Event.Data, &rep); err != nil {
		k.t.Fatal(err)
	}
	if rep.TrackingID != subjects.TrackingID("main", trackSource, id) || rep.Subject != k.sub.ActionOutcomeWildcard("main", rep.TrackingID) {
		k.t.Fatalf("%s: reply %s: tracking id or subject not the request's", action, r.Event.Data)
	}
	return rep
}

// outcomes reads every action outcome of the stream, by tracking id.
func (k *tracker) outcomes() map[string][]outcome {
	k.t.Helper()
	return readOutcomes(k.t, k.env.NC, k.env.Cfg)
}

// ended waits for the outcome of tracking id and returns it: there must be
// exactly one, valid against the event catalog's schema.
func (k *tracker) ended(id string, within time.Duration) outcome {
	k.t.Helper()
	var got []outcome
	testenv.WaitFor(k.t, within, "the outcome of "+id, func() bool {
		got = k.outcomes()[id]
		return len(got) > 0
	})
	if len(got) != 1 {
		k.t.Fatalf("tracked action %s has %d outcomes", id, len(got))
	}
	o := got[0]
	if err := schema.ValidateEvent(o.Event.Type, o.Event.Data); err != nil {
		k.t.Errorf("outcome of %s: %v", id, err)
	}
	return o
}

// records counts the tracking records of console main left in KV.
func (k *tracker) records() int {
	k.t.Helper()
	return trackingRecords(k.t, k.env.NC, k.sub)
}

// TestTrackCompleted: agents.disconnect replies with a tracking id and
// subject, and when every agent has reported its isolation exactly one
// completed event follows on that subject: each target succeeded with the
// confirming activity, the request's trace context and correlation carried
// over, the time of the last confirmation; the record is then gone. The
// poller asked SentinelOne once per interval for the activity types of the
// action, since the request.
func TestTrackCompleted(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	agents := k.agents("connected")[:3]
	before := time.Now()
	rep := k.track(handlers.ActionAgentsDisconnect, "req-completed", `{"agentIds":["`+agents[2]+`","`+agents[0]+`","`+agents[1]+`"]}`)
	sub, err := k.env.NC.SubscribeSync(rep.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Affected != 3 {
		t.Errorf("affected %d", rep.Affected)
	}
	if m, err := sub.NextMsg(4 * trackInterval); err != nil || m.Subject != k.sub.ActionOutcomeEvent("main", rep.TrackingID, subjects.OutcomeCompleted) {
		t.Fatalf("outcome on the reply's subject: %v %v", m, err)
	}
	o := k.ended(rep.TrackingID, time.Second)
	ev := o.Event
	if o.Outcome() != subjects.OutcomeCompleted || ev.Type != subjects.TypeActionCompleted || ev.Source != "/s1bridge/main" ||
		ev.Subject != rep.TrackingID || o.MsgID != "main/action/"+rep.TrackingID+"/completed" || ev.ID != o.MsgID ||
		ev.CorrelationID() != "req-completed" || ev.TraceParent() != traceParent {
		t.Errorf("event attributes: %s %s %s %s %s %s %s", o.Subject, ev.Type, ev.Source, ev.Subject, o.MsgID, ev.CorrelationID(), ev.TraceParent())
	}
	d := o.Data
	if d.TrackingID != rep.TrackingID || d.Action != handlers.ActionAgentsDisconnect || d.Console != "main" ||
		d.RequestedAt.Before(before.Add(-time.Millisecond)) || d.EndedAt.Before(d.RequestedAt.Add(actionDelay)) {
		t.Errorf("data %+v", d)
	}
	var last time.Time
	for i, id := range []string{agents[2], agents[0], agents[1]} {
		tg := d.Targets[i]
		if tg.ID != id || tg.State != events.TargetSucceeded || tg.At == nil || tg.ActivityID == nil ||
			tg.At.Before(d.RequestedAt.Add(actionDelay)) || !strings.Contains(tg.Message, "disconnected from network") {
			t.Errorf("target %d: %+v, want %s succeeded by its activity", i, tg, id)
			continue
		}
		if tg.At.After(last) {
			last = *tg.At
		}
	}
	if !ev.Time.Equal(last) {
		t.Errorf("time %s, want the last confirmation %s", ev.Time, last)
	}
	testenv.WaitFor(t, 5*time.Second, "the record to go", func() bool { return k.records() == 0 })
	// What the poller asked of SentinelOne: the activities that confirm a
	// disconnect, since the request (less the clock skew allowed).
	polls := activityPolls(k.env.Emu)
	if len(polls) == 0 || len(polls) > int(time.Since(before)/trackInterval)+1 {
		t.Errorf("%d activities queries in %s", len(polls), time.Since(before))
	}
	q := polls[0]
	if q.Get("activityTypes") != "1001,2010" || q.Get("sortBy") != "createdAt" || q.Get("sortOrder") != "asc" || q.Get("createdAt__gt") == "" {
		t.Errorf("activities query %v", q)
	}
	// A repeat of the request gets the same tracking id, tracks nothing
	// new and publishes nothing more.
	if again := k.track(handlers.ActionAgentsDisconnect, "req-completed", `{"agentIds":["`+agents[2]+`","`+agents[0]+`","`+agents[1]+`"]}`); again.TrackingID != rep.TrackingID {
		t.Errorf("repeat: %+v", again)
	}
	if k.records() != 0 {
		t.Error("the repeat of an ended action started tracking it again")
	}
}

// TestTrackEveryAction runs each tracked action (each kind of mitigation)
// once, at the same time: each ends completed, confirmed by the report its
// agent logs.
func TestTrackEveryAction(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	emu := k.env.Emu
	agents := k.agents("connected")
	isolated := k.agents("disconnected")
	threats := emu.AddThreats(6, time.Time{})
	// A scan to abort.
	k.track(handlers.ActionAgentsScanStart, "scan-to-abort", `{"agentIds":["`+agents[3]+`"]}`)
	testenv.WaitFor(t, 5*time.Second, "the scan to start", func() bool { a, _ := emu.Agent(agents[3]); return a.ScanStatus == "started" })
	q := func(field, id string) string { return `{"` + field + `":["` + id + `"]` }
	cases := []struct{ action, data, message string }{
		{handlers.ActionAgentsDisconnect, q("agentIds", agents[0]) + `}`, "was disconnected from network"},
		{handlers.ActionAgentsConnect, q("agentIds", isolated[0]) + `}`, "was connected to network"},
		{handlers.ActionAgentsScanStart, q("agentIds", agents[2]) + `}`, "started a full disk scan"},
		{handlers.ActionAgentsScanAbort, q("agentIds", agents[3]) + `}`, "aborted a full disk scan"},
		{handlers.ActionThreatsFetchFile, q("threatIds", threats[0]) + `,"password":"Zz9!fetch-file"}`, "uploaded the file of threat"},
		{handlers.ActionThreatsMitigate, q("threatIds", threats[1]) + `,"action":"kill"}`, "successfully killed"},
		{handlers.ActionThreatsMitigate, q("threatIds", threats[2]) + `,"action":"quarantine"}`, "successfully quarantined"},
		{handlers.ActionThreatsMitigate, q("threatIds", threats[3]) + `,"action":"un_quarantine"}`, "successfully unquarantined"},
		{handlers.ActionThreatsMitigate, q("threatIds", threats[4]) + `,"action":"remediate"}`, "successfully remediated"},
		{handlers.ActionThreatsMitigate, q("threatIds", threats[5]) + `,"action":"rollback_remediation"}`, "successfully rolled back"},
	}
	ids := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Go(func() { ids[i] = k.track(tc.action, fmt.Sprint("every-", i), tc.data).TrackingID })
	}
	wg.Wait()
	for i, tc := range cases {
		o := k.ended(ids[i], 8*trackInterval)
		if o.Data.Action != tc.action || len(o.Data.Targets) != 1 {
			t.Errorf("%s: %+v", tc.data, o.Data)
			continue
		}
		tg := o.Data.Targets[0]
		// remediate and rollback apply to some OS types only: SentinelOne
		// skips the others, which end failed with its reason.
		if skipped := strings.Contains(tg.Message, "not_supported"); skipped && o.Outcome() == subjects.OutcomeFailed {
			t.Logf("%s: %s", tc.data, tg.Message)
			continue
		}
		if o.Outcome() != subjects.OutcomeCompleted || tg.State != events.TargetSucceeded || tg.ActivityID == nil || !strings.Contains(tg.Message, tc.message) {
			t.Errorf("%s %s: %s, target %+v", tc.action, tc.data, o.Outcome(), tg)
		}
	}
}

// TestTrackFailed: a mitigation one agent fails to carry out ends failed
// once every threat is confirmed, the others succeeded; a threat its agent
// cannot find and an id SentinelOne has no threat for fail with
// SentinelOne's message, as does a scan of an agent it does not have.
func TestTrackFailed(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	emu := k.env.Emu
	threats := emu.AddThreats(4, time.Time{})
	const unknown = "1999999999999999999"
	for id, o := range map[string]emulator.Outcome{threats[1]: emulator.OutcomeFailure, threats[3]: emulator.OutcomeNotFound} {
		if err := emu.SetOutcome(id, o); err != nil {
			t.Fatal(err)
		}
	}
	kill := k.track(handlers.ActionThreatsMitigate, "req-kill", `{"threatIds":["`+strings.Join(threats[:3], `","`)+`"],"action":"kill"}`)
	lost := k.track(handlers.ActionThreatsMitigate, "req-lost", `{"threatIds":["`+threats[3]+`","`+unknown+`"],"action":"quarantine"}`)
	agent := k.agents("connected")[0]
	scan := k.track(handlers.ActionAgentsScanStart, "req-scan", `{"agentIds":["`+unknown+`","`+agent+`"]}`)

	o := k.ended(kill.TrackingID, 5*trackInterval)
	if o.Outcome() != subjects.OutcomeFailed || o.Event.Type != subjects.TypeActionFailed {
		t.Fatalf("kill: %s", o.Outcome())
	}
	for i, want := range []string{events.TargetSucceeded, events.TargetFailed, events.TargetSucceeded} {
		tg := o.Data.Targets[i]
		if tg.ID != threats[i] || tg.State != want || tg.ActivityID == nil || tg.At == nil {
			t.Errorf("kill target %d: %+v, want %s", i, tg, want)
		}
	}
	if m := o.Data.Targets[1].Message; !strings.Contains(m, "failed to kill") {
		t.Errorf("failed target's message %q", m)
	}

	o = k.ended(lost.TrackingID, 5*trackInterval)
	if o.Outcome() != subjects.OutcomeFailed {
		t.Fatalf("quarantine of threats not found: %s", o.Outcome())
	}
	if tg := o.target(t, threats[3]); tg.State != events.TargetFailed || tg.ActivityID == nil || !strings.Contains(tg.Message, "could not find the threat") {
		t.Errorf("threat its agent did not find: %+v", tg)
	}
	if tg := o.target(t, unknown); tg.State != events.TargetFailed || tg.ActivityID != nil || !strings.Contains(tg.Message, "matched no threat "+unknown) {
		t.Errorf("unknown threat: %+v", tg)
	}

	// The scan's unknown agent is found out by a lookup two intervals
	// after the request.
	o = k.ended(scan.TrackingID, 6*trackInterval)
	if o.Outcome() != subjects.OutcomeFailed {
		t.Fatalf("scan of an unknown agent: %s", o.Outcome())
	}
	if tg := o.target(t, unknown); tg.State != events.TargetFailed || !strings.Contains(tg.Message, "has no agent "+unknown) {
		t.Errorf("unknown agent: %+v", tg)
	}
	if tg := o.target(t, agent); tg.State != events.TargetSucceeded || !strings.Contains(tg.Message, "started a full disk scan") {
		t.Errorf("scanned agent: %+v", tg)
	}
}

// TestTrackTimedOut: an offline agent never confirms its isolation: at the
// deadline (the request's trackTimeout) the action ends timed_out with that
// target pending and the online one succeeded; the event's time is the
// deadline. trackTimeout out of bounds is a 400 naming it.
func TestTrackTimedOut(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	agents := k.agents("connected")[:2]
	if err := k.env.Emu.SetAgentActive(agents[1], false); err != nil {
		t.Fatal(err)
	}
	rep := k.track(handlers.ActionAgentsDisconnect, "req-offline", `{"agentIds":["`+agents[0]+`","`+agents[1]+`"],"trackTimeout":"2s"}`)
	o := k.ended(rep.TrackingID, 6*trackInterval)
	if o.Outcome() != subjects.OutcomeTimedOut || o.Event.Type != subjects.TypeActionTimedOut {
		t.Fatalf("outcome %s", o.Outcome())
	}
	deadline := o.Data.RequestedAt.Add(2 * time.Second)
	if !o.Event.Time.Equal(deadline) || o.Data.EndedAt.Before(deadline) || o.Data.EndedAt.After(deadline.Add(4*trackInterval)) { // acted on after the next good poll; a loaded CI machine may take two more
		t.Errorf("time %s, ended %s; deadline %s", o.Event.Time, o.Data.EndedAt, deadline)
	}
	if tg := o.target(t, agents[0]); tg.State != events.TargetSucceeded {
		t.Errorf("online agent: %+v", tg)
	}
	if tg := o.target(t, agents[1]); tg.State != events.TargetPending || tg.At != nil || tg.ActivityID != nil {
		t.Errorf("offline agent: %+v", tg)
	}
	for _, bad := range []string{"0s", "25h", "soon"} {
		r := k.send(handlers.ActionAgentsDisconnect, "bad-"+bad, `{"agentIds":["`+agents[0]+`"],"trackTimeout":"`+bad+`"}`)
		checkError(t, r, handlers.CodeInvalid, "trackTimeout")
	}
}

// TestTrackNetworkStatusWitness: an agent already isolated logs no new
// report when isolated again; its agent's networkStatus confirms it (no
// activity id), with one agents lookup by id.
func TestTrackNetworkStatusWitness(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	isolated := k.agents("disconnected")[0]
	k.env.Emu.ResetRequests()
	rep := k.track(handlers.ActionAgentsDisconnect, "req-isolated", `{"agentIds":["`+isolated+`"]}`)
	o := k.ended(rep.TrackingID, 6*trackInterval)
	tg := o.target(t, isolated)
	if o.Outcome() != subjects.OutcomeCompleted || tg.State != events.TargetSucceeded || tg.ActivityID != nil || tg.At == nil ||
		tg.Message != "the agent's networkStatus is disconnected" {
		t.Errorf("%s: %+v", o.Outcome(), tg)
	}
	var lookups []string
	for _, r := range k.env.Emu.Requests() {
		if strings.HasSuffix(r.Path, "/agents") && r.Method == http.MethodGet {
			lookups = append(lookups, r.RawQuery)
		}
	}
	if len(lookups) != 1 || !strings.Contains(lookups[0], "ids="+isolated) {
		t.Errorf("agents lookups %v, want one by id", lookups)
	}
}

// TestTrackRepeatedRequest: the same request again (same source and id)
// while the action is tracked gets the same tracking id and subject, and
// tracks nothing new; one outcome ends it. The same request id with other
// targets runs (the idempotency layer, not tracking, refuses it first) but
// is not tracked: its reply has no tracking id.
func TestTrackRepeatedRequest(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	agents := k.agents("connected")[:2]
	if err := k.env.Emu.SetAgentActive(agents[0], false); err != nil {
		t.Fatal(err)
	}
	data := `{"agentIds":["` + agents[0] + `"]}`
	first := k.track(handlers.ActionAgentsDisconnect, "req-repeat", data)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if again := k.track(handlers.ActionAgentsDisconnect, "req-repeat", data); again != first {
				t.Errorf("repeat %+v, want %+v", again, first)
			}
		})
	}
	wg.Wait()
	if n := k.records(); n != 1 {
		t.Errorf("%d records after repeats", n)
	}
	// The same id with other targets is another request under a used key:
	// the idempotency layer refuses it before anything runs (DESIGN.md §12).
	r := k.send(handlers.ActionAgentsDisconnect, "req-repeat", `{"agentIds":["`+agents[1]+`"]}`)
	if r.Err == nil || r.Err.Code != handlers.CodeConflict {
		t.Errorf("same id, other targets: %s %v, want a 409", r.Event.Data, r.Err)
	}
	if err := k.env.Emu.SetAgentActive(agents[0], true); err != nil {
		t.Fatal(err)
	}
	if o := k.ended(first.TrackingID, 5*trackInterval); o.Outcome() != subjects.OutcomeCompleted {
		t.Errorf("outcome %s", o.Outcome())
	}
	if n := len(k.outcomes()); n != 1 {
		t.Errorf("%d tracked actions have outcomes, want 1", n)
	}
}

// TestTrackDryRun: a dry run tracks nothing.
func TestTrackDryRun(t *testing.T) {
	t.Parallel()
	k := startTracker(t, func(c *config.Config) { c.Service.DryRun = true })
	r := k.send(handlers.ActionAgentsDisconnect, "req-dry", `{"agentIds":["`+k.env.Emu.IDs().Agents[0]+`"]}`)
	if r.Err != nil || strings.Contains(string(r.Event.Data), "trackingId") || !strings.Contains(string(r.Event.Data), `"dryRun":true`) {
		t.Errorf("dry run reply %s %v", r.Event.Data, r.Err)
	}
	time.Sleep(trackInterval)
	if k.records() != 0 || len(k.outcomes()) != 0 {
		t.Error("a dry run was tracked")
	}
}

// TestTrackStoreUnavailable: when the tracking bucket is gone, the action
// SentinelOne accepted is still answered as done (affected), without a
// tracking id or subject, and counted in
// s1bridge_tracking_untracked_total.
func TestTrackStoreUnavailable(t *testing.T) {
	t.Parallel()
	k := startTracker(t, nil)
	js, _ := jetstream.New(k.env.NC)
	if err := js.DeleteKeyValue(ctxFor(t, 5*time.Second), k.sub.BucketName(subjects.BucketTracking)); err != nil {
		t.Fatal(err)
	}
	r := k.send(handlers.ActionAgentsDisconnect, "req-untracked", `{"agentIds":["`+k.agents("connected")[0]+`"]}`)
	if r.Err != nil || string(r.Event.Data) != `{"affected":1}` {
		t.Errorf("reply %s %v", r.Event.Data, r.Err)
	}
	if n := k.env.Emu.RequestCount("/agents/actions/disconnect"); n != 1 {
		t.Errorf("%d disconnect calls", n)
	}
	resp, err := http.Get("http://" + k.env.Connector.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`s1bridge_tracking_untracked_total{console="main"} 1`, `s1bridge_tracking_active{console="main"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// activityPolls returns the query of every activities call the emulator
// saw, in order.
func activityPolls(emu *emulator.Emulator) []url.Values {
	var out []url.Values
	for _, r := range emu.Requests() {
		if strings.HasSuffix(r.Path, "/activities") {
			out = append(out, mustQuery(r.RawQuery))
		}
	}
	return out
}

// readOutcomes reads every action outcome in the events stream of cfg, by
// tracking id.
func readOutcomes(t testing.TB, nc *nats.Conn, cfg *config.Config) map[string][]outcome {
	t.Helper()
	msgs, err := testenv.StreamMessages(ctxFor(t, 30*time.Second), nc, cfg.EventsStreamName())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]outcome{}
	for _, m := range msgs {
		if !strings.Contains(m.Subject(), ".event.action.") {
			continue
		}
		ev, err := ce.Decode(nats.Header(m.Headers()), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		o := outcome{Subject: m.Subject(), MsgID: m.Headers().Get(subjects.HeaderMsgID), Event: ev}
		if err := json.Unmarshal(ev.Data, &o.Data); err != nil {
			t.Fatal(err)
		}
		out[o.Data.TrackingID] = append(out[o.Data.TrackingID], o)
	}
	return out
}

// trackingRecords counts the tracking records of console main.
func trackingRecords(t testing.TB, nc *nats.Conn, sub subjects.Subjects) int {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, sub.BucketName(subjects.BucketTracking))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(ctx, subjects.TrackingKeys("main"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n
}

// ctxFor is a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustQuery parses a query the emulator recorded.
func mustQuery(raw string) url.Values {
	q, _ := url.ParseQuery(raw)
	return q
}

// TestTrackingAcrossReplicas: of two replicas one polls, whichever
// replica tracked the action; when it stops, the other carries on every
// action it tracked, and each ends once.
func TestTrackingAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 8}),
		emulator.WithActionDelay(actionDelay), emulator.WithRequestLog(10000))
	cfg := testenv.Config(srv.ClientURL(), url)
	m := cfg.Consoles["main"]
	m.Tracking.PollInterval = trackInterval
	cfg.Consoles["main"] = m
	a := testenv.Connector(t, cfg, connector.WithLeaseTTL(1500*time.Millisecond))
	b := testenv.Connector(t, cfg, connector.WithLeaseTTL(1500*time.Millisecond))
	testenv.WaitFor(t, 10*time.Second, "a tracking leader", func() bool { return a.TrackingLeader("main") != b.TrackingLeader("main") })
	leader, other := a, b
	if b.TrackingLeader("main") {
		leader, other = b, a
	}
	k := &tracker{t: t, env: &testenv.Env{Server: srv, Emu: emu, EmuURL: url, Cfg: cfg, Connector: other, NC: testenv.Conn(t, srv)}, sub: other.Subjects()}
	threats := emu.AddThreats(10, time.Time{})
	for _, id := range emu.IDs().Agents {
		if err := emu.SetAgentActive(id, false); err != nil { // nothing confirms until the leader stops
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	for i, th := range threats {
		ids[k.track(handlers.ActionThreatsMitigate, fmt.Sprint("replicas-", i), `{"threatIds":["`+th+`"],"action":"kill"}`).TrackingID] = true
	}
	emu.ResetRequests()
	time.Sleep(2 * trackInterval)
	if polls, _ := trackingCalls(emu); polls < 1 || polls > 3 {
		t.Errorf("%d activities queries in 2 intervals, by two replicas", polls)
	}
	if err := leader.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the other replica to take over", func() bool { return other.TrackingLeader("main") })
	for _, id := range emu.IDs().Agents {
		if err := emu.SetAgentActive(id, true); err != nil {
			t.Fatal(err)
		}
	}
	for id := range ids {
		if o := k.ended(id, 5*trackInterval); o.Outcome() != subjects.OutcomeCompleted {
			t.Errorf("%s: %s", id, o.Outcome())
		}
	}
	if n := len(k.outcomes()); n != len(ids) {
		t.Errorf("%d outcomes, want %d", n, len(ids))
	}
}

// TestTrackingSurvivesSIGKILL runs the connector as a child process and
// kills it with SIGKILL while tracked actions are pending (confirmations
// arriving, deadlines passing, outcomes being published), twice, then lets
// a last child finish: each action ends with exactly one outcome, the one
// it should have. Requests a kill interrupted are sent again with the same
// id, as a SOAR router retries: they get the first attempt's tracking id.
func TestTrackingSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the connector as a subprocess three times")
	}
	t.Parallel()
	srv := testenv.NATSServer(t)
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 40}),
		emulator.WithActionDelay(500*time.Millisecond))
	nc := testenv.Conn(t, srv)
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	sub, _ := subjects.New(cfg.Subjects.Prefix)
	rnd := rand.New(rand.NewPCG(13, 13))
	var agents []string // online and connected
	for _, id := range emu.IDs().Agents {
		if err := emu.SetAgentActive(id, true); err != nil {
			t.Fatal(err)
		}
		if a, _ := emu.Agent(id); a.NetworkStatus == "connected" {
			agents = append(agents, id)
		}
	}
	type request struct{ id, action, data, want string }
	var groups [3][]request // the requests first sent in each round
	for round := range 3 {
		threats := emu.AddThreats(15, time.Time{})
		for i, th := range threats {
			// Set for the threat, the outcome holds whatever its agent's.
			want, o := subjects.OutcomeCompleted, emulator.OutcomeSuccess
			if i%3 == 2 {
				want, o = subjects.OutcomeFailed, emulator.OutcomeFailure
			}
			if err := emu.SetOutcome(th, o); err != nil {
				t.Fatal(err)
			}
			groups[round] = append(groups[round], request{fmt.Sprint("kill-", round, "-", i), handlers.ActionThreatsMitigate, `{"threatIds":["` + th + `"],"action":"kill"}`, want})
		}
		for i, ag := range agents[round*10 : round*10+10] {
			r := request{fmt.Sprint("isolate-", round, "-", i), handlers.ActionAgentsDisconnect, `{"agentIds":["` + ag + `"],"trackTimeout":"2s"}`, subjects.OutcomeCompleted}
			if i%2 == 1 {
				// An agent that never answers, as an offline one.
				r.want = subjects.OutcomeTimedOut
				if err := emu.SetOutcome(ag, emulator.OutcomeNever); err != nil {
					t.Fatal(err)
				}
			}
			groups[round] = append(groups[round], r)
		}
	}
	var todo []request          // to send, or send again
	want := map[string]string{} // tracking id → outcome
	// sendAll sends the requests not yet answered, at once; those a kill
	// interrupts stay to send again.
	sendAll := func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var left []request
		for _, r := range todo {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				req := newRequest(r.action, r.data)
				req.ID, req.Source = r.id, trackSource
				h, body, _ := ce.Encode(req, ce.ModeBinary)
				m, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: sub.Action("main", r.action), Header: h, Data: body})
				var rep handlers.TrackedReply
				if err == nil {
					var reply *connector.Reply
					if reply, err = connector.ParseReply(m); err == nil && reply.Err == nil {
						err = json.Unmarshal(reply.Event.Data, &rep)
					} else if err == nil {
						err = reply.Err
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil || rep.TrackingID == "" {
					left = append(left, r)
					return
				}
				want[rep.TrackingID] = r.want
			})
		}
		wg.Wait()
		todo = left
	}
	serving := func() {
		testenv.WaitFor(t, 20*time.Second, "the child to serve", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := connector.Call(ctx, nc, sub.Action("main", handlers.ActionMonitorsList), handlers.ActionMonitorsList, trackSource, nil)
			return err == nil
		})
	}
	all := 3 * len(groups[0])
	for round := range 2 {
		child := startChildMode(t, childTracking, srv.ClientURL(), emuURL)
		serving()
		todo = append(todo, groups[round]...)
		killed := make(chan struct{})
		go func() { defer close(killed); sendAll() }()
		time.Sleep(time.Duration(1000+rnd.IntN(3000)) * time.Millisecond)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		<-killed
		t.Logf("round %d: killed with %d records and %d outcomes; %d requests to send again", round,
			trackingRecords(t, nc, sub), len(readOutcomes(t, nc, cfg)), len(todo))
	}
	child := startChildMode(t, childTracking, srv.ClientURL(), emuURL)
	defer func() { _ = child.Process.Signal(os.Interrupt); _ = child.Wait() }()
	serving()
	todo = append(todo, groups[2]...)
	sendAll()
	if len(todo) > 0 {
		t.Fatalf("%d requests failed on a running connector", len(todo))
	}
	testenv.WaitFor(t, 20*time.Second, "every tracked action to end", func() bool { return trackingRecords(t, nc, sub) == 0 })
	out := readOutcomes(t, nc, cfg)
	kinds := map[string]int{}
	for id, w := range want {
		os := out[id]
		if len(os) != 1 {
			t.Errorf("tracked action %s: %d outcomes, want one %s", id, len(os), w)
			continue
		}
		if os[0].Outcome() != w {
			t.Errorf("tracked action %s: %s, want %s", id, os[0].Outcome(), w)
		}
		kinds[os[0].Outcome()]++
	}
	if len(out) != len(want) || len(want) != all {
		t.Errorf("%d tracked actions have outcomes, %d were tracked, %d requested", len(out), len(want), all)
	}
	t.Logf("outcomes: %v", kinds)
}

// trackingCalls counts the upstream calls of the tracking poller in the
// emulator's log: activities queries and lookups by ids of agents or
// threats (nothing else in the benchmark reads either).
func trackingCalls(emu *emulator.Emulator) (polls, lookups int) {
	for _, r := range emu.Requests() {
		switch {
		case r.Method != http.MethodGet:
		case strings.HasSuffix(r.Path, "/activities"):
			polls++
		case (strings.HasSuffix(r.Path, "/agents") || strings.HasSuffix(r.Path, "/threats")) && strings.Contains(r.RawQuery, "ids="):
			lookups++
		}
	}
	return polls, lookups
}

// BenchmarkTracking tracks 10,000 actions (5,000 isolations and 5,000
// kills, one target each, on agents that are offline, so that they stay
// pending) and measures what one poll interval costs upstream in steady
// state (calls/interval: the target is at most one), and what a tracked
// action costs in memory: the heap of this process before and after they
// are tracked (the poller's state, the NATS server's store of the records,
// the connections' buffers) less the heap the same 10,000 calls cost a
// second emulator when made directly (the emulator's commands and
// activities). Each iteration is one poll interval (1s): run it with
// -benchtime 5x. Then 100 agents come back online: their 200 actions end
// within a few intervals, still with one activities query per interval.
func BenchmarkTracking(b *testing.B) {
	const n = 10000
	sizes := emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: n / 2 * 5 / 4})
	env := testenv.Start(b, func(c *config.Config) {
		c.Service.MaxInFlight = 512
		m := c.Consoles["main"]
		m.Tracking.PollInterval = trackInterval
		c.Consoles["main"] = m
	}, sizes, emulator.WithRequestLog(50000))
	emu, sub := env.Emu, env.Connector.Subjects()
	// Connected agents only (an isolated one is confirmed at once by its
	// networkStatus), each with one threat, all offline.
	var agents []string
	for _, id := range emu.IDs().Agents {
		if a, _ := emu.Agent(id); a.NetworkStatus == "connected" && len(agents) < n/2 {
			agents = append(agents, id)
		}
	}
	if len(agents) < n/2 {
		b.Fatalf("%d connected agents", len(agents))
	}
	threats := emu.AddThreats(n/2, time.Time{})
	offline := func(e *emulator.Emulator) {
		for _, id := range e.IDs().Agents {
			if err := e.SetAgentActive(id, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	offline(emu)
	reqs := make([]benchCall, 0, n)
	for i := range n / 2 {
		reqs = append(reqs,
			benchCall{handlers.ActionAgentsDisconnect, `{"agentIds":["` + agents[i] + `"]}`},
			benchCall{handlers.ActionThreatsMitigate, `{"threatIds":["` + threats[i] + `"],"action":"kill"}`})
	}
	// The emulator renders each agent once and keeps it: render them all
	// now, so that the heap measured below is not the lookups' renderings.
	listAll(b, env, handlers.ActionAgentsList)
	emu.ResetRequests()
	heapBefore := heapInUse()
	start := time.Now()
	callAll(b, env, reqs, func(r *connector.Reply) error {
		if !strings.Contains(string(r.Event.Data), "trackingId") {
			return fmt.Errorf("not tracked: %s", r.Event.Data)
		}
		return nil
	})
	b.Logf("tracked %d actions in %s", n, time.Since(start).Round(time.Millisecond))
	// The lookups of the isolations' networkStatus (2 intervals after each
	// request, 500 ids a poll) are over when a whole interval passes
	// without one.
	lookupsDone := func() bool {
		emu.ResetRequests()
		time.Sleep(trackInterval + trackInterval/2)
		_, l := trackingCalls(emu)
		return l == 0
	}
	testenv.WaitFor(b, 60*time.Second, "the networkStatus lookups to end", lookupsDone)
	if left := trackingRecords(b, env.NC, sub); left != n {
		b.Fatalf("%d actions tracked, want %d", left, n)
	}
	heapAfter := heapInUse()
	baseline := directCalls(b, n, sizes, offline)

	emu.ResetRequests()
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(trackInterval)
	}
	b.StopTimer()
	polls, lookups := trackingCalls(emu)
	calls := float64(polls+lookups) / float64(b.N)
	perAction := float64(heapAfter-heapBefore-baseline) / n

	// 100 agents come back: their isolations (and kills) are confirmed.
	emu.ResetRequests()
	backAt := time.Now()
	for _, id := range agents[:100] {
		if err := emu.SetAgentActive(id, true); err != nil {
			b.Fatal(err)
		}
	}
	testenv.WaitFor(b, 30*time.Second, "100 isolations to end", func() bool { return trackingRecords(b, env.NC, sub) <= n-100 })
	took := time.Since(backAt)
	backPolls, backLookups := trackingCalls(emu)

	b.ReportMetric(calls, "calls/interval")
	b.ReportMetric(perAction, "heap-B/action")
	b.Logf("%d tracked actions: %.2f upstream calls per %s poll interval in steady state (%d activities queries, %d lookups in %d intervals); "+
		"heap in use %d MB before, %d MB after, less %d MB for the same calls made to an emulator directly: %.0f B/action (NATS server included); "+
		"100 agents back online: their actions ended in %s with %d activities queries and %d lookups",
		n, calls, trackInterval, polls, lookups, b.N, heapBefore>>20, heapAfter>>20, baseline>>20, perAction,
		took.Round(time.Millisecond), backPolls, backLookups)
}

// directCalls makes the upstream calls of BenchmarkTracking (n/2
// isolations and n/2 kills, one target each, on offline agents) directly
// to an emulator of its own, and returns the heap they cost: what an
// emulator in this process keeps of them.
func directCalls(b *testing.B, n int, sizes emulator.Option, offline func(*emulator.Emulator)) int64 {
	base, url := testenv.Emulator(b, sizes, emulator.WithRequestLog(0))
	threats := base.AddThreats(n/2, time.Time{})
	var agents []string
	for _, id := range base.IDs().Agents {
		if a, _ := base.Agent(id); a.NetworkStatus == "connected" && len(agents) < n/2 {
			agents = append(agents, id)
		}
	}
	offline(base)
	client, err := sentinelone.New(sentinelone.Config{BaseURL: url, Token: testenv.Token, Timeout: 10 * time.Second,
		RatePerSecond: 1e6, RateBurst: 1e6, MaxConns: 256})
	if err != nil {
		b.Fatal(err)
	}
	before := heapInUse()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range n / 2 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := client.DisconnectAgents(ctx, agents[i:i+1]); err != nil {
				b.Error(err)
			}
			if _, err := client.MitigateThreats(ctx, "kill", threats[i:i+1]); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return heapInUse() - before
}
