// Package subjects is the s1bridge wire protocol, defined once: the subject
// grammar, the CloudEvents types and extension names, the NATS header names,
// and the names of the stream and key-value buckets. No other package spells a
// subject, a header or a type by hand; they all call this one.
//
// The grammar (DESIGN.md §3):
//
//	<prefix>.<console>.action.<action>                      action request
//	<prefix>.<console>.event.threat.<threatId>.<kind...>     threat event
//	<prefix>.<console>.event.monitor.<monitorId>.<outcome>   monitor event
package subjects

import (
	"fmt"
	"regexp"
	"strings"
)

// Service discovery, as seen by `nats micro ls`.
const (
	// ServiceName is the NATS micro service name every replica registers.
	ServiceName = "s1bridge"
	// ServiceDescription is the one-line description shown by `nats micro info`.
	ServiceDescription = "SentinelOne actions and threat events over NATS"
)

// Endpoint metadata keys (DESIGN.md §8, Discovery).
const (
	MetaConsole      = "console"
	MetaAction       = "action"
	MetaRequestType  = "request_type"
	MetaResponseType = "response_type"
	MetaMutating     = "mutating"
	MetaDescription  = "description"
)

// CloudEvents spec version and the content types of the NATS binding.
const (
	SpecVersion           = "1.0"
	ContentTypeJSON       = "application/json"
	ContentTypeCloudEvent = "application/cloudevents+json"
)

// NATS header names. Binary-mode CloudEvents attributes are "ce-" plus the
// attribute name, written lower case and read case-insensitively.
const (
	HeaderContentType = "Content-Type"
	HeaderCEPrefix    = "ce-"
	// HeaderErrorCode and HeaderError are the NATS micro error headers
	// (the same names as micro.ErrorCodeHeader and micro.ErrorHeader).
	HeaderErrorCode = "Nats-Service-Error-Code"
	HeaderError     = "Nats-Service-Error"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
)

// CloudEvents attribute and extension names used by s1bridge.
const (
	AttrSpecVersion     = "specversion"
	AttrID              = "id"
	AttrSource          = "source"
	AttrType            = "type"
	AttrSubject         = "subject"
	AttrTime            = "time"
	AttrDataContentType = "datacontenttype"
	AttrDataSchema      = "dataschema"
	ExtCorrelationID    = "correlationid"
	ExtExpiryTime       = "expirytime"
	ExtTraceParent      = "traceparent"
	ExtTraceState       = "tracestate"
)

// CloudEvents type namespace and the fixed types.
const (
	TypePrefix = "s1bridge."
	// TypeError is the type of every error reply.
	TypeError = "s1bridge.error"

	TypeThreatCreated           = "s1bridge.threat.created"
	TypeThreatStatusChanged     = "s1bridge.threat.status_changed"
	TypeThreatResolved          = "s1bridge.threat.resolved"
	TypeThreatVerdictChanged    = "s1bridge.threat.verdict_changed"
	TypeThreatMitigationChanged = "s1bridge.threat.mitigation_changed"
	typeMonitorPrefix           = "s1bridge.monitor."
)

// Monitor outcomes: the last subject token and the suffix of the event type.
const (
	OutcomeResolved  = "resolved"
	OutcomeTimedOut  = "timed_out"
	OutcomeCancelled = "cancelled"
)

// Threat event kinds (the subject token after the threat id).
const (
	KindCreated    = "created"
	KindStatus     = "status"
	KindVerdict    = "verdict"
	KindMitigation = "mitigation"
)

