package sentinelone

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// The one-pass reading of list pages (decodePage). encoding/json reads a
// page four times over: it validates the whole body, skips over each item
// to find its end, and each item's UnmarshalJSON validates it again and
// then decodes it, stepping byte by byte through the many members it does
// not want. Here the body is checked once, and each item is read as it is
// checked: a member the item reads is decoded right after its value has
// been checked (nested objects it reads, member by member, likewise), and
// the others are not looked at again. Only the shapes consoles send are read
// this way; on anything else (a member name differing only in case, a
// repeated member, an escaped name, a value of an unexpected type) the fast
// path says no and encoding/json decodes the page as before, so the result
// never differs: FuzzResponse holds pages against the two-pass path and
// FuzzFastItems items against their UnmarshalJSON.

// maxNesting is encoding/json's nesting limit: deeper is not valid JSON to it.
const maxNesting = 10000

// fastItem is an item type with a one-pass decoder: fastFields names the
// members it reads, readMember reads the value of member i (valid JSON)
// into the item, and finish completes the item once its members have been
// read, keeping raw itself as Raw (no copy: raw is part of a page body
// nothing else writes to). readMember and finish report false for a shape
// they do not take; the page is then decoded by encoding/json. st is
// scratch for one item. The item is zero before its first member.
type fastItem interface {
	fastFields() *fields
	readMember(i int, v []byte, st *itemScratch) bool
	finish(raw []byte, st *itemScratch) bool
}

// nestedItem is a fastItem with members that are objects it reads member
// by member: fastNested returns, for member i, the fields it reads of that
// object and the function reading each, or nil. fastPage then reads them
// while it checks the object, instead of scanning it twice.
type nestedItem interface {
	fastNested(i int, st *itemScratch) (*fields, func(j int, v []byte) bool)
}

// itemScratch holds what an item's decoding needs between its members.
type itemScratch struct {
	id   string // threatInfo.threatId, the id of a threat without one
	seen bool   // threatInfo was there
}

