package ingest

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// keyUpdatedAt is the key of updatedAt in a stored state.
const keyUpdatedAt = "u"

// state is the last known state of one object: its compared fields and its
// updatedAt, with the revision of its key (0: not stored).
type state struct {
	vals      [MaxFields]string
	updatedAt time.Time
	rev       uint64
}

// stateOf is it's state.
func stateOf(it *Item) state { return state{vals: it.Values, updatedAt: it.UpdatedAt} }

// encodeState writes s as stored: each field under its key, then "u", as
// encoding/json wrote release 1's threat states ({"s":…,"v":…,"m":…,"u":…}).
func encodeState(fields []Field, s *state) []byte {
	b := make([]byte, 0, 96)
	b = append(b, '{')
	for i, f := range fields {
		b = appendString(append(appendString(b, f.Key), ':'), s.vals[i])
		b = append(b, ',')
	}
	b = appendString(b, keyUpdatedAt)
	b = append(b, ':', '"')
	b = s.updatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"', '}')
}

// appendString appends v as a JSON string. The values are SentinelOne's
// enums: plain ASCII, copied as they are; anything else goes through
// encoding/json.
func appendString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// decodeState reads a stored state. buf is reused from call to call (a load
// reads every state of a console).
func decodeState(fields []Field, b []byte, buf map[string]string) (state, error) {
	clear(buf)
	if err := json.Unmarshal(b, &buf); err != nil {
		return state{}, err
	}
	var s state
	for i, f := range fields {
		s.vals[i] = buf[f.Key]
	}
	if u := buf[keyUpdatedAt]; u != "" {
		t, err := time.Parse(time.RFC3339Nano, u)
		if err != nil {
			return state{}, fmt.Errorf("%s: %w", keyUpdatedAt, err)
		}
		s.updatedAt = t
	}
	return s, nil
}
