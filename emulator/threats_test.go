package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

type updateReply struct {
	Data struct {
		Affected int `json:"affected"`
		Details  []struct {
			ThreatID       string `json:"threatId"`
			Result         string `json:"result"`
			AnalystVerdict string `json:"analystVerdict"`
		} `json:"details"`
	} `json:"data"`
}

func decodeUpdate(t *testing.T, r response) updateReply {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var u updateReply
	if err := json.Unmarshal(r.body, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func unresolvedThreats(t *testing.T, h *harness, n int) []string {
	t.Helper()
	l := h.list(PathThreats, url.Values{"incidentStatuses": {"unresolved"}, "limit": {itoa(n)}})
	if len(l.items) < n {
		t.Fatalf("only %d unresolved threats", len(l.items))
	}
	return ids(l.items, "id")
}

func TestThreatIncidentUpdate(t *testing.T) {
	h := newHarness(t)
	tids := unresolvedThreats(t, h, 3)
	h.clock.Advance(time.Minute)
	body := map[string]any{
		"filter": map[string]any{"ids": tids[:2]},
		"data":   map[string]any{"incidentStatus": "resolved", "analystVerdict": "true_positive"},
	}
	u := decodeUpdate(t, h.do(http.MethodPost, PathThreatIncident, nil, body))
	if u.Data.Affected != 2 || len(u.Data.Details) != 2 {
		t.Fatalf("affected %d, details %d, want 2 and 2", u.Data.Affected, len(u.Data.Details))
	}
	for _, d := range u.Data.Details {
		if d.Result != resultUpdated || d.AnalystVerdict != resultUpdated {
			t.Errorf("detail %+v, want updated/updated", d)
		}
	}
	now := h.clock.Now().Format(TimeLayout)
	got := h.list(PathThreats, url.Values{"ids": {tids[0]}}).items[0]
	for path, want := range map[string]string{
		"threatInfo.incidentStatus": "resolved", "threatInfo.incidentStatusDescription": "Resolved",
		"threatInfo.analystVerdict": "true_positive", "threatInfo.analystVerdictDescription": "True positive",
		"threatInfo.updatedAt": now,
	} {
		if v := str(got, path); v != want {
			t.Errorf("%s = %q, want %q", path, v, want)
		}
	}
	// The same call again changes nothing.
	u = decodeUpdate(t, h.do(http.MethodPost, PathThreatIncident, nil, body))
	if u.Data.Affected != 0 || u.Data.Details[0].Result != resultAlreadySet || u.Data.Details[0].AnalystVerdict != resultAlreadySet {
		t.Errorf("repeat: %+v, want affected 0 and already_set", u.Data)
	}
	// Each change was logged as an activity of its threat.
	acts := h.list(PathActivities, url.Values{"threatIds": {tids[0]}, "activityTypes": {itoa(actThreatStatus) + "," + itoa(actThreatVerdict)}})
	if acts.total != 2 {
		t.Errorf("%d activities for the update, want 2 (status and verdict)", acts.total)
	}
	// A filter other than ids works, and JSON strings stand for arrays.
	body = map[string]any{"filter": map[string]any{"ids": tids[2], "incidentStatuses": "unresolved,in_progress"},
		"data": map[string]any{"incidentStatus": "in_progress"}}
	if u := decodeUpdate(t, h.do(http.MethodPost, PathThreatIncident, nil, body)); u.Data.Affected != 1 {
		t.Errorf("string-array filter: affected %d, want 1", u.Data.Affected)
	}
}

func TestThreatVerdictUpdate(t *testing.T) {
	h := newHarness(t)
	tids := unresolvedThreats(t, h, 2)
	body := map[string]any{"filter": map[string]any{"ids": tids, "tenant": "true"}, "data": map[string]any{"analystVerdict": "false_positive"}}
	u := decodeUpdate(t, h.do(http.MethodPost, PathThreatVerdict, nil, body))
	if u.Data.Affected != 2 || u.Data.Details[0].Result != resultUpdated || u.Data.Details[0].AnalystVerdict != "" {
		t.Fatalf("%+v", u.Data)
	}
	s, _ := h.emu.Threat(tids[0])
	if s.AnalystVerdict != verdictFalsePositive || s.IncidentStatus != statusUnresolved {
		t.Errorf("state %+v", s)
	}
}

func TestThreatUpdateErrors(t *testing.T) {
	h := newHarness(t)
	id := h.emu.IDs().Threats[0]
	cases := []struct {
		name, path string
		body       any
		detail     string
	}{
		{"no body", PathThreatIncident, nil, "filter: Missing data for required field."},
		{"no filter", PathThreatIncident, map[string]any{"data": map[string]any{"incidentStatus": "resolved"}}, "filter: Missing data"},
		{"no data", PathThreatIncident, map[string]any{"filter": map[string]any{"ids": []string{id}}}, "data: Missing data"},
		{"no status", PathThreatIncident, map[string]any{"filter": map[string]any{"ids": []string{id}}, "data": map[string]any{}}, "data: incidentStatus: Missing data"},
		{"status in UPPER case", PathThreatIncident, map[string]any{"filter": map[string]any{"ids": []string{id}}, "data": map[string]any{"incidentStatus": "RESOLVED"}}, "data: incidentStatus: Must be one of"},
		{"bad verdict", PathThreatIncident, map[string]any{"filter": map[string]any{"ids": []string{id}}, "data": map[string]any{"incidentStatus": "resolved", "analystVerdict": "benign"}}, "data: analystVerdict"},
		{"verdict UPPER on threats", PathThreatVerdict, map[string]any{"filter": map[string]any{"ids": []string{id}}, "data": map[string]any{"analystVerdict": "TRUE_POSITIVE"}}, "data: analystVerdict: Must be one of"},
		{"small id", PathThreatVerdict, map[string]any{"filter": map[string]any{"ids": []string{"123"}}, "data": map[string]any{"analystVerdict": "suspicious"}}, "ids: 0: Must be greater than or equal to 100000000000000000."},
		{"not JSON", PathThreatVerdict, "{nope", "Invalid JSON body."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantAPIError(t, h.do(http.MethodPost, c.path, nil, c.body), http.StatusBadRequest, CodeValidation, c.detail)
		})
	}
}

func TestThreatHooks(t *testing.T) {
	h := newHarness(t)
	at := testEpoch.Add(-10 * time.Minute)
	added := h.emu.AddThreats(4, at)
	if len(added) != 4 {
		t.Fatalf("AddThreats returned %d ids", len(added))
	}
	l := h.list(PathThreats, url.Values{"createdAt__gte": {at.Format(TimeLayout)}, "createdAt__lte": {at.Format(TimeLayout)}})
	if l.total != 4 || sortedCopy(ids(l.items, "id"))[0] != sortedCopy(added)[0] {
		t.Fatalf("added threats: total %d", l.total)
	}
	for _, it := range l.items {
		if str(it, "threatInfo.updatedAt") != at.Format(TimeLayout) || str(it, "threatInfo.incidentStatus") != statusUnresolved {
			t.Errorf("added threat %s: updatedAt %s status %s", str(it, "id"), str(it, "threatInfo.updatedAt"), str(it, "threatInfo.incidentStatus"))
		}
	}
	upd := testEpoch.Add(time.Second)
	if err := h.emu.UpdateThreat(added[0], ThreatUpdate{MitigationStatus: mitigationDone, AnalystVerdict: verdictSuspicious, At: upd}); err != nil {
		t.Fatal(err)
	}
	got := h.list(PathThreats, url.Values{"ids": {added[0]}}).items[0]
	if str(got, "threatInfo.mitigationStatus") != mitigationDone || str(got, "threatInfo.mitigationStatusDescription") != "Mitigated" ||
		str(got, "threatInfo.updatedAt") != upd.Format(TimeLayout) || len(get(got, "mitigationStatus").([]any)) == 0 {
		t.Errorf("after UpdateThreat: %v", got["threatInfo"])
	}
	if err := h.emu.UpdateThreat("1999999999999999999", ThreatUpdate{}); err == nil {
		t.Error("unknown id accepted")
	}
	if err := h.emu.UpdateThreat(added[0], ThreatUpdate{IncidentStatus: "closed"}); err == nil {
		t.Error("bad status accepted")
	}
}

// TestLateIndexing: a threat whose updatedAt is in the past is invisible
// until the clock reaches its indexing time, then appears with that past
// updatedAt (behind a poller's watermark).
func TestLateIndexing(t *testing.T) {
	h := newHarness(t)
	past := testEpoch.Add(-2 * time.Minute)
	late := h.emu.AddLateThreats(2, past, testEpoch.Add(30*time.Second))
	existing := h.emu.IDs().Threats[0]
	if err := h.emu.UpdateThreat(existing, ThreatUpdate{IncidentStatus: statusResolved, At: past, VisibleAt: testEpoch.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"updatedAt__gte": {past.Format(TimeLayout)}, "limit": {"1000"}}
	visible := func() map[string]bool {
		m := map[string]bool{}
		for _, id := range ids(h.list(PathThreats, q).items, "id") {
			m[id] = true
		}
		for _, id := range ids(h.list(PathThreats, url.Values{"ids": {late[0] + "," + existing}}).items, "id") {
			m[id] = true
		}
		return m
	}
	if v := visible(); v[late[0]] || v[late[1]] || v[existing] {
		t.Fatalf("late threats visible before indexing: %v", v)
	}
	h.clock.Advance(30 * time.Second)
	if v := visible(); !v[late[0]] || !v[late[1]] || v[existing] {
		t.Fatalf("after 30s: %v", v)
	}
	h.clock.Advance(30 * time.Second)
	if v := visible(); !v[existing] {
		t.Fatal("the late update never became visible")
	}
	got := h.list(PathThreats, url.Values{"ids": {late[0]}}).items[0]
	if str(got, "threatInfo.updatedAt") != past.Format(TimeLayout) {
		t.Errorf("late threat updatedAt %s, want %s", str(got, "threatInfo.updatedAt"), past.Format(TimeLayout))
	}
}
