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
	targetIngestRate = 0.60                  // s1bridge threats/s at least 60% of the raw JetStream publish rate
	targetRSS        = 80 << 20              // peak RSS of the connector while ingesting the backlog
	rawStream        = "S1_BENCH_RAW"        // the raw publisher's stream, configured as the events stream
	rawPrefix        = "s2"                  // its subject prefix: as long as s1, so subjects are as long
	sampleEvents     = 256                   // events read back for their headers and subject lengths
	waitPoll         = 10 * time.Millisecond // how often the stream's message count is read
	runLimit         = 3 * time.Minute       // a run that takes longer has failed
)

// ingestRun is one process publishing into a stream: the connector
// ingesting the backlog, or the raw publisher.
type ingestRun struct {
	firstMsg, all time.Duration // from process start to the first message, to all of them
	rss           int64         // peak RSS (VmHWM) of the process
	cpu           time.Duration // the process's user + system time
	parentCPU     time.Duration // the parent's (NATS server, emulator) over the same time
	others        float64       // CPUs used by the rest of the machine meanwhile
	storedPerMsg  float64       // stream bytes / messages
}

func (r ingestRun) rate() float64 { return backlog / r.all.Seconds() }

// ingestResult is one whole measurement.
type ingestResult struct {
	bridge, raw        ingestRun
	upstream           time.Duration // reading the backlog with the client alone
	dataLen, headerLen int           // the raw publisher's data and header sizes
}

