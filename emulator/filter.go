package emulator

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kind says how a filter parameter is parsed and matched. The console's
// grammar: <field> is an exact match or an IN list, <field>Nin is NOT IN,
// __contains a case-insensitive substring list, __like one substring,
// __gt/__gte/__lt/__lte/__between a range.
type kind uint8

const (
	kindIDs      kind = iota + 1 // list of ids >= 1e17, IN (and Nin)
	kindIn                       // list of strings, IN (and Nin), enum-checked when enum is set
	kindContains                 // list of substrings (2+ characters), any matches, case-insensitive
	kindLike                     // one substring, case-insensitive
	kindEq                       // one exact string
	kindBool                     // one boolean
	kindBools                    // list of booleans, IN
	kindTime                     // a timestamp: exact, or with a range suffix
	kindInt                      // an integer: exact, or with a range suffix
	kindQuery                    // free text over several fields
)

// param describes one filter parameter of a collection.
type param[R record] struct {
	kind   kind
	enum   []string
	str    func(R) string
	strs   func(R) []string // a multi-valued field; takes precedence over str
	flag   func(R) bool
	num    func(R) int64
	native native // the row's own id, createdAt or updatedAt, served by an index
	// numeric makes a kindIn list accept integers only (activityTypes).
	numeric bool
}

// anyValue reports whether f holds for one of the field's values. It does not
// allocate for single-valued fields, which matters in scans of many rows.
func (p param[R]) anyValue(r R, f func(string) bool) bool {
	if p.strs == nil {
		return f(p.str(r))
	}
	for _, v := range p.strs(r) {
		if f(v) {
			return true
		}
	}
	return false
}

// Constructors of params, one per kind; the accessor reads the field from a row.

func pRowID[R record]() param[R] { return param[R]{kind: kindIDs, native: nativeID} }
func pIDs[R record](f func(R) string) param[R] {
	return param[R]{kind: kindIDs, str: f}
}
func pIn[R record](f func(R) string, enum ...string) param[R] {
	return param[R]{kind: kindIn, str: f, enum: enum}
}
func pInAny[R record](f func(R) []string, enum ...string) param[R] {
	return param[R]{kind: kindIn, strs: f, enum: enum}
}
func pContains[R record](f func(R) string) param[R] { return param[R]{kind: kindContains, str: f} }
func pContainsAny[R record](f func(R) []string) param[R] {
	return param[R]{kind: kindContains, strs: f}
}
func pLike[R record](f func(R) string) param[R]    { return param[R]{kind: kindLike, str: f} }
func pEq[R record](f func(R) string) param[R]      { return param[R]{kind: kindEq, str: f} }
func pBool[R record](f func(R) bool) param[R]      { return param[R]{kind: kindBool, flag: f} }
func pBools[R record](f func(R) bool) param[R]     { return param[R]{kind: kindBools, flag: f} }
func pTime[R record](f func(R) int64) param[R]     { return param[R]{kind: kindTime, num: f} }
func pInt[R record](f func(R) int64) param[R]      { return param[R]{kind: kindInt, num: f} }
func pQuery[R record](f func(R) []string) param[R] { return param[R]{kind: kindQuery, strs: f} }
func pCreated[R record]() param[R]                 { return param[R]{kind: kindTime, native: nativeCreated} }
func pUpdated[R record]() param[R]                 { return param[R]{kind: kindTime, native: nativeUpdated} }
func pEnumEq[R record](f func(R) string, enum ...string) param[R] {
	return param[R]{kind: kindEq, str: f, enum: enum}
}

// absent adds filters on fields that are empty or null on every emulated
// item (container, Kubernetes, cloud and Active Directory metadata, tickets):
// they match nothing, as they would on a console without such hosts, rather
// than being ignored and matching everything.
func absent[R record](params map[string]param[R], names ...string) map[string]param[R] {
	none := func(R) string { return "" }
	for _, n := range names {
		if strings.HasSuffix(n, "__contains") {
			params[n] = pContains(none)
		} else {
			params[n] = pIn(none)
		}
	}
	return params
}

// Parameters every list endpoint takes for paging; they are not filters.
const (
	paramLimit     = "limit"
	paramSkip      = "skip"
	paramCursor    = "cursor"
	paramSortBy    = "sortBy"
	paramSortOrder = "sortOrder"
	paramCountOnly = "countOnly"
	paramSkipCount = "skipCount"
	paramIDs       = "ids"
	paramGroupIDs  = "groupIds"
	paramFilterID  = "filterId"
)

var pagingParams = map[string]bool{
	paramLimit: true, paramSkip: true, paramCursor: true, paramSortBy: true,
	paramSortOrder: true, paramCountOnly: true, paramSkipCount: true,
}

var rangeOps = []string{"__gte", "__gt", "__lte", "__lt", "__between"}