// decodeFast decodes the valid JSON value b into it, as fastPage would.
func decodeFast(it fastItem, b []byte) bool {
	var st itemScratch
	return readMembers(b, it.fastFields(), func(i int, v []byte) bool { return it.readMember(i, v, &st) }) && it.finish(b, &st)
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

// array checks the array at b[i]; elem, when not nil, checks each element
// in place of value (it returns the index after the element and whether it
// is valid).
func (v *jsonChecker) array(i, depth int, elem func(at int) (int, bool)) (int, bool) {
	b := v.b
	if depth > maxNesting {
		return i, false
	}
	i = v.ws(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var (
			end int
			ok  bool
		)
		if elem != nil {
			end, ok = elem(i)
		} else {
			end, ok = v.value(i, depth)
		}
		if !ok {
			return end, false
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
		// Eight bytes at a time while none of them ends the string or
		// needs a look (most of a console's answer is string bytes).
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
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

// plainWord reports whether none of the eight bytes of x is '"', '\\' or a
// control character (the bit tricks of "Bit Twiddling Hacks": a byte less
// than n, a byte equal to n). It may say false for a plain word (a byte of
// 0x80 or more next to one that borrows), never true for another.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	less := (x - ones*0x20) & ^x & highs
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	zero := func(y uint64) uint64 { return (y - ones) & ^y & highs }
	return less|zero(quote)|zero(backslash) == 0
}

// plainASCII reports whether b is ASCII without a backslash, eight bytes
// at a time.
func plainASCII(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ (ones * '\\')
		if x&highs != 0 || (y-ones)&^y&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
	// byLen lists, for each length, the indexes of the names that long: an
	// object's member is most often of a length no name read has, and is
	// then told apart with one look.
	byLen [maxNameLen + 1][]int
}

// maxNameLen bounds the names an item type reads.
const maxNameLen = 32

func newFields(names ...string) *fields {
	f := &fields{names: names}
	for i, n := range names {
		if len(n) > maxNameLen {
			panic("sentinelone: member name " + n + " too long for fields")
		}
		f.lower = append(f.lower, strings.ToLower(n))
		f.byLen[len(n)] = append(f.byLen[len(n)], i)
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
// field's exact name (it ignores case) or with escapes (not read here).
func (f *fields) find(name []byte) int {
	if len(f.names) == 0 {
		// Nothing is read (Object): no name can be taken for one read.
		return otherMember
	}
	var same []int
	if len(name) <= maxNameLen {
		same = f.byLen[len(name)]
		for _, i := range same {
			if string(name) == f.names[i] {
				return i
			}
		}
	}
	if !plainASCII(name) {
		// Escaped, or non-ASCII: Unicode folding ('K' is the Kelvin sign's
		// fold) is encoding/json's to decide.
		return unsure
	}
	// ASCII folding keeps the length.
	for _, i := range same {
		if asciiEqualFold(name, f.lower[i]) {
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

// memberReader hands the members an item type reads to fn, once each. It
// says no to a member encoding/json could read differently (see find) and
// to one given twice.
type memberReader struct {
	f    *fields
	seen uint64
	fn   func(i int, value []byte) bool
}

// member takes one member; it reports false when the item cannot be read
// here (fn's answer, or a member read differently or twice).
func (r *memberReader) member(name, value []byte) bool {
	i, ok := r.claim(name)
	if !ok || i == otherMember {
		return ok
	}
	return r.fn(i, value)
}

// claim returns the index of the member called name, or otherMember for
// one not read; ok is false for a member read differently or twice.
func (r *memberReader) claim(name []byte) (i int, ok bool) {
	switch i = r.f.find(name); {
	case i == otherMember:
		return i, true
	case i == unsure || r.seen&(1<<i) != 0:
		return i, false
	default:
		r.seen |= 1 << i
		return i, true
	}
}

// readMembers calls fn with the index of every member of the valid object
// b that f names, and its value. It reports false, without calling fn
// again, for a member encoding/json could read differently (see find), a
// member given twice, or when fn reports false.
func readMembers(b []byte, f *fields, fn func(i int, value []byte) bool) bool {
	if b[0] != '{' || len(f.names) > 64 {
		return false
	}
	r := memberReader{f: f, fn: fn}
	return eachMember(b, r.member)
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
func fastStrings(v []byte) ([]string, bool) { return fastArray(v, fastOptString) }

// fastArray reads a slice field whose elements elem reads: null is nil, []
// an empty slice; anything else, or an element elem does not take, is not
// read here.
func fastArray[T any](v []byte, elem func(e []byte) (T, bool)) ([]T, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '[':
	default:
		return nil, false
	}
	out := []T{}
	ok := eachElement(v, func(e []byte) bool {
		x, ok := elem(e)
		out = append(out, x)
		return ok
	})
	return out, ok
}

// fastPage decodes a list answer of T in one pass (see the top of this
// file) and reports whether it could: a JSON object whose data is an array
// of objects T reads (fastItem) and whose pagination, if any, is an object
// with a nextCursor and an integer totalItems. The items are read as the
// body is checked: a member T reads is decoded right after its value is
// checked, one it does not is checked and not looked at again.
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
		items          = make([]T, 0, 16)
		haveData       bool
		pag            []byte
		havePagination bool
		ok             = true
	)
	// item checks and reads the element at body[at], an item at depth 3.
	item := func(at int) (int, bool) {
		if !ok || at >= len(body) || body[at] != '{' {
			// Declined: encoding/json will decode the page.
			ok = false
			return at, false
		}
		var zero T
		items = append(items, zero)
		it := any(&items[len(items)-1]).(fastItem)
		var st itemScratch
		r := memberReader{f: it.fastFields(), fn: func(i int, value []byte) bool { return it.readMember(i, value, &st) }}
		nest, _ := it.(nestedItem)
		end, valid := v.object(at, 3, func(name []byte, at int) (int, bool) {
			if !ok {
				return v.value(at, 3)
			}
			i, claimed := r.claim(name)
			if !claimed {
				ok = false
				return v.value(at, 3)
			}
			if i == otherMember {
				return v.value(at, 3)
			}
			if nest != nil && at < len(body) && body[at] == '{' {
				if nf, fn := nest.fastNested(i, &st); nf != nil {
					nr := memberReader{f: nf, fn: fn}
					return v.object(at, 4, func(name []byte, at int) (int, bool) {
						end, valid := v.value(at, 4)
						if valid && ok && !nr.member(name, body[at:end]) {
							ok = false
						}
						return end, valid
					})
				}
			}
			end, valid := v.value(at, 3)
			if valid && !r.fn(i, body[at:end]) {
				ok = false
			}
			return end, valid
		})
		if valid && ok && !it.finish(body[at:end], &st) {
			ok = false
		}
		return end, valid
	}
	end, valid := v.object(start, 1, func(name []byte, at int) (int, bool) {
		switch topFields.find(name) {
		case 0: // data
			if haveData || at >= len(body) || body[at] != '[' {
				ok = false
				return -1, true
			}
			haveData = true
			return v.array(at, 2, item)
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
	p := &Page[T]{Items: items}
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
	}
	// pagination null: encoding/json leaves the struct as it is.
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
