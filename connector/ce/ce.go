// Package ce is the CloudEvents-on-NATS codec of s1bridge (DESIGN.md §5):
// it turns a NATS message (headers and payload) into an Event and back.
//
// Three content modes are read:
//
//   - binary: attributes in "ce-*" headers, data in the payload. Header names
//     are read case-insensitively and written lower case; header values are
//     percent-encoded by the rules the CloudEvents HTTP binding spells out
//     (§3.1.3.2: space, '"', '%' and all but printable ASCII, as UTF-8 bytes),
//     and read back by them (a quoted string is unquoted, then one round of
//     percent-decoding; invalid UTF-8 is refused).
//   - structured: header "Content-Type: application/cloudevents+json" and the
//     whole event as JSON in the payload. A payload with neither Content-Type
//     nor "ce-*" headers whose top-level object has a "specversion" member is
//     read as structured too: that is what sdk-go's NATS binding
//     (protocol/nats/v2) publishes, as it sends no headers.
//   - plain: anything else; the payload is the data of a request and the
//     connector assigns the attributes.
//
// Decoding validates the attributes with sdk-go's own rules and requires data
// in JSON, since every s1bridge action takes and returns JSON. The codec holds
// no state: Decode, Encode and NewID are safe for concurrent use.
//
// Interoperability with sdk-go (v2.16) in binary mode has one known gap:
// sdk-go neither percent-encodes nor percent-decodes header values
// (cloudevents/sdk-go#1331). Values that are printable ASCII without space,
// '%' or '"' (ids, types, sources, times, traceparent) are identical either way, and
// Decode accepts raw spaces and raw UTF-8 as sdk-go writes them; but a raw '%'
// from sdk-go is read as an escape (and rejected when malformed), and sdk-go
// reads what Encode escaped still escaped.
package ce

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nuid"

	"github.com/s1bridge/s1bridge/subjects"
)

type (
	// Mode is the content mode of a CloudEvent on NATS. The zero value is
	// not a mode: Encode refuses it.
	Mode int

	// Event is one CloudEvent as s1bridge handles it: the context attributes
	// of CloudEvents 1.0 as strings (empty means absent), the extensions, and
	// JSON data.
	//
	// An Event returned by Decode may share memory with the payload it was
	// decoded from (Data is usually a sub-slice of it): the payload must not
	// be modified while the Event is in use, and Data must be treated as read
	// only. An Event is a plain value; it is not safe for concurrent mutation.
	Event struct {
		// SpecVersion is "1.0" on every decoded binary or structured event;
		// empty on a plain one. Encode writes "1.0" when it is empty.
		SpecVersion string
		// ID, Source and Type are required by Encode and by Decode in binary
		// and structured mode; a plain request has none of them.
		ID     string
		Source string
		Type   string
		// Subject, DataContentType and DataSchema are optional.
		Subject         string
		DataContentType string
		DataSchema      string
		// Time is the zero time when the event has no time attribute.
		Time time.Time
		// Extensions holds the extension attributes by lower-case name
		// (including correlationid, expirytime, traceparent and tracestate),
		// their values in canonical string form. Nil when there are none.
		Extensions map[string]string
		// Data is the event data, always JSON: an empty payload decodes as
		// "{}".
		Data json.RawMessage
		// Mode is the content mode the event arrived in; Decode sets it and
		// Encode ignores it (its mode argument decides).
		Mode Mode
	}

	// FieldError is the error Decode returns for a request it refuses. It
	// names the field at fault as the sender spelled it: the header
	// ("ce-source", "Content-Type") in binary mode, the JSON member
	// ("source") in structured mode, "data" or "payload" otherwise. Its
	// message never echoes the offending value, which may be large.
	// errors.Is(err, ErrInvalid) holds for every FieldError.
	FieldError struct {
		Field  string
		Reason string
		// Err is the underlying cause, if any; it is not part of Error() so
		// that no parser message quotes the value back.
		Err error
	}
)

