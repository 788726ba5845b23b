package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testEpoch is the fixed "now" of tests that use a manual clock.
var testEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// manualClock is a clock a test moves by hand.
type manualClock struct{ ns atomic.Int64 }

func newManualClock(t time.Time) *manualClock {
	c := &manualClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *manualClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *manualClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// harness is an emulator served over real loopback HTTP.
type harness struct {
	t     *testing.T
	emu   *Emulator
	srv   *Server
	clock *manualClock
	http  *http.Client
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	clock := newManualClock(testEpoch)
	emu, err := New(append([]Option{WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv, err := emu.Start("")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &harness{t: t, emu: emu, srv: srv, clock: clock, http: &http.Client{Timeout: 20 * time.Second}}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("answer (%d) is not a JSON object: %v: %.300s", r.status, err, r.body)
	}
	return m
}

// do sends one request with the default token.
func (h *harness) do(method, path string, query url.Values, body any) response {
	h.t.Helper()
	return h.doAuth(method, path, query, body, AuthScheme+" "+DefaultToken)
}

func (h *harness) doAuth(method, path string, query url.Values, body any, auth string) response {
	h.t.Helper()
	u := h.srv.URL() + APIPrefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// list is one decoded list page.
type list struct {
	items      []map[string]any
	nextCursor *string
	total      int
}

func (h *harness) list(path string, q url.Values) list {
	h.t.Helper()
	r := h.do(http.MethodGet, path, q, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s?%s: %d %s", path, q.Encode(), r.status, r.body)
	}
	return decodeList(h.t, r)
}

func decodeList(t *testing.T, r response) list {
	t.Helper()
	var env struct {
		Data       []map[string]any `json:"data"`
		Pagination struct {
			NextCursor *string `json:"nextCursor"`
			TotalItems *int    `json:"totalItems"`
		} `json:"pagination"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("list answer does not decode: %v: %.300s", err, r.body)
	}
	if env.Pagination.TotalItems == nil {
		t.Fatalf("list answer lacks pagination.totalItems: %.300s", r.body)
	}
	return list{items: env.Data, nextCursor: env.Pagination.NextCursor, total: *env.Pagination.TotalItems}
}

// walk follows cursors to the end and returns every item, checking that
// totalItems stays the same on every page.
func (h *harness) walk(path string, q url.Values, between func(page int)) []map[string]any {
	h.t.Helper()
	var all []map[string]any
	q = cloneValues(q)
	total := -1
	for page := 0; ; page++ {
		l := h.list(path, q)
		if total >= 0 && l.total != total && between == nil {
			h.t.Fatalf("page %d: totalItems %d, first page said %d", page, l.total, total)
		}
		total = l.total
		all = append(all, l.items...)
		if l.nextCursor == nil {
			return all
		}
		if page > 100000 {
			h.t.Fatal("cursor loop does not end")
		}
		q.Set("cursor", *l.nextCursor)
		if between != nil {
			between(page)
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// get reads a dotted path out of a decoded JSON object.
func get(m map[string]any, path string) any {
	var cur any = m
	for p := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[p]
	}
	return cur
}

func str(m map[string]any, path string) string {
	s, _ := get(m, path).(string)
	return s
}

func ids(items []map[string]any, path string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = str(it, path)
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// fixture reads a captured response body from shared/sentinelone/fixtures.
func fixture(t *testing.T, name string) any {
	t.Helper()
	var dir string
	for d, _ := os.Getwd(); ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "shared", "sentinelone", "fixtures")
		if _, err := os.Stat(cand); err == nil {
			dir = cand
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if dir == "" {
		dir = "/work/shared/sentinelone/fixtures"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return v
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantAPIError(t *testing.T, r response, status, code int, detail string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var body struct {
		Errors []struct {
			Code   int     `json:"code"`
			Title  string  `json:"title"`
			Detail *string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("error body %q does not decode to one error: %v", r.body, err)
	}
	e := body.Errors[0]
	if e.Code != code {
		t.Errorf("code %d, want %d (%s)", e.Code, code, r.body)
	}
	if detail != "" && (e.Detail == nil || !strings.Contains(*e.Detail, detail)) {
		t.Errorf("detail %v, want it to contain %q", e.Detail, detail)
	}
}

// threatKey is the part of a threat the paging tests look at; decoding only
// it keeps walks over thousands of threats fast.
type threatKey struct {
	ID         string `json:"id"`
	ThreatInfo struct {
		CreatedAt      string `json:"createdAt"`
		UpdatedAt      string `json:"updatedAt"`
		Classification string `json:"classification"`
	} `json:"threatInfo"`
}

func (k threatKey) field(name string) string {
	switch name {
	case "createdAt":
		return k.ThreatInfo.CreatedAt
	case "updatedAt":
		return k.ThreatInfo.UpdatedAt
	case "classification":
		return k.ThreatInfo.Classification
	}
	return ""
}

// walkThreats follows cursors over GET /threats to the end, calling between
// after every page but the last.
func (h *harness) walkThreats(q url.Values, between func(page int)) []threatKey {
	h.t.Helper()
	var all []threatKey
	q = cloneValues(q)
	for page := 0; ; page++ {
		r := h.do(http.MethodGet, PathThreats, q, nil)
		if r.status != http.StatusOK {
			h.t.Fatalf("GET /threats?%s: %d %s", q.Encode(), r.status, r.body)
		}
		var env struct {
			Data       []threatKey `json:"data"`
			Pagination struct {
				NextCursor *string `json:"nextCursor"`
			} `json:"pagination"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			h.t.Fatal(err)
		}
		all = append(all, env.Data...)
		if env.Pagination.NextCursor == nil {
			return all
		}
		q.Set("cursor", *env.Pagination.NextCursor)
		if between != nil {
			between(page)
		}
	}
}
