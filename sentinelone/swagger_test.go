package sentinelone

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testdata/swagger-2.1-subset.json is a byte-identical copy of
// shared/sentinelone/swagger-2.1-subset.json, the authority for names.

type swaggerSchema struct {
	Ref        string                    `json:"$ref"`
	Properties map[string]*swaggerSchema `json:"properties"`
	Required   []string                  `json:"required"`
	Enum       []any                     `json:"enum"`
	Items      *swaggerSchema            `json:"items"`
}

type swaggerParam struct {
	Name   string         `json:"name"`
	In     string         `json:"in"`
	Enum   []any          `json:"enum"`
	Items  *swaggerSchema `json:"items"`
	Schema *swaggerSchema `json:"schema"`
}

type swaggerDoc struct {
	Paths       map[string]map[string]json.RawMessage `json:"paths"`
	Definitions map[string]*swaggerSchema             `json:"definitions"`
}

func loadSwagger(t *testing.T) *swaggerDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "swagger-2.1-subset.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc swaggerDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func (d *swaggerDoc) resolve(s *swaggerSchema) *swaggerSchema {
	for s != nil && s.Ref != "" {
		s = d.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
	}
	return s
}

// operation finds the Swagger operation for a request path (a concrete
// path, matched against templates).
func (d *swaggerDoc) operation(method, path string) (string, []swaggerParam, bool) {
	for tmpl, ops := range d.Paths {
		if !matchTemplate(tmpl, path) {
			continue
		}
		raw, ok := ops[strings.ToLower(method)]
		if !ok {
			return tmpl, nil, false
		}
		var op struct {
			Parameters []swaggerParam `json:"parameters"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			return tmpl, nil, false
		}
		return tmpl, op.Parameters, true
	}
	return "", nil, false
}

func matchTemplate(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if ts[i] != ps[i] && !(strings.HasPrefix(ts[i], "{") && ps[i] != "") {
			return false
		}
	}
	return true
}

// pathParam returns the segment of path that the template names {name}.
func pathParam(tmpl, path, name string) string {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	for i := range ts {
		if ts[i] == "{"+name+"}" && i < len(ps) {
			return ps[i]
		}
	}
	return ""
}

func enumOf(p swaggerParam) []string {
	vals := p.Enum
	if p.Items != nil {
		vals = append(vals, p.Items.Enum...)
	}
	var out []string
	for _, v := range vals {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// checkBody checks a JSON body against a schema: every key declared, every
// required key present, string enums respected, recursively.
func (d *swaggerDoc) checkBody(t *testing.T, where string, v any, s *swaggerSchema) {
	t.Helper()
	s = d.resolve(s)
	if s == nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			ps, ok := s.Properties[k]
			if !ok {
				t.Errorf("%s: body key %q not in the Swagger schema", where, k)
				continue
			}
			d.checkBody(t, where+"."+k, sub, ps)
		}
		for _, k := range s.Required {
			if _, ok := v[k]; !ok {
				t.Errorf("%s: required body key %q missing", where, k)
			}
		}
	case []any:
		for _, it := range v {
			d.checkBody(t, where+"[]", it, s.Items)
		}
	case string:
		var enum []string
		for _, e := range s.Enum {
			if es, ok := e.(string); ok {
				enum = append(enum, es)
			}
		}
		if len(enum) > 0 && !slices.Contains(enum, v) {
			t.Errorf("%s: %q not in enum %v", where, v, enum)
		}
	}
}

// fill sets every field of the filter *p: overrides by field name, else a
// generic value of the field's type.
func fill(p any, overrides map[string]any) {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if o, ok := overrides[name]; ok {
			f.Set(reflect.ValueOf(o))
			continue
		}
		switch f.Interface().(type) {
		case string:
			f.SetString("x1")
		case []string:
			f.Set(reflect.ValueOf([]string{"100000000000000001", "100000000000000002"}))
		case []int:
			f.Set(reflect.ValueOf([]int{27, 5040}))
		case int:
			f.SetInt(100)
		case *bool:
			b := true
			f.Set(reflect.ValueOf(&b))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2024, 5, 1, 8, 0, 0, 123456789, time.FixedZone("CEST", 7200))))
		default:
			panic("fill: unhandled field " + name)
		}
	}
}

// TestSwaggerConformance runs every operation with every filter field set
// and checks the requests against the Swagger subset: method and path
// declared (the legacy reputation path excepted), every query parameter
// name declared with values in its enum, bodies within their schema.
func TestSwaggerConformance(t *testing.T) {
	doc := loadSwagger(t)
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/verdict") && strings.Contains(r.URL.Path, "/hashes/"):
			reply(w, 404, `{"errors":[{"code":4040010,"title":"Requested resource was not found"}]}`)
		case strings.HasSuffix(r.URL.Path, "/reputation"):
			reply(w, 200, `{"data":{"rank":"7"}}`)
		case strings.HasSuffix(r.URL.Path, PathSites):
			reply(w, 200, `{"data":{"allSites":{},"sites":[]},"pagination":{"nextCursor":null,"totalItems":0}}`)
		case strings.HasSuffix(r.URL.Path, PathAgentsCount):
			reply(w, 200, `{"data":{"total":3}}`)
		case strings.HasSuffix(r.URL.Path, PathAPITokenDetails):
			reply(w, 200, `{"data":{"createdAt":"2024-05-01T08:00:00.000000Z","expiresAt":"2024-11-01T08:00:00.000000Z"}}`)
		case r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, PathSystemInfo):
			reply(w, 200, `{"data":[],"pagination":{"nextCursor":null,"totalItems":0}}`)
		case r.URL.Path == APIPrefix+PathRestrictions && r.Method == http.MethodPost:
			reply(w, 200, `{"data":[]}`)
		default:
			reply(w, 200, `{"data":{"affected":0,"version":"1"}}`)
		}
	})
	c := newTestClient(t, fastConfig(con.URL))
	ctx := context.Background()
	ids := []string{"100000000000000001"}

	var tf ThreatFilter
	fill(&tf, map[string]any{"IncidentStatuses": []string{"In progress", "resolved"}, "AnalystVerdicts": []string{"True positive"},
		"MitigationStatuses": []string{"not_mitigated"}, "SortBy": "updatedAt", "SortOrder": SortAsc})
	var af AgentFilter
	fill(&af, map[string]any{"NetworkStatuses": []string{"connected"}, "OSTypes": []string{"windows", "linux"}, "SortBy": "computerName", "SortOrder": SortDesc})
	var gf GroupFilter
	fill(&gf, map[string]any{"Type": "static", "SortBy": "name", "SortOrder": SortAsc})
	var sf SiteFilter
	fill(&sf, map[string]any{"State": "active", "SortBy": "name", "SortOrder": SortAsc})
	var actf ActivityFilter
	fill(&actf, map[string]any{"SortBy": "createdAt", "SortOrder": SortDesc})
	var alf AlertFilter
	fill(&alf, map[string]any{"IncidentStatuses": []string{"in_progress", "Unresolved"}, "AnalystVerdicts": []string{"true positive"},
		"Severities": []string{"high", "CRITICAL"}, "SortBy": "alertInfoCreatedAt", "SortOrder": SortAsc})
	var rf RestrictionFilter
	fill(&rf, map[string]any{"OSTypes": []string{"macos"}, "Type": RestrictionBlackHash, "SortBy": "createdAt", "SortOrder": SortAsc})
	var nf NoteFilter
	fill(&nf, map[string]any{"SortBy": "updatedAt", "SortOrder": SortAsc})
	var tlf TimelineFilter
	fill(&tlf, map[string]any{"ActivityTypes": []int{2011, 2001, 4020}, "SortBy": "activityType", "SortOrder": SortDesc})

	calls := []func() error{
		func() error { _, err := c.HashVerdict(ctx, "3395856CE81F2B7382DEE72602F798B642F14140"); return err },
		func() error { _, err := c.ListRestrictions(ctx, rf); return err },
		func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{Value: "3395856ce81f2b7382dee72602f798b642f14140", SHA256Value: strings.Repeat("a", 64),
				OSType: "Windows", Description: "d", Source: "s1bridge", Scope: Scope{SiteIDs: ids}})
			return err
		},
		func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{Value: "3395856ce81f2b7382dee72602f798b642f14140", OSType: OSLinux, Scope: Scope{Tenant: true}})
			return err
		},
		func() error { _, err := c.DeleteRestrictions(ctx, ids); return err },
		func() error { _, err := c.ListThreats(ctx, tf); return err },
		func() error { _, err := c.UpdateThreatIncident(ctx, ids, "resolved", "true_positive"); return err },
		func() error { _, err := c.UpdateThreatVerdict(ctx, ids, "FALSE_POSITIVE"); return err },
		func() error { _, err := c.ListGroups(ctx, gf); return err },
		func() error { _, err := c.ListAgents(ctx, af); return err },
		func() error { _, err := c.ListSites(ctx, sf); return err },
		func() error { _, err := c.ListActivities(ctx, actf); return err },
		func() error { _, err := c.ActivityTypes(ctx); return err },
		func() error { _, err := c.ConnectAgents(ctx, ids); return err },
		func() error { _, err := c.DisconnectAgents(ctx, ids); return err },
		func() error { _, err := c.ListAlerts(ctx, alf); return err },
		func() error { _, err := c.UpdateAlertVerdict(ctx, ids, "True positive"); return err },
		func() error { _, err := c.UpdateAlertIncident(ctx, ids, "In progress"); return err },
		func() error { _, err := c.SystemInfo(ctx); return err },
		func() error { _, err := c.MitigateThreats(ctx, "kill", ids); return err },
		func() error { _, err := c.MitigateThreats(ctx, "quarantine", ids); return err },
		func() error { _, err := c.MitigateThreats(ctx, "un_quarantine", ids); return err },
		func() error { _, err := c.MitigateThreats(ctx, "remediate", ids); return err },
		func() error { _, err := c.MitigateThreats(ctx, "rollback_remediation", ids); return err },
		func() error { _, err := c.AddThreatNote(ctx, ids, "contained by SOAR"); return err },
		func() error { _, err := c.ThreatNotes(ctx, ids[0], nf); return err },
		func() error { _, err := c.ThreatTimeline(ctx, ids[0], tlf); return err },
		func() error { _, err := c.FetchThreatFile(ctx, ids[0], "Zip-Pass-2024!x"); return err },
		func() error { _, err := c.InitiateScan(ctx, ids); return err },
		func() error { _, err := c.AbortScan(ctx, ids); return err },
		func() error { _, err := c.CountAgents(ctx, af); return err },
		func() error { _, err := c.APITokenDetails(ctx); return err },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}

	seen := map[string]bool{}
	for _, r := range con.requests() {
		where := r.Method + " " + r.Path
		seen[where] = true
		if r.Path == APIPrefix+strings.Replace(PathHashReputation, pathHashPlaceholder, "3395856ce81f2b7382dee72602f798b642f14140", 1) {
			continue // the one allowed exception
		}
		tmpl, params, ok := doc.operation(r.Method, r.Path)
		if !ok {
			t.Errorf("%s: not in the Swagger subset", where)
			continue
		}
		byName := map[string]swaggerParam{}
		var body *swaggerSchema
		for _, p := range params {
			switch p.In {
			case "query":
				byName[p.Name] = p
			case "body":
				body = p.Schema
			case "path":
				v := pathParam(tmpl, r.Path, p.Name)
				if enum := enumOf(p); len(enum) > 0 && !slices.Contains(enum, v) {
					t.Errorf("%s: path parameter %s=%q not in enum %v", where, p.Name, v, enum)
				}
			}
		}
		for name, vals := range r.Query {
			p, ok := byName[name]
			if !ok {
				t.Errorf("%s: query parameter %q not declared", where, name)
				continue
			}
			if enum := enumOf(p); len(enum) > 0 {
				for _, v := range strings.Split(vals[0], ",") {
					if !slices.Contains(enum, v) {
						t.Errorf("%s: %s=%q not in enum %v", where, name, v, enum)
					}
				}
			}
		}
		if len(r.Body) > 0 {
			if body == nil {
				t.Errorf("%s: sends a body the operation does not declare", where)
				continue
			}
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Errorf("%s: body is not JSON: %v", where, err)
				continue
			}
			doc.checkBody(t, where, v, body)
		}
	}
	for _, want := range []string{
		"GET " + APIPrefix + "/hashes/3395856ce81f2b7382dee72602f798b642f14140/verdict",
		"GET " + APIPrefix + "/hashes/3395856ce81f2b7382dee72602f798b642f14140/reputation",
		"GET " + APIPrefix + PathRestrictions, "POST " + APIPrefix + PathRestrictions, "DELETE " + APIPrefix + PathRestrictions,
		"GET " + APIPrefix + PathThreats, "POST " + APIPrefix + PathThreatIncident, "POST " + APIPrefix + PathThreatVerdict,
		"GET " + APIPrefix + PathGroups, "GET " + APIPrefix + PathAgents, "GET " + APIPrefix + PathSites,
		"GET " + APIPrefix + PathActivities, "GET " + APIPrefix + PathActivityTypes,
		"POST " + APIPrefix + PathAgentsConnect, "POST " + APIPrefix + PathAgentsDisconnect,
		"GET " + APIPrefix + PathAlerts, "POST " + APIPrefix + PathAlertVerdict, "POST " + APIPrefix + PathAlertIncident,
		"GET " + APIPrefix + PathSystemInfo,
		"POST " + APIPrefix + "/threats/mitigate/kill", "POST " + APIPrefix + "/threats/mitigate/quarantine",
		"POST " + APIPrefix + "/threats/mitigate/un-quarantine", "POST " + APIPrefix + "/threats/mitigate/remediate",
		"POST " + APIPrefix + "/threats/mitigate/rollback-remediation", "POST " + APIPrefix + PathThreatNotes,
		"GET " + APIPrefix + "/threats/100000000000000001/notes", "GET " + APIPrefix + "/threats/100000000000000001/timeline",
		"POST " + APIPrefix + PathThreatFetchFile, "POST " + APIPrefix + PathAgentsInitiateScan, "POST " + APIPrefix + PathAgentsAbortScan,
		"GET " + APIPrefix + PathAgentsCount, "POST " + APIPrefix + PathAPITokenDetails,
	} {
		if !seen[want] {
			t.Errorf("no request %s", want)
		}
	}
}
