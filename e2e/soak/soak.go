package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/e2e/faults"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// options say how long and how hard to soak.
type options struct {
	Duration time.Duration // of the traffic; the checks come after
	Callers  int           // concurrent action callers
	Replicas int           // connectors sharing the console (leases)
	Restarts int           // nats-server restarts, spread over Duration
	Threats  int           // seeded threats; live mode adds more
	Live     time.Duration // live mode interval
	FaultsAt time.Duration // how often the injected faults change
	LeaseTTL time.Duration
	Seed     uint64
	// Profiles is the folder the heap profiles of the two memory looks
	// go to (memory.go); a new temporary folder when empty.
	Profiles string
	// Verbose logs the replicas' warnings to stderr.
	Verbose bool
}

// token is the API token of the soak's emulator.
const token = "soak-token-0c3e5d"

// summary is what the soak measured and found.
type summary struct {
	Elapsed      time.Duration // traffic
	Total        time.Duration // everything, checks included
	Replicas     int
	Callers      int
	Restarts     int
	FaultChanges int

	Requests     int
	ByCode       map[int]int
	Timeouts     int // no reply before the deadline
	NoResponders int // nothing subscribed (a connector not yet reconnected)
	OtherErrors  map[string]int
	Late         int // replies that came after their deadline
	LateWorst    string
	// TimeoutsCalm are the timeouts of requests that overlapped no
	// nats-server restart (nor the few seconds of reconnecting after one).
	TimeoutsCalm int
	CalmExamples []string // the first few of them

	Report           faults.Report
	MonitorsStarted  int
	MonitorsBad      []string // started monitors without exactly one outcome
	MaxRSS           string
	MaxGoroutines    int
	CatchUp          time.Duration // from the end of the traffic to a complete poll
	CatchUpErr       error
	MonitorsCanceled int
	// The memory at a fifth of the traffic and at its end (memory.go).
	MemEarly, MemLate memLook
}

// ok reports whether the stream is right: no duplicate, no gap, no
// mismatch, every monitor with exactly one outcome.
func (s *summary) ok() bool {
	return s.CatchUpErr == nil && s.Report.OK() && len(s.MonitorsBad) == 0
}

// soak is one run.
type soak struct {
	o        options
	dir      string
	port     int
	srv      *connector.Embedded
	emu      *emulator.Emulator
	cfg      *config.Config
	subj     subjects.Subjects
	replicas []*replica // the connectors, each a child process
	nc       *nats.Conn
	sum      *summary
	// stopEmu closes the emulator's HTTP server.
	stopEmu func()

	mu        sync.Mutex // guards sum's counters, monitors and outages
	monitors  map[string]bool
	outages   [][2]time.Time // nats-server restarts: down, up plus reconnectGrace
	lateWorst time.Duration
	// restarting is set while the nats-server is down.
	restarting bool
	faultState string // the faults injected now, for the report
	maxG       atomic.Int64
}

// run soaks s1bridge for o.Duration and checks the result. It returns an
// error when the system could not be set up; a wrong stream is in the
// summary (ok is false).
func run(ctx context.Context, o options) (*summary, error) {
	s := &soak{o: o, monitors: map[string]bool{},
		sum: &summary{ByCode: map[int]int{}, OtherErrors: map[string]int{}, Replicas: o.Replicas, Callers: o.Callers}}
	began := time.Now()
	dir, err := os.MkdirTemp("", "s1bridge-soak-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	defer os.RemoveAll(dir)
	if s.o.Profiles == "" {
		if s.o.Profiles, err = os.MkdirTemp("", "s1bridge-soak-profiles-"); err != nil {
			return nil, err
		}
	}
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	defer s.stop()

	// Traffic, live mode, faults and restarts until the duration is over.
	trafficStart := time.Now()
	tctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	threats := s.emu.IDs().Threats
	for i := range o.Callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.caller(tctx, rand.New(rand.NewPCG(o.Seed, uint64(i))), threats)
		}()
	}
	wg.Add(4)
	go func() { defer wg.Done(); s.earlySnapshot(tctx, trafficStart) }()
	go func() { defer wg.Done(); _ = s.emu.RunLive(tctx, o.Live) }()
	go func() { defer wg.Done(); s.faults(tctx, rand.New(rand.NewPCG(o.Seed, 0xfa))) }()
	go func() { defer wg.Done(); s.sample(tctx) }()
	restartErr := s.restarts(tctx)
	wg.Wait()
	s.lateSnapshot(trafficStart)
	s.emu.ClearFaults()
	s.sum.Elapsed = time.Since(trafficStart)
	if restartErr != nil {
		return s.sum, restartErr
	}

	// The console is quiet now: wait for ingestion to have it all, end the
	// monitors still running, and check the stream.
	quiet := time.Now()
	s.sum.CatchUpErr = s.waitCaughtUp(ctx, quiet, 3*time.Minute)
	s.sum.CatchUp = time.Since(quiet)
	s.cancelMonitors(ctx)
	if err := s.check(ctx); err != nil {
		return s.sum, err
	}
	s.sum.MaxGoroutines = int(s.maxG.Load())
	s.sum.MaxRSS = s.maxRSS()
	s.sum.Total = time.Since(began)
	return s.sum, nil
}