// BenchmarkIngestBacklog measures the ingestion of a 100,000-threat backlog:
// from the start of a connector process until the events stream holds the
// 100,000 created events, beside the rate at which a process publishing
// 100,000 messages of the same size with PublishMsgAsync fills a stream of
// the same configuration on the same server (the most any JetStream
// publisher can do here), and the connector's peak RSS. NATS and the
// emulator run in this process; the connector and the raw publisher run as
// child processes, so that RSS and CPU are theirs alone. Targets: at least
// 60% of the raw rate, at most 80 MiB. Each iteration is one whole
// measurement from an empty store; run it with -benchtime 1x.
func BenchmarkIngestBacklog(b *testing.B) {
	sizes := emulator.DefaultSizes()
	sizes.Threats = backlog
	srv := testenv.NATSServer(b)
	_, emuURL := testenv.Emulator(b, emulator.WithSizes(sizes), emulator.WithRequestLog(0))
	nc := testenv.Conn(b, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	// The emulator renders a threat's JSON the first time it serves it and
	// keeps it: render them all now, so the runs below do not pay for it
	// (a real console renders on its own machine).
	render, err := warmEmulator(b.Context(), emuURL)
	if err != nil {
		b.Fatal(err)
	}
	var r ingestResult
	for b.Loop() {
		ctx, cancel := context.WithTimeout(b.Context(), 3*runLimit)
		r, err = ingestOnce(ctx, js, srv.ClientURL(), emuURL)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	cfg := ingestConfig(srv.ClientURL(), emuURL)
	in := cfg.Consoles["main"].Ingest
	ratio := r.bridge.rate() / r.raw.rate()

	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkIngestBacklog: a %s-threat backlog into JetStream\n\n", fmtCount(backlog))
	fmt.Fprintf(&t, "- machine: %s\n", machine())
	fmt.Fprintf(&t, "- this process: the NATS server (file storage) and the emulator (%s threats, request log off; "+
		"serving them all the first time, when it renders each threat's JSON, took %s and was done before the runs); child processes: the connector, then the raw publisher\n",
		fmtCount(backlog), fmtDur(render))
	fmt.Fprintf(&t, "- connector: ingest.page_size %d, ingest.interval %s, ingest.first_fetch %.0f years (everything), "+
		"rate_limit %s/s with burst %s (the default 10/s would pace the 100 page reads)\n",
		in.PageSize, in.Interval, in.FirstFetch.Hours()/24/365, fmtCount(cfg.Consoles["main"].RateLimit.PerSecond), fmtCount(float64(cfg.Consoles["main"].RateLimit.Burst)))
	fmt.Fprintf(&t, "- events: stored %.0f B per message on average (subject, %d B of headers, data); "+
		"the raw publisher sends the same headers and %d B of data, stored %.0f B per message\n",
		r.bridge.storedPerMsg, r.headerLen, r.dataLen, r.raw.storedPerMsg)
	fmt.Fprintf(&t, "- other processes on this machine used %.2f CPUs during the ingestion and %.2f during the raw run\n\n", r.bridge.others, r.raw.others)
	fmt.Fprintf(&t, "| run | start → all in the stream | msgs/s | start → first | peak RSS | CPU, child | CPU, parent (NATS + emulator) |\n")
	fmt.Fprintf(&t, "|---|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&t, "| s1bridge: connector process → %s created events | %s | %s | %s | %s | %s | %s |\n",
		fmtCount(backlog), fmtDur(r.bridge.all), fmtCount(r.bridge.rate()), fmtDur(r.bridge.firstMsg), fmtMiB(r.bridge.rss), fmtDur(r.bridge.cpu), fmtDur(r.bridge.parentCPU))
	fmt.Fprintf(&t, "| raw JetStream: `PublishMsgAsync` × %s with Nats-Msg-Id, then the acks | %s | %s | %s | %s | %s | %s |\n",
		fmtCount(backlog), fmtDur(r.raw.all), fmtCount(r.raw.rate()), fmtDur(r.raw.firstMsg), fmtMiB(r.raw.rss), fmtDur(r.raw.cpu), fmtDur(r.raw.parentCPU))
	fmt.Fprintf(&t, "| upstream alone: the %d pages read with `sentinelone.Client` in this process | %s | %s | | | | |\n",
		(backlog+in.PageSize-1)/in.PageSize, fmtDur(r.upstream), fmtCount(backlog/r.upstream.Seconds()))
	fmt.Fprintf(&t, "| **s1bridge / raw** (target ≥ %.0f%%: %s; peak RSS target ≤ %s: %s) | | **%.0f%%** | | **%s** | | |\n",
		targetIngestRate*100, verdict(ratio >= targetIngestRate), fmtMiB(targetRSS), verdict(r.bridge.rss <= targetRSS), ratio*100, fmtMiB(r.bridge.rss))
	fmt.Print(t.String())

	b.ReportMetric(r.bridge.rate(), "threats/s")
	b.ReportMetric(r.raw.rate(), "raw-msgs/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(r.bridge.rss)/(1<<20), "peak-RSS-MiB")
}

// ingestOnce runs the whole measurement once, from an empty store.
func ingestOnce(ctx context.Context, js jetstream.JetStream, natsURL, emuURL string) (ingestResult, error) {
	var r ingestResult
	if err := deleteStreams(ctx, js); err != nil {
		return r, err
	}
	cfg := ingestConfig(natsURL, emuURL)
	events := cfg.EventsStreamName()
	var err error
	r.bridge, err = runUntil(ctx, js, events, roleConnector, envNATS+"="+natsURL, envEmulator+"="+emuURL)
	if err != nil {
		return r, err
	}
	job, err := sampleJob(ctx, js, events)
	if err != nil {
		return r, err
	}
	r.dataLen, r.headerLen = job.DataLen, headerLen(job.Header)
	if r.upstream, err = readUpstream(ctx, emuURL); err != nil {
		return r, err
	}
	spec, err := json.Marshal(job)
	if err != nil {
		return r, err
	}
	r.raw, err = runUntil(ctx, js, rawStream, rolePublisher, envNATS+"="+natsURL, envPublish+"="+string(spec))
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

// runUntil starts a child in role and waits until stream holds backlog
// messages; it then reads the child's peak RSS, stops it, and checks that
// the stream holds exactly backlog messages.
func runUntil(ctx context.Context, js jetstream.JetStream, stream, role string, env ...string) (ingestRun, error) {
	var r ingestRun
	oth := startOthers()
	parent0 := cpuTime()
	c, err := startChild(role, env...)
	if err != nil {
		return r, err
	}
	defer c.kill()
	if r.firstMsg, r.all, err = waitStream(ctx, js, stream, c); err != nil {
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
	if info.State.Msgs != backlog {
		return r, fmt.Errorf("%s: stream %s holds %d messages, want exactly %d", role, stream, info.State.Msgs, backlog)
	}
	r.storedPerMsg = float64(info.State.Bytes) / float64(info.State.Msgs)
	return r, nil
}

// waitStream waits until stream holds backlog messages and returns the
// times from the child's start to its first message and to the last. It
// polls the stream's state every waitPoll: JetStream has no notification of
// a message count, and a consumer would add load to what is measured. It
// fails at once if the child exits.
func waitStream(ctx context.Context, js jetstream.JetStream, stream string, c *child) (first, all time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, runLimit)
	defer cancel()
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	var s jetstream.Stream // nil until the child has created the stream
	for {
		select {
		case <-ctx.Done():
			return first, all, fmt.Errorf("stream %s did not reach %d messages: %w", stream, backlog, ctx.Err())
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
		if n >= backlog {
			return first, now, nil
		}
	}
}

// sampleJob returns the raw publisher's job: sampleEvents events spread
// over the stream give the header template (the first one's) and the
// average subject length; the data size is then what makes a message
// stored as large as the events are on average. (Averaging the samples'
// data instead would be off by a few percent: sizes vary with the threat.)
func sampleJob(ctx context.Context, js jetstream.JetStream, stream string) (*publishJob, error) {
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
	job := &publishJob{Stream: rawStream, Prefix: rawPrefix, Count: backlog}
	var subjectLen int
	for i := range sampleEvents {
		seq := st.FirstSeq + uint64(i)*(st.LastSeq-st.FirstSeq)/(sampleEvents-1)
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", seq, err)
		}
		subjectLen += len(m.Subject)
		if i == 0 {
			id, err := threatOf(m.Subject)
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

// threatOf returns the threat id in the subject of a created event.
func threatOf(subject string) (string, error) {
	t := strings.Split(subject, ".")
	// <prefix>.<console>.event.threat.<id>.created
	if len(t) != 6 || t[3] != "threat" || t[5] != subjects.KindCreated {
		return "", fmt.Errorf("%q is not the subject of a created event", subject)
	}
	return t[4], nil
}

// readUpstream reads the backlog as the connector does (updatedAt
// ascending, pages of the configured size) with the client alone, in this
// process: what the emulator, HTTP and decoding cost without NATS.
func readUpstream(ctx context.Context, emuURL string) (time.Duration, error) {
	cc := ingestConfig("", emuURL).Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: emuURL, Token: testenv.Token, Timeout: cc.Timeout,
		RatePerSecond: cc.RateLimit.PerSecond, RateBurst: cc.RateLimit.Burst,
	})
	if err != nil {
		return 0, err
	}
	defer client.CloseIdleConnections()
	f := sentinelone.ThreatFilter{
		UpdatedAtGte: time.Now().Add(-cc.Ingest.FirstFetch), SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: cc.Ingest.PageSize,
	}
	start := time.Now()
	n := 0
	for page, err := range client.ThreatPages(ctx, f) {
		if err != nil {
			return 0, err
		}
		n += len(page.Items)
	}
	d := time.Since(start)
	if n != backlog {
		return 0, fmt.Errorf("read %d threats, want %d", n, backlog)
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
