package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/subjects"
)

// open opens the store of prefix on a new server.
func open(t *testing.T, prefix string) (*Store, *nats.Conn) {
	t.Helper()
	srv := testparts.NATSServer(t)
	nc := testparts.Conn(t, srv)
	return openOn(t, nc, prefix), nc
}

func openOn(t *testing.T, nc *nats.Conn, prefix string) *Store {
	t.Helper()
	cfg := testparts.Config(nc.ConnectedUrl(), "http://127.0.0.1:1")
	cfg.Subjects.Prefix = prefix
	st, err := Open(context.Background(), nc, Options{Config: cfg, LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestOpenNamesFromPrefix: the stream and every bucket are named after the
// prefix (DESIGN.md §9), the leases bucket expires keys after the lease
// TTL, and opening again changes nothing.
func TestOpenNamesFromPrefix(t *testing.T) {
	st, nc := open(t, "nc")
	ctx := context.Background()
	if name := st.Events().CachedInfo().Config.Name; name != "NC_EVENTS" {
		t.Errorf("events stream %s, want NC_EVENTS", name)
	}
	if subj := st.Events().CachedInfo().Config.Subjects; !slices.Equal(subj, []string{"nc.*.event.>"}) {
		t.Errorf("events stream subjects %v", subj)
	}
	audit := st.Audit().CachedInfo().Config
	if audit.Name != "NC_AUDIT" || !slices.Equal(audit.Subjects, []string{"nc.*.audit.>"}) || audit.MaxAge != 8760*time.Hour ||
		audit.Duplicates != 24*time.Hour || !audit.DenyDelete || !audit.DenyPurge {
		t.Errorf("audit stream %s %v max_age %s duplicates %s deny delete %t purge %t, want NC_AUDIT nc.*.audit.> 8760h 24h, no delete, no purge",
			audit.Name, audit.Subjects, audit.MaxAge, audit.Duplicates, audit.DenyDelete, audit.DenyPurge)
	}
	ttls := map[subjects.Bucket]time.Duration{subjects.BucketLeases: 3 * time.Second, subjects.BucketRequests: 24 * time.Hour}
	for b, want := range map[subjects.Bucket]string{subjects.BucketState: "NC_STATE", subjects.BucketLeases: "NC_LEASES", subjects.BucketMonitors: "NC_MONITORS", subjects.BucketRequests: "NC_REQUESTS", subjects.BucketTracking: "NC_TRACKING"} {
		kv := st.KV(b)
		if kv == nil || kv.Bucket() != want {
			t.Fatalf("bucket %s: %v, want %s", b, kv, want)
		}
		status, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ttl := status.TTL(); ttl != ttls[b] {
			t.Errorf("%s: TTL %s, want %s", want, ttl, ttls[b])
		}
	}
	openOn(t, nc, "nc") // a second replica
	js, _ := jetstream.New(nc)
	var names []string
	for n := range js.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"KV_NC_LEASES", "KV_NC_MONITORS", "KV_NC_REQUESTS", "KV_NC_STATE", "KV_NC_TRACKING", "NC_AUDIT", "NC_EVENTS"}; !slices.Equal(names, want) {
		t.Errorf("streams %v, want %v", names, want)
	}
}

// TestOpenRefusesAStreamNotItsOwn: a stream of the events stream's name
// that holds other subjects is another deployment's (or not s1bridge's):
// Open refuses it, naming what it holds, and leaves it alone.
func TestOpenRefusesAStreamNotItsOwn(t *testing.T) {
	srv := testparts.NATSServer(t)
	nc := testparts.Conn(t, srv)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NC_EVENTS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := testparts.Config(srv.ClientURL(), "http://127.0.0.1:1")
	cfg.Subjects.Prefix = "nc"
	_, err := Open(ctx, nc, Options{Config: cfg, LeaseTTL: time.Second})
	if err == nil || !strings.Contains(err.Error(), "not s1bridge's") || !strings.Contains(err.Error(), "orders.>") || !strings.Contains(err.Error(), `"nc"`) {
		t.Fatalf("Open on another's stream: %v", err)
	}
	s, _ := js.Stream(ctx, "NC_EVENTS")
	if subj := s.CachedInfo().Config.Subjects; !slices.Equal(subj, []string{"orders.>"}) {
		t.Errorf("the stream's subjects became %v", subj)
	}
}

// TestOpenRefusesAnotherPrefixsAudit: an audit stream of the configured
// name that holds another prefix's records is refused as the events stream
// is, naming both; with streams.audit.enabled false there is none.
func TestOpenRefusesAnotherPrefixsAudit(t *testing.T) {
	srv := testparts.NATSServer(t)
	nc := testparts.Conn(t, srv)
	ctx := context.Background()
	openOn(t, nc, "s1")
	cfg := testparts.Config(srv.ClientURL(), "http://127.0.0.1:1")
	cfg.Subjects.Prefix = "s2"
	cfg.Streams.Audit.Name = "S1_AUDIT"
	_, err := Open(ctx, nc, Options{Config: cfg, LeaseTTL: time.Second})
	if err == nil || !strings.Contains(err.Error(), `the audit records of prefix "s1"`) || !strings.Contains(err.Error(), "streams.audit.name") || !strings.Contains(err.Error(), "S2_AUDIT") {
		t.Fatalf("Open on another prefix's audit stream: %v", err)
	}
	js, _ := jetstream.New(nc)
	s, _ := js.Stream(ctx, "S1_AUDIT")
	if subj := s.CachedInfo().Config.Subjects; !slices.Equal(subj, []string{"s1.*.audit.>"}) {
		t.Errorf("the stream's subjects became %v", subj)
	}
	cfg.Streams.Audit = config.AuditStream{Enabled: false}
	st, err := Open(ctx, nc, Options{Config: cfg, LeaseTTL: time.Second})
	if err != nil || st.Audit() != nil {
		t.Fatalf("audit off: %v, stream %v", err, st.Audit())
	}
	if _, err := js.Stream(ctx, "S2_AUDIT"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("audit off made a stream: %v", err)
	}
}

// TestIsConflict: every compare-and-set refusal a single server gives, and
// the clustered one (10164, caused for real in package ingest's
// TestIngestStopsOnReplicatedConflict), is a conflict; nothing else is.
func TestIsConflict(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	kv := st.KV(subjects.BucketState)
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "k", []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
	_, createErr := kv.Create(ctx, "k", []byte("x"))
	_, updateErr := kv.Update(ctx, "k", []byte("x"), rev)
	deleteErr := kv.Delete(ctx, "k", jetstream.LastRevision(rev))
	b := st.NewBatch()
	_ = b.Put(subjects.BucketState, "k", []byte("x"), rev)
	_ = b.Delete(subjects.BucketState, "k", rev)
	_ = b.Put(subjects.BucketState, "new", []byte("x"), 0)
	var batchErrs []error
	if err := b.Wait(ctx, func(i int, a *jetstream.PubAck, err error) { batchErrs = append(batchErrs, err) }); err != nil {
		t.Fatal(err)
	}
	_, notFound := kv.Get(ctx, "missing")
	_, noStream := st.js.Stream(ctx, "MISSING")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"create of a key that exists", createErr, true},
		{"update on a stale revision", updateErr, true},
		{"delete on a stale revision", deleteErr, true},
		{"pipelined put on a stale revision", batchErrs[0], true},
		{"pipelined delete on a stale revision", batchErrs[1], true},
		{"clustered refusal, 10164", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}, true},
		{"wrapped", errors.Join(errors.New("write cursor"), updateErr), true},
		{"a pipelined put that succeeded", batchErrs[2], false},
		{"nil", nil, false},
		{"key not found", notFound, false},
		{"stream not found", noStream, false},
		{"deadline", context.DeadlineExceeded, false},
		{"publish timeout", jetstream.ErrAsyncPublishTimeout, false},
	} {
		if got := IsConflict(tc.err); got != tc.want {
			t.Errorf("%s: IsConflict(%v) = %t, want %t", tc.name, tc.err, got, tc.want)
		}
	}
	// The batch was emptied by Wait, and serves again.
	if b.Len() != 0 {
		t.Fatalf("%d publishes left after Wait", b.Len())
	}
	_ = b.Publish(&nats.Msg{Subject: st.Subjects().ThreatEvent("main", "1", subjects.KindCreated, ""), Data: []byte("{}")})
	if err := b.Wait(ctx, func(_ int, a *jetstream.PubAck, err error) {
		if err != nil || a.Stream != "S1_EVENTS" {
			t.Errorf("event publish: %v %+v", err, a)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPutAsyncAwait: a single compare-and-set write awaited on its own; an
// Await cut short by its context loses nothing, a later Await gets the ack.
func TestPutAsyncAwait(t *testing.T) {
	st, _ := open(t, "s1")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// The select may see the ack first when it is already there: try keys
	// until the ended context wins.
	var f jetstream.PubAckFuture
	key := ""
	for i := 0; key == "" && i < 20; i++ {
		k := fmt.Sprintf("main.req.a%d", i)
		var err error
		if f, err = st.PutAsync(subjects.BucketRequests, k, []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Await(done, f); errors.Is(err, context.Canceled) {
			key = k
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if key == "" {
		t.Fatal("Await never reported the ended context")
	}
	ack, err := Await(context.Background(), f)
	if err != nil || ack.Stream != "KV_S1_REQUESTS" {
		t.Fatalf("Await again: %+v %v", ack, err)
	}
	f, _ = st.PutAsync(subjects.BucketRequests, key, []byte("2"), 0)
	if _, err := Await(context.Background(), f); !IsConflict(err) {
		t.Errorf("a second create: %v, want a conflict", err)
	}
	f, _ = st.PutAsync(subjects.BucketRequests, key, []byte("2"), ack.Sequence)
	if _, err := Await(context.Background(), f); err != nil {
		t.Errorf("an update at the revision read: %v", err)
	}
}
