package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// threatsConsole serves n threats, each about itemBytes long, at GET /threats.
func threatsConsole(t *testing.T, n, pad int) (*console, []string) {
	t.Helper()
	c := newConsole(t)
	items := make([]string, n)
	ids := make([]string, n)
	for i := range items {
		ids[i] = id(i)
		items[i] = threatJSON(ids[i], pad)
	}
	c.handle("GET /threats", collection{items: items}.route)
	return c, ids
}

// encodedSize is the size of one threat item in a reply.
func encodedSize(t *testing.T, pad int) int {
	b, err := json.Marshal(json.RawMessage(threatJSON(id(0), pad)))
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// pageCalls returns the limit and cursor of each GET /threats.
func pageCalls(c *console) []string {
	var out []string
	for _, cl := range c.callsTo("GET /threats") {
		cur := cl.Query.Get("cursor")
		if off, ok := offsetOf(cur); ok {
			cur = "@" + strconv.Itoa(off)
		}
		out = append(out, cl.Query.Get("limit")+cur)
	}
	return out
}

func TestListOnePage(t *testing.T) {
	c, ids := threatsConsole(t, 25, 10)
	var got listResult
	mustRun(t, c.env(), ActionThreatsList, `{"limit":10}`, &got)
	if !slices.Equal(got.ids(t), ids[:10]) || got.TotalItems != 25 || got.Truncated {
		t.Errorf("ids %v total %d truncated %t", got.ids(t), got.TotalItems, got.Truncated)
	}
	if got.NextCursor == nil || *got.NextCursor != cursorAt(10) {
		t.Errorf("nextCursor %v, want SentinelOne's %q", got.NextCursor, cursorAt(10))
	}
	// The next request resumes there.
	mustRun(t, c.env(), ActionThreatsList, `{"limit":10,"cursor":"`+*got.NextCursor+`"}`, &got)
	if !slices.Equal(got.ids(t), ids[10:20]) {
		t.Errorf("second page %v", got.ids(t))
	}
	if calls := pageCalls(c); !slices.Equal(calls, []string{"10", "10@10"}) {
		t.Errorf("calls %v", calls)
	}
}

func TestListDefaultLimitAndEmpty(t *testing.T) {
	c, _ := threatsConsole(t, 0, 0)
	b := mustRun(t, c.env(), ActionThreatsList, `{}`, nil)
	if string(b) != `{"items":[],"nextCursor":null,"totalItems":0,"truncated":false}` {
		t.Errorf("empty list reply %s", b)
	}
	if calls := pageCalls(c); !slices.Equal(calls, []string{"100"}) {
		t.Errorf("calls %v, want one page of the default limit 100", calls)
	}
}

func TestListAllUnbounded(t *testing.T) {
	c, ids := threatsConsole(t, 25, 10)
	var got listResult
	mustRun(t, c.env(), ActionThreatsList, `{"limit":10,"all":true}`, &got)
	if !slices.Equal(got.ids(t), ids) || got.NextCursor != nil || got.Truncated || got.TotalItems != 25 {
		t.Errorf("got %d items, next %v, truncated %t, total %d", len(got.Items), got.NextCursor, got.Truncated, got.TotalItems)
	}
	if calls := pageCalls(c); !slices.Equal(calls, []string{"10", "10@10", "10@20"}) {
		t.Errorf("calls %v", calls)
	}
}

// TestListAllTruncated: pages of 3 accumulate until the next page would
// not fit; the reply ends with the cursor that fetched that page.
func TestListAllTruncated(t *testing.T) {
	const pad = 200
	c, ids := threatsConsole(t, 10, pad)
	env := c.env()
	size := encodedSize(t, pad)
	env.MaxReplyBytes = 7*(size+1) + 200 // room for 7 items: pages of 3 give 6
	var got listResult
	b := mustRun(t, env, ActionThreatsList, `{"limit":3,"all":true}`, &got)
	if len(b) > env.MaxReplyBytes {
		t.Errorf("reply of %d bytes exceeds MaxReplyBytes %d", len(b), env.MaxReplyBytes)
	}
	if !slices.Equal(got.ids(t), ids[:6]) || !got.Truncated || got.TotalItems != 10 {
		t.Fatalf("ids %v truncated %t total %d", got.ids(t), got.Truncated, got.TotalItems)
	}
	if got.NextCursor == nil || *got.NextCursor != cursorAt(6) {
		t.Fatalf("nextCursor %v, want the cursor that fetched the page that did not fit (%q)", got.NextCursor, cursorAt(6))
	}
	if calls := pageCalls(c); !slices.Equal(calls, []string{"3", "3@3", "3@6"}) {
		t.Errorf("calls %v", calls)
	}
	// Resuming gives exactly the rest: nothing lost, nothing repeated.
	var rest listResult
	mustRun(t, env, ActionThreatsList, `{"limit":3,"all":true,"cursor":"`+*got.NextCursor+`"}`, &rest)
	if !slices.Equal(rest.ids(t), ids[6:]) || rest.Truncated || rest.NextCursor != nil {
		t.Errorf("rest %v truncated %t next %v", rest.ids(t), rest.Truncated, rest.NextCursor)
	}
}

// TestListSmallerPage: a first page that does not fit is asked for again,
// with the same cursor and a limit of what fits.
func TestListSmallerPage(t *testing.T) {
	const pad = 300
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%t", all), func(t *testing.T) {
			c, ids := threatsConsole(t, 20, pad)
			env := c.env()
			env.MaxReplyBytes = 2*(encodedSize(t, pad)+1) + 200 // 2 items fit
			var got listResult
			b := mustRun(t, env, ActionThreatsList, fmt.Sprintf(`{"limit":10,"all":%t,"cursor":%q}`, all, cursorAt(5)), &got)
			if len(b) > env.MaxReplyBytes {
				t.Errorf("reply of %d bytes exceeds MaxReplyBytes %d", len(b), env.MaxReplyBytes)
			}
			if !slices.Equal(got.ids(t), ids[5:7]) || !got.Truncated {
				t.Errorf("ids %v truncated %t", got.ids(t), got.Truncated)
			}
			if got.NextCursor == nil || *got.NextCursor != cursorAt(7) {
				t.Errorf("nextCursor %v, want SentinelOne's cursor after the smaller page (%q)", got.NextCursor, cursorAt(7))
			}
			if calls := pageCalls(c); !slices.Equal(calls, []string{"10@5", "2@5"}) {
				t.Errorf("calls %v, want the page asked again with the same cursor and limit 2", calls)
			}
		})
	}
}

