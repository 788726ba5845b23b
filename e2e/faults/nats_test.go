package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// timed is an outcome with when its request was sent.
type timed struct {
	outcome
	start    time.Time
	deadline time.Duration
}

// TestNATSRestartDuringActions stops the nats-server while eight callers
// keep sending requests (the console answers each in 100 ms, so some are
// always in flight) and starts it again a second later on the same port
// and store. Every request must end by its deadline, with a reply or a
// clean timeout or "no responders" (while the connector has not yet
// reconnected); the connector must reconnect by itself, and every request
// sent once it answers again must succeed.
func TestNATSRestartDuringActions(t *testing.T) {
	r := newRig(t, small, 1, nil)
	if err := r.emu.Inject(emulator.Fault{Kind: emulator.FaultLatency, Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	actions := []string{"agents.list", "groups.list", "sites.list", "threats.list"}
	const callers = 8
	var (
		mu   sync.Mutex
		all  []timed
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 1))
			for !stop.Load() {
				a := actions[rnd.IntN(len(actions))]
				d := 2 * time.Second
				start := time.Now()
				o := call(r.nc, r.subject(a), a, `{"limit":5}`, d)
				mu.Lock()
				all = append(all, timed{o, start, d})
				mu.Unlock()
				if o.err != nil {
					time.Sleep(20 * time.Millisecond) // no responders comes back at once
				}
			}
		}()
	}
	time.Sleep(time.Second)
	down := time.Now()
	r.restartNATS(time.Second)
	up := time.Now()
	// Wait for the first success of a request sent after the restart, then
	// keep the traffic going a little longer.
	var recovered time.Time
	testenv.WaitFor(t, 30*time.Second, "a request sent after the restart to succeed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range all {
			if o.code == 200 && o.start.After(up) && (recovered.IsZero() || o.start.Before(recovered)) {
				recovered = o.start
			}
		}
		return !recovered.IsZero()
	})
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var inFlight, inFlightAnswered, noResponders, timeouts, after, afterOK int
	for _, o := range all {
		if late := o.took - o.deadline; late > 500*time.Millisecond {
			t.Errorf("a request ended %s after its deadline: %s", late, o)
		}
		end := o.start.Add(o.took)
		if o.start.Before(down) && end.After(down) {
			inFlight++
			if o.err == nil {
				inFlightAnswered++
			}
		}
		switch {
		case o.err == nil && o.code != 200:
			t.Errorf("error reply: %s", o)
		case errors.Is(o.err, connector.ErrNoResponders) || errors.Is(o.err, nats.ErrNoResponders):
			noResponders++
		case o.err != nil && o.timedOut():
			timeouts++
		case o.err != nil:
			t.Errorf("unclean failure: %s", o)
		}
		if !o.start.Before(recovered) {
			after++
			if o.code == 200 {
				afterOK++
			} else {
				t.Errorf("sent after the connector answered again: %s", o)
			}
		}
	}
	if !r.conns[0].Conn().IsConnected() {
		t.Error("the connector is not connected")
	}
	if after < 20 {
		t.Errorf("only %d requests after the restart", after)
	}
	t.Logf("%d requests; %d in flight when the server stopped (%d of them answered after the restart, the rest timed out); "+
		"%d timeouts and %d 'no responders' in all; server down %s; first success sent %s after it was up; %d of %d requests since succeeded",
		len(all), inFlight, inFlightAnswered, timeouts, noResponders, up.Sub(down).Round(time.Millisecond),
		recovered.Sub(up).Round(time.Millisecond), afterOK, after)
}

