package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// actionDelay is the agents' answer delay of these tests, on the manual clock.
const actionDelay = 10 * time.Second

// filterIDs is an action body whose filter names ids.
func filterIDs(ids ...string) map[string]any {
	return map[string]any{"filter": map[string]any{"ids": ids}, "data": map[string]any{}}
}

// threatOn finds an unresolved, not mitigated threat whose agent is active
// is connected, and runs osType ("" for any).
func threatOn(t *testing.T, h *harness, osType string) (threatID, agentID string) {
	t.Helper()
	q := url.Values{"limit": {"1000"}, "mitigationStatuses": {mitigationNot}, "agentIsActive": {"true"}}
	if osType != "" {
		q.Set("osTypes", osType)
	}
	for _, it := range h.list(PathThreats, q).items {
		if str(it, "agentRealtimeInfo.agentNetworkStatus") == netConnected {
			return str(it, "id"), str(it, "agentRealtimeInfo.agentId")
		}
	}
	t.Fatalf("no %s threat on an active agent", osType)
	return "", ""
}

// activityTypesOf lists the activity types logged for a threat or an agent
// ("threatIds" or "agentIds"), oldest first.
func activityTypesOf(h *harness, by, id string) []int {
	h.t.Helper()
	var out []int
	for _, it := range h.walk(PathActivities, url.Values{by: {id}, "sortBy": {"createdAt"}, "sortOrder": {"asc"}, "limit": {"1000"}}, nil) {
		n, _ := strconv.Atoi(get(it, "activityType").(json.Number).String())
		out = append(out, n)
	}
	return out
}

// activityOf returns the one activity of type typ for a threat or agent.
func activityOf(h *harness, by, id string, typ int) map[string]any {
	h.t.Helper()
	l := h.list(PathActivities, url.Values{by: {id}, "activityTypes": {itoa(typ)}})
	if l.total != 1 {
		h.t.Fatalf("%d activities %d for %s %s, want 1", l.total, typ, by, id)
	}
	return l.items[0]
}

func threatItem(h *harness, id string) map[string]any {
	h.t.Helper()
	l := h.list(PathThreats, url.Values{"ids": {id}})
	if len(l.items) != 1 {
		h.t.Fatalf("threat %s not listed", id)
	}
	return l.items[0]
}

// mitigationEntry is the threat's mitigationStatus[] entry for action.
func mitigationEntry(h *harness, id, action string) map[string]any {
	h.t.Helper()
	for _, m := range get(threatItem(h, id), "mitigationStatus").([]any) {
		if e := m.(map[string]any); e["action"] == action {
			return e
		}
	}
	return nil
}

