package budget_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/connector/budget"
	"github.com/s1bridge/s1bridge/emulator"
)

// benchWindow is how long BenchmarkSharedBudget floods the console: 30 s
// for the numbers (issue 14); a few seconds for a smoke check:
//
//	go test -run '^$' -bench SharedBudget -benchtime 1x ./connector/budget -budget.window 5s
var benchWindow = flag.Duration("budget.window", 30*time.Second, "how long BenchmarkSharedBudget floods the console")

// The load of BenchmarkSharedBudget (issue 14, "Must show").
const (
	benchReplicas  = 3
	benchPerSecond = 10
	benchBurst     = 10
	benchReaders   = 60
	benchMutateGap = 500 * time.Millisecond // one mutating call every half second, round robin
	targetMutP99   = time.Second
)

// target is one replica as the benchmark drives it: a read-only action and
// a mutating one. Phase 1 drives the budget's own replicas (a Budget and a
// sentinelone.Client each); phase 2 swaps in connector replicas answering
// agents.list and agents.connect over NATS, and nothing else changes.
type target interface {
	read(ctx context.Context) error
	mutate(ctx context.Context) error
}

// BenchmarkSharedBudget: three replicas share per_second 10, burst 10, while
// 60 concurrent callers read through them for the window and a mutating
// call goes through one of them every half second. It reports the rate the
// console saw against the budget (the whole window must stay within
// per_second × window + burst, and so must every second), and the p99 of
// the mutating calls (target ≤ 1 s). Each iteration is one whole
// measurement: run it with -benchtime 1x.
func BenchmarkSharedBudget(b *testing.B) {
	d := newDeployment(b, benchPerSecond, benchBurst, budget.DefaultTTL, emulator.WithRequestLog(100000))
	realTuning := func(c *budget.Config) { c.Tick = 0 } // the defaults, as a deployment runs
	var targets []target
	var replicas []*replica
	for i := range benchReplicas {
		r := d.add(fmt.Sprintf("r%d", i+1), emulator.PathSystemInfo, realTuning)
		replicas = append(replicas, r)
		targets = append(targets, r)
	}
	var res sharedBudgetResult
	for b.Loop() {
		var err error
		if res, err = runSharedBudget(b.Context(), d, targets, *benchWindow); err != nil {
			b.Fatal(err)
		}
	}
	res.shares = shares(replicas...)
	fmt.Print(res.table())
	b.ReportMetric(res.perSecond, "upstream-req/s")
	b.ReportMetric(res.perSecond/benchPerSecond, "of-budget")
	b.ReportMetric(float64(res.busiest), "busiest-second")
	b.ReportMetric(float64(res.mutP99)/float64(time.Millisecond), "mutating-p99-ms")
}

// sharedBudgetResult is one measurement.
type sharedBudgetResult struct {
	window        time.Duration
	calls         int           // upstream calls the console saw during the window
	perSecond     float64       // calls / window
	limit         int           // per_second × window + burst
	busiest       int           // most calls within any second
	reads, failed int           // read calls completed and failed
	mut           int           // mutating calls
	mutP50        time.Duration // their latency
	mutP99        time.Duration
	mutMax        time.Duration
	shares        string
}

// runSharedBudget floods targets for window and measures.
func runSharedBudget(ctx context.Context, d *deployment, targets []target, window time.Duration) (sharedBudgetResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		reads   int
		failed  int
		mutErr  error
		mutLats []time.Duration
	)
	start := time.Now()
	end := start.Add(window)
	// Readers still queued at the end give up then (a cancel, not a
	// deadline: a deadline the queue cannot meet is refused at once, and
	// the readers would spin), so that the window is all the benchmark
	// waits for.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	stopReads := time.AfterFunc(window, rcancel)
	defer stopReads.Stop()
	for i := range benchReaders {
		t := targets[i%len(targets)]
		wg.Go(func() {
			for rctx.Err() == nil {
				err := t.read(rctx)
				mu.Lock()
				if err == nil {
					reads++
				} else if rctx.Err() == nil {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(benchMutateGap)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if time.Now().After(end) {
				return
			}
			t0 := time.Now()
			err := targets[i%len(targets)].mutate(ctx)
			mu.Lock()
			if err != nil && mutErr == nil {
				mutErr = err
			}
			mutLats = append(mutLats, time.Since(t0))
			mu.Unlock()
		}
	})
	wg.Wait()
	// Calls still waiting for a token at the end are not the window's.
	times := d.arrivals(start)
	times = times[:between(times, start, end)]
	if mutErr != nil {
		return sharedBudgetResult{}, fmt.Errorf("mutating call: %w", mutErr)
	}
	slices.Sort(mutLats)
	res := sharedBudgetResult{
		window: window, calls: len(times), perSecond: float64(len(times)) / window.Seconds(),
		limit: int(benchPerSecond*window.Seconds()) + benchBurst, busiest: maxInWindow(times, time.Second),
		reads: reads, failed: failed, mut: len(mutLats),
		mutP50: percentile(mutLats, 50), mutP99: percentile(mutLats, 99),
	}
	if len(mutLats) > 0 {
		res.mutMax = mutLats[len(mutLats)-1]
	}
	return res, nil
}

// percentile is the nearest-rank p-th percentile of sorted (0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// table prints the measurement as a markdown table beside its targets.
func (r sharedBudgetResult) table() string {
	ok := func(b bool) string {
		if b {
			return "met"
		}
		return "**missed**"
	}
	host, _ := os.Hostname()
	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkSharedBudget: %d replicas sharing per_second %d, burst %d; %d concurrent readers for %s\n\n",
		benchReplicas, benchPerSecond, benchBurst, benchReaders, r.window)
	fmt.Fprintf(&t, "- machine: %s, %d CPUs, GOMAXPROCS %d, %s; the nats-server, the emulator and every replica share this process\n",
		host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(&t, "- replicas: budget.Budget + sentinelone.Client each, own NATS connection; one mutating call every %s, round robin\n", benchMutateGap)
	fmt.Fprintf(&t, "- at the end: %s\n\n", r.shares)
	fmt.Fprintf(&t, "| measure | value | target | |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&t, "| upstream calls in the window | %d | ≤ %d (%d/s × %s + %d) | %s |\n", r.calls, r.limit, benchPerSecond, r.window, benchBurst, ok(r.calls <= r.limit))
	fmt.Fprintf(&t, "| upstream rate | %.2f/s (%.0f%% of the budget) | ≤ %d/s | |\n", r.perSecond, r.perSecond/benchPerSecond*100, benchPerSecond)
	fmt.Fprintf(&t, "| busiest second | %d | ≤ %d | %s |\n", r.busiest, benchPerSecond+benchBurst, ok(r.busiest <= benchPerSecond+benchBurst))
	fmt.Fprintf(&t, "| mutating calls (p50 / p99 / max) | %d: %s / %s / %s | p99 ≤ %s | %s |\n", r.mut,
		r.mutP50.Round(time.Millisecond), r.mutP99.Round(time.Millisecond), r.mutMax.Round(time.Millisecond), targetMutP99, ok(r.mutP99 <= targetMutP99))
	fmt.Fprintf(&t, "| reads completed / failed | %d / %d | | |\n", r.reads, r.failed)
	return t.String()
}
