package handlers

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestRegistry(t *testing.T) {
	want := map[string]struct {
		title    string
		mutating bool
	}{
		ActionHashReputation:    {"Hash Reputation", false},
		ActionBlocklistAdd:      {"Add Blacklist Items", true},
		ActionBlocklistList:     {"Get Blacklist Items", false},
		ActionBlocklistDelete:   {"Delete Blacklist Items", true},
		ActionThreatsList:       {"Get Threats", false},
		ActionThreatsUpdate:     {"Update Threat", true},
		ActionGroupsList:        {"List Group IDs", false},
		ActionAgentsList:        {"List Agents", false},
		ActionAgentsConnect:     {"Connect to Network", true},
		ActionAgentsDisconnect:  {"Disconnect from Network", true},
		ActionSitesList:         {"Get Sites", false},
		ActionActivitiesList:    {"Get Activities", false},
		ActionAlertsList:        {"Get Alerts", false},
		ActionAlertsUpdate:      {"Update Alert SentinelOne", true},
		ActionThreatsMonitor:    {"Monitor Threat Status", false},
		ActionMonitorsList:      {"List Monitors", false},
		ActionMonitorsCancel:    {"Cancel Monitor", false},
		ActionIngestStatus:      {"SentinelOne Threats Daemon", false},
		ActionUAMAlertsList:     {"List Unified Alerts", false},
		ActionUAMAlertsGet:      {"Get Unified Alert", false},
		ActionUAMAlertsUpdate:   {"Update Unified Alerts", true},
		ActionUAMAlertsNotesAdd: {"Add Unified Alert Note", true},
		ActionThreatsMitigate:   {"Mitigate threat", true},
		ActionThreatsNotesAdd:   {"Add threat note", true},
		ActionThreatsNotesList:  {"List threat notes", false},
		ActionThreatsTimeline:   {"Threat timeline", false},
		ActionThreatsFetchFile:  {"Fetch threat file", true},
		ActionAgentsScanStart:   {"Start a full disk scan", true},
		ActionAgentsScanAbort:   {"Abort a full disk scan", true},
		ActionAgentsCount:       {"Count agents", false},
	}
	all := All()
	if len(all) != len(want) {
		t.Errorf("%d actions, want %d", len(all), len(want))
	}
	for _, a := range all {
		w, ok := want[a.Name]
		if !ok {
			t.Errorf("unexpected action %q", a.Name)
			continue
		}
		if a.Title != w.title || a.Mutating != w.mutating {
			t.Errorf("%s: title %q mutating %t, want %q %t", a.Name, a.Title, a.Mutating, w.title, w.mutating)
		}
		if a.Description == "" || strings.ContainsAny(a.Description, "\n") || !strings.HasSuffix(a.Description, ".") {
			t.Errorf("%s: description %q is not one sentence on one line", a.Name, a.Description)
		}
		if got, ok := Lookup(a.Name); !ok || got.Name != a.Name {
			t.Errorf("Lookup(%q) = %v, %t", a.Name, got.Name, ok)
		}
		if a.Request == nil || a.Response == nil {
			t.Errorf("%s: no request or response type", a.Name)
		}
		rt := reflect.TypeOf(a.Request)
		if _, ok := reflect.New(rt).Interface().(validator); !ok && rt.NumField() > 0 {
			t.Errorf("%s: %T has fields and no Validate method", a.Name, a.Request)
		}
		checkTags(t, a.Name, reflect.TypeOf(a.Request))
		checkTags(t, a.Name, reflect.TypeOf(a.Response))
	}
	// The response actions come after the seed's, in DESIGN.md §11 order.
	var tail []string
	for _, a := range all[len(all)-8:] {
		tail = append(tail, a.Name)
	}
	if want := []string{ActionThreatsMitigate, ActionThreatsNotesAdd, ActionThreatsNotesList, ActionThreatsTimeline,
		ActionThreatsFetchFile, ActionAgentsScanStart, ActionAgentsScanAbort, ActionAgentsCount}; !slices.Equal(tail, want) {
		t.Errorf("the last actions are %v, want %v", tail, want)
	}
	names := Names()
	if !slices.IsSorted(names) || len(names) != len(want) {
		t.Errorf("Names() = %v", names)
	}
	for _, n := range []string{"", "threats", "monitors.list.x"} {
		if _, ok := Lookup(n); ok {
			t.Errorf("Lookup(%q) found an action", n)
		}
	}
	// Each call builds its own table.
	all[0].Name = "changed"
	if All()[0].Name == "changed" {
		t.Error("All shares its table with callers")
	}
}

