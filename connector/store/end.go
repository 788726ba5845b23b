package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/subjects"
)

// How a record that must end exactly once (a monitor, a tracked action)
// ends, whatever crashes: the one that decides the outcome rewrites the
// record with it, by compare-and-set on the revision it read (the claim:
// of two deciders, one wins); the winner publishes the outcome event with a
// deterministic Nats-Msg-Id, waits for the ack, then deletes the record
// (compare-and-set on the claim). A claim left behind by a crash is
// completed by whoever finds it later (Complete): it publishes the event
// unless the stream holds it already, then deletes the record.

// Ending is a record of a bucket to end.
type Ending struct {
	// Key is the record's key; Rev the revision the decision was made on.
	Key string
	Rev uint64
	// Claim is the record with its decided outcome.
	Claim []byte
	// Event is the outcome event, its Nats-Msg-Id set.
	Event *nats.Msg
}

// Ended is how far End took one Ending. A claim won (Claimed) but not
// Deleted stands in the bucket: the caller completes it later (Complete).
type Ended struct {
	// Claimed is the revision of the claim, 0 when it was not won.
	Claimed uint64
	// Lost is true when another writer changed the record first: its
	// outcome is somebody else's to publish.
	Lost bool
	// Stored is true once the event is in the stream.
	Stored bool
	// Deleted is true once the record is gone (or another completed it).
	Deleted bool
	// Err is why it stopped short, nil when it did not or it was Lost.
	Err error
}

// endChunk is how many endings go through the three rounds together,
// within the async publish window (maxPending).
const endChunk = 1000

// End ends records of bucket in three pipelined rounds, each waiting for
// the previous one's acks: claim every record, publish the events of the
// claims won, delete the records whose event is stored. It returns what
// became of each ending, in order, as far as it got; the error is ctx's
// when it ended first (the endings not reached are left as they were).
func (b *Batch) End(ctx context.Context, bucket subjects.Bucket, ends []Ending) ([]Ended, error) {
	out := make([]Ended, len(ends))
	for off := 0; off < len(ends); off += endChunk {
		chunk := ends[off:min(off+endChunk, len(ends))]
		if err := b.end(ctx, bucket, chunk, out[off:off+len(chunk)]); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (b *Batch) end(ctx context.Context, bucket subjects.Bucket, ends []Ending, out []Ended) error {
	// 1. Claims.
	n := 0
	for i, e := range ends {
		if err := b.Put(bucket, e.Key, e.Claim, e.Rev); err != nil {
			for j := i; j < len(ends); j++ {
				out[j].Err = fmt.Errorf("claim %s: %w", ends[j].Key, err)
			}
			break
		}
		n++
	}
	if err := b.Wait(ctx, func(i int, a *jetstream.PubAck, err error) {
		switch {
		case err == nil:
			out[i].Claimed = a.Sequence
		case IsConflict(err):
			out[i].Lost = true
		default:
			out[i].Err = fmt.Errorf("claim %s: %w", ends[i].Key, err)
		}
	}); err != nil {
		return err
	}
	// 2. Events of the claims won.
	var won []int
	for i := range ends[:n] {
		if out[i].Claimed == 0 {
			continue
		}
		if err := b.Publish(ends[i].Event); err != nil {
			for j := i; j < n; j++ {
				if out[j].Claimed != 0 {
					out[j].Err = fmt.Errorf("publish %s: %w", ends[j].Event.Subject, err)
				}
			}
			break
		}
		won = append(won, i)
	}
	if err := b.Wait(ctx, func(k int, _ *jetstream.PubAck, err error) {
		if i := won[k]; err != nil {
			out[i].Err = fmt.Errorf("publish %s: %w", ends[i].Event.Subject, err)
		} else {
			out[i].Stored = true
		}
	}); err != nil {
		return err
	}
	// 3. Deletes of the records whose event is stored.
	var deleting []int
	for _, i := range won {
		if !out[i].Stored {
			continue
		}
		if err := b.Delete(bucket, ends[i].Key, out[i].Claimed); err != nil {
			out[i].Err = fmt.Errorf("delete %s: %w", ends[i].Key, err)
			break
		}
		deleting = append(deleting, i)
	}
	return b.Wait(ctx, func(k int, _ *jetstream.PubAck, err error) {
		i := deleting[k]
		switch {
		case err == nil, IsConflict(err): // a conflict: somebody completed it first
			out[i].Deleted = true
		default:
			out[i].Err = fmt.Errorf("delete %s: %w", ends[i].Key, err)
		}
	})
}

// Complete finishes an ending whose claim, revision rev of key in bucket,
// stands: it publishes event unless check finds it in the events stream
// (a claim older than the duplicate window may have been published long
// ago), then deletes the record if it is still at rev. It is idempotent.
func (s *Store) Complete(ctx context.Context, bucket subjects.Bucket, key string, rev uint64, event *nats.Msg, check bool) error {
	published := false
	if check {
		_, err := s.events.GetLastMsgForSubject(ctx, event.Subject)
		switch {
		case err == nil:
			published = true
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return err
		}
	}
	if !published {
		if _, err := s.Publish(ctx, event); err != nil {
			return fmt.Errorf("publish %s: %w", event.Subject, err)
		}
	}
	err := s.KV(bucket).Delete(ctx, key, jetstream.LastRevision(rev))
	if err != nil && !IsConflict(err) { // a conflict: somebody completed it first
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PollCursor is a poller's progress, as stored in KV: every record whose
// revision is at most CoveredRev has had everything since LastPoll (less
// the poller's overlap) looked at. A stale cursor only makes the next
// poller read further back, so SaveCursor writes it with a plain put.
type PollCursor struct {
	LastPoll   time.Time `json:"lastPoll"`
	CoveredRev uint64    `json:"coveredRev"`
	Holder     string    `json:"holder"`
}

// LoadCursor reads the cursor at key of bucket; the zero cursor when there
// is none yet.
func (s *Store) LoadCursor(ctx context.Context, bucket subjects.Bucket, key string) (PollCursor, error) {
	var c PollCursor
	e, err := s.KV(bucket).Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return c, nil
	case err != nil:
		return c, err
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return c, fmt.Errorf("poll cursor %s: %w", key, err)
	}
	return c, nil
}

// SaveCursor writes c at key of bucket.
func (s *Store) SaveCursor(ctx context.Context, bucket subjects.Bucket, key string, c PollCursor) error {
	b, _ := json.Marshal(c)
	if _, err := s.KV(bucket).Put(ctx, key, b); err != nil {
		return fmt.Errorf("write poll cursor %s: %w", key, err)
	}
	return nil
}

// Entry is a KV watch entry of an ending record's bucket as a loop takes
// it: the id (the key below prefix), whether the key is gone (deleted or
// purged: its record ended), and otherwise the record R decoded. Err is set
// when the value is not a record; the loop logs and skips it.
type Entry[R any] struct {
	ID      string
	Rev     uint64
	Deleted bool
	Rec     R
	Err     error
}

// DecodeEntry reads e, a key below prefix holding JSON records of type R.
func DecodeEntry[R any](e jetstream.KeyValueEntry, prefix string) Entry[R] {
	out := Entry[R]{ID: strings.TrimPrefix(e.Key(), prefix), Rev: e.Revision()}
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		out.Deleted = true
		return out
	}
	out.Err = json.Unmarshal(e.Value(), &out.Rec)
	return out
}
