package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// asyncAPISchema compiles the official AsyncAPI 3.0.0 JSON Schema
// (testdata/README.md says where it comes from).
func asyncAPISchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/asyncapi-3.0.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const id = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAsyncAPISpec validates the document against the official AsyncAPI
// 3.0.0 JSON Schema, and checks that the validator refuses a broken one.
func TestAsyncAPISpec(t *testing.T) {
	spec := asyncAPISchema(t)
	for _, prefix := range []string{"", "acme"} {
		doc, err := schema.JSON(schema.Options{Version: "1.2.3", Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := spec.Validate(instance(t, doc)); err != nil {
			t.Fatalf("prefix %q: the document is not valid AsyncAPI 3.0.0:\n%v", prefix, err)
		}
	}
	// The same validator refuses what AsyncAPI 3.0 does not allow.
	for name, breakIt := range map[string]func(d map[string]any){
		"an operation action that is neither send nor receive": func(d map[string]any) {
			d["operations"].(map[string]any)["agents.list"].(map[string]any)["action"] = "publish"
		},
		"an AsyncAPI 2 publish operation in a channel": func(d map[string]any) {
			d["channels"].(map[string]any)["agents.list"].(map[string]any)["publish"] = map[string]any{}
		},
		"a server without protocol": func(d map[string]any) {
			delete(d["servers"].(map[string]any)["demo"].(map[string]any), "protocol")
		},
	} {
		d, err := schema.Document(schema.Options{})
		if err != nil {
			t.Fatal(err)
		}
		breakIt(d)
		b, _ := json.Marshal(d)
		if err := spec.Validate(instance(t, b)); err == nil {
			t.Errorf("the AsyncAPI schema accepted a document with %s", name)
		}
	}
}

// commonKeywords are the JSON Schema keywords whose meaning is the same in
// draft 2020-12 and draft-07 (the base of AsyncAPI's Schema Object). The
// data schemas use no others, so that AsyncAPI tools and 2020-12
// validators read them alike.
var commonKeywords = map[string]bool{
	"$schema": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "const": true, "minimum": true, "maximum": true, "minLength": true,
	"maxLength": true, "pattern": true, "format": true, "minItems": true, "maxItems": true,
	"uniqueItems": true, "oneOf": true, "anyOf": true, "allOf": true, "description": true, "title": true,
	"default": true, "examples": true,
}

// walkSchema calls fn with every (sub)schema of s and its location.
func walkSchema(s map[string]any, at string, fn func(s map[string]any, at string)) {
	fn(s, at)
	for k, v := range s {
		switch k {
		case "properties":
			for name, p := range v.(map[string]any) {
				if m, ok := p.(map[string]any); ok { // true: anything
					walkSchema(m, at+"/properties/"+name, fn)
				}
			}
		case "items", "additionalProperties":
			if m, ok := v.(map[string]any); ok {
				walkSchema(m, at+"/"+k, fn)
			}
		case "oneOf", "anyOf", "allOf":
			for _, p := range v.([]any) {
				walkSchema(p.(map[string]any), at+"/"+k, fn)
			}
		}
	}
}

func payloads(t *testing.T) map[string]map[string]any {
	t.Helper()
	d, err := schema.Document(schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through JSON, as a reader of the document sees it.
	b, _ := json.Marshal(d)
	var doc struct {
		Components struct {
			Messages map[string]struct {
				Payload map[string]any `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for name, m := range doc.Components.Messages {
		out[name] = m.Payload
	}
	return out
}

func TestPayloadKeywords(t *testing.T) {
	for name, p := range payloads(t) {
		if p["$schema"] != schema.Dialect {
			t.Errorf("%s: $schema is %v", name, p["$schema"])
		}
		walkSchema(p, name, func(s map[string]any, at string) {
			for k := range s {
				if !commonKeywords[k] {
					t.Errorf("%s uses keyword %q, outside the draft-07/2020-12 common set", at, k)
				}
			}
			// A branch of oneOf/anyOf may only require members.
			if _, ok := s["type"]; !ok && s["oneOf"] == nil && s["anyOf"] == nil && s["required"] == nil {
				t.Errorf("%s has no type", at)
			}
		})
	}
}

// TestDocumentCovers checks that every action and every event type has its
// channel, operation and messages.
func TestDocumentCovers(t *testing.T) {
	d, err := schema.Document(schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	channels := d["channels"].(map[string]any)
	ops := d["operations"].(map[string]any)
	msgs := d["components"].(map[string]any)["messages"].(map[string]any)
	for _, a := range schema.Actions() {
		ch, ok := channels[a.Name].(map[string]any)
		if !ok || ch["address"] != "{prefix}.{console}.action."+a.Name {
			t.Errorf("%s: channel %v", a.Name, ch)
		}
		op, ok := ops[a.Name].(map[string]any)
		if !ok || op["action"] != "receive" || op["reply"] == nil {
			t.Errorf("%s: operation %v", a.Name, op)
		}
		req, ok := msgs[a.Name+".request"].(map[string]any)
		if !ok || req["name"] != subjects.RequestType(a.Name) {
			t.Errorf("%s: request message %v", a.Name, req)
		}
		if _, ok := msgs[a.Name+".response"]; !ok {
			t.Errorf("%s: no response message", a.Name)
		}
		if got := len(op["reply"].(map[string]any)["messages"].([]any)); got != map[bool]int{false: 2, true: 3}[a.Mutating] {
			t.Errorf("%s: %d reply messages", a.Name, got)
		}
	}
	var types []string
	for _, k := range events.All() {
		ch, ok := channels[k.Name].(map[string]any)
		if !ok || ch["address"] != k.Subject {
			t.Errorf("%s: channel %v", k.Name, ch)
		}
		if op, ok := ops[k.Name].(map[string]any); !ok || op["action"] != "send" {
			t.Errorf("%s: operation %v", k.Name, op)
		}
		m := msgs[k.Name].(map[string]any)
		h := m["headers"].(map[string]any)["properties"].(map[string]any)["ce-type"].(map[string]any)
		for _, typ := range h["enum"].([]any) {
			types = append(types, typ.(string))
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, events.Types()) {
		t.Errorf("event types in the document %v, in the catalog %v", types, events.Types())
	}
	if want := len(schema.Actions()) + len(events.All()) + 1; len(channels) != want {
		t.Errorf("%d channels, want %d (actions, events, replies)", len(channels), want)
	}
}

func TestValidateRequest(t *testing.T) {
	const id = "1000000000000000001"
	for _, tc := range []struct {
		action, data string
		ok           bool
	}{
		{"agents.connect", `{"agentIds":["` + id + `"]}`, true},
		{"agents.connect", `{"agentIds":[]}`, false},
		{"agents.connect", `{}`, false},
		{"agents.connect", `{"agentIds":["12"]}`, false},
		{"agents.connect", `{"agentIds":["` + id + `"],"dryRun":true}`, false},
		{"agents.list", ``, true},
		{"agents.list", `{"limit":1000,"osTypes":["linux","macos"],"isActive":true}`, true},
		{"agents.list", `{"limit":0}`, false},
		{"agents.list", `{"limit":1001}`, false},
		{"agents.list", `{"osTypes":["linux","linux"]}`, false},
		{"agents.list", `{"osTypes":["Linux"]}`, false},
		{"agents.list", `{"computerName":"a\u0007b"}`, false},
		{"threats.list", `{"createdAfter":"2024-05-01T08:00:00Z","sortBy":"updatedAt","sortOrder":"asc"}`, true},
		{"threats.list", `{"createdAfter":"yesterday"}`, false},
		{"threats.list", `{"computerName":"a,b"}`, false},
		{"threats.update", `{"threatIds":["` + id + `"],"incidentStatus":"resolved"}`, true},
		{"threats.update", `{"threatIds":["` + id + `"]}`, false},
		{"blocklist.delete", `{"ids":["` + id + `"]}`, true},
		{"blocklist.delete", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"tenant":true}}`, true},
		{"blocklist.delete", `{"ids":["` + id + `"],"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`, false},
		{"blocklist.add", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"siteIds":["` + id + `"],"tenant":true}}`, false},
		{"hash.reputation", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`, true},
		{"hash.reputation", `{"hash":"3395856ce81f2b7382dee72602f798b642f1414"}`, false},
		{"threats.monitor", `{"threatId":"` + id + `","timeout":"1h30m","pollInterval":"5s"}`, true},
		{"threats.monitor", `{"threatId":"` + id + `","timeout":"soon"}`, false},
		{"ingest.status", `{}`, true},
		{"ingest.status", `{"x":1}`, false},
	} {
		err := schema.ValidateRequest(tc.action, []byte(tc.data))
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: valid %t, want %t (%v)", tc.action, tc.data, err == nil, tc.ok, err)
		}
	}
	if err := schema.ValidateRequest("agents.lst", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Errorf("unknown action: %v", err)
	}
}

func TestValidateReplyAndError(t *testing.T) {
	for _, tc := range []struct {
		action, data string
		ok           bool
	}{
		{"hash.reputation", `{"hash":"a","verdict":"malicious","rank":null}`, true},
		{"hash.reputation", `{"hash":"a","verdict":"malicious","rank":11}`, false},
		{"hash.reputation", `{"hash":"a","verdict":"malicious"}`, false},
		{"threats.list", `{"items":[{"id":"1","threatInfo":{}}],"nextCursor":null,"totalItems":1,"truncated":false}`, true},
		{"threats.list", `{"items":[{"threatInfo":{}}],"nextCursor":null,"totalItems":1,"truncated":false}`, false},
		{"alerts.list", `{"items":[{"alertInfo":{"alertId":"1"}}],"nextCursor":"abc","totalItems":9,"truncated":true}`, true},
		{"sites.list", `{"items":[],"nextCursor":null,"totalItems":0,"truncated":false,"allSites":null}`, true},
		{"monitors.list", `{"items":[{"monitorId":"m","threatId":"1","startedAt":"2024-05-01T08:00:00Z","deadline":"2024-05-01T09:00:00Z","pollInterval":"30s"}],"nextCursor":null,"totalItems":1,"truncated":false}`, true},
		{"monitors.list", `{"items":[{"monitorId":"m"}],"nextCursor":null,"totalItems":1,"truncated":false}`, false},
		{"threats.monitor", `{"monitorId":"m","threatId":"1","state":"watching","deadline":"2024-05-01T09:00:00Z","subject":"s1.main.event.monitor.m.*"}`, true},
		{"threats.monitor", `{"monitorId":"m","threatId":"1","state":"sleeping","deadline":"2024-05-01T09:00:00Z","subject":"s"}`, false},
		{"agents.connect", `{"dryRun":true,"action":"agents.connect","console":"main","request":{"agentIds":["1"]}}`, true},
		{"agents.connect", `{"dryRun":true,"console":"main"}`, false},
		{"ingest.status", `{"console":"main","leader":true,"leaderId":"h","watermark":null,"lastPollAt":null,"lastError":"","published":0,"lagSeconds":null}`, true},
		{"ingest.status", `{"console":"main","leader":"yes","leaderId":"h","watermark":null,"lastPollAt":null,"lastError":"","published":0,"lagSeconds":null}`, false},
	} {
		err := schema.ValidateReply(tc.action, []byte(tc.data))
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: valid %t, want %t (%v)", tc.action, tc.data, err == nil, tc.ok, err)
		}
	}
	if err := schema.ValidateError([]byte(`{"code":404,"message":"threatId: no such threat","retryable":false}`)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{`{"code":418,"message":"x","retryable":false}`, `{"code":400,"message":"x"}`, `[]`} {
		if err := schema.ValidateError([]byte(bad)); err == nil {
			t.Errorf("error data %s accepted", bad)
		}
	}
}

// sampleEvents are events of each kind, as the runtime will encode them.
func sampleEvents() map[string]any {
	at := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	activity, affected, tracking := "9000000000000000001", 2, "t-1"
	threat := json.RawMessage(`{"id":"1","threatInfo":{"incidentStatus":"resolved"}}`)
	alert := json.RawMessage(`{"id":"a-1","status":"RESOLVED"}`)
	change := events.Change{Field: events.FieldIncidentStatus, From: "in_progress", To: "resolved"}
	audit := events.AuditRecord{
		Action: "threats.fetch_file", Console: "main",
		Request: events.AuditRequest{ID: "r1", Source: "/soar", Type: subjects.RequestType("threats.fetch_file"), Time: &at,
			Data: json.RawMessage(`{"threatIds":["1"],"password":"` + events.Redacted + `"}`)},
		Targets:  &events.AuditTargets{Field: "threatIds", IDs: []string{"1"}},
		Upstream: []events.UpstreamCall{{Method: "POST", Path: "/web/api/v2.1/threats/fetch-file", Status: 200, RequestID: "rq"}},
		Replica:  "r-1", At: at,
	}
	completed := audit
	completed.Outcome = &events.AuditOutcome{Code: 200, Affected: &affected, TrackingID: &tracking}
	return map[string]any{
		subjects.TypeThreatCreated:                      events.ThreatCreated{Threat: threat},
		subjects.TypeThreatStatusChanged:                events.ThreatChanged{Threat: threat, Change: change},
		subjects.TypeThreatResolved:                     events.ThreatChanged{Threat: threat, Change: change},
		subjects.TypeThreatVerdictChanged:               events.ThreatChanged{Threat: threat, Change: events.Change{Field: events.FieldAnalystVerdict, To: "true_positive"}},
		subjects.TypeThreatMitigationChanged:            events.ThreatChanged{Threat: threat, Change: events.Change{Field: events.FieldMitigationStatus, From: "not_mitigated", To: "mitigated"}},
		subjects.MonitorType(subjects.OutcomeResolved):  events.MonitorOutcome{MonitorID: "m", ThreatID: "1", Threat: threat, StartedAt: at, EndedAt: at},
		subjects.MonitorType(subjects.OutcomeTimedOut):  events.MonitorOutcome{MonitorID: "m", ThreatID: "1", Threat: threat, StartedAt: at, EndedAt: at},
		subjects.MonitorType(subjects.OutcomeCancelled): events.MonitorOutcome{MonitorID: "m", ThreatID: "1", Threat: json.RawMessage("null"), StartedAt: at, EndedAt: at},
		subjects.TypeAlertCreated:                       events.AlertCreated{Alert: alert},
		subjects.TypeAlertStatusChanged:                 events.AlertChanged{Alert: alert, Change: events.Change{Field: events.FieldStatus, From: "new", To: "in_progress"}},
		subjects.TypeAlertResolved:                      events.AlertChanged{Alert: alert, Change: events.Change{Field: events.FieldStatus, From: "in_progress", To: "resolved"}},
		subjects.TypeAlertVerdictChanged:                events.AlertChanged{Alert: alert, Change: events.Change{Field: events.FieldAnalystVerdict, To: "false_positive"}},
		subjects.TypeActionCompleted: events.ActionOutcome{TrackingID: "t-1", Action: "agents.disconnect", Console: "main", RequestedAt: at, EndedAt: at,
			Targets: []events.ActionTarget{{ID: "1", State: events.TargetSucceeded, At: &at, ActivityID: &activity}}},
		subjects.TypeActionFailed: events.ActionOutcome{TrackingID: "t-1", Action: "agents.scan.start", Console: "main", RequestedAt: at, EndedAt: at,
			Targets: []events.ActionTarget{{ID: "1", State: events.TargetFailed, At: &at, ActivityID: &activity, Message: "scan refused"}}},
		subjects.TypeActionTimedOut: events.ActionOutcome{TrackingID: "t-1", Action: "threats.mitigate", Console: "main", RequestedAt: at, EndedAt: at,
			Targets: []events.ActionTarget{{ID: "1", State: events.TargetPending}}},
		subjects.TypeAuditRequested: audit,
		subjects.TypeAuditCompleted: completed,
		subjects.TypeAuditRefused:   events.AuditRecord{Action: "agents.disconnect", Console: "main", Outcome: &events.AuditOutcome{Code: 403, Message: "denied"}, At: at, Request: events.AuditRequest{Data: json.RawMessage(`{}`)}, Upstream: []events.UpstreamCall{}},
		subjects.TypeTokenExpiring:  events.TokenExpiring{Console: "main", ExpiresAt: at.Add(240 * time.Hour), DaysLeft: 10},
	}
}

func TestValidateEvent(t *testing.T) {
	samples := sampleEvents()
	for _, typ := range events.Types() {
		v, ok := samples[typ]
		if !ok {
			t.Errorf("no sample of %s", typ)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.ValidateEvent(typ, b); err != nil {
			t.Errorf("%s: %v\n%s", typ, err, b)
		}
	}
	for _, tc := range []struct{ typ, data string }{
		{subjects.TypeThreatCreated, `{}`},
		{subjects.TypeThreatCreated, `{"threat":"1"}`},
		{subjects.TypeThreatStatusChanged, `{"threat":{},"change":{"field":"colour","from":"a","to":"b"}}`},
		{subjects.TypeActionFailed, `{"trackingId":"t","action":"a","console":"c","targets":[{"id":"1","state":"lost","at":null,"activityId":null,"message":""}],"requestedAt":"2024-05-01T08:00:00Z","endedAt":"2024-05-01T08:00:00Z"}`},
		{subjects.TypeTokenExpiring, `{"console":"main","expiresAt":"2024-05-10","daysLeft":1}`},
		{subjects.TypeTokenExpiring, `{"console":"main","expiresAt":"2024-05-10T00:00:00Z","daysLeft":-1}`},
	} {
		if err := schema.ValidateEvent(tc.typ, []byte(tc.data)); err == nil {
			t.Errorf("%s %s accepted", tc.typ, tc.data)
		}
	}
	if err := schema.ValidateEvent("s1bridge.threat.exploded", []byte(`{}`)); err == nil {
		t.Error("unknown event type accepted")
	}
}
