package sentinelone

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// graphqlVars decodes the variables of a recorded GraphQL request.
func graphqlVars(t *testing.T, r request) map[string]any {
	t.Helper()
	var b struct {
		Variables map[string]any `json:"variables"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return b.Variables
}

func TestUAMListFixture(t *testing.T) {
	c := serveFixture(t, "uam/alerts_page.json")
	p, err := c.ListUAMAlerts(context.Background(), UAMAlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || p.TotalItems != 3 || p.NextCursor != "ZmFrZS1jdXJzb3ItMg==" {
		t.Fatalf("%d items, total %d, next %q", len(p.Items), p.TotalItems, p.NextCursor)
	}
	a, b := p.Items[0], p.Items[1]
	if a.ID != "00000000-0000-7000-8000-00000000a001" || a.Status != UAMStatusNew || a.AnalystVerdict != "UNDEFINED" ||
		a.Severity != "CRITICAL" || a.ConfidenceLevel != UAMConfidenceMalicious || a.Product != "EDR" ||
		!slices.Equal(a.AssetNames, []string{"host-example-01"}) || !a.DetectedAt.Equal(ts("2026-05-01T08:00:00Z")) ||
		!a.UpdatedAt.Equal(ts("2026-05-01T08:00:06.331Z")) || a.Name != "invoice-tool.exe detected as Malware" {
		t.Errorf("first alert %+v", a)
	}
	if b.ConfidenceLevel != UAMConfidenceInformational || b.Status != UAMStatusInProgress || len(b.AssetNames) != 0 || b.Product != "Identity" {
		t.Errorf("second alert %+v", b)
	}
	// Raw is the node as sent: encoding the items gives the fixture's nodes.
	var doc struct {
		Data struct {
			Alerts struct {
				Edges []struct {
					Node json.RawMessage `json:"node"`
				} `json:"edges"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(fixture(t, "uam/alerts_page.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for i, e := range doc.Data.Alerts.Edges {
		if string(p.Items[i].Raw) != string(e.Node) {
			t.Errorf("item %d does not pass through unchanged", i)
		}
	}
}

func TestUAMGetFixture(t *testing.T) {
	c := serveFixture(t, "uam/alert_single.json")
	a, err := c.GetUAMAlert(context.Background(), "00000000-0000-7000-8000-00000000a001")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "00000000-0000-7000-8000-00000000a001" || a.Classification != "MALWARE" || !strings.Contains(string(a.Raw), `"indicators"`) {
		t.Errorf("%+v", a)
	}
	c = serveFixture(t, "uam/graphql_error_alert_not_found.json")
	_, err = c.GetUAMAlert(context.Background(), "00000000-0000-7000-8000-0000000000ff")
	var ge *GraphQLError
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrGraphQL) || errors.Is(err, ErrGraphQLInput) || !errors.As(err, &ge) {
		t.Fatalf("err %v", err)
	}
	if ge.Operation != opGetAlert || ge.RequestID != "rqid-test-1" || len(ge.Errors) != 1 || ge.Errors[0].Path[0] != "alert" ||
		!strings.Contains(string(ge.Errors[0].Extensions), "DataFetchingException") {
		t.Errorf("%+v", ge)
	}
}

// TestUAMGraphQLErrors: how GraphQL errors (HTTP 200) are classified
// (uam-reference.md §9).
func TestUAMGraphQLErrors(t *testing.T) {
	cases := []struct {
		name, body string
		input      bool
		notFound   bool
	}{
		{"variable refused", `{"errors":[{"message":"Variable 'actions' has an invalid value: Invalid input for enum 'Status'. No value found for name 'OPEN'","extensions":{"classification":"ValidationError"}}],"data":null}`, true, false},
		{"invalid uuid", `{"errors":[{"message":"Exception while fetching data (/alertTriggerActions) : Invalid UUID: \"abc\"","path":["alertTriggerActions"],"extensions":{"classification":"DataFetchingException"}}],"data":null}`, true, false},
		{"filter field", `{"errors":[{"message":"Field description does not exist or not supported for FILTER API call"}],"data":null}`, true, false},
		{"document refused", `{"errors":[{"message":"Validation error (FieldUndefined@[alerts/edges/node/foo]) : Field 'foo' in type 'UnifiedAlert' is undefined","extensions":{"classification":"ValidationError"}}],"data":null}`, false, false},
		{"shards down", `{"errors":[{"message":"Exception while fetching data (/alerts) : All Shards Down","path":["alerts"],"extensions":{"classification":"DataFetchingException"}}],"data":null}`, false, false},
		{"partial data", `{"errors":[{"message":"something broke"}],"data":{"alerts":null}}`, false, false},
		{"token echoed", `{"errors":[{"message":"bad token ` + testToken + `"}]}`, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, tc.body) })
			c := newTestClient(t, fastConfig(con.URL))
			_, err := c.ListUAMAlerts(context.Background(), UAMAlertFilter{})
			if !errors.Is(err, ErrGraphQL) || errors.Is(err, ErrGraphQLInput) != tc.input || errors.Is(err, ErrNotFound) != tc.notFound {
				t.Fatalf("err %v: input %t notFound %t", err, errors.Is(err, ErrGraphQLInput), errors.Is(err, ErrNotFound))
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("token in %q", err)
			}
			if n := len(con.requests()); n != 1 {
				t.Errorf("%d attempts: a GraphQL error is an answer, not retried", n)
			}
		})
	}
}

