package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/subjects"
)

// publishVersions publishes, for each of n objects, versions events on
// subjects of its own (created, then status changes), each with its version
// number as data, and returns the sequence of each object's last event.
func publishVersions(t *testing.T, st *Store, n, versions int) map[string]uint64 {
	t.Helper()
	last, err := tryPublishVersions(st, n, versions)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func tryPublishVersions(st *Store, n, versions int) (map[string]uint64, error) {
	ctx := context.Background()
	last := map[string]uint64{}
	b := st.NewBatch()
	var ids []string
	for v := range versions {
		for i := range n {
			id := strconv.Itoa(1_000_000 + i)
			kind, to := subjects.KindCreated, ""
			if v > 0 {
				kind, to = subjects.KindStatus, "s"+strconv.Itoa(v%3)
			}
			subj := st.Subjects().ThreatEvent("main", id, kind, to)
			if err := b.Publish(&nats.Msg{Subject: subj, Data: []byte(strconv.Itoa(v))}); err != nil {
				_ = b.Wait(ctx, func(int, *jetstream.PubAck, error) {})
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	var first error
	if err := b.Wait(ctx, func(i int, a *jetstream.PubAck, err error) {
		if err != nil && first == nil {
			first = fmt.Errorf("publish %d: %w", i, err)
		}
		if err == nil {
			last[ids[i]] = max(last[ids[i]], a.Sequence)
		}
	}); err != nil {
		return nil, err
	}
	return last, first
}

// checkLast checks that msgs hold, for every object of want, its last
// event (by sequence), whatever else they hold.
func checkLast(t *testing.T, st *Store, msgs []*jetstream.RawStreamMsg, want map[string]uint64) {
	t.Helper()
	got := map[string]uint64{}
	prefix := st.Subjects().ThreatEvent("main", "", "", "")
	for _, m := range msgs {
		if len(m.Subject) <= len(prefix) {
			continue
		}
		id := m.Subject[len(prefix)-1:]
		id = id[:slices.Index([]byte(id), '.')]
		got[id] = max(got[id], m.Sequence)
	}
	for id, seq := range want {
		if got[id] != seq {
			t.Fatalf("object %s: last event %d, want %d (%d messages read)", id, got[id], seq, len(msgs))
		}
	}
}

func filtersOf(st *Store, want map[string]uint64) []string {
	var f []string
	for id := range want {
		f = append(f, st.Subjects().EntityEvents("main", subjects.EntityThreat, id))
	}
	return f
}

// TestLastEvents: the last event of every object of a page, read in
// batches: more filters than one request takes (maxMultiLast), and more
// messages than the server answers at once (1024: 413, then split).
func TestLastEvents(t *testing.T) {
	st, _ := open(t, "s1")
	ctx := context.Background()
	if msgs, err := st.LastEvents(ctx, []string{"s1.main.event.threat.1.>"}); err != nil || len(msgs) != 0 {
		t.Fatalf("empty stream: %d messages, %v", len(msgs), err)
	}
	want := publishVersions(t, st, 600, 4) // 600 objects, 3 subjects each: 1800 last messages
	msgs, err := st.LastEvents(ctx, filtersOf(st, want))
	if err != nil {
		t.Fatal(err)
	}
	checkLast(t, st, msgs, want)
	// Objects without events, and one with.
	some := map[string]uint64{"1000007": want["1000007"]}
	msgs, err = st.LastEvents(ctx, append(filtersOf(st, some), "s1.main.event.threat.999.>", "s1.main.event.threat.998.>"))
	if err != nil {
		t.Fatal(err)
	}
	checkLast(t, st, msgs, some)
	if m, err := st.LastEvent(ctx, "s1.main.event.threat.999.>"); m != nil || err != nil {
		t.Errorf("LastEvent of an object without events: %v, %v", m, err)
	}
	if m, err := st.LastEvent(ctx, "s1.main.event.threat.1000007.>"); err != nil || m.Sequence != want["1000007"] {
		t.Errorf("LastEvent: %v, %v; want sequence %d", m, err, want["1000007"])
	}
}

// TestLastEventsOnACluster: on an R3 stream, LastEvents reads every object's
// last event, also right after the events are acknowledged and while a
// replica restarted behind the others catches up (a direct get may be
// answered by any replica: answers from one behind the leader are not
// taken).
func TestLastEventsOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := testparts.NATSCluster(t, 3)
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := testparts.Config(c.URL(), "http://127.0.0.1:1")
	cfg.Streams.Events.Replicas = 3
	cfg.Streams.Events.Storage = config.StorageFile
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := Open(ctx, nc, Options{Config: cfg, LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stream := cfg.EventsStreamName()
	want := map[string]uint64{}
	for round := range 3 {
		// A follower down while the next events are stored, then back.
		follower := -1
		if round > 0 {
			leader := c.StreamLeader(stream)
			for i := range c.Len() {
				if c.Name(i) != leader {
					follower = i
					break
				}
			}
			c.Stop(follower)
		}
		// The client may be reconnecting to another node: publish again
		// until every event is acknowledged (the last sequences are those
		// of the last attempt).
		var last map[string]uint64
		for try := 0; ; try++ {
			testparts.WaitFor(t, 30*time.Second, "the client to be connected", nc.IsConnected)
			if last, err = tryPublishVersions(st, 200, 2+round); err == nil {
				break
			}
			if try == 5 {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for id, seq := range last {
			want[id] = seq
		}
		if follower >= 0 {
			c.Restart(t, follower)
		}
		for range 20 {
			msgs, err := st.LastEvents(ctx, filtersOf(st, want))
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			checkLast(t, st, msgs, want)
		}
	}
}
