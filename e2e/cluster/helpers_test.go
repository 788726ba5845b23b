package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// replicas is the replica count of the events stream and of the buckets.
const replicas = 3

// clusterConfig is testenv.Config for the whole cluster (every node's URL)
// with the stream and buckets replicated on every node.
func clusterConfig(cl *testenv.Cluster, emuURL string) *config.Config {
	cfg := testenv.Config(cl.URL(), emuURL)
	cfg.Streams.Events.Replicas = replicas
	return cfg
}

// ingestOn turns ingestion on (testenv.IngestOn) with a short overlap: every
// poll reads again the threats changed within it, and the tests change many.
func ingestOn(c *config.Config, pageSize int) {
	testenv.IngestOn(c)
	m := c.Consoles["main"]
	m.Ingest.Overlap = 10 * time.Second
	m.Ingest.PageSize = pageSize
	c.Consoles["main"] = m
}

// clientConn connects to every node of cl, as a SOAR platform would.
func clientConn(t testing.TB, cl *testenv.Cluster) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(cl.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamInfo asks JetStream about stream, giving up after two seconds (a
// stream without a leader does not answer).
func streamInfo(js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// checkReplicas fails unless every stream (the events stream, the buckets'
// streams) has replicas peers.
func checkReplicas(t testing.TB, js jetstream.JetStream, streams ...string) {
	t.Helper()
	for _, name := range streams {
		info, err := streamInfo(js, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.Config.Replicas != replicas || info.Cluster == nil || len(info.Cluster.Replicas) != replicas-1 {
			t.Fatalf("%s: %d replicas configured, cluster %+v; want %d", name, info.Config.Replicas, info.Cluster, replicas)
		}
	}
}

// leaderOf waits until stream has a leader other than not and returns its
// server name.
func leaderOf(t testing.TB, js jetstream.JetStream, stream, not string, timeout time.Duration) string {
	t.Helper()
	leader := ""
	testenv.WaitFor(t, timeout, "a leader of "+stream, func() bool {
		info, err := streamInfo(js, stream)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != "" && leader != not
	})
	return leader
}

// waitRejoined waits until node is a current replica of every stream again.
func waitRejoined(t testing.TB, js jetstream.JetStream, node string, timeout time.Duration, streams ...string) {
	t.Helper()
	for _, name := range streams {
		testenv.WaitFor(t, timeout, fmt.Sprintf("%s to rejoin %s", node, name), func() bool {
			info, err := streamInfo(js, name)
			if err != nil || info.Cluster == nil {
				return false
			}
			if info.Cluster.Leader == node {
				return true
			}
			for _, r := range info.Cluster.Replicas {
				if r.Name == node {
					return r.Current && !r.Offline
				}
			}
			return false
		})
	}
}

// call sends one action request to console main (connector.Call, with
// expirytime = ctx's deadline) and returns the request's id with the reply,
// so that the reply's correlationid can be checked.
func call(ctx context.Context, nc *nats.Conn, subj subjects.Subjects, action string, data []byte) (string, *connector.Reply, error) {
	r, err := connector.Call(ctx, nc, subj.Action("main", action), action, "/test/cluster", data)
	if err != nil {
		return "", nil, err
	}
	return r.RequestID, r, nil
}

// ingestStatus asks the connector for console main's ingestion progress.
func ingestStatus(nc *nats.Conn, subj subjects.Subjects) (*handlers.IngestStatusReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, r, err := call(ctx, nc, subj, "ingest.status", []byte("{}"))
	if err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	var s handlers.IngestStatusReply
	if err := json.Unmarshal(r.Event.Data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// pollSince reports whether ingestion has completed a poll that started
// after since: everything the console had at since is then in the stream.
func pollSince(nc *nats.Conn, subj subjects.Subjects, since time.Time) bool {
	s, err := ingestStatus(nc, subj)
	if err != nil || s.LagSeconds == nil {
		return false
	}
	// The status reports the age of the last complete poll's start; now
	// minus that age errs early, never late.
	started := time.Now().Add(-time.Duration(*s.LagSeconds * float64(time.Second)))
	return started.After(since)
}

// waitPollSince waits until pollSince holds.
func waitPollSince(t testing.TB, nc *nats.Conn, subj subjects.Subjects, since time.Time, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, "a complete poll started after "+since.Format("15:04:05.000"), func() bool {
		return pollSince(nc, subj, since)
	})
}

// sideBySide polls every cond on its own goroutine, so that a slow check of
// one does not delay another, until each holds or timeout passes, and
// returns how long after the call each first held (-1: never).
func sideBySide(timeout time.Duration, conds ...func() bool) []time.Duration {
	start := time.Now()
	took := make([]time.Duration, len(conds))
	var wg sync.WaitGroup
	for i, cond := range conds {
		took[i] = -1
		wg.Go(func() {
			for time.Since(start) < timeout {
				if cond() {
					took[i] = time.Since(start)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return took
}
