package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
)

// Dialect is the JSON Schema dialect of every data schema. The schemas use
// only keywords that mean the same in draft-07 (the base of AsyncAPI's
// Schema Object), so AsyncAPI tools read them as written.
const Dialect = "https://json-schema.org/draft/2020-12/schema"

// Schema is one JSON Schema document, as decoded JSON.
type Schema = map[string]any

// Actions returns the action table the document describes: handlers.All.
func Actions() []handlers.Action { return handlers.All() }

// lookup returns the action called name in Actions.
func lookup(name string) (handlers.Action, bool) {
	for _, a := range Actions() {
		if a.Name == name {
			return a, true
		}
	}
	return handlers.Action{}, false
}

// itemDoc describes the items of a list reply: SentinelOne objects are
// passed through as the console returned them, so their schema says what
// they are and requires only the member that identifies them.
type itemDoc struct {
	what, operation string
	definition      string // where the object's shape is defined upstream
	key             string // the identifying member, required
}

// swagger names a definition of the Swagger 2.1 subset.
func swagger(def string) string { return "Swagger 2.1 definition " + def }

// listItems maps each list action to what its items are. monitors.list is
// not here: its items are s1bridge's own (handlers.MonitorItem).
var listItems = map[string]itemDoc{
	handlers.ActionThreatsList:      {"threat", "GET /web/api/v2.1/threats", swagger("threats.schemas_ThreatSchema"), "id"},
	handlers.ActionAgentsList:       {"agent", "GET /web/api/v2.1/agents", swagger("agents.schemas_AgentViewSchema"), "id"},
	handlers.ActionGroupsList:       {"group", "GET /web/api/v2.1/groups", swagger("groups_SummarizedGroupSchema"), "id"},
	handlers.ActionSitesList:        {"site", "GET /web/api/v2.1/sites (data.sites)", swagger("sites_SiteResponseSchema"), "id"},
	handlers.ActionActivitiesList:   {"activity", "GET /web/api/v2.1/activities", swagger("_ActivityViewSchema"), "id"},
	handlers.ActionAlertsList:       {"cloud-detection alert", "GET /web/api/v2.1/cloud-detection/alerts", swagger("v2_1.alerts.schemas_AlertInformationSchema"), "alertInfo"},
	handlers.ActionBlocklistList:    {"blocklist entry (restriction)", "GET /web/api/v2.1/restrictions", swagger("exclusions.schemas_RestrictionSchemaGet"), "id"},
	handlers.ActionUAMAlertsList:    {"Unified Alert", "the alerts query of POST /web/api/v2.1/unifiedalerts/graphql (edges[].node)", "GraphQL type Alert of the UAM schema, fields as s1bridge selects them", "id"},
	handlers.ActionThreatsNotesList: {"threat note", "GET /web/api/v2.1/threats/{threat_id}/notes", swagger("threats.schemas_ThreatNoteSchema_many_200, data items"), "id"},
	handlers.ActionThreatsTimeline:  {"threat timeline entry (activity-shaped)", "GET /web/api/v2.1/threats/{threat_id}/timeline", swagger("threat_analysis.schemas_TimelineViewSchema_many_200, data items"), "id"},
}

// sentinelOneObject is the schema of one object of a SentinelOne answer.
func sentinelOneObject(d itemDoc) Schema {
	s := Schema{
		"type":        "object",
		"description": fmt.Sprintf("A SentinelOne %s as %s returns it, unchanged (%s).", d.what, d.operation, d.definition),
	}
	if d.key != "" {
		s["required"] = []any{d.key}
	}
	return s
}

// reflectData returns the JSON Schema of v's type: closed (no properties
// beyond those listed) for requests, open for replies and events, which may
// gain members. Descriptions come from the Go doc comments (comments.json).
func reflectData(v any, closed bool) Schema {
	r := &jsonschema.Reflector{
		Anonymous:                 true,
		DoNotReference:            true,
		ExpandedStruct:            true,
		AllowAdditionalProperties: !closed,
		LookupComment:             lookupComment,
	}
	js, err := json.Marshal(r.Reflect(v))
	if err != nil {
		panic(fmt.Sprintf("schema: reflect %T: %v", v, err)) // a type of ours that cannot be described is a bug
	}
	var s Schema
	if err := json.Unmarshal(js, &s); err != nil {
		panic(err)
	}
	delete(s, "$schema") // set by the callers, who know the context
	return s
}

