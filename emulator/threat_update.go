package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Results of a threat update, per threat.
const (
	resultUpdated    = "updated"
	resultAlreadySet = "already_set"
)

type threatResult struct {
	AnalystVerdict string `json:"analystVerdict,omitempty"`
	Result         string `json:"result"`
	ThreatID       string `json:"threatId"`
}

type threatUpdateReply struct {
	Affected int            `json:"affected"`
	Details  []threatResult `json:"details"`
}

// handleThreatIncident answers POST /threats/incident: data.incidentStatus
// (required) and data.analystVerdict (optional) set on every threat the
// filter matches. affected counts the threats whose state changed.
func (e *Emulator) handleThreatIncident(w http.ResponseWriter, r *http.Request) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	status, err := requiredEnum(body, "incidentStatus", incidentStatuses)
	if err != nil {
		writeError(w, err)
		return
	}
	verdict, err := body.dataString("analystVerdict")
	if err == nil && verdict != "" && !slices.Contains(analystVerdicts, verdict) {
		err = validation("data: analystVerdict: Must be one of: " + strings.Join(analystVerdicts, ", ") + ".")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	e.updateThreats(w, body, status, verdict, true)
}

// handleThreatVerdict answers POST /threats/analyst-verdict.
func (e *Emulator) handleThreatVerdict(w http.ResponseWriter, r *http.Request) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	verdict, err := requiredEnum(body, "analystVerdict", analystVerdicts)
	if err != nil {
		writeError(w, err)
		return
	}
	e.updateThreats(w, body, "", verdict, false)
}

func requiredEnum(body *actionBody, name string, enum []string) (string, *apiError) {
	v, err := body.dataString(name)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", validation("data: " + name + ": Missing data for required field.")
	}
	if !slices.Contains(enum, v) {
		return "", validation("data: " + name + ": Must be one of: " + strings.Join(enum, ", ") + ".")
	}
	return v, nil
}

// updateThreats applies a status and/or verdict to the filter's matches.
// With withStatus the reply's result is about the status and analystVerdict
// about the verdict; otherwise result is about the verdict.
func (e *Emulator) updateThreats(w http.ResponseWriter, body *actionBody, status, verdict string, withStatus bool) {
	reply := threatUpdateReply{Details: []threatResult{}}
	var err *apiError
	e.mutate(func(now int64) {
		var q *listQuery[*threat]
		if q, err = e.threats.filterQuery(body.filter, now); err != nil {
			return
		}
		var changed []*threat
		for _, t := range e.threats.selectAll(q) {
			d := threatResult{ThreatID: t.idStr, Result: resultAlreadySet}
			statusChanged := withStatus && t.incidentStatus != status
			verdictChanged := verdict != "" && t.analystVerdict != verdict
			switch {
			case withStatus && statusChanged:
				d.Result = resultUpdated
			case !withStatus && verdictChanged:
				d.Result = resultUpdated
			}
			if withStatus && verdict != "" {
				d.AnalystVerdict = resultAlreadySet
				if verdictChanged {
					d.AnalystVerdict = resultUpdated
				}
			}
			reply.Details = append(reply.Details, d)
			if e.changeThreat(t, status, verdict, "", now) {
				changed = append(changed, t)
			}
		}
		e.threats.t.touch(changed, now)
		reply.Affected = len(changed)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, reply)
}

// changeThreat sets the non-empty fields that differ, keeps the agent's
// active-threat count, drops cached renderings and logs an activity per
// change. It does not touch updatedAt: the caller does, in one batch. It
// reports whether anything changed; the caller holds mu.
func (e *Emulator) changeThreat(t *threat, status, verdict, mitigation string, at int64) bool {
	changed := false
	if status != "" && status != t.incidentStatus {
		wasActive := t.incidentStatus != statusResolved
		t.incidentStatus = status
		if isActive := status != statusResolved; isActive != wasActive {
			if isActive {
				t.agent.activeThreats++
			} else {
				t.agent.activeThreats--
			}
			t.agent.changed()
		}
		e.threatActivity(t, actThreatStatus, "incident status", displayNames[status], at)
		changed = true
	}
	if verdict != "" && verdict != t.analystVerdict {
		t.analystVerdict = verdict
		e.threatActivity(t, actThreatVerdict, "analyst verdict", displayNames[verdict], at)
		changed = true
	}
	if mitigation != "" && mitigation != t.mitigationStatus {
		t.mitigationStatus = mitigation
		if mitigation == mitigationDone {
			t.mitigations = append(slices.Clip(t.mitigations),
				mitigationAction{action: "kill", status: "success", started: at - 2000, done: at - 1000, counted: true},
				mitigationAction{action: "quarantine", status: "success", started: at - 1000, done: at - 1000})
		}
		e.threatActivity(t, actThreatMitigated, "mitigation status", displayNames[mitigation], at)
		changed = true
	}
	if changed {
		t.invalidate()
	}
	return changed
}

func (e *Emulator) threatActivity(t *threat, typ int, what, to string, at int64) {
	e.addActivity(activitySpec{
		typ: typ, at: at, agent: t.agent, threat: t,
		primary: fmt.Sprintf("The %s of threat %s on %s changed to %s.", what, t.name, t.agent.computerName, to),
		data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName, "newValue": to},
	})
}

