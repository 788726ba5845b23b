// Package lease elects one holder of a role among replicas with a KV key:
// taken with Create (which fails while the key exists), renewed with Update
// on the revision the holder last wrote (which fails if anybody else wrote
// since), and deleted when the holder stops. The bucket's MaxAge expires a
// lease whose holder stopped renewing. Ingestion and the monitor poller run
// their loops under one each.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/store"
)

// DefaultTTL is how long a lease outlives its last renewal: the holder
// renews every TTL/3, and another replica takes over at most one TTL after
// the holder dies. The leases bucket's MaxAge is this TTL, so every replica
// of a deployment must use the same one.
const DefaultTTL = 9 * time.Second

// value is what a lease key holds: who holds it, since when.
type value struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
}

// Lease is one key that at most one replica holds at a time. Its methods
// are not safe for concurrent use: one goroutine runs Hold.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	log    *slog.Logger
}

// New returns the lease key in kv (a bucket whose MaxAge is ttl), to be held
// as holder (unique per replica).
func New(kv jetstream.KeyValue, key, holder string, ttl time.Duration, log *slog.Logger) *Lease {
	return &Lease{kv: kv, key: key, holder: holder, ttl: ttl, log: log}
}

// Hold runs work(ctx) each time the lease is acquired, with a ctx that is
// cancelled the moment a renewal fails, and keeps trying to acquire it until
// ctx ends. Whenever work returns (ctx ended, or it gave up on its own) the
// lease is released, so that another replica, or this one on its next try,
// takes over at once rather than after the TTL.
func (l *Lease) Hold(ctx context.Context, work func(ctx context.Context)) {
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
			if !store.IsConflict(err) && ctx.Err() == nil {
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
		// After a failed renewal rev is likely stale and nothing is
		// deleted.
		l.release(rev)
		if ctx.Err() != nil {
			return
		}
		retry.Reset(l.ttl / 3)
	}
}

// release deletes the lease if it is still at rev.
func (l *Lease) release(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err == nil {
		l.log.Info("lease released", "key", l.key)
	}
}

// keep renews the lease until ctx ends, work returns, or a renewal fails.
// It returns the last revision it wrote.
func (l *Lease) keep(ctx context.Context, rev uint64, done <-chan struct{}) uint64 {
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
		b, _ := json.Marshal(value{Holder: l.holder, Acquired: acquired, Renewed: time.Now().UTC()})
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

func (l *Lease) acquire(ctx context.Context) (uint64, error) {
	now := time.Now().UTC()
	b, _ := json.Marshal(value{Holder: l.holder, Acquired: now, Renewed: now})
	cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	return l.kv.Create(cctx, l.key, b)
}

// Holder reads who holds key in kv, "" when nobody does.
func Holder(ctx context.Context, kv jetstream.KeyValue, key string) (string, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var v value
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return "", fmt.Errorf("lease %s: %w", key, err)
	}
	return v.Holder, nil
}
