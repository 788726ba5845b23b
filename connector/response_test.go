package connector_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// TestResponseActionsThroughNATS sends every response action of DESIGN.md
// §11 through NATS to a connector and checks, from the emulator's request
// log, the exact upstream calls each made: method, path, query, and for
// the mutating ones a filter of exactly the ids named (filter.ids, nothing
// else) and the data.
func TestResponseActionsThroughNATS(t *testing.T) {
	env := testenv.Start(t, nil, emulator.WithRequestLog(1000))
	threats := windowsThreatIDs(t, env, 3)
	agents := env.Emu.IDs().Agents[:2]
	list := func(ids []string) string { b, _ := json.Marshal(ids); return string(b) }
	const password = "Zip-Pass-2024!x9"

	type call struct {
		method, path, query string
		ids                 []string       // filter.ids; nil for a call without a body
		data                map[string]any // the body's data
	}
	for _, tc := range []struct {
		action, request, reply string
		calls                  []call
	}{
		{handlers.ActionThreatsMitigate, `{"threatIds":` + list(threats[:2]) + `,"action":"kill"}`, `{"affected":2}`,
			[]call{{"POST", "/threats/mitigate/kill", "", threats[:2], map[string]any{}}}},
		{handlers.ActionThreatsMitigate, `{"threatIds":` + list(threats[2:]) + `,"action":"rollback_remediation"}`, `{"affected":1}`,
			[]call{{"POST", "/threats/mitigate/rollback-remediation", "", threats[2:], map[string]any{}}}},
		{handlers.ActionThreatsNotesAdd, `{"threatIds":` + list(threats) + `,"text":"contained by playbook 7"}`, `{"affected":3}`,
			[]call{{"POST", "/threats/notes", "", threats, map[string]any{"text": "contained by playbook 7"}}}},
		{handlers.ActionThreatsNotesList, `{"threatId":"` + threats[0] + `","limit":5}`, "",
			[]call{{"GET", "/threats/" + threats[0] + "/notes", "limit=5&sortBy=createdAt&sortOrder=asc", nil, nil}}},
		{handlers.ActionThreatsTimeline, `{"threatId":"` + threats[0] + `","activityTypes":[2011,2001]}`, "",
			[]call{{"GET", "/threats/" + threats[0] + "/timeline", "activityTypes=2011%2C2001&limit=100&sortBy=createdAt&sortOrder=desc", nil, nil}}},
		{handlers.ActionThreatsFetchFile, `{"threatIds":` + list(threats[:2]) + `,"password":"` + password + `"}`, `{"affected":2}`,
			[]call{
				{"POST", "/threats/fetch-file", "", threats[:1], map[string]any{"password": password}},
				{"POST", "/threats/fetch-file", "", threats[1:2], map[string]any{"password": password}},
			}},
		{handlers.ActionAgentsScanStart, `{"agentIds":` + list(agents) + `}`, `{"affected":2}`,
			[]call{{"POST", "/agents/actions/initiate-scan", "", agents, map[string]any{}}}},
		{handlers.ActionAgentsScanAbort, `{"agentIds":` + list(agents[:1]) + `}`, `{"affected":1}`,
			[]call{{"POST", "/agents/actions/abort-scan", "", agents[:1], map[string]any{}}}},
		{handlers.ActionAgentsCount, `{"osTypes":["windows"],"isActive":true}`, "",
			[]call{{"GET", "/agents/count", "isActive=true&osTypes=windows", nil, nil}}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			env.Emu.ResetRequests()
			r := env.Call(t, tc.action, tc.request)
			if r.Err != nil {
				t.Fatalf("%d %s", r.Err.Code, r.Err.Message)
			}
			if tc.reply != "" && trackless(t, r.Event.Data) != tc.reply {
				t.Errorf("reply %s, want %s with a trackingId and subject when tracked", r.Event.Data, tc.reply)
			}
			got := env.Emu.Requests()
			if len(got) != len(tc.calls) {
				t.Fatalf("%d upstream calls, want %d: %v", len(got), len(tc.calls), upstreamCalls(env.Emu))
			}
			for i, want := range tc.calls {
				g := got[i]
				q, _ := url.ParseQuery(g.RawQuery)
				path := strings.TrimPrefix(g.Path, apiPrefix)
				if g.Method != want.method || path != want.path || q.Encode() != want.query {
					t.Errorf("call %d: %s %s?%s, want %s %s?%s", i, g.Method, path, q.Encode(), want.method, want.path, want.query)
				}
				if want.ids == nil {
					if len(g.Body) != 0 {
						t.Errorf("call %d sends a body: %s", i, g.Body)
					}
					continue
				}
				var body struct {
					Filter map[string]json.RawMessage `json:"filter"`
					Data   map[string]any             `json:"data"`
				}
				if err := json.Unmarshal(g.Body, &body); err != nil {
					t.Fatalf("call %d: body %s: %v", i, g.Body, err)
				}
				var ids []string
				if err := json.Unmarshal(body.Filter["ids"], &ids); err != nil || len(body.Filter) != 1 || !slices.Equal(ids, want.ids) {
					t.Errorf("call %d: filter %s, want exactly {\"ids\":%v}", i, g.Body, want.ids)
				}
				if fmt.Sprint(body.Data) != fmt.Sprint(want.data) {
					t.Errorf("call %d: data %v, want %v", i, body.Data, want.data)
				}
			}
		})
	}
}

