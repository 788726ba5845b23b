package sentinelone

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// The one-pass reading of list pages (decodePage). encoding/json reads a
// page four times over: it validates the whole body, skips over each item
// to find its end, and each item's UnmarshalJSON validates it again and
// then decodes it, stepping byte by byte through the many members it does
// not want. Here the body is validated once, recording where each item of
// data lies, and each item's members are then read with a scan that can
// rely on the JSON being valid. Only the shapes consoles send are read
// this way; on anything else (a member name differing only in case, a
// repeated member, an escaped name, a value of an unexpected type) the fast
// path says no and encoding/json decodes the page as before, so the result
// never differs: FuzzResponse holds pages against the two-pass path and
// FuzzFastItems items against their UnmarshalJSON.

// maxNesting is encoding/json's nesting limit: deeper is not valid JSON to it.
const maxNesting = 10000

// fastItem is an item type with a one-pass decoder. decodeFast decodes the
// valid JSON value b and keeps b itself as Raw (no copy: b is part of a
// page body nothing else writes to), or reports false, leaving the item
// unchanged, for a shape it does not take.
type fastItem interface {
	decodeFast(b []byte) bool
}

// strByte marks the bytes a JSON string may hold as they are: not '"', not
// '\\', not a control character.
var strByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsonChecker checks JSON with the acceptance of json.Valid.
type jsonChecker struct{ b []byte }

