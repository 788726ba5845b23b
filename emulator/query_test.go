package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestListErrors(t *testing.T) {
	h := newHarness(t)
	agentsPage := h.list(PathAgents, url.Values{"limit": {"1"}})
	threatsPage := h.list(PathThreats, url.Values{"limit": {"1"}, "sortBy": {"updatedAt"}})
	cases := []struct {
		name   string
		path   string
		q      url.Values
		title  string
		detail string
	}{
		{"limit zero", PathThreats, url.Values{"limit": {"0"}}, titleValidation, "limit: Must be greater than or equal to 1"},
		{"limit too big", PathThreats, url.Values{"limit": {"1001"}}, titleValidation, "limit"},
		{"limit not a number", PathAgents, url.Values{"limit": {"ten"}}, titleValidation, "limit: Not a valid integer."},
		{"skip too big", PathAgents, url.Values{"skip": {"1001"}}, titleValidation, "skip"},
		{"garbage cursor", PathThreats, url.Values{"cursor": {"test"}}, titleJSONValidation, detailBadCursor},
		{"base64 garbage cursor", PathThreats, url.Values{"cursor": {base64.StdEncoding.EncodeToString([]byte("agent_id:58029381"))}}, titleJSONValidation, detailBadCursor},
		{"cursor of another endpoint", PathThreats, url.Values{"cursor": {*agentsPage.nextCursor}}, titleJSONValidation, detailBadCursor},
		{"cursor with another sort", PathThreats, url.Values{"cursor": {*threatsPage.nextCursor}, "sortBy": {"createdAt"}}, titleJSONValidation, detailBadCursor},
		{"cursor with another order", PathThreats, url.Values{"cursor": {*threatsPage.nextCursor}, "sortOrder": {"desc"}}, titleJSONValidation, detailBadCursor},
		{"unknown sortBy", PathThreats, url.Values{"sortBy": {"severity"}}, titleValidation, "sortBy: Must be one of:"},
		{"bad sortOrder", PathThreats, url.Values{"sortOrder": {"up"}}, titleValidation, "sortOrder"},
		{"small site id", PathThreats, url.Values{"siteIds": {"0"}}, titleValidation, "siteIds: 0: Must be greater than or equal to 100000000000000000."},
		{"second id too small", PathAgents, url.Values{"ids": {"1555480684396399562,42"}}, titleValidation, "ids: 1: Must be greater than or equal to 100000000000000000."},
		{"id not a number", PathGroups, url.Values{"siteIds": {"abc"}}, titleValidation, "siteIds: 0: Not a valid integer."},
		{"status in the wrong case", PathThreats, url.Values{"incidentStatuses": {"RESOLVED"}}, titleValidation, "incidentStatuses: 0: Must be one of: unresolved, in_progress, resolved."},
		{"alert status in threat case", PathAlerts, url.Values{"incidentStatus": {"resolved"}}, titleValidation, "incidentStatus: 0: Must be one of: UNRESOLVED"},
		{"not a boolean", PathAgents, url.Values{"isActive": {"yes"}}, titleValidation, "isActive: 0: Not a valid boolean."},
		{"not a datetime", PathThreats, url.Values{"createdAt__gt": {"yesterday"}}, titleValidation, "createdAt__gt: Not a valid datetime."},
		{"contains too short", PathAgents, url.Values{"computerName__contains": {"a"}}, titleValidation, "computerName__contains: 0: Shorter than minimum length 2."},
		{"activity type not a number", PathActivities, url.Values{"activityTypes": {"login"}}, titleValidation, "activityTypes: 0: Not a valid integer."},
		{"countOnly not a boolean", PathSites, url.Values{"countOnly": {"maybe"}}, titleValidation, "countOnly"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(http.MethodGet, c.path, c.q, nil)
			wantAPIError(t, r, http.StatusBadRequest, CodeValidation, c.detail)
			if !strings.Contains(string(r.body), `"title":"`+c.title+`"`) {
				t.Errorf("title: %s, want %q", r.body, c.title)
			}
		})
	}
}

