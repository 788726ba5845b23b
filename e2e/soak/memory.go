package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The soak's memory is looked at twice: at a fifth of the traffic (minute 2
// of 10, once everything has warmed up: caches, pools, goroutine stacks) and
// at its end (minute 10). Each look records the RSS and the Go heap and
// writes a heap profile, so that any growth between the two can be
// attributed (go tool pprof -diff_base early.pprof late.pprof).

// memSnapshot is one look at the process's memory.
type memSnapshot struct {
	At         time.Duration // since the traffic began
	RSS        int64         // VmRSS, bytes
	HeapInuse  uint64        // after a GC
	HeapObject uint64        // live objects
	StackInuse uint64
	Goroutines int
	Profile    string // the heap profile's file
}

func (m memSnapshot) String() string {
	return fmt.Sprintf("at %s: RSS %.1f MiB, Go heap in use %.1f MiB (%d objects), stacks %.1f MiB, %d goroutines; heap profile %s",
		m.At.Round(time.Second), mib(m.RSS), mib(int64(m.HeapInuse)), m.HeapObject, mib(int64(m.StackInuse)), m.Goroutines, m.Profile)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// snapshot reads the RSS, then collects garbage and writes the heap profile
// to dir/name.
func snapshot(at time.Duration, dir, name string) (memSnapshot, error) {
	s := memSnapshot{At: at, Goroutines: runtime.NumGoroutine()}
	rss, err := procStatus("VmRSS")
	if err != nil {
		return s, err
	}
	s.RSS = rss
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapInuse, s.HeapObject, s.StackInuse = ms.HeapInuse, ms.HeapObjects, ms.StackInuse
	s.Profile = filepath.Join(dir, name)
	f, err := os.Create(s.Profile)
	if err != nil {
		return s, err
	}
	defer f.Close()
	return s, pprof.Lookup("heap").WriteTo(f, 0)
}

// procStatus reads a "<key>: <n> kB" line of /proc/self/status, in bytes.
func procStatus(key string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", key)
}

// earlySnapshot takes the first look at a fifth of the traffic, unless ctx
// ends first.
func (s *soak) earlySnapshot(ctx context.Context, began time.Time) {
	at := s.o.Duration / 5
	t := time.NewTimer(time.Until(began.Add(at)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	m, err := snapshot(time.Since(began), s.o.Profiles, "soak-heap-early.pprof")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.MemEarly, s.sum.MemErr = m, err
}

// lateSnapshot takes the second look, at the end of the traffic.
func (s *soak) lateSnapshot(began time.Time) {
	m, err := snapshot(time.Since(began), s.o.Profiles, "soak-heap-late.pprof")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.MemLate = m
	if s.sum.MemErr == nil {
		s.sum.MemErr = err
	}
}

// growth is the RSS growth from the early look to the late one, as a
// fraction; ok is false without both.
func (s *summary) growth() (g float64, ok bool) {
	if s.MemEarly.RSS == 0 || s.MemLate.RSS == 0 {
		return 0, false
	}
	return float64(s.MemLate.RSS-s.MemEarly.RSS) / float64(s.MemEarly.RSS), true
}