// Default names of the JetStream stream and KV buckets.
const (
	DefaultEventsStream = "S1_EVENTS"
	BucketState         = "S1_STATE"    // watermarks and per-threat state
	BucketLeases        = "S1_LEASES"   // one lease per console and role, with a TTL
	BucketMonitors      = "S1_MONITORS" // active monitors
	BucketIdempotency   = "S1_IDEMPOTENCY"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidToken reports whether s may stand as one subject token: non-empty and
// made of [A-Za-z0-9_-] only (DESIGN.md §3).
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// Subjects builds the subjects of one prefix. The zero value is not usable;
// call New.
type Subjects struct {
	prefix string
	// template: the builder of Template, whose values are {name}
	// placeholders that SafeToken must leave as they are.
	template bool
}

// New returns the subject builder for prefix, or an error when the prefix is
// not one NATS-safe token.
func New(prefix string) (Subjects, error) {
	if !ValidToken(prefix) {
		return Subjects{}, fmt.Errorf("subjects: prefix %q is not a NATS-safe token [A-Za-z0-9_-]", prefix)
	}
	return Subjects{prefix: prefix}, nil
}

// Prefix returns the first token of every subject.
func (s Subjects) Prefix() string { return s.prefix }

// Action is the request subject of action on console.
func (s Subjects) Action(console, action string) string {
	return s.prefix + "." + console + ".action." + action
}

// ActionWildcard matches every action request of every console.
func (s Subjects) ActionWildcard() string { return s.prefix + ".*.action.>" }

// EventsWildcard is the subject filter of the events stream: every event of
// every console.
func (s Subjects) EventsWildcard() string { return s.prefix + ".*.event.>" }

// ConsoleEvents matches every event of one console.
func (s Subjects) ConsoleEvents(console string) string {
	return s.prefix + "." + console + ".event.>"
}

// ThreatEvent is the subject of a threat event; kind is KindCreated or
// KindStatus/KindVerdict/KindMitigation with to the new value.
func (s Subjects) ThreatEvent(console, threatID, kind, to string) string {
	subj := s.prefix + "." + console + ".event.threat." + threatID + "." + kind
	if to != "" {
		subj += "." + s.token(to)
	}
	return subj
}

// MonitorEvent is the subject of a monitor outcome.
func (s Subjects) MonitorEvent(console, monitorID, outcome string) string {
	return s.prefix + "." + console + ".event.monitor." + monitorID + "." + outcome
}

// MonitorWildcard matches every outcome of one monitor.
func (s Subjects) MonitorWildcard(console, monitorID string) string {
	return s.prefix + "." + console + ".event.monitor." + monitorID + ".*"
}

// ParseAction splits an action request subject into console and action. ok is
// false when subject is not an action subject of this prefix.
func (s Subjects) ParseAction(subject string) (console, action string, ok bool) {
	rest, found := strings.CutPrefix(subject, s.prefix+".")
	if !found {
		return "", "", false
	}
	console, rest, found = strings.Cut(rest, ".")
	if !found || console == "" {
		return "", "", false
	}
	action, found = strings.CutPrefix(rest, "action.")
	if !found || action == "" {
		return "", "", false
	}
	return console, action, true
}

// SafeToken maps a value (an enum such as "in_progress") to a subject token:
// every character outside [A-Za-z0-9_-] becomes '_', and an empty value
// becomes "none".
func SafeToken(v string) string {
	if v == "" {
		return "none"
	}
	if ValidToken(v) {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// RequestType is the CloudEvents type of a request for action.
func RequestType(action string) string { return TypePrefix + action + ".request" }

// ResponseType is the CloudEvents type of a reply to action.
func ResponseType(action string) string { return TypePrefix + action + ".response" }

// MonitorType is the CloudEvents type of a monitor outcome.
func MonitorType(outcome string) string { return typeMonitorPrefix + outcome }

// Source is the CloudEvents source of replies and events of console.
func Source(console string) string { return "/s1bridge/" + console }

// EndpointName is the micro endpoint name of an action on a console:
// "<console>_<action with dots as underscores>".
func EndpointName(console, action string) string {
	return console + "_" + strings.ReplaceAll(action, ".", "_")
}

// ActionFromType returns the action a request type names, and whether the type
// is in the s1bridge namespace with the ".request" suffix.
func ActionFromType(ceType string) (action string, ok bool) {
	rest, found := strings.CutPrefix(ceType, TypePrefix)
	if !found {
		return "", false
	}
	action, found = strings.CutSuffix(rest, ".request")
	if !found || action == "" {
		return "", false
	}
	return action, true
}