func TestListItemTooLarge(t *testing.T) {
	c, _ := threatsConsole(t, 3, 5000)
	env := c.env()
	env.MaxReplyBytes = 4000
	_, err := run(t, env, ActionThreatsList, `{"limit":3,"all":true}`)
	if err == nil || err.Code != CodeTooLarge || err.Retryable {
		t.Fatalf("err %v, want a 413", err)
	}
	if !strings.Contains(err.Message, "4000 bytes") {
		t.Errorf("message %q does not give the bound", err.Message)
	}
	if calls := pageCalls(c); !slices.Equal(calls, []string{"3"}) {
		t.Errorf("calls %v: an item that cannot fit needs no second call", calls)
	}
}

// TestListWalk follows nextCursor with all:true under many reply bounds,
// page sizes and item sizes (some items full of characters encoding/json
// escapes): every reply fits, and the replies together are the whole list,
// in order, each item once.
func TestListWalk(t *testing.T) {
	c := newConsole(t)
	var items, ids []string
	for i := range 40 {
		ids = append(ids, id(i))
		items = append(items, threatJSON(ids[i], (i*37)%400))
	}
	// An item whose "<" and "&" grow six-fold when encoded.
	items[13] = strings.Replace(items[13], `"invoice.exe"`, `"`+strings.Repeat("<&>", 60)+`"`, 1)
	c.handle("GET /threats", collection{items: items}.route)
	for _, maxBytes := range []int{2600, 4000, 9000, 30000} {
		for _, limit := range []int{1, 3, 7, 40} {
			env := c.env()
			env.MaxReplyBytes = maxBytes
			var seen []string
			cursor := ""
			for range 100 {
				req := fmt.Sprintf(`{"limit":%d,"all":true,"cursor":%q}`, limit, cursor)
				var got listResult
				b, err := run(t, env, ActionThreatsList, req)
				if err != nil {
					t.Fatalf("max %d limit %d: %v", maxBytes, limit, err)
				}
				if len(b) > maxBytes {
					t.Fatalf("max %d limit %d: reply of %d bytes", maxBytes, limit, len(b))
				}
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				seen = append(seen, got.ids(t)...)
				if got.NextCursor == nil {
					break
				}
				cursor = *got.NextCursor
			}
			if !slices.Equal(seen, ids) {
				t.Errorf("max %d limit %d: walked %v", maxBytes, limit, seen)
			}
		}
	}
}

