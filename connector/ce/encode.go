package ce

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/subjects"
)

// Encode writes ev as a NATS message in mode: the headers and the payload.
// ModePlain is written as ModeBinary (replies to plain requests are binary,
// DESIGN.md §5). The payload is ev.Data itself in binary mode, not a copy.
//
// Binary mode writes every attribute as a lower-case "ce-*" header with its
// value percent-encoded as the binding says, time as RFC 3339 in UTC, and
// datacontenttype as Content-Type. Structured mode writes header
// "Content-Type: application/cloudevents+json" and the event as JSON, its
// extensions sorted by name; data goes inline as a JSON value when its
// datacontenttype is application/json, text/json or absent, and as
// data_base64 otherwise (the form every reader, sdk-go included, reads the
// same way). When ev has data but no datacontenttype, application/json is
// written. An extension with an empty value is absent and not written.
//
// Encode refuses, with an error matching ErrInvalid, an event that could not
// be read back: no id, source or type, a specversion other than 1.0,
// extension names that are not lower-case letters and digits, values that
// are not valid UTF-8 or hold control characters, inline data that is not
// JSON, or an unknown mode. It does not check that source is a
// URI-reference; s1bridge writes only sources it builds.
func Encode(ev Event, mode Mode) (nats.Header, []byte, error) {
	if ev.SpecVersion == "" {
		ev.SpecVersion = subjects.SpecVersion
	}
	if ev.DataContentType == "" && len(ev.Data) > 0 {
		ev.DataContentType = subjects.ContentTypeJSON
	}
	if err := checkEncodable(&ev); err != nil {
		return nil, nil, err
	}
	switch mode {
	case ModeBinary, ModePlain:
		return encodeBinary(&ev), ev.Data, nil
	case ModeStructured:
		return encodeStructured(&ev)
	}
	return nil, nil, &FieldError{Field: "mode", Reason: "unknown content mode " + mode.String()}
}

func checkEncodable(ev *Event) error {
	if ev.SpecVersion != subjects.SpecVersion {
		return &FieldError{Field: subjects.AttrSpecVersion, Reason: "unsupported; only " + subjects.SpecVersion + " is written"}
	}
	vals := [...]string{ev.ID, ev.Source, ev.Type, ev.Subject, ev.DataContentType, ev.DataSchema}
	names := [...]string{subjects.AttrID, subjects.AttrSource, subjects.AttrType,
		subjects.AttrSubject, subjects.AttrDataContentType, subjects.AttrDataSchema}
	for i, v := range vals {
		if v == "" {
			if i < 3 {
				return &FieldError{Field: names[i], Reason: reasonRequired}
			}
			continue
		}
		if why := checkString(v); why != "" {
			return &FieldError{Field: names[i], Reason: why}
		}
	}
	for name, v := range ev.Extensions {
		if !validExtName(name, true) || reservedName(name) {
			return &FieldError{Field: name, Reason: "invalid extension name; lower-case ASCII letters and digits only"}
		}
		if why := checkString(v); why != "" {
			return &FieldError{Field: name, Reason: why}
		}
	}
	return nil
}

// headerWriter fills a nats.Header whose value slices all share one backing
// array: one allocation for every value instead of one per header.
type headerWriter struct {
	h    nats.Header
	vals []string
}

func (w *headerWriter) set(key, value string) {
	w.vals = append(w.vals, value)
	n := len(w.vals)
	w.h[key] = w.vals[n-1 : n : n]
}

func encodeBinary(ev *Event) nats.Header {
	n := 4 + len(ev.Extensions)
	for _, v := range [...]string{ev.Subject, ev.DataContentType, ev.DataSchema} {
		if v != "" {
			n++
		}
	}
	if !ev.Time.IsZero() {
		n++
	}
	w := headerWriter{h: make(nats.Header, n), vals: make([]string, 0, n)}
	w.set(hdrSpecVersion, ev.SpecVersion)
	w.set(hdrID, escapeHeader(ev.ID))
	w.set(hdrSource, escapeHeader(ev.Source))
	w.set(hdrType, escapeHeader(ev.Type))
	if ev.Subject != "" {
		w.set(hdrSubject, escapeHeader(ev.Subject))
	}
	if !ev.Time.IsZero() {
		w.set(hdrTime, formatTime(ev.Time))
	}
	if ev.DataSchema != "" {
		w.set(hdrDataSchema, escapeHeader(ev.DataSchema))
	}
	if ev.DataContentType != "" {
		// Content-Type is a header of its own, not a ce-* one: it is not
		// percent-encoded, and a media type never needs it.
		w.set(subjects.HeaderContentType, ev.DataContentType)
	}
	for name, v := range ev.Extensions {
		if v != "" {
			w.set(extHeader(name), escapeHeader(v))
		}
	}
	return w.h
}

func encodeStructured(ev *Event) (nats.Header, []byte, error) {
	inline := isInlineJSONMedia(ev.DataContentType)
	if inline && len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return nil, nil, &FieldError{Field: memberData, Reason: "not valid JSON", Err: syntaxError(ev.Data)}
	}
	size := 64 + len(ev.ID) + len(ev.Source) + len(ev.Type) + len(ev.Subject) +
		len(ev.DataContentType) + len(ev.DataSchema) + len(time.RFC3339Nano) + len(ev.Data)
	if !inline {
		size += len(ev.Data) / 3
	}
	var nameBuf [8]string
	names := nameBuf[:0]
	for name, v := range ev.Extensions {
		if v != "" {
			names = append(names, name)
			size += len(name) + len(v) + 6
		}
	}
	slices.Sort(names)

	b := make([]byte, 0, size)
	b = append(b, `{"specversion":`...)
	b = appendJSONString(b, ev.SpecVersion)
	b = appendMember(b, subjects.AttrID, ev.ID)
	b = appendMember(b, subjects.AttrSource, ev.Source)
	b = appendMember(b, subjects.AttrType, ev.Type)
	if ev.Subject != "" {
		b = appendMember(b, subjects.AttrSubject, ev.Subject)
	}
	if !ev.Time.IsZero() {
		b = append(b, `,"`+subjects.AttrTime+`":"`...)
		b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if ev.DataContentType != "" {
		b = appendMember(b, subjects.AttrDataContentType, ev.DataContentType)
	}
	if ev.DataSchema != "" {
		b = appendMember(b, subjects.AttrDataSchema, ev.DataSchema)
	}
	for _, name := range names {
		b = appendMember(b, name, ev.Extensions[name])
	}
	if len(ev.Data) > 0 {
		if inline {
			b = append(b, `,"`+memberData+`":`...)
			b = append(b, ev.Data...)
		} else {
			b = append(b, `,"`+memberDataBase64+`":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.Data)
			b = append(b, '"')
		}
	}
	b = append(b, '}')
	h := nats.Header{subjects.HeaderContentType: []string{subjects.ContentTypeCloudEvent}}
	return h, b, nil
}

// appendMember appends `,"name":"value"`; name needs no escaping.
func appendMember(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// formatTime is the canonical string form of a CloudEvents Timestamp, as
// sdk-go writes it: RFC 3339 with nanoseconds, in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
