package emulator

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestItemShapesMatchFixtures compares the key sets of every item the
// emulator renders with the captured responses in shared/sentinelone/fixtures.
func TestItemShapesMatchFixtures(t *testing.T) {
	h := newHarness(t)
	first := func(path string) map[string]any {
		t.Helper()
		l := h.list(path, url.Values{"limit": {"1"}})
		if len(l.items) != 1 {
			t.Fatalf("GET %s: no item", path)
		}
		return l.items[0]
	}
	dataItem := func(name string) map[string]any {
		t.Helper()
		switch d := fixture(t, name).(type) {
		case []any: // a bare data array
			return d[0].(map[string]any)
		case map[string]any:
			switch data := d["data"].(type) {
			case []any:
				return data[0].(map[string]any)
			case map[string]any:
				return data["sites"].([]any)[0].(map[string]any)
			}
		}
		t.Fatalf("fixture %s has no item", name)
		return nil
	}
	sites := h.do(http.MethodGet, PathSites, url.Values{"limit": {"1"}}, nil).json(t)
	site := get(sites, "data.sites").([]any)[0].(map[string]any)
	types := h.do(http.MethodGet, PathActivityTypes, nil, nil).json(t)

	cases := []struct {
		name, fixture string
		got           map[string]any
		sub           []string // nested objects compared too
		extra         []string // keys the Swagger has and the fixture lacks
	}{
		{"threat", "xsoar_threats_get_v2.1.json", first(PathThreats),
			[]string{"threatInfo", "agentRealtimeInfo", "agentDetectionInfo", "containerInfo", "kubernetesInfo"}, nil},
		{"alert", "xsoar_alerts_get.json", first(PathAlerts),
			[]string{"alertInfo", "ruleInfo", "agentDetectionInfo", "agentRealtimeInfo", "sourceProcessInfo",
				"sourceParentProcessInfo", "targetProcessInfo", "containerInfo", "kubernetesInfo"}, nil},
		{"agent", "r7_agents_get_single.json", first(PathAgents), []string{"activeDirectory"}, nil},
		{"agent (xsoar)", "xsoar_agents_get_data_array.json", first(PathAgents), nil, nil},
		{"activity", "xsoar_activities_get.json", first(PathActivities), nil, nil},
		{"group", "swimlane_groups_get.json", first(PathGroups), nil, []string{"description"}},
		{"site", "swimlane_sites_get.json", site, []string{"licenses"}, nil},
		{"restriction", "r7_restrictions_get.json", first(PathRestrictions), nil, []string{"sha256Value"}},
		{"activity type", "r7_activities_types.json", get(types, "data").([]any)[0].(map[string]any), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := dataItem(c.fixture)
			compareKeySets(t, "", c.got, want, c.extra)
			for _, s := range c.sub {
				g, _ := c.got[s].(map[string]any)
				w, _ := want[s].(map[string]any)
				if g == nil || w == nil {
					t.Errorf("%s: not an object on one side (got %T, fixture %T)", s, c.got[s], want[s])
					continue
				}
				compareKeySets(t, s+".", g, w, nil)
			}
		})
	}
}

func compareKeySets(t *testing.T, prefix string, got, want map[string]any, extra []string) {
	t.Helper()
	g, w := keys(got), append(keys(want), extra...)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		var missing, surplus []string
		for _, k := range w {
			if !slices.Contains(g, k) {
				missing = append(missing, prefix+k)
			}
		}
		for _, k := range g {
			if !slices.Contains(w, k) {
				surplus = append(surplus, prefix+k)
			}
		}
		t.Errorf("keys differ from the fixture: missing %v, extra %v", missing, surplus)
	}
}

// TestIDsAndTimestampsAreConsoleShaped checks every id and time field of
// every seeded threat: 18-19 digit ids, microsecond UTC timestamps.
func TestIDsAndTimestampsAreConsoleShaped(t *testing.T) {
	h := newHarness(t)
	for _, it := range h.walk(PathThreats, url.Values{"limit": {"1000"}}, nil) {
		for _, p := range []string{"id", "threatInfo.threatId", "agentRealtimeInfo.agentId", "agentRealtimeInfo.siteId",
			"agentRealtimeInfo.groupId", "agentRealtimeInfo.accountId", "agentDetectionInfo.siteId"} {
			if v := str(it, p); !idRE.MatchString(v) {
				t.Fatalf("%s = %q is not an 18-19 digit id", p, v)
			}
		}
		for _, p := range []string{"threatInfo.createdAt", "threatInfo.updatedAt", "threatInfo.identifiedAt"} {
			if v := str(it, p); !timeRE.MatchString(v) {
				t.Fatalf("%s = %q is not a microsecond UTC timestamp", p, v)
			}
		}
		if str(it, "id") != str(it, "threatInfo.threatId") {
			t.Fatal("id differs from threatInfo.threatId")
		}
		for _, p := range []string{"incidentStatus", "analystVerdict", "mitigationStatus"} {
			if d := str(it, "threatInfo."+p+"Description"); d != displayNames[str(it, "threatInfo."+p)] {
				t.Fatalf("%sDescription %q does not describe %q", p, d, str(it, "threatInfo."+p))
			}
		}
	}
	alerts := h.walk(PathAlerts, url.Values{"limit": {"1000"}}, nil)
	for _, it := range alerts {
		if v := str(it, "alertInfo.alertId"); !idRE.MatchString(v) {
			t.Fatalf("alertId %q", v)
		}
		if s := str(it, "alertInfo.incidentStatus"); s != "Unresolved" && s != "In progress" && s != "Resolved" {
			t.Fatalf("alert incidentStatus %q is not display case", s)
		}
		if v := str(it, "alertInfo.analystVerdict"); strings.Contains(v, "_") || v == "" {
			t.Fatalf("alert analystVerdict %q is not display case", v)
		}
	}
	// The quirk clients must survive: accountId inside activity data is a JSON number.
	acts := h.list(PathActivities, url.Values{"limit": {"5"}})
	if _, isString := get(acts.items[0], "data.accountId").(string); isString {
		t.Error("activity data.accountId is a string; the console sends a number")
	}
}