// TestMitigationLifecycle follows a kill then an unquarantine: the user's
// command is logged at once and the report is "sent"; after the action
// delay the agent's success is logged, the report says success and the
// threat's mitigationStatus moves (with updatedAt), as ingestion reads it.
func TestMitigationLifecycle(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay))
	tid, _ := threatOn(t, h, "windows")
	before := str(threatItem(h, tid), "threatInfo.updatedAt")

	r := h.do(http.MethodPost, PathThreatMitigate+"kill", nil, filterIDs(tid))
	if r.status != http.StatusOK {
		t.Fatalf("kill: %d %s", r.status, r.body)
	}
	data := r.json(t)["data"].(map[string]any)
	if n, _ := data["affected"].(json.Number).Int64(); n != 1 {
		t.Fatalf("kill affected %v", data["affected"])
	}
	if d := data["details"].([]any)[0].(map[string]any); d["threatId"] != tid || get(d, "reports").([]any)[0].(map[string]any)["status"] != "sent" {
		t.Errorf("details %v", d)
	}
	if got := activityTypesOf(h, "threatIds", tid); !slices.Contains(got, 2011) || slices.Contains(got, 2001) {
		t.Errorf("right after the call: activities %v, want 2011 and no 2001", got)
	}
	th := threatItem(h, tid)
	if str(th, "threatInfo.mitigationStatus") != mitigationNot || get(th, "threatInfo.pendingActions") != true ||
		mitigationEntry(h, tid, "kill")["status"] != "sent" || mitigationEntry(h, tid, "kill")["mitigationEndedAt"] != nil {
		t.Errorf("right after the call: %v %v %v", str(th, "threatInfo.mitigationStatus"), get(th, "threatInfo.pendingActions"), mitigationEntry(h, tid, "kill"))
	}
	if pending := h.list(PathThreats, url.Values{"ids": {tid}, "pendingActions": {"true"}}); pending.total != 1 {
		t.Errorf("pendingActions filter finds %d", pending.total)
	}

	h.clock.Advance(actionDelay - time.Second)
	if got := activityTypesOf(h, "threatIds", tid); slices.Contains(got, 2001) {
		t.Fatalf("the agent answered before the delay: %v", got)
	}
	h.clock.Advance(time.Second)
	done := testEpoch.Add(actionDelay).Format(TimeLayout)
	th = threatItem(h, tid)
	if str(th, "threatInfo.mitigationStatus") != mitigationDone || str(th, "threatInfo.updatedAt") != done || str(th, "threatInfo.updatedAt") == before ||
		get(th, "threatInfo.pendingActions") != false {
		t.Errorf("after the delay: status %s updatedAt %s pending %v", str(th, "threatInfo.mitigationStatus"), str(th, "threatInfo.updatedAt"), get(th, "threatInfo.pendingActions"))
	}
	if e := mitigationEntry(h, tid, "kill"); e["status"] != "success" || e["mitigationEndedAt"] != done {
		t.Errorf("kill report %v", e)
	}
	ok := activityOf(h, "threatIds", tid, 2001)
	if str(ok, "createdAt") != done || !strings.Contains(str(ok, "primaryDescription"), "successfully killed") || str(ok, "data.globalStatus") != "success" {
		t.Errorf("success activity %v", ok)
	}
	if got := activityTypesOf(h, "threatIds", tid); !slices.Contains(got, actThreatMitigated) {
		t.Errorf("no mitigation status change activity: %v", got)
	}

	// Unquarantine leaves the threat not mitigated again.
	if r := h.do(http.MethodPost, PathThreatMitigate+"un-quarantine", nil, filterIDs(tid)); r.status != http.StatusOK {
		t.Fatalf("un-quarantine: %d %s", r.status, r.body)
	}
	h.clock.Advance(actionDelay)
	if s := str(threatItem(h, tid), "threatInfo.mitigationStatus"); s != mitigationNot {
		t.Errorf("after unquarantine: %s", s)
	}
	if got := activityTypesOf(h, "threatIds", tid); !slices.Contains(got, 2015) || !slices.Contains(got, 2026) {
		t.Errorf("unquarantine activities %v", got)
	}
}

// TestMitigationTargets: OS constraints skip threats (not counted), an
// unknown id affects nothing, an empty filter acts on every threat (as the
// console does), a bad action is a 400.
func TestMitigationTargets(t *testing.T) {
	h := newHarness(t)
	linux, _ := threatOn(t, h, "linux")
	mac, _ := threatOn(t, h, "macos")
	win, _ := threatOn(t, h, "windows")

	r := h.do(http.MethodPost, PathThreatMitigate+"rollback-remediation", nil, filterIDs(linux, mac, win))
	data := r.json(t)["data"].(map[string]any)
	if n, _ := data["affected"].(json.Number).Int64(); n != 1 {
		t.Errorf("rollback on linux, macos, windows affected %v, want 1 (Windows only)", data["affected"])
	}
	skipped := 0
	for _, d := range data["details"].([]any) {
		for _, s := range get(d.(map[string]any), "skipped").([]any) {
			if s.(map[string]any)["reason"] == "not_supported" {
				skipped++
			}
		}
	}
	if skipped != 2 {
		t.Errorf("%d skipped not_supported, want 2: %v", skipped, data["details"])
	}
	if got := activityTypesOf(h, "threatIds", linux); slices.Contains(got, 2013) {
		t.Errorf("a skipped threat got the rollback command: %v", got)
	}
	r = h.do(http.MethodPost, PathThreatMitigate+"remediate", nil, filterIDs(linux, mac))
	if n, _ := r.json(t)["data"].(map[string]any)["affected"].(json.Number).Int64(); n != 1 {
		t.Errorf("remediate on linux and macos affected %d, want 1", n)
	}
	// A target the console does not have is not counted and logs nothing.
	if n := affectedOf(t, h.do(http.MethodPost, PathThreatMitigate+"quarantine", nil, filterIDs("100000000000000001", win))); n != 1 {
		t.Errorf("unknown and known id affected %d, want 1", n)
	}
	for _, bad := range []string{"network-quarantine", "network_quarantine", "rollback", "unquarantine", "KILL"} {
		wantAPIError(t, h.do(http.MethodPost, PathThreatMitigate+bad, nil, filterIDs(win)), http.StatusBadRequest, CodeValidation, "action: Must be one of: kill, remediate")
	}
	wantAPIError(t, h.do(http.MethodPost, PathThreatMitigate+"kill", nil, map[string]any{"data": map[string]any{}}), http.StatusBadRequest, CodeValidation, "filter: Missing data")
	wantAPIError(t, h.do(http.MethodPost, PathThreatMitigate+"kill", nil, filterIDs("12")), http.StatusBadRequest, CodeValidation, "ids: 0: Must be greater")
	// Empty filter: every threat, as the real console does.
	all := h.list(PathThreats, url.Values{"limit": {"1"}}).total
	if n := affectedOf(t, h.do(http.MethodPost, PathThreatMitigate+"kill", nil, map[string]any{"filter": map[string]any{}, "data": map[string]any{}})); n != all {
		t.Errorf("empty filter killed %d of %d threats", n, all)
	}
}

