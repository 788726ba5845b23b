package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// path is one way of doing the measured operation: s1bridge, or a baseline.
type path struct {
	name string
	call func(context.Context) error
	// forCaller, when set, gives concurrent caller i (from 0) a call of its
	// own, e.g. on a NATS connection of its own, as each caller of the
	// direct HTTP path has a connection of its own from the client's pool.
	forCaller func(i int) func(context.Context) error
}

// caller returns the path as concurrent caller i makes it.
func (p path) caller(i int) path {
	if p.forCaller != nil {
		p.call = p.forCaller(i)
	}
	return p
}

// callTimeout bounds one call of any path, so a wedged run fails instead of
// hanging the benchmark.
const callTimeout = 10 * time.Second

// do runs one call with callTimeout.
func (p path) do(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := p.call(ctx); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// stats summarises a set of call latencies and, for a load run, the rate.
type stats struct {
	n        int
	p50, p99 time.Duration
	perSec   float64 // completed calls per second; 0 for sequential runs
}

// summarize sorts d in place and returns its percentiles.
func summarize(d []time.Duration) stats {
	slices.Sort(d)
	return stats{n: len(d), p50: percentile(d, 50), p99: percentile(d, 99)}
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value with at least p% of the values at or below it.
// It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// warm calls every path n times, sequentially, so that connection pools,
// the emulator's cache of rendered JSON and the heap are in their steady
// state before anything is timed.
func warm(ctx context.Context, paths []path, n int) error {
	for _, p := range paths {
		for range n {
			if err := p.do(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// sequential times calls made one after another, perRound calls of each
// path per round, for rounds rounds. Interleaving the paths spreads the
// noise of a shared machine (another tenant, a GC of a busy heap) over all
// of them instead of letting it land on whichever ran at the wrong moment.
func sequential(ctx context.Context, paths []path, rounds, perRound int) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(paths))
	for i := range out {
		out[i] = make([]time.Duration, 0, rounds*perRound)
	}
	for range rounds {
		for i, p := range paths {
			for range perRound {
				start := time.Now()
				if err := p.do(ctx); err != nil {
					return nil, err
				}
				out[i] = append(out[i], time.Since(start))
			}
		}
	}
	return out, nil
}

// load runs callers goroutines that call p back to back until d has passed,
// and returns the latency percentiles of every call and the completed calls
// per second. Elapsed time runs until the last call in flight at the
// deadline has finished, so the rate is not inflated by calls cut short.
func load(ctx context.Context, p path, callers int, d time.Duration) (stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		stop     atomic.Bool
	)
	start := time.Now()
	end := start.Add(d)
	for i := range callers {
		p := p.caller(i)
		wg.Go(func() {
			// A context of its own: the calls' timeouts then register
			// with it, not all with one parent (whose lock they would
			// contend for).
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var mine []time.Duration
			for !stop.Load() && time.Now().Before(end) {
				t := time.Now()
				if err := p.do(ctx); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					stop.Store(true)
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return stats{}, firstErr
	}
	if len(all) == 0 {
		return stats{}, errors.New(p.name + ": no call completed")
	}
	s := summarize(all)
	s.perSec = float64(len(all)) / elapsed.Seconds()
	return s, nil
}

// cpuTime is the CPU time (user + system) the calling process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads the peak resident set size (VmHWM) of process pid from
// /proc/<pid>/status, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(f)
}

// parseVmHWM finds "VmHWM:  <n> kB" in the text of a /proc/<pid>/status
// file and returns n in bytes.
func parseVmHWM(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM line")
}

// machine describes where the numbers come from, for the table's header.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, GOMAXPROCS %d, %s/%s, %s", model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// fmtDur prints a latency with three significant digits in a unit that
// suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g s", d.Seconds())
	}
}

// fmtCount prints a rate or count rounded to a whole number, with thousands
// separators.
func fmtCount(f float64) string {
	n := int64(math.Round(f))
	s := strconv.FormatInt(max(n, -n), 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtMiB prints a byte count in MiB.
func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// verdict says whether a measured value meets its target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// userHZ is the unit of /proc/stat's counters: USER_HZ, 100 on every Linux
// architecture Go supports (the kernel's own HZ does not leak into it).
const userHZ = 100

// hostBusy returns the CPU time the whole machine has spent busy (user,
// nice, system, irq, softirq and steal: everything but idle and iowait)
// since boot, from /proc/stat.
func hostBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseHostBusy(string(b))
}

// parseHostBusy reads the aggregate "cpu" line of /proc/stat.
func parseHostBusy(stat string) (time.Duration, error) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var ticks int64
		// user nice system idle iowait irq softirq steal: skip idle (4)
		// and iowait (5).
		for i, v := range f[1:9] {
			if i == 3 || i == 4 {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: %q: %w", v, err)
			}
			ticks += n
		}
		return time.Duration(ticks) * time.Second / userHZ, nil
	}
	return 0, errors.New("/proc/stat: no aggregate cpu line")
}

// others measures how much CPU the rest of the machine (other tenants of a
// shared host, other test binaries) took while a measurement ran: the
// numbers of a run that competed for the CPUs mean less, and the table says
// so.
type others struct {
	start      time.Time
	busy, self time.Duration
}

func startOthers() others {
	busy, _ := hostBusy()
	return others{start: time.Now(), busy: busy, self: cpuTime()}
}

// own returns the CPUs, on average, this process used since o was taken.
func (o others) own() float64 {
	return (cpuTime() - o.self).Seconds() / time.Since(o.start).Seconds()
}

// cpus returns the CPUs, on average, that processes other than this one and
// the given children used since o was taken.
func (o others) cpus(children ...time.Duration) float64 {
	busy, err := hostBusy()
	if err != nil {
		return math.NaN()
	}
	d := busy - o.busy - (cpuTime() - o.self)
	for _, c := range children {
		d -= c
	}
	return max(d.Seconds(), 0) / time.Since(o.start).Seconds()
}
