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
// at its end (minute 10). Each look records the RSS of every connector
// replica (each a process of its own, replica.go) and of the soak's own
// process (the NATS server, the emulator and the callers: the harness), and
// a heap profile of each, so that any growth between the two can be
// attributed (go tool pprof -diff_base early.pprof late.pprof).

// memLook is one look: the harness and every replica.
type memLook struct {
	Harness  memSnapshot
	Replicas []replicaMem
}

// replicaMem is one replica's memory at a look: its RSS as the look finds
// it, which moves with the garbage of the last burst of traffic (a list of
// 1,000 threats is megabytes, times the callers at once) until the
// scavenger returns it, and Retained, its RSS once it has collected and
// returned its free memory (writing the heap profile does): what it keeps.
type replicaMem struct {
	Name     string
	RSS      int64
	Retained int64
	Profile  string
	Err      error
}

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
func procStatus(key string) (int64, error) { return procStatusFile("/proc/self/status", key) }

// procStatusOf is procStatus of process pid.
func procStatusOf(pid int, key string) (int64, error) {
	return procStatusFile("/proc/"+strconv.Itoa(pid)+"/status", key)
}

func procStatusFile(path, key string) (int64, error) {
	f, err := os.Open(path)
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

// look takes one look, naming its files with when ("early", "late").
func (s *soak) look(at time.Duration, when string) memLook {
	var l memLook
	for _, r := range s.replicas {
		m := replicaMem{Name: r.job.Name}
		m.RSS, m.Err = r.rss()
		if m.Err == nil {
			var p string
			if p, m.Err = r.heapProfile(30 * time.Second); m.Err == nil {
				m.Profile = filepath.Join(s.o.Profiles, r.job.Name+"-heap-"+when+".pprof")
				m.Err = os.Rename(p, m.Profile)
			}
			if m.Err == nil {
				m.Retained, m.Err = r.rss()
			}
		}
		l.Replicas = append(l.Replicas, m)
	}
	var err error
	if l.Harness, err = snapshot(at, s.o.Profiles, "harness-heap-"+when+".pprof"); err != nil {
		l.Replicas = append(l.Replicas, replicaMem{Name: "harness", Err: err})
	}
	return l
}

// earlySnapshot takes the first look at a fifth of the traffic, unless ctx
// ends first.
func (s *soak) earlySnapshot(ctx context.Context, began time.Time) {
	t := time.NewTimer(time.Until(began.Add(s.o.Duration / 5)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	l := s.look(time.Since(began), "early")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.MemEarly = l
}

// lateSnapshot takes the second look, at the end of the traffic.
func (s *soak) lateSnapshot(began time.Time) {
	l := s.look(time.Since(began), "late")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum.MemLate = l
}

// growth returns each replica's RSS growth from the early look to the late
// one, as a fraction, as found and retained, and the harness's; ok is false
// without both looks.
func (s *summary) growth() (replicas, retained []float64, harness float64, ok bool) {
	e, l := s.MemEarly, s.MemLate
	if len(e.Replicas) == 0 || len(e.Replicas) != len(l.Replicas) || e.Harness.RSS == 0 || l.Harness.RSS == 0 {
		return nil, nil, 0, false
	}
	for i := range e.Replicas {
		if e.Replicas[i].RSS == 0 || e.Replicas[i].Retained == 0 {
			return nil, nil, 0, false
		}
		replicas = append(replicas, float64(l.Replicas[i].RSS-e.Replicas[i].RSS)/float64(e.Replicas[i].RSS))
		retained = append(retained, float64(l.Replicas[i].Retained-e.Replicas[i].Retained)/float64(e.Replicas[i].Retained))
	}
	return replicas, retained, float64(l.Harness.RSS-e.Harness.RSS) / float64(e.Harness.RSS), true
}

// lookErrors lists what went wrong in the looks.
func (s *summary) lookErrors() []error {
	var errs []error
	for _, l := range []memLook{s.MemEarly, s.MemLate} {
		for _, r := range l.Replicas {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, r.Err))
			}
		}
	}
	return errs
}
