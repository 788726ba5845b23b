package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// gql sends one GraphQL request and decodes the answer.
func (h *harness) gql(query string, vars map[string]any) (int, map[string]any) {
	h.t.Helper()
	r := h.do("POST", PathUAMGraphQL, nil, map[string]any{"query": query, "variables": vars})
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		h.t.Fatalf("answer (%d) is not JSON: %v: %.300s", r.status, err, r.body)
	}
	return r.status, m
}

// gqlOK is gql for a request that must succeed; it returns data.
func (h *harness) gqlOK(query string, vars map[string]any) map[string]any {
	h.t.Helper()
	status, m := h.gql(query, vars)
	if status != 200 || m["errors"] != nil {
		h.t.Fatalf("HTTP %d, errors %v", status, m["errors"])
	}
	d, _ := m["data"].(map[string]any)
	return d
}

// gqlError is gql for a request that must fail; it returns the first
// error's message and classification.
func (h *harness) gqlError(query string, vars map[string]any) (string, string) {
	h.t.Helper()
	status, m := h.gql(query, vars)
	errs, _ := m["errors"].([]any)
	if status != 200 || len(errs) == 0 {
		h.t.Fatalf("HTTP %d, no errors: %v", status, m)
	}
	e := errs[0].(map[string]any)
	ext, _ := e["extensions"].(map[string]any)
	c, _ := ext["classification"].(string)
	return e["message"].(string), c
}

const uamListQuery = `query L($first: Int, $after: String, $filters: [FilterInput!], $sorts: [SortInput!]) {
  alerts(first: $first, after: $after, filters: $filters, sorts: $sorts) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status confidenceLevel updatedAt detectedAt } }
  }
}`

type uamPage struct {
	ids     []string
	nodes   []map[string]any
	total   int
	hasNext bool
	end     string
}

