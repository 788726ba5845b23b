package emulator

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestLiveStepsMoveTheConsole(t *testing.T) {
	h := newHarness(t)
	before := map[string]ThreatState{}
	for _, id := range h.emu.IDs().Threats {
		before[id], _ = h.emu.Threat(id)
	}
	acts := h.list(PathActivities, nil).total
	alertsBefore := h.list(PathAlerts, url.Values{"incidentStatus": {"UNRESOLVED"}}).total
	for range 30 {
		h.clock.Advance(time.Second)
		h.emu.liveStep()
	}
	added, progressed, resolved, mitigated := 0, 0, 0, 0
	for _, id := range h.emu.IDs().Threats {
		now, _ := h.emu.Threat(id)
		old, existed := before[id]
		switch {
		case !existed:
			added++
		case old.IncidentStatus == statusUnresolved && now.IncidentStatus == statusInProgress:
			progressed++
		case old.IncidentStatus == statusInProgress && now.IncidentStatus == statusResolved:
			resolved++
		}
		if existed && old.MitigationStatus != now.MitigationStatus {
			mitigated++
		}
		if existed && now != old && !now.UpdatedAt.After(old.UpdatedAt) {
			t.Errorf("threat %s changed without a later updatedAt", id)
		}
	}
	if added == 0 || progressed == 0 || resolved == 0 || mitigated == 0 {
		t.Errorf("30 live steps: %d new, %d in progress, %d resolved, %d mitigated", added, progressed, resolved, mitigated)
	}
	if h.list(PathActivities, nil).total <= acts {
		t.Error("live mode logged no activity")
	}
	if h.list(PathAlerts, url.Values{"incidentStatus": {"UNRESOLVED"}}).total == alertsBefore {
		t.Error("live mode left the open alerts as they were")
	}
}

func TestRunLive(t *testing.T) {
	emu, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.RunLive(context.Background(), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("interval 0: %v", err)
	}
	n := len(emu.IDs().Threats)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- emu.RunLive(ctx, time.Millisecond) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for len(emu.IDs().Threats) == n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("live mode added no threat in 10s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunLive returned %v after cancel", err)
	}
}