// TestNATSRestartDuringIngestion restarts the nats-server twice, on the same
// port and store, while two replicas ingest a backlog of 2,500 threats and
// the console keeps changing. Both replicas reconnect by themselves, one of
// them leads, and the stream ends up with every threat's created event once,
// no event id twice, and every threat's latest state as the emulator has it.
func TestNATSRestartDuringIngestion(t *testing.T) {
	r := newRig(t, emulator.Sizes{Sites: 1, GroupsPerSite: 2, Agents: 20, Threats: 2500}, 2,
		func(c *config.Config) {
			testenv.IngestOn(c)
			m := c.Consoles["main"]
			m.Ingest.PageSize = 200
			c.Consoles["main"] = m
		}, connector.WithLeaseTTL(1500*time.Millisecond))
	stream := r.cfg.EventsStreamName()
	var stop atomic.Bool
	var wg sync.WaitGroup
	threats := r.emu.IDs().Threats
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(3, 3))
		for !stop.Load() {
			id := threats[rnd.IntN(len(threats))]
			_ = r.emu.UpdateThreat(id, emulator.ThreatUpdate{
				IncidentStatus: []string{"in_progress", "resolved", "unresolved"}[rnd.IntN(3)],
				AnalystVerdict: []string{"true_positive", "false_positive", "suspicious"}[rnd.IntN(3)],
			})
			if rnd.IntN(5) == 0 {
				r.emu.AddThreats(3, time.Time{})
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	var restarts []string
	for i, down := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond} {
		before := testenv.StreamMsgs(r.nc, r.cfg.EventsStreamName())
		testenv.WaitFor(t, 60*time.Second, "ingestion to publish", func() bool { return testenv.StreamMsgs(r.nc, r.cfg.EventsStreamName()) > before+300 })
		n := testenv.StreamMsgs(r.nc, r.cfg.EventsStreamName())
		r.restartNATS(down)
		restarts = append(restarts, fmt.Sprintf("restart %d at %d events, down %s", i+1, n, down))
	}
	testenv.WaitFor(t, 30*time.Second, "both replicas to reconnect", func() bool {
		return r.conns[0].Conn().IsConnected() && r.conns[1].Conn().IsConnected()
	})
	stop.Store(true)
	wg.Wait()
	quiet := time.Now()
	rep := r.caughtUp(quiet, 90*time.Second)
	testenv.WaitFor(t, 10*time.Second, "exactly one replica to lead ingestion", func() bool {
		return r.conns[0].IngestLeader("main") != r.conns[1].IngestLeader("main")
	})
	sort.Strings(restarts)
	t.Logf("%v; caught up %s after the console went quiet: %s (stream %s)", restarts, time.Since(quiet).Round(time.Millisecond), rep, stream)
}

// TestNATSNotUpAtStart starts the connector before its nats-server: Start
// waits for the server, then serves. Before the first connect the client
// does not know the server's max payload; list replies must be cut to the
// one the server announces (truncated, with a cursor), not refused.
func TestNATSNotUpAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	emu, url := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 10, Threats: 1500}))
	cfg := testenv.Config(fmt.Sprintf("nats://127.0.0.1:%d", port), url)
	c, err := connector.New(cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		started <- c.Start(ctx)
	}()
	time.Sleep(500 * time.Millisecond)
	// nats-server's default max payload, 1 MB: the 1500 threats (6 MB) do
	// not fit in one reply.
	srv := testenv.NATSServerWith(t, func(o *server.Options) { o.Port, o.MaxPayload = port, 1<<20 })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	if err := <-started; err != nil {
		t.Fatalf("start with NATS coming up later: %v", err)
	}
	nc := testenv.Conn(t, srv)
	o := call(nc, c.Subjects().Action("main", "threats.list"), "threats.list", `{"all":true,"limit":1000}`, 20*time.Second)
	if o.code != 200 {
		t.Fatalf("threats.list all of %d threats: %v", len(emu.IDs().Threats), o)
	}
	var l2 struct {
		Items      []json.RawMessage `json:"items"`
		Truncated  bool              `json:"truncated"`
		NextCursor *string           `json:"nextCursor"`
	}
	if err := json.Unmarshal(o.reply.Event.Data, &l2); err != nil {
		t.Fatal(err)
	}
	if !l2.Truncated || l2.NextCursor == nil || len(o.reply.Event.Data) > 1<<20 {
		t.Errorf("reply of %d bytes with %d threats, truncated %v: want a reply cut under 1 MB with a cursor", len(o.reply.Event.Data), len(l2.Items), l2.Truncated)
	}
}
