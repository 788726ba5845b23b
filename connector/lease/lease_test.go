package lease

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/internal/testparts"
)

// bucket returns a fresh leases bucket with ttl on a new server.
func bucket(t *testing.T, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(testparts.Conn(t, testparts.NATSServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "LEASE_TEST", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// Work that gives up on its own (ingestion after a failed compare-and-set)
// releases the lease: it is taken again after TTL/3, not after the TTL.
func TestLeaseReleasedWhenWorkGivesUp(t *testing.T) {
	const ttl = 3 * time.Second
	l := New(bucket(t, ttl), "k", "h", ttl, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	starts := make(chan time.Time, 2)
	go l.Hold(ctx, func(context.Context) {
		starts <- time.Now()
		if len(starts) == 2 {
			cancel()
		}
	})
	first := <-starts
	select {
	case second := <-starts:
		if d := second.Sub(first); d > ttl/3+time.Second {
			t.Fatalf("lease taken again after %s", d)
		}
	case <-time.After(2 * ttl):
		t.Fatal("lease not taken again")
	}
}

// TestOneHolderAtATime: of two replicas one holds the lease; Holder names
// it; when it stops, the other takes over at once (the lease is released)
// and Holder names the other.
func TestOneHolderAtATime(t *testing.T) {
	// b tries every ttl/3 (2 s): it must hold the lease within that of a's
	// stop, well before a lease a renewed at most ttl/3 before could expire
	// (4 s).
	const ttl = 6 * time.Second
	kv := bucket(t, ttl)
	ctx := context.Background()
	type replica struct {
		cancel  context.CancelFunc
		done    chan struct{}
		holding chan string
	}
	start := func(name string) *replica {
		rctx, cancel := context.WithCancel(ctx)
		r := &replica{cancel: cancel, done: make(chan struct{}), holding: make(chan string, 1)}
		go func() {
			defer close(r.done)
			New(kv, "main.ingest", name, ttl, slog.New(slog.DiscardHandler)).Hold(rctx, func(wctx context.Context) {
				r.holding <- name
				<-wctx.Done()
			})
		}()
		return r
	}
	a := start("a")
	if got := <-a.holding; got != "a" {
		t.Fatalf("holding %q", got)
	}
	b := start("b")
	if h, err := Holder(ctx, kv, "main.ingest"); err != nil || h != "a" {
		t.Fatalf("Holder = %q %v, want a", h, err)
	}
	select {
	case <-b.holding:
		t.Fatal("b holds the lease a holds")
	case <-time.After(500 * time.Millisecond):
	}
	a.cancel()
	<-a.done
	select {
	case <-b.holding:
	case <-time.After(ttl/3 + time.Second):
		t.Fatal("b did not take over once a stopped")
	}
	if h, err := Holder(ctx, kv, "main.ingest"); err != nil || h != "b" {
		t.Fatalf("Holder = %q %v, want b", h, err)
	}
	b.cancel()
	<-b.done
	if h, err := Holder(ctx, kv, "main.ingest"); err != nil || h != "" {
		t.Fatalf("Holder after both stopped = %q %v, want none", h, err)
	}
}
