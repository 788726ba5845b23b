package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/s1bridge/s1bridge/connector"
)

// Each connector replica runs in a child process (this program, or the test
// binary, run again with envReplica set), so that its memory is its own: the
// soak reads each replica's RSS and has it write heap profiles, apart from
// the NATS server, the emulator and the callers it runs itself.

// envReplica holds a child's replicaJob, as JSON.
const envReplica = "S1BRIDGE_SOAK_REPLICA"

// replicaJob is what a child needs to run one replica.
type replicaJob struct {
	Name     string        `json:"name"`
	NATSURL  string        `json:"natsUrl"`
	EmuURL   string        `json:"emuUrl"`
	LeaseTTL time.Duration `json:"leaseTtl"`
	Verbose  bool          `json:"verbose"`
	// Profiles is where the heap profiles go: on SIGUSR1 the replica
	// writes <Profiles>/<Name>-heap-<n>.pprof, n counting from 1.
	Profiles string `json:"profiles"`
}

// replicaChild reports whether this process is a replica; if so it runs it
// until SIGTERM and returns the exit status.
func replicaChild() (int, bool) {
	spec := os.Getenv(envReplica)
	if spec == "" {
		return 0, false
	}
	var job replicaJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintln(os.Stderr, "soak replica:", err)
		return 2, true
	}
	if err := runReplica(job); err != nil {
		fmt.Fprintf(os.Stderr, "soak replica %s: %v\n", job.Name, err)
		return 1, true
	}
	return 0, true
}

func runReplica(job replicaJob) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.DiscardHandler)
	if job.Verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", job.Name)
	}
	profile := make(chan os.Signal, 1)
	signal.Notify(profile, syscall.SIGUSR1)
	defer signal.Stop(profile)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-profile:
			}
			if err := writeHeap(filepath.Join(job.Profiles, fmt.Sprintf("%s-heap-%d.pprof", job.Name, n))); err != nil {
				fmt.Fprintf(os.Stderr, "soak replica %s: heap profile: %v\n", job.Name, err)
			}
		}
	}()
	c, err := connector.New(soakConfig(job.NATSURL, job.EmuURL), log, connector.WithLeaseTTL(job.LeaseTTL))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// writeHeap collects garbage, returns the free memory to the system (so
// that the RSS read after it is what the process keeps, not what its last
// burst left to the scavenger), and writes the heap profile to path,
// complete or not at all (it appears by a rename).
func writeHeap(path string) error {
	debug.FreeOSMemory() // a collection first, then the return
	// What the RSS read after this is made of, for the attribution of a
	// growth: spans in use against the live objects in them (the rest is
	// fragmentation), and the runtime's own.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "soak: %s: Go heap in use %.1f MiB holding %.1f MiB of live objects, stacks %.1f MiB, runtime %.1f MiB\n",
		filepath.Base(path), mib(int64(ms.HeapInuse)), mib(int64(ms.HeapAlloc)), mib(int64(ms.StackInuse)),
		mib(int64(ms.GCSys+ms.MSpanSys+ms.MCacheSys+ms.BuckHashSys+ms.OtherSys)))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// replica is a running child.
type replica struct {
	job      replicaJob
	cmd      *exec.Cmd
	done     chan struct{} // closed once the child has exited
	err      error         // its exit error, set before done closes
	profiles int           // heap profiles asked for so far
}

// startReplica runs job in a child process.
func startReplica(job replicaJob) (*replica, error) {
	spec, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envReplica+"="+string(spec))
	cmd.Stderr = os.Stderr
	r := &replica{job: job, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// heapProfile has the replica write a heap profile and returns its file.
func (r *replica) heapProfile(timeout time.Duration) (string, error) {
	r.profiles++
	path := filepath.Join(r.job.Profiles, fmt.Sprintf("%s-heap-%d.pprof", r.job.Name, r.profiles))
	if err := r.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		select {
		case <-r.done:
			return "", fmt.Errorf("replica %s exited: %v", r.job.Name, r.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("replica %s wrote no heap profile within %s", r.job.Name, timeout)
}

// rss is the replica's resident set size, in bytes.
func (r *replica) rss() (int64, error) {
	return procStatusOf(r.cmd.Process.Pid, "VmRSS")
}

// stop ends the replica (SIGTERM: it stops as on a rolling upgrade) and
// waits for it, killing it after grace.
func (r *replica) stop(grace time.Duration) error {
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-r.done:
		return nil
	case <-t.C:
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("replica %s did not stop within %s", r.job.Name, grace)
	}
}