// AddThreats adds n new unresolved threats created (and updated) at at
// (zero: the emulator's clock) on agents chosen by the seeded random source,
// and returns their ids, in increasing order.
func (e *Emulator) AddThreats(n int, at time.Time) []string {
	return e.AddLateThreats(n, at, time.Time{})
}

// AddLateThreats is AddThreats for threats indexed late: they stay invisible
// to every query until the clock reaches visibleAt, although their createdAt
// and updatedAt are at. A client whose watermark passed at meanwhile must
// still find them through its overlap window.
func (e *Emulator) AddLateThreats(n int, at, visibleAt time.Time) []string {
	var ids []string
	e.mutate(func(now int64) {
		ns := now
		if !at.IsZero() {
			ns = micros(at)
		}
		hide := int64(0)
		if !visibleAt.IsZero() && micros(visibleAt) > now {
			hide = micros(visibleAt)
		}
		for _, t := range e.newThreats(n, ns, hide) {
			ids = append(ids, t.idStr)
		}
	})
	return ids
}

// newThreats creates n threats at ns, hidden until hide when non-zero; the
// caller holds mu.
func (e *Emulator) newThreats(n int, ns, hide int64) []*threat {
	agents := e.agents.t.ids
	if n <= 0 || len(agents) == 0 {
		return nil
	}
	ts := make([]*threat, n)
	for i := range ts {
		t := e.genThreat(agents[e.rnd.IntN(len(agents))], ns, ns)
		t.hiddenUntil = hide
		ts[i] = t
	}
	e.threats.t.insert(ts...)
	if hide != 0 {
		e.late = append(e.late, ts...)
		e.due(hide)
	}
	return ts
}

// hide keeps t out of every query until the clock reaches until; the caller holds mu.
func (e *Emulator) hide(t *threat, until int64) {
	if t.hiddenUntil == 0 {
		e.threats.t.hidden++
		e.late = append(e.late, t)
	}
	t.hiddenUntil = until
	e.due(until)
}

// UpdateThreat changes one threat's status fields and sets its updatedAt;
// see ThreatUpdate. It returns ErrNotFound for an unknown id and ErrInvalid
// for a value outside the console's enums.
func (e *Emulator) UpdateThreat(id string, u ThreatUpdate) error {
	for _, c := range []struct {
		v    string
		enum []string
	}{{u.IncidentStatus, incidentStatuses}, {u.AnalystVerdict, analystVerdicts}, {u.MitigationStatus, mitigationStatuses}} {
		if c.v != "" && !slices.Contains(c.enum, c.v) {
			return fmt.Errorf("%w: %q is not one of %v", ErrInvalid, c.v, c.enum)
		}
	}
	err := fmt.Errorf("%w: threat %s", ErrNotFound, id)
	e.mutate(func(now int64) {
		t, ok := lookup(e.threats.t, id)
		if !ok {
			return
		}
		err = nil
		at := now
		if !u.At.IsZero() {
			at = micros(u.At)
		}
		e.changeThreat(t, u.IncidentStatus, u.AnalystVerdict, u.MitigationStatus, at)
		e.threats.t.touch([]*threat{t}, at)
		t.invalidate()
		if !u.VisibleAt.IsZero() && micros(u.VisibleAt) > now {
			e.hide(t, micros(u.VisibleAt))
		}
	})
	return err
}

// Threat returns a threat's current state, whether or not queries see it yet.
func (e *Emulator) Threat(id string) (ThreatState, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := lookup(e.threats.t, id)
	if !ok {
		return ThreatState{}, false
	}
	return ThreatState{
		ID: t.idStr, AgentID: t.agent.idStr, SHA1: t.sha1, IncidentStatus: t.incidentStatus,
		AnalystVerdict: t.analystVerdict, MitigationStatus: t.mitigationStatus,
		CreatedAt: time.Unix(0, t.created).UTC(), UpdatedAt: time.Unix(0, t.updated).UTC(),
	}, true
}

// ThreatsOn returns up to n threats that queries see, in id order, on agents
// running osType, only on active agents when active is set: what a test
// picks to act on (every mitigation applies to a threat on an active
// Windows agent).
func (e *Emulator) ThreatsOn(osType string, active bool, n int) []string {
	e.settle()
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []string
	for _, id := range sortedIDs(e.threats.t) {
		if len(out) == n {
			break
		}
		t, _ := lookup(e.threats.t, id)
		if t.hiddenUntil == 0 && t.agent.osType == osType && (!active || t.agent.isActive) {
			out = append(out, id)
		}
	}
	return out
}
