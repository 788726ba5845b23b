package ce

import (
	"encoding/json"
	"unicode/utf8"
)

// scanner walks the members of a JSON document that encoding/json.Valid has
// already accepted, so it never meets malformed input and needs no error
// paths of its own; the bounds checks only keep a bug from becoming a panic.
// It reports byte offsets instead of copying, which lets the structured
// decoder take every attribute from a single string conversion of the payload.
//
// Why not encoding/json into a struct: an event's unknown members are its
// extensions, which a struct cannot collect, and a map[string]json.RawMessage
// costs two allocations per member on every request.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the current byte, or 0 at the end.
func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str skips the string starting at s.i (a '"') and returns the offsets of its
// content between the quotes, and whether that content holds escapes.
func (s *scanner) str() (start, end int, escaped bool) {
	s.i++
	start = s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			end = s.i
			s.i++
			return start, end, escaped
		case '\\':
			escaped = true
			s.i += 2
		default:
			s.i++
		}
	}
	return start, len(s.b), escaped
}

// value skips the value starting at s.i and returns its offsets.
func (s *scanner) value() (start, end int) {
	start = s.i
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return start, s.i
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return start, s.i
			}
			s.i++
		}
	}
	return start, s.i
}

// members calls fn for each member of the object at s.i with the offsets of
// its key's content and of its value; fn returning false stops the walk.
func (s *scanner) members(fn func(ks, ke int, kesc bool, vs, ve int) bool) {
	s.ws()
	if s.peek() != '{' {
		return
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		return
	}
	for s.i < len(s.b) {
		s.ws()
		ks, ke, kesc := s.str()
		s.ws()
		s.i++ // ':'
		s.ws()
		vs, ve := s.value()
		if !fn(ks, ke, kesc, vs, ve) {
			return
		}
		s.ws()
		if s.peek() != ',' {
			return
		}
		s.i++
	}
}

// hasMember reports whether the valid JSON object b has a top-level member
// named key (spelled without escapes).
func hasMember(b []byte, key string) bool {
	found := false
	sc := scanner{b: b}
	sc.members(func(ks, ke int, _ bool, _, _ int) bool {
		found = string(b[ks:ke]) == key
		return !found
	})
	return found
}

// jsonString returns the Go string of the JSON string whose content lies at
// str[start:end]: a substring when it has no escapes, else the unescaped
// copy. The value is known valid, so unescaping cannot fail. Content that is
// not valid UTF-8 is returned as it is, escapes and all, for checkString to
// refuse: encoding/json would replace the bad bytes with U+FFFD, so a value
// would be refused or silently changed depending on whether it also held an
// escape.
func jsonString(str string, start, end int, escaped bool) string {
	if !escaped || !utf8.ValidString(str[start:end]) {
		return str[start:end]
	}
	var v string
	if err := json.Unmarshal([]byte(str[start-1:end+1]), &v); err != nil {
		return str[start:end]
	}
	return v
}

// appendJSONString appends s as a JSON string. Attribute values hold no
// control characters (Encode checks), so only quotes and backslashes are
// escaped on the usual path; the rest keeps the output valid JSON whatever s
// holds.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
