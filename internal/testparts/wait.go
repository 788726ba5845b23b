package testparts

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/s1bridge/s1bridge/config"
)

// WaitFor polls cond every 50 ms until it holds, and fails t naming what it
// waited for when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers: a
// place to capture logs or a child's output that a test reads meanwhile.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// IngestOn turns on ingestion of console main with a 300 ms interval, a
// first fetch that reaches every seeded threat, and a 5 minute overlap.
func IngestOn(c *config.Config) {
	m := c.Consoles["main"]
	m.Ingest.Enabled = true
	m.Ingest.FirstFetch = 20 * 365 * 24 * time.Hour
	m.Ingest.Interval = 300 * time.Millisecond
	m.Ingest.Overlap = 5 * time.Minute
	c.Consoles["main"] = m
}

// StreamMsgs is the number of messages in stream, or 0 when it cannot be
// read within two seconds (a server restarting, a stream without a leader).
func StreamMsgs(nc *nats.Conn, stream string) uint64 {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}
