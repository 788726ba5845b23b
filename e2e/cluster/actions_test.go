package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// outcome is how one request ended, as its caller saw it.
type outcome int

const (
	replied      outcome = iota // the right reply
	retryable                   // an error reply with code 503 or 504
	timedOut                    // no reply by the deadline
	noResponders                // nobody subscribed (the connector reconnecting)
	wrong                       // anything else: the test fails
	outcomes
)

var outcomeNames = [outcomes]string{"replied", "503/504", "timed out", "no responders", "WRONG"}

// actionCase is one kind of request the callers send, with what a right
// reply holds.
type actionCase struct {
	action string
	data   func(n int) string
	check  func(n int, data []byte) error
}

func TestActionsSurviveServerLoss(t *testing.T) {
	const (
		callers  = 16
		deadline = 5 * time.Second
		// slack is how late after its deadline a caller may see a request
		// end: on a two-core machine under -race, busy with other tests,
		// goroutines were seen to wake 1.6 s late. A hang is unbounded.
		slack = 3 * time.Second
	)
	cl := testenv.NATSCluster(t, 3)
	emu, emuURL := testenv.Emulator(t)
	cfg := clusterConfig(cl, emuURL)
	// Ingestion and the monitors run too, so the stream and the buckets
	// have work in flight when their leaders go.
	ingestOn(cfg, 100)
	c := testenv.Connector(t, cfg)
	nc := clientConn(t, cl)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := c.Subjects()
	checkReplicas(t, js, eventsStream, stateStream, leaseStream, monitorsStream)
	threats := emu.IDs().Threats
	cases := actionCases(threats)

	// Per action and outcome, the count; per action, when the last request
	// that got its right reply had been sent.
	var (
		counts    [outcomes]atomic.Int64
		perAction = make([][outcomes]atomic.Int64, len(cases))
		lastOK    = make([]atomic.Int64, len(cases))
		slowest   atomic.Int64
		mu        sync.Mutex
		failures  []string
		inflight  = map[int]time.Time{} // request number → when it was sent
	)
	record := func(k int, o outcome, sent time.Time, took time.Duration, detail string) {
		for {
			s := slowest.Load()
			if int64(took) <= s || slowest.CompareAndSwap(s, int64(took)) {
				break
			}
		}
		if took > deadline+slack {
			o, detail = wrong, fmt.Sprintf("ended %s after it was sent, past its %s deadline: %s", took, deadline, detail)
		}
		counts[o].Add(1)
		perAction[k][o].Add(1)
		switch o {
		case replied:
			lastOK[k].Store(sent.UnixNano())
		case wrong:
			mu.Lock()
			failures = append(failures, cases[k].action+": "+detail)
			mu.Unlock()
		}
	}
	snapshot := func(n *[outcomes]atomic.Int64) (out [outcomes]int64) {
		for o := range outcomes {
			out[o] = n[o].Load()
		}
		return out
	}
	one := func(k, n int) {
		cs := cases[k]
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		sent := time.Now()
		mu.Lock()
		inflight[n] = sent
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(inflight, n)
			mu.Unlock()
		}()
		id, r, err := call(ctx, nc, subj, cs.action, []byte(cs.data(n)))
		took := time.Since(sent)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
			if took < deadline-100*time.Millisecond {
				record(k, wrong, sent, took, fmt.Sprintf("timed out after %s, before its deadline: %v", took, err))
				return
			}
			record(k, timedOut, sent, took, err.Error())
		case errors.Is(err, connector.ErrNoResponders):
			record(k, noResponders, sent, took, err.Error())
		case err != nil:
			record(k, wrong, sent, took, err.Error())
		case r.Event.CorrelationID() != id:
			record(k, wrong, sent, took, fmt.Sprintf("reply to %q, want %q", r.Event.CorrelationID(), id))
		case r.Err != nil && (r.Err.Code == handlers.CodeUnavailable || r.Err.Code == handlers.CodeUpstreamTimeout) && r.Err.Retryable:
			record(k, retryable, sent, took, r.Err.Message)
		case r.Err != nil:
			record(k, wrong, sent, took, fmt.Sprintf("error reply %d %s", r.Err.Code, r.Err.Message))
		case r.Event.Type != subjects.ResponseType(cs.action):
			record(k, wrong, sent, took, "reply type "+r.Event.Type)
		default:
			if err := cs.check(n, r.Event.Data); err != nil {
				record(k, wrong, sent, took, fmt.Sprintf("%v in %s", err, r.Event.Data))
				return
			}
			record(k, replied, sent, took, "")
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for g := range callers {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				one(i%len(cases), int(seq.Add(1)))
				// A short pause leaves the two cores some room for the
				// cluster's elections and heartbeats.
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	stopped := false
	stopCallers := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopCallers()

	// servedSince reports whether every action got its right reply to a
	// request sent after since.
	servedSince := func(since time.Time) bool {
		for k := range cases {
			if lastOK[k].Load() <= since.UnixNano() {
				return false
			}
		}
		return true
	}
	testenv.WaitFor(t, 20*time.Second, "every action to be served", func() bool { return servedSince(time.Now().Add(-time.Hour)) })
	warm := time.Now()
	testenv.WaitFor(t, 20*time.Second, "steady traffic", func() bool { return servedSince(warm) && counts[replied].Load() >= 100 })

	// 1. The node the connector is connected to. 2. The events stream's
	// leader (maybe the same node: the connector moved).
	kills := []struct {
		what   string
		victim func() string
	}{
		{"the connector's server", func() string { return c.Conn().ConnectedServerName() }},
		{"the leader of " + eventsStream, func() string { return leaderOf(t, js, eventsStream, "", 10*time.Second) }},
	}
	for _, k := range kills {
		victim := k.victim()
		node := cl.Index(victim)
		if node < 0 {
			t.Fatalf("no node is named %q", victim)
		}
		connectorThere := c.Conn().ConnectedServerName() == victim
		before := snapshot(&counts)
		killed := time.Now()
		cl.Stop(node)
		down := time.Now() // measured from here: the node is gone
		took := sideBySide(30*time.Second,
			func() bool { return cl.StreamLeader(eventsStream) != "" },
			func() bool { return c.Conn().IsConnected() && c.Conn().ConnectedServerName() != victim },
			func() bool { return servedSince(down) },
		)
		if took[0] < 0 || took[1] < 0 || took[2] < 0 {
			t.Fatalf("after killing %s (%s): events stream leader after %s, connector connected after %s, every action served after %s (-1: not within 30s)",
				victim, k.what, took[0], took[1], took[2])
		}
		restarted := time.Now()
		cl.Restart(t, node)
		waitRejoined(t, js, victim, 30*time.Second, eventsStream, stateStream, leaseStream, monitorsStream)
		rejoined := time.Since(restarted)
		testenv.WaitFor(t, deadline+slack+time.Second, "the requests in flight at the kill to end", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, sent := range inflight {
				if !sent.After(killed) {
					return false
				}
			}
			return true
		})
		during := snapshot(&counts)
		for o := range outcomes {
			during[o] -= before[o]
		}
		t.Logf("killed %s (%s; the connector was connected to it: %v; shutdown took %s), then: events stream leader after %s, connector connected after %s, every action served again after %s; restarted, %s was a current replica again after %s; requests ended from the kill until those then in flight had: %s",
			victim, k.what, connectorThere, down.Sub(killed).Round(time.Millisecond), took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), took[2].Round(time.Millisecond),
			victim, rejoined.Round(time.Millisecond), describe(during[:]))
	}
	stopCallers()

	total := snapshot(&counts)
	var ended int64
	for _, n := range total {
		ended += n
	}
	if ended != seq.Load() {
		t.Errorf("%d requests sent, %d ended", seq.Load(), ended)
	}
	t.Logf("%d requests from %d callers: %s; slowest ended %s after it was sent (deadline %s)",
		seq.Load(), callers, describe(total[:]), time.Duration(slowest.Load()).Round(time.Millisecond), deadline)
	for k, cs := range cases {
		n := snapshot(&perAction[k])
		t.Logf("  %-16s %s", cs.action, describe(n[:]))
	}
	if len(failures) > 0 {
		for i, f := range failures {
			if i == 10 {
				t.Errorf("... and %d more", len(failures)-10)
				break
			}
			t.Error(f)
		}
	}

	// The connector is alive and serves every action, as before.
	for k, cs := range cases {
		for n := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			id, r, err := call(ctx, nc, subj, cs.action, []byte(cs.data(n)))
			cancel()
			switch {
			case err != nil:
				t.Fatalf("%s after the kills: %v", cs.action, err)
			case r.Err != nil:
				t.Fatalf("%s after the kills: error %d %s", cs.action, r.Err.Code, r.Err.Message)
			case r.Event.CorrelationID() != id:
				t.Fatalf("%s after the kills: reply to %q, want %q", cs.action, r.Event.CorrelationID(), id)
			}
			if err := cases[k].check(n, r.Event.Data); err != nil {
				t.Fatalf("%s after the kills: %v in %s", cs.action, err, r.Event.Data)
			}
		}
	}
	testenv.WaitFor(t, 20*time.Second, "/healthz and /readyz to answer 200", func() bool {
		return httpOK(c.HTTPAddr(), "/healthz") && httpOK(c.HTTPAddr(), "/readyz")
	})
}

