package connector_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
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

// TestTwoDeploymentsShareNothing runs two deployments, prefixes s1 and s2,
// each with its console main at its own emulator (seeded alike: the same
// threat ids), on one NATS server, both ingesting (DESIGN.md §9). Each
// must lead its own ingestion and publish every threat of its console once
// to its own stream, keep its state, leases and monitors in its own
// buckets, and see nothing of the other.
func TestTwoDeploymentsShareNothing(t *testing.T) {
	const threats = 30
	srv := testenv.NATSServer(t)
	nc := testenv.Conn(t, srv)
	type deployment struct {
		cfg  *config.Config
		emu  *emulator.Emulator
		conn *connector.Connector
		env  *testenv.Env
	}
	var deps []deployment
	for _, prefix := range []string{"s1", "s2"} {
		emu, url := testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: threats}))
		cfg := testenv.Config(srv.ClientURL(), url)
		cfg.Subjects.Prefix = prefix
		testenv.IngestOn(cfg)
		conn := testenv.Connector(t, cfg)
		deps = append(deps, deployment{cfg, emu, conn, &testenv.Env{Server: srv, NC: nc, Emu: emu, Cfg: cfg, Connector: conn}})
	}
	if a, b := deps[0].emu.IDs().Threats, deps[1].emu.IDs().Threats; !slices.Equal(a, b) {
		t.Fatal("the emulators were meant to hold the same threat ids")
	}
	// A monitor on s2 only.
	threat := deps[1].emu.IDs().Threats[0]
	if r := deps[1].env.Call(t, handlers.ActionThreatsMonitor, `{"threatId":"`+threat+`","pollInterval":"1h"}`); r.Err != nil {
		t.Fatalf("s2 threats.monitor: %d %s", r.Err.Code, r.Err.Message)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, d := range deps {
		prefix := d.cfg.Subjects.Prefix
		subj := d.conn.Subjects()
		stream := strings.ToUpper(prefix) + "_EVENTS"
		if got := d.cfg.EventsStreamName(); got != stream {
			t.Fatalf("%s: events stream %s, want %s", prefix, got, stream)
		}
		testenv.WaitFor(t, 20*time.Second, prefix+" to ingest every threat", func() bool {
			return testenv.StreamMsgs(nc, stream) >= threats
		})
		if !d.conn.IngestLeader("main") || !d.conn.MonitorLeader("main") {
			t.Errorf("%s leads ingestion %t and monitors %t of its console main, want both", prefix, d.conn.IngestLeader("main"), d.conn.MonitorLeader("main"))
		}
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{subj.EventsWildcard()}) {
			t.Errorf("%s: stream subjects %v", stream, got)
		}
		testenv.CheckExactlyOnce(t, testenv.ReadStream(t, nc, stream), d.emu.IDs().Threats)
		// Its state: every threat, in its own bucket.
		state, err := js.KeyValue(ctx, subj.BucketName(subjects.BucketState))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := state.ListKeysFiltered(ctx, subjects.StateKeys("main", subjects.EntityThreat))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n != threats {
			t.Errorf("%s: %d threat states, want %d", subj.BucketName(subjects.BucketState), n, threats)
		}
		// Its monitors only.
		r := d.env.Call(t, handlers.ActionMonitorsList, `{}`)
		var l handlers.ListReply
		if r.Err != nil || json.Unmarshal(r.Event.Data, &l) != nil {
			t.Fatalf("%s monitors.list: %v", prefix, r.Err)
		}
		if want := i; l.TotalItems != want {
			t.Errorf("%s lists %d monitors, want %d", prefix, l.TotalItems, want)
		}
	}
	// Each owns its buckets and its audit stream, and shares none.
	var buckets []string
	for name := range js.KeyValueStoreNames(ctx).Name() {
		buckets = append(buckets, name)
	}
	slices.Sort(buckets)
	want := []string{"S1_LEASES", "S1_MONITORS", "S1_REQUESTS", "S1_STATE", "S1_TRACKING", "S2_LEASES", "S2_MONITORS", "S2_REQUESTS", "S2_STATE", "S2_TRACKING"}
	if !slices.Equal(buckets, want) {
		t.Errorf("buckets %v, want %v", buckets, want)
	}
	for _, prefix := range []string{"s1", "s2"} {
		s, err := js.Stream(ctx, strings.ToUpper(prefix)+"_AUDIT")
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{prefix + ".*.audit.>"}) {
			t.Errorf("%s_AUDIT subjects %v", strings.ToUpper(prefix), got)
		}
	}
}

// TestEventsStreamOfAnotherPrefixRefused: a deployment told to use the
// events stream of another prefix (streams.events.name) refuses to start,
// naming the stream and both prefixes, and leaves the stream as it was.
func TestEventsStreamOfAnotherPrefixRefused(t *testing.T) {
	srv := testenv.NATSServer(t)
	_, url := testenv.Emulator(t)
	s1 := testenv.Config(srv.ClientURL(), url)
	testenv.Connector(t, s1)
	s2 := testenv.Config(srv.ClientURL(), url)
	s2.Subjects.Prefix = "s2"
	s2.Streams.Events.Name = "S1_EVENTS"
	c, err := connector.New(s2, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Start(ctx)
	c.Stop(context.Background())
	if err == nil {
		t.Fatal("a deployment with prefix s2 started on the events stream of prefix s1")
	}
	t.Log(err)
	for _, want := range []string{"S1_EVENTS", `"s1"`, `"s2"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	js, _ := jetstream.New(testenv.Conn(t, srv))
	s, err := js.Stream(ctx, "S1_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"s1.*.event.>"}) {
		t.Errorf("S1_EVENTS subjects %v after the refused start", got)
	}
}
