package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

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
	cfg    *config.Config
	emu    *emulator.Emulator
	client *sentinelone.Client
	st     *store.Store
	subj   subjects.Subjects
}

// newHarness starts NATS and an emulator seeded with threats, and opens the
// store; edit, when not nil, adjusts the configuration first.
func newHarness(t testing.TB, threats int, edit func(*config.Config)) *harness {
	t.Helper()
	srv := testparts.NATSServer(t)
	emu, url := testparts.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: threats}))
	cfg := testparts.Config(srv.ClientURL(), url)
	testparts.IngestOn(cfg)
	if edit != nil {
		edit(cfg)
	}
	return openHarness(t, cfg, testparts.Conn(t, srv), emu)
}

// openHarness opens the store of cfg on a connection and a client of the
// console main.
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
	return &harness{t: t, cfg: cfg, emu: emu, client: client, st: st, subj: st.Subjects()}
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