// TestUAMUnavailable: 404 and 403 on the GraphQL path are a console without
// UAM; a 404 elsewhere is not.
func TestUAMUnavailable(t *testing.T) {
	for _, status := range []int{404, 403} {
		con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			reply(w, status, `{"errors":[{"code":4040010,"title":"Requested resource was not found"}]}`)
		})
		c := newTestClient(t, fastConfig(con.URL))
		_, err := c.ListUAMAlerts(context.Background(), UAMAlertFilter{})
		var ae *APIError
		if !errors.Is(err, ErrUAMUnavailable) || !errors.As(err, &ae) || ae.Path != PathUAMGraphQL || errors.Is(err, ErrGraphQL) {
			t.Errorf("%d: %v", status, err)
		}
		_, err = c.ListGroups(context.Background(), GroupFilter{})
		if errors.Is(err, ErrUAMUnavailable) || !errors.Is(err, statusSentinel(status)) {
			t.Errorf("REST %d: %v", status, err)
		}
	}
}

// TestUAMRetries: a query is retried like a GET (it only reads); a
// mutation is not retried after a 5xx, where it may have landed, but is
// after a 429.
func TestUAMRetries(t *testing.T) {
	var mu sync.Mutex
	fail := map[string]int{} // opname -> answers left to fail
	status := 500
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		op := r.URL.Query().Get("opname")
		mu.Lock()
		left := fail[op]
		fail[op] = left - 1
		mu.Unlock()
		if left > 0 {
			reply(w, status, `{"errors":[{"code":5000010,"title":"Internal"}]}`)
			return
		}
		switch op {
		case opListAlerts:
			reply(w, 200, string(fixture(t, "uam/alerts_page.json")))
		default:
			reply(w, 200, string(fixture(t, "uam/trigger_actions_scheduled.json")))
		}
	})
	var events []RequestEvent
	var retries []RetryEvent
	c := newTestClient(t, fastConfig(con.URL), WithObserver(ObserverFuncs{
		OnRequestDone: func(e RequestEvent) { mu.Lock(); events = append(events, e); mu.Unlock() },
		OnRetry:       func(e RetryEvent) { mu.Lock(); retries = append(retries, e); mu.Unlock() },
	}))
	ctx := context.Background()
	fail[opListAlerts] = 2
	if _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{}); err != nil {
		t.Fatalf("query after two 500s: %v", err)
	}
	fail[opTriggerActions] = 1
	_, err := c.UpdateUAMAlerts(ctx, []string{"00000000-0000-7000-8000-00000000a001"}, UAMAlertUpdate{Status: "resolved"})
	if !errors.Is(err, ErrServer) {
		t.Fatalf("mutation after a 500: %v", err)
	}
	status = 429
	fail[opTriggerActions] = 1
	if _, err := c.UpdateUAMAlerts(ctx, []string{"00000000-0000-7000-8000-00000000a001"}, UAMAlertUpdate{Status: "resolved"}); err != nil {
		t.Fatalf("mutation after a 429: %v", err)
	}
	var ops []string
	for _, r := range con.requests() {
		ops = append(ops, r.Query.Get("opname"))
	}
	want := []string{opListAlerts, opListAlerts, opListAlerts, opTriggerActions, opTriggerActions, opTriggerActions}
	if !slices.Equal(ops, want) {
		t.Errorf("requests %v, want %v", ops, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 3 || events[0].Attempts != 3 || events[1].Attempts != 1 || events[2].Attempts != 2 {
		t.Errorf("events %+v", events)
	}
	for _, e := range events {
		if e.Method != http.MethodPost || e.Path != PathUAMGraphQL {
			t.Errorf("event %+v", e)
		}
	}
	if len(retries) != 3 {
		t.Errorf("%d retry events", len(retries))
	}
}

// TestUAMHeaders: token, content type, trace context and operation name go
// out on every GraphQL call.
func TestUAMHeaders(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 200, string(fixture(t, "uam/alerts_page.json")))
	})
	c := newTestClient(t, fastConfig(con.URL))
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := WithTraceContext(context.Background(), tp, "s1=1")
	if _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{}); err != nil {
		t.Fatal(err)
	}
	r := con.requests()[0]
	if r.Header.Get(HeaderAuthorization) != "ApiToken "+testToken || r.Header.Get(HeaderContentType) != ContentTypeJSON ||
		r.Header.Get(HeaderTraceParent) != tp || r.Header.Get(HeaderTraceState) != "s1=1" {
		t.Errorf("headers %v", r.Header)
	}
	var b gqlBody
	if err := json.Unmarshal(r.Body, &b); err != nil || b.OperationName != opListAlerts || b.Query != queryListAlerts {
		t.Errorf("body %s (%v)", r.Body, err)
	}
}

