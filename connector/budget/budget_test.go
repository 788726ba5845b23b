package budget_test

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/budget"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// jitter is how much later or earlier than its token a request may reach
// the emulator's log on a loaded machine; windows are widened by it.
const jitter = 100 * time.Millisecond

// TestSharedBudgetCapsDeployment: three replicas, each with its own client,
// hammer the emulator with 60 concurrent reads (the third joining while the
// other two already flood it). Over any window the console sees at most
// per_second × window + burst calls, and the budget is used, not wasted.
func TestSharedBudgetCapsDeployment(t *testing.T) {
	const perSecond, burst = 20.0, 10
	d := newDeployment(t, perSecond, burst, testTTL)
	a := d.add("a", emulator.PathSystemInfo, nil)
	b := d.add("b", emulator.PathSystemInfo, nil)
	start := time.Now()
	stopAB := flood([]*replica{a, b}, 40)
	time.Sleep(800 * time.Millisecond)
	c := d.add("c", emulator.PathSystemInfo, nil) // joins during the flood
	stopC := flood([]*replica{c}, 20)
	time.Sleep(2 * time.Second)
	stopC()
	stopAB()
	elapsed := time.Since(start)
	times := d.arrivals(start)

	for _, w := range []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second, elapsed} {
		limit := int(perSecond*(w+jitter).Seconds()) + burst
		if got := maxInWindow(times, w); got > limit {
			t.Errorf("%d calls within %s; the budget allows %d (%.0f/s × (%s + %s jitter) + burst %d)", got, w, limit, perSecond, w, jitter, burst)
		}
	}
	// The budget must also be spent: an empty share would pass the cap.
	if used := float64(len(times)) / (perSecond*elapsed.Seconds() + burst); used < 0.75 {
		t.Errorf("%d calls in %s: %.0f%% of the budget used", len(times), elapsed, used*100)
	}
	t.Logf("%d calls in %s (%.1f/s, budget %.0f/s + %d); busiest second %d; %s", len(times), elapsed.Round(time.Millisecond),
		float64(len(times))/elapsed.Seconds(), perSecond, burst, maxInWindow(times, time.Second), shares(a, b, c))
}

// TestIdleReplicaLendsItsShare: a replica with no work keeps only the
// floor, and the two busy ones use the rest of the budget between them.
func TestIdleReplicaLendsItsShare(t *testing.T) {
	const perSecond, burst = 30.0, 6
	d := newDeployment(t, perSecond, burst, testTTL)
	a := d.add("a", emulator.PathSystemInfo, nil)
	b := d.add("b", emulator.PathSystemInfo, nil)
	idle := d.add("idle", emulator.PathSystemInfo, nil)
	stop := flood([]*replica{a, b}, 40)
	defer stop()
	floor := budget.DefaultFloor / 3
	waitFor(t, 5*time.Second, "the idle replica to keep only the floor", func() (bool, string) {
		return math.Abs(idle.b.Share()-floor) < 0.01 && math.Abs(a.b.Share()-(1-floor)/2) < 0.02 &&
			math.Abs(b.b.Share()-(1-floor)/2) < 0.02, shares(a, b, idle)
	})
	from := time.Now()
	time.Sleep(time.Second)
	got := between(d.arrivals(from), from, time.Now())
	// Equal thirds would let the two busy replicas send 2/3 of the budget.
	if want := 0.85 * perSecond; float64(got) < want {
		t.Errorf("the busy replicas sent %d calls in a second; with the idle one's share lent, at least %.0f", got, want)
	}
	t.Logf("busy replicas sent %d calls in 1s of a %.0f/s budget; %s", got, perSecond, shares(a, b, idle))

	// Its first call goes at once (its bucket holds a token), and once it
	// is busy too the budget is split in thirds again.
	start := time.Now()
	if err := idle.read(t.Context()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("the idle replica's first call took %s", el)
	}
	stopIdle := flood([]*replica{idle}, 20)
	defer stopIdle()
	waitFor(t, 5*time.Second, "equal thirds once all are busy", func() (bool, string) {
		ok := true
		for _, r := range []*replica{a, b, idle} {
			ok = ok && math.Abs(r.b.Share()-1.0/3) < 0.02
		}
		return ok, shares(a, b, idle)
	})
}

