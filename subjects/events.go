package subjects

import (
	"strings"
	"time"
)

// The release 2 part of the grammar (DESIGN.md §10, §12, §13, §14):
//
//	<prefix>.<console>.event.alert.<alertId>.<kind...>          UAM alert event
//	<prefix>.<console>.event.action.<trackingId>.<outcome>      action outcome
//	<prefix>.<console>.event.console.token_expiring             credential health
//	<prefix>.<console>.audit.<action>.<phase>                   audit record
//
// Every event carries a deterministic CloudEvents id, sent as Nats-Msg-Id, so
// that the stream drops a repeat; the id builders below are the only place
// that spells them.

// CloudEvents types of the release 2 events.
const (
	TypeAlertCreated        = "s1bridge.alert.created"
	TypeAlertStatusChanged  = "s1bridge.alert.status_changed"
	TypeAlertResolved       = "s1bridge.alert.resolved"
	TypeAlertVerdictChanged = "s1bridge.alert.verdict_changed"

	TypeActionCompleted = "s1bridge.action.completed"
	TypeActionFailed    = "s1bridge.action.failed"
	TypeActionTimedOut  = "s1bridge.action.timed_out"

	TypeAuditRequested = "s1bridge.audit.requested"
	TypeAuditCompleted = "s1bridge.audit.completed"
	TypeAuditRefused   = "s1bridge.audit.refused"

	TypeTokenExpiring = "s1bridge.console.token_expiring"
)

// Action outcomes (DESIGN.md §13): the last subject token; OutcomeTimedOut
// is shared with the monitors.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
)

// Audit phases (DESIGN.md §12): the last token of an audit subject.
const (
	PhaseRequested = "requested"
	PhaseCompleted = "completed"
	PhaseRefused   = "refused"
)

// streamAudit names the audit stream after the prefix: S1_AUDIT.
const streamAudit = "AUDIT"

// KindTokenExpiring is the subject tail of the credential health event
// after "event.console.".
const KindTokenExpiring = "token_expiring"

// Placeholders of Template's subjects: an AsyncAPI channel parameter is
// "{name}" in the channel address.
const (
	ParamPrefix  = "{prefix}"
	ParamConsole = "{console}"
)

// Param returns the placeholder of parameter name: "{name}".
func Param(name string) string { return "{" + name + "}" }

// Template returns a builder of subject patterns rather than subjects: its
// prefix is ParamPrefix, and values given as Param placeholders are kept as
// they are (SafeToken would turn their braces into '_'). The AsyncAPI
// document and the event catalog describe subjects with it, so that they use
// the same grammar as the running connector.
func Template() Subjects { return Subjects{prefix: ParamPrefix, template: true} }

// token maps an event value to a subject token with SafeToken, except a
// placeholder of a Template builder.
func (s Subjects) token(v string) string {
	if s.template && strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		return v
	}
	return SafeToken(v)
}

// AlertEvent is the subject of a UAM alert event; kind is KindCreated, or
// KindStatus/KindVerdict with to the new lower_snake value.
func (s Subjects) AlertEvent(console, alertID, kind, to string) string {
	return s.EntityEvent(console, EntityAlert, alertID, kind, to)
}

// ActionOutcomeEvent is the subject of the outcome of a tracked action.
func (s Subjects) ActionOutcomeEvent(console, trackingID, outcome string) string {
	return s.prefix + "." + console + ".event.action." + trackingID + "." + outcome
}

// ActionOutcomeWildcard matches every outcome of one tracked action: the
// subject a tracked action's reply names.
func (s Subjects) ActionOutcomeWildcard(console, trackingID string) string {
	return s.prefix + "." + console + ".event.action." + trackingID + ".*"
}

// TokenExpiringEvent is the subject of console.token_expiring.
func (s Subjects) TokenExpiringEvent(console string) string {
	return s.prefix + "." + console + ".event.console." + KindTokenExpiring
}

// Audit is the subject of an audit record of action (dots included) in phase.
func (s Subjects) Audit(console, action, phase string) string {
	return s.prefix + "." + console + ".audit." + action + "." + phase
}

// AuditWildcard is the subject filter of the audit stream: every audit
// record of every console.
func (s Subjects) AuditWildcard() string { return s.prefix + ".*.audit.>" }

// AuditStream is the name of the audit stream of this prefix, unless
// streams.audit.name overrides it: "S1_AUDIT" for prefix "s1".
func (s Subjects) AuditStream() string { return s.upper() + "_" + streamAudit }

// ActionOutcomeType is the CloudEvents type of an action outcome.
func ActionOutcomeType(outcome string) string { return "s1bridge.action." + outcome }

// AuditType is the CloudEvents type of an audit record in phase.
func AuditType(phase string) string { return "s1bridge.audit." + phase }

// ActionOutcomeID is the id of a tracked action's outcome: one per
// tracking id.
func ActionOutcomeID(console, trackingID, outcome string) string {
	return console + "/action/" + trackingID + "/" + outcome
}

// AuditID is the id of an audit record: key is the hash of the request's
// idempotency key, so a repeated request writes nothing new.
func AuditID(console, key, phase string) string {
	return console + "/audit/" + key + "/" + phase
}

// TokenExpiringID is the id of a console.token_expiring event: one per
// expiry date and calendar day (UTC), so it is published once a day.
func TokenExpiringID(console string, expiresAt, day time.Time) string {
	return console + "/token/" + expiresAt.UTC().Format(time.RFC3339) + "/" + day.UTC().Format(time.DateOnly)
}