// actionCases are the requests the callers send: reads served by the
// console, a write to it, and two actions that read or write JetStream.
func actionCases(threats []string) []actionCase {
	threat := func(n int) string { return threats[n%len(threats)] }
	items := func(_ int, data []byte) error {
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(data, &l); err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("no items")
		}
		return nil
	}
	return []actionCase{
		{"agents.list", func(int) string { return `{"limit":5}` }, items},
		{"threats.list", func(n int) string { return fmt.Sprintf(`{"ids":[%q]}`, threat(n)) }, func(n int, data []byte) error {
			if err := items(n, data); err != nil {
				return err
			}
			if !strings.Contains(string(data), threat(n)) {
				return fmt.Errorf("threat %s is not in the reply", threat(n))
			}
			return nil
		}},
		{"threats.update", func(n int) string {
			status := []string{"in_progress", "resolved", "unresolved"}[n/len(threats)%3]
			return fmt.Sprintf(`{"threatIds":[%q],"incidentStatus":%q}`, threat(n), status)
		}, func(n int, data []byte) error {
			// affected is 0 when the threat already had the status: the
			// details say so.
			var u struct {
				Affected int `json:"affected"`
				Details  []struct {
					ThreatID string `json:"threatId"`
				} `json:"details"`
			}
			if err := json.Unmarshal(data, &u); err != nil {
				return err
			}
			if u.Affected > 1 || len(u.Details) != 1 || u.Details[0].ThreatID != threat(n) {
				return fmt.Errorf("not the update of threat %s", threat(n))
			}
			return nil
		}},
		{"ingest.status", func(int) string { return `{}` }, func(_ int, data []byte) error {
			var s struct {
				Console string `json:"console"`
			}
			if err := json.Unmarshal(data, &s); err != nil {
				return err
			}
			if s.Console != "main" {
				return fmt.Errorf("console %q", s.Console)
			}
			return nil
		}},
		{"threats.monitor", func(n int) string {
			return fmt.Sprintf(`{"threatId":%q,"timeout":"10m","pollInterval":"5s"}`, threat(n))
		}, func(n int, data []byte) error {
			var m handlers.MonitorReply
			if err := json.Unmarshal(data, &m); err != nil {
				return err
			}
			if m.MonitorID == "" || m.ThreatID != threat(n) {
				return fmt.Errorf("monitor %q of threat %q, want threat %s", m.MonitorID, m.ThreatID, threat(n))
			}
			return nil
		}},
	}
}

// describe lists the non-zero counts by outcome.
func describe(n []int64) string {
	var parts []string
	for o, c := range n {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", outcomeNames[o], c))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func httpOK(addr, path string) bool {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
