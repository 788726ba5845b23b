package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/subjects"
)

// Batch pipelines asynchronous publishes to the store, events and
// compare-and-set writes of keys alike, and waits for their acks together:
// one round trip for a page of writes instead of one per write. A Batch is
// reused after Wait; it is not safe for concurrent use.
type Batch struct {
	st   *Store
	futs []jetstream.PubAckFuture
}

// NewBatch returns an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{st: s} }

// Len is the number of publishes awaiting Wait.
func (b *Batch) Len() int { return len(b.futs) }

// Publish adds m, with opts.
func (b *Batch) Publish(m *nats.Msg, opts ...jetstream.PublishOpt) error {
	f, err := b.st.js.PublishMsgAsync(m, opts...)
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	b.futs = append(b.futs, f)
	return nil
}

// Put adds a write of value to key in bucket, if the key is still at
// revision rev (0: if it does not exist). A refusal is a conflict
// (IsConflict).
func (b *Batch) Put(bucket subjects.Bucket, key string, value []byte, rev uint64) error {
	return b.Publish(b.st.kvPut(bucket, key, value), jetstream.WithExpectLastSequencePerSubject(rev))
}

func (s *Store) kvPut(bucket subjects.Bucket, key string, value []byte) *nats.Msg {
	return &nats.Msg{Subject: subjects.KVSubject(s.subj.BucketName(bucket), key), Data: value}
}

// PublishAsync starts publishing m, with opts, and returns its ack to
// come: one write whose ack its caller waits for on its own (Await),
// alongside other work, where a Batch waits for many together.
func (s *Store) PublishAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := s.js.PublishMsgAsync(m, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return f, nil
}

// PutAsync starts the compare-and-set write Batch.Put makes: value to key
// in bucket if the key is still at revision rev (0: if it does not exist).
func (s *Store) PutAsync(bucket subjects.Bucket, key string, value []byte, rev uint64) (jetstream.PubAckFuture, error) {
	return s.PublishAsync(s.kvPut(bucket, key, value), jetstream.WithExpectLastSequencePerSubject(rev))
}

// Await waits for f's ack until ctx ends. f may be awaited again after ctx
// ended: its ack is not lost (within PublishAckTimeout it comes, or its
// error, jetstream.ErrAsyncPublishTimeout).
func Await(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case a := <-f.Ok():
		return a, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Delete adds a delete of key in bucket, if the key is still at revision
// rev: the same delete marker jetstream.KeyValue.Delete writes.
func (b *Batch) Delete(bucket subjects.Bucket, key string, rev uint64) error {
	m := &nats.Msg{Subject: subjects.KVSubject(b.st.subj.BucketName(bucket), key), Header: nats.Header{}}
	m.Header.Set(subjects.HeaderKVOperation, subjects.KVOperationDelete)
	return b.Publish(m, jetstream.WithExpectLastSequencePerSubject(rev))
}

// Wait waits for the ack of every publish, in the order they were added,
// and calls each with its index and its ack or error (a write refused by
// compare-and-set gives an error IsConflict recognises; a publish not
// acknowledged within PublishAckTimeout, jetstream.ErrAsyncPublishTimeout).
// It returns early only when ctx ends, with ctx's error. The batch is empty
// afterwards, ready for reuse.
func (b *Batch) Wait(ctx context.Context, each func(i int, ack *jetstream.PubAck, err error)) error {
	defer func() {
		clear(b.futs)
		b.futs = b.futs[:0]
	}()
	for i, f := range b.futs {
		select {
		case a := <-f.Ok():
			each(i, a, nil)
		case err := <-f.Err():
			each(i, nil, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
