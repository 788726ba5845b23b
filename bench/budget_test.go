package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// budgetWindow is how long BenchmarkSharedBudget floods the console: 30 s
// for the numbers (issue 14); a few seconds for a smoke check:
//
//	go test -run '^$' -bench SharedBudget -benchtime 1x ./bench -budget.window 5s
var budgetWindow = flag.Duration("budget.window", 30*time.Second, "how long BenchmarkSharedBudget floods the console")

// The load of BenchmarkSharedBudget (issue 14, "Must show").
const (
	budgetReplicas  = 3
	budgetPerSecond = 10
	budgetBurst     = 10
	budgetReaders   = 60
	budgetMutateGap = 500 * time.Millisecond // one mutating request every half second
	targetMutP99    = time.Second
	budgetRead      = `{"limit":1}`
	budgetMutate    = `{"agentIds":["225494730938493804"]}`
)

// BenchmarkSharedBudget: three connector replicas of one deployment (one
// NATS server, one emulator) share consoles.main.rate_limit per_second 10,
// burst 10, while 60 concurrent callers send agents.list requests over NATS
// for the window (the queue group spreads them over the replicas) and an
// agents.connect request goes out every half second. It reports what the
// console saw against the budget (the whole window must stay within
// per_second × window + burst, and so must every second) and the p99 of the
// mutating requests (target ≤ 1 s). Each iteration is one whole
// measurement: run it with -benchtime 1x.
func BenchmarkSharedBudget(b *testing.B) {
	srv := testenv.NATSServer(b)
	emu, emuURL := testenv.Emulator(b, emulator.WithRequestLog(200000))
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	m := cfg.Consoles["main"]
	m.RateLimit.PerSecond, m.RateLimit.Burst = budgetPerSecond, budgetBurst
	cfg.Consoles["main"] = m
	// A read waits for its turn (60 callers, 10 a second: about 6 s); a
	// request that could not get one within its deadline would be refused
	// at once and sent again, which is not what is measured.
	cfg.Service.ActionTimeout = time.Minute
	var replicas []*connector.Connector
	for range budgetReplicas {
		replicas = append(replicas, budgetReplica(b, cfg))
	}
	readers, mutator := testenv.Conn(b, srv), testenv.Conn(b, srv)
	subj := replicas[0].Subjects()
	read := func(ctx context.Context) error {
		return callOK(ctx, readers, subj.Action("main", handlers.ActionAgentsList), handlers.ActionAgentsList, budgetRead)
	}
	mutate := func(ctx context.Context) error {
		return callOK(ctx, mutator, subj.Action("main", handlers.ActionAgentsConnect), handlers.ActionAgentsConnect, budgetMutate)
	}
	var res sharedBudgetResult
	for b.Loop() {
		var err error
		if res, err = runSharedBudget(b.Context(), emu, read, mutate, *budgetWindow); err != nil {
			b.Fatal(err)
		}
	}
	for i, c := range replicas {
		res.shares = append(res.shares, fmt.Sprintf("replica %d: %s", i+1, scrapeShare(c)))
	}
	fmt.Print(res.table())
	b.ReportMetric(res.perSecond, "upstream-req/s")
	b.ReportMetric(res.perSecond/budgetPerSecond, "of-budget")
	b.ReportMetric(float64(res.busiest), "busiest-second")
	b.ReportMetric(float64(res.mutP99)/float64(time.Millisecond), "mutating-p99-ms")
}

// budgetReplica starts one connector replica of cfg on a NATS connection
// of its own, as a process would, and stops it at cleanup.
func budgetReplica(b *testing.B, cfg *config.Config) *connector.Connector {
	c, err := connector.New(cfg, childLogger())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		_ = c.Stop(context.Background())
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// Requests still queued for the budget are answered first.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// callOK makes one action request and reports its error, or the error it
// was answered with.
func callOK(ctx context.Context, nc *nats.Conn, subject, action, data string) error {
	r, err := connector.Call(ctx, nc, subject, action, "/bench", []byte(data))
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	return nil
}

// scrapeShare reads the replica's s1bridge_upstream_budget_share from its
// /metrics.
func scrapeShare(c *connector.Connector) string {
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `s1bridge_upstream_budget_share{console="main"} `); ok {
			return "share " + v
		}
	}
	return "no share"
}