func TestGarbageCursorBodyIsExact(t *testing.T) {
	h := newHarness(t)
	r := h.do(http.MethodGet, PathThreats, url.Values{"cursor": {"test"}}, nil)
	want := `{"errors":[{"code":4000010,"title":"Validation JSONError","detail":"Invalid cursor value received"}]}`
	if r.status != http.StatusBadRequest || string(r.body) != want {
		t.Fatalf("%d %s, want 400 %s", r.status, r.body, want)
	}
}

// tiedEmulator has n threats spread over only a few timestamps.
func tiedHarness(t *testing.T, n int) *harness {
	t.Helper()
	s := DefaultSizes()
	s.Threats = 0
	h := newHarness(t, WithSizes(s))
	stamps := []time.Duration{-3 * time.Hour, -2 * time.Hour, -2 * time.Hour, -time.Hour, -time.Hour, -time.Hour}
	for i := 0; i < n; {
		k := min(n-i, 1+n/len(stamps))
		h.emu.AddThreats(k, testEpoch.Add(stamps[(i/k)%len(stamps)]))
		i += k
	}
	return h
}

func lessKey(ak, aid, bk, bid string) bool {
	if ak != bk {
		return ak < bk
	}
	if len(aid) != len(bid) {
		return len(aid) < len(bid)
	}
	return aid < bid
}

// checkOrder fails unless keys are strictly ordered on (field, id).
func checkOrder(t *testing.T, keys []threatKey, field string, desc bool) {
	t.Helper()
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if desc {
			a, b = b, a
		}
		if !lessKey(a.field(field), a.ID, b.field(field), b.ID) {
			t.Fatalf("items %d and %d out of order on %s: (%s,%s) then (%s,%s)", i-1, i, field,
				keys[i-1].field(field), keys[i-1].ID, keys[i].field(field), keys[i].ID)
		}
	}
}

func threatIDs(keys []threatKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// TestPaginationAcrossTies walks 5,000 threats that share six timestamps,
// 1,000 a page, both ways: every id comes exactly once, in (key, id) order.
func TestPaginationAcrossTies(t *testing.T) {
	const n = 5000
	h := tiedHarness(t, n)
	want := sortedCopy(h.emu.IDs().Threats)
	for _, order := range []string{"asc", "desc"} {
		keys := h.walkThreats(url.Values{"limit": {"1000"}, "sortBy": {"updatedAt"}, "sortOrder": {order}}, nil)
		if got := threatIDs(keys); !slices.Equal(sortedCopy(got), want) {
			t.Fatalf("%s: walk returned %d ids (%d distinct), want each of %d exactly once",
				order, len(got), len(slices.Compact(sortedCopy(got))), n)
		}
		checkOrder(t, keys, "updatedAt", order == "desc")
	}
}

// TestPaginationPaths walks every way a page can be found: from an index,
// an index range, a scan with predicates and a per-request sort.
func TestPaginationPaths(t *testing.T) {
	h := tiedHarness(t, 1500)
	var states []ThreatState
	for _, id := range h.emu.IDs().Threats {
		s, _ := h.emu.Threat(id)
		states = append(states, s)
	}
	at := func(hm string) time.Time {
		d, _ := time.ParseDuration(hm)
		return testEpoch.Truncate(24 * time.Hour).Add(d)
	}
	every := func(ThreatState) bool { return true }
	unresolved := func(s ThreatState) bool { return s.IncidentStatus == statusUnresolved }
	cases := []struct {
		sortBy, order string
		extra         url.Values
		keep          func(ThreatState) bool
	}{
		{"createdAt", "asc", nil, every},
		{"createdAt", "desc", nil, every},
		{"id", "asc", nil, every},
		{"id", "desc", nil, every},
		{"updatedAt", "asc", url.Values{"updatedAt__gte": {"2024-05-01T09:30:00.000000Z"}},
			func(s ThreatState) bool { return !s.UpdatedAt.Before(at("9h30m")) }},
		{"createdAt", "desc", url.Values{"createdAt__gt": {"2024-05-01T09:00:00.000000Z"}, "createdAt__lte": {"2024-05-01T10:00:00.000000Z"}},
			func(s ThreatState) bool { return s.CreatedAt.After(at("9h")) && !s.CreatedAt.After(at("10h")) }},
		{"updatedAt", "desc", url.Values{"incidentStatuses": {"unresolved"}}, unresolved},
		{"updatedAt", "asc", url.Values{"createdAt__lt": {"2024-05-01T11:00:00.000000Z"}},
			func(s ThreatState) bool { return s.CreatedAt.Before(at("11h")) }},
		{"classification", "asc", nil, every},
		{"classification", "desc", url.Values{"incidentStatuses": {"unresolved"}}, unresolved},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s %v", c.sortBy, c.order, c.extra), func(t *testing.T) {
			q := url.Values{"limit": {"100"}, "sortBy": {c.sortBy}, "sortOrder": {c.order}}
			for k, v := range c.extra {
				q[k] = v
			}
			var want []string
			for _, s := range states {
				if c.keep(s) {
					want = append(want, s.ID)
				}
			}
			if len(want) == 0 {
				t.Fatal("the case selects no threat")
			}
			keys := h.walkThreats(q, nil)
			if got := sortedCopy(threatIDs(keys)); !slices.Equal(got, sortedCopy(want)) {
				t.Fatalf("walk returned %d ids (%d distinct), want each of %d exactly once",
					len(got), len(slices.Compact(slices.Clone(got))), len(want))
			}
			checkOrder(t, keys, c.sortBy, c.order == "desc")
		})
	}
}

