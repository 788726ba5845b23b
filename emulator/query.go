package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// collection is a table with what its list endpoint needs: the filters it
// honours, the sortBy values it accepts and how an item renders.
type collection[R record] struct {
	name        string // namespaces cursors, so one endpoint's cursor is refused by another
	t           *table[R]
	params      map[string]param[R]
	sorts       map[string]sortField[R]
	defaultSort string
	// render appends an item's JSON. Most collections render once per change
	// through cached; threats splice in their agent's live fragment.
	render func(b []byte, r R) []byte
}

// cached appends r's cached JSON, building it first when a change dropped it.
func cached(b []byte, r *row, build func() []byte) []byte {
	if p := r.cache.Load(); p != nil {
		return append(b, *p...)
	}
	j := build()
	r.cache.Store(&j)
	return append(b, j...)
}

const (
	orderAsc  = "asc"
	orderDesc = "desc"
)

// parseList reads paging, sorting and filters of a list request.
func (c *collection[R]) parseList(vals url.Values, now int64) (*listQuery[R], *apiError) {
	q := &listQuery[R]{limit: DefaultLimit, now: now}
	if v := single(vals[paramLimit]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, validation("limit: Not a valid integer.")
		}
		if n < 1 || n > MaxLimit {
			return nil, validation("limit: Must be greater than or equal to 1 and less than or equal to 1000.")
		}
		q.limit = n
	}
	if v := single(vals[paramSkip]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, validation("skip: Not a valid integer.")
		}
		if n < 0 || n > maxSkip {
			return nil, validation("skip: Must be greater than or equal to 0 and less than or equal to 1000.")
		}
		q.skip = n
	}
	if v := single(vals[paramCountOnly]); v != "" {
		b, ok := parseBool(v)
		if !ok {
			return nil, validation("countOnly: Not a valid boolean.")
		}
		q.countOnly = b
	}
	sortName, order := single(vals[paramSortBy]), single(vals[paramSortOrder])
	if v := single(vals[paramCursor]); v != "" {
		cur, ok := c.decodeCursor(v)
		// A cursor continues one ordering: asking another with it is an error.
		if !ok || (sortName != "" && sortName != cur.sort) || (order != "" && order != cur.order) {
			return nil, badCursor()
		}
		sortName, order = cur.sort, cur.order
		q.after = &cur.key
	}
	if sortName == "" {
		sortName = c.defaultSort
	}
	f, ok := c.sorts[sortName]
	if !ok {
		return nil, validation("sortBy: Must be one of: " + strings.Join(slices.Sorted(maps.Keys(c.sorts)), ", ") + ".")
	}
	switch order {
	case "", orderAsc:
		order = orderAsc
	case orderDesc:
		q.desc = true
	default:
		return nil, validation("sortOrder: Must be one of: asc, desc.")
	}
	q.sortName, q.sort = sortName, f
	if err := applyFilters(c.params, vals, q); err != nil {
		return nil, err
	}
	return q, nil
}

// filterQuery compiles an action body's filter: every match, no paging.
func (c *collection[R]) filterQuery(vals url.Values, now int64) (*listQuery[R], *apiError) {
	q := &listQuery[R]{now: now, sort: sortField[R]{native: nativeID}}
	if err := applyFilters(c.params, vals, q); err != nil {
		return nil, err
	}
	return q, nil
}

// selectAll returns every row matching q, in id order.
func (c *collection[R]) selectAll(q *listQuery[R]) []R {
	var out []R
	if q.ids != nil {
		seen := make(map[uint64]bool, len(q.ids))
		for _, id := range q.ids {
			if r, ok := c.t.get(id); ok && !seen[id] && q.match(r) {
				seen[id] = true
				out = append(out, r)
			}
		}
		return sortRows(sortField[R]{native: nativeID}, out)
	}
	for _, r := range c.t.ids {
		if q.match(r) {
			out = append(out, r)
		}
	}
	return out
}

type cursorPos struct {
	sort, order string
	key         sortKey
}

