package sentinelone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// limitOf returns the rate and burst of the LaneLimiter New gave c.
func limitOf(c *Client) [2]float64 {
	r, b := c.limiter.(*LaneLimiter).Limit()
	return [2]float64{r, b}
}

// grantOne hands exactly one token to the queue of a limiter whose rate is
// 0, as the timer would when a token comes due. The burst stays 1, so a
// token handed back by a cancelled waiter is kept for the next.
func grantOne(l *LaneLimiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.burst, l.tokens = 1, 1
	l.dispatch(time.Now())
}

// queued starts a goroutine that waits on l in lane and reports on served
// once granted; it returns when the waiter is in the queue (the queue grew
// to want), so that arrival order is the order of calls.
func queued(t *testing.T, l *LaneLimiter, ctx context.Context, lane Lane, id string, served chan<- string, want int) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Wait(ctx, lane)
		if err == nil {
			served <- id
		}
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Queued() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not queue (queue %d, want %d)", id, l.Stats().Queued(), want)
		}
		time.Sleep(time.Millisecond)
	}
	return errc
}

func TestSanitizeLimit(t *testing.T) {
	tests := []struct {
		rate, burst         float64
		wantRate, wantBurst float64
	}{
		{10, 20, 10, 20},
		{10, 0, 10, 1},   // a positive rate needs a whole token
		{10, 0.3, 10, 1}, // the same for a fractional share of a burst
		{0, 0, 0, 0},     // stopped
		{0, 5, 0, 5},     // stopped, but the saved tokens still count
		{-1, -1, 0, 0},
		{math.NaN(), math.NaN(), 0, 0},
		{math.Inf(1), math.Inf(1), math.MaxFloat64, math.MaxFloat64},
	}
	for _, tt := range tests {
		r, b := sanitizeLimit(tt.rate, tt.burst)
		if r != tt.wantRate || b != tt.wantBurst {
			t.Errorf("sanitizeLimit(%v, %v) = %v, %v; want %v, %v", tt.rate, tt.burst, r, b, tt.wantRate, tt.wantBurst)
		}
	}
}

func TestLaneFromContext(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		ctx  context.Context
		want Lane
	}{
		{ctx, LaneRead},
		{WithLane(ctx, LaneMutating), LaneMutating},
		{WithLane(ctx, LaneBackground), LaneBackground},
		{WithLane(WithLane(ctx, LaneBackground), LaneMutating), LaneMutating},
		{WithLane(ctx, Lane(7)), LaneRead},
	}
	for _, tt := range tests {
		if got := LaneFrom(tt.ctx); got != tt.want {
			t.Errorf("LaneFrom = %s, want %s", got, tt.want)
		}
	}
	if LaneMutating.String() != "mutating" || LaneRead.String() != "read" || LaneBackground.String() != "background" {
		t.Error("lane names")
	}
}

