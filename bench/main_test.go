package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// The ingestion benchmark runs the connector, and the raw publisher it is
// compared with, as child processes (this test binary re-executed with
// envChild set to a role), so each one's peak RSS and CPU time are its own
// while NATS and the emulator stay in the parent.
const (
	envChild    = "S1BRIDGE_BENCH_CHILD"    // the role of a re-executed test binary
	envNATS     = "S1BRIDGE_BENCH_NATS"     // the NATS URL a child connects to
	envEmulator = "S1BRIDGE_BENCH_EMULATOR" // the emulator URL the connector child polls
	envPublish  = "S1BRIDGE_BENCH_PUBLISH"  // the publisher child's job, as JSON
	envSource   = "S1BRIDGE_BENCH_SOURCE"   // the entity the connector child ingests: threat or alert
	// envChildProfile, when set to a directory, makes each child write a CPU
	// profile there (connector.pprof, publisher.pprof): -cpuprofile only
	// sees the parent.
	envChildProfile = "S1BRIDGE_BENCH_CHILD_CPUPROFILE"

	roleConnector = "connector"
	rolePublisher = "publisher"
)

func TestMain(m *testing.M) {
	switch role := os.Getenv(envChild); role {
	case "":
		os.Exit(m.Run())
	case roleConnector, rolePublisher:
		os.Exit(runChild(role))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown role\n", envChild, role)
		os.Exit(2)
	}
}

// runChild runs role until SIGINT or SIGTERM, so the parent can read its
// peak RSS while it is still alive.
func runChild(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir := os.Getenv(envChildProfile); dir != "" {
		name := role
		if src := os.Getenv(envSource); src != "" {
			name += "-" + src // connector-threat, connector-alert
		}
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
		// And the heap as the run leaves it (the states it keeps).
		defer func() {
			if h, err := os.Create(filepath.Join(dir, name+".heap.pprof")); err == nil {
				_ = pprof.Lookup("heap").WriteTo(h, 0)
				h.Close()
			}
		}()
	}
	var err error
	if role == roleConnector {
		err = runConnector(ctx)
	} else {
		err = runPublisher(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s child: %v\n", role, err)
		return 1
	}
	return 0
}

// ingestConfig is the configuration of the connector child: console main at
// emuURL with ingestion of everything the emulator holds, in pages of 1000,
// and the console rate limit raised (a backlog read is 100 requests back to
// back; the default 10/s with burst 20 would add seconds of waiting). Alert
// ingestion (Unified Alerts, pages of 1000 too) is on only when e is
// subjects.EntityAlert; threat ingestion always runs, with ingest.enabled
// (the alert run's emulator has no threats).
func ingestConfig(natsURL, emuURL string, e subjects.Entity) *config.Config {
	cfg := testenv.Config(natsURL, emuURL)
	m := cfg.Consoles["main"]
	m.RateLimit.PerSecond, m.RateLimit.Burst = 100000, 100000
	m.Ingest.Enabled = true
	m.Ingest.FirstFetch = firstFetchAll
	m.Ingest.PageSize = 1000
	m.Ingest.Interval = 200 * time.Millisecond
	m.Ingest.Alerts.Enabled = e == subjects.EntityAlert
	m.Ingest.Alerts.PageSize = 1000
	cfg.Consoles["main"] = m
	return cfg
}

// firstFetchAll makes the first poll read every threat the emulator holds
// (its seeded threats are at most 48 hours old).
const firstFetchAll = 20 * 365 * 24 * time.Hour

func childLogger() *slog.Logger {
	if os.Getenv("S1BRIDGE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func runConnector(ctx context.Context) error {
	c, err := connector.New(ingestConfig(os.Getenv(envNATS), os.Getenv(envEmulator), subjects.Entity(os.Getenv(envSource))), childLogger())
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// publishJob is what the publisher child publishes: Count messages to a
// stream configured as the events stream but named Stream and holding the
// subjects of Prefix. Each message is the created event of an object of
// Entity (threat when empty), with Header's TemplateID replaced by an id of
// its own (so Nats-Msg-Id, ce-id and ce-subject stay unique and of the same
// length) and DataLen bytes of data.
type publishJob struct {
	Stream     string              `json:"stream"`
	Prefix     string              `json:"prefix"`
	Entity     subjects.Entity     `json:"entity,omitempty"`
	Count      int                 `json:"count"`
	Header     map[string][]string `json:"header"`
	TemplateID string              `json:"templateId"`
	DataLen    int                 `json:"dataLen"`
}

// rawIDBase is the first threat id the publisher uses: 19 digits, as
// SentinelOne's ids are.
const rawIDBase = 1_900_000_000_000_000_000

// rawAlertID is the publisher's id of alert i: a UUID as UAM's are, of the
// same length as the emulator's.
func rawAlertID(i int) string { return fmt.Sprintf("00000000-0000-7000-9000-%012x", i) }

func (j *publishJob) entity() subjects.Entity {
	if j.Entity == "" {
		return subjects.EntityThreat
	}
	return j.Entity
}

// message returns message i of the job.
func (j *publishJob) message(subj subjects.Subjects, i int, data []byte) *nats.Msg {
	id := strconv.FormatUint(rawIDBase+uint64(i), 10)
	if j.entity() == subjects.EntityAlert {
		id = rawAlertID(i)
	}
	h := make(nats.Header, len(j.Header))
	for k, vs := range j.Header {
		out := make([]string, len(vs))
		for n, v := range vs {
			out[n] = strings.ReplaceAll(v, j.TemplateID, id)
		}
		h[k] = out
	}
	return &nats.Msg{Subject: subj.EntityEvent("main", j.entity(), id, subjects.KindCreated, ""), Header: h, Data: data}
}

// padData returns JSON of exactly n bytes shaped like the data of an event
// of entity e (n below the smallest such object gives n bytes of padding).
func padData(n int, e subjects.Entity) []byte {
	head, tail := `{"`+string(e)+`":{"pad":"`, `"}}`
	if n < len(head)+len(tail) {
		return []byte(strings.Repeat("x", n))
	}
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// runPublisher carries out the publish job of envPublish as fast as
// JetStream acknowledges: every message with PublishMsgAsync (at most 4096
// unacknowledged, as in the connector's JetStream context), then it waits
// for every ack, then for a signal.
func runPublisher(ctx context.Context) error {
	var job publishJob
	if err := json.Unmarshal([]byte(os.Getenv(envPublish)), &job); err != nil {
		return fmt.Errorf("%s: %w", envPublish, err)
	}
	nc, err := nats.Connect(os.Getenv(envNATS))
	if err != nil {
		return err
	}
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return err
	}
	subj, err := subjects.New(job.Prefix)
	if err != nil {
		return err
	}
	sc := store.EventsStreamConfig(ingestConfig("", "", job.entity()), subj)
	sc.Name = job.Stream
	if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
		return err
	}
	data := padData(job.DataLen, job.entity())
	// With 4096 acks outstanding a publish waits for one; the default wait
	// of 200 ms then fails, which a busy shared machine can exceed. Waiting
	// longer is the backpressure a bulk publisher wants.
	stall := jetstream.WithStallWait(30 * time.Second)
	for i := range job.Count {
		if _, err := js.PublishMsgAsync(job.message(subj, i, data), stall); err != nil {
			return err
		}
	}
	// The parent stops this process once the stream holds every message,
	// which may be before the last acks are back: wait for them regardless
	// of the signal, or a lost ack would go unnoticed.
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-js.PublishAsyncComplete():
	case <-t.C:
		return fmt.Errorf("acks still pending a minute after the last publish")
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d publishes failed", n, job.Count)
	}
	<-ctx.Done()
	return nil
}

// child is a running child process.
type child struct {
	role  string
	cmd   *exec.Cmd
	start time.Time
	done  chan struct{} // closed when the process has exited and been waited for
	err   error         // the exit error, set before done is closed
}

// startChild re-executes this test binary in role with env added.
func startChild(role string, env ...string) (*child, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+role), env...)
	cmd.Stderr = os.Stderr
	c := &child{role: role, cmd: cmd, start: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited is closed when the child has exited, for whatever reason.
func (c *child) exited() <-chan struct{} { return c.done }

// stop interrupts the child and waits for it (killing it after grace), and
// returns the CPU time it used.
func (c *child) stop(grace time.Duration) (time.Duration, error) {
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	var err error
	select {
	case <-c.done:
		err = c.err
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		err = fmt.Errorf("%s child did not stop within %s after SIGINT", c.role, grace)
	}
	ps := c.cmd.ProcessState
	return ps.UserTime() + ps.SystemTime(), err
}

// kill ends the child at once (for a failed run) and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// cloneHeader copies h so a template is not shared with a message.
func cloneHeader(h nats.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
