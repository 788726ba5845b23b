package testparts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// CheckEvent reads one event message, in either content mode
// (streams.events.mode), and holds it to the contract: a CloudEvent whose
// Nats-Msg-Id is its id and whose data validates against the published
// schema of its type (schema.ValidateEvent, the schema docs/asyncapi.yaml
// holds). Every test that reads events passes them through it (ReadStream
// does), so that a new kind of event is checked the day it is published.
// It fails t (without stopping it) and returns what it could decode.
func CheckEvent(t testing.TB, subject string, h nats.Header, data []byte) ce.Event {
	t.Helper()
	ev, err := ce.Decode(h, data)
	if err != nil {
		t.Errorf("event %s is not a CloudEvent: %v", subject, err)
		return ev
	}
	if id := h.Get(subjects.HeaderMsgID); id != ev.ID {
		t.Errorf("event %s: Nats-Msg-Id %q, CloudEvents id %q", subject, id, ev.ID)
	}
	if err := schema.ValidateEvent(ev.Type, ev.Data); err != nil {
		t.Errorf("event %s: %v", subject, err)
	}
	return ev
}

// StreamMessages reads every message stream holds when it is called, in
// order, through an ordered consumer.
func StreamMessages(ctx context.Context, nc *nats.Conn, stream string) ([]jetstream.Msg, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	total := info.State.Msgs
	if total == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	out := make([]jetstream.Msg, 0, total)
	for uint64(len(out)) < total {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return out, fmt.Errorf("read %s after %d of %d messages: %w", stream, len(out), total, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// StreamEvent is one event read back from a stream.
type StreamEvent struct {
	Seq     uint64
	Subject string
	ID      string // Nats-Msg-Id = CloudEvents id
	Type    string
	Object  string // the id of the threat (or other object) the event is about: the CloudEvents subject
}

// ReadStream reads every event of stream, failing t when it cannot within
// a minute, and checks each with CheckEvent.
func ReadStream(t testing.TB, nc *nats.Conn, stream string) []StreamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := StreamMessages(ctx, nc, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]StreamEvent, len(msgs))
	for i, m := range msgs {
		md, _ := m.Metadata()
		h := m.Headers()
		ev := CheckEvent(t, m.Subject(), h, m.Data())
		out[i] = StreamEvent{
			Seq: md.Sequence.Stream, Subject: m.Subject(), ID: h.Get(subjects.HeaderMsgID),
			Type: ev.Type, Object: ev.Subject,
		}
	}
	return out
}

// CheckExactlyOnce fails t when an event id appears twice, or when a
// threat of want has no created event or more than one, or another threat
// has one.
func CheckExactlyOnce(t testing.TB, events []StreamEvent, want []string) {
	t.Helper()
	CheckExactlyOnceOf(t, events, subjects.EntityThreat, want)
}

// CheckExactlyOnceOf is CheckExactlyOnce for the objects of entity e
// (subjects.EntityAlert: Unified Alerts): events of other entities count
// only for the duplicate ids.
func CheckExactlyOnceOf(t testing.TB, events []StreamEvent, e subjects.Entity, want []string) {
	t.Helper()
	ids := map[string]int{}
	created := map[string]int{}
	createdType := subjects.CreatedType(e)
	for _, ev := range events {
		ids[ev.ID]++
		if ev.Type == createdType {
			created[ev.Object]++
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
				t.Errorf("%s %s has %d created events, want 1", e, id, created[id])
			}
		}
	}
	if dups+gaps > 0 || len(created) != len(want) {
		t.Fatalf("%d duplicate ids, %d %ss without exactly one created event, %d %ss created, %d expected", dups, gaps, e, len(created), e, len(want))
	}
}