// start runs the nats-server, the emulator and the connectors.
func (s *soak) start() error {
	srv, err := connector.StartEmbedded("127.0.0.1:-1", s.dir, nil)
	if err != nil {
		return err
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
	s.emu, err = emulator.New(emulator.WithToken(token), emulator.WithSeed(int64(s.o.Seed)), emulator.WithRequestLog(0),
		emulator.WithSizes(emulator.Sizes{Sites: 2, GroupsPerSite: 2, Agents: 50, Threats: s.o.Threats, Alerts: 100, Activities: 100, Restrictions: 10}))
	if err != nil {
		return err
	}
	es, err := s.emu.Start("")
	if err != nil {
		return err
	}
	closeEmu := func() { _ = es.Close() }
	s.cfg = soakConfig(srv.ClientURL(), es.URL())
	if s.subj, err = subjects.New(s.cfg.Subjects.Prefix); err != nil {
		closeEmu()
		return err
	}
	for i := range s.o.Replicas {
		r, err := startReplica(replicaJob{
			Name: fmt.Sprintf("replica%d", i+1), NATSURL: srv.ClientURL(), EmuURL: es.URL(),
			LeaseTTL: s.o.LeaseTTL, Verbose: s.o.Verbose, Profiles: s.o.Profiles,
		})
		if err != nil {
			closeEmu()
			return err
		}
		s.replicas = append(s.replicas, r)
	}
	// The callers' connection: its write errors while the server restarts
	// would otherwise go to stderr.
	s.nc, err = nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		closeEmu()
		return err
	}
	s.stopEmu = closeEmu
	return s.waitServing(30 * time.Second)
}

