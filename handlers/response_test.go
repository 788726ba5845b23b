package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// testPassword follows SentinelOne's fetch-file rules and is recognisable,
// so that tests can look for it in whatever s1bridge shows.
const testPassword = "Zip-Pass-2024!x9"

// upstream is one request the emulator recorded, decoded for assertions.
type upstream struct {
	Method, Path string // Path below the API prefix
	Query        url.Values
	Filter       map[string]any // the body's filter, nil when none
	Data         map[string]any // the body's data, nil when none
	Raw          []byte
}

// recorded returns the emulator's request log, decoded.
func recorded(t *testing.T, e *emulator.Emulator) []upstream {
	t.Helper()
	var out []upstream
	for _, r := range e.Requests() {
		q, _ := url.ParseQuery(r.RawQuery)
		u := upstream{Method: r.Method, Path: strings.TrimPrefix(r.Path, apiPrefix), Query: q, Raw: r.Body}
		if len(r.Body) > 0 {
			var body struct {
				Filter map[string]any `json:"filter"`
				Data   map[string]any `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("%s %s: body %s: %v", r.Method, r.Path, r.Body, err)
			}
			u.Filter, u.Data = body.Filter, body.Data
		}
		out = append(out, u)
	}
	return out
}

// filterIDs returns a filter's ids and whether ids is its only key.
func filterIDs(f map[string]any) ([]string, bool) {
	raw, ok := f["ids"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		out[i], _ = v.(string)
	}
	return out, len(f) == 1
}

// windowsThreats returns n threats on active Windows agents (every
// mitigation applies there).
func windowsThreats(t *testing.T, e *emulator.Emulator, n int) []string {
	t.Helper()
	out := e.ThreatsOn("windows", true, n)
	if len(out) < n {
		t.Fatalf("only %d Windows threats on active agents", len(out))
	}
	return out
}

// TestResponseActions runs every response action through its handler
// against the emulator over HTTP and checks the reply and the exact
// upstream calls: method, path, filter.ids (and nothing else in the filter)
// and data.
func TestResponseActions(t *testing.T) {
	e, env := emu(t)
	threats := windowsThreats(t, e, 3)
	agents := e.IDs().Agents[:2]
	idList := func(ids []string) string { b, _ := json.Marshal(ids); return string(b) }

	type call struct {
		method, path string
		ids          []string       // the filter's ids; nil when the call has no body
		data         map[string]any // the body's data
		query        string         // the encoded query, "" for none
	}
	cases := []struct {
		name, action, data string
		reply              string // the exact reply, "" to skip
		calls              []call
	}{
		{"kill", ActionThreatsMitigate, `{"threatIds":` + idList(threats[:2]) + `,"action":"kill"}`, `{"affected":2}`,
			[]call{{"POST", "/threats/mitigate/kill", threats[:2], map[string]any{}, ""}}},
		{"quarantine", ActionThreatsMitigate, `{"threatIds":` + idList(threats[:1]) + `,"action":"quarantine"}`, `{"affected":1}`,
			[]call{{"POST", "/threats/mitigate/quarantine", threats[:1], map[string]any{}, ""}}},
		{"remediate", ActionThreatsMitigate, `{"threatIds":` + idList(threats[:1]) + `,"action":"remediate"}`, `{"affected":1}`,
			[]call{{"POST", "/threats/mitigate/remediate", threats[:1], map[string]any{}, ""}}},
		{"rollback", ActionThreatsMitigate, `{"threatIds":` + idList(threats[:1]) + `,"action":"rollback_remediation"}`, `{"affected":1}`,
			[]call{{"POST", "/threats/mitigate/rollback-remediation", threats[:1], map[string]any{}, ""}}},
		{"unquarantine", ActionThreatsMitigate, `{"threatIds":` + idList(threats[:1]) + `,"action":"un_quarantine"}`, `{"affected":1}`,
			[]call{{"POST", "/threats/mitigate/un-quarantine", threats[:1], map[string]any{}, ""}}},
		{"note", ActionThreatsNotesAdd, `{"threatIds":` + idList(threats) + `,"text":"contained by SOAR\ncase 42"}`, `{"affected":3}`,
			[]call{{"POST", "/threats/notes", threats, map[string]any{"text": "contained by SOAR\ncase 42"}, ""}}},
		{"notes", ActionThreatsNotesList, `{"threatId":"` + threats[0] + `","limit":5}`, "",
			[]call{{"GET", "/threats/" + threats[0] + "/notes", nil, nil, "limit=5&sortBy=createdAt&sortOrder=asc"}}},
		{"timeline", ActionThreatsTimeline, `{"threatId":"` + threats[0] + `","activityTypes":[2011,2001]}`, "",
			[]call{{"GET", "/threats/" + threats[0] + "/timeline", nil, nil, "activityTypes=2011%2C2001&limit=100&sortBy=createdAt&sortOrder=desc"}}},
		{"fetch", ActionThreatsFetchFile, `{"threatIds":` + idList(append(threats[:2:2], threats[0])) + `,"password":"` + testPassword + `"}`, `{"affected":2}`,
			[]call{
				{"POST", "/threats/fetch-file", threats[:1], map[string]any{"password": testPassword}, ""},
				{"POST", "/threats/fetch-file", threats[1:2], map[string]any{"password": testPassword}, ""},
			}},
		{"scan", ActionAgentsScanStart, `{"agentIds":` + idList(agents) + `}`, `{"affected":2}`,
			[]call{{"POST", "/agents/actions/initiate-scan", agents, map[string]any{}, ""}}},
		{"abort", ActionAgentsScanAbort, `{"agentIds":` + idList(agents[:1]) + `}`, `{"affected":1}`,
			[]call{{"POST", "/agents/actions/abort-scan", agents[:1], map[string]any{}, ""}}},
		{"count", ActionAgentsCount, `{"networkStatuses":["connected"],"osTypes":["windows"],"isActive":true}`, "",
			[]call{{"GET", "/agents/count", nil, nil, "isActive=true&networkStatuses=connected&osTypes=windows"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.ResetRequests()
			b := mustRun(t, env, tc.action, tc.data, nil)
			if tc.reply != "" && string(b) != tc.reply {
				t.Errorf("reply %s, want %s", b, tc.reply)
			}
			got := recorded(t, e)
			if len(got) != len(tc.calls) {
				t.Fatalf("%d upstream calls, want %d: %+v", len(got), len(tc.calls), got)
			}
			for i, want := range tc.calls {
				g := got[i]
				if g.Method != want.method || g.Path != want.path || g.Query.Encode() != want.query {
					t.Errorf("call %d: %s %s?%s, want %s %s?%s", i, g.Method, g.Path, g.Query.Encode(), want.method, want.path, want.query)
				}
				if want.ids == nil {
					if len(g.Raw) != 0 {
						t.Errorf("call %d sends a body: %s", i, g.Raw)
					}
					continue
				}
				ids, only := filterIDs(g.Filter)
				if !only || !slices.Equal(ids, want.ids) {
					t.Errorf("call %d: filter %v, want exactly ids %v", i, g.Filter, want.ids)
				}
				if fmt.Sprint(g.Data) != fmt.Sprint(want.data) {
					t.Errorf("call %d: data %v, want %v", i, g.Data, want.data)
				}
			}
		})
	}

	// The reads see what the writes did.
	var notes listResult
	mustRun(t, env, ActionThreatsNotesList, `{"threatId":"`+threats[2]+`"}`, &notes)
	if len(notes.Items) != 1 || !strings.Contains(string(notes.Items[0]), `"text":"contained by SOAR\ncase 42"`) {
		t.Errorf("notes %s", notes.Items)
	}
	var tl listResult
	mustRun(t, env, ActionThreatsTimeline, `{"threatId":"`+threats[0]+`","activityTypes":[2011,2001,4020,85,86],"limit":1000,"all":true}`, &tl)
	var types []int
	for _, it := range tl.Items {
		var a struct {
			Type     int    `json:"activityType"`
			ThreatID string `json:"threatId"`
		}
		_ = json.Unmarshal(it, &a)
		if a.ThreatID != threats[0] {
			t.Errorf("timeline entry of threat %s", a.ThreatID)
		}
		types = append(types, a.Type)
	}
	for _, want := range []int{2011, 2001, 4020, 85, 86} {
		if !slices.Contains(types, want) {
			t.Errorf("timeline types %v lack %d", types, want)
		}
	}
	var count AgentsCountReply
	mustRun(t, env, ActionAgentsCount, `{"osTypes":["windows"]}`, &count)
	var listed listResult
	mustRun(t, env, ActionAgentsList, `{"osTypes":["windows"],"limit":1}`, &listed)
	if count.Total != listed.TotalItems || count.Total == 0 {
		t.Errorf("agents.count %d, agents.list totalItems %d", count.Total, listed.TotalItems)
	}
	// An exact IP is counted from the agents read, as agents.list finds them.
	var byIP listResult
	mustRun(t, env, ActionAgentsList, `{"ip":"203.0.113.10"}`, &byIP)
	e.ResetRequests()
	mustRun(t, env, ActionAgentsCount, `{"ip":"203.0.113.10"}`, &count)
	if count.Total != len(byIP.Items) || count.Total == 0 {
		t.Errorf("count by ip %d, list by ip %d", count.Total, len(byIP.Items))
	}
	for _, c := range recorded(t, e) {
		if c.Method != "GET" || c.Path != "/agents" {
			t.Errorf("count by ip called %s %s", c.Method, c.Path)
		}
	}
}

// TestResponseActionsBadInput: every bad request is a 400 naming the field,
// and nothing reaches SentinelOne.
func TestResponseActionsBadInput(t *testing.T) {
	e, env := emu(t)
	th := e.IDs().Threats[0]
	ag := e.IDs().Agents[0]
	cases := []struct{ action, data, field string }{
		{ActionThreatsMitigate, `{"action":"kill"}`, "threatIds: is required"},
		{ActionThreatsMitigate, `{"threatIds":[],"action":"kill"}`, "threatIds: is required"},
		{ActionThreatsMitigate, `{"threatIds":["abc"],"action":"kill"}`, `threatIds[0]: "abc" is not a SentinelOne id`},
		{ActionThreatsMitigate, `{"threatIds":["12"],"action":"kill"}`, `threatIds[0]: "12" is below`},
		{ActionThreatsMitigate, `{"threatIds":[1900000000000000001],"action":"kill"}`, "threatIds: must be a string, not JSON number"},
		{ActionThreatsMitigate, `{"threatIds":["` + th + `"]}`, "action: is required"},
		{ActionThreatsMitigate, `{"threatIds":["` + th + `"],"action":"network_quarantine"}`, "action: network_quarantine is not offered: agents.disconnect"},
		{ActionThreatsMitigate, `{"threatIds":["` + th + `"],"action":"un-quarantine"}`, `action: "un-quarantine" is not one of kill, quarantine, remediate, rollback_remediation, un_quarantine`},
		{ActionThreatsMitigate, `{"threatIds":["` + th + `"],"action":"Kill"}`, "action:"},
		{ActionThreatsMitigate, `{"threatIds":["` + th + `"],"action":"kill","filter":{}}`, "filter: unknown field"},
		{ActionThreatsNotesAdd, `{"threatIds":["` + th + `"]}`, "text: must be 2 to 4096 bytes"},
		{ActionThreatsNotesAdd, `{"threatIds":["` + th + `"],"text":"x"}`, "text: must be 2 to 4096 bytes"},
		{ActionThreatsNotesAdd, `{"threatIds":["` + th + `"],"text":"é"}`, "text: must be 2 to 4096 bytes"},
		{ActionThreatsNotesAdd, `{"threatIds":["` + th + `"],"text":"` + strings.Repeat("n", 4097) + `"}`, "text: must be 2 to 4096 bytes"},
		{ActionThreatsNotesAdd, `{"threatIds":["` + th + `"],"text":"bell\u0007"}`, "text: must not contain control characters"},
		{ActionThreatsNotesAdd, `{"text":"hello"}`, "threatIds: is required"},
		{ActionThreatsNotesList, `{}`, "threatId: is required"},
		{ActionThreatsNotesList, `{"threatId":"../agents"}`, `threatId: "../agents" is not a SentinelOne id`},
		{ActionThreatsNotesList, `{"threatId":"` + th + `","limit":0}`, "limit: must be between 1 and 1000"},
		{ActionThreatsNotesList, `{"threatIds":["` + th + `"]}`, "threatIds: unknown field"},
		{ActionThreatsTimeline, `{"threatId":"5"}`, `threatId: "5" is below`},
		{ActionThreatsTimeline, `{"threatId":"` + th + `","activityTypes":[2011,-1]}`, "activityTypes[1]: -1 is not an activity type"},
		{ActionThreatsTimeline, `{"threatId":"` + th + `","sortOrder":"newest"}`, `sortOrder: "newest" is not one of asc, desc`},
		{ActionThreatsTimeline, `{"threatId":"` + th + `","sortBy":"hash"}`, "sortBy: unknown field"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"]}`, "password: is required"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"Sh0rt!pw"}`, "password: must be at least 10 characters long"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"nouppercase-1"}`, "password: must contain an upper-case letter"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"NOLOWERCASE-1"}`, "password: must contain a lower-case letter"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"No-Digits-Here"}`, "password: must contain a digit"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"NoSymbols123"}`, "password: must contain a symbol"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"Has Space 12!"}`, "password: must not contain white space"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":"` + strings.Repeat("Aa1!", 65) + `"}`, "password: must be at most 256 bytes"},
		{ActionThreatsFetchFile, `{"threatIds":["` + th + `"],"password":12345678901}`, "password: must be a string"},
		{ActionThreatsFetchFile, `{"password":"` + testPassword + `"}`, "threatIds: is required"},
		{ActionAgentsScanStart, `{}`, "agentIds: is required"},
		{ActionAgentsScanStart, `{"agentIds":["` + ag + `","x1"]}`, `agentIds[1]: "x1" is not a SentinelOne id`},
		{ActionAgentsScanAbort, `{"agentIds":[]}`, "agentIds: is required"},
		{ActionAgentsScanAbort, `{"ids":["` + ag + `"]}`, "ids: unknown field"},
		{ActionAgentsCount, `{"networkStatuses":["online"]}`, `networkStatuses[0]: "online" is not one of`},
		{ActionAgentsCount, `{"ids":["1"]}`, `ids[0]: "1" is below`},
		{ActionAgentsCount, `{"ip":"10.0.0"}`, "ip:"},
		{ActionAgentsCount, `{"limit":5}`, "limit: unknown field"},
		{ActionAgentsCount, `{"query":"a\nb"}`, "query: must not contain control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.action+" "+tc.field, func(t *testing.T) {
			e.ResetRequests()
			_, err := run(t, env, tc.action, tc.data)
			if err == nil {
				t.Fatalf("%s: accepted", tc.data)
			}
			if err.Code != CodeInvalid || err.Retryable || !strings.HasPrefix(err.Message, tc.field) {
				t.Errorf("%d %q (retryable %t), want 400 starting %q", err.Code, err.Message, err.Retryable, tc.field)
			}
			if strings.Contains(err.Message, testPassword) || strings.Contains(err.Message, "nouppercase-1") || strings.Contains(err.Message, "Has Space") {
				t.Errorf("the message quotes the password: %s", err.Message)
			}
			if n := len(e.Requests()); n != 0 {
				t.Errorf("a refused request made %d upstream calls", n)
			}
		})
	}
}

