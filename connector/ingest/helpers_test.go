package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// harness is the threat ingestion of console main on its own NATS server
// and emulator, for tests that drive an Ingester.
type harness struct {
	t      testing.TB
	srv    *server.Server // nil for a cluster's
	cfg    *config.Config
	emu    *emulator.Emulator
	client *sentinelone.Client
	nc     *nats.Conn
	st     *store.Store
	subj   subjects.Subjects
}

// sized seeds an emulator with threats threats.
func sized(threats int) emulator.Option {
	return emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: threats})
}

// newHarness starts NATS and an emulator (with emuOpts), and opens the store
// of console main with ingestion on (testparts.IngestOn); edit, when not
// nil, adjusts the configuration first.
func newHarness(t testing.TB, edit func(*config.Config), emuOpts ...emulator.Option) *harness {
	t.Helper()
	srv := testparts.NATSServer(t)
	emu, url := testparts.Emulator(t, emuOpts...)
	cfg := testparts.Config(srv.ClientURL(), url)
	testparts.IngestOn(cfg)
	if edit != nil {
		edit(cfg)
	}
	h := openHarness(t, cfg, testparts.Conn(t, srv), emu)
	h.srv = srv
	return h
}

// openHarness opens the store of cfg on nc, with a client of the console
// main.
func openHarness(t testing.TB, cfg *config.Config, nc *nats.Conn, emu *emulator.Emulator) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, nc, store.Options{Config: cfg, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Consoles["main"]
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: m.URL, Token: m.APIToken.Reveal(), Timeout: m.Timeout, RetryMax: -1,
		RetryWaitMin: m.Retry.WaitMin, RetryWaitMax: m.Retry.WaitMax,
		RatePerSecond: m.RateLimit.PerSecond, RateBurst: m.RateLimit.Burst,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, cfg: cfg, emu: emu, client: client, nc: nc, st: st, subj: st.Subjects()}
}

// ingester returns a new ingester of the console's threats held as holder.
func (h *harness) ingester(holder string) *Ingester {
	m := h.cfg.Consoles["main"]
	return New(Config{
		Console: "main", Source: Threats(h.client),
		Interval: m.Ingest.Interval, FirstFetch: m.Ingest.FirstFetch, Overlap: m.Ingest.Overlap, PageSize: m.Ingest.PageSize,
		Store: h.st, Holder: holder, LeaseTTL: time.Second,
		Log: testparts.Logger(h.t).With("holder", holder),
	})
}

// run runs in's loop until the test ends or stop is called.
func (h *harness) run(in *Ingester) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.Run(ctx) }()
	stop = func() { cancel(); <-done }
	h.t.Cleanup(stop)
	return stop
}

// waitPolls waits until in (the leader) has completed k more polls.
func (h *harness) waitPolls(in *Ingester, k int) {
	h.t.Helper()
	seen, prev := 0, h.lastPoll(in)
	testparts.WaitFor(h.t, 30*time.Second, fmt.Sprintf("%d more polls", k), func() bool {
		if lp := h.lastPoll(in); lp.After(prev) {
			seen, prev = seen+1, lp
		}
		return seen >= k
	})
}

func (h *harness) lastPoll(in *Ingester) time.Time {
	s, err := in.Status(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if s.LastPollAt == nil {
		return time.Time{}
	}
	return *s.LastPollAt
}

// events reads the whole events stream.
func (h *harness) events() []testparts.StreamEvent {
	return testparts.ReadStream(h.t, h.nc, h.cfg.EventsStreamName())
}

// msgs is the number of events in the stream.
func (h *harness) msgs() uint64 { return testparts.StreamMsgs(h.nc, h.cfg.EventsStreamName()) }

// count is the number of events on subject.
func (h *harness) count(subject string) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := h.st.Events().Info(ctx, jetstream.WithSubjectFilter(h.subj.ConsoleEvents("main")))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// failNextCommit makes in's next commit fail after its events are
// acknowledged and before the states are written.
func failNextCommit(in *Ingester) {
	fail := true
	in.afterPublish = func() error {
		if fail {
			fail = false
			return errors.New("simulated failure after publish")
		}
		return nil
	}
}