func (h *harness) uamList(vars map[string]any) uamPage {
	h.t.Helper()
	d := h.gqlOK(uamListQuery, vars)
	a := d["alerts"].(map[string]any)
	var p uamPage
	p.total = int(a["totalCount"].(float64))
	pi := a["pageInfo"].(map[string]any)
	p.hasNext = pi["hasNextPage"].(bool)
	p.end, _ = pi["endCursor"].(string)
	for _, e := range a["edges"].([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		p.nodes = append(p.nodes, n)
		p.ids = append(p.ids, n["id"].(string))
	}
	return p
}

func confFilter(levels ...any) map[string]any {
	return map[string]any{"fieldId": "confidenceLevel", "stringIn": map[string]any{"values": levels}}
}

// TestUAMSchemaLoads: the embedded schema (UAMSchema, the one copy of
// shared/sentinelone/uam-schema.graphql in the repository) parses.
func TestUAMSchemaLoads(t *testing.T) {
	if _, err := uamSchema(); err != nil {
		t.Fatal(err)
	}
}

// gqlRaw sends one GraphQL request and returns the answer's bytes.
func (h *harness) gqlRaw(query string, vars map[string]any) string {
	h.t.Helper()
	r := h.do("POST", PathUAMGraphQL, nil, map[string]any{"query": query, "variables": vars})
	if r.status != 200 {
		h.t.Fatalf("HTTP %d: %s", r.status, r.body)
	}
	return string(r.body)
}

// TestUAMSelection: the answer holds exactly the fields asked for, in
// order, under aliases, through fragments, with __typename and directives.
func TestUAMSelection(t *testing.T) {
	h := newHarness(t)
	id := UAMSeedIDs()[0]
	r := h.do("POST", PathUAMGraphQL, nil, map[string]any{
		"query": `query G($id: ID!, $no: Boolean!) { __typename first: alert(id: $id) { __typename ...core sev: severity
  assets { name } detectionSource { product } skipped: name @skip(if: true) kept: name @include(if: $no) } }
fragment core on UnifiedAlertDetail { id status detectionSource { vendor } }`,
		"variables": map[string]any{"id": id, "no": true}, "operationName": "G"})
	want := `{"data":{"__typename":"Query","first":{"__typename":"UnifiedAlertDetail","id":"` + id + `","status":"NEW",` +
		`"detectionSource":{"vendor":"SentinelOne","product":"EDR"},"sev":"CRITICAL","assets":[{"name":"` + h.assetOf(id) + `"}],` +
		`"kept":"invoice-tool.exe detected as Malware"}}}`
	if string(r.body) != want {
		t.Errorf("answer\n got %s\nwant %s", r.body, want)
	}
	// A union resolves through its inline fragments.
	got := h.gqlRaw(`mutation M($f: OrFilterSelectionInput) { alertTriggerActions(filter: $f, actions: [{id: "S1/alert/statusUpdate", payload: {status: {value: IN_PROGRESS}}}]) {
  __typename ... on ActionsTriggered { actions { actionId success { id } } } ... on TriggerActionsScheduled { executionId } } }`,
		map[string]any{"f": map[string]any{"or": []any{map[string]any{"and": []any{map[string]any{"fieldId": "id", "stringEqual": map[string]any{"value": id}}}}}}})
	if got != `{"data":{"alertTriggerActions":{"__typename":"ActionsTriggered","actions":[{"actionId":"S1/alert/statusUpdate","success":[{"id":"`+id+`"}]}]}}}` {
		t.Errorf("union: %s", got)
	}
}

func (h *harness) assetOf(id string) string {
	h.emu.mu.RLock()
	defer h.emu.mu.RUnlock()
	return h.emu.uam.byStr[id].assetName
}

// TestUAMValidationErrors: a query the schema does not allow fails as
// graphql-java fails it, with HTTP 200.
func TestUAMValidationErrors(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, query string
		vars        map[string]any
		class, msg  string
	}{
		{"unknown field", `{ alerts(first: 1) { edges { node { id bogus } } } }`, nil, classValidation, "Validation error (FieldUndefined) : Cannot query field \"bogus\" on type \"UnifiedAlert\"."},
		{"unknown argument", `{ alerts(first: 1, pageSize: 2) { totalCount } }`, nil, classValidation, "Validation error (UnknownArgument) : Unknown argument \"pageSize\" on field \"Query.alerts\"."},
		{"unknown type", `query Q($o: SortOrder) { alerts(first: 1) { totalCount } }`, nil, classValidation, "UnknownType"},
		{"no subselection", `mutation { alertTriggerActions { ... on TriggerActionsError { errors } } }`, nil, classValidation, "SubselectionRequired"},
		{"quoted enum", `{ alerts(first: 1, viewType: "ALL") { totalCount } }`, nil, classValidation, "WrongType"},
		{"bad enum variable", `mutation M($a: [TriggerActionInput!]!) { alertTriggerActions(actions: $a) { __typename } }`,
			map[string]any{"a": []any{map[string]any{"id": "S1/alert/statusUpdate", "payload": map[string]any{"status": map[string]any{"value": "OPEN"}}}}},
			classValidation, "Variable 'a' has an invalid value: 0.payload.status.value: OPEN is not a valid Status"},
		{"unknown input field", `query Q($f: [FilterInput!]) { alerts(first: 1, filters: $f) { totalCount } }`,
			map[string]any{"f": []any{map[string]any{"fieldId": "detectedAt", "dateRange": map[string]any{"from": 1}}}}, classValidation, "Variable 'f' has an invalid value"},
		{"syntax", `{ alerts(first: 1) { totalCount }`, nil, classSyntax, "Invalid Syntax"},
		{"not found", `{ alert(id: "00000000-0000-7000-8000-0000000000ff") { id } }`, nil, classDataFetching, "Exception while fetching data (/alert) : Required value was null."},
		{"filter field", `{ alerts(first: 1, filters: [{fieldId: "description", stringEqual: {value: "x"}}]) { totalCount } }`, nil, classDataFetching,
			"Field description does not exist or not supported for FILTER API call"},
		{"first over the ceiling", `{ alerts(first: 1001) { totalCount } }`, nil, classDataFetching, "Argument 'first' must be between 0 and 1000"},
		{"bad cursor", `{ alerts(first: 1, after: "nope") { totalCount } }`, nil, classDataFetching, "Invalid cursor value received"},
		{"two comparators", `{ alerts(first: 1, filters: [{fieldId: "status", stringEqual: {value: "NEW"}, stringIn: {values: ["NEW"]}}]) { totalCount } }`, nil, classDataFetching, "Only one filter"},
		{"filters and orFilter", `{ alerts(first: 1, filters: [{fieldId: "status", stringEqual: {value: "NEW"}}], orFilter: {or: []}) { totalCount } }`, nil, classDataFetching, "cannot be used together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, class := h.gqlError(tc.query, tc.vars)
			if class != tc.class || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s (%s), want %q (%s)", msg, class, tc.msg, tc.class)
			}
		})
	}
	// Introspection is valid GraphQL the emulator does not answer.
	if got := h.gqlRaw(`{ __schema { queryType { name } } }`, nil); !strings.Contains(got, "__schema is not implemented by the emulator") || !strings.HasSuffix(got, `"data":null}`) {
		t.Errorf("introspection: %s", got)
	}
	// The not-found answer is the fixture's shape.
	r := h.do("POST", PathUAMGraphQL, nil, map[string]any{"query": `query { alert(id: "00000000-0000-7000-8000-0000000000ff") { id } }`})
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	e := m["errors"].([]any)[0].(map[string]any)
	if fmt.Sprint(e["path"]) != "[alert]" || e["locations"] == nil || m["data"] != nil {
		t.Errorf("not found: %s", r.body)
	}
}

