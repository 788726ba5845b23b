package handlers

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// These tests run the uam.* actions against the emulator's Unified Alerts
// GraphQL endpoint over loopback HTTP and check what the caller gets, the
// emulator's state, and the exact GraphQL each action sent (operation name
// and variables, from the emulator's request log).

// sentGraphQL is a GraphQL request as the emulator recorded it.
type sentGraphQL struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// graphqlSent returns the GraphQL requests the emulator received, in order.
func graphqlSent(t *testing.T, e *emulator.Emulator) []sentGraphQL {
	t.Helper()
	var out []sentGraphQL
	for _, r := range e.Requests() {
		if r.Path != apiPrefix+sentinelone.PathUAMGraphQL {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
			continue
		}
		var g sentGraphQL
		if err := json.Unmarshal(r.Body, &g); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		out = append(out, g)
	}
	return out
}

// wantVars compares variables with a JSON text, whatever the key order.
func wantVars(t *testing.T, got map[string]any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if asJSON(got) != asJSON(w) {
		t.Errorf("variables\n got %s\nwant %s", asJSON(got), asJSON(w))
	}
}

// allLevels is the confidence filter sent when a request names no level.
const allLevels = `{"fieldId":"confidenceLevel","stringIn":{"values":["MALICIOUS","SUSPICIOUS","INFORMATIONAL",null]}}`

var seed = emulator.UAMSeedIDs()

func TestUAMAlertsList(t *testing.T) {
	e, env := emu(t)
	var all listResult
	mustRun(t, env, ActionUAMAlertsList, `{"limit":1000}`, &all)
	if len(all.Items) != len(e.IDs().UAMAlerts) || all.TotalItems != len(all.Items) || all.NextCursor != nil {
		t.Fatalf("%d items of %d (next %v), want every seeded alert", len(all.Items), all.TotalItems, all.NextCursor)
	}
	if !slices.Contains(all.ids(t), seed[1]) {
		t.Errorf("the informational alert %s is hidden", seed[1])
	}
	sent := graphqlSent(t, e)
	if len(sent) != 1 || sent[0].OperationName != "ListAlerts" || !strings.HasPrefix(sent[0].Query, "query ListAlerts($first: Int!, $after: String, $filters: [FilterInput!], $sorts: [SortInput!])") {
		t.Fatalf("sent %+v", sent)
	}
	wantVars(t, sent[0].Variables, `{"first":1000,"filters":[`+allLevels+`],"sorts":[{"by":"detectedAt","order":"DESC"}]}`)

	// Every filter, mapped to SentinelOne's values and field ids.
	e.ResetRequests()
	var got listResult
	mustRun(t, env, ActionUAMAlertsList, `{"ids":["`+seed[0]+`","`+seed[1]+`","`+seed[2]+`"],"statuses":["new","in_progress"],
		"analystVerdicts":["undefined","true_positive_benign"],"severities":["critical","medium"],"confidenceLevels":["malicious","informational"],
		"detectedAfter":"2020-01-01T00:00:00Z","detectedBefore":"2100-01-01T00:00:00.0005Z","updatedAfter":"2020-01-01T00:00:00Z",
		"name":"INVOICE","sortBy":"updatedAt","sortOrder":"asc","limit":5}`, &got)
	if !slices.Equal(got.ids(t), []string{seed[0]}) || got.TotalItems != 1 {
		t.Errorf("filtered: %v (total %d)", got.ids(t), got.TotalItems)
	}
	sent = graphqlSent(t, e)
	wantVars(t, sent[0].Variables, `{"first":5,"sorts":[{"by":"updatedAt","order":"ASC"}],"filters":[
		{"fieldId":"id","stringIn":{"values":["`+seed[0]+`","`+seed[1]+`","`+seed[2]+`"]}},
		{"fieldId":"status","stringIn":{"values":["NEW","IN_PROGRESS"]}},
		{"fieldId":"analystVerdict","stringIn":{"values":["UNDEFINED","TRUE_POSITIVE_BENIGN"]}},
		{"fieldId":"severity","stringIn":{"values":["CRITICAL","MEDIUM"]}},
		{"fieldId":"confidenceLevel","stringIn":{"values":["MALICIOUS","INFORMATIONAL"]}},
		{"fieldId":"detectedAt","dateTimeRange":{"start":1577836800000,"startInclusive":false,"end":4102444800001,"endInclusive":false}},
		{"fieldId":"updatedAt","dateTimeRange":{"start":1577836800000,"startInclusive":false,"endInclusive":false}},
		{"fieldId":"alertName","match":{"operator":"contains","values":["INVOICE"]}}]}`)

	// A level named leaves the others out; informational alone finds a002.
	mustRun(t, env, ActionUAMAlertsList, `{"confidenceLevels":["informational"],"limit":1000}`, &got)
	if !slices.Contains(got.ids(t), seed[1]) || slices.Contains(got.ids(t), seed[0]) {
		t.Errorf("informational only: %v", got.ids(t))
	}
	mustRun(t, env, ActionUAMAlertsList, `{"assetName":"phone-","limit":1000}`, &got)
	if !slices.Contains(got.ids(t), seed[3]) || got.TotalItems == 0 {
		t.Errorf("assetName: %v", got.ids(t))
	}
}

