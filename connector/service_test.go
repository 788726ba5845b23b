package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/s1bridge/s1bridge/subjects"
)

// Test-only actions, registered beside the real ones with WithActions.
type sleepRequest struct {
	Millis int `json:"millis"`
}

type sleepReply struct {
	Slept int `json:"slept"`
}

var (
	sleepAction = handlers.Define("test.sleep", "Sleep", "sleeps", false,
		func(ctx context.Context, _ *handlers.Env, r *sleepRequest) (*sleepReply, error) {
			select {
			case <-time.After(time.Duration(r.Millis) * time.Millisecond):
				return &sleepReply{Slept: r.Millis}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	panicAction = handlers.Define("test.panic", "Panic", "panics", false,
		func(context.Context, *handlers.Env, *struct{}) (*struct{}, error) {
			panic("handler bug")
		})
)

func withTestActions() []connector.Option {
	return []connector.Option{connector.WithActions(append(handlers.All(), sleepAction, panicAction))}
}

// startWith runs NATS, an emulator and a connector with extra options.
func startWith(t *testing.T, edit func(*config.Config), opts ...connector.Option) *testenv.Env {
	t.Helper()
	env := &testenv.Env{}
	env.Server = testenv.NATSServer(t)
	env.Emu, env.EmuURL = testenv.Emulator(t)
	env.Cfg = testenv.Config(env.Server.ClientURL(), env.EmuURL)
	if edit != nil {
		edit(env.Cfg)
	}
	env.Connector = testenv.Connector(t, env.Cfg, opts...)
	env.NC = testenv.Conn(t, env.Server)
	return env
}

func TestDiscovery(t *testing.T) {
	env := startWith(t, func(c *config.Config) {
		eu := c.Consoles["main"]
		c.Consoles["eu"] = eu
	})
	msg, err := env.NC.Request("$SRV.INFO.s1bridge", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != subjects.ServiceName || info.Type != micro.InfoResponseType || info.ID == "" || info.Version == "" {
		t.Fatalf("info identity: %+v", info.ServiceIdentity)
	}
	actions := handlers.All()
	if len(info.Endpoints) != 2*len(actions) {
		t.Fatalf("%d endpoints, want %d", len(info.Endpoints), 2*len(actions))
	}
	byName := map[string]micro.EndpointInfo{}
	for _, e := range info.Endpoints {
		byName[e.Name] = e
	}
	for _, console := range []string{"main", "eu"} {
		for _, a := range actions {
			e, ok := byName[subjects.EndpointName(console, a.Name)]
			if !ok {
				t.Fatalf("no endpoint for %s %s", console, a.Name)
			}
			want := map[string]string{
				"console": console, "action": a.Name, "request_type": subjects.RequestType(a.Name),
				"response_type": subjects.ResponseType(a.Name), "mutating": map[bool]string{true: "true", false: "false"}[a.Mutating],
			}
			for k, v := range want {
				if e.Metadata[k] != v {
					t.Errorf("%s metadata %s=%q, want %q", e.Name, k, e.Metadata[k], v)
				}
			}
			if e.Subject != "s1."+console+".action."+a.Name || e.QueueGroup != "s1bridge" || e.Metadata["description"] == "" {
				t.Errorf("%s: subject %q queue %q", e.Name, e.Subject, e.QueueGroup)
			}
		}
	}
	for _, subj := range []string{"$SRV.PING", "$SRV.PING.s1bridge", "$SRV.PING.s1bridge." + info.ID} {
		if _, err := env.NC.Request(subj, nil, 5*time.Second); err != nil {
			t.Errorf("%s: %v", subj, err)
		}
	}
}

func TestStatsAreTruthful(t *testing.T) {
	env := startWith(t, nil, withTestActions()...)
	for range 3 {
		if r := env.Call(t, "test.sleep", `{"millis":60}`); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for range 2 {
		if r := env.Call(t, "test.sleep", `{"millis":"x"}`); r.Err == nil || r.Err.Code != 400 {
			t.Fatalf("want 400, got %+v", r.Err)
		}
	}
	msg, err := env.NC.Request("$SRV.STATS.s1bridge", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	for _, e := range stats.Endpoints {
		if e.Name != "main_test_sleep" {
			continue
		}
		if e.NumRequests != 5 || e.NumErrors != 2 || !strings.HasPrefix(e.LastError, "400 ") {
			t.Errorf("requests %d errors %d last %q; want 5, 2, a 400", e.NumRequests, e.NumErrors, e.LastError)
		}
		// Three calls slept 60ms each: the processing time is counted until
		// the reply, not until the hand-off to a worker.
		if e.ProcessingTime < 180*time.Millisecond {
			t.Errorf("processing time %s, want at least 180ms", e.ProcessingTime)
		}
		return
	}
	t.Fatal("no stats for main_test_sleep")
}

func TestConcurrentDispatchIsBounded(t *testing.T) {
	const inflight = 8
	env := startWith(t, func(c *config.Config) { c.Service.MaxInFlight = inflight }, withTestActions()...)
	run := func(n int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if r := env.Call(t, "test.sleep", `{"millis":300}`); r.Err != nil {
					t.Error(r.Err)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	// One endpoint, eight requests at once: they run together.
	if d := run(inflight); d > 900*time.Millisecond {
		t.Errorf("%d concurrent 300ms requests took %s: not dispatched concurrently", inflight, d)
	}
	// Twice as many: the bound makes them take two rounds.
	if d := run(2 * inflight); d < 590*time.Millisecond {
		t.Errorf("%d requests with max_in_flight %d took %s: the bound was not applied", 2*inflight, inflight, d)
	}
}

func TestPanicBecomes500(t *testing.T) {
	env := startWith(t, nil, withTestActions()...)
	r := env.Call(t, "test.panic", `{}`)
	if r.Err == nil || r.Err.Code != handlers.CodeInternal {
		t.Fatalf("want 500, got %+v", r.Err)
	}
	if strings.Contains(r.Err.Message, "handler bug") {
		t.Errorf("the panic value leaked to the caller: %q", r.Err.Message)
	}
	if r := env.Call(t, "agents.list", `{"limit":1}`); r.Err != nil {
		t.Fatalf("the process stopped serving after a panic: %v", r.Err)
	}
}

func TestDeniedActionNeverCallsUpstream(t *testing.T) {
	env := startWith(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.Actions.Deny = []string{"agents.disconnect"}
		c.Consoles["main"] = m
	})
	env.Emu.ResetRequests()
	r := env.Call(t, "agents.disconnect", `{"agentIds":["1559342436290084702"]}`)
	if r.Err == nil || r.Err.Code != handlers.CodeDenied || !strings.Contains(r.Err.Message, "deny") {
		t.Fatalf("want 403 naming the deny list, got %+v", r.Err)
	}
	if n := len(env.Emu.Requests()); n != 0 {
		t.Errorf("a denied action made %d upstream calls", n)
	}
}

func TestTypeNamingAnotherActionIsRefused(t *testing.T) {
	env := startWith(t, nil)
	req := newRequest("agents.disconnect", `{"agentIds":["1559342436290084702"]}`)
	reply := roundTrip(t, env.NC, env.Connector.Subjects().Action("main", "agents.list"), req, ce.ModeBinary)
	checkError(t, reply, handlers.CodeInvalid, "agents.disconnect")
	// A type outside the s1bridge namespace is accepted (DESIGN.md §8).
	req = newRequest("agents.list", `{"limit":1}`)
	req.Type = "com.example.soar.lookup"
	checkOK(t, "agents.list", req, roundTrip(t, env.NC, env.Connector.Subjects().Action("main", "agents.list"), req, ce.ModeBinary), ce.ModeBinary)
}

func TestDryRunCallsNothing(t *testing.T) {
	env := startWith(t, func(c *config.Config) { c.Service.DryRun = true })
	env.Emu.ResetRequests()
	r := env.Call(t, "agents.disconnect", `{"agentIds":["1559342436290084702"]}`)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	var d handlers.DryRunReply
	if err := json.Unmarshal(r.Event.Data, &d); err != nil || !d.DryRun || d.Action != "agents.disconnect" {
		t.Fatalf("dry-run reply %s (%v)", r.Event.Data, err)
	}
	if n := len(env.Emu.Requests()); n != 0 {
		t.Errorf("dry run made %d upstream calls", n)
	}
	// Every mutating action of the conformance suite: validated, echoed
	// with its secrets redacted, audited as a dry run, nothing called.
	for _, tc := range conformanceCases() {
		if a, _ := handlers.Lookup(tc.action); !a.Mutating {
			continue
		}
		req := newRequest(tc.action, tc.data(t, env))
		r := roundTrip(t, env.NC, env.Connector.Subjects().Action("main", tc.action), req, ce.ModeBinary)
		checkOK(t, tc.action, req, r, ce.ModeBinary)
		var d handlers.DryRunReply
		if err := json.Unmarshal(r.Event.Data, &d); err != nil || !d.DryRun || d.Action != tc.action || d.Request == nil {
			t.Errorf("%s: dry-run reply %s (%v)", tc.action, r.Event.Data, err)
		}
		if strings.Contains(string(r.Event.Data), fetchPassword) {
			t.Errorf("%s: the dry-run reply shows the password: %s", tc.action, r.Event.Data)
		}
		hash := subjects.RequestHash("main", req.Source, req.ID)
		recs := byID(t, readAudit(t, env.NC, env.Cfg))
		for _, phase := range []string{subjects.PhaseRequested, subjects.PhaseCompleted} {
			m, ok := recs[subjects.AuditID("main", subjects.AuditKeyTagged(hash, subjects.AuditTagDryRun), phase)]
			if !ok || !m.Rec.DryRun {
				t.Errorf("%s: no dry-run %s record (%+v)", tc.action, phase, m.Rec)
			}
		}
	}
	if n := len(env.Emu.Requests()); n != 0 {
		t.Errorf("dry run made %d upstream calls", n)
	}
	// Invalid requests are still refused in dry run.
	if r := env.Call(t, "agents.disconnect", `{"agentIds":[]}`); r.Err == nil || r.Err.Code != 400 {
		t.Errorf("dry run accepted an invalid request: %+v", r.Err)
	}
	// Reads still work.
	if r := env.Call(t, "agents.list", `{"limit":1}`); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestQueueGroupSpreadsRequests(t *testing.T) {
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	cfg := testenv.Config(srv.ClientURL(), url)
	a := testenv.Connector(t, cfg)
	_ = testenv.Connector(t, cfg)
	nc := testenv.Conn(t, srv)
	for range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := connector.Call(ctx, nc, a.Subjects().Action("main", "sites.list"), "sites.list", "/test", nil)
		cancel()
		if err != nil || r.Err != nil {
			t.Fatal(err, r)
		}
	}
	// Each replica answers STATS; both must have served some requests.
	sub, _ := nc.SubscribeSync(nats.NewInbox())
	_ = nc.PublishRequest("$SRV.STATS.s1bridge", sub.Subject, nil)
	for range 2 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal("want a STATS answer from each replica:", err)
		}
		var st micro.Stats
		_ = json.Unmarshal(m.Data, &st)
		n := 0
		for _, e := range st.Endpoints {
			if e.Name == "main_sites_list" {
				n = e.NumRequests
			}
		}
		if n == 0 || n == 40 {
			t.Errorf("replica %s served %d of 40 requests", st.ID, n)
		}
	}
}

// startUnmanaged starts a connector with the test actions that the test
// itself stops (no cleanup does), and a client connection to its server.
func startUnmanaged(t *testing.T) (*connector.Connector, *nats.Conn) {
	t.Helper()
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	cfg := testenv.Config(srv.ClientURL(), url)
	c, err := connector.New(cfg, testenv.Logger(t), withTestActions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, testenv.Conn(t, srv)
}

func TestGracefulStopFinishesInFlight(t *testing.T) {
	c, nc := startUnmanaged(t)
	done := make(chan *connector.Reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := connector.Call(ctx, nc, c.Subjects().Action("main", "test.sleep"), "test.sleep", "/test", []byte(`{"millis":500}`))
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(150 * time.Millisecond) // the request is in flight
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- c.Stop(ctx)
	}()
	r := <-done
	if r == nil || r.Err != nil {
		t.Fatalf("the request in flight did not get its reply: %+v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Stopped: nobody serves the subject any more.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := connector.Call(ctx, nc, c.Subjects().Action("main", "agents.list"), "agents.list", "/test", nil)
	if !errors.Is(err, connector.ErrNoResponders) {
		t.Errorf("after stop: %v, want no responders", err)
	}
}

func TestDrainTimeoutCancelsWith503(t *testing.T) {
	c, nc := startUnmanaged(t)
	done := make(chan *connector.Reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, _ := connector.Call(ctx, nc, c.Subjects().Action("main", "test.sleep"), "test.sleep", "/test", []byte(`{"millis":5000}`))
		done <- r
	}()
	time.Sleep(150 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Stop(ctx); err == nil {
		t.Error("stop reported no timeout while a request was still running")
	}
	r := <-done
	if r == nil || r.Err == nil || r.Err.Code != handlers.CodeUnavailable || !r.Err.Retryable {
		t.Fatalf("the cancelled request should get a retryable 503, got %+v", r)
	}
}

func TestTraceContextReachesSentinelOne(t *testing.T) {
	env := startWith(t, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	env.Emu.ResetRequests()
	req := newRequest("agents.list", `{"limit":1}`)
	req.Extensions[subjects.ExtTraceParent] = tp
	req.Extensions[subjects.ExtTraceState] = "vendor=soar"
	reply := roundTrip(t, env.NC, env.Connector.Subjects().Action("main", "agents.list"), req, ce.ModeBinary)
	checkOK(t, "agents.list", req, reply, ce.ModeBinary)
	if got := reply.Event.TraceParent(); got != tp {
		t.Errorf("reply traceparent %q, want %q", got, tp)
	}
	reqs := env.Emu.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	if got := reqs[0].Header.Get("Traceparent"); got != tp {
		t.Errorf("upstream traceparent %q, want %q", got, tp)
	}
	if got := reqs[0].Header.Get("Tracestate"); got != "vendor=soar" {
		t.Errorf("upstream tracestate %q", got)
	}
}

// TestTokenNeverLogged runs debug-level logging without the redacting
// handler (so the code itself must not log the token) through a succeeding
// call, a SentinelOne 401 and a 500, and greps the logs and replies.
func TestTokenNeverLogged(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t)
	cfg := testenv.Config(srv.ClientURL(), url)
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := connector.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	nc := testenv.Conn(t, srv)
	call := func(action, data string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := connector.Call(ctx, nc, c.Subjects().Action("main", action), action, "/test", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Event.Data) + fmt.Sprint(r.Err)
	}
	replies := call("agents.list", `{"limit":1}`)
	for _, status := range []int{401, 500} {
		emu.ClearFaults()
		if err := emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: status, Path: "/agents"}); err != nil {
			t.Fatal(err)
		}
		replies += call("agents.list", `{"limit":1}`)
	}
	emu.ClearFaults()
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "/agents") {
		t.Fatalf("debug logs did not capture the upstream calls:\n%s", out)
	}
	for what, s := range map[string]string{"logs": out, "replies": replies} {
		if strings.Contains(s, testenv.Token) {
			t.Errorf("the API token appears in the %s", what)
		}
	}
}

// TestDenyRuntimeActions denies the actions the runtime serves (monitors,
// ingestion status) as `s1bridge run` loads the configuration, checked
// against the action table: the configuration is accepted, and each action
// is answered 403 without a call to SentinelOne.
func TestDenyRuntimeActions(t *testing.T) {
	denied := []string{handlers.ActionThreatsMonitor, handlers.ActionMonitorsList, handlers.ActionMonitorsCancel, handlers.ActionIngestStatus}
	srv := testenv.NATSServer(t)
	emu, emuURL := testenv.Emulator(t)
	base := testenv.Config(srv.ClientURL(), emuURL)
	m := base.Consoles["main"]
	m.Actions.Deny = denied
	base.Consoles["main"] = m
	cfg, err := config.LoadWith(config.Options{Base: base, Environ: []string{}, Actions: handlers.Names()})
	if err != nil {
		t.Fatalf("consoles.main.actions.deny %v refused: %v", denied, err)
	}
	env := &testenv.Env{Server: srv, Emu: emu, EmuURL: emuURL, Cfg: cfg, Connector: testenv.Connector(t, cfg), NC: testenv.Conn(t, srv)}
	emu.ResetRequests()
	for _, action := range denied {
		r := env.Call(t, action, `{"threatId":"1559342436290084702","monitorId":"abc"}`)
		if r.Err == nil || r.Err.Code != handlers.CodeDenied || !strings.Contains(r.Err.Message, "consoles.main.actions.deny") {
			t.Errorf("%s: want 403 naming consoles.main.actions.deny, got %+v", action, r.Err)
		}
	}
	if n := len(emu.Requests()); n != 0 {
		t.Errorf("denied actions made %d upstream calls", n)
	}
}