// TestMaxTargets: every mutating action that names targets, the seed's
// included, refuses more ids than Env.MaxTargets before calling SentinelOne,
// naming the configuration key; exactly the bound passes; zero means the
// default of 100.
func TestMaxTargets(t *testing.T) {
	e, env := emu(t)
	env.Console = "eu"
	env.MaxTargets = 3
	ids := e.IDs()
	body := map[string]func(ids []string) string{
		ActionAgentsConnect:    func(ids []string) string { return `{"agentIds":` + jsonOf(ids) + `}` },
		ActionAgentsDisconnect: func(ids []string) string { return `{"agentIds":` + jsonOf(ids) + `}` },
		ActionAgentsScanStart:  func(ids []string) string { return `{"agentIds":` + jsonOf(ids) + `}` },
		ActionAgentsScanAbort:  func(ids []string) string { return `{"agentIds":` + jsonOf(ids) + `}` },
		ActionThreatsUpdate:    func(ids []string) string { return `{"threatIds":` + jsonOf(ids) + `,"incidentStatus":"in_progress"}` },
		ActionThreatsMitigate:  func(ids []string) string { return `{"threatIds":` + jsonOf(ids) + `,"action":"kill"}` },
		ActionThreatsNotesAdd:  func(ids []string) string { return `{"threatIds":` + jsonOf(ids) + `,"text":"bounded"}` },
		ActionThreatsFetchFile: func(ids []string) string {
			return `{"threatIds":` + jsonOf(ids) + `,"password":"` + testPassword + `"}`
		},
		ActionAlertsUpdate:    func(ids []string) string { return `{"alertIds":` + jsonOf(ids) + `,"analystVerdict":"suspicious"}` },
		ActionBlocklistDelete: func(ids []string) string { return `{"ids":` + jsonOf(ids) + `}` },
		ActionUAMAlertsUpdate: func(ids []string) string { return `{"alertIds":` + jsonOf(ids) + `,"status":"in_progress"}` },
		ActionUAMAlertsNotesAdd: func(ids []string) string {
			return `{"alertIds":` + jsonOf(ids) + `,"text":"bounded"}`
		},
	}
	of := map[string][]string{
		ActionAgentsConnect: ids.Agents, ActionAgentsDisconnect: ids.Agents, ActionAgentsScanStart: ids.Agents, ActionAgentsScanAbort: ids.Agents,
		ActionThreatsUpdate: ids.Threats, ActionThreatsMitigate: ids.Threats, ActionThreatsNotesAdd: ids.Threats, ActionThreatsFetchFile: ids.Threats,
		ActionAlertsUpdate: ids.Alerts, ActionBlocklistDelete: ids.Restrictions,
		ActionUAMAlertsUpdate: ids.UAMAlerts, ActionUAMAlertsNotesAdd: ids.UAMAlerts,
	}
	for _, a := range All() {
		req := reflect0(a)
		if _, ok := req.(Targeted); !ok {
			if a.Mutating && a.Name != ActionBlocklistAdd {
				t.Errorf("%s is mutating and not Targeted", a.Name)
			}
			continue
		}
		if !a.Mutating {
			t.Errorf("%s is Targeted and read-only", a.Name)
		}
		mk, ok := body[a.Name]
		if !ok {
			t.Errorf("%s: no request in this test", a.Name)
			continue
		}
		e.ResetRequests()
		_, err := run(t, env, a.Name, mk(of[a.Name][:4]))
		if err == nil || err.Code != CodeInvalid || !strings.Contains(err.Message, "names 4 ids; consoles.eu.actions.max_targets allows at most 3") {
			t.Errorf("%s with 4 ids: %v", a.Name, err)
		}
		if n := len(e.Requests()); n != 0 {
			t.Errorf("%s: a refused request made %d upstream calls", a.Name, n)
		}
		if _, err := run(t, env, a.Name, mk(of[a.Name][:3])); err != nil {
			t.Errorf("%s with 3 ids: %v", a.Name, err)
		}
	}
	// Zero is the default bound, 100.
	env.MaxTargets = 0
	many := make([]string, 101)
	for i := range many {
		many[i] = id(i)
	}
	if _, err := run(t, env, ActionAgentsDisconnect, body[ActionAgentsDisconnect](many)); err == nil || !strings.Contains(err.Message, "at most 100") {
		t.Errorf("101 ids with the default bound: %v", err)
	}
	// The bound applies before the dry run too.
	env.DryRun, env.MaxTargets = true, 3
	if _, err := run(t, env, ActionThreatsMitigate, body[ActionThreatsMitigate](ids.Threats[:4])); err == nil || err.Code != CodeInvalid {
		t.Errorf("dry run with 4 ids: %v", err)
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// reflect0 returns a pointer to a new request of a's type.
func reflect0(a Action) any { return reflect.New(reflect.TypeOf(a.Request)).Interface() }

// TestFetchFilePasswordNeverShown runs threats.fetch_file through every
// path that shows something (a SentinelOne 400 echoing the password, an
// upstream failure, a refused request, a dry run) with debug logs in text
// and JSON, and looks for the password everywhere.
func TestFetchFilePasswordNeverShown(t *testing.T) {
	c := newConsole(t)
	c.handle("POST /threats/fetch-file", func(w http.ResponseWriter, r *http.Request, cl call) {
		var body struct {
			Filter struct{ IDs []string } `json:"filter"`
		}
		_ = json.Unmarshal(cl.Body, &body)
		if body.Filter.IDs[0] == id(2) { // SentinelOne refuses it, quoting the body
			writeJSON(w, 400, `{"errors":[{"code":4000010,"title":"Validation Error","detail":"bad body `+strings.ReplaceAll(string(cl.Body), `"`, `\"`)+`"}]}`)
			return
		}
		writeJSON(w, 200, `{"data":{"affected":1}}`)
	})
	var logs bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	js := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := c.env(func(cfg *sentinelone.Config) { cfg.Logger = text })
	env.Logger = js
	var shown []string

	// SentinelOne's 400 passes its detail on, with the password redacted.
	_, err := run(t, env, ActionThreatsFetchFile, `{"threatIds":["`+id(1)+`","`+id(2)+`"],"password":"`+testPassword+`"}`)
	if err == nil || err.Code != CodeInvalid || !strings.Contains(err.Message, "SentinelOne refused the request: Validation Error: bad body") ||
		!strings.Contains(err.Message, sentinelone.Redacted) {
		t.Fatalf("upstream 400: %v", err)
	}
	d, _ := json.Marshal(err.Data())
	shown = append(shown, err.Error(), string(d))
	if p, ok := err.Details.(*PartialDetails); !ok || fmt.Sprint(p.Applied) != fmt.Sprint(&ThreatsFetchFileApplied{ThreatIDs: []string{id(1)}, Affected: 1}) {
		t.Errorf("partial details %+v", err.Details)
	}
	// A refused request.
	_, err = run(t, env, ActionThreatsFetchFile, `{"threatIds":["`+id(1)+`"],"password":"`+strings.ToLower(testPassword)+`"}`)
	if err == nil {
		t.Fatal("a lower-case password was accepted")
	}
	shown = append(shown, err.Error())
	// A dry run logs and echoes the request.
	env.DryRun = true
	b := mustRun(t, env, ActionThreatsFetchFile, `{"threatIds":["`+id(1)+`"],"password":"`+testPassword+`"}`, nil)
	shown = append(shown, string(b))
	// The decoded request, formatted every way.
	req, derr := decodeRequest(mustLookup(t, ActionThreatsFetchFile), []byte(`{"threatIds":["`+id(1)+`"],"password":"`+testPassword+`"}`))
	if derr != nil {
		t.Fatal(derr)
	}
	js.Info("request", "req", req)
	text.Info("request", "req", req)
	enc, _ := json.Marshal(req)
	shown = append(shown, fmt.Sprintf("%v|%+v|%#v|%s|%q", req, req, req, req, req), string(enc), logs.String())
	for _, s := range shown {
		if strings.Contains(s, testPassword) || strings.Contains(s, strings.ToLower(testPassword)) {
			t.Errorf("the password shows in:\n%s", s)
		}
	}
	if !strings.Contains(logs.String(), "dry run") || !strings.Contains(string(b), `"password":"[REDACTED]"`) {
		t.Errorf("dry run: %s\nlogs: %s", b, logs.String())
	}
}

func mustLookup(t *testing.T, name string) Action {
	t.Helper()
	a, ok := Lookup(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	return a
}

// TestRedactData: the raw data of a request with a secret, decodable or not,
// never keeps the secret; other actions' data is untouched.
func TestRedactData(t *testing.T) {
	fetch := mustLookup(t, ActionThreatsFetchFile)
	if !fetch.HasSecrets() {
		t.Fatal("threats.fetch_file has no secrets")
	}
	for _, a := range All() {
		if a.Name != ActionThreatsFetchFile && a.HasSecrets() {
			t.Errorf("%s has secrets", a.Name)
		}
	}
	for in, want := range map[string]string{
		`{"threatIds":["1"],"password":"` + testPassword + `"}`: `{"password":"[REDACTED]","threatIds":["1"]}`,
		`{"Password":"` + testPassword + `"}`:                   `{"Password":"[REDACTED]"}`,
		`{"password":"a","password":"` + testPassword + `"}`:    `{"password":"[REDACTED]"}`,
		`{"password":{"nested":"` + testPassword + `"}}`:        `{"password":"[REDACTED]"}`,
		`{"password":"` + testPassword + `"`:                    `"[REDACTED]"`,
		`["` + testPassword + `"]`:                              `"[REDACTED]"`,
		``:                                                      ``,
		`null`:                                                  `null`,
	} {
		if got := string(fetch.RedactData([]byte(in))); got != want {
			t.Errorf("RedactData(%s) = %s, want %s", in, got, want)
		}
	}
	notes := mustLookup(t, ActionThreatsNotesAdd)
	in := `{"threatIds":["1"],"text":"` + testPassword + `"}`
	if got := string(notes.RedactData([]byte(in))); got != in {
		t.Errorf("an action without secrets changed: %s", got)
	}
}

// TestResponseActionsUpstreamErrors: SentinelOne's 400 passes its detail on
// (the emulator's own words), a console without the operation is a 502.
func TestResponseActionsUpstreamErrors(t *testing.T) {
	e, env := emu(t)
	th := e.IDs().Threats[0]
	// Whatever s1bridge lets through the emulator accepts: inject its 400.
	if err := e.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: 400, Path: "/threats/mitigate"}); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, env, ActionThreatsMitigate, `{"threatIds":["`+th+`"],"action":"kill"}`)
	if err == nil || err.Code != CodeInvalid || err.UpstreamStatus != 400 || !strings.HasPrefix(err.Message, "SentinelOne refused the request") {
		t.Errorf("upstream 400: %+v", err)
	}
	e.ClearFaults()
	if err := e.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: 503, Path: "/agents/count"}); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, env, ActionAgentsCount, `{}`); err == nil || err.Code != CodeUpstream || !err.Retryable {
		t.Errorf("upstream 503 on a read: %+v", err)
	}
}