// TestUAMInformational: INFORMATIONAL alerts are hidden from a query that
// does not name the level, and found by one that does.
func TestUAMInformational(t *testing.T) {
	h := newHarness(t)
	all := h.uamList(map[string]any{"first": 1000, "filters": []any{confFilter("MALICIOUS", "SUSPICIOUS", "INFORMATIONAL", nil)}})
	plain := h.uamList(map[string]any{"first": 1000})
	info := h.uamList(map[string]any{"first": 1000, "filters": []any{confFilter("INFORMATIONAL")}})
	if len(all.ids) != 80 || all.total != 80 {
		t.Fatalf("every level named: %d of %d, want the 80 seeded", len(all.ids), all.total)
	}
	if len(info.ids) == 0 || plain.total != all.total-info.total || slices.Contains(plain.ids, UAMSeedIDs()[1]) || !slices.Contains(info.ids, UAMSeedIDs()[1]) {
		t.Errorf("plain %d, all %d, informational %d", plain.total, all.total, info.total)
	}
	for _, n := range plain.nodes {
		if n["confidenceLevel"] == "INFORMATIONAL" {
			t.Errorf("informational %s in an unfiltered query", n["id"])
		}
	}
	// The switch.
	h2 := newHarness(t, WithUAM(UAMSettings{MaxFirst: 1000, ScheduleThreshold: 1000, LimitThreshold: 10000}))
	if p := h2.uamList(map[string]any{"first": 1000}); p.total != 80 {
		t.Errorf("with HideInformational off: %d", p.total)
	}
	// Every source, severity and level is seeded.
	seen := map[string]bool{}
	h.emu.mu.RLock()
	for _, a := range h.emu.uam.c.t.ids {
		seen["src:"+a.src.product], seen["sev:"+a.severity], seen["conf:"+a.confidence] = true, true, true
	}
	h.emu.mu.RUnlock()
	for _, s := range uamSources {
		if !seen["src:"+s.product] {
			t.Errorf("no %s alert", s.product)
		}
	}
	for _, s := range append(slices.Clone(uamSeverities), "conf:MALICIOUS", "conf:SUSPICIOUS", "conf:INFORMATIONAL", "conf:") {
		if !strings.HasPrefix(s, "conf:") {
			s = "sev:" + s
		}
		if !seen[s] {
			t.Errorf("nothing seeded for %s", s)
		}
	}
}

