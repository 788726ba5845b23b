package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/s1bridge/s1bridge/emulator"
)

// emulator.UAMSchema is a byte-identical copy of
// shared/sentinelone/uam-schema.graphql, the authority for Unified Alerts
// names and types, as the Swagger subset is for REST.

var (
	uamSchemaOnce sync.Once
	uamSchema     *ast.Schema
	uamSchemaErr  error
)

func loadUAMSchema(t testing.TB) *ast.Schema {
	t.Helper()
	uamSchemaOnce.Do(func() {
		uamSchema, uamSchemaErr = gqlparser.LoadSchema(&ast.Source{Name: "uam-schema.graphql", Input: emulator.UAMSchema()})
	})
	if uamSchemaErr != nil {
		t.Fatalf("loading the UAM schema: %v", uamSchemaErr)
	}
	return uamSchema
}

// gqlBody is a recorded GraphQL request body.
type gqlBody struct {
	Query         string          `json:"query"`
	Variables     json.RawMessage `json:"variables"`
	OperationName string          `json:"operationName"`
}

// validateOperation parses and validates doc against the schema, then the
// variables against the operation's declarations (types, non-null, input
// object fields, enum values), then the custom scalars the library lets
// through. It returns every problem found.
func validateOperation(schema *ast.Schema, doc, opName string, rawVars json.RawMessage) []string {
	q, errs := gqlparser.LoadQueryWithRules(schema, doc, rules.NewDefaultRules())
	if len(errs) > 0 {
		var out []string
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
	op := q.Operations.ForName(opName)
	if op == nil {
		return []string{"no operation named " + opName}
	}
	vars := map[string]any{}
	if len(rawVars) > 0 && string(rawVars) != "null" {
		dec := json.NewDecoder(bytes.NewReader(rawVars))
		dec.UseNumber()
		if err := dec.Decode(&vars); err != nil {
			return []string{"variables: " + err.Error()}
		}
	}
	for name := range vars {
		if op.VariableDefinitions.ForName(name) == nil {
			return []string{"variable $" + name + " is sent but not declared"}
		}
	}
	if _, err := validator.VariableValues(schema, op, vars); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, vd := range op.VariableDefinitions {
		if v, ok := vars[vd.Variable]; ok {
			checkScalars(schema, vd.Type, v, "$"+vd.Variable, &out)
		}
	}
	return out
}

// checkScalars checks the custom scalars validator.VariableValues accepts
// whatever their value: Long must be an integer, DateTime an RFC 3339 string.
func checkScalars(schema *ast.Schema, typ *ast.Type, v any, path string, out *[]string) {
	if v == nil {
		return
	}
	if typ.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for i, it := range list {
			checkScalars(schema, typ.Elem, it, path+"["+string(rune('0'+i%10))+"]", out)
		}
		return
	}
	def := schema.Types[typ.NamedType]
	switch def.Kind {
	case ast.Scalar:
		switch def.Name {
		case "Long":
			if n, ok := v.(json.Number); !ok || strings.ContainsAny(n.String(), ".eE") {
				*out = append(*out, path+": Long must be an integer, not "+asText(v))
			}
		case "DateTime":
			if s, ok := v.(string); !ok {
				*out = append(*out, path+": DateTime must be a string")
			} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				*out = append(*out, path+": "+err.Error())
			}
		}
	case ast.InputObject:
		m, _ := v.(map[string]any)
		for _, f := range def.Fields {
			if fv, ok := m[f.Name]; ok {
				checkScalars(schema, f.Type, fv, path+"."+f.Name, out)
			}
		}
	}
}

func asText(v any) string { b, _ := json.Marshal(v); return string(b) }

// uamRecorder answers every GraphQL call with a body of the right shape for
// its operation and keeps the bodies.
func uamRecorder(t *testing.T) *console {
	return newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Query().Get("opname") {
		case opListAlerts:
			reply(w, 200, string(fixture(t, "uam/alerts_page.json")))
		case opGetAlert:
			reply(w, 200, string(fixture(t, "uam/alert_single.json")))
		case opAlertNotes:
			reply(w, 200, strings.Replace(string(fixture(t, "uam/add_alert_note.json")), "addAlertNote", "alertNotes", 1))
		case opTriggerActions:
			reply(w, 200, string(fixture(t, "uam/trigger_actions_triggered_with_failure.json")))
		default:
			reply(w, 200, `{"errors":[{"message":"unknown operation"}],"data":null}`)
		}
	})
}