// TestMitigationOutcomes: failure, not found, pending reboot and never, set
// per threat or per agent.
func TestMitigationOutcomes(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay))
	ids := h.list(PathThreats, url.Values{"limit": {"1000"}, "osTypes": {"windows"}, "agentIsActive": {"true"}, "mitigationStatuses": {mitigationNot}}).items
	if len(ids) < 5 {
		t.Fatalf("%d windows threats", len(ids))
	}
	byAgent := map[string]bool{}
	var picked []map[string]any
	for _, it := range ids { // one threat per agent, so that agent outcomes do not mix
		if a := str(it, "agentRealtimeInfo.agentId"); !byAgent[a] {
			byAgent[a] = true
			picked = append(picked, it)
		}
	}
	if len(picked) < 5 {
		t.Fatalf("%d windows agents with threats", len(picked))
	}
	fail, notFound, reboot, never, viaAgent := str(picked[0], "id"), str(picked[1], "id"), str(picked[2], "id"), str(picked[3], "id"), str(picked[4], "id")
	for id, o := range map[string]Outcome{fail: OutcomeFailure, notFound: OutcomeNotFound, reboot: OutcomePendingReboot, never: OutcomeNever} {
		if err := h.emu.SetOutcome(id, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.emu.SetOutcome(str(picked[4], "agentRealtimeInfo.agentId"), OutcomeFailure); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.SetOutcome("100000000000000001", OutcomeFailure); err == nil {
		t.Error("SetOutcome accepted an unknown id")
	}
	if n := affectedOf(t, h.do(http.MethodPost, PathThreatMitigate+"quarantine", nil, filterIDs(fail, notFound, reboot, never, viaAgent))); n != 5 {
		t.Fatalf("affected %d", n)
	}
	h.clock.Advance(actionDelay)
	for _, tc := range []struct {
		id, status string
		activity   int
		text       string
	}{
		{fail, "failed", 2009, "failed to quarantine"},
		{notFound, "failed", 2009, "could not find"},
		{reboot, "pending-reboot", 2034, "needs a reboot"},
		{viaAgent, "failed", 2009, "failed to quarantine"},
	} {
		if e := mitigationEntry(h, tc.id, "quarantine"); e["status"] != tc.status {
			t.Errorf("%s: report %v, want %s", tc.id, e, tc.status)
		}
		if a := activityOf(h, "threatIds", tc.id, tc.activity); !strings.Contains(str(a, "primaryDescription"), tc.text) {
			t.Errorf("%s: activity %v", tc.id, a)
		}
		if s := str(threatItem(h, tc.id), "threatInfo.mitigationStatus"); s != mitigationNot {
			t.Errorf("%s: mitigationStatus %s after a %s", tc.id, s, tc.status)
		}
	}
	if e := mitigationEntry(h, notFound, "quarantine"); e["groupNotFound"] != true || get(e, "actionsCounters.notFound") != json.Number("1") {
		t.Errorf("not found report %v", e)
	}
	if get(threatItem(h, fail), "threatInfo.failedActions") != true || get(threatItem(h, reboot), "threatInfo.rebootRequired") != true {
		t.Error("failedActions or rebootRequired not set")
	}
	h.clock.Advance(time.Hour)
	if got := activityTypesOf(h, "threatIds", never); !slices.Equal(got[len(got)-1:], []int{2014}) {
		t.Errorf("a silent agent answered: %v", got)
	}
	if e := mitigationEntry(h, never, "quarantine"); e["status"] != "sent" {
		t.Errorf("silent agent's report %v", e)
	}
}

// TestOfflineAgentNeverConfirms: an inactive agent's commands wait; when it
// comes back they are answered after the delay from then.
func TestOfflineAgentNeverConfirms(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay))
	tid, aid := threatOn(t, h, "")
	if err := h.emu.SetAgentActive(aid, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := h.emu.Agent(aid); s.IsActive {
		t.Fatal("agent still active")
	}
	affectedOf(t, h.do(http.MethodPost, PathThreatMitigate+"kill", nil, filterIDs(tid)))
	affectedOf(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, filterIDs(aid)))
	affectedOf(t, h.do(http.MethodPost, PathAgentsInitiateScan, nil, filterIDs(aid)))
	h.clock.Advance(24 * time.Hour)
	if got := activityTypesOf(h, "threatIds", tid); slices.Contains(got, 2001) {
		t.Errorf("offline agent confirmed the kill: %v", got)
	}
	got := activityTypesOf(h, "agentIds", aid)
	for _, want := range []int{2011, actUserDisconnect, actScanInitiated} {
		if !slices.Contains(got, want) {
			t.Errorf("request activity %d missing: %v", want, got)
		}
	}
	for _, never := range []int{actAgentDisconnect, actAgentScanStarted} {
		if slices.Contains(got, never) {
			t.Errorf("offline agent logged %d: %v", never, got)
		}
	}
	if s, _ := h.emu.Agent(aid); s.NetworkStatus != netDisconnecting {
		t.Errorf("offline agent's networkStatus %s, want disconnecting", s.NetworkStatus)
	}
	back := testEpoch.Add(24 * time.Hour)
	if err := h.emu.SetAgentActive(aid, true); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(actionDelay)
	if a := activityOf(h, "threatIds", tid, 2001); str(a, "createdAt") != back.Add(actionDelay).Format(TimeLayout) {
		t.Errorf("kill confirmed at %s, want the delay after coming back", str(a, "createdAt"))
	}
	if s, _ := h.emu.Agent(aid); s.NetworkStatus != netDisconnected || s.ScanStatus != scanStarted {
		t.Errorf("after coming back: %+v", s)
	}
	if err := h.emu.SetAgentActive("100000000000000001", true); err == nil {
		t.Error("SetAgentActive accepted an unknown id")
	}
}

// TestNetworkActions: the user's request (61/62) at once, networkStatus
// disconnecting then disconnected with 1001 after the delay; a failure is
// 2010 and the agent stays connected; an agent already there logs only the
// request.
func TestNetworkActions(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay))
	l := h.list(PathAgents, url.Values{"networkStatuses": {"connected"}, "isActive": {"true"}, "limit": {"3"}})
	ok, failing, already := str(l.items[0], "id"), str(l.items[1], "id"), str(l.items[2], "id")
	if err := h.emu.SetOutcome(failing, OutcomeFailure); err != nil {
		t.Fatal(err)
	}
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsDisconnect, nil, filterIDs(ok, failing))); n != 2 {
		t.Fatalf("affected %d", n)
	}
	for _, id := range []string{ok, failing} {
		if s, _ := h.emu.Agent(id); s.NetworkStatus != netDisconnecting {
			t.Errorf("%s right after: %s", id, s.NetworkStatus)
		}
		if got := activityTypesOf(h, "agentIds", id); !slices.Contains(got, actUserDisconnect) {
			t.Errorf("%s: no request activity: %v", id, got)
		}
	}
	h.clock.Advance(actionDelay)
	if s, _ := h.emu.Agent(ok); s.NetworkStatus != netDisconnected {
		t.Errorf("after the delay: %s", s.NetworkStatus)
	}
	if a := activityOf(h, "agentIds", ok, actAgentDisconnect); str(a, "createdAt") != testEpoch.Add(actionDelay).Format(TimeLayout) {
		t.Errorf("1001 at %s", str(a, "createdAt"))
	}
	if s, _ := h.emu.Agent(failing); s.NetworkStatus != netConnected {
		t.Errorf("failed isolation left %s", s.NetworkStatus)
	}
	if got := activityTypesOf(h, "agentIds", failing); !slices.Contains(got, actAgentIsolateFailed) || slices.Contains(got, actAgentDisconnect) {
		t.Errorf("failed isolation activities %v", got)
	}
	// Connecting an agent that is connected logs the request only.
	affectedOf(t, h.do(http.MethodPost, PathAgentsConnect, nil, filterIDs(already)))
	h.clock.Advance(actionDelay)
	if got := activityTypesOf(h, "agentIds", already); !slices.Contains(got, actUserReconnect) || slices.Contains(got, actAgentConnect) {
		t.Errorf("already connected: %v", got)
	}
}

// TestNotesAndTimeline adds notes to two threats and reads them back, with
// the timeline of one.
func TestNotesAndTimeline(t *testing.T) {
	h := newHarness(t)
	l := h.list(PathThreats, url.Values{"limit": {"2"}})
	a, b := str(l.items[0], "id"), str(l.items[1], "id")
	body := map[string]any{"filter": map[string]any{"ids": []string{a, b}}, "data": map[string]any{"text": "contained by SOAR, case 42"}}
	if n := affectedOf(t, h.do(http.MethodPost, PathThreatNotes, nil, body)); n != 2 {
		t.Fatalf("affected %d", n)
	}
	for _, id := range []string{a, b} {
		notes := h.list(PathThreats+"/"+id+"/notes", nil)
		if notes.total != 1 || str(notes.items[0], "text") != "contained by SOAR, case 42" || str(notes.items[0], "creator") != emulatorUser ||
			str(notes.items[0], "creatorId") != emulatorUserID || get(notes.items[0], "edited") != false {
			t.Errorf("notes of %s: %v", id, notes.items)
		}
		activityOf(h, "threatIds", id, actThreatNoteAdded)
	}
	if n := h.list(PathThreats, url.Values{"ids": {a}, "noteExists": {"true"}}).total; n != 1 {
		t.Errorf("noteExists finds %d", n)
	}
	for _, tc := range []struct {
		data   map[string]any
		detail string
	}{
		{map[string]any{"text": "x"}, "data: text: Length must be between 2 and 10000."},
		{map[string]any{"text": strings.Repeat("y", 10001)}, "Length must be between"},
		{map[string]any{}, "data: text: Missing data"},
		{map[string]any{"text": 7}, "data: text: Not a valid string."},
	} {
		wantAPIError(t, h.do(http.MethodPost, PathThreatNotes, nil, map[string]any{"filter": map[string]any{"ids": []string{a}}, "data": tc.data}),
			http.StatusBadRequest, CodeValidation, tc.detail)
	}
	wantAPIError(t, h.do(http.MethodPost, PathThreatNotes, nil, map[string]any{"filter": map[string]any{"ids": []string{a}}}), http.StatusBadRequest, CodeValidation, "data: Missing")
	if n := h.list(PathThreats+"/100000000000000001/notes", nil).total; n != 0 {
		t.Errorf("unknown threat has %d notes", n)
	}
	wantAPIError(t, h.do(http.MethodGet, PathThreats+"/abc/notes", nil, nil), http.StatusBadRequest, CodeValidation, "threat_id: Not a valid integer.")
	wantAPIError(t, h.do(http.MethodGet, PathThreats+"/12/timeline", nil, nil), http.StatusBadRequest, CodeValidation, "threat_id: Must be greater")
	wantAPIError(t, h.do(http.MethodGet, PathThreats+"/"+a+"/notes", url.Values{"sortBy": {"text"}}, nil), http.StatusBadRequest, CodeValidation, "sortBy: Must be one of: createdAt, updatedAt.")

	// The timeline: this threat's activities only, filtered and sorted.
	if r := h.do(http.MethodPost, PathThreatMitigate+"kill", nil, filterIDs(a)); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	tl := h.walk(PathThreats+"/"+a+"/timeline", url.Values{"limit": {"2"}, "sortBy": {"createdAt"}, "sortOrder": {"desc"}}, nil)
	want := activityTypesOf(h, "threatIds", a)
	if len(tl) != len(want) || len(tl) < 3 {
		t.Fatalf("timeline has %d entries, activities %d", len(tl), len(want))
	}
	for _, it := range tl {
		if str(it, "threatId") != a || str(it, "activityUuid") == "" {
			t.Errorf("timeline entry %v", it)
		}
	}
	kills := h.list(PathThreats+"/"+a+"/timeline", url.Values{"activityTypes": {"2011,2001"}})
	if kills.total != 2 {
		t.Errorf("timeline activityTypes=2011,2001: %d entries", kills.total)
	}
	if q := h.list(PathThreats+"/"+a+"/timeline", url.Values{"query": {"issued a kill"}}); q.total != 1 {
		t.Errorf("timeline query: %d entries", q.total)
	}
	wantAPIError(t, h.do(http.MethodGet, PathThreats+"/"+a+"/timeline", url.Values{"sortBy": {"id"}}, nil), http.StatusBadRequest, CodeValidation, "sortBy: Must be one of: activityType, createdAt, hash")
	if n := h.list(PathThreats+"/"+b+"/timeline", url.Values{"activityTypes": {"2011"}}).total; n != 0 {
		t.Errorf("the other threat's timeline shows the kill")
	}
}

