package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The ingestion benchmark's size, targets and limits.
const (
	backlog          = 100000                // threats seeded, created events expected
	alertBacklog     = 50000                 // Unified Alerts seeded for the alert run
	targetIngestRate = 0.60                  // s1bridge objects/s at least 60% of the raw JetStream publish rate
	targetRSS        = 80 << 20              // peak RSS of the connector while ingesting the backlog
	rawStream        = "S1_BENCH_RAW"        // the raw publisher's stream, configured as the events stream
	rawPrefix        = "s2"                  // its subject prefix: as long as s1, so subjects are as long
	sampleEvents     = 256                   // events read back for their headers and subject lengths
	waitPoll         = 10 * time.Millisecond // how often the stream's message count is read
	runLimit         = 3 * time.Minute       // a run that takes longer has failed
)

// backlogOf is one kind of backlog the benchmark ingests: entity's objects,
// count of them, each giving one created event.
type backlogOf struct {
	entity subjects.Entity
	count  int
}

var (
	threatBacklog = backlogOf{subjects.EntityThreat, backlog}
	uamBacklog    = backlogOf{subjects.EntityAlert, alertBacklog}
)

// ingestRun is one process publishing n messages into a stream: the
// connector ingesting a backlog, or the raw publisher.
type ingestRun struct {
	n             int
	firstMsg, all time.Duration // from process start to the first message, to all of them
	rss           int64         // peak RSS (VmHWM) of the process
	cpu           time.Duration // the process's user + system time
	parentCPU     time.Duration // the parent's (NATS server, emulators) over the same time
	others        float64       // CPUs used by the rest of the machine meanwhile
	storedPerMsg  float64       // stream bytes / messages
}

func (r ingestRun) rate() float64 { return float64(r.n) / r.all.Seconds() }

// ingestResult is one whole measurement of one backlog.
type ingestResult struct {
	of                 backlogOf
	bridge, raw        ingestRun
	upstream           time.Duration // reading the backlog with the client alone
	dataLen, headerLen int           // the raw publisher's data and header sizes
}

func (r ingestResult) ratio() float64 { return r.bridge.rate() / r.raw.rate() }

