package budget_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/budget"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// deployment is several replicas sharing one console's budget: each has its
// own NATS connection, Budget and sentinelone.Client, as separate processes
// would, against one nats-server and one emulator.
type deployment struct {
	tb   testing.TB
	srv  *server.Server
	emu  *emulator.Emulator
	url  string
	base budget.Config // what every replica's Config starts from
}

// replica is one member of a deployment. read and mutate are what the
// benchmark's callers do; in phase 2 they become action requests to a
// connector replica over NATS.
type replica struct {
	name   string
	nc     *nats.Conn
	b      *budget.Budget
	client *sentinelone.Client
	path   string // what read asks for
}

// testTTL is the leases bucket's MaxAge in these tests: short, so that a
// dead replica drops out in a test's time.
const testTTL = 1500 * time.Millisecond

// newDeployment starts a nats-server and an emulator and creates the leases
// bucket with ttl as MaxAge. perSecond and burst are the console's budget.
func newDeployment(tb testing.TB, perSecond float64, burst int, ttl time.Duration, emuOpts ...emulator.Option) *deployment {
	tb.Helper()
	return newDeploymentOn(tb, testenv.NATSServer(tb), perSecond, burst, ttl, emuOpts...)
}

// newDeploymentOn is newDeployment with the nats-server given.
func newDeploymentOn(tb testing.TB, srv *server.Server, perSecond float64, burst int, ttl time.Duration, emuOpts ...emulator.Option) *deployment {
	tb.Helper()
	d := &deployment{tb: tb, srv: srv}
	d.emu, d.url = testenv.Emulator(tb, emuOpts...)
	js, err := jetstream.New(testenv.Conn(tb, d.srv))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: mustSubjects(tb).BucketName(subjects.BucketLeases), TTL: ttl, History: 1}); err != nil {
		tb.Fatal(err)
	}
	d.base = budget.Config{Console: "main", PerSecond: perSecond, Burst: burst, TTL: ttl,
		Tick: 100 * time.Millisecond, Logger: testenv.Logger(tb)}
	return d
}

// add starts a replica named name whose reads ask for path, and stops it at
// cleanup. edit may adjust its budget's Config.
func (d *deployment) add(name, path string, edit func(*budget.Config)) *replica {
	tb := d.tb
	tb.Helper()
	nc, err := nats.Connect(d.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, mustSubjects(tb).BucketName(subjects.BucketLeases))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := d.base
	cfg.Replica, cfg.KV = name, kv
	cfg.Logger = cfg.Logger.With("test_replica", name)
	if edit != nil {
		edit(&cfg)
	}
	b, err := budget.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: d.url, Token: testenv.Token, Timeout: 5 * time.Second,
		RetryMax: 2, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond,
	}, sentinelone.WithLimiter(b.Limiter()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Stop(ctx)
		client.CloseIdleConnections()
	})
	return &replica{name: name, nc: nc, b: b, client: client, path: path}
}

// read makes one read-only call (lane read, the default).
func (r *replica) read(ctx context.Context) error {
	switch r.path {
	case emulator.PathSites:
		_, err := r.client.ListSites(ctx, sentinelone.SiteFilter{})
		return err
	default:
		_, err := r.client.SystemInfo(ctx)
		return err
	}
}

// mutate makes one mutating call in the mutating lane.
func (r *replica) mutate(ctx context.Context) error {
	_, err := r.client.ConnectAgents(sentinelone.WithLane(ctx, sentinelone.LaneMutating), []string{"225494730938493804"})
	return err
}

// flood runs callers goroutines spread over replicas, each reading back to
// back until the returned stop is called; stop waits for them. Errors are
// counted, not fatal: under a 429 storm reads fail by design.
func flood(replicas []*replica, callers int) (stop func() (ok, failed int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	for i := range callers {
		r := replicas[i%len(replicas)]
		wg.Go(func() {
			for ctx.Err() == nil {
				err := r.read(ctx)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, context.Canceled):
					failed++
				}
				mu.Unlock()
			}
		})
	}
	return func() (int, int) {
		cancel()
		wg.Wait()
		return ok, failed
	}
}

// arrivals returns when the emulator received each request for one of
// paths (all when none given) since from, sorted.
func (d *deployment) arrivals(from time.Time, paths ...string) []time.Time {
	var out []time.Time
	for _, r := range d.emu.Requests() {
		if r.At.Before(from) {
			continue
		}
		if len(paths) > 0 && !slices.ContainsFunc(paths, func(p string) bool { return r.Path == emulator.APIPrefix+p }) {
			continue
		}
		out = append(out, r.At)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// maxInWindow is the largest number of sorted times within any span of
// length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) > w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// between counts the sorted times in [from, to).
func between(times []time.Time, from, to time.Time) int {
	n := 0
	for _, at := range times {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes, and fails naming
// what it waited for and what it last saw.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s; last saw %s", timeout, what, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shares describes the replicas' statuses for failure messages.
func shares(rs ...*replica) string {
	s := ""
	for _, r := range rs {
		st := r.b.Status()
		s += fmt.Sprintf("[%s share %.3f alloc %.3f throttle %.2f replicas %d demand %.1f isolated %v] ",
			r.name, st.Share, st.Allocation, st.Throttle, st.Replicas, st.Demand, st.Isolated)
	}
	return s
}

// mustSubjects is the subject builder of the default prefix.
func mustSubjects(tb testing.TB) subjects.Subjects {
	s, err := subjects.New("s1")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
