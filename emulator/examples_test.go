package emulator

import (
	"net/url"
	"reflect"
	"testing"
	"time"
)

// TestWithExamples: the README's ids exist on a console with examples,
// whatever its seed, and live mode leaves the example threats and alert as
// they are.
func TestWithExamples(t *testing.T) {
	for _, opts := range [][]Option{
		{WithExamples()},
		{WithExamples(), WithSeed(7), WithSizes(Sizes{Sites: 1, GroupsPerSite: 1, Agents: 3, Threats: 5, Alerts: 2})},
	} {
		h := newHarness(t, opts...)
		for _, id := range []string{ExampleAgentID, SeedAgentID} {
			a, ok := h.emu.Agent(id)
			if !ok || !a.IsActive || a.NetworkStatus != netConnected {
				t.Errorf("agent %s: %+v (%t)", id, a, ok)
			}
		}
		items := h.list(PathAgents, url.Values{"networkInterfaceInet__contains": {ExampleAgentIP}}).items
		if len(items) != 1 || items[0]["id"] != ExampleAgentID || items[0]["computerName"] != "FIN-LT-042" {
			t.Errorf("agents at %s: %v", ExampleAgentIP, items)
		}
		before := map[string]ThreatState{}
		for _, id := range []string{ExampleThreatID, SeedThreatID} {
			th, ok := h.emu.Threat(id)
			if !ok || th.IncidentStatus == statusResolved || th.MitigationStatus != mitigationNot {
				t.Errorf("threat %s: %+v (%t)", id, th, ok)
			}
			before[id] = th
		}
		if th, _ := h.emu.Threat(ExampleThreatID); th.AgentID != ExampleAgentID {
			t.Errorf("example threat on agent %s", th.AgentID)
		}
		alert := func() map[string]any {
			items := h.list(PathAlerts, url.Values{"ids": {ExampleAlertID}}).items
			if len(items) != 1 {
				t.Fatalf("alert %s: %d found", ExampleAlertID, len(items))
			}
			return items[0]["alertInfo"].(map[string]any)
		}
		alertBefore := alert()["incidentStatus"]
		uamBefore := map[string]UAMAlertState{}
		for _, id := range UAMSeedIDs() {
			if a, ok := h.emu.UAMAlert(id); ok { // the small console has none
				uamBefore[id] = a
			}
		}
		for range 300 {
			h.clock.Advance(time.Second)
			h.emu.liveStep()
		}
		for id, old := range before {
			if now, _ := h.emu.Threat(id); now != old {
				t.Errorf("live mode changed pinned threat %s: %+v, was %+v", id, now, old)
			}
		}
		for id, old := range uamBefore {
			if now, _ := h.emu.UAMAlert(id); !reflect.DeepEqual(now, old) {
				t.Errorf("live mode changed seeded Unified Alert %s: %+v, was %+v", id, now, old)
			}
		}
		if now := alert()["incidentStatus"]; now != alertBefore {
			t.Errorf("live mode changed the example alert: %v, was %v", now, alertBefore)
		}
	}
}