// TestUAMFilterWire pins the variables a filter becomes.
func TestUAMFilterWire(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 200, `{"data":{"alerts":{"totalCount":0,"pageInfo":{"hasNextPage":false,"endCursor":null},"edges":[]}}}`)
	})
	c := newTestClient(t, fastConfig(con.URL))
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 8, 0, 0, 500400000, time.UTC) // .5004 s
	ms := at.UnixMilli()                                      // .500
	cases := []struct {
		f    UAMAlertFilter
		want string
	}{
		{UAMAlertFilter{}, `{"filters":[{"fieldId":"confidenceLevel","stringIn":{"values":["MALICIOUS","SUSPICIOUS","INFORMATIONAL",null]}}],"first":100,"sorts":[{"by":"detectedAt","order":"DESC"}]}`},
		{UAMAlertFilter{ConfidenceLevels: []string{"suspicious"}, Statuses: []string{"in_progress"}, First: 7, After: "c1"},
			`{"after":"c1","filters":[{"fieldId":"status","stringIn":{"values":["IN_PROGRESS"]}},{"fieldId":"confidenceLevel","stringIn":{"values":["SUSPICIOUS"]}}],"first":7,"sorts":[{"by":"detectedAt","order":"DESC"}]}`},
		// Exclusive bounds: start rounds down, end rounds up, to a millisecond.
		{UAMAlertFilter{ConfidenceLevels: []string{}, DetectedAfter: at, DetectedBefore: at, SortBy: "updatedAt", SortOrder: "asc"},
			`{"filters":[{"fieldId":"detectedAt","dateTimeRange":{"start":` + itoa64(ms) + `,"startInclusive":false,"end":` + itoa64(ms+1) + `,"endInclusive":false}}],"first":100,"sorts":[{"by":"updatedAt","order":"ASC"}]}`},
		{UAMIngestFilter(at, 500),
			`{"filters":[{"fieldId":"confidenceLevel","stringIn":{"values":["MALICIOUS","SUSPICIOUS","INFORMATIONAL",null]}},{"fieldId":"updatedAt","dateTimeRange":{"start":` + itoa64(ms) + `,"startInclusive":true,"endInclusive":false}}],"first":500,"sorts":[{"by":"updatedAt","order":"ASC"}]}`},
		{UAMAlertFilter{ConfidenceLevels: []string{}, IDs: []string{"a", "b"}, NameContains: "Mimi", AssetNameContains: "host"},
			`{"filters":[{"fieldId":"id","stringIn":{"values":["a","b"]}},{"fieldId":"alertName","match":{"operator":"contains","values":["Mimi"]}},{"fieldId":"assetName","match":{"operator":"contains","values":["host"]}}],"first":100,"sorts":[{"by":"detectedAt","order":"DESC"}]}`},
	}
	for i, tc := range cases {
		if _, err := c.ListUAMAlerts(ctx, tc.f); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		reqs := con.requests()
		got, _ := json.Marshal(graphqlVars(t, reqs[len(reqs)-1]))
		var w any
		if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
			t.Fatalf("case %d want: %v", i, err)
		}
		if string(got) != asText(w) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, tc.want)
		}
	}
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestUAMRefusals: what the client refuses to send.
func TestUAMRefusals(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 500, `{}`) })
	c := newTestClient(t, fastConfig(con.URL))
	ctx := context.Background()
	id := []string{"00000000-0000-7000-8000-00000000a001"}
	for name, call := range map[string]func() error{
		"no ids":   func() error { _, err := c.UpdateUAMAlerts(ctx, nil, UAMAlertUpdate{Status: "new"}); return err },
		"empty id": func() error { _, err := c.AddUAMAlertNote(ctx, []string{""}, "x"); return err },
		"too many ids": func() error {
			_, err := c.UpdateUAMAlerts(ctx, make([]string, 5001), UAMAlertUpdate{Status: "new"})
			return err
		},
		"nothing to do": func() error { _, err := c.UpdateUAMAlerts(ctx, id, UAMAlertUpdate{}); return err },
		"bad status":    func() error { _, err := c.UpdateUAMAlerts(ctx, id, UAMAlertUpdate{Status: "open"}); return err },
		"bad verdict": func() error {
			_, err := c.UpdateUAMAlerts(ctx, id, UAMAlertUpdate{AnalystVerdict: "true_positive"})
			return err
		},
		"empty note": func() error { _, err := c.AddUAMAlertNote(ctx, id, ""); return err },
		"long note":  func() error { _, err := c.AddUAMAlertNote(ctx, id, strings.Repeat("x", 4097)); return err },
		"bad severity": func() error {
			_, err := c.ListUAMAlerts(ctx, UAMAlertFilter{Severities: []string{"severe"}})
			return err
		},
		"bad level": func() error {
			_, err := c.ListUAMAlerts(ctx, UAMAlertFilter{ConfidenceLevels: []string{"benign"}})
			return err
		},
		"first":         func() error { _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{First: 1001}); return err },
		"sort":          func() error { _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{SortBy: "severity"}); return err },
		"order":         func() error { _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{SortOrder: "up"}); return err },
		"get no id":     func() error { _, err := c.GetUAMAlert(ctx, " "); return err },
		"too many list": func() error { _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{IDs: make([]string, 5001)}); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(con.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestUAMTriggerOutcome reads the fixture's per-alert results.
func TestUAMTriggerOutcome(t *testing.T) {
	ids := []string{"00000000-0000-7000-8000-00000000a001", "00000000-0000-7000-8000-00000000a002",
		"00000000-0000-7000-8000-00000000a003", "00000000-0000-7000-8000-00000000a004", "00000000-0000-7000-8000-00000000a005"}
	c := serveFixture(t, "uam/trigger_actions_triggered_with_failure.json")
	r, err := c.UpdateUAMAlerts(context.Background(), ids, UAMAlertUpdate{Status: "resolved", AnalystVerdict: "true_positive_malware"})
	if err != nil {
		t.Fatal(err)
	}
	o := r.Outcome()
	got, _ := json.Marshal(o)
	want := `{"Succeeded":["00000000-0000-7000-8000-00000000a001"],` +
		`"Failed":[{"ID":"00000000-0000-7000-8000-00000000a003","Reason":"S1/alert/statusUpdate: MISSING_PERMISSION: Missing UAM manage permissions"},` +
		`{"ID":"00000000-0000-7000-8000-00000000a004","Reason":"S1/alert/analystVerdictUpdate: ALERT_NOT_FOUND"},` +
		`{"ID":"00000000-0000-7000-8000-00000000a005","Reason":"NOT_REPORTED: SentinelOne did not report this alert (unknown id, or outside the token's scope)"}],` +
		`"Skipped":["00000000-0000-7000-8000-00000000a002"],"Scheduled":""}`
	if string(got) != want {
		t.Errorf("outcome\n got %s\nwant %s", got, want)
	}

	c = serveFixture(t, "uam/trigger_actions_scheduled.json")
	r, err = c.AddUAMAlertNote(context.Background(), ids, "note")
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Outcome(); o.Scheduled != "00000000-0000-7000-8000-0000000e0001" || len(o.Succeeded)+len(o.Failed)+len(o.Skipped) != 0 {
		t.Errorf("scheduled outcome %+v", o)
	}
}

// TestUAMTriggerError: a TriggerActionsError refuses the whole request; one
// that only names unknown alerts becomes per-alert failures.
func TestUAMTriggerError(t *testing.T) {
	limit := `{"data":{"alertTriggerActions":{"__typename":"TriggerActionsError","errors":[{"errorMessage":"too many alerts","errorPayload":{"__typename":"ActionsErrorLimitPayload","limit":10000}}]}}}`
	c := newTestClient(t, fastConfig(newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, limit) }).URL))
	_, err := c.UpdateUAMAlerts(context.Background(), []string{"a"}, UAMAlertUpdate{Status: "new"})
	var te *UAMTriggerError
	if !errors.Is(err, ErrUAMTriggerRefused) || !errors.As(err, &te) || te.Errors[0].Limit != 10000 || te.Errors[0].PayloadType != "ActionsErrorLimitPayload" {
		t.Fatalf("err %v", err)
	}
	nf := `{"data":{"alertTriggerActions":{"__typename":"TriggerActionsError","errors":[{"errorMessage":"Alert with ID 00000000-0000-7000-8000-0000000000ff not found.","errorPayload":null}]}}}`
	c = newTestClient(t, fastConfig(newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, nf) }).URL))
	r, err := c.UpdateUAMAlerts(context.Background(), []string{"00000000-0000-7000-8000-0000000000ff", "00000000-0000-7000-8000-00000000a001"}, UAMAlertUpdate{Status: "new"})
	if err != nil {
		t.Fatal(err)
	}
	o := r.Outcome()
	if len(o.Failed) != 2 || !strings.HasPrefix(o.Failed[0].Reason, "ALERT_NOT_FOUND") || !strings.HasPrefix(o.Failed[1].Reason, UAMNotApplied) {
		t.Errorf("outcome %+v", o)
	}
}

