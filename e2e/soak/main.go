// Command soak runs s1bridge for a while under everything at once and checks
// that the event stream is still exactly right: an embedded nats-server
// (JetStream, temporary store) restarted on the same port and store during
// the run, the SentinelOne emulator in live mode (new threats and status
// changes all along) with random faults injected and cleared, two connector
// replicas sharing the console through the leases (each a process of its
// own, so that its memory is its own), and concurrent callers sending lists,
// updates and monitors with deadlines. The memory of every replica and of
// the soak's own process is looked at, with heap profiles, at a fifth of the
// traffic and at its end (memory.go).
//
// At the end it stops the traffic, waits for ingestion to catch up, cancels
// the monitors still running and compares the stream with the emulator:
// every event id once, every threat's created event, each threat's latest
// state as the emulator has it, each monitor's outcome once. It prints a
// summary table and exits 1 if anything is duplicated or missing.
//
//	go run ./e2e/soak -duration 10m
//	go run ./e2e/soak -duration 30s   # a quick check
//
// It is not part of `go test ./...` beyond a 3-second run that keeps it from
// rotting (soak_test.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if code, ok := replicaChild(); ok {
		os.Exit(code)
	}
	o := options{Seed: 1}
	flag.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long the traffic runs (the checks come after)")
	flag.IntVar(&o.Callers, "callers", 16, "concurrent action callers")
	flag.IntVar(&o.Replicas, "replicas", 2, "connector replicas")
	flag.IntVar(&o.Restarts, "restarts", 2, "nats-server restarts, spread over the duration")
	flag.IntVar(&o.Threats, "threats", 2000, "threats the emulator starts with (live mode adds more)")
	flag.DurationVar(&o.Live, "live", 500*time.Millisecond, "emulator live mode interval")
	flag.DurationVar(&o.FaultsAt, "faults", 3*time.Second, "how often the injected faults change")
	flag.DurationVar(&o.LeaseTTL, "lease-ttl", 3*time.Second, "lease TTL of the connectors")
	flag.Uint64Var(&o.Seed, "seed", 1, "random seed (emulator data, traffic, faults)")
	flag.StringVar(&o.Profiles, "profiles", "", "folder for the heap profiles taken at a fifth of the traffic and at its end (default: a new temporary folder)")
	verbose := flag.Bool("v", false, "log the connector replicas (warnings and up) to stderr")
	flag.Parse()
	o.Verbose = *verbose
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("soaking for %s: %d callers, %d replicas, %d nats-server restarts, faults changing every %s\n",
		o.Duration, o.Callers, o.Replicas, o.Restarts, o.FaultsAt)
	sum, err := run(ctx, o)
	if sum != nil {
		sum.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !sum.ok() {
		os.Exit(1)
	}
}