// TestLaneOrder queues waiters in a given order of lanes on a stopped
// limiter, then hands out tokens one by one: they must be served most
// urgent lane first, oldest first within a lane.
func TestLaneOrder(t *testing.T) {
	const m, r, b = LaneMutating, LaneRead, LaneBackground
	tests := []struct {
		name    string
		arrive  []Lane
		wantIDs string
	}{
		{"one lane is FIFO", []Lane{r, r, r, r}, "0123"},
		{"mutating overtakes queued reads", []Lane{r, r, r, m}, "3012"},
		{"reads overtake background", []Lane{b, b, r, b, r}, "24013"},
		{"all three", []Lane{r, b, m, r, b, m}, "250314"},
		{"background alone", []Lane{b, b}, "01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLaneLimiter(0, 0)
			served := make(chan string, len(tt.arrive))
			for i, lane := range tt.arrive {
				queued(t, l, t.Context(), lane, fmt.Sprint(i), served, i+1)
			}
			var got string
			for range tt.arrive {
				grantOne(l)
				select {
				case id := <-served:
					got += id
				case <-time.After(5 * time.Second):
					t.Fatalf("nobody served after %q", got)
				}
			}
			if got != tt.wantIDs {
				t.Errorf("served %q, want %q", got, tt.wantIDs)
			}
			if s := l.Stats(); s.Queued() != 0 || s.Served() != uint64(len(tt.arrive)) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestCancelLeavesQueueAtOnce: a waiter whose context is cancelled returns
// at once and gives up its place; the next token goes to the one behind it.
func TestCancelLeavesQueueAtOnce(t *testing.T) {
	l := NewLaneLimiter(0, 0)
	served := make(chan string, 2)
	ctx, cancel := context.WithCancel(t.Context())
	first := queued(t, l, ctx, LaneRead, "first", served, 1)
	queued(t, l, t.Context(), LaneRead, "second", served, 2)
	start := time.Now()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled waiter returned after %s", d)
	}
	if s := l.Stats(); s.Queued() != 1 || s.Waiting[LaneRead] != 1 {
		t.Fatalf("after the cancel the queue is %+v, want the second alone", s)
	}
	grantOne(l)
	if id := <-served; id != "second" {
		t.Errorf("served %s", id)
	}
}

// TestCancelRacingGrant cancels a waiter at the moment its token comes:
// whichever wins, exactly one of it and the waiter behind it is served by
// that one token, never both and never neither.
func TestCancelRacingGrant(t *testing.T) {
	for i := range 200 {
		l := NewLaneLimiter(0, 0)
		served := make(chan string, 2)
		ctx, cancel := context.WithCancel(t.Context())
		first := queued(t, l, ctx, LaneRead, "first", served, 1)
		second := queued(t, l, t.Context(), LaneRead, "second", served, 2)
		var wg sync.WaitGroup
		wg.Go(cancel)
		wg.Go(func() { grantOne(l) })
		wg.Wait()
		if err := <-first; err == nil {
			// The first took the token: the second must still wait.
			if s := l.Stats(); s.Served() != 1 || s.Queued() != 1 {
				t.Fatalf("round %d: first served, then stats %+v", i, s)
			}
			drain(l)
			<-second
		} else {
			// The first gave up: the one token must reach the second.
			select {
			case err := <-second:
				if err != nil {
					t.Fatalf("round %d: second: %v", i, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: the token was lost with the cancelled waiter", i)
			}
			if g := l.Stats().Served(); g != 1 {
				t.Fatalf("round %d: granted %d", i, g)
			}
		}
		if n, g := len(served), l.Stats().Served(); uint64(n) != g {
			t.Fatalf("round %d: %d served for %d tokens", i, n, g)
		}
	}
}

// drain empties a stopped limiter's queue by granting until it is empty.
func drain(l *LaneLimiter) {
	for l.Stats().Queued() > 0 {
		grantOne(l)
	}
}

// TestMutatingServedAtNextToken floods a paced limiter with queued reads
// and background work, then sends one mutating call: it must be the very
// next one served, within about one token's interval.
func TestMutatingServedAtNextToken(t *testing.T) {
	const rate = 20 // a token every 50 ms
	interval := time.Second / rate
	l := NewLaneLimiter(rate, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	var reads atomic.Int64
	for i := range 60 {
		lane := LaneRead
		if i%4 == 0 {
			lane = LaneBackground
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := l.Wait(ctx, lane); err == nil {
					reads.Add(1)
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	testenvWait(t, func() bool { return l.Stats().Queued() >= 50 })

	for range 3 {
		before := reads.Load()
		start := time.Now()
		waited, err := l.Wait(t.Context(), LaneMutating)
		elapsed := time.Since(start)
		overtook := reads.Load() - before
		if err != nil {
			t.Fatal(err)
		}
		// At most the token already on its way when the call arrived goes
		// to a read (its waiter may not have counted it yet, hence 2).
		if overtook > 2 {
			t.Errorf("%d queued reads were served before the mutating call", overtook)
		}
		// Generous for a loaded 2-CPU machine under -race; what matters is
		// that it is not the ~3 s the 60 queued calls would take.
		if elapsed > 6*interval {
			t.Errorf("mutating call waited %s (reported %s) with %d queued; one token takes %s", elapsed, waited, l.Stats().Queued(), interval)
		}
		t.Logf("mutating call waited %s behind %d queued calls (token interval %s)", elapsed, l.Stats().Queued(), interval)
	}
}

func testenvWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLaneDeadlines: the refusal for an unreachable deadline counts only
// the callers ahead in the same or more urgent lanes.
func TestLaneDeadlines(t *testing.T) {
	l := NewLaneLimiter(10, 1)
	if _, err := l.Wait(t.Context(), LaneRead); err != nil { // spend the burst
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan string, 20)
	for i := range 20 {
		queued(t, l, ctx, LaneRead, "read", served, i+1)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer dcancel()
	start := time.Now()
	if _, err := l.Wait(dctx, LaneRead); !errors.Is(err, ErrRateLimited) || time.Since(start) > 50*time.Millisecond {
		t.Errorf("read behind 20 reads at 10/s with 300 ms left: err %v after %s, want ErrRateLimited at once", err, time.Since(start))
	}
	if _, err := l.Wait(dctx, LaneMutating); err != nil {
		t.Errorf("mutating call with 300 ms left and nobody ahead in its lane: %v", err)
	}
	if s := l.Stats(); s.Refused[LaneRead] != 1 || s.Refused[LaneMutating] != 0 || s.Waiting[LaneRead] != 20 {
		t.Errorf("stats after one refusal: %+v", s)
	}

	// A stopped limiter does not refuse up front (its rate may come back),
	// but the deadline ends the wait with ErrRateLimited, not a timeout.
	stopped := NewLaneLimiter(0, 0)
	sctx, scancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer scancel()
	_, err := stopped.Wait(sctx, LaneMutating)
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stopped limiter at the deadline: %v", err)
	}
	if stopped.Stats().Queued() != 0 {
		t.Error("the expired waiter stayed queued")
	}
}

// TestSetLimit: lowering the burst drops saved tokens at once, raising it
// gives nothing at once, rate 0 stops everything and raising it releases
// the queue.
func TestSetLimit(t *testing.T) {
	l := NewLaneLimiter(1, 10)
	l.SetLimit(1, 2)
	got := 0
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := l.Wait(ctx, LaneRead)
		cancel()
		if err != nil {
			break
		}
		got++
	}
	if got != 2 {
		t.Errorf("after lowering the burst from 10 to 2, %d calls went at once", got)
	}
	l.SetLimit(1, 100)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	if _, err := l.Wait(ctx, LaneRead); err == nil {
		t.Error("raising the burst gave a token at once")
	}
	cancel()

	l.SetLimit(0, 0)
	served := make(chan string, 3)
	for i := range 3 {
		queued(t, l, t.Context(), LaneMutating, "m", served, i+1)
	}
	time.Sleep(30 * time.Millisecond)
	if len(served) != 0 {
		t.Fatal("a stopped limiter served")
	}
	l.SetLimit(1000, 1)
	for range 3 {
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatal("raising the rate did not release the queue")
		}
	}
}

// TestLimiterRace hammers one limiter from many goroutines in every lane,
// with cancellations and rate changes, and checks that every token handed
// out was used by exactly one successful Wait and that nothing is left
// queued.
func TestLimiterRace(t *testing.T) {
	l := NewLaneLimiter(2000, 5)
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	var ok atomic.Uint64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for ctx.Err() == nil {
				wctx, wcancel := context.WithTimeout(ctx, time.Duration(rnd.IntN(20))*time.Millisecond)
				if _, err := l.Wait(wctx, Lane(rnd.IntN(NumLanes))); err == nil {
					ok.Add(1)
				} else if !errors.Is(err, ErrRateLimited) && ctx.Err() == nil && wctx.Err() == nil {
					t.Error(err)
				}
				wcancel()
			}
		})
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			l.SetLimit(float64(500+i%3*1000), float64(1+i%4))
			time.Sleep(7 * time.Millisecond)
		}
	})
	wg.Wait()
	s := l.Stats()
	if s.Served() != ok.Load() || s.Queued() != 0 {
		t.Errorf("granted %d, successful waits %d, still queued %d", s.Served(), ok.Load(), s.Queued())
	}
	if ok.Load() == 0 {
		t.Error("nothing got through")
	}
}

// countingLimiter is a LaneLimiter that counts what the Client tells it.
type countingLimiter struct {
	*LaneLimiter
	mu      sync.Mutex
	lanes   []Lane
	limited int
}

func (c *countingLimiter) Wait(ctx context.Context, lane Lane) (time.Duration, error) {
	c.mu.Lock()
	c.lanes = append(c.lanes, lane)
	c.mu.Unlock()
	return c.LaneLimiter.Wait(ctx, lane)
}

func (c *countingLimiter) RateLimited() {
	c.mu.Lock()
	c.limited++
	c.mu.Unlock()
}

// TestClientUsesLimiter: every attempt waits in the call's lane, and every
// 429 answer is reported.
func TestClientUsesLimiter(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n < 2 {
			reply(w, http.StatusTooManyRequests, `{"errors":[{"code":4290010,"title":"Too Many Requests"}]}`)
			return
		}
		reply(w, 200, `{"data":{"affected":1}}`)
	})
	lim := &countingLimiter{LaneLimiter: NewLaneLimiter(1e6, 1e6)}
	c := newTestClient(t, fastConfig(con.URL), WithLimiter(lim))
	if _, err := c.ConnectAgents(WithLane(t.Context(), LaneMutating), []string{"1"}); err != nil {
		t.Fatal(err)
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if fmt.Sprint(lim.lanes) != "[mutating mutating mutating]" || lim.limited != 2 {
		t.Errorf("limiter saw waits %v and %d 429s; want three mutating waits and two 429s", lim.lanes, lim.limited)
	}
}

