package connector_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// The budget itself (shares, joins, leaves, 429s, isolation) is tested in
// package budget; these tests check that the connector is wired to it:
// every replica's client waits on its share, actions and background loops
// call SentinelOne in their lanes, and the share is exported.

// budgetShare scrapes s1bridge_upstream_budget_share{console} from a
// connector's /metrics; ok is false when the series is missing.
func budgetShare(t *testing.T, c *connector.Connector, console string) (share float64, ok bool) {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := `s1bridge_upstream_budget_share{console="` + console + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), want); found {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s%s: %v", want, v, err)
			}
			return f, true
		}
	}
	return 0, false
}

// TestBudgetSharedAcrossReplicas: two replicas of one deployment split the
// console's rate_limit (idle, equally), each with a heartbeat key of its own
// named by a key token; when one stops, the other takes the whole budget.
func TestBudgetSharedAcrossReplicas(t *testing.T) {
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	cfg := testenv.Config(srv.ClientURL(), url)
	m := cfg.Consoles["main"]
	m.RateLimit.PerSecond, m.RateLimit.Burst = 10, 10
	cfg.Consoles["main"] = m
	ttl := connector.WithLeaseTTL(1500 * time.Millisecond)
	a := testenv.Connector(t, cfg, ttl)
	if s, ok := budgetShare(t, a, "main"); !ok || s != 1 {
		t.Fatalf("a single replica's share is %v (series present: %t), want 1", s, ok)
	}
	b, err := connector.New(cfg, testenv.Logger(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		b.Stop(ctx)
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			b.Stop(context.Background())
		}
	}()
	testenv.WaitFor(t, 10*time.Second, "both replicas at half the budget", func() bool {
		sa, _ := budgetShare(t, a, "main")
		sb, _ := budgetShare(t, b, "main")
		return sa > 0.45 && sa < 0.55 && sb > 0.45 && sb < 0.55
	})

	// Each replica heartbeats under a key of its own, a key token.
	js, err := jetstream.New(testenv.Conn(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, a.Subjects().BucketName(subjects.BucketLeases))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(ctx, subjects.BudgetKeys("main"))
	if err != nil {
		t.Fatal(err)
	}
	var replicas []string
	for k := range keys.Keys() {
		r, ok := subjects.BudgetReplica("main", k)
		if !ok {
			t.Errorf("heartbeat key %q does not name a replica with a key token", k)
		}
		replicas = append(replicas, r)
	}
	if len(replicas) != 2 || replicas[0] == replicas[1] {
		t.Errorf("heartbeat keys name replicas %v, want two different ones", replicas)
	}

	stopped = true
	if err := b.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	testenv.WaitFor(t, 5*time.Second, "the remaining replica to take the whole budget", func() bool {
		s, _ := budgetShare(t, a, "main")
		return s == 1
	})
}

// TestMutatingActionServedFirst: with the console's budget taken by queued
// reads, a mutating action is served at the next token, before them.
func TestMutatingActionServedFirst(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.RateLimit.PerSecond, m.RateLimit.Burst = 2, 1
		c.Consoles["main"] = m
	})
	// 16 readers: 8 s of the budget's tokens.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	subject := env.Connector.Subjects().Action("main", handlers.ActionAgentsList)
	for range 16 {
		wg.Go(func() {
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			defer rcancel()
			_, _ = connector.Call(rctx, env.NC, subject, handlers.ActionAgentsList, "/test", []byte(`{"limit":1}`))
		})
	}
	agents := emulator.APIPrefix + emulator.PathAgents
	testenv.WaitFor(t, 10*time.Second, "the first reads to reach the console", func() bool {
		return countPath(env.Emu, agents) >= 2
	})
	start := time.Now()
	r := env.Call(t, handlers.ActionAgentsConnect, `{"agentIds":["225494730938493804"]}`)
	took := time.Since(start)
	if r.Err != nil {
		t.Fatalf("agents.connect: %v", r.Err)
	}
	reads := countPath(env.Emu, agents)
	// One token every 500 ms; the reads queued ahead of it need 7 s more.
	if took > 2*time.Second || reads > 8 {
		t.Errorf("agents.connect took %s and %d reads reached the console first; want it served at the next token, before the queued reads", took, reads)
	}
}

// TestIngestionYieldsToActions: ingestion polls in the background lane, so
// while read actions keep the console's budget busy it sends nothing, and
// it resumes when they stop.
func TestIngestionYieldsToActions(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		m := c.Consoles["main"]
		m.RateLimit.PerSecond, m.RateLimit.Burst = 4, 1
		c.Consoles["main"] = m
	})
	threats := emulator.APIPrefix + emulator.PathThreats
	testenv.WaitFor(t, 20*time.Second, "ingestion to poll", func() bool { return countPath(env.Emu, threats) >= 2 })

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	subject := env.Connector.Subjects().Action("main", handlers.ActionAgentsList)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
				_, _ = connector.Call(rctx, env.NC, subject, handlers.ActionAgentsList, "/test", []byte(`{"limit":1}`))
				rcancel()
			}
		})
	}
	agents := emulator.APIPrefix + emulator.PathAgents
	before := countPath(env.Emu, agents)
	testenv.WaitFor(t, 10*time.Second, "the reads to take the budget", func() bool { return countPath(env.Emu, agents) >= before+3 })
	// A poll already past the limiter may still arrive; after that, none.
	time.Sleep(600 * time.Millisecond)
	polls := countPath(env.Emu, threats)
	time.Sleep(2500 * time.Millisecond)
	during := countPath(env.Emu, threats) - polls
	readsDuring := countPath(env.Emu, agents) - before
	cancel()
	wg.Wait()
	if during != 0 {
		t.Errorf("ingestion polled %d times while reads queued for the budget (%d reads served), want none", during, readsDuring)
	}
	testenv.WaitFor(t, 10*time.Second, "ingestion to poll again once the reads stopped", func() bool {
		return countPath(env.Emu, threats) > polls+during
	})
}

// countPath counts the emulator's recorded requests to path.
func countPath(emu *emulator.Emulator, path string) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// TestRateLimitedSlowsTheBudget: a 429 from SentinelOne reaches the
// console's budget through the client (the share drops, here from 1 to the
// budget's decrease), and the rate recovers afterwards.
func TestRateLimitedSlowsTheBudget(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.RateLimit.PerSecond, m.RateLimit.Burst = 10, 10
		c.Consoles["main"] = m
	})
	if err := env.Emu.Inject(emulator.Fault{Path: emulator.PathAgents, Kind: emulator.FaultRateLimit, Count: 1}); err != nil {
		t.Fatal(err)
	}
	// The retry after the 429 answers.
	if r := env.Call(t, handlers.ActionAgentsList, `{"limit":1}`); r.Err != nil {
		t.Fatalf("agents.list: %v", r.Err)
	}
	s, ok := budgetShare(t, env.Connector, "main")
	if !ok || s > 0.6 {
		t.Fatalf("share after a 429: %v (series present: %t), want the budget halved", s, ok)
	}
	testenv.WaitFor(t, 30*time.Second, "the budget to recover", func() bool {
		s, _ := budgetShare(t, env.Connector, "main")
		return s > 0.9
	})
}