// BenchmarkIngestBacklog measures the ingestion of a 100,000-threat backlog
// and of a 50,000-alert Unified Alerts backlog: from the start of a
// connector process until the events stream holds every created event,
// beside the rate at which a process publishing as many messages of the
// same size with PublishMsgAsync fills a stream of the same configuration
// on the same server (the most any JetStream publisher can do here), and
// the connector's peak RSS. NATS and the emulators (one per backlog) run in
// this process; the connectors and the raw publishers run as child
// processes, so that RSS and CPU are theirs alone. Targets, for each
// backlog: at least 60% of the raw rate, at most 80 MiB. Each iteration is
// one whole measurement of both from an empty store; run it with
// -benchtime 1x.
func BenchmarkIngestBacklog(b *testing.B) {
	sizes := emulator.DefaultSizes()
	sizes.Threats, sizes.UAMAlerts = backlog, 0
	srv := testenv.NATSServer(b)
	_, emuURL := testenv.Emulator(b, emulator.WithSizes(sizes), emulator.WithRequestLog(0))
	_, uamURL := testenv.Emulator(b, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, UAMAlerts: alertBacklog}), emulator.WithRequestLog(0))
	nc := testenv.Conn(b, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	// The emulator renders a threat's JSON the first time it serves it and
	// keeps it: render them all now, so the runs below do not pay for it
	// (a real console renders on its own machine). It renders Unified
	// Alerts on every query (the upstream-alone row shows what that costs).
	render, err := warmEmulator(b.Context(), emuURL)
	if err != nil {
		b.Fatal(err)
	}
	var r, a ingestResult
	for b.Loop() {
		ctx, cancel := context.WithTimeout(b.Context(), 3*runLimit)
		r, err = ingestOnce(ctx, js, srv.ClientURL(), emuURL, threatBacklog)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(b.Context(), 3*runLimit)
		a, err = ingestOnce(ctx, js, srv.ClientURL(), uamURL, uamBacklog)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	cfg := ingestConfig(srv.ClientURL(), emuURL, subjects.EntityAlert)
	in := cfg.Consoles["main"].Ingest

	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkIngestBacklog: a %s-threat and a %s-alert backlog into JetStream\n\n", fmtCount(backlog), fmtCount(alertBacklog))
	fmt.Fprintf(&t, "- machine: %s\n", machine())
	fmt.Fprintf(&t, "- this process: the NATS server (file storage) and two emulators (request log off): %s threats "+
		"(serving them all the first time, when it renders each threat's JSON, took %s and was done before the runs), and %s Unified Alerts "+
		"of every source and confidence level (rendered on every query); child processes: the connector, then the raw publisher, for each backlog\n",
		fmtCount(backlog), fmtDur(render), fmtCount(alertBacklog))
	fmt.Fprintf(&t, "- connector: ingest.page_size %d, ingest.alerts.page_size %d (alert run only), ingest.interval %s, ingest.first_fetch %.0f years (everything), "+
		"rate_limit %s/s with burst %s (the default 10/s would pace the page reads)\n",
		in.PageSize, in.Alerts.PageSize, in.Interval, in.FirstFetch.Hours()/24/365, fmtCount(cfg.Consoles["main"].RateLimit.PerSecond), fmtCount(float64(cfg.Consoles["main"].RateLimit.Burst)))
	for _, x := range []ingestResult{r, a} {
		fmt.Fprintf(&t, "- %s events: stored %.0f B per message on average (subject, %d B of headers, data); "+
			"the raw publisher sends the same headers and %d B of data, stored %.0f B per message\n",
			x.of.entity, x.bridge.storedPerMsg, x.headerLen, x.dataLen, x.raw.storedPerMsg)
	}
	fmt.Fprintf(&t, "- other processes on this machine used %.2f / %.2f CPUs during the threat ingestion / its raw run, %.2f / %.2f during the alert ingestion / its raw run\n\n",
		r.bridge.others, r.raw.others, a.bridge.others, a.raw.others)
	fmt.Fprintf(&t, "| run | start → all in the stream | msgs/s | start → first | peak RSS | CPU, child | CPU, parent (NATS + emulators) |\n")
	fmt.Fprintf(&t, "|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, x ingestRun) {
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s |\n",
			name, fmtDur(x.all), fmtCount(x.rate()), fmtDur(x.firstMsg), fmtMiB(x.rss), fmtDur(x.cpu), fmtDur(x.parentCPU))
	}
	pageSize := map[subjects.Entity]int{subjects.EntityThreat: in.PageSize, subjects.EntityAlert: in.Alerts.PageSize}
	what := map[subjects.Entity]string{subjects.EntityThreat: "`GET /threats` pages", subjects.EntityAlert: "GraphQL `alerts` pages"}
	for _, x := range []ingestResult{r, a} {
		e, n := x.of.entity, x.of.count
		row(fmt.Sprintf("s1bridge, %ss: connector process → %s %s.created events", e, fmtCount(float64(n)), e), x.bridge)
		row(fmt.Sprintf("raw JetStream: `PublishMsgAsync` × %s %s-sized messages with Nats-Msg-Id, then the acks", fmtCount(float64(n)), e), x.raw)
		fmt.Fprintf(&t, "| upstream alone: the %d %s read with `sentinelone.Client` in this process | %s | %s | | | | |\n",
			(n+pageSize[e]-1)/pageSize[e], what[e], fmtDur(x.upstream), fmtCount(float64(n)/x.upstream.Seconds()))
		fmt.Fprintf(&t, "| **%ss: s1bridge / raw** (target ≥ %.0f%%: %s; peak RSS target ≤ %s: %s) | | **%.0f%%** | | **%s** | | |\n",
			e, targetIngestRate*100, verdict(x.ratio() >= targetIngestRate), fmtMiB(targetRSS), verdict(x.bridge.rss <= targetRSS), x.ratio()*100, fmtMiB(x.bridge.rss))
	}
	fmt.Print(t.String())

	b.ReportMetric(r.bridge.rate(), "threats/s")
	b.ReportMetric(r.raw.rate(), "raw-msgs/s")
	b.ReportMetric(r.ratio(), "ratio")
	b.ReportMetric(float64(r.bridge.rss)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(a.bridge.rate(), "alerts/s")
	b.ReportMetric(a.raw.rate(), "alert-raw-msgs/s")
	b.ReportMetric(a.ratio(), "alert-ratio")
	b.ReportMetric(float64(a.bridge.rss)/(1<<20), "alert-peak-RSS-MiB")
}

// ingestOnce runs the whole measurement of one backlog once, from an empty
// store: the connector ingesting of from emuURL, then the raw publisher.
func ingestOnce(ctx context.Context, js jetstream.JetStream, natsURL, emuURL string, of backlogOf) (ingestResult, error) {
	r := ingestResult{of: of}
	if err := deleteStreams(ctx, js); err != nil {
		return r, err
	}
	cfg := ingestConfig(natsURL, emuURL, of.entity)
	events := cfg.EventsStreamName()
	var err error
	r.bridge, err = runUntil(ctx, js, events, of.count, roleConnector, envNATS+"="+natsURL, envEmulator+"="+emuURL, envSource+"="+string(of.entity))
	if err != nil {
		return r, err
	}
	job, err := sampleJob(ctx, js, events, of)
	if err != nil {
		return r, err
	}
	r.dataLen, r.headerLen = job.DataLen, headerLen(job.Header)
	if r.upstream, err = readUpstream(ctx, emuURL, of); err != nil {
		return r, err
	}
	spec, err := json.Marshal(job)
	if err != nil {
		return r, err
	}
	r.raw, err = runUntil(ctx, js, rawStream, of.count, rolePublisher, envNATS+"="+natsURL, envPublish+"="+string(spec))
	return r, err
}

// deleteStreams empties the server: the events stream, the key-value
// buckets and the raw stream of an earlier iteration.
func deleteStreams(ctx context.Context, js jetstream.JetStream) error {
	names := js.StreamNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	if err := names.Err(); err != nil {
		return err
	}
	for _, n := range all {
		if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", n, err)
		}
	}
	return nil
}

