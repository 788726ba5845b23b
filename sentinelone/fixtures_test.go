package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The files in testdata/fixtures are byte-identical copies of
// shared/sentinelone/fixtures (real and peer-written console answers).

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveFixture answers every request with the fixture.
func serveFixture(t *testing.T, name string) *Client {
	body := fixture(t, name)
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, string(body)) })
	return newTestClient(t, fastConfig(con.URL))
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%v in %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// fixtureItems returns the items of a fixture's data array (or of
// data.sites), as the console sent them.
func fixtureItems(t *testing.T, name string) []json.RawMessage {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	b := fixture(t, name)
	if err := json.Unmarshal(b, &env); err != nil {
		var items []json.RawMessage // a bare array
		if err := json.Unmarshal(b, &items); err != nil {
			t.Fatal(err)
		}
		return items
	}
	var items []json.RawMessage
	if json.Unmarshal(env.Data, &items) != nil {
		var sites struct{ Sites []json.RawMessage }
		if err := json.Unmarshal(env.Data, &sites); err != nil {
			t.Fatal(err)
		}
		items = sites.Sites
	}
	return items
}

// checkPassThrough asserts each typed item marshals back to what the
// console sent.
func checkPassThrough[T any](t *testing.T, name string, items []T) {
	t.Helper()
	want := fixtureItems(t, name)
	if len(items) != len(want) {
		t.Fatalf("%s: %d items, want %d", name, len(items), len(want))
	}
	for i, it := range items {
		got, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, got, want[i]) {
			t.Errorf("%s item %d does not pass through unchanged", name, i)
		}
	}
}

func ts(s string) time.Time {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return v
}

