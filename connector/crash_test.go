package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// The crash test runs the connector as a child process (this test binary,
// re-executed with S1BRIDGE_TEST_CHILD set) and kills it with SIGKILL.
const (
	envChild     = "S1BRIDGE_TEST_CHILD"
	envChildNATS = "S1BRIDGE_TEST_CHILD_NATS"
	envChildEmu  = "S1BRIDGE_TEST_CHILD_EMULATOR"
	childTTL     = time.Second
	// childMonitors, as the value of envChild, runs the child with
	// ingestion off: the monitor crash test's child.
	childMonitors = "monitors"
	// childActions runs the child with ingestion off and the action
	// timeout of envChildActionTimeout: the idempotency takeover test's.
	childActions          = "actions"
	envChildActionTimeout = "S1BRIDGE_TEST_CHILD_ACTION_TIMEOUT"
	// childTracking runs the child with ingestion off and the tracking
	// poller at trackInterval: the tracking crash test's child.
	childTracking = "tracking"
	// childAlerts runs the child with ingestion on and pages of
	// childAlertPage Unified Alerts: the alert crash test's child.
	childAlerts    = "alerts"
	childAlertPage = 100
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs a connector with ingestion on until it is killed or
// interrupted.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := testenv.Config(os.Getenv(envChildNATS), os.Getenv(envChildEmu))
	switch os.Getenv(envChild) {
	case childMonitors, childActions:
	case childTracking:
		m := cfg.Consoles["main"]
		m.Tracking.PollInterval = trackInterval
		cfg.Consoles["main"] = m
	default:
		testenv.IngestOn(cfg)
	}
	if d, err := time.ParseDuration(os.Getenv(envChildActionTimeout)); err == nil {
		cfg.Service.ActionTimeout = d
	}
	if os.Getenv(envChild) == childAlerts {
		m := cfg.Consoles["main"]
		m.Ingest.Alerts.PageSize = childAlertPage
		cfg.Consoles["main"] = m
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("S1BRIDGE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := connector.New(cfg, log, connector.WithLeaseTTL(childTTL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, natsURL, emuURL string) *exec.Cmd {
	t.Helper()
	return startChildMode(t, "1", natsURL, emuURL)
}

// startChildMode starts a child with envChild set to mode.
func startChildMode(t *testing.T, mode, natsURL, emuURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envChildNATS+"="+natsURL, envChildEmu+"="+emuURL)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A test that fails while a child runs must not leave it behind,
	// reconnecting for ever to a server that is gone.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func TestIngestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the connector as a subprocess ten times")
	}
	const seeded = 12000
	srv := testenv.NATSServer(t)
	emu, emuURL := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 2, Agents: 20, Threats: seeded}))
	nc := testenv.Conn(t, srv)
	cfg := testenv.Config(srv.ClientURL(), emuURL)
	rnd := rand.New(rand.NewPCG(7, 7))

	// Each round changes threats no earlier round touched, once each, while
	// no child runs: a change must appear exactly once when the threat's
	// created event was already out with another status; otherwise the
	// created event carries the new status and there is no change event.
	ids := emu.IDs().Threats
	next := 0
	wantChanges := map[string]bool{}
	for round := range 10 {
		// Kill at a random point while the child is publishing: wait until
		// it took the lease and the stream grows, then a little more.
		before := testenv.StreamMsgs(nc, cfg.EventsStreamName())
		child := startChild(t, srv.ClientURL(), emuURL)
		testenv.WaitFor(t, 30*time.Second, "the child to publish", func() bool {
			return testenv.StreamMsgs(nc, cfg.EventsStreamName()) > before
		})
		time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		n := testenv.StreamMsgs(nc, cfg.EventsStreamName())
		t.Logf("round %d: killed; stream holds %d events", round, n)
		emu.AddThreats(20, time.Time{})
		for range 20 {
			id := ids[next]
			next += 7 // spread over the backlog: some published, some not yet
			before, _ := emu.Threat(id)
			at := time.Now().UTC()
			if !at.After(before.UpdatedAt) {
				at = before.UpdatedAt.Add(time.Millisecond)
			}
			if err := emu.UpdateThreat(id, emulator.ThreatUpdate{IncidentStatus: "resolved", At: at}); err != nil {
				t.Fatal(err)
			}
			after, _ := emu.Threat(id)
			if status, ok := publishedStatus(t, nc, cfg.EventsStreamName(), id); ok && status != "resolved" {
				wantChanges["main/"+id+"/incidentStatus/resolved/"+after.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000000Z")] = true
			}
		}
	}
	t.Logf("%d changes to threats already published", len(wantChanges))
	// A last run to completion.
	child := startChild(t, srv.ClientURL(), emuURL)
	defer func() { _ = child.Process.Signal(os.Interrupt); _ = child.Wait() }()
	all := emu.IDs().Threats
	checkCrashStream(t, nc, cfg, subjects.EntityThreat, all, wantChanges)
}

// publishedStatus returns the incident status in the created event of
// threat id, and whether there is one.
func publishedStatus(t *testing.T, nc *nats.Conn, stream, id string) (string, bool) {
	t.Helper()
	data, ok := lastEventData(t, nc, stream, "s1.main.event.threat."+id+".created")
	if !ok {
		return "", false
	}
	var d struct {
		Threat struct {
			ThreatInfo struct {
				IncidentStatus string `json:"incidentStatus"`
			} `json:"threatInfo"`
		} `json:"threat"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Threat.ThreatInfo.IncidentStatus, true
}

// lastEventData returns the data of the last event on subject in stream,
// and whether there is one.
func lastEventData(t *testing.T, nc *nats.Conn, stream, subject string) ([]byte, bool) {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return m.Data, true
}

// checkCrashStream waits for the stream to hold a created event of every
// object of entity in all and every change in wantChanges (by event id),
// then checks it holds exactly those: none lost, none twice.
func checkCrashStream(t *testing.T, nc *nats.Conn, cfg *config.Config, entity subjects.Entity, all []string, wantChanges map[string]bool) {
	t.Helper()
	stream := cfg.EventsStreamName()
	want := uint64(len(all) + len(wantChanges))
	testenv.WaitFor(t, 120*time.Second, fmt.Sprintf("%d events", want), func() bool {
		return testenv.StreamMsgs(nc, stream) >= want
	})
	time.Sleep(3 * cfg.Consoles["main"].Ingest.Interval)
	events := testenv.ReadStream(t, nc, stream)
	testenv.CheckExactlyOnceOf(t, events, entity, all)
	got := map[string]bool{}
	for _, e := range events {
		got[e.ID] = true
	}
	for id := range wantChanges {
		if !got[id] {
			t.Errorf("change %s never published", id)
		}
	}
	if uint64(len(events)) != want {
		t.Errorf("stream holds %d events, want %d (%d created + %d changes)", len(events), want, len(all), len(wantChanges))
	}
}