// TestClientLaneUnderFlood runs the whole client: 40 callers keep the
// console's 20/s budget queued with reads, and a mutating call made
// meanwhile goes at about the next token; its wait reaches the observer
// with its lane.
func TestClientLaneUnderFlood(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			reply(w, 200, `{"data":{"affected":1}}`)
			return
		}
		reply(w, 200, okInfo)
	})
	cfg := fastConfig(con.URL)
	cfg.RatePerSecond, cfg.RateBurst = 20, 1
	var mu sync.Mutex
	var mutWaits []WaitEvent
	c := newTestClient(t, cfg, WithObserver(ObserverFuncs{OnRateLimitWait: func(e WaitEvent) {
		if e.Lane == LaneMutating {
			mu.Lock()
			mutWaits = append(mutWaits, e)
			mu.Unlock()
		}
	}}))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c.SystemInfo(ctx)
			}
		})
	}
	lim := c.limiter.(*LaneLimiter)
	testenvWait(t, func() bool { return lim.Stats().Queued() >= 30 })
	start := time.Now()
	_, err := c.ConnectAgents(WithLane(t.Context(), LaneMutating), []string{"1"})
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if elapsed > 300*time.Millisecond { // a token is 50 ms; the queue ahead of a read would be ~2 s
		t.Errorf("mutating call took %s behind the read flood", elapsed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(mutWaits) != 1 || mutWaits[0].Path != PathAgentsConnect || mutWaits[0].Waited <= 0 {
		t.Errorf("mutating waits observed: %+v", mutWaits)
	}
}