const (
	// ModeBinary carries the attributes in "ce-*" headers and the data in the
	// payload. Replies to binary and plain requests use it.
	ModeBinary Mode = iota + 1
	// ModeStructured carries the whole event as JSON in the payload, with
	// header "Content-Type: application/cloudevents+json".
	ModeStructured
	// ModePlain is a payload of plain JSON with no CloudEvents attributes, as
	// typed at a terminal. Encode writes it as ModeBinary.
	ModePlain
)

// String returns "binary", "structured" or "plain", for logs.
func (m Mode) String() string {
	switch m {
	case ModeBinary:
		return "binary"
	case ModeStructured:
		return "structured"
	case ModePlain:
		return "plain"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode returns the mode named "binary" or "structured" (the values of
// streams.events.mode; Mode.String gives them back), and false for any
// other name: plain is how requests arrive, not a way to write events.
func ParseMode(name string) (Mode, bool) {
	switch name {
	case "binary":
		return ModeBinary, true
	case "structured":
		return ModeStructured, true
	}
	return 0, false
}

// ErrInvalid is matched by every error Decode returns (the connector answers
// 400) and by Encode's errors for an event it cannot write (a bug of the
// caller, not of the requester).
var ErrInvalid = errors.New("invalid CloudEvent")

// Error returns "<field>: <reason>".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause, or nil.
func (e *FieldError) Unwrap() error { return e.Err }

// NewID returns a new event id: a 22-character NUID, unique across processes
// without coordination (a crypto-random prefix and a sequence) and safe for
// concurrent use. NUID rather than a UUID because ids are minted on every
// reply: nuid.Next costs tens of nanoseconds and no system call, and
// CloudEvents asks only that source+id be unique, not that ids be UUIDs.
func NewID() string { return nuid.Next() }

// ExpiryTime returns the expirytime extension, the request's deadline
// (DESIGN.md §5). ok is false when the event has none; err (matching
// ErrInvalid) when it is not an RFC 3339 timestamp, which Decode has already
// refused for decoded events.
func (e *Event) ExpiryTime() (t time.Time, ok bool, err error) {
	v, ok := e.Extensions[subjects.ExtExpiryTime]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err = parseTime(v)
	if err != nil {
		return time.Time{}, true, &FieldError{Field: subjects.ExtExpiryTime, Reason: reasonTimestamp, Err: err}
	}
	return t, true, nil
}

// TraceParent returns the W3C traceparent extension, or "".
func (e *Event) TraceParent() string { return e.Extensions[subjects.ExtTraceParent] }

// TraceState returns the W3C tracestate extension, or "".
func (e *Event) TraceState() string { return e.Extensions[subjects.ExtTraceState] }

// CorrelationID returns the correlationid extension (on a reply, the id of the
// request), or "".
func (e *Event) CorrelationID() string { return e.Extensions[subjects.ExtCorrelationID] }

// SetExtension sets extension name to value, allocating the map on first use;
// an empty value removes it. name must be a valid lower-case extension name,
// which Encode checks.
func (e *Event) SetExtension(name, value string) {
	if value == "" {
		delete(e.Extensions, name)
		return
	}
	if e.Extensions == nil {
		e.Extensions = make(map[string]string, 4)
	}
	e.Extensions[name] = value
}

// Correlation is what a stored record (a monitor, a tracked action) keeps of
// the request that started it, to carry into its outcome event: the
// request's id, which the event names as its correlationid, its source, and
// its trace context. Embedded in a record, its members are the record's.
type Correlation struct {
	RequestID     string `json:"requestId,omitempty"`
	RequestSource string `json:"requestSource,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
	TraceState    string `json:"tracestate,omitempty"`
}

// Stamp sets e's correlationid, traceparent and tracestate from c (an empty
// one is left out).
func (c Correlation) Stamp(e *Event) {
	e.SetExtension(subjects.ExtCorrelationID, c.RequestID)
	e.SetExtension(subjects.ExtTraceParent, c.TraceParent)
	e.SetExtension(subjects.ExtTraceState, c.TraceState)
}
