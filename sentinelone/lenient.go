package sentinelone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lenient decoders for the drift seen in real console answers
// (api-reference.md §1.6, §1.7 and §4). Each accepts the documented shape and
// the undocumented ones peers have captured; anything else is still an error,
// so a genuinely broken answer is not silently turned into zero values.

// TimeFormat is the layout of every timestamp the client sends: UTC with
// microseconds, as the console itself writes them.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Bool is a boolean that also decodes from the strings "true"/"false" in any
// case ("True" in older agent payloads) and from null (false).
type Bool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bool) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if isNull(data) {
		*b = false
		return nil
	}
	s := string(data)
	if len(data) > 0 && data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("sentinelone: %s is not a boolean", data)
	}
	return nil
}

// ID is an object identifier. SentinelOne ids are numeric strings, but inside
// an activity's free-form data they arrive as JSON numbers; both decode to the
// same digits (a number is kept verbatim, never rounded through float64).
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case isNull(data):
		*id = ""
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*id = ID(s)
	default:
		var n json.Number
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("sentinelone: %s is not an id", data)
		}
		*id = ID(n.String())
	}
	return nil
}

// Time is a timestamp decoded from RFC 3339 with or without a fraction and
// with a Z or numeric offset, from the zone-less form "2006-01-02T15:04:05"
// (taken as UTC), and from null, "" or "None" (a Python None leaking through
// some integrations), which give the zero Time. It encodes as RFC 3339 with
// nanoseconds, or null when zero.
type Time struct{ time.Time }

// zonelessLayout is the timestamp without a zone seen in peer fixtures.
const zonelessLayout = "2006-01-02T15:04:05.999999999"

// ParseTime parses a console timestamp with the rules of Time. An offset
// that moves it out of the years 0000-9999 in UTC
// ("9999-12-31T23:00:00-05:00") is refused: RFC 3339 cannot write the result,
// so it could not be sent back in a filter or an event time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "null", "None":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return time.Time{}, fmt.Errorf("sentinelone: %q is outside the years 0000-9999 in UTC", s)
		}
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(zonelessLayout, s, time.UTC); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("sentinelone: %q is not an RFC 3339 timestamp", s)
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if isNull(data) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("sentinelone: %s is not a timestamp string", data)
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// DetectionEngine is one entry of threatInfo.detectionEngines: the spec shows
// plain strings, real consoles send {key,title} objects. A plain string s
// decodes as {Key: s, Title: s}.
type DetectionEngine struct {
	Key   string `json:"key"`
	Title string `json:"title"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *DetectionEngine) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*e = DetectionEngine{Key: s, Title: s}
		return nil
	}
	type plain DetectionEngine
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("sentinelone: detection engine %s: %w", data, err)
	}
	*e = DetectionEngine(p)
	return nil
}

// flexInt is an integer that may arrive as a JSON number or a numeric string
// (the hash reputation rank, an error code on some endpoints).
type flexInt struct {
	V     int
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *flexInt) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*n = flexInt{}
	if isNull(data) {
		return nil
	}
	s := string(data)
	if data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("sentinelone: %s is not an integer", data)
	}
	*n = flexInt{V: v, Valid: true}
	return nil
}

// normalizeCursor maps the ways a console says "last page" (JSON null, "",
// and the string "null") to "".
func normalizeCursor(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("sentinelone: nextCursor %s is not a string", raw)
	}
	if s = strings.TrimSpace(s); s == "null" {
		return "", nil
	}
	return s, nil
}

func isNull(data []byte) bool { return string(data) == "null" }

// LowerSnake normalises an enum value to the lower_snake form used by threat
// filters and bodies and by s1bridge requests: "In progress", "IN_PROGRESS"
// and "in_progress" all give "in_progress"; "True positive" gives
// "true_positive". Hyphens are kept ("non-malicious" stays as it is).
func LowerSnake(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "_", " "))), "_")
}

// UpperSnake is LowerSnake in upper case, the form alert filters take
// ("IN_PROGRESS").
func UpperSnake(s string) string { return strings.ToUpper(LowerSnake(s)) }

// DisplayCase renders an enum value the way alert responses show it: words
// separated by spaces, the first letter upper case, the rest lower case
// ("in_progress" gives "In progress", "HIGH" gives "High").
func DisplayCase(s string) string {
	words := strings.ReplaceAll(LowerSnake(s), "_", " ")
	if words == "" {
		return ""
	}
	return strings.ToUpper(words[:1]) + words[1:]
}
