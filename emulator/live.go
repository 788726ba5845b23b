package emulator

import (
	"context"
	"fmt"
	"time"
)

// RunLive makes the console evolve until ctx ends, for demos: every interval
// a few threats may appear, existing ones move along their lifecycle
// (unresolved → in_progress → resolved, with analyst verdicts and
// mitigation), alerts come and get triaged, each change with its
// activity, and Unified Alerts arrive and move from NEW to IN_PROGRESS
// (with a verdict) to RESOLVED. It blocks and returns nil when ctx ends; an interval that is not
// positive is ErrInvalid.
func (e *Emulator) RunLive(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("%w: live interval must be positive", ErrInvalid)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			e.liveStep()
		}
	}
}

// liveStep is one tick of live mode.
func (e *Emulator) liveStep() {
	e.mutate(func(now int64) {
		r := e.liveRand
		for _, t := range e.newThreats(r.IntN(3), now, 0) {
			typ := actThreatMalicious
			if t.confidenceLevel != "malicious" {
				typ = actThreatSuspect
			}
			e.addActivity(activitySpec{typ: typ, at: now, agent: t.agent, threat: t, hash: t.sha1,
				primary: fmt.Sprintf("Threat %s was detected on %s.", t.name, t.agent.computerName),
				data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName}})
		}
		var moved []*threat
		all := e.threats.t.ids
		for try := 0; try < 12 && len(moved) < 3 && len(all) > 0; try++ {
			t := all[r.IntN(len(all))]
			if t.hiddenUntil != 0 || contains(moved, t) || e.pinned[t.id] {
				continue
			}
			var status, verdict, mitigation string
			switch {
			case t.mitigationStatus == mitigationNot && t.confidenceLevel == "malicious":
				mitigation = mitigationDone
			case t.incidentStatus == statusUnresolved:
				status, verdict = statusInProgress, []string{verdictSuspicious, verdictTruePositive}[r.IntN(2)]
			case t.incidentStatus == statusInProgress:
				status, verdict = statusResolved, []string{verdictTruePositive, verdictFalsePositive}[r.IntN(2)]
			default:
				continue
			}
			if e.changeThreat(t, status, verdict, mitigation, now) {
				moved = append(moved, t)
			}
		}
		e.threats.t.touch(moved, now)
		e.liveAlerts(now)
		e.liveUAM(now)
	})
}

// liveAlerts raises an alert now and then and triages an open one; the
// caller holds mu.
func (e *Emulator) liveAlerts(now int64) {
	r := e.liveRand
	agents := e.agents.t.ids
	if len(agents) == 0 {
		return
	}
	if r.IntN(3) == 0 {
		e.alerts.t.insert(e.genAlert(agents[r.IntN(len(agents))], now))
	}
	all := e.alerts.t.ids
	if len(all) == 0 {
		return
	}
	a := all[r.IntN(len(all))]
	if e.pinned[a.id] {
		return
	}
	switch a.incidentStatus {
	case statusUnresolved:
		a.incidentStatus = statusInProgress
	case statusInProgress:
		a.incidentStatus, a.analystVerdict = statusResolved, verdictTruePositive
	default:
		return
	}
	a.invalidate()
	e.alerts.t.touch([]*alert{a}, now)
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