// waitServing waits until every replica answers the micro PING, so that
// the traffic meets them all.
func (s *soak) waitServing(timeout time.Duration) error {
	subj, err := micro.ControlSubject(micro.PingVerb, subjects.ServiceName, "")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		inbox := s.nc.NewInbox()
		sub, err := s.nc.SubscribeSync(inbox)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		if err := s.nc.PublishRequest(subj, inbox, nil); err == nil {
			for {
				m, err := sub.NextMsg(200 * time.Millisecond)
				if err != nil {
					break
				}
				var p micro.Ping
				if json.Unmarshal(m.Data, &p) == nil {
					seen[p.ID] = true
				}
			}
		}
		_ = sub.Unsubscribe()
		if len(seen) >= len(s.replicas) {
			return nil
		}
		for _, r := range s.replicas {
			select {
			case <-r.done:
				return fmt.Errorf("replica %s exited: %v", r.job.Name, r.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d replicas serving after %s", len(seen), len(s.replicas), timeout)
		}
	}
}

// soakConfig is the connectors' configuration: console main at url, quick
// polls, retries and a timeout that keep a hanging console from holding a
// request for long.
func soakConfig(natsURL, url string) *config.Config {
	cfg := config.Default()
	cfg.NATS.URL = natsURL
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Service.ActionTimeout = 10 * time.Second
	m := config.DefaultConsole()
	m.URL = url
	m.APIToken = config.NewSecret(token)
	m.Timeout = 2 * time.Second
	m.Retry = config.Retry{Max: 3, WaitMin: 50 * time.Millisecond, WaitMax: time.Second}
	m.RateLimit = config.RateLimit{PerSecond: 500, Burst: 500}
	m.Ingest.Interval = time.Second
	m.Ingest.FirstFetch = 20 * 365 * 24 * time.Hour
	m.Ingest.PageSize = 500
	m.Monitor.PollInterval = time.Second
	cfg.Consoles = map[string]config.Console{"main": m}
	return cfg
}

// stop stops everything start started.
func (s *soak) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range s.replicas {
		_ = r.stop(time.Until(deadlineOf(ctx)))
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.stopEmu != nil {
		s.stopEmu()
	}
	if s.srv != nil {
		s.srv.Close()
	}
}

// request is one kind of action request.
type request struct {
	action string
	data   func(rnd *rand.Rand, threats []string) string
}

var requests = []request{
	{"agents.list", func(*rand.Rand, []string) string { return `{"limit":20}` }},
	{"threats.list", func(*rand.Rand, []string) string {
		return `{"limit":50,"incidentStatuses":["unresolved","in_progress"]}`
	}},
	{"groups.list", func(*rand.Rand, []string) string { return `{}` }},
	{"sites.list", func(*rand.Rand, []string) string { return `{}` }},
	{"alerts.list", func(*rand.Rand, []string) string { return `{"limit":20}` }},
	{"activities.list", func(*rand.Rand, []string) string { return `{"limit":20}` }},
	{"blocklist.list", func(*rand.Rand, []string) string { return `{}` }},
	{"hash.reputation", func(*rand.Rand, []string) string { return `{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}` }},
	{"threats.update", func(rnd *rand.Rand, threats []string) string {
		return fmt.Sprintf(`{"threatIds":[%q],"incidentStatus":%q,"analystVerdict":%q}`, threats[rnd.IntN(len(threats))],
			[]string{"unresolved", "in_progress", "resolved"}[rnd.IntN(3)], []string{"true_positive", "false_positive", "suspicious"}[rnd.IntN(3)])
	}},
	{"threats.monitor", func(rnd *rand.Rand, threats []string) string {
		return fmt.Sprintf(`{"threatId":%q,"timeout":"%ds","pollInterval":"1s"}`, threats[rnd.IntN(len(threats))], 3+rnd.IntN(20))
	}},
	{"monitors.list", func(*rand.Rand, []string) string { return `{"limit":50}` }},
	{"ingest.status", func(*rand.Rand, []string) string { return `{}` }},
}

// caller sends requests one after another, each with a deadline of 1–5 s,
// until ctx ends.
func (s *soak) caller(ctx context.Context, rnd *rand.Rand, threats []string) {
	for ctx.Err() == nil {
		rq := requests[rnd.IntN(len(requests))]
		timeout := time.Second + time.Duration(rnd.IntN(4000))*time.Millisecond
		start := time.Now()
		deadline := start.Add(timeout)
		cctx, cancel := context.WithDeadline(context.Background(), deadline)
		r, err := connector.Call(cctx, s.nc, s.subj.Action("main", rq.action), rq.action, "/soak", []byte(rq.data(rnd, threats)))
		cancel()
		s.mu.Lock()
		s.sum.Requests++
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
			s.sum.Timeouts++
			if !s.duringOutage(start, deadline) {
				s.sum.TimeoutsCalm++
				if len(s.sum.CalmExamples) < 5 {
					s.sum.CalmExamples = append(s.sum.CalmExamples, fmt.Sprintf("%s with a %s deadline at %s (faults: %s)",
						rq.action, timeout.Round(time.Millisecond), start.Format("15:04:05.000"), s.faultState))
				}
			}
		case errors.Is(err, connector.ErrNoResponders):
			s.sum.NoResponders++
		case err != nil:
			s.sum.OtherErrors[err.Error()]++
		case r.Err != nil:
			s.sum.ByCode[r.Err.Code]++
		default:
			s.sum.ByCode[200]++
			if rq.action == "threats.monitor" {
				var m handlers.MonitorReply
				if json.Unmarshal(r.Event.Data, &m) == nil && m.MonitorID != "" {
					s.monitors[m.MonitorID] = true
				}
			}
		}
		if late := time.Since(deadline); err == nil && late > 0 {
			s.sum.Late++
			code := 200
			if r.Err != nil {
				code = r.Err.Code
			}
			if s.sum.LateWorst == "" || late > s.lateWorst {
				s.lateWorst = late
				s.sum.LateWorst = fmt.Sprintf("%s late: %s %d after %s", late.Round(time.Millisecond), rq.action, code, timeout.Round(time.Millisecond))
			}
		}
		s.mu.Unlock()
		if err != nil {
			// "No responders" comes back at once; do not spin on it.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// faultPaths are where the soak injects faults ("" is every path).
var faultPaths = []string{"", emulator.PathThreats, emulator.PathAgents, emulator.PathGroups, emulator.PathSites,
	emulator.PathHashes, emulator.PathRestrictions, emulator.PathAlerts, emulator.PathActivities}

// randomFault is one fault of any kind on a random path, firing on 5–40 %
// of its requests.
func randomFault(rnd *rand.Rand) emulator.Fault {
	f := emulator.Fault{Path: faultPaths[rnd.IntN(len(faultPaths))], Rate: 0.05 + 0.35*rnd.Float64()}
	switch rnd.IntN(9) {
	case 0:
		f.Kind, f.Latency = emulator.FaultLatency, time.Duration(100+rnd.IntN(3000))*time.Millisecond
	case 1:
		f.Kind = emulator.FaultRateLimit
	case 2:
		f.Kind, f.RetryAfter, f.HTML = emulator.FaultRateLimit, "1", rnd.IntN(2) == 0
	case 3:
		f.Kind, f.Status, f.HTML = emulator.FaultServerError, []int{500, 502, 503}[rnd.IntN(3)], rnd.IntN(2) == 0
	case 4:
		f.Kind = emulator.FaultMalformed
	case 5:
		f.Kind = emulator.FaultTruncated
	case 6:
		f.Kind = emulator.FaultReset
	case 7:
		f.Kind = emulator.FaultHang
	default:
		f.Kind, f.Status, f.Count = emulator.FaultServerError, 503, 1+rnd.IntN(20) // a short burst
	}
	return f
}

// faults changes the injected faults every o.FaultsAt until ctx ends: a
// third of the time none, else one to three random ones.
func (s *soak) faults(ctx context.Context, rnd *rand.Rand) {
	t := time.NewTicker(s.o.FaultsAt)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.emu.ClearFaults()
		var state []string
		if rnd.IntN(3) > 0 {
			for range 1 + rnd.IntN(3) {
				f := randomFault(rnd)
				_ = s.emu.Inject(f)
				state = append(state, fmt.Sprintf("%s on %q at %.0f%%", f.Kind, f.Path, 100*f.Rate))
			}
		}
		s.mu.Lock()
		s.sum.FaultChanges++
		s.faultState = strings.Join(state, ", ")
		s.mu.Unlock()
	}
}

// restarts stops the nats-server o.Restarts times, evenly spread over the
// traffic, for a second each, and starts it again on the same port and
// store.
func (s *soak) restarts(ctx context.Context) error {
	every := s.o.Duration / time.Duration(s.o.Restarts+1)
	for range s.o.Restarts {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		down := time.Now()
		s.mu.Lock()
		s.restarting = true
		s.mu.Unlock()
		s.srv.Close()
		time.Sleep(time.Second)
		srv, err := connector.StartEmbedded(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), s.dir, nil)
		if err != nil {
			return fmt.Errorf("restart nats-server: %w", err)
		}
		s.mu.Lock()
		s.srv, s.restarting = srv, false
		s.sum.Restarts++
		s.outages = append(s.outages, [2]time.Time{down, time.Now().Add(reconnectGrace)})
		s.mu.Unlock()
	}
	<-ctx.Done()
	return nil
}

// reconnectGrace is how long after a nats-server restart the connectors
// may take to reconnect (their reconnect delay grows to 6.4 s).
const reconnectGrace = 8 * time.Second

// duringOutage reports whether [from, to] overlaps a nats-server restart;
// the caller holds mu.
func (s *soak) duringOutage(from, to time.Time) bool {
	for _, o := range s.outages {
		if from.Before(o[1]) && to.After(o[0]) {
			return true
		}
	}
	// A restart in progress is not in outages yet.
	return s.restarting
}

// sample records the largest number of goroutines until ctx ends.
func (s *soak) sample(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if n := int64(runtime.NumGoroutine()); n > s.maxG.Load() {
			s.maxG.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// call sends one request with a 10 s deadline.
func (s *soak) call(ctx context.Context, action, data string) (*connector.Reply, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := connector.Call(cctx, s.nc, s.subj.Action("main", action), action, "/soak", []byte(data))
	if err == nil && r.Err != nil {
		err = r.Err
	}
	return r, err
}

// waitCaughtUp waits until a poll that began after quiet has completed, of
// the threats and of the Unified Alerts: then the stream holds everything
// the console had.
func (s *soak) waitCaughtUp(ctx context.Context, quiet time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := s.call(ctx, "ingest.status", `{}`)
		if err == nil {
			var st handlers.IngestStatusReply
			after := func(p *handlers.IngestProgress) bool {
				return p.LagSeconds != nil && time.Now().Add(-time.Duration(*p.LagSeconds*float64(time.Second))).After(quiet)
			}
			if err := json.Unmarshal(r.Event.Data, &st); err == nil && after(&st.IngestProgress) && (st.Alerts == nil || after(st.Alerts)) {
				return nil
			}
			last = string(r.Event.Data)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("ingestion did not complete a poll within %s of the end of the traffic (last ingest.status: %s)", timeout, last)
}

// cancelMonitors cancels every monitor still running, so that each started
// monitor has its outcome in the stream.
func (s *soak) cancelMonitors(ctx context.Context) {
	r, err := s.call(ctx, "monitors.list", `{"all":true,"limit":1000}`)
	if err != nil {
		return
	}
	var l struct {
		Items []handlers.MonitorItem `json:"items"`
	}
	if json.Unmarshal(r.Event.Data, &l) != nil {
		return
	}
	for _, m := range l.Items {
		// 404: it ended meanwhile, which is as good.
		if _, err := s.call(ctx, "monitors.cancel", `{"monitorId":"`+m.MonitorID+`"}`); err == nil {
			s.sum.MonitorsCanceled++
		}
	}
}

// check reads the stream and compares it with the emulator; it waits (a
// little) for every started monitor's outcome.
func (s *soak) check(ctx context.Context) error {
	s.mu.Lock()
	started := make([]string, 0, len(s.monitors))
	for id := range s.monitors {
		started = append(started, id)
	}
	s.mu.Unlock()
	s.sum.MonitorsStarted = len(started)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		evs, err := faults.ReadEvents(rctx, s.nc, s.cfg.EventsStreamName())
		cancel()
		if err != nil {
			return err
		}
		outcomes := map[string]int{}
		for _, e := range evs {
			// Monitor event ids are <console>/monitor/<mid>/<outcome>.
			if p := strings.Split(e.ID, "/"); len(p) == 4 && p[1] == "monitor" {
				outcomes[p[2]]++
			}
		}
		var bad []string
		for _, id := range started {
			if outcomes[id] != 1 {
				bad = append(bad, fmt.Sprintf("%s: %d outcomes", id, outcomes[id]))
			}
		}
		for id, n := range outcomes {
			if n > 1 && !s.monitors[id] {
				bad = append(bad, fmt.Sprintf("%s (not started by a reply the soak saw): %d outcomes", id, n))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			s.sum.Report = faults.Verify(evs, s.emu)
			s.sum.MonitorsBad = bad
			return nil
		}
		time.Sleep(time.Second)
	}
}

// maxRSS is the peak resident set size of the soak's own process (the
// harness) and of each replica, from /proc (Linux).
func (s *soak) maxRSS() string {
	out := "n/a"
	if n, err := procStatus("VmHWM"); err == nil {
		out = fmt.Sprintf("harness %.0f MiB", mib(n))
	}
	for _, r := range s.replicas {
		if n, err := procStatusOf(r.cmd.Process.Pid, "VmHWM"); err == nil {
			out += fmt.Sprintf(", %s %.0f MiB", r.job.Name, mib(n))
		}
	}
	return out
}

// deadlineOf is ctx's deadline, or a minute from now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Minute)
}

// print writes the summary table.
func (s *summary) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("duration", fmt.Sprintf("%s of traffic, %s in all (checks included)", s.Elapsed.Round(time.Second), s.Total.Round(time.Second)))
	row("connectors", fmt.Sprintf("%d replicas, %d callers", s.Replicas, s.Callers))
	row("disturbances", fmt.Sprintf("%d nats-server restarts, %d fault changes", s.Restarts, s.FaultChanges))
	row("requests", strconv.Itoa(s.Requests))
	codes := make([]int, 0, len(s.ByCode))
	for c := range s.ByCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		row(fmt.Sprintf("  replies %d", c), strconv.Itoa(s.ByCode[c]))
	}
	row("  timeouts", fmt.Sprintf("%d (no reply before the deadline), %d of them away from nats-server restarts", s.Timeouts, s.TimeoutsCalm))
	row("  no responders", fmt.Sprintf("%d (while a connector reconnected)", s.NoResponders))
	for e, n := range s.OtherErrors {
		row("  other failures", fmt.Sprintf("%d: %s", n, e))
	}
	late := strconv.Itoa(s.Late)
	if s.LateWorst != "" {
		late += " (worst " + s.LateWorst + ")"
	}
	row("  late replies", late)
	r := s.Report
	row("events in the stream", fmt.Sprintf("%d (%d created, %d monitor outcomes) for %d threats and %d alerts", r.Events, r.Created, r.Monitors, r.Threats, r.Alerts))
	row("duplicate ids", strconv.Itoa(len(r.Duplicates)))
	row("gaps", fmt.Sprintf("%d threats or alerts without their created event, %d status mismatches, %d unknown threats or alerts",
		len(r.Missing), len(r.Mismatched), len(r.Unknown)))
	row("monitors", fmt.Sprintf("%d started, %d cancelled at the end, %d without exactly one outcome", s.MonitorsStarted, s.MonitorsCanceled, len(s.MonitorsBad)))
	catchUp := s.CatchUp.Round(time.Millisecond).String()
	if s.CatchUpErr != nil {
		catchUp = s.CatchUpErr.Error()
	}
	row("ingestion caught up", catchUp+" after the traffic")
	row("max RSS", s.MaxRSS+" (harness: this process, with NATS, the emulator and the callers; each replica a process of its own)")
	row("max goroutines", strconv.Itoa(s.MaxGoroutines)+" (harness)")
	for i, r := range s.MemEarly.Replicas {
		late := replicaMem{}
		if i < len(s.MemLate.Replicas) {
			late = s.MemLate.Replicas[i]
		}
		row("memory, "+r.Name, fmt.Sprintf("RSS %.1f MiB at %s (%.1f MiB retained), %.1f MiB at %s (%.1f MiB retained); heap profiles %s, %s",
			mib(r.RSS), s.MemEarly.Harness.At.Round(time.Second), mib(r.Retained), mib(late.RSS), s.MemLate.Harness.At.Round(time.Second), mib(late.Retained), r.Profile, late.Profile))
	}
	row("memory, harness, early", s.MemEarly.Harness.String())
	row("memory, harness, late", s.MemLate.Harness.String())
	if g, kept, h, ok := s.growth(); ok {
		var parts, keptParts []string
		for i, v := range g {
			parts = append(parts, fmt.Sprintf("%s %+.1f%%", s.MemEarly.Replicas[i].Name, 100*v))
			keptParts = append(keptParts, fmt.Sprintf("%s %+.1f%%", s.MemEarly.Replicas[i].Name, 100*kept[i]))
		}
		row("RSS growth", fmt.Sprintf("%s (harness %+.1f%%), from the early look to the late one (go tool pprof -diff_base <early> <late>)", strings.Join(parts, ", "), 100*h))
		row("retained RSS growth", strings.Join(keptParts, ", ")+" (each replica's RSS once it has collected and returned its free memory)")
	}
	for _, err := range s.lookErrors() {
		row("memory look failed", err.Error())
	}
	result := "PASS"
	if !s.ok() {
		result = "FAIL"
	}
	row("result", result)
	_ = tw.Flush()
	for _, c := range s.CalmExamples {
		fmt.Fprintln(w, "timeout away from restarts:", c)
	}
	for _, b := range s.MonitorsBad[:min(len(s.MonitorsBad), 5)] {
		fmt.Fprintln(w, "monitor:", b)
	}
	if !r.OK() {
		fmt.Fprintln(w, r.String())
	}
}