// TestListItemsUnchanged: items are the console's objects, members and
// values untouched (only insignificant whitespace goes).
func TestListItemsUnchanged(t *testing.T) {
	c := newConsole(t)
	raw := threatJSON(id(1), 3)
	c.handle("GET /threats", collection{items: []string{raw}}.route)
	var got listResult
	mustRun(t, c.env(), ActionThreatsList, `{}`, &got)
	if len(got.Items) != 1 || !sameJSON(t, got.Items[0], []byte(raw)) {
		t.Errorf("item\n%s\nwant\n%s", got.Items[0], compact(t, []byte(raw)))
	}
}

// TestListCursorLoop: a console that hands back a cursor already followed
// does not make all:true spin.
func TestListCursorLoop(t *testing.T) {
	c := newConsole(t)
	c.handle("GET /threats", func(w http.ResponseWriter, _ *http.Request, _ call) {
		writeJSON(w, 200, `{"data":[`+threatJSON(id(1), 0)+`],"pagination":{"nextCursor":"same","totalItems":99}}`)
	})
	var got listResult
	mustRun(t, c.env(), ActionThreatsList, `{"all":true}`, &got)
	if len(got.Items) != 2 || got.NextCursor != nil {
		t.Errorf("items %d next %v", len(got.Items), got.NextCursor)
	}
	if n := len(c.callsTo("GET /threats")); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestPageSize(t *testing.T) {
	five := 5
	for _, tc := range []struct {
		p    ListParams
		want int
	}{{ListParams{}, DefaultLimit}, {ListParams{Limit: &five}, 5}} {
		if got := tc.p.PageSize(); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.p, got, tc.want)
		}
	}
}

// TestListWarnsOnlyOnARepeatedCursor captures the logs of lists that end
// normally, in one page or several, with and without all: none may warn
// that SentinelOne repeated a cursor. A console that does repeat one is
// still warned about, once, and the list stops there.
func TestListWarnsOnlyOnARepeatedCursor(t *testing.T) {
	const warning = "repeated a cursor"
	c, _ := threatsConsole(t, 25, 10)
	for _, req := range []string{`{}`, `{"limit":100}`, `{"all":true}`, `{"limit":10}`, `{"limit":10,"all":true}`, `{"limit":100,"all":true}`} {
		var logs bytes.Buffer // the handler and its client log from this goroutine
		env := c.env()
		env.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		mustRun(t, env, ActionThreatsList, req, nil)
		if strings.Contains(logs.String(), warning) {
			t.Errorf("threats.list %s logged a false warning:\n%s", req, logs.String())
		}
	}

	loop := newConsole(t)
	loop.handle("GET /threats", func(w http.ResponseWriter, _ *http.Request, _ call) {
		writeJSON(w, http.StatusOK, `{"data":[`+threatJSON(id(1), 0)+`],"pagination":{"nextCursor":"same","totalItems":9}}`)
	})
	var logs bytes.Buffer
	env := loop.env()
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var got listResult
	mustRun(t, env, ActionThreatsList, `{"all":true}`, &got)
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("a console repeating its cursor logged %d warnings, want 1:\n%s", n, logs.String())
	}
	if calls := len(loop.callsTo("GET /threats")); calls != 2 {
		t.Errorf("%d calls to a console repeating its cursor, want 2 (the first page and the repeat)", calls)
	}
	if got.NextCursor != nil {
		t.Errorf("nextCursor %q after a repeated cursor, want null", *got.NextCursor)
	}
}

// TestSizeHint: a list reply's size hint is never below what AppendJSON
// writes (the connector sizes the reply's buffer with it).
func TestSizeHint(t *testing.T) {
	cursor := func(s string) *string { return &s }
	for _, r := range []*ListReply{
		{Items: []json.RawMessage{}},
		{Items: []json.RawMessage{json.RawMessage(`{"id":"1"}`), json.RawMessage(`[1,2,3]`)}, NextCursor: cursor("YWJj"), TotalItems: 2},
		{Items: []json.RawMessage{json.RawMessage(`{}`)}, NextCursor: cursor(strings.Repeat("<", 100) + "\"\\\n\u2028"), TotalItems: -1 << 63, Truncated: true},
	} {
		if n, hint := len(r.AppendJSON(nil)), r.SizeHint(); hint < n {
			t.Errorf("SizeHint %d < %d bytes written for %+v", hint, n, r)
		}
		s := &SitesListReply{ListReply: *r, AllSites: json.RawMessage(`{"activeLicenses":3,"totalLicenses":10}`)}
		if n, hint := len(s.AppendJSON(nil)), s.SizeHint(); hint < n {
			t.Errorf("sites: SizeHint %d < %d bytes written", hint, n)
		}
	}
}
