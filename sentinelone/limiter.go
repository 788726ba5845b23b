package sentinelone

import (
	queue "container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limiter paces a Client's HTTP attempts. The Client calls Wait before every
// attempt (retries included) on the calling goroutine, and RateLimited after
// every attempt the console answered with 429. Implementations must be safe
// for concurrent use by many goroutines.
//
// The Client's own is a LaneLimiter sized by Config.RatePerSecond and
// RateBurst; WithLimiter replaces it, e.g. with a share of a budget that
// several processes split (package connector/budget).
type Limiter interface {
	// Wait blocks until one attempt of a call in lane may be sent, or ctx
	// ends. It returns how long the caller queued (0 when it went at once).
	// An error is ctx.Err() when ctx was cancelled, or wraps ErrRateLimited
	// when the attempt could not be sent before ctx's deadline; either way
	// nothing may be sent.
	Wait(ctx context.Context, lane Lane) (time.Duration, error)
	// RateLimited reports that the console answered an attempt with 429:
	// the calls sent were more than it accepts. A limiter that adapts its
	// rate slows down; others ignore it.
	RateLimited()
}

// LaneLimiter is a token bucket with priority lanes: rate tokens a second,
// at most burst saved up, one token per attempt. When no token is free,
// callers queue, and each token as it comes goes to the oldest waiter of
// the most urgent lane that has one (LaneMutating, then LaneRead, then
// LaneBackground), so a mutating call waits at most until the next token
// however many reads are queued. A caller whose context ends leaves the
// queue at once; a token it was given in that instant goes to the next.
//
// Waiters block on their own goroutine; one timer per limiter, armed only
// while somebody waits, hands out the tokens. With only one lane in use it
// behaves as golang.org/x/time/rate.Limiter's Wait (FIFO, the same pacing).
//
// RateLimited is a no-op: a 429 is answered by the Client's retry policy
// (Retry-After) alone, as it always was. A LaneLimiter's rate and burst may
// be changed at any time with SetLimit, which is how package connector/budget
// gives it a share of a deployment-wide budget. It is safe for concurrent
// use. Create it with NewLaneLimiter.
type LaneLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens a second; 0 stops handing out tokens
	burst   float64 // the most tokens saved up
	tokens  float64 // saved up as of last
	last    time.Time
	queues  [NumLanes]queue.List // of *waiter, by rank (0 most urgent)
	waiting int                  // total length of queues
	granted [NumLanes]uint64     // tokens handed out and used, ever, by rank
	refused [NumLanes]uint64     // callers refused for their deadline, ever, by rank

	timer    *time.Timer // calls fire when the next token is due
	armedFor time.Time   // when timer fires; zero when it is not armed
}

// LimiterStats is a snapshot of a LaneLimiter. Its arrays are indexed by
// Lane.
type LimiterStats struct {
	// Granted counts the attempts let through since the limiter was made.
	Granted [NumLanes]uint64
	// Refused counts the callers turned away at once because their
	// deadline came before their turn could: demand as much as the
	// granted ones, though they never queued.
	Refused [NumLanes]uint64
	// Waiting is the number of callers queued now.
	Waiting [NumLanes]int
}

// Served is the number of attempts let through in every lane together.
func (s LimiterStats) Served() uint64 { return s.Granted[0] + s.Granted[1] + s.Granted[2] }

// Queued is the number of callers queued in every lane together.
func (s LimiterStats) Queued() int { return s.Waiting[0] + s.Waiting[1] + s.Waiting[2] }

type waiter struct {
	ready   chan struct{} // closed when granted
	elem    *queue.Element
	rank    int
	granted bool
}

// epsilon absorbs float rounding: a token due at the timer's instant may
// compute as 0.9999999999.
const epsilon = 1e-9

// maxWait bounds computed waits so converting them to a Duration cannot
// overflow whatever tiny rate is set.
const maxWait = 24 * time.Hour

// NewLaneLimiter returns a LaneLimiter that lets perSecond attempts a second
// through with bursts of burst, starting full. A rate of 0 lets nothing
// through until SetLimit raises it; a positive rate has a burst of at least 1.
func NewLaneLimiter(perSecond, burst float64) *LaneLimiter {
	l := &LaneLimiter{last: time.Now()}
	l.rate, l.burst = sanitizeLimit(perSecond, burst)
	l.tokens = l.burst
	return l
}

// sanitizeLimit makes a rate and burst usable: NaN and negatives are 0,
// +Inf is the largest float (so arithmetic on it stays finite), and a
// positive rate gets a burst of at least one token, without which nothing
// could ever pass.
func sanitizeLimit(perSecond, burst float64) (float64, float64) {
	fix := func(x float64) float64 {
		switch {
		case !(x > 0):
			return 0
		case math.IsInf(x, 1):
			return math.MaxFloat64
		}
		return x
	}
	perSecond, burst = fix(perSecond), fix(burst)
	if perSecond > 0 {
		burst = max(burst, 1)
	}
	return perSecond, burst
}

// SetLimit changes the rate and burst from now on. Tokens saved above the
// new burst are dropped at once; a higher burst fills at the new rate (it
// gives nothing at once). Queued callers are served as the new rate allows.
func (l *LaneLimiter) SetLimit(perSecond, burst float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.advance(now) // tokens earned so far were earned at the old rate
	l.rate, l.burst = sanitizeLimit(perSecond, burst)
	l.tokens = min(l.tokens, l.burst)
	l.armedFor = time.Time{} // the next token's time changed
	l.dispatch(now)
}