// TestReplicasLeaving: a replica that stops cleanly hands its share over at
// once; one that dies (its connection gone, its key left behind) stops
// sending itself within 2/3 of the TTL and is counted out by the others
// within the TTL.
func TestReplicasLeaving(t *testing.T) {
	const perSecond, burst = 30.0, 6
	d := newDeployment(t, perSecond, burst, testTTL)
	a := d.add("a", emulator.PathSystemInfo, nil)
	b := d.add("b", emulator.PathSystemInfo, nil)
	c := d.add("c", emulator.PathSystemInfo, nil)
	stopA := flood([]*replica{a}, 20)
	defer stopA()
	stopB := flood([]*replica{b}, 20)
	defer stopB()
	stopC := flood([]*replica{c}, 20)
	waitFor(t, 5*time.Second, "thirds", func() (bool, string) {
		return math.Abs(a.b.Share()-1.0/3) < 0.02 && math.Abs(b.b.Share()-1.0/3) < 0.02, shares(a, b, c)
	})

	stopC()
	start := time.Now()
	if err := c.b.Stop(t.Context()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c.b.Share() != 0 {
		t.Errorf("a stopped replica keeps share %v", c.b.Share())
	}
	waitFor(t, 2*time.Second, "halves after a clean stop", func() (bool, string) {
		return math.Abs(a.b.Share()-0.5) < 0.02 && math.Abs(b.b.Share()-0.5) < 0.02, shares(a, b)
	})
	t.Logf("clean stop: shares grew to halves in %s (TTL %s)", time.Since(start).Round(time.Millisecond), testTTL)

	// b dies: its connection closes, its key stays until the TTL.
	b.nc.Close()
	died := time.Now()
	waitFor(t, testTTL, "the dead replica to stop sending", func() (bool, string) {
		return b.b.Status().Isolated && b.b.Share() == 0, shares(b)
	})
	isolated := time.Since(died)
	waitFor(t, testTTL+time.Second, "the survivor to take the whole budget", func() (bool, string) {
		return math.Abs(a.b.Share()-1) < 0.01 && a.b.Status().Replicas == 1, shares(a)
	})
	grown := time.Since(died)
	if grown < isolated {
		t.Errorf("the survivor took the dead replica's share after %s, before the dead one stopped (%s)", grown, isolated)
	}
	t.Logf("death: the dead replica stopped after %s, the survivor took over after %s (TTL %s)",
		isolated.Round(time.Millisecond), grown.Round(time.Millisecond), testTTL)
}

// TestRateLimitedSlowsEveryone: a 429 storm on the path only replica a
// reads slows b and c too, and the rate climbs back to the budget after.
func TestRateLimitedSlowsEveryone(t *testing.T) {
	const perSecond, burst = 30.0, 6
	const recovery = 3 * time.Second
	d := newDeployment(t, perSecond, burst, testTTL)
	tune := func(c *budget.Config) { c.Recovery, c.Cooldown = recovery, 500*time.Millisecond }
	a := d.add("a", emulator.PathSites, tune)
	b := d.add("b", emulator.PathSystemInfo, tune)
	c := d.add("c", emulator.PathSystemInfo, tune)
	stop := flood([]*replica{a, b, c}, 60)
	defer stop()
	waitFor(t, 5*time.Second, "thirds", func() (bool, string) {
		return math.Abs(b.b.Share()-1.0/3) < 0.02 && math.Abs(c.b.Share()-1.0/3) < 0.02, shares(a, b, c)
	})

	if err := d.emu.Inject(emulator.Fault{Path: emulator.PathSites, Kind: emulator.FaultRateLimit}); err != nil {
		t.Fatal(err)
	}
	storm := time.Now()
	waitFor(t, 2*time.Second, "b and c to slow down on a's 429s", func() (bool, string) {
		return b.b.Status().Throttle < 0.75 && c.b.Status().Throttle < 0.75, shares(a, b, c)
	})
	time.Sleep(700 * time.Millisecond)
	d.emu.ClearFaults()
	cleared := time.Now()
	// b and c never saw a 429, yet sent clearly less than their two thirds.
	unthrottled := 2.0 / 3 * perSecond * cleared.Sub(storm).Seconds()
	sent := between(d.arrivals(storm, emulator.PathSystemInfo), storm, cleared)
	if float64(sent) > 0.8*unthrottled {
		t.Errorf("during the storm b and c sent %d calls; unthrottled they would send %.0f", sent, unthrottled)
	}
	t.Logf("storm of %s: b and c sent %d calls (unthrottled %.0f); %s", cleared.Sub(storm).Round(time.Millisecond), sent, unthrottled, shares(a, b, c))

	waitFor(t, recovery+2*time.Second, "every replica back to the whole budget", func() (bool, string) {
		ok := true
		for _, r := range []*replica{a, b, c} {
			st := r.b.Status()
			ok = ok && st.Throttle == 1 && math.Abs(st.Share-1.0/3) < 0.02
		}
		return ok, shares(a, b, c)
	})
	from := time.Now()
	time.Sleep(time.Second)
	if got := between(d.arrivals(from), from, time.Now()); float64(got) < 0.8*perSecond {
		t.Errorf("after recovery the console sees %d calls a second of a %.0f/s budget", got, perSecond)
	}
	t.Logf("recovered %s after the storm", time.Since(cleared).Round(time.Millisecond))
}

// TestMutatingDuringFlood: mutating calls sent on each replica while 60
// readers keep every replica's share queued wait at most about one token
// of the replica's share (1 / (share × per_second)).
func TestMutatingDuringFlood(t *testing.T) {
	const perSecond, burst = 30.0, 6
	d := newDeployment(t, perSecond, burst, testTTL)
	rs := []*replica{d.add("a", emulator.PathSystemInfo, nil), d.add("b", emulator.PathSystemInfo, nil), d.add("c", emulator.PathSystemInfo, nil)}
	stop := flood(rs, 60)
	defer stop()
	waitFor(t, 5*time.Second, "thirds", func() (bool, string) {
		ok := true
		for _, r := range rs {
			ok = ok && math.Abs(r.b.Share()-1.0/3) < 0.02
		}
		return ok, shares(rs...)
	})
	token := time.Duration(float64(time.Second) / (perSecond / 3.0)) // 100 ms
	var worst time.Duration
	for range 3 {
		for _, r := range rs {
			start := time.Now()
			if err := r.mutate(t.Context()); err != nil {
				t.Fatal(err)
			}
			worst = max(worst, time.Since(start))
		}
		time.Sleep(token)
	}
	// One token of the share, plus the call itself and a loaded machine.
	if worst > 2*token+100*time.Millisecond {
		t.Errorf("a mutating call waited %s behind the read flood; one token of the share is %s", worst, token)
	}
	t.Logf("worst mutating call %s behind the read flood (one token of the share: %s)", worst.Round(time.Millisecond), token)
}

func TestConfigValidation(t *testing.T) {
	srv := testenv.NATSServer(t)
	js, err := jetstream.New(testenv.Conn(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "B", TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	good := budget.Config{Console: "main", Replica: "r1", PerSecond: 10, Burst: 10, KV: kv, TTL: testTTL, Tick: 100 * time.Millisecond}
	tests := []struct {
		name string
		edit func(*budget.Config)
	}{
		{"console with a dot", func(c *budget.Config) { c.Console = "a.b" }},
		{"replica with a dot", func(c *budget.Config) { c.Replica = "host.example.com-1" }},
		{"empty replica", func(c *budget.Config) { c.Replica = "" }},
		{"no rate", func(c *budget.Config) { c.PerSecond = 0 }},
		{"NaN rate", func(c *budget.Config) { c.PerSecond = math.NaN() }},
		{"no burst", func(c *budget.Config) { c.Burst = 0 }},
		{"no bucket", func(c *budget.Config) { c.KV = nil }},
		{"tick too long", func(c *budget.Config) { c.TTL, c.Tick = time.Second, 400*time.Millisecond }},
		{"decrease of 1", func(c *budget.Config) { c.Decrease = 1 }},
		{"floor above 1", func(c *budget.Config) { c.Floor = 2 }},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		if _, err := budget.New(cfg); !errors.Is(err, budget.ErrInvalidConfig) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	// The bucket must drop keys when the others count a replica out.
	other := good
	other.TTL = 3 * testTTL
	if b, err := budget.New(other); err != nil {
		t.Fatal(err)
	} else if err := b.Start(t.Context()); !errors.Is(err, budget.ErrInvalidConfig) {
		t.Errorf("TTL %s on a bucket with MaxAge %s: %v", other.TTL, testTTL, err)
	}

	b, err := budget.New(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(t.Context()); err != nil {
		t.Errorf("stop before start: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); !errors.Is(err, budget.ErrStarted) {
		t.Errorf("second start: %v", err)
	}
	// Alone, it has the whole budget; its context ending makes it leave.
	if s := b.Status(); s.Share != 1 || s.Replicas != 1 {
		t.Errorf("alone: %+v", s)
	}
	cancel()
	if err := b.Stop(t.Context()); err != nil {
		t.Errorf("stop after the context ended: %v", err)
	}
	if _, err := kv.Get(t.Context(), "main.budget.r1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the key outlived the stop: %v", err)
	}
}

// TestStartFailsWithoutBucket: a budget whose bucket is gone cannot join,
// says so, and leaves nothing running.
func TestStartFailsWithoutBucket(t *testing.T) {
	srv := testenv.NATSServer(t)
	js, err := jetstream.New(testenv.Conn(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "B", TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(t.Context(), "B"); err != nil {
		t.Fatal(err)
	}
	b, err := budget.New(budget.Config{Console: "main", Replica: "r1", PerSecond: 10, Burst: 10, KV: kv, TTL: testTTL, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil {
		t.Fatal("joined without a bucket")
	}
	if s := b.Share(); s != 0 {
		t.Errorf("share %v after a failed start", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Limiter().Wait(ctx, 0); err == nil {
		t.Error("the limiter let a call through after a failed start")
	}
}

// TestNATSRestart: while NATS is down no replica can tell the others it is
// alive, so each stops sending; when it is back they share the budget
// again without being restarted.
func TestNATSRestart(t *testing.T) {
	const perSecond, burst = 30.0, 6
	dir := t.TempDir()
	srv := testenv.NATSServerAt(t, -1, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	d := newDeploymentOn(t, srv, perSecond, burst, testTTL)
	a := d.add("a", emulator.PathSystemInfo, nil)
	b := d.add("b", emulator.PathSystemInfo, nil)
	stop := flood([]*replica{a, b}, 40)
	defer stop()
	halves := func() (bool, string) {
		return math.Abs(a.b.Share()-0.5) < 0.02 && math.Abs(b.b.Share()-0.5) < 0.02, shares(a, b)
	}
	waitFor(t, 5*time.Second, "halves", halves)

	srv.Shutdown()
	srv.WaitForShutdown()
	down := time.Now()
	waitFor(t, testTTL, "both to stop sending", func() (bool, string) {
		return a.b.Share() == 0 && b.b.Share() == 0, shares(a, b)
	})
	t.Logf("NATS down: both stopped sending after %s", time.Since(down).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	quiet := time.Now()
	time.Sleep(300 * time.Millisecond)
	if n := between(d.arrivals(quiet), quiet, time.Now()); n > 0 {
		t.Errorf("%d calls reached the console while NATS was down", n)
	}

	testenv.NATSServerAt(t, port, dir)
	up := time.Now()
	waitFor(t, 5*time.Second, "halves again", halves)
	t.Logf("NATS back: halves again after %s", time.Since(up).Round(time.Millisecond))
	stop()
	for _, r := range []*replica{a, b} {
		if err := r.b.Stop(t.Context()); err != nil {
			t.Errorf("%s: stop after the restart: %v", r.name, err)
		}
	}
}

// TestRefusedCallersCountAsDemand: callers whose deadlines the replica's
// share cannot meet are refused at once and never queue; they must still
// count as demand, or a replica starting from the floor would stay there.
func TestRefusedCallersCountAsDemand(t *testing.T) {
	const perSecond, burst = 30.0, 6
	d := newDeployment(t, perSecond, burst, testTTL)
	a := d.add("a", emulator.PathSystemInfo, nil)
	b := d.add("b", emulator.PathSystemInfo, nil)
	stop := flood([]*replica{a}, 20)
	defer stop()
	waitFor(t, 5*time.Second, "b idle at the floor", func() (bool, string) {
		return math.Abs(b.b.Share()-budget.DefaultFloor/2) < 0.01, shares(a, b)
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 20 {
		wg.Go(func() {
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Millisecond)
				if b.read(cctx) != nil {
					time.Sleep(10 * time.Millisecond) // a caller retrying, not spinning
				}
				ccancel()
			}
		})
	}
	waitFor(t, 2*time.Second, "b's share to grow to half", func() (bool, string) {
		return b.b.Share() > 0.45, shares(a, b)
	})
}

// TestLanesAcrossReplicas: the priority of lanes holds across the
// deployment, not only inside a replica: reads on one replica are served
// before background work (ingestion, monitors) on another.
func TestLanesAcrossReplicas(t *testing.T) {
	const perSecond, burst = 30.0, 6
	d := newDeployment(t, perSecond, burst, testTTL)
	ingest := d.add("ingest", emulator.PathSystemInfo, nil)
	reads := d.add("reads", emulator.PathSystemInfo, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 20 {
		wg.Go(func() {
			for ctx.Err() == nil {
				ingest.read(sentinelone.WithLane(ctx, sentinelone.LaneBackground))
			}
		})
	}
	stop := flood([]*replica{reads}, 20)
	defer stop()
	floor := budget.DefaultFloor / 2
	waitFor(t, 5*time.Second, "the reading replica to get all but the floor", func() (bool, string) {
		return math.Abs(ingest.b.Share()-floor) < 0.01 && math.Abs(reads.b.Share()-(1-floor)) < 0.01, shares(ingest, reads)
	})
}
