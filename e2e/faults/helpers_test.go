package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/e2e/faults"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// rig is a whole system whose nats-server can be restarted on the same port
// and store.
type rig struct {
	t     *testing.T
	dir   string // the JetStream store
	port  int
	srv   *server.Server
	emu   *emulator.Emulator
	cfg   *config.Config
	conns []*connector.Connector
	nc    *nats.Conn // the test's own client connection
	stops []func()   // each stops one connector, once
}

// newRig starts NATS, an emulator seeded with sizes, and replicas
// connectors sharing cfg (edited by edit) and opts.
func newRig(t *testing.T, sizes emulator.Sizes, replicas int, edit func(*config.Config), opts ...connector.Option) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir()}
	r.srv = testenv.NATSServerAt(t, -1, r.dir)
	r.port = r.srv.Addr().(*net.TCPAddr).Port
	var url string
	r.emu, url = testenv.Emulator(t, emulator.WithSizes(sizes))
	r.cfg = testenv.Config(r.srv.ClientURL(), url)
	if edit != nil {
		edit(r.cfg)
	}
	for range replicas {
		c, err := connector.New(r.cfg, testenv.Logger(t), opts...)
		if err != nil {
			t.Fatal(err)
		}
		r.conns = append(r.conns, c)
		r.stops = append(r.stops, sync.OnceFunc(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c.Stop(ctx)
		}))
		if err := c.Start(context.Background()); err != nil {
			r.stop()
			t.Fatal(err)
		}
	}
	r.nc = testenv.Conn(t, r.srv)
	t.Cleanup(r.stop)
	return r
}

// stop stops the connectors (each once).
func (r *rig) stop() {
	for _, s := range r.stops {
		s()
	}
}

// restartNATS stops the server, keeps it down for down, and starts it again
// on the same port with the same store.
func (r *rig) restartNATS(down time.Duration) {
	r.t.Helper()
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	time.Sleep(down)
	r.srv = testenv.NATSServerAt(r.t, r.port, r.dir)
	// Cleanups run last registered first: the connectors must stop (drain)
	// before this server shuts down.
	r.t.Cleanup(r.stop)
}

// subject is the action subject of console main.
func (r *rig) subject(action string) string { return r.conns[0].Subjects().Action("main", action) }

// outcome is what one action request came to.
type outcome struct {
	action string
	code   int   // 200, or the error reply's code; 0 when there was no reply
	err    error // no reply: the reason
	reply  *connector.Reply
	took   time.Duration // from sending to the reply (or to giving up)
	margin time.Duration // how long before its deadline the reply arrived
}

// call sends one request whose deadline (and expirytime) is timeout from now.
func call(nc *nats.Conn, subject, action, data string, timeout time.Duration) outcome {
	start := time.Now()
	deadline := start.Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	r, err := connector.Call(ctx, nc, subject, action, "/e2e/faults", []byte(data))
	now := time.Now()
	o := outcome{action: action, err: err, reply: r, took: now.Sub(start), margin: deadline.Sub(now)}
	switch {
	case err != nil:
	case r.Err != nil:
		o.code = r.Err.Code
	default:
		o.code = 200
	}
	return o
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%s: no reply after %s: %v", o.action, o.took.Round(time.Millisecond), o.err)
	}
	if o.reply.Err != nil {
		return fmt.Sprintf("%s: %d after %s (%s before the deadline): %s", o.action, o.code, o.took.Round(time.Millisecond),
			o.margin.Round(time.Millisecond), o.reply.Err.Message)
	}
	return fmt.Sprintf("%s: 200 after %s", o.action, o.took.Round(time.Millisecond))
}

// timedOut reports whether a call without a reply ended because its own
// deadline passed.
func (o outcome) timedOut() bool {
	return errors.Is(o.err, context.DeadlineExceeded) || errors.Is(o.err, nats.ErrTimeout)
}

// goroutines counts the goroutines of the process, apart from those of
// HTTP connections at rest (each is two goroutines in the client's pool and
// one in the emulator, which the pool keeps for 90 s), and those connections.
func goroutines() (others, conns int, stacks string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "net/http.(*persistConn).readLoop"):
			conns++
		case strings.Contains(g, "net/http.(*persistConn).writeLoop"),
			strings.Contains(g, "net/http.(*conn).serve") && strings.Contains(g, "bufio.(*Reader).Peek"):
		default:
			others++
		}
	}
	return others, conns, string(buf)
}