// withDialect returns s marked as a JSON Schema 2020-12 document.
func withDialect(s Schema) Schema {
	s["$schema"] = Dialect
	return s
}

// RequestSchema returns the JSON Schema of action's request data.
func RequestSchema(action string) (Schema, error) {
	a, ok := lookup(action)
	if !ok {
		return nil, fmt.Errorf("schema: unknown action %q", action)
	}
	s := reflectData(a.Request, true)
	if props, ok := s["properties"].(map[string]any); ok {
		for name, extra := range memberRules[action] {
			if p, ok := props[name].(map[string]any); ok {
				maps.Copy(p, extra)
			}
		}
	}
	return withDialect(s), nil
}

// memberRules adds to request members the rules a struct tag cannot say,
// by action and member.
var memberRules = map[string]map[string]Schema{
	// SentinelOne's password rules (response-actions.md §6): no white space
	// or control characters, and at least one upper-case letter, lower-case
	// letter, digit and symbol (anything else). Unicode classes, as the
	// handler's: Go's regexp and ECMAScript's with the u flag read them.
	handlers.ActionThreatsFetchFile: {"password": {
		"pattern": `^[^\s\p{Z}\p{Cc}]+$`,
		"allOf": []any{
			Schema{"type": "string", "pattern": `\p{Lu}`, "description": "an upper-case letter"},
			Schema{"type": "string", "pattern": `\p{Ll}`, "description": "a lower-case letter"},
			Schema{"type": "string", "pattern": `\p{Nd}`, "description": "a digit"},
			Schema{"type": "string", "pattern": `[^\p{Lu}\p{Ll}\p{Nd}\s\p{Z}\p{Cc}]`, "description": "a symbol"},
		},
	}},
}

// ReplySchema returns the JSON Schema of action's reply data (a success).
func ReplySchema(action string) (Schema, error) {
	a, ok := lookup(action)
	if !ok {
		return nil, fmt.Errorf("schema: unknown action %q", action)
	}
	resp := a.Response
	s := reflectData(resp, false)
	if reflect.TypeOf(resp) == reflect.TypeOf(handlers.ListReply{}) || reflect.TypeOf(resp) == reflect.TypeOf(handlers.SitesListReply{}) {
		s = withItems(s, action)
	}
	return withDialect(s), nil
}

// withItems sets the item schema of a list reply.
func withItems(s Schema, action string) Schema {
	props, _ := s["properties"].(map[string]any)
	items, _ := props["items"].(map[string]any)
	if items == nil {
		return s
	}
	switch d, ok := listItems[action]; {
	case ok:
		items["items"] = sentinelOneObject(d)
	case action == handlers.ActionMonitorsList:
		items["items"] = reflectData(handlers.MonitorItem{}, false)
	default:
		items["items"] = Schema{"type": "object", "description": "An object as the console returned it, unchanged."}
	}
	return s
}

// DryRunSchema returns the JSON Schema of the reply of a mutating action in
// dry-run mode (service.dry_run).
func DryRunSchema() Schema { return withDialect(reflectData(handlers.DryRunReply{}, false)) }

// ErrorSchema returns the JSON Schema of the data of an s1bridge.error reply.
func ErrorSchema() Schema {
	s := reflectData(handlers.Data{}, false)
	props := s["properties"].(map[string]any)
	code := props["code"].(map[string]any)
	code["enum"] = toAny(errorCodes)
	return withDialect(s)
}

// errorCodes are the codes of DESIGN.md §7.
var errorCodes = []int{
	handlers.CodeInvalid, handlers.CodeDenied, handlers.CodeNotFound, handlers.CodeExpired, handlers.CodeConflict,
	handlers.CodeTooLarge, handlers.CodeRateLimited, handlers.CodeInternal, handlers.CodeUpstream,
	handlers.CodeUnavailable, handlers.CodeUpstreamTimeout,
}

// EventSchema returns the JSON Schema of the data of events of CloudEvents
// type ceType.
func EventSchema(ceType string) (Schema, error) {
	k, ok := events.ByType(ceType)
	if !ok {
		return nil, fmt.Errorf("schema: unknown event type %q", ceType)
	}
	return withDialect(reflectData(k.Data, false)), nil
}

func toAny[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// lookupComment returns the doc comment of type t, or of its field.
func lookupComment(t reflect.Type, field string) string {
	key := t.PkgPath() + "." + t.Name()
	if field != "" {
		return comments()[key+"."+field]
	}
	return comments()[key]
}