// TestUAMPages follows endCursor while hasNextPage, with the filter
// unchanged.
func TestUAMPages(t *testing.T) {
	page := func(next bool, cursor string) string {
		return `{"data":{"alerts":{"totalCount":3,"pageInfo":{"hasNextPage":` + map[bool]string{true: "true", false: "false"}[next] +
			`,"endCursor":"` + cursor + `"},"edges":[{"cursor":"` + cursor + `","node":{"id":"` + cursor + `"}}]}}}`
	}
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		reply(w, 200, page(n < 2, []string{"c1", "c2", "c3"}[min(n, 2)]))
	})
	c := newTestClient(t, fastConfig(con.URL))
	var got []string
	for p, err := range c.UAMAlertPages(context.Background(), UAMIngestFilter(time.Unix(0, 0), 1)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Items[0].ID)
	}
	if !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Errorf("pages %v", got)
	}
	reqs := con.requests()
	for i, r := range reqs {
		v := graphqlVars(t, r)
		after, _ := v["after"].(string)
		if want := []string{"", "c1", "c2"}[i]; after != want {
			t.Errorf("request %d after %q, want %q", i, after, want)
		}
		delete(v, "after")
		if a, b := asText(v), asText(graphqlVars(t, reqs[0])); a != b {
			t.Errorf("request %d changed the filter: %s vs %s", i, a, b)
		}
	}
}