// encodeCursor makes the opaque nextCursor: base64 of the collection, the
// ordering and the last item's sort key and id. Paging resumes strictly after
// that position, so items sharing one timestamp are neither lost nor repeated
// across page edges, and items changed between pages do not shift the rest.
func (c *collection[R]) encodeCursor(q *listQuery[R], k sortKey) string {
	order := orderAsc
	if q.desc {
		order = orderDesc
	}
	raw := strings.Join([]string{
		c.name, q.sortName, order, strconv.FormatInt(k.n, 10),
		base64.RawURLEncoding.EncodeToString([]byte(k.s)), strconv.FormatUint(k.id, 10),
	}, ":")
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

func (c *collection[R]) decodeCursor(s string) (cursorPos, bool) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return cursorPos{}, false
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 6 || parts[0] != c.name || (parts[2] != orderAsc && parts[2] != orderDesc) {
		return cursorPos{}, false
	}
	if _, ok := c.sorts[parts[1]]; !ok {
		return cursorPos{}, false
	}
	n, err1 := strconv.ParseInt(parts[3], 10, 64)
	str, err2 := base64.RawURLEncoding.DecodeString(parts[4])
	id, err3 := strconv.ParseUint(parts[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return cursorPos{}, false
	}
	return cursorPos{sort: parts[1], order: parts[2], key: sortKey{n: n, s: string(str), id: id}}, true
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 8<<20 { // let the rare huge page go instead of pinning it
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendItems appends the JSON array of a page's items.
func (c *collection[R]) appendItems(b []byte, items []R) []byte {
	b = append(b, '[')
	for i, r := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.render(b, r)
	}
	return append(b, ']')
}

// appendPagination appends ,"pagination":{...}} closing the envelope.
func (c *collection[R]) appendPagination(b []byte, q *listQuery[R], p page[R]) []byte {
	b = append(b, `,"pagination":{"nextCursor":`...)
	if p.last != nil {
		b = strconv.AppendQuote(b, c.encodeCursor(q, *p.last))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"totalItems":`...)
	b = strconv.AppendInt(b, int64(p.total), 10)
	return append(b, "}}"...)
}

// appendListBody appends the standard list envelope.
func (c *collection[R]) appendListBody(b []byte, q *listQuery[R], p page[R]) []byte {
	b = append(b, `{"data":`...)
	b = c.appendItems(b, p.items)
	return c.appendPagination(b, q, p)
}

// serveList answers a standard list request.
func serveList[R record](e *Emulator, w http.ResponseWriter, r *http.Request, c *collection[R]) {
	serveListOf(e, w, r.URL.Query(), c)
}

// serveListOf answers a list request whose query is vals.
func serveListOf[R record](e *Emulator, w http.ResponseWriter, vals url.Values, c *collection[R]) {
	buf := getBuf()
	defer putBuf(buf)
	e.settle()
	e.mu.RLock()
	q, err := c.parseList(vals, e.now())
	if err == nil {
		*buf = c.appendListBody(*buf, q, c.t.query(q))
	}
	e.mu.RUnlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, *buf)
}

// actionBody is the {"filter":{...},"data":{...}} envelope of a mutation.
type actionBody struct {
	filter url.Values
	data   map[string]json.RawMessage
}

// readAction decodes a mutation body. filter is required, as the Swagger
// says for every action used here; data only when needData is set.
func readAction(r *http.Request, needData bool) (*actionBody, *apiError) {
	var raw struct {
		Filter json.RawMessage            `json:"filter"`
		Data   map[string]json.RawMessage `json:"data"`
	}
	b, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, validation("filter: Missing data for required field.")
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, &apiError{status: http.StatusBadRequest, code: CodeValidation, title: titleJSONValidation, detail: ptr("Invalid JSON body.")}
	}
	if len(raw.Filter) == 0 || string(raw.Filter) == "null" {
		return nil, validation("filter: Missing data for required field.")
	}
	if needData && raw.Data == nil {
		return nil, validation("data: Missing data for required field.")
	}
	vals, err := bodyFilter(raw.Filter)
	if err != nil {
		return nil, err
	}
	return &actionBody{filter: vals, data: raw.Data}, nil
}

// dataString reads a string field of data; absent or null gives "".
func (a *actionBody) dataString(name string) (string, *apiError) {
	raw, ok := a.data[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", validation("data: " + name + ": Not a valid string.")
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }
