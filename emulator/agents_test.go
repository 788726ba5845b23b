package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func affectedOf(t *testing.T, r response) int {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var a struct {
		Data *affected `json:"data"`
	}
	if err := json.Unmarshal(r.body, &a); err != nil || a.Data == nil {
		t.Fatalf("answer %s is not {data:{affected}}", r.body)
	}
	return a.Data.Affected
}

func connectedAgent(t *testing.T, h *harness) (id, group string) {
	t.Helper()
	l := h.list(PathAgents, url.Values{"networkStatuses": {"connected"}, "isActive": {"true"}, "limit": {"1"}})
	return str(l.items[0], "id"), str(l.items[0], "groupId")
}

func TestDisconnectConnectImmediate(t *testing.T) {
	h := newHarness(t)
	id, _ := connectedAgent(t, h)
	body := map[string]any{"filter": map[string]any{"ids": []string{id}}, "data": map[string]any{}}
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, body)); n != 1 {
		t.Fatalf("disconnect affected %d", n)
	}
	a := h.list(PathAgents, url.Values{"ids": {id}}).items[0]
	if str(a, "networkStatus") != netDisconnected || get(a, "networkQuarantineEnabled") != true {
		t.Errorf("after disconnect: %s quarantine=%v", str(a, "networkStatus"), get(a, "networkQuarantineEnabled"))
	}
	// Threats show the agent's live state.
	for _, th := range h.list(PathThreats, url.Values{"agentIds": {id}, "limit": {"1000"}}).items {
		if s := str(th, "agentRealtimeInfo.agentNetworkStatus"); s != netDisconnected {
			t.Fatalf("threat %s shows agentNetworkStatus %s", str(th, "id"), s)
		}
	}
	acts := h.list(PathActivities, url.Values{"agentIds": {id}, "activityTypes": {itoa(actAgentDisconnect)}})
	if acts.total != 1 {
		t.Errorf("%d disconnect activities, want 1", acts.total)
	}
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsConnect, nil, body)); n != 1 {
		t.Fatalf("connect affected %d", n)
	}
	if s, _ := h.emu.Agent(id); s.NetworkStatus != netConnected {
		t.Errorf("after connect: %s", s.NetworkStatus)
	}
}

func TestNetworkTransitionTakesConfiguredDelay(t *testing.T) {
	h := newHarness(t, WithTransitionDelay(5*time.Second))
	id, group := connectedAgent(t, h)
	// groupIds satisfies the dangerous-action rule too.
	body := map[string]any{"filter": map[string]any{"groupIds": group, "ids": id}, "data": map[string]any{}}
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, body)); n != 1 {
		t.Fatalf("affected %d", n)
	}
	status := func() string { return str(h.list(PathAgents, url.Values{"ids": {id}}).items[0], "networkStatus") }
	if s := status(); s != netDisconnecting {
		t.Fatalf("right after disconnect: %s, want disconnecting", s)
	}
	h.clock.Advance(4 * time.Second)
	if s := status(); s != netDisconnecting {
		t.Fatalf("after 4s: %s", s)
	}
	h.clock.Advance(time.Second)
	if s := status(); s != netDisconnected {
		t.Fatalf("after 5s: %s, want disconnected", s)
	}
	affectedOf(t, h.do(http.MethodPost, PathAgentsConnect, nil, body))
	if s, _ := h.emu.Agent(id); s.NetworkStatus != netConnecting {
		t.Fatalf("right after connect: %s, want connecting", s.NetworkStatus)
	}
	h.clock.Advance(5 * time.Second)
	if s, _ := h.emu.Agent(id); s.NetworkStatus != netConnected {
		t.Fatalf("after 5s: %s, want connected", s.NetworkStatus)
	}
}

func TestDangerousActionRule(t *testing.T) {
	h := newHarness(t)
	for _, filter := range []map[string]any{{}, {"siteIds": []string{h.emu.IDs().Sites[0]}}, {"ids": []string{}}, {"computerName__like": "srv"}} {
		r := h.do(http.MethodPost, PathAgentsDisconnect, nil, map[string]any{"filter": filter, "data": map[string]any{}})
		wantAPIError(t, r, http.StatusBadRequest, CodeValidation, "One of these filter arguments must be supplied: ids, groupIds, filterId")
	}
	wantAPIError(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, map[string]any{"data": map[string]any{}}),
		http.StatusBadRequest, CodeValidation, "filter: Missing data")
	// A filterId names a saved filter; the emulator has none, so nothing matches.
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, map[string]any{"filter": map[string]any{"filterId": "1555480684396399562"}})); n != 0 {
		t.Errorf("filterId affected %d", n)
	}
	// Connect with an empty filter applies to every agent, as the real API does.
	ids := h.emu.IDs().Agents
	n := affectedOf(t, h.do(http.MethodPost, PathAgentsConnect, nil, map[string]any{"filter": map[string]any{}, "data": map[string]any{}}))
	if n != len(ids)-1 { // the decommissioned agent is not applicable
		t.Errorf("empty-filter connect affected %d of %d agents", n, len(ids))
	}
	if l := h.list(PathAgents, url.Values{"networkStatuses": {"disconnected"}, "isDecommissioned": {"false"}}); l.total != 0 {
		t.Errorf("%d agents still disconnected", l.total)
	}
}
