package connector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/subjects"
)

// sdkEvents receives every event on s1.main.event.> with sdk-go's own NATS
// protocol binding (protocol/nats/v2), as an integrator's program would.
type sdkEvents struct {
	mu   sync.Mutex
	byID map[string]event.Event
	bad  []string
}

func receiveWithSDK(t *testing.T, url string) *sdkEvents {
	t.Helper()
	p, err := cenats.NewConsumer(url, "s1.main.event.>", cenats.NatsOptions())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	r := &sdkEvents{byID: map[string]event.Event{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.StartReceiver(ctx, func(e event.Event) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err := e.Validate(); err != nil {
				r.bad = append(r.bad, err.Error())
			}
			r.byID[e.ID()] = e
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("sdk-go receiver: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = p.Close(context.Background()) })
	return r
}

func (r *sdkEvents) get(id string) (event.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	return e, ok
}

func (r *sdkEvents) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// storedEvent is one event as the stream holds it: the subject, the
// Nats-Msg-Id and the data, whatever the mode.
type storedEvent struct {
	subject, msgID string
	data           json.RawMessage
}

// deployment runs a connector in mode over its own NATS server, against
// emu, with ingestion on, and reads back what it stored.
func deployment(t *testing.T, emuURL, mode string) (*testenv.Env, func() map[string]storedEvent) {
	t.Helper()
	srv := testenv.NATSServer(t)
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	testenv.IngestOn(cfg)
	cfg.Streams.Events.Mode = mode
	env := &testenv.Env{Server: srv, EmuURL: emuURL, Cfg: cfg, NC: testenv.Conn(t, srv)}
	return env, func() map[string]storedEvent {
		out := map[string]storedEvent{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		msgs, err := testparts.StreamMessages(ctx, env.NC, cfg.EventsStreamName())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			ev := testenv.CheckEvent(t, m.Subject(), m.Headers(), m.Data())
			out[ev.ID] = storedEvent{m.Subject(), m.Headers().Get(subjects.HeaderMsgID), compact(t, ev.Data)}
		}
		return out
	}
}

func compact(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("data is not JSON: %v: %s", err, b)
	}
	return buf.Bytes()
}

// TestStructuredEventsReadBySDK runs the same console through two
// deployments at once, one with streams.events.mode: structured and one
// binary, and checks that sdk-go's NATS binding reads every structured
// event (threats created and changed, a monitor outcome) with the right
// type, id, subject and data, and that both modes store the same events
// under the same subjects and Nats-Msg-Id, with the same data.
func TestStructuredEventsReadBySDK(t *testing.T) {
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 4, Threats: 30}))
	threats := emu.IDs().Threats

	structured, readStructured := deployment(t, emuURL, config.ModeStructured)
	binary, readBinary := deployment(t, emuURL, config.ModeBinary)
	sdk := receiveWithSDK(t, structured.Server.ClientURL())
	structured.Connector = testenv.Connector(t, structured.Cfg)
	binary.Connector = testenv.Connector(t, binary.Cfg)

	createdAll := func(have func(id string) bool) bool {
		for _, id := range threats {
			if !have(subjects.CreatedEventID("main", subjects.EntityThreat, id)) {
				return false
			}
		}
		return true
	}
	testenv.WaitFor(t, 30*time.Second, "sdk-go and the binary stream to have every created event", func() bool {
		inBinary := readBinary()
		return createdAll(func(id string) bool { _, ok := sdk.get(id); return ok }) &&
			createdAll(func(id string) bool { _, ok := inBinary[id]; return ok })
	})

	// A change both deployments see, and a monitor outcome.
	target := ""
	for _, id := range threats {
		if st, _ := emu.Threat(id); st.IncidentStatus != "resolved" && st.AnalystVerdict != "false_positive" {
			target = id
		}
	}
	if r := structured.Call(t, "threats.update", `{"threatIds":["`+target+`"],"analystVerdict":"false_positive"}`); r.Err != nil {
		t.Fatal(r.Err)
	}
	mon := structured.Call(t, "threats.monitor", `{"threatId":"`+target+`","timeout":"1h"}`)
	if mon.Err != nil {
		t.Fatal(mon.Err)
	}
	var m handlers.MonitorReply
	_ = json.Unmarshal(mon.Event.Data, &m)
	if r := structured.Call(t, "monitors.cancel", `{"monitorId":"`+m.MonitorID+`"}`); r.Err != nil {
		t.Fatal(r.Err)
	}
	monitorID := subjects.MonitorEventID("main", m.MonitorID, subjects.OutcomeCancelled)
	var verdictID string
	testenv.WaitFor(t, 30*time.Second, "the verdict change (both modes) and the monitor outcome", func() bool {
		sdk.mu.Lock()
		for id, e := range sdk.byID {
			if e.Type() == subjects.TypeThreatVerdictChanged && e.Subject() == target {
				verdictID = id
			}
		}
		_, monitored := sdk.byID[monitorID]
		sdk.mu.Unlock()
		_, inBinary := readBinary()[verdictID]
		return verdictID != "" && monitored && inBinary
	})
	sdk.mu.Lock()
	if len(sdk.bad) > 0 {
		t.Errorf("sdk-go found invalid events: %v", sdk.bad)
	}
	sdk.mu.Unlock()

	stored := readStructured()
	if sdk.count() != len(stored) {
		t.Errorf("sdk-go received %d events, the stream holds %d", sdk.count(), len(stored))
	}
	for id, s := range stored {
		e, ok := sdk.get(id)
		if !ok {
			t.Errorf("sdk-go did not receive %s (%s)", id, s.subject)
			continue
		}
		if s.msgID != id {
			t.Errorf("%s: Nats-Msg-Id %q", id, s.msgID)
		}
		if e.Source() != subjects.Source("main") || e.DataContentType() != subjects.ContentTypeJSON || e.Time().IsZero() {
			t.Errorf("%s: source %q, datacontenttype %q, time %s", id, e.Source(), e.DataContentType(), e.Time())
		}
		if got := compact(t, e.Data()); !bytes.Equal(got, s.data) {
			t.Errorf("%s: sdk-go data differs from the stored data:\n%s\n%s", id, got, s.data)
		}
		if about := s.threat(t); about != e.Subject() {
			t.Errorf("%s: CloudEvents subject %q, data about threat %q", id, e.Subject(), about)
		}
	}
	for id, typ := range map[string]string{
		subjects.CreatedEventID("main", subjects.EntityThreat, target): subjects.TypeThreatCreated,
		verdictID: subjects.TypeThreatVerdictChanged,
		monitorID: subjects.MonitorType(subjects.OutcomeCancelled),
	} {
		e, _ := sdk.get(id)
		if e.Type() != typ || e.Subject() != target {
			t.Errorf("%s: type %q subject %q, want %q %q", id, e.Type(), e.Subject(), typ, target)
		}
	}
	if e, _ := sdk.get(monitorID); e.Extensions()[subjects.ExtCorrelationID] != mon.RequestID {
		t.Errorf("monitor outcome correlationid %v, want the request id %q", e.Extensions()[subjects.ExtCorrelationID], mon.RequestID)
	}

	// The binary deployment stored the same threat events (the monitor is
	// the structured deployment's own).
	inBinary := readBinary()
	if len(inBinary) != len(stored)-1 {
		t.Errorf("binary stream holds %d events, the structured one %d (one of them the monitor's)", len(inBinary), len(stored))
	}
	for _, id := range slices.Sorted(maps.Keys(inBinary)) {
		b := inBinary[id]
		s, ok := stored[id]
		switch {
		case !ok:
			t.Errorf("binary event %s (%s) is not in the structured stream", id, b.subject)
		case b.subject != s.subject || b.msgID != s.msgID || !bytes.Equal(b.data, s.data):
			t.Errorf("%s differs between modes: binary %s %s, structured %s %s", id, b.subject, b.msgID, s.subject, s.msgID)
		}
	}
	t.Logf("sdk-go read %d structured events; the binary deployment stored the same %d threat events", sdk.count(), len(inBinary))
}

// threat returns the id of the threat an event's data is about.
func (s storedEvent) threat(t *testing.T) string {
	t.Helper()
	var d struct {
		Threat struct {
			ID string `json:"id"`
		} `json:"threat"`
		ThreatID string `json:"threatId"`
	}
	if err := json.Unmarshal(s.data, &d); err != nil {
		t.Fatal(err)
	}
	if d.ThreatID != "" {
		return d.ThreatID
	}
	return d.Threat.ID
}