// TestFixtures decodes every fixture with the client, over HTTP where the
// fixture is a whole answer. A fixture without a case fails the test.
func TestFixtures(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T){
		"xsoar_threats_get_v2.1.json": func(t *testing.T) {
			p, err := serveFixture(t, "xsoar_threats_get_v2.1.json").ListThreats(ctx, ThreatFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if p.NextCursor != "" || p.TotalItems != 222 || len(p.Items) != 2 {
				t.Fatalf("page: cursor %q total %d items %d", p.NextCursor, p.TotalItems, len(p.Items))
			}
			got := p.Items[0]
			got.Raw = nil
			want := Threat{
				ID: "123456", Name: "cmd.exe (interactive session)", Classification: "Infostealer", ConfidenceLevel: "malicious",
				IncidentStatus: IncidentInProgress, AnalystVerdict: VerdictTruePositive, MitigationStatus: MitigationNotMitigated,
				DetectionEngines: []DetectionEngine{{Key: "manual", Title: "Manual"}},
				CreatedAt:        ts("2022-12-20T13:54:53.009117Z"), UpdatedAt: ts("2022-12-21T10:29:58.264166Z"),
				IdentifiedAt: ts("2022-12-20T13:54:52.659Z"), AgentID: "1559342436290084702", AgentComputerName: "DESKTOP-8CME2KF",
				SiteID: "123456", GroupID: "123456", AccountID: "123456",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("threat\n got %+v\nwant %+v", got, want)
			}
			if p.Items[1].IncidentStatus != IncidentUnresolved || p.Items[1].AnalystVerdict != VerdictSuspicious {
				t.Errorf("second threat %+v", p.Items[1])
			}
			checkPassThrough(t, "xsoar_threats_get_v2.1.json", p.Items)
		},
		"r7_threats_get_v2.0_flat.json": func(t *testing.T) {
			_, err := serveFixture(t, "r7_threats_get_v2.0_flat.json").ListThreats(ctx, ThreatFilter{})
			if !errors.Is(err, ErrMalformedResponse) || !errors.Is(err, ErrThreatNotV21) {
				t.Fatalf("err = %v, want ErrMalformedResponse and ErrThreatNotV21", err)
			}
		},
		"xsoar_alerts_get.json": func(t *testing.T) {
			p, err := serveFixture(t, "xsoar_alerts_get.json").ListAlerts(ctx, AlertFilter{})
			if err != nil {
				t.Fatal(err)
			}
			a := p.Items[0]
			if a.ID != "123456" || a.IncidentStatus != IncidentUnresolved || a.AnalystVerdict != VerdictUndefined ||
				a.Severity != "critical" || a.RuleName != "user-alerts" || !a.CreatedAt.Equal(ts("2022-12-20T13:54:43.04Z")) ||
				p.NextCursor != "" || p.TotalItems != 2651 {
				t.Errorf("alert %+v, page cursor %q total %d", a, p.NextCursor, p.TotalItems)
			}
			checkPassThrough(t, "xsoar_alerts_get.json", p.Items)
		},
		"xsoar_activities_get.json": func(t *testing.T) {
			p, err := serveFixture(t, "xsoar_activities_get.json").ListActivities(ctx, ActivityFilter{})
			if err != nil {
				t.Fatal(err)
			}
			a := p.Items[0]
			if a.ActivityType != 5040 || a.Data.AccountID != "123456" || a.AccountID != "123456" || a.ThreatID != "" ||
				a.Data.Username != "SentinelOne" || p.NextCursor != "" {
				t.Errorf("activity %+v, cursor %q", a, p.NextCursor)
			}
			checkPassThrough(t, "xsoar_activities_get.json", p.Items)
		},
		"r7_activities_get_page1_cursor.json": func(t *testing.T) {
			p, err := serveFixture(t, "r7_activities_get_page1_cursor.json").ListActivities(ctx, ActivityFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if p.NextCursor != "nextCursor" || p.TotalItems != 4 || p.Items[1].ActivityType != 3021 || p.Items[1].SiteID != "1234567898765432112" {
				t.Errorf("page %+v", p)
			}
			checkPassThrough(t, "r7_activities_get_page1_cursor.json", p.Items)
		},
		"r7_activities_types.json": func(t *testing.T) {
			types, err := serveFixture(t, "r7_activities_types.json").ActivityTypes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(types) != 4 || types[0] != (ActivityType{ID: 5040, Action: "Account Created",
				DescriptionTemplate: "The management user {{ username }} created {{ account_name }} account."}) {
				t.Errorf("types %+v", types)
			}
		},
		"r7_agents_get_single.json": func(t *testing.T) {
			p, err := serveFixture(t, "r7_agents_get_single.json").ListAgents(ctx, AgentFilter{})
			if err != nil {
				t.Fatal(err)
			}
			a := p.Items[0]
			if p.NextCursor != "" || p.TotalItems != 1 || a.ID != "0000000000000000001" || a.ComputerName != "Hostname0" ||
				!a.IsActive || a.NetworkStatus != "connected" || !a.FirewallEnabled {
				t.Errorf("page %+v agent %+v", p, a)
			}
			for ip, want := range map[string]bool{"1.2.3.4": true, "2001:DB8:8:4::1": true, "1.2.3.40": false, "1.2.3": false, "": false} {
				if a.HasIP(ip) != want {
					t.Errorf("HasIP(%q) = %v", ip, !want)
				}
			}
			checkPassThrough(t, "r7_agents_get_single.json", p.Items)
		},
		"xsoar_agents_get_data_array.json": func(t *testing.T) {
			var agents []Agent // the fixture is the data array alone
			if err := json.Unmarshal(fixture(t, "xsoar_agents_get_data_array.json"), &agents); err != nil {
				t.Fatal(err)
			}
			a := agents[0]
			if !a.FirewallEnabled || !a.IsUpToDate || a.IsActive || !a.IsDecommissioned || a.NetworkStatus != "connecting" ||
				!a.HasIP("172.31.43.13") || !a.HasIP("3.122.240.42") || !a.HasIP("fe80::1da3:1ca8:b311:af32") {
				t.Errorf("agent %+v", a)
			}
			checkPassThrough(t, "xsoar_agents_get_data_array.json", agents)
		},
		"r7_restrictions_get.json": func(t *testing.T) {
			p, err := serveFixture(t, "r7_restrictions_get.json").ListRestrictions(ctx, RestrictionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			r := p.Items[2]
			if len(p.Items) != 3 || r.ID != "1234567893" || r.OSType != OSMacOS || r.Type != RestrictionBlackHash ||
				!reflect.DeepEqual(r.Scope, Scope{SiteIDs: []string{"1234567893"}}) || r.Value != "3395856ce81f2b7382dee72602f798b642f14141" {
				t.Errorf("restriction %+v", r)
			}
			checkPassThrough(t, "r7_restrictions_get.json", p.Items)
		},
		"r7_action_affected.json": func(t *testing.T) {
			n, err := serveFixture(t, "r7_action_affected.json").DisconnectAgents(ctx, []string{"100000000000000001"})
			if err != nil || n != 1 {
				t.Errorf("affected %d, %v", n, err)
			}
		},
		"swimlane_groups_get.json": func(t *testing.T) {
			p, err := serveFixture(t, "swimlane_groups_get.json").ListGroups(ctx, GroupFilter{})
			if err != nil {
				t.Fatal(err)
			}
			g := p.Items[0]
			if len(p.Items) != 3 || g.ID != "1286405255265411734" || g.Rank != nil || !g.IsDefault || g.TotalAgents != 2 || g.Type != "static" {
				t.Errorf("group %+v", g)
			}
			checkPassThrough(t, "swimlane_groups_get.json", p.Items)
		},
		"swimlane_sites_get.json": func(t *testing.T) {
			p, err := serveFixture(t, "swimlane_sites_get.json").ListSites(ctx, SiteFilter{})
			if err != nil {
				t.Fatal(err)
			}
			s := p.Items[0]
			if !sameJSON(t, p.AllSites, []byte(`{"activeLicenses":764,"totalLicenses":40}`)) || p.TotalItems != 3 ||
				s.ID != "1286405255257023125" || s.State != "active" || s.ActiveLicenses != 2 || !s.IsDefault {
				t.Errorf("sites page %+v", p)
			}
			checkPassThrough(t, "swimlane_sites_get.json", p.Items)
		},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		run, ok := cases[name]
		if !ok {
			t.Errorf("fixture %s has no decoding case", name)
			continue
		}
		t.Run(strings.TrimSuffix(name, ".json"), run)
	}
	if len(files) != len(cases) {
		t.Errorf("%d fixtures, %d cases", len(files), len(cases))
	}
	// Threat passes through marshalled inside a larger value too.
	var th Threat
	if err := json.Unmarshal(fixtureItems(t, "xsoar_threats_get_v2.1.json")[0], &th); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"threat": th})
	if !bytes.Contains(b, []byte(`"threatInfo"`)) {
		t.Errorf("nested marshal lost the raw threat: %.200s", b)
	}
}