// TestFetchFile: the password rules (400 with code 4000010), exactly one
// threat per call, 85 at once and 86 with the download path after the delay.
func TestFetchFile(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay))
	tid, aid := threatOn(t, h, "")
	other, _ := threatOn(t, h, "linux")
	fetch := func(password any, ids ...string) response {
		return h.do(http.MethodPost, PathThreatFetchFile, nil, map[string]any{"filter": map[string]any{"ids": ids}, "data": map[string]any{"password": password}})
	}
	for _, bad := range []string{"Short1!", "nouppercase1!", "NOLOWERCASE1!", "NoDigitsHere!", "NoSymbols123", "Has Space 12!"} {
		r := fetch(bad, tid)
		wantAPIError(t, r, http.StatusBadRequest, CodeValidation, "data: password: The password must be at least 10 characters")
		if strings.Contains(string(r.body), bad) {
			t.Errorf("the answer quotes the password: %s", r.body)
		}
	}
	wantAPIError(t, fetch(nil, tid), http.StatusBadRequest, CodeValidation, "data: password: Missing data")
	wantAPIError(t, fetch("Zip-Pass-2024!x", tid, other), http.StatusBadRequest, CodeValidation, "Filter must match exactly one threat")
	if n := affectedOf(t, fetch("Zip-Pass-2024!x", "100000000000000001")); n != 0 {
		t.Errorf("unknown threat affected %d", n)
	}
	if n := affectedOf(t, fetch("Zip-Pass-2024!x", tid)); n != 1 {
		t.Fatalf("affected %d", n)
	}
	req := activityOf(h, "threatIds", tid, actFetchThreatFile)
	if got := activityTypesOf(h, "threatIds", tid); slices.Contains(got, actThreatFileUploaded) {
		t.Fatalf("uploaded before the delay: %v", got)
	}
	h.clock.Advance(actionDelay)
	up := activityOf(h, "threatIds", tid, actThreatFileUploaded)
	path := "/agents/" + aid + "/uploads/" + str(up, "id")
	if str(up, "data.downloadUrl") != path || str(up, "data.filePath") != path || str(up, "agentId") != aid ||
		str(up, "data.commandBatchUuid") == "" || str(up, "data.commandBatchUuid") != str(req, "data.commandBatchUuid") {
		t.Errorf("upload activity %v (request %v)", up, req)
	}
	// A failing agent uploads nothing: no failure activity is documented.
	if err := h.emu.SetOutcome(other, OutcomeFailure); err != nil {
		t.Fatal(err)
	}
	affectedOf(t, fetch("Zip-Pass-2024!x", other))
	h.clock.Advance(actionDelay)
	if got := activityTypesOf(h, "threatIds", other); !slices.Contains(got, actFetchThreatFile) || slices.Contains(got, actThreatFileUploaded) {
		t.Errorf("failed fetch activities %v", got)
	}
	// The console receives the password; the emulator keeps it in its
	// request log as any body (only its own token is redacted there).
	recorded := false
	for _, r := range h.emu.Requests() {
		recorded = recorded || r.Path == APIPrefix+PathThreatFetchFile && strings.Contains(string(r.Body), "Zip-Pass-2024!x")
	}
	if !recorded {
		t.Error("the fetch-file body was not recorded")
	}
}