func (v *jsonChecker) ws(i int) int {
	for i < len(v.b) {
		switch v.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value checks the value starting at b[i] (no whitespace before it), at
// nesting depth (0 for the top), and returns the index after it.
func (v *jsonChecker) value(i, depth int) (int, bool) {
	b := v.b
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return v.str(i)
	case c == '{':
		return v.object(i, depth+1, nil)
	case c == '[':
		return v.array(i, depth+1, nil)
	case c == 't':
		return v.literal(i, "true")
	case c == 'f':
		return v.literal(i, "false")
	case c == 'n':
		return v.literal(i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return v.number(i)
	}
	return i, false
}

// object checks the object at b[i]; member, when not nil, is called with
// each member's name (the bytes between the quotes) and the span of its
// value, and may check the value itself: it returns the index after the
// value and whether it is valid, or -1 to leave the value to object.
func (v *jsonChecker) object(i, depth int, member func(name []byte, at int) (int, bool)) (int, bool) {
	b := v.b
	if depth > maxNesting {
		return i, false
	}
	i = v.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		start := i
		var ok bool
		if i, ok = v.str(i); !ok {
			return i, false
		}
		name := b[start+1 : i-1]
		i = v.ws(i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = v.ws(i + 1)
		end := -1
		if member != nil {
			if end, ok = member(name, i); !ok {
				return i, false
			}
		}
		if end < 0 {
			if end, ok = v.value(i, depth); !ok {
				return end, false
			}
		}
		i = v.ws(end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = v.ws(i + 1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// array checks the array at b[i]; elem, when not nil, is called with the
// span of each valid element.
func (v *jsonChecker) array(i, depth int, elem func(start, end int)) (int, bool) {
	b := v.b
	if depth > maxNesting {
		return i, false
	}
	i = v.ws(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := v.value(i, depth)
		if !ok {
			return end, false
		}
		if elem != nil {
			elem(i, end)
		}
		i = v.ws(end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = v.ws(i + 1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func (v *jsonChecker) str(i int) (int, bool) {
	b := v.b
	i++
	for {
		for i < len(b) && strByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (v *jsonChecker) literal(i int, lit string) (int, bool) {
	if !bytes.HasPrefix(v.b[i:], []byte(lit)) {
		return i, false
	}
	return i + len(lit), true
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (v *jsonChecker) number(i int) (int, bool) {
	b := v.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// The readers below work on JSON already validated.

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // a number or a literal
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// eachMember calls fn with the name (between the quotes, escapes as sent)
// and the value of each member of the valid object b, until fn returns
// false; it reports whether fn never did.
func eachMember(b []byte, fn func(name, value []byte) bool) bool {
	i := skipWS(b, 1)
	if b[i] == '}' {
		return true
	}
	for {
		end := skipString(b, i)
		name := b[i+1 : end-1]
		i = skipWS(b, end)
		i = skipWS(b, i+1) // ':'
		end = skipValue(b, i)
		if !fn(name, b[i:end]) {
			return false
		}
		i = skipWS(b, end)
		if b[i] == '}' {
			return true
		}
		i = skipWS(b, i+1) // ','
	}
}

// eachElement calls fn with each element of the valid array b, until fn
// returns false; it reports whether fn never did.
func eachElement(b []byte, fn func(elem []byte) bool) bool {
	i := skipWS(b, 1)
	if b[i] == ']' {
		return true
	}
	for {
		end := skipValue(b, i)
		if !fn(b[i:end]) {
			return false
		}
		i = skipWS(b, end)
		if b[i] == ']' {
			return true
		}
		i = skipWS(b, i+1) // ','
	}
}

// fields is the set of member names an item type reads, in the order of
// their indexes.
type fields struct {
	names []string
	lower []string // names lower-cased
}

func newFields(names ...string) *fields {
	f := &fields{names: names}
	for _, n := range names {
		f.lower = append(f.lower, strings.ToLower(n))
	}
	return f
}

// Outcomes of fields.find besides an index.
const (
	otherMember = -1 // a member the type does not read
	unsure      = -2 // encoding/json might take it for one it reads
)

// find returns the index of the member called name, otherMember, or unsure
// for a name encoding/json would match to a field without being that
// field's exact name (it ignores case) or with escapes (not read here). The
// sets are small: comparing lengths first beats hashing every name of an
// object twice.
func (f *fields) find(name []byte) int {
	for i, n := range f.names {
		if len(n) == len(name) && string(name) == n {
			return i
		}
	}
	for _, c := range name {
		if c == '\\' || c >= utf8.RuneSelf {
			// Escaped, or non-ASCII: Unicode folding ('K' is the Kelvin
			// sign's fold) is encoding/json's to decide.
			return unsure
		}
	}
	for _, n := range f.lower {
		if len(n) == len(name) && asciiEqualFold(name, n) {
			return unsure
		}
	}
	return otherMember
}

// asciiEqualFold reports whether the ASCII name equals lower, the lower-case
// form of a name, ignoring case.
func asciiEqualFold(name []byte, lower string) bool {
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// readMembers calls fn with the index of every member of the valid object
// b that f names, and its value. It reports false, without calling fn
// again, for a member encoding/json could read differently (see find), a
// member given twice, or when fn reports false.
func readMembers(b []byte, f *fields, fn func(i int, value []byte) bool) bool {
	if b[0] != '{' || len(f.names) > 64 {
		return false
	}
	var seen uint64
	return eachMember(b, func(name, value []byte) bool {
		switch i := f.find(name); {
		case i == otherMember:
			return true
		case i == unsure || seen&(1<<i) != 0:
			return false
		default:
			seen |= 1 << i
			return fn(i, value)
		}
	})
}

// Readers of one valid JSON value, as the types and json.Unmarshaler
// methods of this package read it; each reports false for a value it does
// not take, which the fallback then decodes (or refuses) itself.

func fastString(v []byte) (string, bool) {
	if v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	// Escapes, or bytes encoding/json replaces with U+FFFD.
	var s string
	err := json.Unmarshal(v, &s)
	return s, err == nil
}

// fastOptString reads a *string field: null is "".
func fastOptString(v []byte) (string, bool) {
	if v[0] == 'n' {
		return "", true
	}
	return fastString(v)
}

// fastID reads an ID: a string, the digits of a number, or "" for null.
func fastID(v []byte) (string, bool) {
	switch c := v[0]; {
	case c == 'n':
		return "", true
	case c == '"':
		return fastString(v)
	case c == '-' || c >= '0' && c <= '9':
		return string(v), true
	}
	return "", false
}

// fastBool reads a Bool.
func fastBool(v []byte) (bool, bool) {
	switch v[0] {
	case 't':
		return true, true
	case 'f', 'n':
		return false, true
	case '"':
		s, ok := fastString(v)
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, ok
		case "false":
			return false, ok
		}
	}
	return false, false
}

// fastTime reads a Time.
func fastTime(v []byte) (time.Time, bool) {
	if v[0] == 'n' {
		return time.Time{}, true
	}
	s, ok := fastString(v)
	if !ok {
		return time.Time{}, false
	}
	t, err := ParseTime(s)
	return t, err == nil
}

// fastStrings reads a []string: null is nil, [] an empty slice, a null
// element "".
func fastStrings(v []byte) ([]string, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '[':
	default:
		return nil, false
	}
	out := []string{}
	ok := eachElement(v, func(e []byte) bool {
		s, ok := fastOptString(e)
		out = append(out, s)
		return ok
	})
	return out, ok
}

// fastPage decodes a list answer of T in one pass (see the top of this
// file) and reports whether it could: a JSON object whose data is an array
// of items T.decodeFast takes and whose pagination, if any, is an object
// with a nextCursor and an integer totalItems.
func fastPage[T any](body []byte) (*Page[T], bool) {
	if _, ok := any(new(T)).(fastItem); !ok {
		return nil, false
	}
	v := jsonChecker{b: body}
	start := v.ws(0)
	if start >= len(body) || body[start] != '{' {
		return nil, false
	}
	var (
		spans          [][2]int
		haveData       bool
		pag            []byte
		havePagination bool
		ok             = true
	)
	end, valid := v.object(start, 1, func(name []byte, at int) (int, bool) {
		switch topFields.find(name) {
		case 0: // data
			if haveData || at >= len(body) || body[at] != '[' {
				ok = false
				return -1, true
			}
			haveData = true
			return v.array(at, 2, func(s, e int) { spans = append(spans, [2]int{s, e}) })
		case 1: // pagination
			if havePagination {
				ok = false
				return -1, true
			}
			havePagination = true
			e, valid := v.value(at, 1)
			pag = body[at:e]
			return e, valid
		case unsure:
			ok = false
		}
		return -1, true
	})
	if !valid || !ok || !haveData || v.ws(end) != len(body) {
		return nil, false
	}
	p := &Page[T]{Items: make([]T, len(spans))}
	for i, s := range spans {
		if !any(&p.Items[i]).(fastItem).decodeFast(body[s[0]:s[1]]) {
			return nil, false
		}
	}
	if havePagination && pag[0] != 'n' {
		var raw []byte
		if !readMembers(pag, paginationFields, func(i int, value []byte) bool {
			if i == 0 {
				raw = value
				return true
			}
			n, isInt := fastInt(value)
			p.TotalItems = n
			return isInt
		}) {
			return nil, false
		}
		next, err := normalizeCursor(raw)
		if err != nil {
			return nil, false
		}
		p.NextCursor = next
	} else if havePagination {
		// null: encoding/json leaves the struct as it is.
	}
	return p, true
}

var (
	topFields        = newFields("data", "pagination")
	paginationFields = newFields("nextCursor", "totalItems")
)

// fastInt reads an int field: an integer literal that fits, or null (0).
func fastInt(v []byte) (int, bool) {
	if v[0] == 'n' {
		return 0, true
	}
	n := 0
	neg := v[0] == '-'
	d := v
	if neg {
		d = v[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false // a fraction or exponent: encoding/json refuses it for an int
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
