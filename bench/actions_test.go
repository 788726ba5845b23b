package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The measured action and its request.
const (
	benchAction  = handlers.ActionAgentsList
	benchRequest = `{"limit":10}`
	benchItems   = 10
	benchSource  = "/s1bridge/bench"
)

// Targets of the action plane and the loads they are measured under.
const (
	targetRatio       = 1.2                   // s1bridge p50 at most 1.2 × (direct HTTP p50 + raw NATS p50)
	targetOfIdeal     = 0.90                  // with a slow console, at least 90% of slowCallers / slowLatency
	slowLatency       = 50 * time.Millisecond // the slow console's added latency
	slowCallers       = 64                    // concurrent callers of the slow console
	throughputCallers = 16                    // concurrent callers of the throughput runs
)

// actionsConfig raises what would otherwise cap the measurement rather than
// s1bridge: the console rate limit (default 10/s, burst 20) and the actions
// one process runs at once (at least the 64 callers of the slow console).
func actionsConfig(c *config.Config) {
	m := c.Consoles["main"]
	m.RateLimit.PerSecond, m.RateLimit.Burst = 100000, 100000
	c.Consoles["main"] = m
	c.Service.MaxInFlight = 256
}

const actionsConfigNote = "consoles.main.rate_limit raised to 100,000/s with burst 100,000 (the default, 10/s with burst 20, " +
	"would cap every run at 10 req/s); service.max_in_flight 256 (at least the 64 callers of the slow console)"

// bridgePath is s1bridge: a binary CloudEvent request on NATS, answered by
// the connector after its call to the emulator. Sequential calls use the
// environment's connection; concurrent caller i one of its own (callerConns).
func bridgePath(tb testing.TB, env *testenv.Env) path {
	subject := env.Connector.Subjects().Action("main", benchAction)
	call := func(nc *nats.Conn) func(context.Context) error {
		return func(ctx context.Context) error {
			r, err := connector.Call(ctx, nc, subject, benchAction, benchSource, []byte(benchRequest))
			if err != nil {
				return err
			}
			if r.Err != nil {
				return r.Err
			}
			return nil
		}
	}
	conns := callerConns(tb, env)
	return path{name: "s1bridge", call: call(env.NC), forCaller: func(i int) func(context.Context) error { return call(conns(i)) }}
}

// callerConns returns the NATS connection of concurrent caller i, made on
// first use and closed at cleanup. Each caller has its own, as each caller
// of the direct HTTP path has its own HTTP connection: 64 callers sharing one
// NATS connection would measure that connection's one reader and its one
// reply dispatcher, not s1bridge (BenchmarkActionsSlowConsole also prints
// that case).
func callerConns(tb testing.TB, env *testenv.Env) func(i int) *nats.Conn {
	var (
		mu    sync.Mutex
		conns = map[int]*nats.Conn{}
	)
	return func(i int) *nats.Conn {
		mu.Lock()
		defer mu.Unlock()
		if nc, ok := conns[i]; ok {
			return nc
		}
		nc := testenv.Conn(tb, env.Server)
		conns[i] = nc
		return nc
	}
}

// sharedConn is path p with every concurrent caller on the environment's one
// connection.
func sharedConn(p path) path {
	p.name += ", callers sharing one connection"
	p.forCaller = nil
	return p
}

// directPath is the same upstream call made directly with the SentinelOne
// client, configured as the connector configures its own.
func directPath(b *testing.B, env *testenv.Env) (path, *sentinelone.Client) {
	cc := env.Cfg.Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: env.EmuURL, Token: testenv.Token, Timeout: cc.Timeout,
		RetryMax: cc.Retry.Max, RetryWaitMin: cc.Retry.WaitMin, RetryWaitMax: cc.Retry.WaitMax,
		RatePerSecond: cc.RateLimit.PerSecond, RateBurst: cc.RateLimit.Burst,
		MaxConns: env.Cfg.Service.MaxInFlight, UserAgent: "s1bridge-bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	return path{name: "direct HTTP", call: func(ctx context.Context) error {
		_, err := client.ListAgents(ctx, sentinelone.AgentFilter{Limit: benchItems})
		return err
	}}, client
}

