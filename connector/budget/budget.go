package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultTTL is the leases bucket's MaxAge (connector.DefaultLeaseTTL):
	// a replica not heard from for this long is gone.
	DefaultTTL = 9 * time.Second
	// DefaultTick is how often demand is measured and the share recomputed.
	DefaultTick = 250 * time.Millisecond
	// DefaultFloor is the share every replica keeps however idle, as a
	// fraction of an equal share.
	DefaultFloor = 0.25
	// DefaultHeadroom multiplies measured demand into what a replica asks
	// for, so that a replica's share can follow its demand upwards.
	DefaultHeadroom = 1.25
	// DefaultDecrease multiplies the deployment's rate after a 429.
	DefaultDecrease = 0.5
	// DefaultMinFactor is the lowest the rate falls to, as a fraction of the
	// budget, however many 429s come.
	DefaultMinFactor = 0.1
	// DefaultRecovery is how long the rate takes to climb from 0 back to
	// the whole budget after a 429 (half of it after a single decrease).
	DefaultRecovery = 20 * time.Second
	// DefaultCooldown is how long after a decrease further 429s are taken
	// as the same storm: the answers to calls sent before the decrease.
	DefaultCooldown = 2 * time.Second
)

type (
	// Config configures one Budget: one console, one replica. Zero tuning
	// fields take the Default* values.
	Config struct {
		// Console is the console's name (a key token: [A-Za-z0-9_-]).
		Console string
		// Replica is this replica's id, unique among the live replicas of
		// the deployment (a key token: a host name with dots must be made
		// safe first, e.g. subjects.SafeToken).
		Replica string
		// PerSecond and Burst are consoles.<name>.rate_limit: the budget of
		// all replicas together.
		PerSecond float64
		Burst     int
		// KV is the bucket the heartbeats go in; its MaxAge must be TTL
		// (Start checks), so that the key of a replica that died goes when
		// the others count it out. The leases bucket is made for it.
		KV jetstream.KeyValue
		// TTL is the bucket's MaxAge. A replica heartbeats every TTL/3; one
		// not heard from for TTL is counted out, and one that could not
		// heartbeat for 2/3 TTL stops sending (see Status.Isolated).
		TTL time.Duration
		// Logger receives joins, leaves, throttles and failures; nil
		// discards them.
		Logger *slog.Logger

		// Tick is how often demand is measured and the share recomputed;
		// an increase of share waits one Tick so that every replica has
		// seen the heartbeat it comes from. Less than TTL/3.
		Tick time.Duration
		// Floor is the share an idle replica keeps, as a fraction of an
		// equal share, in (0, 1].
		Floor float64
		// Headroom (≥ 1) multiplies measured demand into what a replica
		// asks for.
		Headroom float64
		// Decrease, in (0, 1), multiplies the rate after a 429; MinFactor,
		// in (0, 1], is the floor of the rate as a fraction of the budget.
		Decrease, MinFactor float64
		// Recovery is how long the rate takes to climb from 0 to the whole
		// budget; Cooldown how long after a decrease 429s do not decrease
		// it again.
		Recovery, Cooldown time.Duration
	}

	// Budget is one replica's part of one console's deployment-wide rate
	// budget. Create it with New, give Limiter to the console's
	// sentinelone.Client (sentinelone.WithLimiter), Start it before the
	// client is used and Stop it after the client's last call. Its methods
	// are safe for concurrent use.
	Budget struct {
		cfg       Config
		log       *slog.Logger
		key       string
		lim       *sentinelone.LaneLimiter
		throttled chan struct{} // a 429 was seen; capacity 1

		started atomic.Bool
		done    chan struct{} // closed when the loop has left
		joined  chan struct{} // closed when the first share is applied

		mu       sync.Mutex
		cancel   context.CancelFunc // ends the loop; nil before Start
		status   Status
		leaveErr error
	}

	// Status is a snapshot of a Budget.
	Status struct {
		// Replicas is the number of live replicas this one counts,
		// itself included.
		Replicas int
		// Share is the fraction (0 to 1) of the console's per_second and
		// burst this replica may use now: its allocation times the
		// throttle. It is the metric s1bridge_upstream_budget_share; over
		// the replicas it adds up to Throttle.
		Share float64
		// Allocation is this replica's part of the budget before the
		// throttle; over the replicas it adds up to 1.
		Allocation float64
		// Throttle is the deployment's rate as a fraction of the budget: 1
		// unless SentinelOne answered 429 lately.
		Throttle float64
		// Demand is what this replica said in its last heartbeat it would
		// send, in calls per second, all lanes together.
		Demand float64
		// Isolated is true while this replica cannot tell the others it is
		// alive, or cannot hear them: it sends nothing then, since they may
		// have counted it out already.
		Isolated bool
	}
)

