package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/lease"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/subjects"
)

// polls records the end of every poll.
type polls struct {
	mu   sync.Mutex
	errs []error // nil for a poll that completed
}

func (p *polls) EventsPublished(string, subjects.Entity, int, int) {}
func (p *polls) PollDone(_ string, _ subjects.Entity, _ Progress, err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *polls) get() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// TestIngestStopsOnReplicatedConflict runs ingestion on a three-node
// cluster with R3 stream and buckets, as the README recommends. While a
// leader commits its first page, another writer's compare-and-set of the
// page's first threat state is still in flight (what a deposed leader's
// pipelined write is to its successor): JetStream refuses the leader's
// write with 10164, not 10071. store.IsConflict must recognise it, and the
// leader must take it for what it is at once: stop, without polling again,
// and release its lease; a successor then resumes with nothing lost or
// repeated.
func TestIngestStopsOnReplicatedConflict(t *testing.T) {
	const threats, pageSize = 300, 100
	cl := testparts.NATSCluster(t, 3)
	emu, url := testparts.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: threats}))
	cfg := testparts.Config(cl.URL(), url)
	testparts.IngestOn(cfg)
	cfg.Streams.Events.Replicas = 3
	m := cfg.Consoles["main"]
	m.Ingest.PageSize = pageSize
	cfg.Consoles["main"] = m
	h := openHarness(t, cfg, testparts.Conn(t, cl.Server(0)), emu)
	ctx := context.Background()
	// A lease TTL longer than the test: a successor that took over because
	// the lease expired would not be a release.
	const ttl = time.Minute

	// 1. A real 10164, and the check that recognises it.
	key := subjects.StateKey("main", subjects.EntityThreat, "probe")
	var codes []jetstream.ErrorCode
	for try := 0; try < 20 && !slices.Contains(codes, jetstream.JSErrCodeStreamWrongLastSequenceConstant); try++ {
		b := h.st.NewBatch()
		_ = b.Put(subjects.BucketState, key, []byte(`{}`), 0)
		_ = b.Put(subjects.BucketState, key, []byte(`{}`), 0) // in flight behind the first
		var errs []error
		_ = b.Wait(ctx, func(_ int, _ *jetstream.PubAck, err error) { errs = append(errs, err) })
		if errs[0] != nil || errs[1] == nil {
			t.Fatalf("first write %v, second %v: want the second refused", errs[0], errs[1])
		}
		var apiErr *jetstream.APIError
		if !errors.As(errs[1], &apiErr) || !store.IsConflict(errs[1]) {
			t.Fatalf("refusal %v (%T) not recognised as a conflict", errs[1], errs[1])
		}
		codes = append(codes, apiErr.ErrorCode)
		key = subjects.StateKey("main", subjects.EntityThreat, "probe"+string(rune('a'+try)))
	}
	if !slices.Contains(codes, jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		t.Fatalf("no 10164 from a write behind one in flight on R3; codes %v", codes)
	}
	t.Logf("refusal codes of writes behind one in flight: %v", codes)

	// 2. A leader meets one.
	obs := &polls{}
	a := h.ingester("a")
	a.cfg.LeaseTTL, a.obs = ttl, obs
	var (
		raced     string
		racedSeq  uint64
		otherDone = make(chan error, 1)
	)
	a.afterPublish = func() error {
		if raced != "" {
			return nil
		}
		// The page's first threat is the first event just published.
		info, err := h.st.Events().Info(ctx)
		if err != nil {
			return err
		}
		first, err := h.st.Events().GetMsg(ctx, info.State.FirstSeq)
		if err != nil {
			return err
		}
		raced = first.Header.Get("ce-subject")
		racedSeq = info.State.FirstSeq
		st, _ := emu.Threat(raced)
		v, _ := json.Marshal(map[string]any{"s": st.IncidentStatus, "v": st.AnalystVerdict, "m": st.MitigationStatus, "u": st.UpdatedAt})
		// The other writer's state, the same one this leader would write,
		// not waited for: it is in flight when the leader's follows.
		b := h.st.NewBatch()
		if err := b.Put(subjects.BucketState, a.stateKey(raced), v, 0); err != nil {
			return err
		}
		go func() {
			var werr error
			_ = b.Wait(ctx, func(_ int, _ *jetstream.PubAck, err error) { werr = err })
			otherDone <- werr
		}()
		return nil
	}
	actx, stopA := context.WithCancel(ctx)
	aDone := make(chan struct{})
	go func() { defer close(aDone); a.Run(actx) }()
	defer func() { stopA(); <-aDone }()
	testparts.WaitFor(t, 30*time.Second, "the leader to meet the conflict", func() bool { return len(obs.get()) > 0 })
	if err := <-otherDone; err != nil {
		t.Fatalf("the other writer's state was refused: %v", err)
	}
	err := obs.get()[0]
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant {
		t.Fatalf("the leader's first poll ended with %v, want the 10164 refusal of its write of %s (event %d)", err, raced, racedSeq)
	}
	if !store.IsConflict(err) || !errors.Is(err, errFenced) {
		t.Fatalf("the leader did not take %v for a conflict", err)
	}
	leases := h.st.KV(subjects.BucketLeases)
	testparts.WaitFor(t, 5*time.Second, "the leader to release its lease", func() bool {
		holder, err := lease.Holder(ctx, leases, a.leaseKey())
		return err == nil && holder == ""
	})
	stopA()
	<-aDone
	if got := obs.get(); len(got) != 1 {
		t.Fatalf("the leader polled %d times (%v); want it to stop at the conflict", len(got), got)
	}

	// 3. A successor resumes: every threat once, the raced one included.
	b := h.ingester("b")
	b.cfg.LeaseTTL = ttl
	bctx, stopB := context.WithCancel(ctx)
	bDone := make(chan struct{})
	go func() { defer close(bDone); b.Run(bctx) }()
	defer func() { stopB(); <-bDone }()
	testparts.WaitFor(t, 20*time.Second, "the successor to lead", b.Leader)
	testparts.WaitFor(t, 60*time.Second, "every threat in the stream", func() bool {
		return testparts.StreamMsgs(testparts.Conn(t, cl.Server(1)), cfg.EventsStreamName()) >= threats
	})
	testparts.WaitFor(t, 30*time.Second, "a complete poll", func() bool {
		s, err := b.Status(ctx)
		return err == nil && s.LastPollAt != nil
	})
	info, err := h.st.Events().Info(ctx, jetstream.WithSubjectFilter(h.subj.ThreatEvent("main", "*", subjects.KindCreated, "")))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != threats || len(info.State.Subjects) != threats {
		t.Errorf("%d created events for %d threats, want %d for %d", info.State.Msgs, len(info.State.Subjects), threats, threats)
	}
	for subject, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("%s: %d events", subject, n)
		}
	}
	if all, _ := h.st.Events().Info(ctx); all.State.Msgs != threats {
		t.Errorf("the stream holds %d events, want %d created events and nothing else", all.State.Msgs, threats)
	}
}
