package handlers

import (
	"maps"
	"net/http"
	"slices"
	"testing"
)

func TestBlocklistDeleteByHash(t *testing.T) {
	c := newConsole(t)
	var entries []string
	for i := range 3 {
		entries = append(entries, restrictionJSON(id(20+i), sha1Hex, []string{"windows", "macos", "linux"}[i]))
	}
	// Two pages: the lookup reads them all.
	c.handle("GET /restrictions", func(w http.ResponseWriter, r *http.Request, cl call) {
		q := maps.Clone(cl.Query) // the recorded call keeps what was sent
		q.Set("limit", "2")
		cl.Query = q
		collection{items: entries}.route(w, r, cl)
	})
	c.answer("DELETE /restrictions", 200, `{"data":{"affected":3},"errors":[{}]}`)
	var got BlocklistDeleteReply
	mustRun(t, c.env(), ActionBlocklistDelete, `{"hash":"`+sha1Hex+`"}`, &got)
	want := []string{id(20), id(21), id(22)}
	if got.Affected != 3 || !slices.Equal(got.IDs, want) {
		t.Errorf("reply %+v", got)
	}
	gets := c.callsTo("GET /restrictions")
	if len(gets) != 2 || gets[0].Query.Get("value__contains") != sha1Hex || gets[0].Query.Get("includeParents") != "true" ||
		gets[0].Query.Get("limit") != "1000" || gets[1].Query.Get("cursor") != cursorAt(2) {
		t.Errorf("lookups %+v", gets)
	}
	dels := c.callsTo("DELETE /restrictions")
	if len(dels) != 1 || asJSON(body(t, dels[0])) != `{"data":{"ids":["`+want[0]+`","`+want[1]+`","`+want[2]+`"],"type":"black_hash"}}` {
		t.Errorf("deletes %+v", dels)
	}
}

func TestBlocklistDeleteByHashNothingFound(t *testing.T) {
	c := newConsole(t)
	c.handle("GET /restrictions", collection{}.route)
	b := mustRun(t, c.env(), ActionBlocklistDelete, `{"hash":"`+sha1Hex+`","scope":{"siteIds":["`+id(1)+`"]}}`, nil)
	if string(b) != `{"affected":0,"ids":[]}` {
		t.Errorf("reply %s", b)
	}
	if q := c.callsTo("GET /restrictions")[0].Query; q.Get("siteIds") != id(1) || q.Get("tenant") != "false" {
		t.Errorf("lookup %s", q.Encode())
	}
	if n := len(c.callsTo("DELETE /restrictions")); n != 0 {
		t.Errorf("%d deletes with nothing to delete", n)
	}
}

func TestBlocklistDeleteByIDs(t *testing.T) {
	c := newConsole(t)
	c.answer("DELETE /restrictions", 200, `{"data":{"affected":1}}`)
	var got BlocklistDeleteReply
	mustRun(t, c.env(), ActionBlocklistDelete, `{"ids":["`+id(5)+`","`+id(6)+`"]}`, &got)
	if got.Affected != 1 || !slices.Equal(got.IDs, []string{id(5), id(6)}) {
		t.Errorf("reply %+v", got)
	}
	if n := len(c.Calls()); n != 1 {
		t.Errorf("%d calls, want the DELETE alone", n)
	}
}