// heartbeat is the value of a replica's key.
type heartbeat struct {
	Replica string    `json:"replica"`
	Demand  demand    `json:"demand"`
	At      time.Time `json:"at"` // the sender's clock, for people reading the bucket
	// Throttle is the latest 429 decrease the replica knows; every replica
	// carries it so that it outlives the one that decided it.
	Throttle *throttle `json:"throttle,omitempty"`
}

// demand is what a replica would send per lane, in calls per second: what
// it sent over the last second plus what is queued now.
type demand struct {
	Mutating   float64 `json:"mutating"`
	Read       float64 `json:"read"`
	Background float64 `json:"background"`
}

func (d demand) total() float64 { return d.Mutating + d.Read + d.Background }

// Sentinel errors.
var (
	// ErrInvalidConfig matches a Config that New refuses.
	ErrInvalidConfig = errors.New("budget: invalid config")
	// ErrStarted matches a second Start.
	ErrStarted = errors.New("budget: already started")
)

// New validates cfg and returns a Budget, not started: its limiter lets
// nothing through until Start has joined.
func New(cfg Config) (*Budget, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &Budget{
		cfg:       cfg,
		log:       cfg.Logger,
		key:       subjects.BudgetKey(cfg.Console, cfg.Replica),
		lim:       sentinelone.NewLaneLimiter(0, 0),
		throttled: make(chan struct{}, 1),
		done:      make(chan struct{}),
		joined:    make(chan struct{}),
		status:    Status{Throttle: 1, Isolated: true},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("console", cfg.Console, "replica", cfg.Replica)
	return b, nil
}

func (c *Config) defaults() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case !subjects.ValidToken(c.Console):
		return bad("console %q is not a key token [A-Za-z0-9_-]", c.Console)
	case !subjects.ValidToken(c.Replica):
		return bad("replica id %q is not a key token [A-Za-z0-9_-]", c.Replica)
	case !(c.PerSecond > 0) || math.IsInf(c.PerSecond, 0):
		return bad("consoles.%s.rate_limit.per_second must be a positive number", c.Console)
	case c.Burst < 1:
		return bad("consoles.%s.rate_limit.burst must be at least 1", c.Console)
	case c.KV == nil:
		return bad("no KV bucket")
	}
	c.TTL = cmpOr(c.TTL, DefaultTTL)
	c.Tick = cmpOr(c.Tick, DefaultTick)
	c.Floor = cmpOr(c.Floor, DefaultFloor)
	c.Headroom = cmpOr(c.Headroom, DefaultHeadroom)
	c.Decrease = cmpOr(c.Decrease, DefaultDecrease)
	c.MinFactor = cmpOr(c.MinFactor, DefaultMinFactor)
	c.Recovery = cmpOr(c.Recovery, DefaultRecovery)
	c.Cooldown = cmpOr(c.Cooldown, DefaultCooldown)
	switch {
	case c.TTL < 0 || c.Tick < 0 || c.Recovery < 0 || c.Cooldown < 0:
		return bad("durations must not be negative")
	case c.Tick*3 >= c.TTL:
		return bad("tick %s must be less than a third of the TTL %s", c.Tick, c.TTL)
	case !(c.Floor > 0 && c.Floor <= 1):
		return bad("floor %v must be in (0, 1]", c.Floor)
	case !(c.Headroom >= 1):
		return bad("headroom %v must be at least 1", c.Headroom)
	case !(c.Decrease > 0 && c.Decrease < 1):
		return bad("decrease %v must be in (0, 1)", c.Decrease)
	case !(c.MinFactor > 0 && c.MinFactor <= 1):
		return bad("min factor %v must be in (0, 1]", c.MinFactor)
	}
	return nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Limiter returns the limiter to give the console's sentinelone.Client
