package ingest

import (
	"encoding/json"
	"fmt"
	"math"
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

// known is a state as the ingester keeps it for every object of the console
// (hundreds of thousands): its values as indexes into the ingester's value
// table, in the map itself. A state with its values as strings took a
// separate allocation and three more for the strings, about 190 bytes an
// object against about 90.
type known struct {
	vals      [MaxFields]uint32
	updatedAt time.Time
	rev       uint64
}

// stateMap holds the ingester's states by object id. An id that is a
// decimal number (SentinelOne's ids: 18 or 19 digits) is kept as a number,
// others as strings: a string key costs its header in the map and an
// allocation for its bytes, about a third of the map for 100,000 threats.
type stateMap struct {
	num map[uint64]known
	str map[string]known
}

func newStateMap() stateMap {
	return stateMap{num: map[uint64]known{}, str: map[string]known{}}
}

func (m stateMap) get(id string) (known, bool) {
	if n, ok := numericID(id); ok {
		k, ok := m.num[n]
		return k, ok
	}
	k, ok := m.str[id]
	return k, ok
}

func (m stateMap) set(id string, k known) {
	if n, ok := numericID(id); ok {
		m.num[n] = k
		return
	}
	m.str[id] = k
}

func (m stateMap) len() int { return len(m.num) + len(m.str) }

// numericID returns id as a number when it is one written the one way
// (decimal digits, no leading zero, fitting 64 bits), so that the number
// stands for exactly that id.
func numericID(id string) (uint64, bool) {
	if id == "" || len(id) > 20 || id[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// valueTable holds each distinct value of the compared fields once: they
// are enums (incident statuses, verdicts), so a few dozen in all.
type valueTable struct {
	index map[string]uint32
	vals  []string
}

// id returns v's index, adding it when new.
func (t *valueTable) id(v string) uint32 {
	if i, ok := t.index[v]; ok {
		return i
	}
	if t.index == nil {
		t.index = map[string]uint32{}
	}
	i := uint32(len(t.vals))
	t.vals = append(t.vals, v)
	t.index[v] = i
	return i
}

// keep is s as the ingester keeps it.
func (t *valueTable) keep(s *state) known {
	k := known{updatedAt: s.updatedAt, rev: s.rev}
	for i, v := range s.vals {
		k.vals[i] = t.id(v)
	}
	return k
}

// state is the state k keeps.
func (t *valueTable) state(k known) state {
	s := state{updatedAt: k.updatedAt, rev: k.rev}
	for i, v := range k.vals {
		s.vals[i] = t.vals[v]
	}
	return s
}

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