// Limit returns the current rate and burst.
func (l *LaneLimiter) Limit() (perSecond, burst float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate, l.burst
}

// Stats returns how many attempts were let through and how many wait now.
func (l *LaneLimiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s LimiterStats
	for _, lane := range []Lane{LaneMutating, LaneRead, LaneBackground} {
		s.Granted[lane] = l.granted[lane.rank()]
		s.Refused[lane] = l.refused[lane.rank()]
		s.Waiting[lane] = l.queues[lane.rank()].Len()
	}
	return s
}

// RateLimited implements Limiter; it does nothing (see LaneLimiter).
func (l *LaneLimiter) RateLimited() {}

// Wait implements Limiter. A caller is refused at once, with an error
// wrapping ErrRateLimited, when the tokens owed to the callers already ahead
// of it (in its lane and more urgent ones) and its own could not come before
// ctx's deadline; a caller that more urgent ones overtake until its deadline
// passes gets the same error then.
func (l *LaneLimiter) Wait(ctx context.Context, lane Lane) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rank := lane.rank()
	l.mu.Lock()
	start := time.Now()
	l.advance(start)
	ahead := 0
	for r := 0; r <= rank; r++ {
		ahead += l.queues[r].Len()
	}
	if ahead == 0 && l.tokens >= 1-epsilon {
		l.take(rank)
		l.mu.Unlock()
		return 0, nil
	}
	if deadline, ok := ctx.Deadline(); ok && l.rate > 0 {
		if d := l.until(float64(ahead) + 1); start.Add(d).After(deadline) {
			l.refused[rank]++
			l.mu.Unlock()
			return 0, fmt.Errorf("%w: waiting about %s for the rate limit (%s lane, %d ahead) would overrun the deadline",
				ErrRateLimited, d.Round(time.Millisecond), lane, ahead)
		}
	}
	w := &waiter{ready: make(chan struct{}), rank: rank}
	w.elem = l.queues[rank].PushBack(w)
	l.waiting++
	l.arm(start)
	l.mu.Unlock()

	select {
	case <-w.ready:
		return time.Since(start), nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.granted {
		// The token came as ctx ended: nothing will be sent with it, so
		// it goes to the next waiter.
		l.granted[rank]--
		l.tokens = min(l.tokens+1, l.burst)
	} else {
		l.queues[rank].Remove(w.elem)
		l.waiting--
	}
	l.dispatch(time.Now())
	l.mu.Unlock()
	waited := time.Since(start)
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		return waited, fmt.Errorf("%w: deadline reached after %s queued for the rate limit (%s lane): %w",
			ErrRateLimited, waited.Round(time.Millisecond), lane, err)
	}
	return waited, ctx.Err()
}

// advance adds the tokens earned since l.last. Callers hold l.mu.
func (l *LaneLimiter) advance(now time.Time) {
	if now.After(l.last) {
		if l.rate > 0 {
			l.tokens += now.Sub(l.last).Seconds() * l.rate
		}
		l.last = now
	}
	l.tokens = min(l.tokens, l.burst)
}

// take spends one token for a caller of rank. Callers hold l.mu.
func (l *LaneLimiter) take(rank int) {
	l.tokens = max(l.tokens-1, 0)
	l.granted[rank]++
}

// until returns how long until n tokens are saved up at the current rate.
// Callers hold l.mu and have checked that the rate is positive.
func (l *LaneLimiter) until(n float64) time.Duration {
	secs := (n - l.tokens) / l.rate
	if secs <= 0 {
		return 0
	}
	return min(time.Duration(min(secs, maxWait.Seconds())*float64(time.Second)), maxWait)
}

// dispatch hands the tokens saved up to the queued waiters, most urgent
// lane first and oldest first within a lane, then arms the timer for the
// next. Callers hold l.mu.
func (l *LaneLimiter) dispatch(now time.Time) {
	l.advance(now)
	for l.waiting > 0 && l.tokens >= 1-epsilon {
		var w *waiter
		for r := range NumLanes {
			if e := l.queues[r].Front(); e != nil {
				w = e.Value.(*waiter)
				l.queues[r].Remove(e)
				break
			}
		}
		l.waiting--
		l.take(w.rank)
		w.granted = true
		close(w.ready)
	}
	l.arm(now)
}

// arm sets the timer for when the next token is due, if anybody waits for
// it and it is not set for then already; it stops it otherwise. Callers
// hold l.mu.
func (l *LaneLimiter) arm(now time.Time) {
	if l.waiting == 0 || l.rate <= 0 {
		if !l.armedFor.IsZero() {
			l.timer.Stop()
			l.armedFor = time.Time{}
		}
		return
	}
	d := l.until(1)
	at := now.Add(d)
	if !l.armedFor.IsZero() && !l.armedFor.After(at.Add(time.Microsecond)) && !at.After(l.armedFor.Add(time.Microsecond)) {
		return
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(d, l.fire)
	} else {
		l.timer.Reset(d)
	}
	l.armedFor = at
}

// fire runs on the timer's goroutine when a token is due.
func (l *LaneLimiter) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armedFor = time.Time{}
	l.dispatch(time.Now())
}
