package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func postRestriction(h *harness, value, os string, filter map[string]any) response {
	return h.do(http.MethodPost, PathRestrictions, nil, map[string]any{
		"data":   map[string]any{"type": "black_hash", "value": value, "osType": os, "description": "SOAR block", "source": ""},
		"filter": filter,
	})
}

func TestRestrictionLifecycle(t *testing.T) {
	h := newHarness(t)
	const sha1 = "0123456789abcdef0123456789abcdef01234567"
	r := h.do(http.MethodPost, PathRestrictions, nil, map[string]any{
		"data":   map[string]any{"type": "black_hash", "value": sha1, "osType": "windows", "description": "SOAR block", "sha256Value": "ab" + sha1 + "0123456789abcdef012345"},
		"filter": map[string]any{"tenant": true},
	})
	if r.status != http.StatusOK {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &created); err != nil || len(created.Data) != 1 {
		t.Fatalf("create answer %s: %v", r.body, err)
	}
	item := created.Data[0]
	if str(item, "value") != sha1 || str(item, "scopeName") != "Global" || get(item, "scope.tenant") != true ||
		str(item, "type") != "black_hash" || str(item, "osType") != "windows" || !idRE.MatchString(str(item, "id")) ||
		str(item, "sha256Value") == "" || str(item, "source") != "user" {
		t.Errorf("created item %v", item)
	}
	// The same hash, OS and scope again: 4000030.
	wantAPIError(t, postRestriction(h, sha1, "windows", map[string]any{"tenant": "true"}), http.StatusBadRequest, CodeAlreadyExists, "")
	if !json.Valid(postRestriction(h, sha1, "windows", map[string]any{"tenant": true}).body) {
		t.Error("duplicate answer is not JSON")
	}
	// Another OS, or another scope, is a new item.
	if r := postRestriction(h, sha1, "linux", map[string]any{"tenant": true}); r.status != http.StatusOK {
		t.Fatalf("other OS: %d %s", r.status, r.body)
	}
	site := h.emu.IDs().Sites[1]
	if r := postRestriction(h, sha1, "windows", map[string]any{"siteIds": site}); r.status != http.StatusOK {
		t.Fatalf("site scope (csv string): %d %s", r.status, r.body)
	}
	byValue := url.Values{"value": {sha1}, "tenant": {"true"}}
	if l := h.list(PathRestrictions, byValue); l.total != 2 {
		t.Errorf("tenant list: %d items, want the 2 global ones", l.total)
	}
	byValue.Set("includeChildren", "true")
	l := h.list(PathRestrictions, byValue)
	if l.total != 3 {
		t.Fatalf("tenant+children: %d items, want 3", l.total)
	}
	// Delete by ids; unknown ids are not counted.
	del := h.do(http.MethodDelete, PathRestrictions, nil, map[string]any{
		"data": map[string]any{"ids": append(ids(l.items, "id"), "1999999999999999999"), "type": "black_hash"},
	})
	var aff struct {
		Data affected `json:"data"`
	}
	if err := json.Unmarshal(del.body, &aff); err != nil || del.status != http.StatusOK || aff.Data.Affected != 3 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	if l := h.list(PathRestrictions, byValue); l.total != 0 {
		t.Errorf("%d items left after delete", l.total)
	}
	if r := h.do(http.MethodDelete, PathRestrictions, nil, map[string]any{"data": map[string]any{"ids": []string{"1"}}}); r.status != http.StatusBadRequest {
		t.Errorf("delete of id 1: %d", r.status)
	}
}