// requestMsg is the request connector.Call sends for the benchmark: a
// binary-mode CloudEvent with the same attributes.
func requestMsg(subject string) (*nats.Msg, error) {
	h, body, err := ce.Encode(ce.Event{
		SpecVersion: subjects.SpecVersion, ID: ce.NewID(), Source: benchSource,
		Type: subjects.RequestType(benchAction), Time: time.Now().UTC(), DataContentType: subjects.ContentTypeJSON,
		Extensions: map[string]string{subjects.ExtExpiryTime: time.Now().Add(callTimeout).UTC().Format(time.RFC3339Nano)},
		Data:       []byte(benchRequest),
	}, ce.ModeBinary)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Header: h, Data: body}, nil
}

// echoPath is raw NATS request-reply on the same server: a micro endpoint
// on a connection of its own answers every request with reply (its headers
// and data), asked with the request message s1bridge receives. With reply
// nil it answers with the request itself (the echo).
func echoPath(tb testing.TB, env *testenv.Env, name, subject string, reply *nats.Msg) path {
	svc, err := micro.AddService(testenv.Conn(tb, env.Server), micro.Config{
		Name: "bench_" + strings.ReplaceAll(subject, ".", "_"), Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: subject, Handler: micro.HandlerFunc(func(r micro.Request) {
			if reply == nil {
				_ = r.Respond(r.Data(), micro.WithHeaders(r.Headers()))
				return
			}
			_ = r.Respond(reply.Data, micro.WithHeaders(micro.Headers(reply.Header)))
		})},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = svc.Stop() })
	msg, err := requestMsg(subject)
	if err != nil {
		tb.Fatal(err)
	}
	want := msg.Data
	if reply != nil {
		want = reply.Data
	}
	call := func(nc *nats.Conn) func(context.Context) error {
		return func(ctx context.Context) error {
			// A nats.Msg is only read by RequestMsg, so callers share it.
			got, err := nc.RequestMsgWithContext(ctx, msg)
			if err != nil {
				return err
			}
			if len(got.Data) != len(want) {
				return fmt.Errorf("answered %d bytes, want %d", len(got.Data), len(want))
			}
			return nil
		}
	}
	conns := callerConns(tb, env)
	return path{name: name, call: call(env.NC), forCaller: func(i int) func(context.Context) error { return call(conns(i)) }}
}

// sizes describes the bytes each path moves, for the table.
type sizes struct{ requestHeader, requestData, replyHeader, replyData int }

func (s sizes) String() string {
	return fmt.Sprintf("request %d B of headers + %d B of data; reply %d B of headers + %d B of data",
		s.requestHeader, s.requestData, s.replyHeader, s.replyData)
}

// checkBridge makes one s1bridge call and checks it is the answer the
// benchmark claims to measure: a list of benchItems agents. It returns the
// sizes and the reply message.
func checkBridge(ctx context.Context, env *testenv.Env) (sizes, *nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	subject := env.Connector.Subjects().Action("main", benchAction)
	req, err := requestMsg(subject)
	if err != nil {
		return sizes{}, nil, err
	}
	msg, err := env.NC.RequestMsgWithContext(ctx, req)
	if err != nil {
		return sizes{}, nil, err
	}
	r, err := connector.ParseReply(msg)
	if err != nil {
		return sizes{}, nil, err
	}
	if r.Err != nil {
		return sizes{}, nil, r.Err
	}
	var list handlers.ListReply
	if err := json.Unmarshal(r.Event.Data, &list); err != nil {
		return sizes{}, nil, err
	}
	if len(list.Items) != benchItems {
		return sizes{}, nil, fmt.Errorf("%s %s answered %d items, want %d", benchAction, benchRequest, len(list.Items), benchItems)
	}
	return sizes{headerLen(req.Header), len(req.Data), headerLen(msg.Header), len(msg.Data)}, msg, nil
}

// checkDirect makes one direct call and checks it lists benchItems agents.
func checkDirect(ctx context.Context, client *sentinelone.Client) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p, err := client.ListAgents(ctx, sentinelone.AgentFilter{Limit: benchItems})
	if err != nil {
		return err
	}
	if len(p.Items) != benchItems {
		return fmt.Errorf("ListAgents(Limit %d) returned %d agents", benchItems, len(p.Items))
	}
	return nil
}