// sharedBudgetResult is one measurement.
type sharedBudgetResult struct {
	window        time.Duration
	calls         int     // upstream calls the console saw during the window
	perSecond     float64 // calls / window
	limit         int     // per_second × window + burst
	busiest       int     // most calls within any second
	reads, failed int     // read requests answered and failed
	mut           int     // mutating requests
	mutP50        time.Duration
	mutP99        time.Duration
	mutMax        time.Duration
	shares        []string
}

// runSharedBudget runs the readers and the mutating requests for window and
// measures.
func runSharedBudget(ctx context.Context, emu *emulator.Emulator, read, mutate func(context.Context) error, window time.Duration) (sharedBudgetResult, error) {
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
	// Readers still waiting at the end give up then (a cancel, not a
	// deadline, so that none is refused at once for a deadline its turn
	// would miss and sent again in a loop).
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	stopReads := time.AfterFunc(window, rcancel)
	defer stopReads.Stop()
	for range budgetReaders {
		wg.Go(func() {
			for rctx.Err() == nil {
				err := read(rctx)
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
		tick := time.NewTicker(budgetMutateGap)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if time.Now().After(end) {
				return
			}
			mctx, mcancel := context.WithTimeout(ctx, 30*time.Second)
			t0 := time.Now()
			err := mutate(mctx)
			took := time.Since(t0)
			mcancel()
			mu.Lock()
			if err != nil && mutErr == nil {
				mutErr = err
			}
			mutLats = append(mutLats, took)
			mu.Unlock()
		}
	})
	wg.Wait()
	if mutErr != nil {
		return sharedBudgetResult{}, fmt.Errorf("mutating request: %w", mutErr)
	}
	// Calls the console received within the window; those still queued at
	// its end are not the window's.
	var times []time.Time
	for _, r := range emu.Requests() {
		if !r.At.Before(start) && r.At.Before(end) {
			times = append(times, r.At)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	slices.Sort(mutLats)
	res := sharedBudgetResult{
		window: window, calls: len(times), perSecond: float64(len(times)) / window.Seconds(),
		limit: int(budgetPerSecond*window.Seconds()) + budgetBurst, busiest: maxInWindow(times, time.Second),
		reads: reads, failed: failed, mut: len(mutLats),
		mutP50: percentile(mutLats, 50), mutP99: percentile(mutLats, 99),
	}
	if len(mutLats) > 0 {
		res.mutMax = mutLats[len(mutLats)-1]
	}
	return res, nil
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

// table prints the measurement as a markdown table beside its targets.
func (r sharedBudgetResult) table() string {
	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkSharedBudget: %d connector replicas sharing per_second %d, burst %d; %d concurrent readers for %s\n\n",
		budgetReplicas, budgetPerSecond, budgetBurst, budgetReaders, r.window)
	fmt.Fprintf(&t, "- machine: %s; the nats-server, the emulator and the replicas share this process\n", machine())
	fmt.Fprintf(&t, "- replicas: connector.Connector each, own NATS connection, one deployment (prefix s1, queue group s1bridge); "+
		"readers: agents.list %s over NATS; one agents.connect every %s\n", budgetRead, budgetMutateGap)
	fmt.Fprintf(&t, "- at the end: %s\n\n", strings.Join(r.shares, ", "))
	fmt.Fprintf(&t, "| measure | value | target | |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&t, "| upstream calls in the window | %d | ≤ %d (%d/s × %s + %d) | %s |\n", r.calls, r.limit, budgetPerSecond, r.window, budgetBurst, verdict(r.calls <= r.limit))
	fmt.Fprintf(&t, "| upstream rate | %.2f/s (%.0f%% of the budget) | ≤ %d/s | |\n", r.perSecond, r.perSecond/budgetPerSecond*100, budgetPerSecond)
	fmt.Fprintf(&t, "| busiest second | %d | ≤ %d | %s |\n", r.busiest, budgetPerSecond+budgetBurst, verdict(r.busiest <= budgetPerSecond+budgetBurst))
	fmt.Fprintf(&t, "| mutating requests (p50 / p99 / max) | %d: %s / %s / %s | p99 ≤ %s | %s |\n", r.mut,
		fmtDur(r.mutP50), fmtDur(r.mutP99), fmtDur(r.mutMax), targetMutP99, verdict(r.mutP99 <= targetMutP99))
	fmt.Fprintf(&t, "| reads answered / failed | %d / %d | | |\n", r.reads, r.failed)
	return t.String()
}