// windowsThreatIDs returns n threats of active Windows agents (every
// mitigation applies to them).
func windowsThreatIDs(t *testing.T, env *testenv.Env, n int) []string {
	t.Helper()
	out := env.Emu.ThreatsOn("windows", true, n)
	if len(out) < n {
		t.Fatalf("only %d Windows threats on active agents", len(out))
	}
	return out
}

// TestMaxTargetsFromConfig: consoles.<name>.actions.max_targets reaches the
// actions: more ids than it allows is a 400 naming the key, SentinelOne is
// not called, and the refusal is audited; as many passes.
func TestMaxTargetsFromConfig(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.Actions.MaxTargets = 2
		c.Consoles["main"] = m
	}, emulator.WithRequestLog(1000))
	agents := env.Emu.IDs().Agents[:3]
	list := func(ids []string) string { b, _ := json.Marshal(ids); return string(b) }
	env.Emu.ResetRequests()
	for _, action := range []string{handlers.ActionAgentsDisconnect, handlers.ActionAgentsScanStart} {
		req := newRequest(action, `{"agentIds":`+list(agents)+`}`)
		r := roundTrip(t, env.NC, env.Connector.Subjects().Action("main", action), req, ce.ModeBinary)
		checkError(t, r, handlers.CodeInvalid, "consoles.main.actions.max_targets allows at most 2")
		m, ok := byID(t, readAudit(t, env.NC, env.Cfg))[auditID(req, 1, subjects.PhaseRefused)]
		if !ok || m.Rec.Outcome == nil || m.Rec.Outcome.Code != handlers.CodeInvalid {
			t.Errorf("%s: no refused record of the 400 (%+v)", action, m.Rec)
		}
	}
	if got := upstreamCalls(env.Emu); len(got) != 0 {
		t.Errorf("refused requests reached SentinelOne: %q", got)
	}
	if r := env.Call(t, handlers.ActionAgentsScanStart, `{"agentIds":`+list(agents[:2])+`}`); r.Err != nil {
		t.Errorf("two ids refused: %v", r.Err)
	}
}

// trackless returns a reply's data without the trackingId and subject of a
// tracked action (DESIGN.md §13), after checking that they go together and
// that the subject names the tracking id.
func trackless(t *testing.T, data []byte) string {
	t.Helper()
	var r map[string]json.RawMessage
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("reply %s: %v", data, err)
	}
	id, hasID := r["trackingId"]
	subj, hasSubj := r["subject"]
	if hasID != hasSubj {
		t.Errorf("reply %s: trackingId and subject must come together", data)
	}
	if hasID {
		var tid, s string
		_ = json.Unmarshal(id, &tid)
		_ = json.Unmarshal(subj, &s)
		if !strings.HasSuffix(s, ".event.action."+tid+".*") {
			t.Errorf("reply %s: subject does not name the tracking id", data)
		}
		delete(r, "trackingId")
		delete(r, "subject")
	}
	out, _ := json.Marshal(r)
	return string(out)
}