// (sentinelone.WithLimiter): a LaneLimiter held at this replica's share,
// which reports the console's 429s to the budget. Before Start and after
// Stop it lets nothing through (callers wait, within their deadlines).
func (b *Budget) Limiter() sentinelone.Limiter { return limiter{b.lim, b} }

// limiter is the Budget's sentinelone.Limiter.
type limiter struct {
	*sentinelone.LaneLimiter
	b *Budget
}

// RateLimited implements sentinelone.Limiter: the loop slows the whole
// deployment down. It never blocks: 429s that arrive while one is pending
// are the same news.
func (l limiter) RateLimited() {
	select {
	case l.b.throttled <- struct{}{}:
	default:
	}
}

// Share returns the fraction (0 to 1) of the console's budget this replica
// may use now (Status.Share), for s1bridge_upstream_budget_share.
func (b *Budget) Share() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status.Share
}

// Status returns a snapshot of the budget.
func (b *Budget) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// Start joins the deployment's budget: it writes this replica's first
// heartbeat, reads the others', and returns once its share is in force
// (one Tick later, so that the others have seen it arrive and made room).
// The budget then runs until ctx ends or Stop is called, and then leaves:
// it stops sending and deletes its key, so the others take over its share
// at once. Start fails when the bucket's MaxAge is not the TTL, or when it
// cannot be written or read within ctx and the TTL; nothing is left
// running then.
func (b *Budget) Start(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	runCtx, cancel := context.WithCancel(ctx)
	b.mu.Lock()
	b.cancel = cancel
	b.mu.Unlock()
	l := &loop{b: b, cfg: b.cfg, peers: map[string]peer{}, watched: make(chan watchResult, 1),
		puts: make(chan []byte, 1), putDone: make(chan putResult),
		window: make([]sentinelone.LimiterStats, windowTicks(b.cfg.Tick))}
	jctx, jcancel := context.WithTimeout(runCtx, b.cfg.TTL)
	defer jcancel()
	err := b.checkBucket(jctx)
	if err == nil {
		err = l.join(jctx, runCtx)
	}
	if err == nil {
		go l.run(runCtx)
		select {
		case <-b.joined:
			return nil
		case <-b.done:
			err = errors.New("stopped while joining")
		case <-jctx.Done():
			err = jctx.Err()
		}
	} else {
		cancel() // ends a watch still being created, which leave waits for
		l.leave()
		close(b.done)
	}
	cancel()
	<-b.done
	return fmt.Errorf("budget of console %s: joining: %w", b.cfg.Console, err)
}

// checkBucket makes sure that the bucket drops a key when the others
// count its replica out: its MaxAge is the TTL.
func (b *Budget) checkBucket(ctx context.Context) error {
	st, err := b.cfg.KV.Status(ctx)
	if err != nil {
		return err
	}
	if st.TTL() != b.cfg.TTL {
		return fmt.Errorf("%w: bucket %s has MaxAge %s, the TTL is %s: they must be equal", ErrInvalidConfig, st.Bucket(), st.TTL(), b.cfg.TTL)
	}
	return nil
}

// Stop leaves the budget (see Start) and waits, within ctx, until this
// replica's key is deleted. It returns the deletion's error, if any (the
// key then expires with the TTL). Stop before Start, or twice, is harmless.
func (b *Budget) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel := b.cancel
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leaveErr
}

// windowTicks is the number of ticks demand is measured over: about a
// second, at least four.
func windowTicks(tick time.Duration) int {
	return max(4, int(math.Ceil(float64(time.Second)/float64(tick))))
}

// peer is another replica as last heard from.
type peer struct {
	demand demand
	seen   time.Time // local clock: when its latest heartbeat arrived
}

// pending is an increase of allocation waiting to settle.
type pending struct {
	to    float64
	since time.Time
}