// applyFilters compiles every known filter in vals into q. Unknown names are
// ignored, as the console does.
func applyFilters[R record](params map[string]param[R], vals url.Values, q *listQuery[R]) *apiError {
	names := make([]string, 0, len(vals))
	for name := range vals {
		if !pagingParams[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names) // the first error reported must not depend on map order
	for _, name := range names {
		p, op, ok := lookupParam(params, name)
		if !ok {
			continue
		}
		if err := compileParam(name, p, op, vals[name], q); err != nil {
			return err
		}
	}
	return nil
}

func lookupParam[R record](params map[string]param[R], name string) (param[R], string, bool) {
	if p, ok := params[name]; ok {
		return p, "", true
	}
	for _, op := range rangeOps {
		if base, found := strings.CutSuffix(name, op); found {
			if p, ok := params[base]; ok && (p.kind == kindTime || p.kind == kindInt) {
				return p, op, true
			}
		}
	}
	if base, found := strings.CutSuffix(name, "Nin"); found {
		if p, ok := params[base]; ok && (p.kind == kindIn || p.kind == kindIDs) {
			return p, "Nin", true
		}
	}
	return param[R]{}, "", false
}

// splitList reads a list parameter given as csv, repeated keys, or both.
func splitList(raw []string) []string {
	var out []string
	for _, v := range raw {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

func single(raw []string) string {
	for _, v := range raw {
		if v != "" {
			return v
		}
	}
	return ""
}

func compileParam[R record](name string, p param[R], op string, raw []string, q *listQuery[R]) *apiError {
	switch p.kind {
	case kindIDs:
		items := splitList(raw)
		if len(items) == 0 {
			return nil
		}
		ids, err := parseIDs(name, items)
		if err != nil {
			return err
		}
		return compileIDs(p, op, ids, q)
	case kindIn:
		items := splitList(raw)
		if len(items) == 0 {
			return nil
		}
		if err := checkEnum(name, p.enum, items, true); err != nil {
			return err
		}
		if p.numeric {
			for i, it := range items {
				if _, err := strconv.Atoi(it); err != nil {
					return validation(fmt.Sprintf("%s: %d: Not a valid integer.", name, i))
				}
			}
		}
		set := make(map[string]bool, len(items))
		for _, it := range items {
			set[it] = true
		}
		want := op != "Nin"
		q.preds = append(q.preds, func(r R) bool { return p.anyValue(r, func(v string) bool { return set[v] }) == want })
	case kindContains:
		items := splitList(raw)
		if len(items) == 0 {
			return nil
		}
		needles := make([]string, len(items))
		for i, it := range items {
			if utf8.RuneCountInString(it) < 2 {
				return validation(fmt.Sprintf("%s: %d: Shorter than minimum length 2.", name, i))
			}
			needles[i] = strings.ToLower(it)
		}
		q.preds = append(q.preds, func(r R) bool { return p.anyValue(r, func(v string) bool { return anyContains(v, needles) }) })
	case kindLike, kindQuery:
		v := single(raw)
		if v == "" {
			return nil
		}
		needle := []string{strings.ToLower(v)}
		q.preds = append(q.preds, func(r R) bool { return p.anyValue(r, func(v string) bool { return anyContains(v, needle) }) })
	case kindEq:
		v := single(raw)
		if v == "" {
			return nil
		}
		if err := checkEnum(name, p.enum, []string{v}, false); err != nil {
			return err
		}
		q.preds = append(q.preds, func(r R) bool { return p.anyValue(r, func(x string) bool { return x == v }) })
	case kindBool, kindBools:
		items := splitList(raw)
		if len(items) == 0 {
			return nil
		}
		if p.kind == kindBool {
			items = items[:1]
		}
		var want [2]bool
		for i, it := range items {
			b, ok := parseBool(it)
			if !ok {
				if p.kind == kindBool {
					return validation(name + ": Not a valid boolean.")
				}
				return validation(fmt.Sprintf("%s: %d: Not a valid boolean.", name, i))
			}
			want[boolIndex(b)] = true
		}
		q.preds = append(q.preds, func(r R) bool { return want[boolIndex(p.flag(r))] })
	case kindTime:
		return compileTime(name, p, op, single(raw), q)
	case kindInt:
		v := single(raw)
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return validation(name + ": Not a valid integer.")
		}
		lo, hi := rangeOf(op, n, 1)
		q.preds = append(q.preds, func(r R) bool { x := p.num(r); return x >= lo && x <= hi })
	}
	return nil
}

func compileIDs[R record](p param[R], op string, ids []uint64, q *listQuery[R]) *apiError {
	if p.native == nativeID && op == "" {
		if q.ids != nil { // e.g. ids given in the query and in a body: both must hold
			keep := make(map[uint64]bool, len(ids))
			for _, id := range ids {
				keep[id] = true
			}
			q.ids = slices.DeleteFunc(q.ids, func(id uint64) bool { return !keep[id] })
			return nil
		}
		q.ids = ids
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[formatID(id)] = true
	}
	want := op != "Nin"
	if p.native == nativeID {
		q.preds = append(q.preds, func(r R) bool { return set[r.base().idStr] == want })
		return nil
	}
	q.preds = append(q.preds, func(r R) bool { return p.anyValue(r, func(v string) bool { return set[v] }) == want })
	return nil
}

func compileTime[R record](name string, p param[R], op, v string, q *listQuery[R]) *apiError {
	if v == "" {
		return nil
	}
	var lo, hi int64
	if op == "__between" {
		from, to, ok := parseBetween(v)
		if !ok {
			return validation(name + ": Invalid range, expected <fromEpochMs>-<toEpochMs>.")
		}
		lo, hi = from*int64(time.Millisecond), to*int64(time.Millisecond)+int64(time.Millisecond)-1
	} else {
		t, ok := parseTime(v)
		if !ok {
			return validation(name + ": Not a valid datetime.")
		}
		lo, hi = rangeOf(op, t, 1)
	}
	switch p.native {
	case nativeCreated:
		q.created.narrow(lo, hi)
	case nativeUpdated:
		q.updated.narrow(lo, hi)
	default:
		q.preds = append(q.preds, func(r R) bool { x := p.num(r); return x >= lo && x <= hi })
	}
	return nil
}

// rangeOf turns an operator and a value into inclusive bounds.
func rangeOf(op string, v, unit int64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	switch op {
	case "__gt":
		lo = v + unit
	case "__gte":
		lo = v
	case "__lt":
		hi = v - unit
	case "__lte":
		hi = v
	default:
		lo, hi = v, v
	}
	return lo, hi
}