// TestScans: 71 at once, 90 and started after the delay, 92 and finished
// after the scan; an abort of a running scan is 72 then 91 and aborted; an
// idle agent's abort logs 72 only; a failed start is 91.
func TestScans(t *testing.T) {
	h := newHarness(t, WithActionDelay(actionDelay), WithScanDuration(time.Minute))
	l := h.list(PathAgents, url.Values{"isActive": {"true"}, "limit": {"3"}})
	a, b, c := str(l.items[0], "id"), str(l.items[1], "id"), str(l.items[2], "id")
	if err := h.emu.SetOutcome(c, OutcomeFailure); err != nil {
		t.Fatal(err)
	}
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsInitiateScan, nil, filterIDs(a, b, c))); n != 3 {
		t.Fatalf("affected %d", n)
	}
	if s, _ := h.emu.Agent(a); s.ScanStatus != scanFinished {
		t.Errorf("right after the call: %s", s.ScanStatus)
	}
	h.clock.Advance(actionDelay)
	for _, id := range []string{a, b} {
		if s, _ := h.emu.Agent(id); s.ScanStatus != scanStarted {
			t.Errorf("%s after the delay: %s", id, s.ScanStatus)
		}
	}
	if n := h.list(PathAgents, url.Values{"ids": {a, b, c}, "scanStatuses": {"started"}}).total; n != 2 {
		t.Errorf("scanStatuses=started finds %d", n)
	}
	if s, _ := h.emu.Agent(c); s.ScanStatus != scanAborted {
		t.Errorf("failed start: %s", s.ScanStatus)
	}
	// Abort b while it runs.
	affectedOf(t, h.do(http.MethodPost, PathAgentsAbortScan, nil, filterIDs(b)))
	h.clock.Advance(actionDelay)
	h.clock.Advance(time.Minute)
	if s, _ := h.emu.Agent(a); s.ScanStatus != scanFinished {
		t.Errorf("a after the scan: %s", s.ScanStatus)
	}
	if s, _ := h.emu.Agent(b); s.ScanStatus != scanAborted {
		t.Errorf("b after the abort: %s", s.ScanStatus)
	}
	for id, want := range map[string][]int{
		a: {actScanInitiated, actAgentScanStarted, actAgentScanCompleted},
		b: {actScanInitiated, actAgentScanStarted, actScanAbortedByUser, actAgentScanAborted},
		c: {actScanInitiated, actAgentScanAborted},
	} {
		var got []int
		for _, typ := range activityTypesOf(h, "agentIds", id) {
			if typ >= 70 && typ < 100 {
				got = append(got, typ)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: scan activities %v, want %v", id, got, want)
		}
	}
	ag := h.list(PathAgents, url.Values{"ids": {b}}).items[0]
	if str(ag, "scanStatus") != scanAborted || str(ag, "scanAbortedAt") == "" {
		t.Errorf("agent b %v %v", ag["scanStatus"], ag["scanAbortedAt"])
	}
	// An idle agent: counted, 72 logged, nothing else.
	if n := affectedOf(t, h.do(http.MethodPost, PathAgentsAbortScan, nil, filterIDs(a))); n != 1 {
		t.Errorf("idle abort affected %d", n)
	}
	h.clock.Advance(actionDelay)
	if got := activityTypesOf(h, "agentIds", a); got[len(got)-1] != actScanAbortedByUser {
		t.Errorf("idle abort: %v", got)
	}
}

// TestAgentsCount counts what GET /agents lists, with the same filters.
func TestAgentsCount(t *testing.T) {
	h := newHarness(t)
	count := func(q url.Values) int {
		t.Helper()
		r := h.do(http.MethodGet, PathAgentsCount, q, nil)
		if r.status != http.StatusOK {
			t.Fatalf("count %s: %d %s", q.Encode(), r.status, r.body)
		}
		n, _ := r.json(t)["data"].(map[string]any)["total"].(json.Number).Int64()
		return int(n)
	}
	some := h.emu.IDs().Agents[:3]
	for _, q := range []url.Values{
		{},
		{"networkStatuses": {"disconnected"}},
		{"osTypes": {"macos,linux"}},
		{"isActive": {"false"}},
		{"ids": some},
		{"computerName__contains": {"SRV"}, "limit": {"1"}, "sortBy": {"id"}},
	} {
		if got, want := count(q), h.list(PathAgents, q).total; got != want {
			t.Errorf("%s: count %d, list %d", q.Encode(), got, want)
		}
	}
	if n := count(url.Values{"ids": some}); n != 3 {
		t.Errorf("ids count %d", n)
	}
	wantAPIError(t, h.do(http.MethodGet, PathAgentsCount, url.Values{"networkStatuses": {"online"}}, nil), http.StatusBadRequest, CodeValidation, "networkStatuses")
}