// checkTags requires a camelCase json tag on every exported field.
func checkTags(t *testing.T, action string, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		return
	}
	for _, f := range reflect.VisibleFields(typ) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || !unicode.IsLower(rune(name[0])) || strings.ContainsAny(name, "_-") {
			t.Errorf("%s: %s.%s has json name %q, want camelCase", action, typ.Name(), f.Name, name)
		}
		if f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Pointer {
			checkTags(t, action, f.Type)
		}
	}
}

// TestDryRun: with Env.DryRun a mutating action is validated and described,
// and SentinelOne is not called; read-only actions still run.
func TestDryRun(t *testing.T) {
	requests := map[string]string{
		ActionBlocklistAdd:      `{"hash":"` + strings.ToUpper(sha1Hex) + `"}`,
		ActionBlocklistDelete:   `{"ids":["` + id(1) + `"]}`,
		ActionThreatsUpdate:     `{"threatIds":["` + id(1) + `"],"incidentStatus":"resolved"}`,
		ActionAlertsUpdate:      `{"alertIds":["` + id(1) + `"],"analystVerdict":"suspicious"}`,
		ActionAgentsConnect:     `{"agentIds":["` + id(1) + `"]}`,
		ActionAgentsDisconnect:  `{"agentIds":["` + id(1) + `"]}`,
		ActionUAMAlertsUpdate:   `{"alertIds":["00000000-0000-7000-8000-00000000a001"],"status":"resolved"}`,
		ActionUAMAlertsNotesAdd: `{"alertIds":["00000000-0000-7000-8000-00000000a001"],"text":"seen"}`,
		ActionThreatsMitigate:   `{"threatIds":["` + id(1) + `"],"action":"quarantine"}`,
		ActionThreatsNotesAdd:   `{"threatIds":["` + id(1) + `"],"text":"contained"}`,
		ActionThreatsFetchFile:  `{"threatIds":["` + id(1) + `"],"password":"` + testPassword + `"}`,
		ActionAgentsScanStart:   `{"agentIds":["` + id(1) + `"]}`,
		ActionAgentsScanAbort:   `{"agentIds":["` + id(1) + `"]}`,
	}
	c := newConsole(t)
	env := c.env()
	env.DryRun = true
	for _, a := range All() {
		if !a.Mutating {
			continue
		}
		data, ok := requests[a.Name]
		if !ok {
			t.Errorf("%s: no dry-run request in this test", a.Name)
			continue
		}
		b := mustRun(t, env, a.Name, data, nil)
		if !strings.HasPrefix(string(b), `{"dryRun":true,"action":"`+a.Name+`","console":"main","request":{`) {
			t.Errorf("%s: reply %s", a.Name, b)
		}
		// Invalid requests are still refused.
		if _, err := run(t, env, a.Name, `{"bogus":1}`); err == nil || err.Code != CodeInvalid {
			t.Errorf("%s: dry run accepted an invalid request: %v", a.Name, err)
		}
	}
	if b := mustRun(t, env, ActionBlocklistAdd, requests[ActionBlocklistAdd], nil); !strings.Contains(string(b), `"hash":"`+sha1Hex+`","osTypes":["windows","macos","linux"],"scope":{"tenant":true}`) {
		t.Errorf("dry run does not show the normalised request: %s", b)
	}
	if b := mustRun(t, env, ActionThreatsFetchFile, requests[ActionThreatsFetchFile], nil); strings.Contains(string(b), testPassword) ||
		!strings.Contains(string(b), `"password":"[REDACTED]"`) {
		t.Errorf("dry run of threats.fetch_file: %s", b)
	}
	if calls := c.Calls(); len(calls) != 0 {
		t.Errorf("dry run called SentinelOne: %+v", calls)
	}
	c.handle("GET /threats", collection{}.route)
	mustRun(t, env, ActionThreatsList, `{}`, nil)
	if len(c.Calls()) != 1 {
		t.Error("a read-only action did not run in dry-run mode")
	}
}