// loop is the state of a Budget's one goroutine. Only that goroutine
// touches it (and join, before the goroutine starts).
type loop struct {
	b   *Budget
	cfg Config

	watcher   jetstream.KeyWatcher
	updates   <-chan jetstream.KeyValueEntry
	replaying bool             // the watcher is still sending the values it found
	watching  bool             // a watch is being created (see startWatch)
	watched   chan watchResult // its outcome; capacity 1

	puts    chan []byte    // heartbeats for the putter; capacity 1, the newest replaces one not yet taken
	putDone chan putResult // what became of them
	putter  sync.WaitGroup

	peers    map[string]peer
	demand   demand // as last sent
	echoed   demand // as last seen back through the watch: what the others see
	thr      throttle
	applied  float64 // allocation in force
	up       *pending
	lastPut  time.Time // when the last heartbeat was handed to the putter
	lastAck  time.Time // when the last heartbeat the bucket took was sent
	failing  bool      // the last heartbeat failed
	lastEcho time.Time // last time the watcher brought back our own heartbeat
	awaiting time.Time // when a heartbeat was acknowledged that has not come back yet
	isolated bool
	rate     float64 // what the limiter is set to
	burst    float64

	window  []sentinelone.LimiterStats // limiter stats of the last ticks, a ring
	next    int                        // where the next sample goes
	samples int                        // how many of window hold samples
	wake    *time.Timer                // fires when a pending increase has settled
}

// watchResult is the outcome of creating a watch.
type watchResult struct {
	w   jetstream.KeyWatcher
	err error
}