// TestUAMOperationsValidate runs every Unified Alerts call of the client
// with every filter field set, and with the defaults, and validates each
// request it sent against the schema subset: the document (every field,
// argument, type and fragment), the variables against their declarations
// (types, input object fields, enum values, non-null), the custom scalars,
// and that ?opname= names the operation. Every document constant must have
// been sent.
func TestUAMOperationsValidate(t *testing.T) {
	schema := loadUAMSchema(t)
	con := uamRecorder(t)
	c := newTestClient(t, fastConfig(con.URL))
	ctx := context.Background()
	ids := []string{"00000000-0000-7000-8000-00000000a001", "00000000-0000-7000-8000-00000000a002"}
	at := time.Date(2026, 5, 1, 8, 0, 0, 123456789, time.UTC)
	full := UAMAlertFilter{
		IDs: ids, Statuses: []string{"new", "In progress"}, AnalystVerdicts: []string{"true_positive_malware", "FALSE_POSITIVE_USER_ERROR"},
		Severities: []string{"info", "CRITICAL", "unknown"}, ConfidenceLevels: []string{"informational"},
		DetectedAfter: at, DetectedBefore: at.Add(time.Hour), UpdatedAfter: at, UpdatedBefore: at.Add(2 * time.Hour),
		NameContains: "mimikatz", AssetNameContains: "host-", SortBy: UAMSortUpdatedAt, SortOrder: SortAsc, First: 1000, After: "ZmFrZS1jdXJzb3ItMg==",
	}
	calls := []func() error{
		func() error { _, err := c.ListUAMAlerts(ctx, UAMAlertFilter{}); return err },
		func() error { _, err := c.ListUAMAlerts(ctx, full); return err },
		func() error { _, err := c.ListUAMAlerts(ctx, UAMIngestFilter(at, 500)); return err },
		func() error {
			for _, err := range c.UAMAlertPages(ctx, UAMAlertFilter{First: 1}) {
				if err != nil {
					return err
				}
				break
			}
			return nil
		},
		func() error { _, err := c.GetUAMAlert(ctx, ids[0]); return err },
		func() error { _, err := c.UAMAlertNotes(ctx, ids[0]); return err },
		func() error { _, err := c.UpdateUAMAlerts(ctx, ids, UAMAlertUpdate{Status: "resolved"}); return err },
		func() error {
			_, err := c.UpdateUAMAlerts(ctx, ids, UAMAlertUpdate{AnalystVerdict: "true_positive_benign_but_suspicious"})
			return err
		},
		func() error {
			_, err := c.UpdateUAMAlerts(ctx, ids, UAMAlertUpdate{Status: "IN_PROGRESS", AnalystVerdict: "undefined"})
			return err
		},
		func() error { _, err := c.AddUAMAlertNote(ctx, ids, "Contained by s1bridge\nsecond line"); return err },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for i, r := range con.requests() {
		if r.Method != http.MethodPost || r.Path != APIPrefix+PathUAMGraphQL {
			t.Errorf("request %d: %s %s", i, r.Method, r.Path)
			continue
		}
		var b gqlBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("request %d body: %v", i, err)
		}
		if got := r.Query.Get("opname"); got != b.OperationName {
			t.Errorf("request %d: opname %q, operationName %q", i, got, b.OperationName)
		}
		for _, problem := range validateOperation(schema, b.Query, b.OperationName, b.Variables) {
			t.Errorf("%s with variables %s: %s", b.OperationName, b.Variables, problem)
		}
		seen[b.Query] = true
	}
	for name, doc := range map[string]string{
		"queryListAlerts": queryListAlerts, "queryGetAlert": queryGetAlert,
		"queryAlertNotes": queryAlertNotes, "mutationTriggerActions": mutationTriggerActions,
	} {
		if !seen[doc] {
			t.Errorf("%s was never sent", name)
		}
	}
}

// TestUAMValidatorCatches shows that validateOperation fails on the
// mistakes the reference lists (uam-reference.md §9): an unknown type, an
// unknown argument or field, a missing subselection, a bad enum value in a
// variable, an undeclared input field, a Long sent as a string.
func TestUAMValidatorCatches(t *testing.T) {
	schema := loadUAMSchema(t)
	okVars := json.RawMessage(`{"filter":{"or":[{"and":[{"fieldId":"id","stringIn":{"values":["x"]}}]}]},"actions":[{"id":"S1/alert/statusUpdate","payload":{"status":{"value":"RESOLVED"}}}]}`)
	if p := validateOperation(schema, mutationTriggerActions, opTriggerActions, okVars); len(p) != 0 {
		t.Fatalf("the good mutation fails: %v", p)
	}
	cases := []struct {
		name, doc, op string
		vars          string
	}{
		{"unknown type", strings.Replace(queryListAlerts, "[SortInput!]", "[SortOrder!]", 1), opListAlerts, `{"first":1}`},
		{"unknown argument", strings.Replace(queryListAlerts, "viewType: ALL", "viewType: ALL, pageSize: 3", 1), opListAlerts, `{"first":1}`},
		{"unknown field", strings.Replace(queryGetAlert, "selfLink", "selfLinks", 1), opGetAlert, `{"id":"a"}`},
		{"quoted enum", strings.Replace(queryListAlerts, "viewType: ALL", `viewType: "ALL"`, 1), opListAlerts, `{"first":1}`},
		{"no subselection", strings.Replace(mutationTriggerActions, "success { id }", "success", 1), opTriggerActions, string(okVars)},
		{"bad enum variable", mutationTriggerActions, opTriggerActions, strings.Replace(string(okVars), "RESOLVED", "OPEN", 1)},
		{"unknown input field", queryListAlerts, opListAlerts, `{"first":1,"filters":[{"fieldId":"detectedAt","dateRange":{"from":1}}]}`},
		{"Long as string", queryListAlerts, opListAlerts, `{"first":1,"filters":[{"fieldId":"detectedAt","dateTimeRange":{"start":"1"}}]}`},
		{"missing non-null", queryListAlerts, opListAlerts, `{}`},
		{"undeclared variable", queryGetAlert, opGetAlert, `{"id":"a","scope":null}`},
	}
	for _, tc := range cases {
		if p := validateOperation(schema, tc.doc, tc.op, json.RawMessage(tc.vars)); len(p) == 0 {
			t.Errorf("%s: no problem found", tc.name)
		}
	}
}