// TestAPITokenDetails: the token's dates, unknown tokens, an expired token
// (REST answers 401, the details still answer), an older console without
// the route, and no token in the request log.
func TestAPITokenDetails(t *testing.T) {
	details := func(h *harness, token string) response {
		return h.doAuth(http.MethodPost, PathAPITokenDetails, nil, map[string]any{"data": map[string]any{"apiToken": token}}, "")
	}
	h := newHarness(t)
	r := details(h, DefaultToken)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	d := r.json(t)["data"].(map[string]any)
	if d["createdAt"] != testEpoch.Add(-DefaultTokenAge).Format(TimeLayout) || d["expiresAt"] != testEpoch.Add(DefaultTokenLifetime-DefaultTokenAge).Format(TimeLayout) {
		t.Errorf("default dates %v", d)
	}
	wantAPIError(t, details(h, "someone-else"), http.StatusBadRequest, CodeValidation, "apiToken")
	wantAPIError(t, h.doAuth(http.MethodPost, PathAPITokenDetails, nil, `{"data":{}}`, ""), http.StatusBadRequest, CodeValidation, "data: apiToken: Missing")
	for _, req := range h.emu.Requests() {
		if strings.Contains(string(req.Body), DefaultToken) {
			t.Errorf("the request log holds the token: %s", req.Body)
		}
	}

	exp := testEpoch.Add(48 * time.Hour)
	h2 := newHarness(t, WithTokenExpiry(testEpoch.Add(-24*time.Hour), exp))
	if d := details(h2, DefaultToken).json(t)["data"].(map[string]any); d["expiresAt"] != exp.Format(TimeLayout) {
		t.Errorf("expiry %v", d)
	}
	if r := h2.do(http.MethodGet, PathSystemInfo, nil, nil); r.status != http.StatusOK {
		t.Errorf("before expiry: %d", r.status)
	}
	h2.clock.Advance(48 * time.Hour)
	wantAPIError(t, h2.do(http.MethodGet, PathAgents, nil, nil), http.StatusUnauthorized, CodeAuthFailed, "")
	if r := details(h2, DefaultToken); r.status != http.StatusOK {
		t.Errorf("details of an expired token: %d %s", r.status, r.body)
	}

	old := newHarness(t, WithoutTokenDetails())
	if r := details(old, DefaultToken); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "404 page not found") {
		t.Errorf("older console: %d %s", r.status, r.body)
	}
	if _, err := New(WithTokenExpiry(testEpoch, testEpoch.Add(-time.Hour))); err == nil {
		t.Error("an expiry before creation was accepted")
	}
}

// TestResponseActionsRecorded: every new endpoint is in the request log.
func TestResponseActionsRecorded(t *testing.T) {
	h := newHarness(t)
	tid, aid := threatOn(t, h, "windows")
	h.emu.ResetRequests()
	h.do(http.MethodPost, PathThreatMitigate+"kill", nil, filterIDs(tid))
	h.do(http.MethodPost, PathThreatNotes, nil, map[string]any{"filter": map[string]any{"ids": []string{tid}}, "data": map[string]any{"text": "ok"}})
	h.do(http.MethodGet, PathThreats+"/"+tid+"/notes", nil, nil)
	h.do(http.MethodGet, PathThreats+"/"+tid+"/timeline", nil, nil)
	h.do(http.MethodPost, PathThreatFetchFile, nil, map[string]any{"filter": map[string]any{"ids": []string{tid}}, "data": map[string]any{"password": "Zip-Pass-2024!x"}})
	h.do(http.MethodPost, PathAgentsInitiateScan, nil, filterIDs(aid))
	h.do(http.MethodPost, PathAgentsAbortScan, nil, filterIDs(aid))
	h.do(http.MethodGet, PathAgentsCount, nil, nil)
	var got []string
	for _, r := range h.emu.Requests() {
		got = append(got, r.Method+" "+strings.TrimPrefix(r.Path, APIPrefix))
	}
	want := []string{"POST /threats/mitigate/kill", "POST /threats/notes", "GET /threats/" + tid + "/notes", "GET /threats/" + tid + "/timeline",
		"POST /threats/fetch-file", "POST /agents/actions/initiate-scan", "POST /agents/actions/abort-scan", "GET /agents/count"}
	if !slices.Equal(got, want) {
		t.Errorf("recorded %q\nwant %q", got, want)
	}
	if b := string(h.emu.Requests()[0].Body); b != `{"data":{},"filter":{"ids":["`+tid+`"]}}` {
		t.Errorf("recorded body %s", b)
	}
}