func TestRestrictionScopeRule(t *testing.T) {
	h := newHarness(t)
	ids := h.emu.IDs()
	siteA, siteB := ids.Sites[0], ids.Sites[1]
	groupA := h.list(PathGroups, url.Values{"siteIds": {siteA}, "isDefault": {"true"}}).items[0]["id"].(string)
	const v = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, f := range []map[string]any{
		{"tenant": true}, {"accountIds": []string{ids.Account}}, {"siteIds": []string{siteA}},
		{"siteIds": []string{siteB}}, {"groupIds": []string{groupA}},
	} {
		if r := postRestriction(h, v, "macos", f); r.status != http.StatusOK {
			t.Fatalf("create %v: %d %s", f, r.status, r.body)
		}
	}
	scopes := func(q url.Values) []string {
		q.Set("value", v)
		var out []string
		for _, it := range h.list(PathRestrictions, q).items {
			out = append(out, str(it, "scopeName"))
		}
		slices.Sort(out)
		return out
	}
	siteAName, siteBName := "Default site", "Europe"
	cases := []struct {
		q    url.Values
		want []string
	}{
		{url.Values{}, []string{"Global"}},
		{url.Values{"tenant": {"True"}}, []string{"Global"}},
		{url.Values{"tenant": {"true"}, "includeChildren": {"true"}}, []string{"Acme Corp", "Default Group", siteAName, siteBName, "Global"}},
		{url.Values{"accountIds": {ids.Account}}, []string{"Acme Corp"}},
		{url.Values{"accountIds": {ids.Account}, "includeParents": {"true"}}, []string{"Acme Corp", "Global"}},
		{url.Values{"siteIds": {siteA}}, []string{siteAName}},
		{url.Values{"siteIds": {siteA}, "includeParents": {"true"}}, []string{"Acme Corp", siteAName, "Global"}},
		{url.Values{"siteIds": {siteA}, "includeChildren": {"true"}}, []string{"Default Group", siteAName}},
		{url.Values{"siteIds": {siteB}, "includeChildren": {"true"}, "includeParents": {"true"}}, []string{"Acme Corp", siteBName, "Global"}},
		{url.Values{"groupIds": {groupA}, "includeParents": {"true"}}, []string{"Acme Corp", "Default Group", siteAName, "Global"}},
		{url.Values{"siteIds": {siteA, siteB}}, []string{siteAName, siteBName}},
	}
	for _, c := range cases {
		want := slices.Clone(c.want)
		slices.Sort(want)
		if got := scopes(c.q); !slices.Equal(got, want) {
			t.Errorf("%s: scopes %v, want %v", c.q.Encode(), got, want)
		}
	}
}

func TestRestrictionErrors(t *testing.T) {
	h := newHarness(t)
	const v = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	cases := []struct {
		name   string
		body   any
		code   int
		detail string
	}{
		{"small site id", map[string]any{"data": map[string]any{"type": "black_hash", "value": v, "osType": "linux"}, "filter": map[string]any{"siteIds": []string{"0"}}},
			CodeValidation, "siteIds: 0: Must be greater than or equal to 100000000000000000."},
		{"unknown site", map[string]any{"data": map[string]any{"type": "black_hash", "value": v, "osType": "linux"}, "filter": map[string]any{"siteIds": []string{"1999999999999999999"}}},
			CodeValidation, "Cannot find blocklist or exclusion for the requested scope [1999999999999999999]"},
		{"no scope", map[string]any{"data": map[string]any{"type": "black_hash", "value": v, "osType": "linux"}, "filter": map[string]any{}},
			CodeValidation, "filter: One of these filter arguments must be supplied"},
		{"sha256 as value", map[string]any{"data": map[string]any{"type": "black_hash", "value": v + v[:24], "osType": "linux"}, "filter": map[string]any{"tenant": true}},
			CodeValidation, "data: value: Not a valid SHA1 hash."},
		{"exclusion type", map[string]any{"data": map[string]any{"type": "white_hash", "value": v, "osType": "linux"}, "filter": map[string]any{"tenant": true}},
			CodeValidation, "data: type: Must be one of: black_hash."},
		{"bad os", map[string]any{"data": map[string]any{"type": "black_hash", "value": v, "osType": "android"}, "filter": map[string]any{"tenant": true}},
			CodeValidation, "data: osType"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantAPIError(t, h.do(http.MethodPost, PathRestrictions, nil, c.body), http.StatusBadRequest, c.code, c.detail)
		})
	}
	wantAPIError(t, h.do(http.MethodGet, PathRestrictions, url.Values{"siteIds": {"12"}}, nil), http.StatusBadRequest, CodeValidation,
		"siteIds: 0: Must be greater than or equal to 100000000000000000.")
	// The seeded Global items block HashMalicious for three OSes.
	if l := h.list(PathRestrictions, url.Values{"value": {HashMalicious}, "tenant": {"true"}}); l.total != 3 {
		t.Errorf("seeded HashMalicious items: %d, want 3", l.total)
	}
	if l := h.list(PathRestrictions, url.Values{"value": {"3395856CE81F2B7382DEE72602F798B642F14140"}}); l.total != 0 {
		t.Error("value is case-sensitive on the console; upper case matched")
	}
	if l := h.list(PathRestrictions, url.Values{"value__contains": {"3395856CE81F"}}); l.total != 3 {
		t.Errorf("value__contains is case-insensitive; matched %d", l.total)
	}
}