// noLeak waits until at most limit goroutines (apart from HTTP connections
// at rest) and at most maxConns HTTP connections remain, and returns their
// numbers; after timeout it fails the test and logs every stack.
func noLeak(t *testing.T, limit, maxConns int, timeout time.Duration) (int, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, c, stacks := goroutines()
		if n <= limit && c <= maxConns {
			return n, c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines and %d HTTP connections %s after the faults cleared, want at most %d and %d:\n%s",
				n, c, timeout, limit, maxConns, stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ingestStatus asks ingest.status.
func (r *rig) ingestStatus() (handlers.IngestStatusReply, error) {
	var s handlers.IngestStatusReply
	o := call(r.nc, r.subject("ingest.status"), "ingest.status", `{}`, 5*time.Second)
	if o.code != 200 {
		return s, fmt.Errorf("ingest.status: %s", o)
	}
	err := json.Unmarshal(o.reply.Event.Data, &s)
	return s, err
}

// waitPolls waits until the leader has completed k more polls.
func (r *rig) waitPolls(k int) {
	r.t.Helper()
	var prev time.Time
	seen := -1
	testenv.WaitFor(r.t, 30*time.Second, fmt.Sprintf("%d more polls", k), func() bool {
		s, err := r.ingestStatus()
		if err != nil || s.LastPollAt == nil {
			return false
		}
		if s.LastPollAt.After(prev) {
			seen++
			prev = *s.LastPollAt
		}
		return seen >= k
	})
}

// caughtUp waits for a complete poll that began after quiet, the moment the
// console stopped changing: by then everything is published. It checks the
// stream against the emulator, then again two polls later, when a late
// duplicate would show.
func (r *rig) caughtUp(quiet time.Time, timeout time.Duration) faults.Report {
	r.t.Helper()
	testenv.WaitFor(r.t, timeout, "a complete poll that began after the console went quiet", func() bool {
		s, err := r.ingestStatus()
		if err != nil || s.LastPollAt == nil || s.LagSeconds == nil {
			return false
		}
		started := time.Now().Add(-time.Duration(*s.LagSeconds * float64(time.Second)))
		return started.After(quiet)
	})
	read := func() faults.Report {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		evs, err := faults.ReadEvents(ctx, r.nc, r.cfg.EventsStreamName())
		if err != nil {
			r.t.Fatalf("read events: %v", err)
		}
		return faults.Verify(evs, r.emu)
	}
	rep := read()
	if !rep.OK() {
		r.t.Fatalf("stream against the emulator: %s", rep)
	}
	r.waitPolls(2)
	if rep = read(); !rep.OK() {
		r.t.Fatalf("two polls later: %s", rep)
	}
	return rep
}

// metric reads the value of one series from the connector's /metrics, 0
// when it is not there.
func metric(t *testing.T, c *connector.Connector, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// summary is the count of outcomes by code and the worst margins.
type summary struct {
	mu        sync.Mutex
	byCode    map[int]int
	noReply   map[string]int
	minMargin time.Duration
	closest   string // the reply closest to its deadline
	took      map[int][]time.Duration
}

func newSummary() *summary {
	return &summary{byCode: map[int]int{}, noReply: map[string]int{}, took: map[int][]time.Duration{}, minMargin: time.Hour}
}

func (s *summary) add(o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.err != nil {
		s.noReply[o.err.Error()]++
		return
	}
	s.byCode[o.code]++
	s.took[o.code] = append(s.took[o.code], o.took)
	if o.margin < s.minMargin {
		s.minMargin, s.closest = o.margin, o.String()
	}
}

func (s *summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var codes []int
	for c := range s.byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b bytes.Buffer
	for _, c := range codes {
		d := s.took[c]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(&b, "%d×%d (p50 %s, max %s) ", s.byCode[c], c, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "; closest reply %s before its deadline (%s)", s.minMargin.Round(time.Millisecond), s.closest)
	for e, n := range s.noReply {
		fmt.Fprintf(&b, "; no reply ×%d: %s", n, e)
	}
	return b.String()
}
