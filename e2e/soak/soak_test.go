package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain runs a connector replica when this binary is started as one
// (replica.go), the tests otherwise.
func TestMain(m *testing.M) {
	if code, ok := replicaChild(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestSoakBriefly runs the soak's core for 3 seconds, with one nats-server
// restart and faults changing every half second, so that the command keeps
// working between real soaks.
func TestSoakBriefly(t *testing.T) {
	sum, err := run(context.Background(), options{
		Duration: 3 * time.Second, Callers: 4, Replicas: 2, Restarts: 1, Threats: 200,
		Live: 200 * time.Millisecond, FaultsAt: 500 * time.Millisecond, LeaseTTL: 1500 * time.Millisecond, Seed: 1,
		Profiles: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sum.print(&b)
	t.Logf("\n%s", b.String())
	if !sum.ok() {
		t.Fatal("the stream does not match the emulator")
	}
	for _, l := range []memLook{sum.MemEarly, sum.MemLate} {
		if _, err := os.Stat(l.Harness.Profile); err != nil || l.Harness.RSS == 0 || l.Harness.HeapInuse == 0 {
			t.Errorf("harness's memory look %+v: %v", l.Harness, err)
		}
		if len(l.Replicas) != 2 {
			t.Errorf("memory look of %d replicas, want 2", len(l.Replicas))
		}
		for _, r := range l.Replicas {
			if _, err := os.Stat(r.Profile); err != nil || r.RSS == 0 {
				t.Errorf("replica's memory look %+v: %v", r, err)
			}
		}
	}
	for _, err := range sum.lookErrors() {
		t.Error(err)
	}
	if sum.Requests == 0 || sum.ByCode[200] == 0 || sum.Restarts != 1 || sum.FaultChanges == 0 || sum.Report.Created < 200 {
		t.Errorf("the soak did not do its work: %d requests, %d succeeded, %d restarts, %d fault changes, %d threats created",
			sum.Requests, sum.ByCode[200], sum.Restarts, sum.FaultChanges, sum.Report.Created)
	}
}