// TestUAMPaging walks every alert by updatedAt ascending in small pages,
// through the seeded ties: each once, in order, totalCount stable.
func TestUAMPaging(t *testing.T) {
	h := newHarness(t, WithSizes(Sizes{Sites: 1, GroupsPerSite: 1, Agents: 4, UAMAlerts: 700}))
	base := map[string]any{"first": 9, "filters": []any{confFilter("MALICIOUS", "SUSPICIOUS", "INFORMATIONAL", nil)},
		"sorts": []any{map[string]any{"by": "updatedAt", "order": "ASC"}}}
	var got []string
	var last string
	ties := 0
	after := ""
	for pages := 0; pages < 200; pages++ {
		v := map[string]any{}
		for k, x := range base {
			v[k] = x
		}
		if after != "" {
			v["after"] = after
		}
		p := h.uamList(v)
		if p.total != 700 {
			t.Fatalf("page %d: totalCount %d", pages, p.total)
		}
		for _, n := range p.nodes {
			u := n["updatedAt"].(string)
			if u < last {
				t.Fatalf("out of order: %s after %s", u, last)
			}
			if u == last {
				ties++
			}
			last = u
		}
		got = append(got, p.ids...)
		if !p.hasNext {
			if p.end != p.ids[len(p.ids)-1] && p.end == "" {
				t.Errorf("no endCursor on the last page")
			}
			break
		}
		after = p.end
	}
	if len(got) != 700 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 700 {
		t.Errorf("walked %d alerts (%d distinct), want 700 once each", len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))))
	}
	if ties < 20 {
		t.Errorf("only %d updatedAt ties: the seed should exercise them", ties)
	}
	// A cursor of one ordering is refused by another.
	msg, _ := h.gqlError(uamListQuery, map[string]any{"first": 9, "after": after})
	if !strings.Contains(msg, "Invalid cursor") {
		t.Errorf("cursor reused with another sort: %s", msg)
	}
}