// TestUAMAlertsListPaging follows cursors with limit, and all:true under a
// small reply bound: every alert once, in order.
func TestUAMAlertsListPaging(t *testing.T) {
	e, env := emu(t)
	want := len(e.IDs().UAMAlerts)
	var seen []string
	cursor := ""
	for range 100 {
		var p listResult
		mustRun(t, env, ActionUAMAlertsList, `{"limit":7,"sortBy":"updatedAt","sortOrder":"asc","cursor":"`+cursor+`"}`, &p)
		if p.TotalItems != want {
			t.Fatalf("totalItems %d, want %d", p.TotalItems, want)
		}
		seen = append(seen, p.ids(t)...)
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if len(seen) != want || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != want {
		t.Errorf("paged %d alerts, want %d once each", len(seen), want)
	}
	env.MaxReplyBytes = 64 << 10
	var all listResult
	b := mustRun(t, env, ActionUAMAlertsList, `{"limit":50,"all":true}`, &all)
	if len(b) > env.MaxReplyBytes || !all.Truncated || all.NextCursor == nil || len(all.Items) == 0 {
		t.Errorf("all under 64 KB: %d bytes, %d items, truncated %t", len(b), len(all.Items), all.Truncated)
	}
}

func TestUAMAlertsGet(t *testing.T) {
	e, env := emu(t)
	var got struct {
		Alert map[string]any `json:"alert"`
	}
	mustRun(t, env, ActionUAMAlertsGet, `{"id":"`+seed[0]+`"}`, &got)
	if got.Alert["id"] != seed[0] || got.Alert["indicators"] == nil || got.Alert["status"] != "NEW" {
		t.Errorf("alert %v", got.Alert)
	}
	sent := graphqlSent(t, e)
	if len(sent) != 1 || sent[0].OperationName != "GetAlert" {
		t.Fatalf("sent %+v", sent)
	}
	wantVars(t, sent[0].Variables, `{"id":"`+seed[0]+`"}`)
	_, err := run(t, env, ActionUAMAlertsGet, `{"id":"00000000-0000-7000-8000-0000000000ff"}`)
	if err == nil || err.Code != CodeNotFound || !strings.HasPrefix(err.Message, "id: ") {
		t.Errorf("unknown alert: %+v", err)
	}
}

// TestUAMAlertsUpdate: one call for both fields; per-alert success, skip,
// failure; the console changed.
func TestUAMAlertsUpdate(t *testing.T) {
	e, env := emu(t)
	unknown := "00000000-0000-7000-8000-0000000000ff"
	ids := []string{seed[0], seed[3], seed[4], unknown}
	var got UAMAlertsActionReply
	b := mustRun(t, env, ActionUAMAlertsUpdate, `{"alertIds":["`+strings.Join(ids, `","`)+`"],"status":"resolved"}`, &got)
	want := `{"affected":1,"failed":[{"id":"` + seed[3] + `","reason":"MISSING_PERMISSION: Missing UAM manage permissions"},` +
		`{"id":"` + unknown + `","reason":"ALERT_NOT_FOUND"}],"skipped":["` + seed[4] + `"],"scheduled":null}`
	if string(b) != want {
		t.Errorf("reply\n got %s\nwant %s", b, want)
	}
	if a, _ := e.UAMAlert(seed[0]); a.Status != "RESOLVED" {
		t.Errorf("%s: %+v", seed[0], a)
	}
	sent := graphqlSent(t, e)
	if len(sent) != 1 || sent[0].OperationName != "AlertTriggerActions" || !strings.HasPrefix(sent[0].Query, "mutation AlertTriggerActions($filter: OrFilterSelectionInput!, $actions: [TriggerActionInput!]!)") {
		t.Fatalf("sent %+v", sent)
	}
	wantVars(t, sent[0].Variables, `{"filter":{"or":[{"and":[{"fieldId":"id","stringIn":{"values":["`+strings.Join(ids, `","`)+`"]}}]}]},
		"actions":[{"id":"S1/alert/statusUpdate","payload":{"status":{"value":"RESOLVED"}}}]}`)

	// Both fields: two actions in one call, reasons name the action.
	e.ResetRequests()
	b = mustRun(t, env, ActionUAMAlertsUpdate, `{"alertIds":["`+seed[2]+`","`+seed[3]+`"],"status":"in_progress","analystVerdict":"true_positive_malware"}`, nil)
	want = `{"affected":1,"failed":[{"id":"` + seed[3] + `","reason":"S1/alert/statusUpdate: MISSING_PERMISSION: Missing UAM manage permissions; ` +
		`S1/alert/analystVerdictUpdate: MISSING_PERMISSION: Missing UAM manage permissions"}],"skipped":[],"scheduled":null}`
	if string(b) != want {
		t.Errorf("reply\n got %s\nwant %s", b, want)
	}
	wantVars(t, graphqlSent(t, e)[0].Variables, `{"filter":{"or":[{"and":[{"fieldId":"id","stringIn":{"values":["`+seed[2]+`","`+seed[3]+`"]}}]}]},
		"actions":[{"id":"S1/alert/statusUpdate","payload":{"status":{"value":"IN_PROGRESS"}}},
		{"id":"S1/alert/analystVerdictUpdate","payload":{"analystVerdict":{"value":"TRUE_POSITIVE_MALWARE"}}}]}`)
	if a, _ := e.UAMAlert(seed[2]); a.Status != "IN_PROGRESS" || a.AnalystVerdict != "TRUE_POSITIVE_MALWARE" {
		t.Errorf("%s: %+v", seed[2], a)
	}
	// The list filter finds it by its new values.
	var l listResult
	mustRun(t, env, ActionUAMAlertsList, `{"statuses":["in_progress"],"analystVerdicts":["true_positive_malware"],"limit":1000}`, &l)
	if !slices.Contains(l.ids(t), seed[2]) {
		t.Errorf("list after update: %v", l.ids(t))
	}
}

func TestUAMAlertsNotesAdd(t *testing.T) {
	e, env := emu(t)
	var got UAMAlertsActionReply
	b := mustRun(t, env, ActionUAMAlertsNotesAdd, `{"alertIds":["`+seed[0]+`","`+seed[3]+`"],"text":"Contained by s1bridge\nticket 42"}`, &got)
	if want := `{"affected":1,"failed":[{"id":"` + seed[3] + `","reason":"MISSING_PERMISSION: Missing UAM manage permissions"}],"skipped":[],"scheduled":null}`; string(b) != want {
		t.Errorf("reply %s", b)
	}
	if a, _ := e.UAMAlert(seed[0]); !slices.Equal(a.Notes, []string{"Contained by s1bridge\nticket 42"}) {
		t.Errorf("notes %v", a.Notes)
	}
	wantVars(t, graphqlSent(t, e)[0].Variables, `{"filter":{"or":[{"and":[{"fieldId":"id","stringIn":{"values":["`+seed[0]+`","`+seed[3]+`"]}}]}]},
		"actions":[{"id":"S1/alert/addNote","payload":{"note":{"value":"Contained by s1bridge\nticket 42"}}}]}`)
}

// TestUAMAlertsScheduled: past the console's threshold the work is
// scheduled; the reply carries the execution id and nothing per alert.
func TestUAMAlertsScheduled(t *testing.T) {
	s := emulator.DefaultUAMSettings()
	s.ScheduleThreshold, s.LimitThreshold = 2, 4
	e, env := emu(t, emulator.WithUAM(s))
	var got UAMAlertsActionReply
	mustRun(t, env, ActionUAMAlertsUpdate, `{"alertIds":["`+strings.Join(seed[:3], `","`)+`"],"status":"in_progress"}`, &got)
	if got.Scheduled == nil || *got.Scheduled == "" || got.Affected != 0 || len(got.Failed)+len(got.Skipped) != 0 {
		t.Errorf("reply %+v", got)
	}
	if a, _ := e.UAMAlert(seed[0]); a.Status != "IN_PROGRESS" {
		t.Errorf("scheduled with no delay, not applied: %+v", a)
	}
	// Past the limit: the caller must send fewer.
	_, err := run(t, env, ActionUAMAlertsUpdate, `{"alertIds":["`+strings.Join(seed[:5], `","`)+`"],"status":"new"}`)
	if err == nil || err.Code != CodeInvalid || !strings.HasPrefix(err.Message, "alertIds: ") || !strings.Contains(asJSON(err.Details), `"limit":4`) {
		t.Errorf("over the limit: %+v", err)
	}
}

// TestUAMAlertsUpstreamErrors: the caller's value refused by SentinelOne is
// a 400 with its message; another GraphQL error a 502 with
// details.graphqlErrors; a console without UAM a 502 that says so.
func TestUAMAlertsUpstreamErrors(t *testing.T) {
	e, env := emu(t)
	_, err := run(t, env, ActionUAMAlertsList, `{"cursor":"bm90LWEtY3Vyc29y"}`)
	if err == nil || err.Code != CodeInvalid || !strings.Contains(err.Message, "Invalid cursor value received") {
		t.Errorf("bad cursor: %+v", err)
	}
	if err := e.Inject(emulator.Fault{Path: sentinelone.PathUAMGraphQL, Kind: emulator.FaultGraphQLError, Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, env, ActionUAMAlertsUpdate, `{"alertIds":["`+seed[0]+`"],"status":"resolved"}`)
	if err == nil || err.Code != CodeUpstream || err.Retryable || !strings.Contains(err.Message, "All Shards Down") {
		t.Fatalf("GraphQL error: %+v", err)
	}
	d := asJSON(err.Data())
	if !strings.Contains(d, `"graphqlErrors":[{"message":"Exception while fetching data (/alerts) : All Shards Down","extensions":{"classification":"DataFetchingException"}}]`) ||
		!strings.Contains(d, `"operation":"POST /unifiedalerts/graphql AlertTriggerActions"`) || !strings.Contains(d, `"requestId":"`) {
		t.Errorf("error data %s", d)
	}
	off := emulator.DefaultUAMSettings()
	off.Disabled = true
	_, env2 := emu(t, emulator.WithUAM(off))
	_, err = run(t, env2, ActionUAMAlertsGet, `{"id":"`+seed[0]+`"}`)
	if err == nil || err.Code != CodeUpstream || err.UpstreamStatus != 404 || !strings.Contains(err.Message, "does not serve Unified Alerts") {
		t.Errorf("no UAM: %+v", err)
	}
}

// TestUAMAlertsBadInput: refused with a 400 naming the field, and nothing
// sent to SentinelOne.
func TestUAMAlertsBadInput(t *testing.T) {
	e, env := emu(t)
	ids := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf(`"00000000-0000-7000-8000-%012x"`, i)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	cases := []struct {
		action, data, field string
	}{
		{ActionUAMAlertsList, `{"statuses":["open"]}`, "statuses[0]"},
		{ActionUAMAlertsList, `{"statuses":["NEW"]}`, "statuses[0]"},
		{ActionUAMAlertsList, `{"analystVerdicts":["true_positive"]}`, "analystVerdicts[0]"},
		{ActionUAMAlertsList, `{"severities":["unknown"]}`, "severities[0]"},
		{ActionUAMAlertsList, `{"confidenceLevels":["benign"]}`, "confidenceLevels[0]"},
		{ActionUAMAlertsList, `{"sortBy":"severity"}`, "sortBy"},
		{ActionUAMAlertsList, `{"sortOrder":"up"}`, "sortOrder"},
		{ActionUAMAlertsList, `{"limit":1001}`, "limit"},
		{ActionUAMAlertsList, `{"ids":["1928374650192837465"]}`, "ids[0]"},
		{ActionUAMAlertsList, `{"ids":` + ids(5001) + `}`, "ids"},
		{ActionUAMAlertsList, `{"detectedAfter":"yesterday"}`, "detectedAfter"},
		{ActionUAMAlertsList, `{"updatedAfter":"2026-05-02T00:00:00Z","updatedBefore":"2026-05-01T00:00:00Z"}`, "updatedBefore"},
		{ActionUAMAlertsList, `{"name":"` + strings.Repeat("x", 4097) + `"}`, "name"},
		{ActionUAMAlertsList, `{"assetName":"a\u0000b"}`, "assetName"},
		{ActionUAMAlertsList, `{"incidentStatuses":["new"]}`, "incidentStatuses"},
		{ActionUAMAlertsGet, `{}`, "id"},
		{ActionUAMAlertsGet, `{"id":"abc"}`, "id"},
		{ActionUAMAlertsGet, `{"id":"` + seed[0] + `","extra":1}`, "extra"},
		{ActionUAMAlertsUpdate, `{"alertIds":["` + seed[0] + `"]}`, "status"},
		{ActionUAMAlertsUpdate, `{"status":"resolved"}`, "alertIds"},
		{ActionUAMAlertsUpdate, `{"alertIds":[],"status":"resolved"}`, "alertIds"},
		{ActionUAMAlertsUpdate, `{"alertIds":` + ids(5001) + `,"status":"resolved"}`, "alertIds"},
		{ActionUAMAlertsUpdate, `{"alertIds":["` + seed[0] + `","` + seed[0] + `"],"status":"resolved"}`, "alertIds[1]"},
		{ActionUAMAlertsUpdate, `{"alertIds":["` + seed[0] + `"],"status":"closed"}`, "status"},
		{ActionUAMAlertsUpdate, `{"alertIds":["` + seed[0] + `"],"analystVerdict":"false_positive"}`, "analystVerdict"},
		{ActionUAMAlertsUpdate, `{"alertIds":["` + seed[0] + `"],"status":"resolved","incidentStatus":"resolved"}`, "incidentStatus"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":["` + seed[0] + `"]}`, "text"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":["` + seed[0] + `"],"text":"` + strings.Repeat("x", 4097) + `"}`, "text"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":["` + seed[0] + `"],"text":"  \n "}`, "text"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":["` + seed[0] + `"],"text":"bell \u0007"}`, "text"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":["x"],"text":"ok"}`, "alertIds[0]"},
		{ActionUAMAlertsNotesAdd, `{"alertIds":` + ids(5001) + `,"text":"ok"}`, "alertIds"},
	}
	e.ResetRequests()
	for _, tc := range cases {
		_, err := run(t, env, tc.action, tc.data)
		if err == nil || err.Code != CodeInvalid || !strings.HasPrefix(err.Message, tc.field+": ") {
			t.Errorf("%s %.80s: %+v, want a 400 naming %s", tc.action, tc.data, err, tc.field)
		}
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("%d requests reached SentinelOne", n)
	}
	// A 4096-byte note is accepted.
	mustRun(t, env, ActionUAMAlertsNotesAdd, `{"alertIds":["`+seed[0]+`"],"text":"`+strings.Repeat("x", 4096)+`"}`, nil)
}

// TestUAMTargets: the mutating uam.* requests name their targets.
func TestUAMTargets(t *testing.T) {
	for _, a := range All() {
		if !strings.HasPrefix(a.Name, "uam.") {
			continue
		}
		_, ok := any(newOf(a.Request)).(Targeted)
		if ok != a.Mutating {
			t.Errorf("%s: Targeted %t, mutating %t", a.Name, ok, a.Mutating)
		}
	}
	f, ids := (&UAMAlertsNotesAddRequest{AlertIDs: []string{seed[0]}}).Targets()
	if f != "alertIds" || !slices.Equal(ids, []string{seed[0]}) {
		t.Errorf("Targets() = %s %v", f, ids)
	}
	f, ids = (&UAMAlertsUpdateRequest{AlertIDs: seed[:2]}).Targets()
	if f != "alertIds" || !slices.Equal(ids, seed[:2]) {
		t.Errorf("Targets() = %s %v", f, ids)
	}
}

// newOf returns a pointer to a new zero value of v's type.
func newOf(v any) any { return reflect.New(reflect.TypeOf(v)).Interface() }