// runUntil starts a child in role and waits until stream holds n
// messages; it then reads the child's peak RSS, stops it, and checks that
// the stream holds exactly n messages.
func runUntil(ctx context.Context, js jetstream.JetStream, stream string, n int, role string, env ...string) (ingestRun, error) {
	r := ingestRun{n: n}
	oth := startOthers()
	parent0 := cpuTime()
	c, err := startChild(role, env...)
	if err != nil {
		return r, err
	}
	defer c.kill()
	if r.firstMsg, r.all, err = waitStream(ctx, js, stream, n, c); err != nil {
		return r, fmt.Errorf("%s: %w", role, err)
	}
	// VmHWM of a live process; after exit /proc no longer has it.
	if r.rss, err = peakRSS(c.cmd.Process.Pid); err != nil {
		return r, err
	}
	if r.cpu, err = c.stop(30 * time.Second); err != nil {
		return r, fmt.Errorf("%s: %w", role, err)
	}
	r.parentCPU = cpuTime() - parent0
	r.others = oth.cpus(r.cpu)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return r, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return r, err
	}
	if info.State.Msgs != uint64(n) {
		return r, fmt.Errorf("%s: stream %s holds %d messages, want exactly %d", role, stream, info.State.Msgs, n)
	}
	r.storedPerMsg = float64(info.State.Bytes) / float64(info.State.Msgs)
	return r, nil
}

// waitStream waits until stream holds want messages and returns the
// times from the child's start to its first message and to the last. It
// polls the stream's state every waitPoll: JetStream has no notification of
// a message count, and a consumer would add load to what is measured. It
// fails at once if the child exits.
func waitStream(ctx context.Context, js jetstream.JetStream, stream string, want int, c *child) (first, all time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, runLimit)
	defer cancel()
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	var s jetstream.Stream // nil until the child has created the stream
	for {
		select {
		case <-ctx.Done():
			return first, all, fmt.Errorf("stream %s did not reach %d messages: %w", stream, want, ctx.Err())
		case <-c.exited():
			return first, all, fmt.Errorf("child exited early: %v", c.err)
		case <-tick.C:
		}
		var n uint64
		if s == nil {
			s, err = js.Stream(ctx, stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				s = nil
				continue
			}
			if err != nil {
				return first, all, err
			}
			n = s.CachedInfo().State.Msgs
		} else {
			info, err := s.Info(ctx)
			if err != nil {
				return first, all, err
			}
			n = info.State.Msgs
		}
		now := time.Since(c.start)
		if n > 0 && first == 0 {
			first = now
		}
		if n >= uint64(want) {
			return first, now, nil
		}
	}
}

// sampleJob returns the raw publisher's job: sampleEvents events spread
// over the stream give the header template (the first one's) and the
// average subject length; the data size is then what makes a message
// stored as large as the events are on average. (Averaging the samples'
// data instead would be off by a few percent: sizes vary with the object.)
func sampleJob(ctx context.Context, js jetstream.JetStream, stream string, of backlogOf) (*publishJob, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	st := info.State
	if st.Msgs == 0 {
		return nil, fmt.Errorf("stream %s is empty", stream)
	}
	job := &publishJob{Stream: rawStream, Prefix: rawPrefix, Entity: of.entity, Count: of.count}
	var subjectLen int
	for i := range sampleEvents {
		seq := st.FirstSeq + uint64(i)*(st.LastSeq-st.FirstSeq)/(sampleEvents-1)
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", seq, err)
		}
		subjectLen += len(m.Subject)
		if i == 0 {
			id, err := objectOf(m.Subject, of.entity)
			if err != nil {
				return nil, err
			}
			job.Header, job.TemplateID = cloneHeader(m.Header), id
		}
	}
	stored := float64(st.Bytes) / float64(st.Msgs)
	job.DataLen = int(math.Round(stored - storeRecordOverhead - float64(subjectLen)/sampleEvents - float64(headerLen(job.Header))))
	if job.DataLen < 0 {
		return nil, fmt.Errorf("stream %s: %.0f B per message leaves no room for data", stream, stored)
	}
	return job, nil
}