// TestUAMFilters checks each documented filter against a scan of the store.
func TestUAMFilters(t *testing.T) {
	h := newHarness(t, WithSizes(Sizes{Sites: 2, GroupsPerSite: 1, Agents: 6, UAMAlerts: 400}))
	h.emu.mu.RLock()
	alerts := slices.Clone(h.emu.uam.c.t.ids)
	h.emu.mu.RUnlock()
	mid := alerts[200]
	midMs := mid.updated / 1e6
	detMs := mid.created / 1e6
	cases := []struct {
		name   string
		filter map[string]any
		want   func(a *uamAlert) bool
	}{
		{"status in", map[string]any{"fieldId": "status", "stringIn": map[string]any{"values": []any{"NEW", "RESOLVED"}}},
			func(a *uamAlert) bool { return a.status == uamNew || a.status == uamResolved }},
		{"severity negated", map[string]any{"fieldId": "severity", "stringIn": map[string]any{"values": []any{"LOW"}}, "isNegated": true},
			func(a *uamAlert) bool { return a.severity != "LOW" }},
		{"case-sensitive", map[string]any{"fieldId": "status", "stringEqual": map[string]any{"value": "new"}}, func(*uamAlert) bool { return false }},
		{"verdict", map[string]any{"fieldId": "analystVerdict", "stringEqual": map[string]any{"value": "UNDEFINED"}}, func(a *uamAlert) bool { return a.verdict == uamUndefined }},
		{"name contains", map[string]any{"fieldId": "alertName", "match": map[string]any{"values": []any{"CUSTOM RULE"}}},
			func(a *uamAlert) bool { return strings.Contains(strings.ToLower(a.name), "custom rule") }},
		{"asset contains", map[string]any{"fieldId": "assetName", "match": map[string]any{"operator": "contains", "values": []any{"phone-"}}},
			func(a *uamAlert) bool { return strings.Contains(a.assetName, "phone-") }},
		{"updated after (exclusive)", map[string]any{"fieldId": "updatedAt", "dateTimeRange": map[string]any{"start": midMs, "startInclusive": false}},
			func(a *uamAlert) bool { return a.updated > mid.updated }},
		{"updated since (inclusive)", map[string]any{"fieldId": "updatedAt", "dateTimeRange": map[string]any{"start": midMs}},
			func(a *uamAlert) bool { return a.updated >= mid.updated }},
		{"detected before (exclusive)", map[string]any{"fieldId": "detectedAt", "dateTimeRange": map[string]any{"end": detMs, "endInclusive": false}},
			func(a *uamAlert) bool { return a.created < mid.created }},
		{"product", map[string]any{"fieldId": "detectionProduct", "stringEqual": map[string]any{"value": "Identity"}}, func(a *uamAlert) bool { return a.src.product == "Identity" }},
		{"ids", map[string]any{"fieldId": "id", "stringIn": map[string]any{"values": []any{mid.idStr, alerts[3].idStr, "00000000-0000-7000-8000-0000000000ff"}}},
			func(a *uamAlert) bool { return a == mid || a == alerts[3] }},
		{"no confidence", confFilter(nil), func(a *uamAlert) bool { return a.confidence == "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			filters := []any{tc.filter}
			if tc.filter["fieldId"] != "confidenceLevel" {
				filters = append(filters, confFilter("MALICIOUS", "SUSPICIOUS", "INFORMATIONAL", nil))
			}
			p := h.uamList(map[string]any{"first": 1000, "filters": filters})
			var want []string
			for _, a := range alerts {
				if tc.want(a) {
					want = append(want, a.idStr)
				}
			}
			slices.Sort(want)
			got := slices.Sorted(slices.Values(p.ids))
			if !slices.Equal(got, want) || p.total != len(want) {
				t.Errorf("%d alerts (total %d), want %d", len(got), p.total, len(want))
			}
		})
	}
}

const triggerMutation = `mutation T($filter: OrFilterSelectionInput, $actions: [TriggerActionInput!]!) {
  alertTriggerActions(filter: $filter, actions: $actions) {
    __typename
    ... on ActionsTriggered { actions { actionId success { id } skip { id skipType } failure { id errorType errorMessage } } }
    ... on TriggerActionsScheduled { executionId }
    ... on TriggerActionsError { errors { errorMessage errorPayload { __typename ... on ActionsErrorLimitPayload { limit } } } }
  }
}`

func idFilter(ids ...string) map[string]any {
	vals := make([]any, len(ids))
	for i, id := range ids {
		vals[i] = id
	}
	return map[string]any{"or": []any{map[string]any{"and": []any{map[string]any{"fieldId": "id", "stringIn": map[string]any{"values": vals}}}}}}
}

func statusAction(v string) map[string]any {
	return map[string]any{"id": "S1/alert/statusUpdate", "payload": map[string]any{"status": map[string]any{"value": v}}}
}