// join writes the first heartbeat, starts the watch and reads every value
// already in the bucket, all within ctx, then computes the share (which,
// being an increase from 0, waits one Tick before it applies). The watch
// lives as long as runCtx (see startWatch).
func (l *loop) join(ctx, runCtx context.Context) error {
	now := time.Now()
	if _, err := l.cfg.KV.Put(ctx, l.b.key, l.heartbeat(now)); err != nil {
		return err
	}
	l.lastPut, l.lastAck = now, now
	l.startWatch(runCtx)
	select {
	case r := <-l.watched:
		if err := l.watchStarted(r); err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	for l.replaying {
		select {
		case e, ok := <-l.updates:
			if !ok {
				return errors.New("watch ended")
			}
			l.apply(e, time.Now())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.wake = time.NewTimer(time.Hour)
	l.wake.Stop()
	l.recompute(time.Now())
	l.b.log.Info("budget: joined", "replicas", 1+len(l.peers), "allocation_pending", l.up != nil)
	return nil
}

// run is the Budget's goroutine: it applies heartbeats as they arrive,
// measures demand and heartbeats every Tick or sooner, and reacts to 429s,
// until ctx ends; then it leaves.
func (l *loop) run(ctx context.Context) {
	defer close(l.b.done)
	defer l.leave()
	l.putter.Go(func() { l.putLoop(ctx) })
	tick := time.NewTicker(l.cfg.Tick)
	defer tick.Stop()
	defer l.wake.Stop()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case e, ok := <-l.updates:
			now = time.Now()
			if !ok {
				// The watch broke (the bucket was deleted, a long outage);
				// the next tick starts another. Until it has caught up the
				// view is old, and the echo check isolates this replica.
				l.b.log.Warn("budget: watch ended; watching again")
				l.updates, l.watcher = nil, nil
				break
			}
			l.apply(e, now)
		case r := <-l.watched:
			now = time.Now()
			if err := l.watchStarted(r); err != nil && ctx.Err() == nil {
				l.b.log.Warn("budget: cannot watch the bucket", "error", err)
			}
		case <-l.b.throttled:
			now = time.Now()
			if l.decrease(now) {
				l.send(now)
			}
		case <-tick.C:
			now = time.Now()
			l.sample()
			if !l.awaiting.IsZero() && now.Sub(l.awaiting) > l.echoTimeout() && l.updates != nil {
				// The bucket took a heartbeat the watch has not brought
				// back: its consumer is gone (a NATS server restarted)
				// and nats.go would notice only after two missed idle
				// heartbeats, ten seconds or more. Watch afresh now.
				l.b.log.Warn("budget: the watch stalled; watching again")
				l.watcher.Stop()
				l.updates, l.watcher, l.awaiting = nil, nil, time.Time{}
			}
			if l.updates == nil {
				l.startWatch(ctx)
			}
			// Heartbeat every TTL/3, every tick while they fail, and at
			// once when demand moved.
			if d := l.measure(); now.Sub(l.lastPut) >= l.cfg.TTL/3 || l.failing || changed(l.demand, d, l.cfg.PerSecond) {
				l.demand = d
				l.send(now)
			}
		case r := <-l.putDone:
			now = time.Now()
			if r.err != nil {
				if !l.failing && ctx.Err() == nil {
					l.b.log.Warn("budget: heartbeat failed", "error", r.err)
				}
				l.failing = true
				break
			}
			l.failing = false
			if r.sent.After(l.lastAck) {
				l.lastAck = r.sent
			}
			// Its echo may have come already: the watch and the
			// acknowledgement race.
			if l.awaiting.IsZero() && l.lastEcho.Before(r.sent) {
				l.awaiting = now
			}
		case <-l.wake.C:
			now = time.Now()
		}
		l.recompute(now)
	}
}

// echoTimeout is how long a heartbeat the bucket took may take to come
// back through the watch before the watch is taken for stalled.
func (l *loop) echoTimeout() time.Duration {
	return min(max(2*l.cfg.Tick, time.Second), l.cfg.TTL/3)
}

// changed reports whether demand moved enough since the last heartbeat to
// tell the others before the next one: by a tenth of the budget and a
// quarter of what it was.
func changed(old, cur demand, perSecond float64) bool {
	diff := math.Abs(cur.Mutating-old.Mutating) + math.Abs(cur.Read-old.Read) + math.Abs(cur.Background-old.Background)
	return diff > max(0.1*perSecond, 0.25*old.total())
}

// sample records the limiter's counters for this tick.
func (l *loop) sample() {
	l.window[l.next] = l.b.lim.Stats()
	l.next = (l.next + 1) % len(l.window)
	l.samples = min(l.samples+1, len(l.window))
}

// measure returns the demand over the window: what was let through or
// refused for want of time per second, plus what is queued now (which
// wants to go within a second). Refusals count: callers whose deadlines
// the share cannot meet never queue, and a share measured by what it
// served alone would never grow.
func (l *loop) measure() demand {
	if l.samples == 0 {
		return demand{}
	}
	n := len(l.window)
	newest := l.window[(l.next+n-1)%n]
	oldest := l.window[(l.next+n-l.samples)%n]
	secs := float64(max(l.samples-1, 1)) * l.cfg.Tick.Seconds()
	per := func(lane sentinelone.Lane) float64 {
		asked := newest.Granted[lane] - oldest.Granted[lane] + newest.Refused[lane] - oldest.Refused[lane]
		return (float64(asked) + float64(newest.Waiting[lane])) / secs
	}
	return demand{Mutating: per(sentinelone.LaneMutating), Read: per(sentinelone.LaneRead), Background: per(sentinelone.LaneBackground)}
}

// putResult is what became of one heartbeat.
type putResult struct {
	sent time.Time // when it was sent: the bucket stored it later
	err  error
}

// heartbeat encodes this replica's heartbeat as of now.
func (l *loop) heartbeat(now time.Time) []byte {
	hb := heartbeat{Replica: l.cfg.Replica, Demand: l.demand, At: now.UTC()}
	if l.thr.Seq > 0 {
		th := l.thr
		hb.Throttle = &th
	}
	v, _ := json.Marshal(hb) // plain numbers, strings and times: cannot fail
	return v
}

// send hands a heartbeat to the putter, replacing one it has not taken
// yet. Only the loop sends, so after the drain there is room.
func (l *loop) send(now time.Time) {
	l.lastPut = now
	select {
	case <-l.puts:
	default:
	}
	l.puts <- l.heartbeat(now)
}

// putLoop writes heartbeats to the bucket, one at a time, on a goroutine
// of its own (owned by the loop: leave waits for it) so that a slow or
// absent NATS never keeps the loop from noticing that it is isolated.
func (l *loop) putLoop(ctx context.Context) {
	timeout := min(l.cfg.TTL/3, 2*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-l.puts:
			sent := time.Now()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			_, err := l.cfg.KV.Put(pctx, l.b.key, v)
			cancel()
			select {
			case l.putDone <- putResult{sent: sent, err: err}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// startWatch starts creating a watch of every replica's key of the
// console, unless one is being created. It runs on a goroutine of its own,
// owned by the loop (leave waits for it), because nats.go waits for the
// server without a deadline when the context has none, and the context must
// have none: nats.go recreates the watch's consumer with it after a
// reconnect, for as long as the watch lives. Meanwhile the loop goes on
// ticking, so a replica that cannot watch still isolates itself.
func (l *loop) startWatch(ctx context.Context) {
	if l.watching {
		return
	}
	l.watching = true
	go func() {
		w, err := l.cfg.KV.Watch(ctx, subjects.BudgetKeys(l.cfg.Console))
		l.watched <- watchResult{w, err}
	}()
}

// watchStarted takes the outcome of startWatch.
func (l *loop) watchStarted(r watchResult) error {
	l.watching = false
	if r.err != nil {
		return r.err
	}
	l.watcher, l.updates, l.replaying = r.w, r.w.Updates(), true
	return nil
}

// apply takes one entry from the watch. An entry of the first reading is
// counted as seen when the server stored it (if not later than now); a
// live one when it arrives.
func (l *loop) apply(e jetstream.KeyValueEntry, now time.Time) {
	if e == nil {
		l.replaying = false
		return
	}
	replica, ok := subjects.BudgetReplica(l.cfg.Console, e.Key())
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if replica != l.cfg.Replica {
			if _, was := l.peers[replica]; was {
				l.b.log.Info("budget: replica left", "other", replica)
			}
			delete(l.peers, replica)
		}
		return
	}
	var hb heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil {
		l.b.log.Warn("budget: unreadable heartbeat", "key", e.Key(), "error", err)
		return
	}
	if hb.Throttle != nil && l.thr.newer(*hb.Throttle) {
		l.thr = *hb.Throttle
		l.b.log.Warn("budget: SentinelOne answered 429 to another replica: slowing down",
			"other", replica, "factor", l.thr.Factor)
	}
	if replica == l.cfg.Replica {
		l.lastEcho, l.echoed, l.awaiting = now, hb.Demand, time.Time{}
		return
	}
	seen := now
	if l.replaying && e.Created().Before(now) {
		seen = e.Created()
	}
	if _, was := l.peers[replica]; !was && now.Sub(seen) <= l.cfg.TTL {
		l.b.log.Info("budget: replica joined", "other", replica)
	}
	l.peers[replica] = peer{demand: hb.Demand, seen: seen}
}

// decrease reacts to a 429 seen here: unless one was decided within the
// cooldown (the answers to calls sent before it are still coming), the
// deployment's rate is multiplied by Decrease from what it is now.
func (l *loop) decrease(now time.Time) bool {
	if l.thr.Seq > 0 && now.Sub(l.thr.At) < l.cfg.Cooldown {
		return false
	}
	cur := l.thr.factor(now, l.cfg.Recovery)
	l.thr = throttle{Seq: l.thr.Seq + 1, Factor: max(l.cfg.MinFactor, cur*l.cfg.Decrease), At: now.UTC()}
	l.b.log.Warn("budget: SentinelOne answered 429: slowing every replica down", "factor", l.thr.Factor)
	return true
}

// recompute counts out the replicas not heard from within the TTL, splits
// the budget, and sets the limiter to this replica's share: at once when it
// goes down, one Tick after it was first computed when it goes up (so that
// the replica it comes from, or the others making room for a newcomer,
// have had their heartbeats seen everywhere).
func (l *loop) recompute(now time.Time) {
	for id, p := range l.peers {
		if now.Sub(p.seen) > l.cfg.TTL {
			l.b.log.Info("budget: replica gone (no heartbeat within the TTL)", "other", id)
			delete(l.peers, id)
		}
	}
	// The others count this replica out one TTL after its last heartbeat
	// reached the bucket; it stops well before that when it cannot write
	// heartbeats or cannot see them come back.
	isolateAfter := l.cfg.TTL * 2 / 3
	isolated := now.Sub(l.lastAck) > isolateAfter || now.Sub(l.lastEcho) > isolateAfter
	if isolated != l.isolated {
		if isolated {
			l.b.log.Warn("budget: cannot reach the others through the bucket: sending nothing until it can")
		} else {
			l.b.log.Info("budget: reaching the others again")
		}
		l.isolated = isolated
	}
	factor := l.thr.factor(now, l.cfg.Recovery)
	target := 0.0
	if !isolated {
		target = l.target(factor)
	}
	const eps = 1e-9
	switch {
	case target <= l.applied+eps:
		l.applied, l.up = target, nil
	default:
		if l.up == nil {
			l.up = &pending{to: target, since: now}
			l.wake.Reset(l.cfg.Tick)
		}
		l.up.to = min(l.up.to, target)
		if now.Sub(l.up.since) >= l.cfg.Tick {
			l.applied, l.up = l.up.to, nil
			if target > l.applied+eps {
				l.up = &pending{to: target, since: now}
				l.wake.Reset(l.cfg.Tick)
			}
		}
	}
	share := l.applied * factor
	rate, burst := share*l.cfg.PerSecond, share*float64(l.cfg.Burst)
	if rate != l.rate || burst != l.burst {
		l.b.lim.SetLimit(rate, burst)
		l.rate, l.burst = rate, burst
	}
	l.b.mu.Lock()
	l.b.status = Status{Replicas: 1 + len(l.peers), Share: share, Allocation: l.applied, Throttle: factor,
		Demand: l.echoed.total(), Isolated: isolated}
	l.b.mu.Unlock()
	if l.applied > 0 {
		select {
		case <-l.b.joined:
		default:
			close(l.b.joined)
		}
	}
}

// target is this replica's allocation from the heartbeats it knows, the
// others' and its own as it came back through the watch: not as measured
// since, nor as last sent (a heartbeat that timed out may or may not have
// landed), because every replica must compute from the same numbers.
// Demand counts against the budget as the throttle leaves it.
func (l *loop) target(factor float64) float64 {
	ids := make([]string, 0, 1+len(l.peers))
	ids = append(ids, l.cfg.Replica)
	for id := range l.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	capacity := l.cfg.PerSecond * factor
	want := make([]wants, len(ids))
	me := 0
	for i, id := range ids {
		d := l.echoed
		if id != l.cfg.Replica {
			d = l.peers[id].demand
		} else {
			me = i
		}
		want[i] = wants{
			prioMutating:   d.Mutating * l.cfg.Headroom / capacity,
			prioRead:       d.Read * l.cfg.Headroom / capacity,
			prioBackground: d.Background * l.cfg.Headroom / capacity,
		}
	}
	return allocate(want, l.cfg.Floor/float64(len(ids)))[me]
}

// leave stops sending, then deletes this replica's key so that the others
// take its share at once, and stops the watch.
func (l *loop) leave() {
	l.b.lim.SetLimit(0, 0)
	l.b.mu.Lock()
	l.b.status.Share, l.b.status.Allocation = 0, 0
	l.b.mu.Unlock()
	// A heartbeat landing after the delete would bring the key back.
	l.putter.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), min(l.cfg.TTL/3, 2*time.Second))
	defer cancel()
	err := l.cfg.KV.Delete(ctx, l.b.key)
	if l.watcher != nil {
		l.watcher.Stop()
	}
	if l.watching {
		// The loop's context has ended, so the creation returns soon.
		if r := <-l.watched; r.w != nil {
			r.w.Stop()
		}
		l.watching = false
	}
	l.b.mu.Lock()
	l.b.leaveErr = err
	l.b.mu.Unlock()
	if err != nil {
		l.b.log.Warn("budget: could not delete the heartbeat; it expires with the TTL", "error", err)
		return
	}
	l.b.log.Info("budget: left")
}
