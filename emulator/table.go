package emulator

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
)

// row is what every stored object shares: its identity, the two timestamps
// lists sort and filter on, and the cached JSON rendering. Rows are mutated
// only under the store's write lock; the cache is atomic so that readers
// holding the read lock may fill it.
type row struct {
	id      uint64
	idStr   string
	created int64 // unix nanoseconds, a whole microsecond
	updated int64
	// hiddenUntil models late indexing: queries do not see the row while the
	// clock is before it (unix nanoseconds; 0 = visible).
	hiddenUntil int64
	cache       atomic.Pointer[[]byte]
}

func (r *row) base() *row { return r }

// invalidate drops the cached rendering after a change.
func (r *row) invalidate() { r.cache.Store(nil) }

// record is implemented by every stored type through its embedded row.
type record interface{ base() *row }

// sortKey orders rows: by n, then s, then id. Time fields use n, text fields s.
type sortKey struct {
	n  int64
	s  string
	id uint64
}

func compareKeys(a, b sortKey) int {
	if c := cmp.Compare(a.n, b.n); c != 0 {
		return c
	}
	if c := cmp.Compare(a.s, b.s); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// sortField describes one sortBy value of a collection.
type sortField[R record] struct {
	native native // the index that serves it, or nativeNone for a full sort
	num    func(R) int64
	str    func(R) string
}

// native names the indexes every table keeps.
type native uint8

const (
	nativeNone native = iota
	nativeID
	nativeCreated
	nativeUpdated
)

func (f sortField[R]) key(r R) sortKey {
	b := r.base()
	k := sortKey{id: b.id}
	switch f.native {
	case nativeCreated:
		k.n = b.created
	case nativeUpdated:
		k.n = b.updated
	case nativeNone:
		if f.num != nil {
			k.n = f.num(r)
		}
		if f.str != nil {
			k.s = f.str(r)
		}
	}
	return k
}

// table stores one collection with the indexes its lists need: by id, by
// (createdAt, id) and by (updatedAt, id). A page sorted and ranged on one of
// these is found by binary search, so it costs O(log n + page).
type table[R record] struct {
	byID    map[uint64]R
	ids     []R
	created []R
	updated []R
	hidden  int // rows with hiddenUntil != 0
}

func newTable[R record]() *table[R] {
	return &table[R]{byID: make(map[uint64]R)}
}

func (t *table[R]) get(id uint64) (R, bool) {
	r, ok := t.byID[id]
	return r, ok
}

func (t *table[R]) index(n native) []R {
	switch n {
	case nativeCreated:
		return t.created
	case nativeUpdated:
		return t.updated
	default:
		return t.ids
	}
}

func (t *table[R]) setIndex(n native, s []R) {
	switch n {
	case nativeCreated:
		t.created = s
	case nativeUpdated:
		t.updated = s
	default:
		t.ids = s
	}
}

func nativeKey[R record](n native, r R) sortKey {
	return sortField[R]{native: n}.key(r)
}

// insert adds new rows and keeps every index sorted.
func (t *table[R]) insert(rs ...R) {
	for _, r := range rs {
		t.byID[r.base().id] = r
		if r.base().hiddenUntil != 0 {
			t.hidden++
		}
	}
	for _, n := range []native{nativeID, nativeCreated, nativeUpdated} {
		t.setIndex(n, mergeSorted(n, t.index(n), rs))
	}
}

// remove deletes rows from the table.
func (t *table[R]) remove(rs ...R) {
	gone := make(map[uint64]bool, len(rs))
	for _, r := range rs {
		b := r.base()
		if _, ok := t.byID[b.id]; !ok {
			continue
		}
		gone[b.id] = true
		delete(t.byID, b.id)
		if b.hiddenUntil != 0 {
			t.hidden--
		}
	}
	for _, n := range []native{nativeID, nativeCreated, nativeUpdated} {
		t.setIndex(n, slices.DeleteFunc(t.index(n), func(r R) bool { return gone[r.base().id] }))
	}
}

// touch sets updatedAt of rows already in the table and re-sorts that index.
// A few rows move by binary search; many are removed in one pass and merged
// back, so a bulk update costs O(n + k log k) rather than O(n·k).
func (t *table[R]) touch(rs []R, updated int64) {
	if len(rs) == 0 {
		return
	}
	if len(rs) <= 32 {
		for _, r := range rs {
			idx := t.updated
			i, found := slices.BinarySearchFunc(idx, nativeKey(nativeUpdated, r), func(e R, k sortKey) int {
				return compareKeys(nativeKey(nativeUpdated, e), k)
			})
			if found {
				idx = slices.Delete(idx, i, i+1)
			}
			r.base().updated = updated
			t.updated = insertSorted(nativeUpdated, idx, r)
		}
		return
	}
	moved := make(map[uint64]bool, len(rs))
	for _, r := range rs {
		moved[r.base().id] = true
		r.base().updated = updated
	}
	rest := slices.DeleteFunc(t.updated, func(r R) bool { return moved[r.base().id] })
	t.updated = mergeSorted(nativeUpdated, rest, rs)
}

func insertSorted[R record](n native, s []R, r R) []R {
	k := nativeKey(n, r)
	i, _ := slices.BinarySearchFunc(s, k, func(e R, k sortKey) int { return compareKeys(nativeKey(n, e), k) })
	return slices.Insert(s, i, r)
}

// mergeSorted returns s (sorted on n) with add merged in.
func mergeSorted[R record](n native, s []R, add []R) []R {
	if len(add) == 0 {
		return s
	}
	if len(add) <= 8 {
		for _, r := range add {
			s = insertSorted(n, s, r)
		}
		return s
	}
	add = slices.Clone(add)
	byKey := func(a, b R) int { return compareKeys(nativeKey(n, a), nativeKey(n, b)) }
	slices.SortFunc(add, byKey)
	if len(s) == 0 || byKey(s[len(s)-1], add[0]) < 0 {
		return append(s, add...)
	}
	out := make([]R, 0, len(s)+len(add))
	i, j := 0, 0
	for i < len(s) && j < len(add) {
		if byKey(s[i], add[j]) <= 0 {
			out = append(out, s[i])
			i++
		} else {
			out = append(out, add[j])
			j++
		}
	}
	out = append(out, s[i:]...)
	return append(out, add[j:]...)
}

// timeRange is an inclusive range of unix nanoseconds.
type timeRange struct {
	set    bool
	lo, hi int64
}

func (r timeRange) contains(v int64) bool { return !r.set || (v >= r.lo && v <= r.hi) }

func (r *timeRange) narrow(lo, hi int64) {
	if !r.set {
		r.set, r.lo, r.hi = true, lo, hi
		return
	}
	r.lo, r.hi = max(r.lo, lo), min(r.hi, hi)
}

// listQuery is a compiled list request.
type listQuery[R record] struct {
	limit, skip int
	countOnly   bool
	sortName    string
	sort        sortField[R]
	desc        bool
	after       *sortKey // from the cursor: the last item of the previous page
	ids         []uint64 // nil: no ids filter
	created     timeRange
	updated     timeRange
	preds       []func(R) bool
	now         int64
}

// page is one page of a list answer.
type page[R record] struct {
	items []R
	total int
	last  *sortKey // key of the last item when more items follow
}

func (q *listQuery[R]) match(r R) bool {
	b := r.base()
	if b.hiddenUntil != 0 && b.hiddenUntil > q.now {
		return false
	}
	if !q.created.contains(b.created) || !q.updated.contains(b.updated) {
		return false
	}
	for _, p := range q.preds {
		if !p(r) {
			return false
		}
	}
	return true
}

// query answers one list request.
func (t *table[R]) query(q *listQuery[R]) page[R] {
	if q.ids != nil {
		seen := make(map[uint64]bool, len(q.ids))
		var cands []R
		for _, id := range q.ids {
			if r, ok := t.byID[id]; ok && !seen[id] && q.match(r) {
				seen[id] = true
				cands = append(cands, r)
			}
		}
		return pageOfSorted(q, sortRows(q.sort, cands))
	}
	if q.sort.native == nativeNone {
		var cands []R
		for _, r := range t.ids {
			if q.match(r) {
				cands = append(cands, r)
			}
		}
		return pageOfSorted(q, sortRows(q.sort, cands))
	}
	idx := t.index(q.sort.native)
	var rng timeRange
	other := false // a range on a field this index is not sorted on
	switch q.sort.native {
	case nativeCreated:
		rng, other = q.created, q.updated.set
	case nativeUpdated:
		rng, other = q.updated, q.created.set
	default:
		other = q.created.set || q.updated.set
	}
	if rng.set {
		lo := lowerBound(idx, q.sort, sortKey{n: rng.lo})
		hi := upperBound(idx, q.sort, sortKey{n: rng.hi, id: math.MaxUint64})
		idx = idx[lo:max(lo, hi)]
	}
	if len(q.preds) == 0 && !other && t.hidden == 0 {
		return pageOfSorted(q, idx)
	}
	return t.scan(q, idx)
}

// scan walks idx (sorted ascending on q.sort) in the requested direction,
// counting every match and keeping the page after the cursor.
func (t *table[R]) scan(q *listQuery[R], idx []R) page[R] {
	var p page[R]
	skip := q.skip
	n := len(idx)
	for i := range n {
		r := idx[i]
		if q.desc {
			r = idx[n-1-i]
		}
		if !q.match(r) {
			continue
		}
		p.total++
		if q.countOnly {
			continue
		}
		if q.after != nil {
			c := compareKeys(q.sort.key(r), *q.after)
			if (!q.desc && c <= 0) || (q.desc && c >= 0) {
				continue
			}
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(p.items) < q.limit {
			p.items = append(p.items, r)
		} else if p.last == nil {
			k := q.sort.key(p.items[len(p.items)-1])
			p.last = &k
		}
	}
	return p
}

func sortRows[R record](f sortField[R], rs []R) []R {
	slices.SortFunc(rs, func(a, b R) int { return compareKeys(f.key(a), f.key(b)) })
	return rs
}

// lowerBound is the first index of s whose key is >= k.
func lowerBound[R record](s []R, f sortField[R], k sortKey) int {
	i, _ := slices.BinarySearchFunc(s, k, func(e R, k sortKey) int {
		if c := compareKeys(f.key(e), k); c != 0 {
			return c
		}
		return 1
	})
	return i
}

// upperBound is the first index of s whose key is > k.
func upperBound[R record](s []R, f sortField[R], k sortKey) int {
	i, _ := slices.BinarySearchFunc(s, k, func(e R, k sortKey) int {
		if c := compareKeys(f.key(e), k); c != 0 {
			return c
		}
		return -1
	})
	return i
}

// pageOfSorted cuts a page out of s, which holds exactly the matches sorted
// ascending on q.sort.
func pageOfSorted[R record](q *listQuery[R], s []R) page[R] {
	p := page[R]{total: len(s)}
	if q.countOnly {
		return p
	}
	if !q.desc {
		start := 0
		if q.after != nil {
			start = upperBound(s, q.sort, *q.after)
		}
		start = min(start+q.skip, len(s))
		end := min(start+q.limit, len(s))
		p.items = s[start:end]
		if end < len(s) && end > start {
			k := q.sort.key(s[end-1])
			p.last = &k
		}
		return p
	}
	start := len(s)
	if q.after != nil {
		start = lowerBound(s, q.sort, *q.after)
	}
	start = max(start-q.skip, 0)
	end := max(start-q.limit, 0)
	p.items = make([]R, 0, start-end)
	for i := start - 1; i >= end; i-- {
		p.items = append(p.items, s[i])
	}
	if end > 0 && start > end {
		k := q.sort.key(s[end])
		p.last = &k
	}
	return p
}

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }
