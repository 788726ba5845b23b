package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// mitigateAction is one value of the {action} path parameter of
// POST /threats/mitigate/{action}.
type mitigateAction struct {
	report string   // the action's name in mitigationStatus[] and in reports
	verb   string   // for descriptions: "killed", "remediated", ...
	os     []string // the agent OS types it applies to; nil: all
}

// mitigateActions are the Swagger enum of {action} (its null slot, where
// network-quarantine would be, left out): the path spells un-quarantine and
// rollback-remediation, reports say unquarantine and rollback. Remediation
// applies on Windows and macOS only, rollback on Windows only.
var mitigateActions = map[string]mitigateAction{
	"kill":                 {report: "kill", verb: "killed"},
	"quarantine":           {report: "quarantine", verb: "quarantined"},
	"un-quarantine":        {report: "unquarantine", verb: "unquarantined"},
	"remediate":            {report: "remediate", verb: "remediated", os: []string{"windows", "windows_legacy", "macos"}},
	"rollback-remediation": {report: "rollback", verb: "rolled back", os: []string{"windows", "windows_legacy"}},
	"remove_macros":        {report: "remove_macros", verb: "removed the macros of"},
	"restore_macros":       {report: "restore_macros", verb: "restored the macros of"},
}

// mitigateEnum is the order the console's validation message lists them in.
var mitigateEnum = []string{"kill", "remediate", "rollback-remediation", "quarantine", "un-quarantine", "remove_macros", "restore_macros"}

type mitigationSkip struct {
	Action      string `json:"action"`
	Description string `json:"description"`
	Reason      string `json:"reason"`
}

type mitigationDetail struct {
	Reports  []mitigationJSON `json:"reports"`
	Skipped  []mitigationSkip `json:"skipped"`
	ThreatID string           `json:"threatId"`
}

type mitigationReply struct {
	Affected int                `json:"affected"`
	Details  []mitigationDetail `json:"details"`
}

// handleThreatMitigate answers POST /threats/mitigate/{action}: every threat
// the filter matches (all of them for an empty filter, as the console does)
// gets the action, except those on an OS it does not apply to, which are
// skipped with reason not_supported and not counted in affected. For each
// accepted threat the user's command is logged at once (2011-2015), the
// report is "sent", and the agent answers later (see SetOutcome).
func (e *Emulator) handleThreatMitigate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("action")
	act, ok := mitigateActions[name]
	if !ok {
		writeError(w, validation("action: Must be one of: "+strings.Join(mitigateEnum, ", ")+"."))
		return
	}
	body, err := readAction(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	reply := mitigationReply{Details: []mitigationDetail{}}
	e.mutate(func(now int64) {
		var q *listQuery[*threat]
		if q, err = e.threats.filterQuery(body.filter, now); err != nil {
			return
		}
		var touched []*threat
		for _, t := range e.threats.selectAll(q) {
			d := mitigationDetail{ThreatID: t.idStr, Reports: []mitigationJSON{}, Skipped: []mitigationSkip{}}
			if act.os != nil && !slices.Contains(act.os, t.agent.osType) {
				d.Skipped = append(d.Skipped, mitigationSkip{Action: act.report, Reason: "not_supported",
					Description: fmt.Sprintf("%s is not supported on %s", act.report, t.agent.osType)})
				reply.Details = append(reply.Details, d)
				continue
			}
			reply.Affected++
			m := mitigationAction{action: act.report, status: "sent", started: now}
			t.mitigations = append(slices.DeleteFunc(slices.Clip(t.mitigations), func(x mitigationAction) bool { return x.action == act.report }), m)
			d.Reports = append(d.Reports, m.json())
			reply.Details = append(reply.Details, d)
			if types, ok := mitigationActivities[act.report]; ok {
				e.addActivity(activitySpec{
					typ: types.requested, at: now, agent: t.agent, threat: t, hash: t.sha1, secondary: t.filePath,
					primary: fmt.Sprintf("The management user %s issued a %s command to the threat %s on %s.", emulatorUser, act.report, t.name, t.agent.computerName),
					data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName, "fileContentHash": t.sha1},
				})
			}
			e.schedule(&command{kind: cmdMitigate, agent: t.agent, threat: t, target: act.report}, now)
			t.invalidate()
			touched = append(touched, t)
		}
		e.threats.t.touch(touched, now)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, reply)
}

// answerMitigation is the agent's mitigation report: the report entry
// moves from sent, the report activity is logged, and a success changes the
// threat's mitigationStatus (kill, quarantine, remediate and rollback leave
// it mitigated; unquarantine not_mitigated), which ingestion publishes; the
// caller holds mu.
func (e *Emulator) answerMitigation(c *command, o Outcome, at int64) {
	t := c.threat
	i := slices.IndexFunc(t.mitigations, func(m mitigationAction) bool { return m.action == c.target && m.status == "sent" })
	if i < 0 {
		return // superseded by a newer command of the same action, which will report
	}
	t.mitigations = slices.Clone(t.mitigations)
	m := &t.mitigations[i]
	m.done = at
	types, logged := mitigationActivities[c.target]
	typ, verb := types.succeeded, "successfully "+mitigateVerb(c.target)
	switch o {
	case OutcomeSuccess:
		m.status = "success"
		to := mitigationDone
		if c.target == "unquarantine" {
			to = mitigationNot
		}
		if t.mitigationStatus != to && t.mitigationStatus != mitigationBenign {
			t.mitigationStatus = to
			e.threatActivity(t, actThreatMitigated, "mitigation status", displayNames[to], at)
		}
	case OutcomePendingReboot:
		m.status = "pending-reboot"
		t.rebootRequired = true
		typ, verb = types.pendingReboot, "needs a reboot to finish the "+c.target+" of"
	default:
		m.status = "failed"
		m.notFound = o == OutcomeNotFound
		typ, verb = types.failed, "failed to "+c.target
		if m.notFound {
			verb = "could not find"
		}
	}
	if logged {
		global := map[string]string{"success": "success", "pending-reboot": "pending_reboot", "failed": "failure"}[m.status]
		e.addActivity(activitySpec{
			typ: typ, at: at, agent: t.agent, threat: t, hash: t.sha1, secondary: t.filePath,
			primary: fmt.Sprintf("The agent %s %s the threat: %s.", t.agent.computerName, verb, t.name),
			data: map[string]any{"computerName": t.agent.computerName, "fileDisplayName": t.name, "filePath": t.filePath,
				"fileContentHash": t.sha1, "globalStatus": global, "threatClassification": t.classification},
		})
	}
	e.threats.t.touch([]*threat{t}, at)
	t.invalidate()
}

// mitigateVerb is the past tense of a report action.
func mitigateVerb(report string) string {
	for _, a := range mitigateActions {
		if a.report == report {
			return a.verb
		}
	}
	return report
}
