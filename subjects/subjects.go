// Package subjects is the s1bridge wire protocol, defined once: the subject
// grammar, the CloudEvents types and extension names, the NATS header names,
// the names of the stream and key-value buckets (all derived from the
// prefix, DESIGN.md §9), the keys in those buckets and the events' ids. No
// other package spells a subject, a header, a type, a key or an id by hand;
// they all call this one.
//
// The grammar (DESIGN.md §3):
//
//	<prefix>.<console>.action.<action>                      action request
//	<prefix>.<console>.event.threat.<threatId>.<kind...>     threat event
//	<prefix>.<console>.event.monitor.<monitorId>.<outcome>   monitor event
//
// The keys (bucket <PREFIX>_STATE, _LEASES, _MONITORS):
//
//	<console>.threat.<threatId>   last known state of a threat      STATE
//	<console>.cursor              threat ingestion progress          STATE
//	<console>.ingest              threat ingestion lease             LEASES
//	<console>.monitors            monitor poller lease               LEASES
//	<console>.m.<monitorId>       an active monitor                  MONITORS
//	<console>.poll                monitor poller progress            MONITORS
package subjects

import (
	"fmt"
	"regexp"
	"strings"
	"time"
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

// CreatedType is the CloudEvents type of the created event of entity e:
// "s1bridge.<entity>.created".
func CreatedType(e Entity) string { return TypePrefix + string(e) + "." + KindCreated }

// ChangedType is the type of a change of kind of entity e:
// "s1bridge.<entity>.<kind>_changed".
func ChangedType(e Entity, kind string) string {
	return TypePrefix + string(e) + "." + kind + "_changed"
}

// ResolvedType is the type of a status change to resolved of entity e:
// "s1bridge.<entity>.resolved".
func ResolvedType(e Entity) string { return TypePrefix + string(e) + "." + OutcomeResolved }

// Fields a threat event's change names, in change.field and in the event
// id: SentinelOne's names.
const (
	FieldIncidentStatus   = "incidentStatus"
	FieldAnalystVerdict   = "analystVerdict"
	FieldMitigationStatus = "mitigationStatus"
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

// Bucket is a KV bucket a deployment owns; its name is the upper-cased
// prefix, "_" and the bucket (DESIGN.md §9: S1_STATE with prefix s1).
type Bucket string

// The KV buckets.
const (
	BucketState    Bucket = "STATE"    // ingestion watermarks and last known states
	BucketLeases   Bucket = "LEASES"   // one lease per console and role, with a TTL
	BucketMonitors Bucket = "MONITORS" // active monitors
)

// streamEvents names the events stream after the prefix: S1_EVENTS.
const streamEvents = "EVENTS"

// KV wire names the connector writes by hand to pipeline its writes: the
// subject of a key is "$KV.<bucket>.<key>", and a delete is a message with
// the operation header (what jetstream.KeyValue.Delete sends).
const (
	kvSubjectPrefix   = "$KV."
	HeaderKVOperation = "KV-Operation"
	KVOperationDelete = "DEL"
)

// KVSubject is the subject of key in the bucket named bucket (a name, as
// Subjects.BucketName returns it).
func KVSubject(bucket, key string) string { return kvSubjectPrefix + bucket + "." + key }

// Entity is a kind of SentinelOne object whose changes ingestion publishes.
// It is a subject token (<prefix>.<console>.event.<entity>.<id>...), the
// middle of the key of its last known state, the member of an event's data
// that holds the object, and the middle of its CloudEvents types.
type Entity string

// The entities ingestion publishes.
const (
	EntityThreat Entity = "threat" // DESIGN.md §6
	EntityAlert  Entity = "alert"  // a UAM alert, DESIGN.md §10
)

// KV keys. Threat keys keep the names they had before other entities
// (DESIGN.md §10), so that a rolling upgrade finds its state.
const (
	keyCursor      = "cursor"   // <console>.cursor: threat ingestion progress
	keyIngestLease = "ingest"   // <console>.ingest: the threat ingestion lease
	keyMonitor     = "m"        // <console>.m.<monitorId>
	keyMonitorPoll = "poll"     // <console>.poll: the monitor poller's progress
	keyMonitors    = "monitors" // <console>.monitors: the monitor poller's lease
)

// StateKey is the key of the last known state of object id of entity e.
func StateKey(console string, e Entity, id string) string {
	return console + "." + string(e) + "." + id
}

// StateKeys matches every StateKey of entity e on console (a KV filter).
func StateKeys(console string, e Entity) string { return StateKey(console, e, "*") }

// CursorKey is the key of the ingestion progress of entity e on console:
// "<console>.cursor" for threats, "<console>.cursor.<entity>" for others
// (never matched by StateKeys, whatever the ids).
func CursorKey(console string, e Entity) string {
	if e == EntityThreat {
		return console + "." + keyCursor
	}
	return console + "." + keyCursor + "." + string(e)
}

// IngestLeaseKey is the lease of the ingestion of entity e on console:
// "<console>.ingest" for threats, "<console>.ingest.<entity>" for others.
func IngestLeaseKey(console string, e Entity) string {
	if e == EntityThreat {
		return console + "." + keyIngestLease
	}
	return console + "." + keyIngestLease + "." + string(e)
}

// MonitorKey is the key of the record of monitor id on console.
func MonitorKey(console, id string) string { return console + "." + keyMonitor + "." + id }

// MonitorKeys matches every MonitorKey of console (a KV filter).
func MonitorKeys(console string) string { return MonitorKey(console, "*") }

// MonitorPollKey is the key of the monitor poller's progress on console.
func MonitorPollKey(console string) string { return console + "." + keyMonitorPoll }

// MonitorsLeaseKey is the lease of the monitor poller of console.
func MonitorsLeaseKey(console string) string { return console + "." + keyMonitors }

// EventIDTimeLayout is how an updatedAt stands in an event id: SentinelOne's
// own layout, UTC to the microsecond.
const EventIDTimeLayout = "2006-01-02T15:04:05.000000Z"

// CreatedEventID is the CloudEvents id (and Nats-Msg-Id) of the created
// event of object id: "<console>/<threatId>/created" for a threat,
// "<console>/<entity>/<id>/created" for others (DESIGN.md §8, §10).
func CreatedEventID(console string, e Entity, id string) string {
	return eventIDPrefix(console, e) + id + "/" + KindCreated
}

// ChangeEventID is the id of the event of field changing to to at at:
// "<console>/<threatId>/<field>/<to>/<updatedAt>" for a threat, with
// "/<entity>" after the console for others, so that A to B to A is three
// facts.
func ChangeEventID(console string, e Entity, id, field, to string, at time.Time) string {
	return eventIDPrefix(console, e) + id + "/" + field + "/" + to + "/" + at.UTC().Format(EventIDTimeLayout)
}

func eventIDPrefix(console string, e Entity) string {
	if e == EntityThreat {
		return console + "/"
	}
	return console + "/" + string(e) + "/"
}

// MonitorEventID is the id of the outcome event of a monitor:
// "<console>/monitor/<monitorId>/<outcome>".
func MonitorEventID(console, monitorID, outcome string) string {
	return console + "/" + entityMonitor + "/" + monitorID + "/" + outcome
}

const entityMonitor = "monitor"

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

// EventsStream is the default name of the events stream: "S1_EVENTS" with
// prefix s1 (streams.events.name overrides it).
func (s Subjects) EventsStream() string { return s.upper() + "_" + streamEvents }

// BucketName is the name of bucket b: "S1_STATE" with prefix s1.
func (s Subjects) BucketName(b Bucket) string { return s.upper() + "_" + string(b) }

func (s Subjects) upper() string { return strings.ToUpper(s.prefix) }

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

// EntityEvent is the subject of an event about object id of entity e; kind
// is KindCreated, or a change's kind with to the new value.
func (s Subjects) EntityEvent(console string, e Entity, id, kind, to string) string {
	subj := s.prefix + "." + console + ".event." + string(e) + "." + id + "." + kind
	if to != "" {
		subj += "." + s.token(to)
	}
	return subj
}

// EntityEvents matches every event about object id of entity e.
func (s Subjects) EntityEvents(console string, e Entity, id string) string {
	return s.prefix + "." + console + ".event." + string(e) + "." + id + ".>"
}

// ThreatEvent is the subject of a threat event; kind is KindCreated or
// KindStatus/KindVerdict/KindMitigation with to the new value.
func (s Subjects) ThreatEvent(console, threatID, kind, to string) string {
	return s.EntityEvent(console, EntityThreat, threatID, kind, to)
}

// MonitorEvent is the subject of a monitor outcome.
func (s Subjects) MonitorEvent(console, monitorID, outcome string) string {
	return s.prefix + "." + console + ".event." + entityMonitor + "." + monitorID + "." + outcome
}

// MonitorWildcard matches every outcome of one monitor.
func (s Subjects) MonitorWildcard(console, monitorID string) string {
	return s.MonitorEvent(console, monitorID, "*")
}

// PrefixOfEvents returns the prefix whose EventsWildcard subject is, and
// whether it is one: how a stream's subjects tell whose it is.
func PrefixOfEvents(subject string) (string, bool) {
	prefix, ok := strings.CutSuffix(subject, ".*.event.>")
	if !ok || !ValidToken(prefix) {
		return "", false
	}
	return prefix, true
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
