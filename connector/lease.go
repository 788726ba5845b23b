package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultLeaseTTL is how long a lease outlives its last renewal: the holder
// renews every TTL/3, and another replica takes over at most one TTL after
// the holder dies. The leases bucket's MaxAge is this TTL, so every replica
// of a deployment must use the same one.
const DefaultLeaseTTL = 9 * time.Second

// leaseValue is what a lease key holds: who holds it, since when.
type leaseValue struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
}

// lease is one KV key that at most one replica holds at a time: taken with
// Create (which fails while the key exists), renewed with Update on the
// revision it last wrote (which fails if anybody else wrote since), and
// deleted on a clean stop. The bucket's MaxAge expires a lease whose holder
// stopped renewing.
type lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	log    *slog.Logger
	ttl    time.Duration
}

// hold runs work(ctx) each time the lease is acquired, with a ctx that is
// cancelled the moment a renewal fails, and keeps trying to acquire it until
// ctx ends. On ctx's end it releases the lease if held.
func (l *lease) hold(ctx context.Context, work func(ctx context.Context)) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
		rev, err := l.acquire(ctx)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				l.log.Warn("lease: could not acquire", "key", l.key, "error", err)
			}
			retry.Reset(l.ttl / 3)
			continue
		}
		l.log.Info("lease acquired", "key", l.key, "holder", l.holder)
		workCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); work(workCtx) }()
		rev = l.keep(workCtx, rev, done)
		cancel()
		<-done
		// Let another replica (or this one, on the next try) take over at
		// once rather than after the TTL: on a clean stop, and when the work
		// gave up on its own (ingestion reloading after a failed
		// compare-and-set). After a failed renewal rev is likely stale and
		// nothing is deleted.
		l.release(rev)
		if ctx.Err() != nil {
			return
		}
		retry.Reset(l.ttl / 3)
	}
}

// release deletes the lease if it is still at rev.
func (l *lease) release(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err == nil {
		l.log.Info("lease released", "key", l.key)
	}
}

// keep renews the lease until ctx ends, work returns, or a renewal fails.
// It returns the last revision it wrote.
func (l *lease) keep(ctx context.Context, rev uint64, done <-chan struct{}) uint64 {
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	acquired := time.Now().UTC()
	for {
		select {
		case <-ctx.Done():
			return rev
		case <-done:
			return rev
		case <-tick.C:
		}
		// A renewal must land well within the TTL, or the lease may already
		// be someone else's by the time it does.
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		b, _ := json.Marshal(leaseValue{Holder: l.holder, Acquired: acquired, Renewed: time.Now().UTC()})
		next, err := l.kv.Update(rctx, l.key, b, rev)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("lease lost: stopping work now", "key", l.key, "error", err)
			}
			return rev
		}
		rev = next
	}
}

func (l *lease) acquire(ctx context.Context) (uint64, error) {
	now := time.Now().UTC()
	b, _ := json.Marshal(leaseValue{Holder: l.holder, Acquired: now, Renewed: now})
	cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	return l.kv.Create(cctx, l.key, b)
}

// leaseHolder reads who holds key, "" when nobody does.
func leaseHolder(ctx context.Context, kv jetstream.KeyValue, key string) (string, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var v leaseValue
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return "", fmt.Errorf("lease %s: %w", key, err)
	}
	return v.Holder, nil
}