// TestUAMTrigger: per-alert success, skip (NO_CHANGE), failure
// (MISSING_PERMISSION on the mobile alert, ALERT_NOT_FOUND for an unknown
// id), changes visible with a new updatedAt; a non-UUID id is refused.
func TestUAMTrigger(t *testing.T) {
	h := newHarness(t)
	seed := UAMSeedIDs()
	before, _ := h.emu.UAMAlert(seed[0])
	h.clock.Advance(time.Minute)
	unknown := "00000000-0000-7000-8000-0000000000ff"
	got := h.gqlRaw(triggerMutation, map[string]any{"filter": idFilter(seed[0], seed[2], seed[3], seed[4], unknown),
		"actions": []any{statusAction("RESOLVED"), map[string]any{"id": "S1/alert/addNote", "payload": map[string]any{"note": map[string]any{"value": "seen"}}}}})
	want := fmt.Sprintf(`{"data":{"alertTriggerActions":{"__typename":"ActionsTriggered","actions":[`+
		`{"actionId":"S1/alert/statusUpdate","success":[{"id":"%[1]s"},{"id":"%[2]s"}],"skip":[{"id":"%[4]s","skipType":"NO_CHANGE"}],`+
		`"failure":[{"id":"%[3]s","errorType":"MISSING_PERMISSION","errorMessage":"Missing UAM manage permissions"},{"id":"%[5]s","errorType":"ALERT_NOT_FOUND","errorMessage":null}]},`+
		`{"actionId":"S1/alert/addNote","success":[{"id":"%[1]s"},{"id":"%[2]s"},{"id":"%[4]s"}],"skip":[],`+
		`"failure":[{"id":"%[3]s","errorType":"MISSING_PERMISSION","errorMessage":"Missing UAM manage permissions"},{"id":"%[5]s","errorType":"ALERT_NOT_FOUND","errorMessage":null}]}]}}}`,
		seed[0], seed[2], seed[3], seed[4], unknown)
	if got != want {
		t.Errorf("answer\n got %s\nwant %s", got, want)
	}
	after, _ := h.emu.UAMAlert(seed[0])
	if after.Status != "RESOLVED" || !after.UpdatedAt.After(before.UpdatedAt) || !slices.Equal(after.Notes, []string{"seen"}) {
		t.Errorf("after: %+v", after)
	}
	if m, _ := h.emu.UAMAlert(seed[3]); m.Status != "NEW" || len(m.Notes) != 0 {
		t.Errorf("the mobile alert changed: %+v", m)
	}
	// The notes query and addAlertNote answer the whole list.
	got = h.gqlRaw(`mutation { addAlertNote(alertId: "`+seed[0]+`", text: "second") { data { text createdBy { __typename ... on UserNoteAuthor { email } } } } }`, nil)
	if got != `{"data":{"addAlertNote":{"data":[{"text":"seen","createdBy":{"__typename":"UserNoteAuthor","email":"svc-bridge@example.invalid"}},{"text":"second","createdBy":{"__typename":"UserNoteAuthor","email":"svc-bridge@example.invalid"}}]}}}` {
		t.Errorf("addAlertNote: %s", got)
	}
	got = h.gqlRaw(`query { alertNotes(alertId: "`+seed[0]+`") { data { text } } }`, nil)
	if got != `{"data":{"alertNotes":{"data":[{"text":"seen"},{"text":"second"}]}}}` {
		t.Errorf("alertNotes: %s", got)
	}
	msg, class := h.gqlError(triggerMutation, map[string]any{"filter": idFilter("abc"), "actions": []any{statusAction("NEW")}})
	if msg != `Exception while fetching data (/alertTriggerActions) : Invalid UUID: "abc"` || class != classDataFetching {
		t.Errorf("non-UUID: %s (%s)", msg, class)
	}
	// alertTriggerActions is nullable: the failure leaves data with a null.
	if got := h.gqlRaw(triggerMutation, map[string]any{"filter": idFilter("abc"), "actions": []any{statusAction("NEW")}}); !strings.HasSuffix(got, `"data":{"alertTriggerActions":null}}`) {
		t.Errorf("non-UUID: %s (%s)", msg, class)
	}
	msg, _ = h.gqlError(`mutation { addAlertNote(alertId: "abc", text: "x") { data { id } } }`, nil)
	if !strings.Contains(msg, `Value "abc" could not be parsed into a UUID`) {
		t.Errorf("addAlertNote non-UUID: %s", msg)
	}
}