// TestCursorStableWhileItemsChange pages through threats by updatedAt while
// threats are updated and added between pages, as an ingestion poller sees
// them: nothing present at the start is skipped, and only the updated ones
// may be seen twice (at their old and their new position).
func TestCursorStableWhileItemsChange(t *testing.T) {
	h := tiedHarness(t, 1500)
	before := h.emu.IDs().Threats
	updated := map[string]bool{}
	q := url.Values{"limit": {"100"}, "sortBy": {"updatedAt"}, "sortOrder": {"asc"},
		"updatedAt__gte": {"2024-01-01T00:00:00.000000Z"}}
	step := 0
	keys := h.walkThreats(q, func(page int) {
		h.clock.Advance(time.Second)
		for k := range 15 {
			id := before[(page*977+k*131)%len(before)]
			if err := h.emu.UpdateThreat(id, ThreatUpdate{IncidentStatus: []string{statusInProgress, statusResolved}[step%2]}); err != nil {
				t.Fatal(err)
			}
			updated[id] = true
			step++
		}
		h.emu.AddThreats(3, time.Time{})
	})
	checkOrder(t, keys, "updatedAt", false)
	seen := map[string]int{}
	for _, k := range keys {
		seen[k.ID]++
	}
	for _, id := range before {
		if seen[id] == 0 {
			t.Fatalf("threat %s was skipped", id)
		}
	}
	twice := 0
	for id, n := range seen {
		if n > 1 {
			twice++
			if !updated[id] || n > 2 {
				t.Fatalf("threat %s seen %d times (updated: %v)", id, n, updated[id])
			}
		}
	}
	if len(updated) == 0 || twice == 0 {
		t.Fatalf("the test moved nothing across the cursor (updated %d, seen twice %d)", len(updated), twice)
	}
}