// TestNotesListPaging: the notes of a threat come back in pages through the
// cursor, oldest first.
func TestNotesListPaging(t *testing.T) {
	e, env := emu(t)
	th := e.IDs().Threats[5]
	for i := range 5 {
		mustRun(t, env, ActionThreatsNotesAdd, `{"threatIds":["`+th+`"],"text":"note `+strconv.Itoa(i)+`"}`, nil)
	}
	var page listResult
	mustRun(t, env, ActionThreatsNotesList, `{"threatId":"`+th+`","limit":2}`, &page)
	if len(page.Items) != 2 || page.NextCursor == nil || page.TotalItems != 5 {
		t.Fatalf("first page %d items, next %v, total %d", len(page.Items), page.NextCursor, page.TotalItems)
	}
	var all listResult
	mustRun(t, env, ActionThreatsNotesList, `{"threatId":"`+th+`","limit":2,"all":true}`, &all)
	var texts []string
	for _, it := range all.Items {
		var n struct{ Text string }
		_ = json.Unmarshal(it, &n)
		texts = append(texts, n.Text)
	}
	if !slices.Equal(texts, []string{"note 0", "note 1", "note 2", "note 3", "note 4"}) {
		t.Errorf("notes %v", texts)
	}
	var none listResult
	mustRun(t, env, ActionThreatsNotesList, `{"threatId":"100000000000000001"}`, &none)
	if len(none.Items) != 0 {
		t.Errorf("an unknown threat has notes: %s", none.Items)
	}
}
