package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/subjects"
)

// outcome is the event of record key, with a deterministic id.
func outcome(st *Store, key, outcome string) *nats.Msg {
	m := &nats.Msg{Subject: st.Subjects().ActionOutcomeEvent("main", key, outcome), Header: nats.Header{}, Data: []byte(`{}`)}
	m.Header.Set(subjects.HeaderMsgID, subjects.ActionOutcomeID("main", key, outcome))
	return m
}

// eventsOn counts the stored messages on subject.
func eventsOn(t *testing.T, st *Store, subject string) uint64 {
	t.Helper()
	info, err := st.Events().Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// TestEnd: of records ended together, those still at the revision the
// decision was made on are claimed, their events stored once and the
// records deleted; one changed meanwhile is lost to its other writer and
// left alone. More endings than one chunk go through, in order.
func TestEnd(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	kv := st.KV(subjects.BucketTracking)
	const n = endChunk + 7
	var ends []Ending
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		rev, err := kv.Create(ctx, key, []byte("pending"))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, Ending{Key: key, Rev: rev, Claim: []byte("ended"), Event: outcome(st, key, "completed")})
	}
	// Record 3 changes after the decision was made.
	if _, err := kv.Put(ctx, "k3", []byte("other")); err != nil {
		t.Fatal(err)
	}
	res, err := st.NewBatch().End(ctx, subjects.BucketTracking, ends)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		key := ends[i].Key
		if i == 3 {
			if !r.Lost || r.Claimed != 0 || r.Stored || r.Deleted || r.Err != nil {
				t.Errorf("%s: %+v, want lost", key, r)
			}
			if e, err := kv.Get(ctx, key); err != nil || string(e.Value()) != "other" {
				t.Errorf("%s: the lost record was touched: %v", key, err)
			}
			if c := eventsOn(t, st, ends[i].Event.Subject); c != 0 {
				t.Errorf("%s: %d events for a lost claim", key, c)
			}
			continue
		}
		if r.Lost || r.Claimed <= ends[i].Rev || !r.Stored || !r.Deleted || r.Err != nil {
			t.Errorf("%s: %+v", key, r)
		}
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s: still there (%v)", key, err)
		}
	}
	if c := eventsOn(t, st, st.Subjects().ActionOutcomeWildcard("main", "*")); c != n-1 {
		t.Errorf("%d events, want %d", c, n-1)
	}
	// The same endings again: every claim is lost (the records changed).
	res, err = st.NewBatch().End(ctx, subjects.BucketTracking, ends[:2])
	if err != nil || !res[0].Lost || !res[1].Lost {
		t.Errorf("second end: %+v %v", res, err)
	}
}

// TestComplete: a claim left standing is completed once: the event is
// published unless (with check) the stream holds it already, and the
// record deleted; completing again, or after another did, changes nothing.
func TestComplete(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	kv := st.KV(subjects.BucketTracking)
	claim := func(key string) uint64 {
		rev, err := kv.Create(ctx, key, []byte("ended"))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	rev := claim("a")
	ev := outcome(st, "a", "failed")
	for range 2 {
		if err := st.Complete(ctx, subjects.BucketTracking, "a", rev, ev, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("record a still there: %v", err)
	}
	if c := eventsOn(t, st, ev.Subject); c != 1 {
		t.Errorf("%d events of a", c)
	}
	// Published long ago (another id, past the duplicate window): with
	// check, not again.
	rev = claim("b")
	if _, err := st.Publish(ctx, outcome(st, "b", "timed_out")); err != nil {
		t.Fatal(err)
	}
	late := outcome(st, "b", "timed_out")
	late.Header.Set(subjects.HeaderMsgID, "another-id")
	if err := st.Complete(ctx, subjects.BucketTracking, "b", rev, late, true); err != nil {
		t.Fatal(err)
	}
	if c := eventsOn(t, st, late.Subject); c != 1 {
		t.Errorf("%d events of b, want the one published before", c)
	}
	if _, err := kv.Get(ctx, "b"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("record b still there: %v", err)
	}
}

// TestPollCursor: no cursor reads as the zero cursor; a saved one reads
// back; an unreadable one is an error naming its key.
func TestPollCursor(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	if c, err := st.LoadCursor(ctx, subjects.BucketTracking, "main.poll"); err != nil || c != (PollCursor{}) {
		t.Fatalf("no cursor: %+v %v", c, err)
	}
	want := PollCursor{LastPoll: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), CoveredRev: 42, Holder: "replica-1"}
	if err := st.SaveCursor(ctx, subjects.BucketTracking, "main.poll", want); err != nil {
		t.Fatal(err)
	}
	if c, err := st.LoadCursor(ctx, subjects.BucketTracking, "main.poll"); err != nil || c != want {
		t.Errorf("read back %+v %v, want %+v", c, err, want)
	}
	if _, err := st.KV(subjects.BucketTracking).Put(ctx, "main.poll", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadCursor(ctx, subjects.BucketTracking, "main.poll"); err == nil || !strings.Contains(err.Error(), "main.poll") {
		t.Errorf("unreadable cursor: %v", err)
	}
}

// TestDecodeEntry: a loop's watch entries as DecodeEntry reads them: a
// record, one that is not JSON (an error, not a record), a deleted and a
// purged key (Deleted, nothing decoded).
func TestDecodeEntry(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	kv := st.KV(subjects.BucketTracking)
	type rec struct {
		N int `json:"n"`
	}
	w, err := kv.Watch(ctx, "main.t.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if e := <-w.Updates(); e != nil {
		t.Fatalf("an empty bucket delivered %v", e)
	}
	for _, step := range []func() error{
		func() error { _, err := kv.Put(ctx, "main.t.a", []byte(`{"n":7}`)); return err },
		func() error { _, err := kv.Put(ctx, "main.t.b", []byte(`{`)); return err },
		func() error { return kv.Delete(ctx, "main.t.a") },
		func() error { return kv.Purge(ctx, "main.t.b") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 4 {
		select {
		case e := <-w.Updates():
			en := DecodeEntry[rec](e, "main.t.")
			got = append(got, fmt.Sprintf("%s rev %d deleted %t n %d err %t", en.ID, en.Rev, en.Deleted, en.Rec.N, en.Err != nil))
		case <-time.After(5 * time.Second):
			t.Fatalf("watch delivered %v only", got)
		}
	}
	want := []string{"a rev 1 deleted false n 7 err false", "b rev 2 deleted false n 0 err true", "a rev 3 deleted true n 0 err false", "b rev 4 deleted true n 0 err false"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