func TestSkipAndCountOnly(t *testing.T) {
	h := newHarness(t)
	all := ids(h.list(PathThreats, url.Values{"limit": {"30"}, "sortBy": {"id"}}).items, "id")
	skipped := h.list(PathThreats, url.Values{"limit": {"10"}, "skip": {"5"}, "sortBy": {"id"}})
	if !slices.Equal(ids(skipped.items, "id"), all[5:15]) {
		t.Error("skip=5 did not start at the sixth item")
	}
	c := h.list(PathThreats, url.Values{"countOnly": {"true"}, "incidentStatuses": {"resolved"}})
	if len(c.items) != 0 || c.total == 0 || c.nextCursor != nil {
		t.Errorf("countOnly: %d items, total %d, cursor %v", len(c.items), c.total, c.nextCursor)
	}
	def := h.list(PathThreats, nil)
	if len(def.items) != DefaultLimit || def.total != DefaultSizes().Threats || def.nextCursor == nil {
		t.Errorf("default page: %d items of %d, cursor %v", len(def.items), def.total, def.nextCursor)
	}
	last := h.list(PathThreats, url.Values{"limit": {"1000"}})
	if last.nextCursor != nil {
		t.Errorf("last page has nextCursor %q, want null", *last.nextCursor)
	}
	if !strings.Contains(string(h.do(http.MethodGet, PathThreats, url.Values{"limit": {"1000"}}, nil).body), `"nextCursor":null`) {
		t.Error("nextCursor of the last page is not JSON null")
	}
}

func TestQueryArraysCSVAndRepeatedKeys(t *testing.T) {
	h := newHarness(t)
	tids := h.emu.IDs().Threats
	csv := h.list(PathThreats, url.Values{"ids": {tids[3] + "," + tids[9]}})
	rep := h.list(PathThreats, url.Values{"ids": {tids[3], tids[9]}})
	mixed := h.list(PathThreats, url.Values{"ids": {tids[3] + ", " + tids[9], tids[9]}})
	for _, l := range []list{csv, rep, mixed} {
		if got := sortedCopy(ids(l.items, "id")); !slices.Equal(got, sortedCopy([]string{tids[3], tids[9]})) {
			t.Errorf("got %v", got)
		}
	}
	for _, v := range []string{"True", "TRUE", "true"} {
		if l := h.list(PathAgents, url.Values{"isActive": {v}, "limit": {"1000"}}); l.total == 0 {
			t.Errorf("isActive=%s matched nothing", v)
		}
	}
	both := h.list(PathAgents, url.Values{"isActive": {"True,False"}, "limit": {"1000"}})
	if both.total != len(h.emu.IDs().Agents) {
		t.Errorf("isActive=True,False matched %d of %d", both.total, len(h.emu.IDs().Agents))
	}
	if l := h.list(PathThreats, url.Values{"noSuchFilter": {"x"}, "created_at__gt": {"2030-01-01"}}); l.total != DefaultSizes().Threats {
		t.Errorf("unknown parameters changed the answer: %d", l.total)
	}
}

func TestSortOtherFields(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ path, sortBy, keyPath string }{
		{PathAgents, "computerName", "computerName"},
		{PathGroups, "name", "name"},
		{PathAlerts, "alertInfoCreatedAt", "alertInfo.createdAt"},
		{PathActivities, "createdAt", "createdAt"},
		{PathRestrictions, "value", "value"},
	}
	for _, c := range cases {
		for _, order := range []string{"asc", "desc"} {
			items := h.walk(c.path, url.Values{"sortBy": {c.sortBy}, "sortOrder": {order}, "limit": {"7"}}, nil)
			if len(items) < 2 {
				t.Fatalf("%s: %d items", c.path, len(items))
			}
			idPath := "id"
			if c.path == PathAlerts {
				idPath = "alertInfo.alertId"
			}
			for i := 1; i < len(items); i++ {
				ak, aid := str(items[i-1], c.keyPath), str(items[i-1], idPath)
				bk, bid := str(items[i], c.keyPath), str(items[i], idPath)
				if order == "desc" {
					ak, aid, bk, bid = bk, bid, ak, aid
				}
				if !lessKey(ak, aid, bk, bid) {
					t.Fatalf("%s sortBy=%s %s: out of order at %d", c.path, c.sortBy, order, i)
				}
			}
		}
	}
}
