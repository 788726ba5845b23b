package events

import (
	"encoding/json"
	"time"
)

// Field names of a change: the SentinelOne field that changed, as change.field
// and event ids carry it.
const (
	FieldIncidentStatus   = "incidentStatus"   // threats
	FieldAnalystVerdict   = "analystVerdict"   // threats and UAM alerts
	FieldMitigationStatus = "mitigationStatus" // threats
	FieldStatus           = "status"           // UAM alerts
)

// States of a tracked action's target (DESIGN.md §13).
const (
	TargetSucceeded = "succeeded"
	TargetFailed    = "failed"
	TargetPending   = "pending"
)

// Redacted replaces a secret of a request (a fetch-file password) in an
// audit record.
const Redacted = "[REDACTED]"

// The data of each event, in the order of DESIGN.md. SentinelOne objects
// (threats, alerts) are carried as the console returned them, unchanged:
// json.RawMessage, never re-encoded.
type (
	// ThreatCreated is the data of s1bridge.threat.created: a threat seen for
	// the first time, as the console returned it.
	ThreatCreated struct {
		// Threat is the SentinelOne threat object (GET /web/api/v2.1/threats), unchanged.
		Threat json.RawMessage `json:"threat" jsonschema:"type=object"`
	}

	// ThreatChanged is the data of s1bridge.threat.status_changed,
	// .resolved, .verdict_changed and .mitigation_changed: the threat after
	// the change, and the change.
	ThreatChanged struct {
		// Threat is the SentinelOne threat object after the change, unchanged.
		Threat json.RawMessage `json:"threat" jsonschema:"type=object"`
		// Change is the field that changed, with its previous and new values.
		Change Change `json:"change"`
	}

	// Change is one field's change between two versions of a threat or an
	// alert. From and To are the values in lower_snake form ("in_progress",
	// "true_positive"), "" when the console sent none.
	Change struct {
		// Field is the SentinelOne field name: incidentStatus, analystVerdict or mitigationStatus for threats; status or analystVerdict for alerts.
		Field string `json:"field" jsonschema:"enum=incidentStatus,enum=analystVerdict,enum=mitigationStatus,enum=status"`
		// From is the value before the change (lower_snake).
		From string `json:"from"`
		// To is the value after the change (lower_snake), also the last subject token.
		To string `json:"to"`
	}

	// MonitorOutcome is the data of s1bridge.monitor.resolved, .timed_out and
	// .cancelled: how a threats.monitor ended.
	MonitorOutcome struct {
		// MonitorID is the id the threats.monitor reply gave.
		MonitorID string `json:"monitorId"`
		// ThreatID is the monitored threat's id.
		ThreatID string `json:"threatId"`
		// Threat is the threat as the console had it when the monitor ended, null when the console no longer has it.
		Threat json.RawMessage `json:"threat" jsonschema:"type=object,nullable"`
		// StartedAt is when the monitor started.
		StartedAt time.Time `json:"startedAt"`
		// EndedAt is when s1bridge ended the monitor.
		EndedAt time.Time `json:"endedAt"`
	}

	// AlertCreated is the data of s1bridge.alert.created: a UAM alert seen for
	// the first time, as the console returned it.
	AlertCreated struct {
		// Alert is the UAM alert node as the console returned it, unchanged.
		Alert json.RawMessage `json:"alert" jsonschema:"type=object"`
	}

	// AlertChanged is the data of s1bridge.alert.status_changed, .resolved
	// and .verdict_changed: the alert after the change, and the change.
	AlertChanged struct {
		// Alert is the UAM alert node after the change, unchanged.
		Alert json.RawMessage `json:"alert" jsonschema:"type=object"`
		// Change is the field that changed (status or analystVerdict).
		Change Change `json:"change"`
	}

	// ActionOutcome is the data of s1bridge.action.completed, .failed and
	// .timed_out: what SentinelOne confirmed of a tracked action.
	ActionOutcome struct {
		// TrackingID is the id the action's reply gave.
		TrackingID string `json:"trackingId"`
		// Action is the action name, e.g. agents.disconnect.
		Action string `json:"action"`
		// Console is the console the action ran on.
		Console string `json:"console"`
		// Targets holds one entry per target the request named, in its order.
		Targets []ActionTarget `json:"targets"`
		// RequestedAt is when s1bridge sent the action to SentinelOne.
		RequestedAt time.Time `json:"requestedAt"`
		// EndedAt is when the outcome was decided.
		EndedAt time.Time `json:"endedAt"`
	}

	// ActionTarget is what SentinelOne confirmed of one target of a tracked
	// action.
	ActionTarget struct {
		// ID is the agent or threat id.
		ID string `json:"id"`
		// State is succeeded, failed, or pending (unconfirmed at the deadline).
		State string `json:"state" jsonschema:"enum=succeeded,enum=failed,enum=pending"`
		// At is when SentinelOne confirmed it, null while pending.
		At *time.Time `json:"at" jsonschema:"nullable"`
		// ActivityID is the SentinelOne activity that confirmed it, null when none did (pending, or confirmed by the agent's networkStatus).
		ActivityID *string `json:"activityId" jsonschema:"nullable"`
		// Message is SentinelOne's description of the result, "" when it gave none.
		Message string `json:"message"`
	}

	// AuditRecord is the data of s1bridge.audit.requested, .completed and
	// .refused: one execution (or refusal) of a mutating action.
	AuditRecord struct {
		// Action is the action name.
		Action string `json:"action"`
		// Console is the console the request addressed.
		Console string `json:"console"`
		// Request is the CloudEvents request, its secrets redacted.
		Request AuditRequest `json:"request"`
		// Targets are the ids the request named, null for an action that names none.
		Targets *AuditTargets `json:"targets" jsonschema:"nullable"`
		// DryRun is true when consoles were not called (service.dry_run).
		DryRun bool `json:"dryRun"`
		// Outcome is null in the requested record; the reply's code and what it changed otherwise.
		Outcome *AuditOutcome `json:"outcome" jsonschema:"nullable"`
		// Upstream lists the SentinelOne calls made so far, in order: [] (never null) before any.
		Upstream []UpstreamCall `json:"upstream"`
		// Replica is the s1bridge replica that wrote the record.
		Replica string `json:"replica"`
		// At is when the record was written.
		At time.Time `json:"at"`
	}

	// AuditRequest is the request an audit record is about.
	AuditRequest struct {
		// ID is the CloudEvents id.
		ID string `json:"id"`
		// Source is the CloudEvents source.
		Source string `json:"source"`
		// Type is the CloudEvents type.
		Type string `json:"type"`
		// Time is the CloudEvents time, null when the request had none.
		Time *time.Time `json:"time" jsonschema:"nullable"`
		// TraceParent is the W3C traceparent, "" when the request had none.
		TraceParent string `json:"traceparent"`
		// Data is the request data with every secret replaced by "[REDACTED]".
		Data json.RawMessage `json:"data" jsonschema:"type=object"`
	}

	// AuditTargets are the targets a mutating request named (handlers.Targeted).
	AuditTargets struct {
		// Field is the request field that named them, e.g. agentIds.
		Field string `json:"field"`
		// IDs are the ids, as given.
		IDs []string `json:"ids"`
	}

	// AuditOutcome is how a mutating request ended.
	AuditOutcome struct {
		// Code is 200, or the error code of the reply.
		Code int `json:"code" jsonschema:"minimum=200,maximum=599"`
		// Message is the error message, "" on success.
		Message string `json:"message"`
		// Affected is what SentinelOne reported as affected, null when unknown.
		Affected *int `json:"affected" jsonschema:"nullable"`
		// TrackingID is the tracking id of a tracked action, null otherwise.
		TrackingID *string `json:"trackingId" jsonschema:"nullable"`
	}

	// UpstreamCall is one SentinelOne call of an audited action.
	UpstreamCall struct {
		// Method is the HTTP method.
		Method string `json:"method"`
		// Path is the API path, without the query.
		Path string `json:"path"`
		// Status is the final HTTP status, 0 when there was no answer.
		Status int `json:"status"`
		// RequestID is SentinelOne's X-RQID, "" when it sent none.
		RequestID string `json:"requestId"`
	}

	// TokenExpiring is the data of s1bridge.console.token_expiring: the API
	// token of a console expires within 14 days.
	TokenExpiring struct {
		// Console is the console whose token expires.
		Console string `json:"console"`
		// ExpiresAt is the token's expiry, as SentinelOne reports it.
		ExpiresAt time.Time `json:"expiresAt"`
		// DaysLeft is the number of whole days until ExpiresAt.
		DaysLeft int `json:"daysLeft" jsonschema:"minimum=0"`
	}
)