// TestUAMTriggerThresholds: past the schedule threshold the answer is
// TriggerActionsScheduled and the change lands after the delay; past the
// limit it is a TriggerActionsError; a null filter selects every alert.
func TestUAMTriggerThresholds(t *testing.T) {
	h := newHarness(t, WithUAM(UAMSettings{MaxFirst: 1000, ScheduleThreshold: 3, LimitThreshold: 5, ScheduleDelay: time.Minute}))
	seed := UAMSeedIDs()
	d := h.gqlOK(triggerMutation, map[string]any{"filter": idFilter(seed[0], seed[2], seed[6], seed[7]), "actions": []any{statusAction("IN_PROGRESS")}})
	res := d["alertTriggerActions"].(map[string]any)
	if res["__typename"] != "TriggerActionsScheduled" || res["executionId"] == "" {
		t.Fatalf("4 alerts: %v", res)
	}
	if a, _ := h.emu.UAMAlert(seed[0]); a.Status != "NEW" {
		t.Errorf("applied before the delay: %s", a.Status)
	}
	h.clock.Advance(time.Minute)
	for _, id := range []string{seed[0], seed[2], seed[6], seed[7]} {
		if a, _ := h.emu.UAMAlert(id); a.Status != "IN_PROGRESS" || !a.UpdatedAt.Equal(testEpoch.Add(time.Minute)) {
			t.Errorf("%s after the delay: %+v", id, a)
		}
	}
	d = h.gqlOK(triggerMutation, map[string]any{"filter": idFilter(seed[:6]...), "actions": []any{statusAction("NEW")}})
	res = d["alertTriggerActions"].(map[string]any)
	errs, _ := res["errors"].([]any)
	if res["__typename"] != "TriggerActionsError" || len(errs) != 1 || fmt.Sprint(errs[0].(map[string]any)["errorPayload"]) != "map[__typename:ActionsErrorLimitPayload limit:5]" {
		t.Errorf("6 alerts: %v", res)
	}
	// A null filter is every alert: 80, over the limit.
	d = h.gqlOK(triggerMutation, map[string]any{"actions": []any{statusAction("NEW")}})
	if res := d["alertTriggerActions"].(map[string]any); res["__typename"] != "TriggerActionsError" {
		t.Errorf("null filter: %v", res)
	}
}

