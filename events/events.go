// Package events is the catalog of what s1bridge publishes: the data type of
// every event (threats, monitors, UAM alerts, action outcomes, audit records,
// credential health) and All, the one table of event kinds, as handlers.All
// is of actions. The AsyncAPI generator (package schema) reads it; the
// runtime packages encode their events with these types.
//
// Every event is a binary-mode CloudEvent (DESIGN.md §6) with source
// /s1bridge/<console>, a deterministic id sent as Nats-Msg-Id, and data as
// below. Subjects, types and ids are spelled by package subjects.
package events

import (
	"slices"
	"strings"
	"time"

	"github.com/s1bridge/s1bridge/subjects"
)

// Streams that hold events.
const (
	// StreamEvents is the events stream: streams.events.name, default
	// <PREFIX>_EVENTS, subjects <prefix>.*.event.>.
	StreamEvents = "events"
	// StreamAudit is the audit stream: streams.audit.name, default
	// <PREFIX>_AUDIT, subjects <prefix>.*.audit.>.
	StreamAudit = "audit"
)

// Kind describes one kind of event: where it is published and what it
// carries. The values come from All.
type Kind struct {
	// Name identifies the kind: the subject tail as DESIGN.md writes it,
	// e.g. "threat.status" or "audit.requested".
	Name string
	// Stream is StreamEvents or StreamAudit.
	Stream string
	// Subject is the subject pattern, with {prefix}, {console} and the
	// kind's Params as placeholders (subjects.Template).
	Subject string
	// Params describes the placeholders of Subject other than {prefix} and
	// {console}, in the order they appear.
	Params []Param
	// Types are the CloudEvents types of the kind; most have one.
	Types []string
	// SubjectAttr says what the CloudEvents subject attribute holds.
	SubjectAttr string
	// Time says what the CloudEvents time attribute holds.
	Time string
	// ID is the pattern of the CloudEvents id (also the Nats-Msg-Id).
	ID string
	// Data is a zero value of the data type, for documentation and reflection.
	Data any
	// Description says when the event is published.
	Description string
}

// Param is a placeholder of a subject pattern.
type Param struct {
	Name        string   // without braces
	Description string   // what the token holds
	Enum        []string // the values it takes, when they are known in advance
}

// Placeholders of the subjects and ids below.
var (
	pThreatID   = Param{Name: "threatId", Description: "The SentinelOne threat id."}
	pAlertID    = Param{Name: "alertId", Description: "The UAM alert id."}
	pMonitorID  = Param{Name: "monitorId", Description: "The monitorId of the threats.monitor reply."}
	pTrackingID = Param{Name: "trackingId", Description: "The trackingId of the tracked action's reply."}
	pAction     = Param{Name: "action", Description: "The mutating action, e.g. agents.disconnect (its dots are subject token separators)."}
)

// to is the {to} placeholder: the new value of a field, in lower_snake and
// made subject-safe (subjects.SafeToken: "none" when empty).
func to(field, examples string) Param {
	return Param{Name: "to", Description: "The new " + field + " in lower_snake form, e.g. " + examples + "; none when empty."}
}

// sentinelTime stands for a timestamp in id patterns: idPattern replaces
// its formatted form by a placeholder.
var sentinelTime = time.Date(2001, 2, 3, 4, 5, 6, 789012000, time.UTC)

// idPattern returns the id build makes of sentinelTime, with the time
// replaced by {name}.
func idPattern(name string, build func(time.Time) string) string {
	id := build(sentinelTime)
	for _, layout := range []string{"2006-01-02T15:04:05.000000Z", time.RFC3339, time.DateOnly} {
		id = strings.Replace(id, sentinelTime.Format(layout), subjects.Param(name), 1)
	}
	return id
}