// storeRecordOverhead is what nats-server's file store adds to each
// message's subject, headers and data (msgHdrSize 22 + recordHashSize 8 in
// server/filestore.go), so that stream bytes / messages gives the messages'
// average size.
const storeRecordOverhead = 22 + 8

// objectOf returns the id of the object of entity e in the subject of its
// created event.
func objectOf(subject string, e subjects.Entity) (string, error) {
	t := strings.Split(subject, ".")
	// <prefix>.<console>.event.<entity>.<id>.created
	if len(t) != 6 || t[3] != string(e) || t[5] != subjects.KindCreated {
		return "", fmt.Errorf("%q is not the subject of a %s created event", subject, e)
	}
	return t[4], nil
}

// readUpstream reads the backlog as the connector does (updatedAt
// ascending, pages of the configured size) with the client alone, in this
// process: what the emulator, HTTP and decoding cost without NATS.
func readUpstream(ctx context.Context, emuURL string, of backlogOf) (time.Duration, error) {
	cc := ingestConfig("", emuURL, of.entity).Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: emuURL, Token: testenv.Token, Timeout: cc.Timeout,
		RatePerSecond: cc.RateLimit.PerSecond, RateBurst: cc.RateLimit.Burst,
	})
	if err != nil {
		return 0, err
	}
	defer client.CloseIdleConnections()
	since := time.Now().Add(-cc.Ingest.FirstFetch)
	start := time.Now()
	n := 0
	if of.entity == subjects.EntityAlert {
		for page, err := range client.UAMAlertPages(ctx, sentinelone.UAMIngestFilter(since, cc.Ingest.Alerts.PageSize)) {
			if err != nil {
				return 0, err
			}
			n += len(page.Items)
		}
	} else {
		f := sentinelone.ThreatFilter{UpdatedAtGte: since, SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: cc.Ingest.PageSize}
		for page, err := range client.ThreatHeadPages(ctx, f) { // as the connector reads them
			if err != nil {
				return 0, err
			}
			n += len(page.Items)
		}
	}
	d := time.Since(start)
	if n != of.count {
		return 0, fmt.Errorf("read %d %ss, want %d", n, of.entity, of.count)
	}
	return d, nil
}

// warmEmulator reads every threat once over plain HTTP and returns how long
// that took: the emulator's own cost of serving the backlog the first time.
// It decodes only the cursor, found after the data array (the emulator
// writes {"data":[...],"pagination":{...}} in that order), so that the time
// is the emulator's, not a JSON decoder's.
func warmEmulator(ctx context.Context, emuURL string) (time.Duration, error) {
	base := emuURL + emulator.APIPrefix + emulator.PathThreats + "?limit=1000&sortBy=id"
	key := []byte(`"pagination":`)
	start := time.Now()
	total := -1
	for u := base; ; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set(sentinelone.HeaderAuthorization, emulator.AuthScheme+" "+testenv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		var env struct {
			Pagination struct {
				NextCursor *string `json:"nextCursor"`
				TotalItems int     `json:"totalItems"`
			} `json:"pagination"`
		}
		i := bytes.LastIndex(body, key)
		if resp.StatusCode != http.StatusOK || i < 0 {
			return 0, fmt.Errorf("GET %s: status %d, %d bytes without pagination", emulator.PathThreats, resp.StatusCode, len(body))
		}
		if err := json.Unmarshal(append([]byte("{"), body[i:]...), &env); err != nil {
			return 0, fmt.Errorf("GET %s: pagination: %w", emulator.PathThreats, err)
		}
		if total < 0 {
			total = env.Pagination.TotalItems
		}
		if env.Pagination.NextCursor == nil {
			break
		}
		u = base + "&cursor=" + url.QueryEscape(*env.Pagination.NextCursor)
	}
	if total != backlog {
		return 0, fmt.Errorf("emulator holds %d threats, want %d", total, backlog)
	}
	return time.Since(start), nil
}
