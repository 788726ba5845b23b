package sentinelone

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRateLimiterPaces sends N requests from several goroutines through one
// Client against a console that answers at once: they must take about
// (N-burst)/rate, and the waits must reach the observer.
func TestRateLimiterPaces(t *testing.T) {
	const (
		perSecond = 50
		burst     = 1
		n         = 26
		workers   = 4
	)
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, okInfo) })
	cfg := fastConfig(con.URL)
	cfg.RatePerSecond, cfg.RateBurst = perSecond, burst
	var waited atomic.Int64
	var waits atomic.Int32
	c := newTestClient(t, cfg, WithObserver(ObserverFuncs{OnRateLimitWait: func(e WaitEvent) {
		waited.Add(int64(e.Waited))
		waits.Add(1)
		if e.Path != PathSystemInfo || e.Method != http.MethodGet {
			t.Errorf("wait event %+v", e)
		}
	}}))

	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				if _, err := c.SystemInfo(t.Context()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	want := time.Duration(n-burst) * time.Second / perSecond // 500ms
	// The lower bound is the limiter's promise; the upper one only catches a
	// limiter that stalls, with room for a loaded 2-core machine.
	if elapsed < want*9/10 || elapsed > 10*want {
		t.Errorf("%d requests at %d/s took %s, want about %s", n, perSecond, elapsed, want)
	}
	if waits.Load() < n-burst-1 || time.Duration(waited.Load()) < want {
		t.Errorf("observer saw %d waits totalling %s", waits.Load(), time.Duration(waited.Load()))
	}
	t.Logf("%d requests at %d/s burst %d: %s (ideal %s)", n, perSecond, burst, elapsed, want)
}

// TestRateLimiterRespectsDeadline refuses at once, without sending, a call
// that could only start after its deadline.
func TestRateLimiterRespectsDeadline(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, okInfo) })
	cfg := fastConfig(con.URL)
	cfg.RatePerSecond, cfg.RateBurst = 1, 1
	c := newTestClient(t, cfg)
	if _, err := c.SystemInfo(t.Context()); err != nil { // spends the burst
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.SystemInfo(ctx)
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("refusal took %s, want immediate", el)
	}
	if n := len(con.requests()); n != 1 {
		t.Errorf("console saw %d requests, want 1", n)
	}
}