// All returns every kind of event s1bridge publishes, in the order of
// DESIGN.md (§6, §10, §13, §12, §14). Each call builds a new slice, which
// the caller may change.
func All() []Kind {
	tpl := subjects.Template()
	c := subjects.ParamConsole
	ph := subjects.Param
	threatID, alertID := ph(pThreatID.Name), ph(pAlertID.Name)
	change := func(field string) func(time.Time) string {
		return func(at time.Time) string {
			return subjects.ChangeEventID(c, subjects.EntityThreat, threatID, field, "{to}", at)
		}
	}
	alertChange := func(field string) func(time.Time) string {
		return func(at time.Time) string {
			return subjects.ChangeEventID(c, subjects.EntityAlert, alertID, field, "{to}", at)
		}
	}
	const (
		threatSubject  = "The threat id."
		alertSubject   = "The alert id."
		monitorSubject = "The monitored threat's id."
		updatedAt      = "The SentinelOne updatedAt of the change."
	)
	kinds := []Kind{
		{
			Name: "threat.created", Subject: tpl.ThreatEvent(c, threatID, subjects.KindCreated, ""),
			Params: []Param{pThreatID}, Types: []string{subjects.TypeThreatCreated},
			SubjectAttr: threatSubject, Time: "The threat's createdAt.",
			ID: subjects.CreatedEventID(c, subjects.EntityThreat, threatID), Data: ThreatCreated{},
			Description: "A threat seen for the first time.",
		},
		{
			Name: "threat.status", Subject: tpl.ThreatEvent(c, threatID, subjects.KindStatus, "{to}"),
			Params:      []Param{pThreatID, to("incidentStatus", "in_progress or resolved")},
			Types:       []string{subjects.TypeThreatStatusChanged, subjects.TypeThreatResolved},
			SubjectAttr: threatSubject, Time: updatedAt,
			ID: idPattern("updatedAt", change(FieldIncidentStatus)), Data: ThreatChanged{},
			Description: "A threat's incidentStatus changed; the type is s1bridge.threat.resolved when it changed to resolved.",
		},
		{
			Name: "threat.verdict", Subject: tpl.ThreatEvent(c, threatID, subjects.KindVerdict, "{to}"),
			Params:      []Param{pThreatID, to("analystVerdict", "true_positive or false_positive")},
			Types:       []string{subjects.TypeThreatVerdictChanged},
			SubjectAttr: threatSubject, Time: updatedAt,
			ID: idPattern("updatedAt", change(FieldAnalystVerdict)), Data: ThreatChanged{},
			Description: "A threat's analystVerdict changed.",
		},
		{
			Name: "threat.mitigation", Subject: tpl.ThreatEvent(c, threatID, subjects.KindMitigation, "{to}"),
			Params:      []Param{pThreatID, to("mitigationStatus", "mitigated or not_mitigated")},
			Types:       []string{subjects.TypeThreatMitigationChanged},
			SubjectAttr: threatSubject, Time: updatedAt,
			ID: idPattern("updatedAt", change(FieldMitigationStatus)), Data: ThreatChanged{},
			Description: "A threat's mitigationStatus changed.",
		},
	}
	for _, o := range []struct{ outcome, time, desc string }{
		{subjects.OutcomeResolved, "The updatedAt at which the threat was seen resolved.", "The monitored threat was resolved."},
		{subjects.OutcomeTimedOut, "The monitor's deadline.", "The monitor's timeout passed before the threat was resolved."},
		{subjects.OutcomeCancelled, "When monitors.cancel ended the monitor.", "The monitor was cancelled with monitors.cancel."},
	} {
		mid := ph(pMonitorID.Name)
		kinds = append(kinds, Kind{
			Name: "monitor." + o.outcome, Subject: tpl.MonitorEvent(c, mid, o.outcome),
			Params: []Param{pMonitorID}, Types: []string{subjects.MonitorType(o.outcome)},
			SubjectAttr: monitorSubject, Time: o.time,
			ID: subjects.MonitorEventID(c, mid, o.outcome), Data: MonitorOutcome{},
			Description: o.desc + " Published once per monitor.",
		})
	}
	kinds = append(kinds,
		Kind{
			Name: "alert.created", Subject: tpl.AlertEvent(c, alertID, subjects.KindCreated, ""),
			Params: []Param{pAlertID}, Types: []string{subjects.TypeAlertCreated},
			SubjectAttr: alertSubject, Time: "The alert's detectedAt.",
			ID: subjects.CreatedEventID(c, subjects.EntityAlert, alertID), Data: AlertCreated{},
			Description: "A UAM alert seen for the first time.",
		},
		Kind{
			Name: "alert.status", Subject: tpl.AlertEvent(c, alertID, subjects.KindStatus, "{to}"),
			Params:      []Param{pAlertID, to("status", "in_progress or resolved")},
			Types:       []string{subjects.TypeAlertStatusChanged, subjects.TypeAlertResolved},
			SubjectAttr: alertSubject, Time: "The alert's updatedAt after the change.",
			ID: idPattern("updatedAt", alertChange(FieldStatus)), Data: AlertChanged{},
			Description: "A UAM alert's status changed; the type is s1bridge.alert.resolved when it changed to resolved.",
		},
		Kind{
			Name: "alert.verdict", Subject: tpl.AlertEvent(c, alertID, subjects.KindVerdict, "{to}"),
			Params:      []Param{pAlertID, to("analystVerdict", "true_positive_malware")},
			Types:       []string{subjects.TypeAlertVerdictChanged},
			SubjectAttr: alertSubject, Time: "The alert's updatedAt after the change.",
			ID: idPattern("updatedAt", alertChange(FieldAnalystVerdict)), Data: AlertChanged{},
			Description: "A UAM alert's analyst verdict changed.",
		},
	)
	for _, o := range []struct{ outcome, desc string }{
		{subjects.OutcomeCompleted, "Every target of a tracked action was confirmed done."},
		{subjects.OutcomeFailed, "Every target of a tracked action was confirmed, and at least one failed."},
		{subjects.OutcomeTimedOut, "The tracking deadline passed with targets unconfirmed."},
	} {
		tid := ph(pTrackingID.Name)
		kinds = append(kinds, Kind{
			Name: "action." + o.outcome, Subject: tpl.ActionOutcomeEvent(c, tid, o.outcome),
			Params: []Param{pTrackingID}, Types: []string{subjects.ActionOutcomeType(o.outcome)},
			SubjectAttr: "The tracking id.", Time: "When the outcome happened.",
			ID: subjects.ActionOutcomeID(c, tid, o.outcome), Data: ActionOutcome{},
			Description: o.desc + " Published once per tracking id.",
		})
	}
	for _, p := range []struct{ phase, desc string }{
		{subjects.PhaseRequested, "A mutating request passed validation; written before anything is sent to SentinelOne (fail closed: no record, no call)."},
		{subjects.PhaseCompleted, "The outcome of a mutating request is known; written before the reply is sent."},
		{subjects.PhaseRefused, "A mutating request was refused before execution (400, 403, 408 or 409)."},
	} {
		key := ph("key")
		kinds = append(kinds, Kind{
			Name: "audit." + p.phase, Stream: StreamAudit, Subject: tpl.Audit(c, ph(pAction.Name), p.phase),
			Params: []Param{pAction}, Types: []string{subjects.AuditType(p.phase)},
			SubjectAttr: "The action name.", Time: "When the record was written.",
			ID: subjects.AuditID(c, key, p.phase), Data: AuditRecord{},
			Description: p.desc + " {key} in the id is the hash of the request's idempotency key (console, source, id).",
		})
	}
	kinds = append(kinds, Kind{
		Name: "console.token_expiring", Subject: tpl.TokenExpiringEvent(c),
		Types:       []string{subjects.TypeTokenExpiring},
		SubjectAttr: "The console name.", Time: "When the expiry was read.",
		ID: idPattern("date", func(at time.Time) string {
			return strings.Replace(subjects.TokenExpiringID(c, at, at), at.Format(time.RFC3339), subjects.Param("expiresAt"), 1)
		}),
		Data:        TokenExpiring{},
		Description: "The console's API token expires within 14 days; published once a day (UTC) until it is replaced.",
	})
	for i := range kinds {
		if kinds[i].Stream == "" {
			kinds[i].Stream = StreamEvents
		}
	}
	return kinds
}

// ByType returns the kind of events of CloudEvents type ceType.
func ByType(ceType string) (Kind, bool) {
	for _, k := range All() {
		if slices.Contains(k.Types, ceType) {
			return k, true
		}
	}
	return Kind{}, false
}

// Types returns the CloudEvents types of every event, sorted.
func Types() []string {
	var out []string
	for _, k := range All() {
		out = append(out, k.Types...)
	}
	slices.Sort(out)
	return out
}