// TestUAMConsole: auth schemes, a console without UAM, faults and the
// request log.
func TestUAMConsole(t *testing.T) {
	h := newHarness(t)
	q := map[string]any{"query": `{ alerts(first: 1) { totalCount } }`}
	if r := h.doAuth("POST", PathUAMGraphQL, nil, q, "Bearer "+DefaultToken); r.status != 200 {
		t.Errorf("Bearer: %d", r.status)
	}
	if r := h.doAuth("POST", PathUAMGraphQL, nil, q, "ApiToken wrong"); r.status != 401 || !strings.Contains(string(r.body), "4010010") {
		t.Errorf("wrong token: %d %s", r.status, r.body)
	}
	if err := h.emu.Inject(Fault{Path: PathUAMGraphQL, Kind: FaultGraphQLError, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if msg, class := h.gqlError(`{ alerts(first: 1) { totalCount } }`, nil); !strings.Contains(msg, "All Shards Down") || class != classDataFetching {
		t.Errorf("fault: %s %s", msg, class)
	}
	if err := h.emu.Inject(Fault{Path: PathUAMGraphQL, Kind: FaultServerError, Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r := h.do("POST", PathUAMGraphQL, nil, q); r.status != 503 {
		t.Errorf("5xx fault: %d", r.status)
	}
	reqs := h.emu.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != APIPrefix+PathUAMGraphQL || !strings.Contains(string(last.Body), "totalCount") || h.emu.RequestCount(PathUAMGraphQL) != 4 {
		t.Errorf("request log: %+v, count %d", last, h.emu.RequestCount(PathUAMGraphQL))
	}
	off := newHarness(t, WithUAM(UAMSettings{Disabled: true, MaxFirst: 1, ScheduleThreshold: 1, LimitThreshold: 1}))
	if r := off.do("POST", PathUAMGraphQL, nil, q); r.status != 404 {
		t.Errorf("without UAM: %d", r.status)
	}
}

// TestUAMLateAndUpdates: test hooks for ingestion tests.
func TestUAMLateAndUpdates(t *testing.T) {
	h := newHarness(t)
	all := []any{confFilter("MALICIOUS", "SUSPICIOUS", "INFORMATIONAL", nil)}
	n := h.uamList(map[string]any{"first": 1000, "filters": all}).total
	late := h.emu.AddLateUAMAlerts(2, testEpoch.Add(-time.Minute), testEpoch.Add(time.Minute))
	added := h.emu.AddUAMAlerts(1, time.Time{})
	if p := h.uamList(map[string]any{"first": 1000, "filters": all}); p.total != n+1 || !slices.Contains(p.ids, added[0]) {
		t.Errorf("before visibleAt: %d", p.total)
	}
	h.clock.Advance(time.Minute)
	p := h.uamList(map[string]any{"first": 1000, "filters": all})
	if p.total != n+3 || !slices.Contains(p.ids, late[0]) {
		t.Errorf("after visibleAt: %d", p.total)
	}
	if err := h.emu.UpdateUAMAlert(late[0], UAMAlertUpdate{Status: "RESOLVED", AnalystVerdict: "FALSE_POSITIVE_BENIGN", At: testEpoch.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.emu.UAMAlert(late[0]); a.Status != "RESOLVED" || !a.UpdatedAt.Equal(testEpoch.Add(30*time.Second)) {
		t.Errorf("%+v", a)
	}
	if err := h.emu.UpdateUAMAlert(late[0], UAMAlertUpdate{Status: "OPEN"}); err == nil {
		t.Error("OPEN accepted")
	}
	// Sorted by updatedAt, the update moved it.
	p = h.uamList(map[string]any{"first": 1000, "filters": append(all, map[string]any{"fieldId": "updatedAt",
		"dateTimeRange": map[string]any{"start": testEpoch.Add(30 * time.Second).UnixMilli(), "end": testEpoch.Add(30 * time.Second).UnixMilli()}})})
	if !slices.Equal(p.ids, []string{late[0]}) {
		t.Errorf("by updatedAt: %v", p.ids)
	}
}

// TestUAMLive: live mode keeps adding and triaging Unified Alerts.
func TestUAMLive(t *testing.T) {
	h := newHarness(t)
	before := h.emu.IDs().UAMAlerts
	states := map[string]string{}
	for _, id := range before {
		a, _ := h.emu.UAMAlert(id)
		states[id] = a.Status
	}
	for range 30 {
		h.clock.Advance(time.Second)
		h.emu.liveStep()
	}
	after := h.emu.IDs().UAMAlerts
	changed := 0
	for _, id := range before {
		if a, _ := h.emu.UAMAlert(id); a.Status != states[id] {
			changed++
		}
	}
	if len(after) <= len(before) || changed == 0 {
		t.Errorf("%d → %d alerts, %d changed", len(before), len(after), changed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.emu.RunLive(ctx, time.Millisecond); err != nil {
		t.Error(err)
	}
}

// BenchmarkUAMPage reads a 1000-alert page by updatedAt out of a 100,000
// alert console, as ingestion does.
func BenchmarkUAMPage(b *testing.B) {
	emu, err := New(WithSizes(Sizes{Sites: 1, GroupsPerSite: 1, Agents: 10, UAMAlerts: 100000}))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := emu.Start("")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"query": uamListQuery, "variables": map[string]any{"first": 1000,
		"filters": []any{confFilter("MALICIOUS", "SUSPICIOUS", "INFORMATIONAL", nil),
			map[string]any{"fieldId": "updatedAt", "dateTimeRange": map[string]any{"start": time.Now().Add(-24 * time.Hour).UnixMilli()}}},
		"sorts": []any{map[string]any{"by": "updatedAt", "order": "ASC"}}}})
	b.ResetTimer()
	for b.Loop() {
		req, _ := httpPost(srv.URL()+APIPrefix+PathUAMGraphQL, body)
		if req != 200 {
			b.Fatalf("HTTP %d", req)
		}
	}
}

// httpPost posts a GraphQL body with the default token and returns the
// status, reading the whole answer.
func httpPost(url string, body []byte) (int, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", AuthScheme+" "+DefaultToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