// headerLen is the size of h on the wire: "NATS/1.0\r\n", one
// "Key: value\r\n" per value, and the closing "\r\n".
func headerLen(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// BenchmarkActions measures agents.list {"limit":10} through s1bridge (a)
// against its parts measured in the same run: the same upstream call made
// directly with the SentinelOne client (b), and raw NATS request-reply of the
// same messages (c): a micro endpoint on the same server that answers
// s1bridge's request with a reply of s1bridge's reply's headers and data.
// Target: p50(a) ≤ 1.2 × (p50(b) + p50(c)). The echo of the request (c'),
// the raw baseline of earlier runs, is printed too. Each iteration is one
// whole measurement; run it with -benchtime 1x.
func BenchmarkActions(b *testing.B) {
	const rounds, perRound, warmCalls, loadFor = 8, 250, 200, 3 * time.Second
	env := testenv.Start(b, actionsConfig, emulator.WithRequestLog(0))
	ctx := b.Context()
	direct, client := directPath(b, env)
	sz, reply, err := checkBridge(ctx, env)
	if err != nil {
		b.Fatal(err)
	}
	if err := checkDirect(ctx, client); err != nil {
		b.Fatal(err)
	}
	paths := []path{
		bridgePath(b, env), direct,
		echoPath(b, env, "raw NATS, same messages", "bench.reply", reply),
		echoPath(b, env, "raw NATS echo", "bench.echo", nil),
	}
	if err := warm(ctx, paths, warmCalls); err != nil {
		b.Fatal(err)
	}
	seq := make([]stats, len(paths))
	thr := make([]stats, len(paths))
	var busy, mine float64
	for b.Loop() {
		oth := startOthers()
		lat, err := sequential(ctx, paths, rounds, perRound)
		if err != nil {
			b.Fatal(err)
		}
		for i, p := range paths {
			seq[i] = summarize(lat[i])
			if thr[i], err = load(ctx, p, throughputCallers, loadFor); err != nil {
				b.Fatal(err)
			}
		}
		busy, mine = oth.cpus(), oth.own()
	}
	a, d, c, e := 0, 1, 2, 3
	sumP50, sumP99 := seq[d].p50+seq[c].p50, seq[d].p99+seq[c].p99
	ratio := float64(seq[a].p50) / float64(sumP50)
	ratioEcho := float64(seq[a].p50) / float64(seq[d].p50+seq[e].p50)
	// Both baselines are CPU-bound under load and share the same CPUs, so
	// doing one of each costs 1/b + 1/c seconds of the machine: that
	// composition is the throughput s1bridge could reach with no overhead.
	composed := 1 / (1/thr[d].perSec + 1/thr[c].perSec)

	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkActions: %s %s, s1bridge against its parts\n\n", benchAction, benchRequest)
	fmt.Fprintf(&t, "- machine: %s; the NATS server, the emulator, the connector and the callers share this process and its CPUs\n", machine())
	fmt.Fprintf(&t, "- CPUs used during the measurement, on average: %.2f by this process, %.2f by other processes on the machine\n", mine, busy)
	fmt.Fprintf(&t, "- config: %s\n", actionsConfigNote)
	fmt.Fprintf(&t, "- latency: %s sequential calls per path (%d interleaved rounds of %d, after %d warm-up calls each); "+
		"throughput: %d concurrent callers for %s per path, each NATS caller on a connection of its own\n",
		fmtCount(rounds*perRound), rounds, perRound, warmCalls, throughputCallers, loadFor)
	fmt.Fprintf(&t, "- s1bridge's messages: %s; (c) sends the same request and answers with the same reply headers and data, "+
		"(c') answers with the request\n\n", sz)
	fmt.Fprintf(&t, "| path | p50 | p99 | req/s, %d callers | p50 under load |\n|---|---:|---:|---:|---:|\n", throughputCallers)
	for i, label := range []string{
		"(a) s1bridge: NATS request → connector → emulator → reply",
		"(b) direct HTTP: `sentinelone.Client.ListAgents(Limit 10)` → emulator",
		"(c) raw NATS request-reply, same messages: micro endpoint, same server",
		"(c') raw NATS echo of the request",
	} {
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s |\n", label, fmtDur(seq[i].p50), fmtDur(seq[i].p99), fmtCount(thr[i].perSec), fmtDur(thr[i].p50))
	}
	fmt.Fprintf(&t, "| (b) + (c); req/s: 1 / (1/b + 1/c) | %s | %s | %s | |\n", fmtDur(sumP50), fmtDur(sumP99), fmtCount(composed))
	fmt.Fprintf(&t, "| **a / (b + c)** (target p50 ≤ %.2f: %s) | **%.2f** | %.2f | %.2f | |\n",
		targetRatio, verdict(ratio <= targetRatio), ratio, float64(seq[a].p99)/float64(sumP99), thr[a].perSec/composed)
	fmt.Fprintf(&t, "| a / (b + c'), against the echo | %.2f | | | |\n", ratioEcho)
	fmt.Print(t.String())

	b.ReportMetric(float64(seq[a].p50)/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(seq[a].p99)/float64(time.Microsecond), "p99-µs")
	b.ReportMetric(thr[a].perSec, "req/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(ratioEcho, "ratio-echo")
}

// BenchmarkActionsSlowConsole measures agents.list through s1bridge when
// the console takes 50 ms to answer (an injected latency fault on /agents)
// and 64 callers wait on it at once: the ideal is 64 / 50 ms = 1280 req/s,
// reached only if s1bridge runs the calls concurrently and adds little.
// Target: at least 90% of the ideal. Each NATS caller has a connection of
// its own, as each direct HTTP caller does; the direct client under the
// same load, and s1bridge with the 64 callers sharing one connection, are
// printed beside it. Each iteration is one whole measurement; run it with
// -benchtime 1x.
func BenchmarkActionsSlowConsole(b *testing.B) {
	const loadFor = 4 * time.Second
	env := testenv.Start(b, actionsConfig, emulator.WithRequestLog(0))
	ctx := b.Context()
	if err := env.Emu.Inject(emulator.Fault{Path: emulator.PathAgents, Kind: emulator.FaultLatency, Latency: slowLatency}); err != nil {
		b.Fatal(err)
	}
	direct, client := directPath(b, env)
	bridge := bridgePath(b, env)
	paths := []path{bridge, direct, sharedConn(bridge)}
	if _, _, err := checkBridge(ctx, env); err != nil {
		b.Fatal(err)
	}
	if err := checkDirect(ctx, client); err != nil {
		b.Fatal(err)
	}
	// Open the 64 upstream connections and grow the goroutine stacks
	// before timing.
	for _, p := range paths {
		if _, err := load(ctx, p, slowCallers, 4*slowLatency); err != nil {
			b.Fatal(err)
		}
	}
	thr := make([]stats, len(paths))
	var busy, mine float64
	for b.Loop() {
		oth := startOthers()
		for i, p := range paths {
			var err error
			if thr[i], err = load(ctx, p, slowCallers, loadFor); err != nil {
				b.Fatal(err)
			}
		}
		busy, mine = oth.cpus(), oth.own()
	}
	ideal := slowCallers / slowLatency.Seconds()
	ofIdeal := thr[0].perSec / ideal

	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkActionsSlowConsole: %s %s with the console answering in %s, %d callers\n\n", benchAction, benchRequest, slowLatency, slowCallers)
	fmt.Fprintf(&t, "- machine: %s; everything shares this process\n", machine())
	fmt.Fprintf(&t, "- CPUs used during the measurement, on average: %.2f by this process, %.2f by other processes on the machine\n", mine, busy)
	fmt.Fprintf(&t, "- config: %s\n", actionsConfigNote)
	fmt.Fprintf(&t, "- emulator: `Fault{Path: %q, Kind: FaultLatency, Latency: %s}`; %d concurrent callers for %s per path; ideal %d / %s = %s req/s\n\n",
		emulator.PathAgents, slowLatency, slowCallers, loadFor, slowCallers, slowLatency, fmtCount(ideal))
	fmt.Fprintf(&t, "| path | p50 | p99 | req/s | of ideal |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&t, "| (a) s1bridge, a NATS connection per caller (target ≥ %.0f%%: %s) | %s | %s | **%s** | **%.1f%%** |\n",
		targetOfIdeal*100, verdict(ofIdeal >= targetOfIdeal), fmtDur(thr[0].p50), fmtDur(thr[0].p99), fmtCount(thr[0].perSec), ofIdeal*100)
	fmt.Fprintf(&t, "| (b) direct HTTP, a pooled connection per caller | %s | %s | %s | %.1f%% |\n", fmtDur(thr[1].p50), fmtDur(thr[1].p99), fmtCount(thr[1].perSec), thr[1].perSec/ideal*100)
	fmt.Fprintf(&t, "| (a') s1bridge, the 64 callers on one NATS connection | %s | %s | %s | %.1f%% |\n", fmtDur(thr[2].p50), fmtDur(thr[2].p99), fmtCount(thr[2].perSec), thr[2].perSec/ideal*100)
	fmt.Print(t.String())

	b.ReportMetric(thr[0].perSec, "req/s")
	b.ReportMetric(ofIdeal*100, "%-of-ideal")
	b.ReportMetric(float64(thr[0].p50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(thr[2].perSec/ideal*100, "%-of-ideal-one-conn")
}
