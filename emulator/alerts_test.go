package emulator

import (
	"net/http"
	"net/url"
	"testing"
)

func TestAlertUpdates(t *testing.T) {
	h := newHarness(t)
	l := h.list(PathAlerts, url.Values{"incidentStatus": {"UNRESOLVED"}, "analystVerdict": {"UNDEFINED"}, "limit": {"2"}})
	if len(l.items) != 2 {
		t.Fatal("not enough open alerts")
	}
	aids := ids(l.items, "alertInfo.alertId")
	filter := map[string]any{"ids": aids}
	cases := []struct {
		path, field, value, display string
	}{
		{PathAlertVerdict, "analystVerdict", "TRUE_POSITIVE", "True positive"},
		{PathAlertVerdict, "analystVerdict", "false_positive", "False positive"},
		{PathAlertIncident, "incidentStatus", "in_progress", "In progress"},
		{PathAlertIncident, "incidentStatus", "RESOLVED", "Resolved"},
	}
	for _, c := range cases {
		body := map[string]any{"filter": filter, "data": map[string]any{c.field: c.value}}
		if n := affectedOf(t, h.do(http.MethodPost, c.path, nil, body)); n != 2 {
			t.Fatalf("%s=%s: affected %d, want 2", c.field, c.value, n)
		}
		for _, it := range h.list(PathAlerts, url.Values{"ids": aids}).items {
			if got := str(it, "alertInfo."+c.field); got != c.display {
				t.Errorf("%s after %s: %q, want %q", c.field, c.value, got, c.display)
			}
		}
		if n := affectedOf(t, h.do(http.MethodPost, c.path, nil, body)); n != 0 {
			t.Errorf("repeating %s=%s affected %d, want 0", c.field, c.value, n)
		}
	}
	if l := h.list(PathAlerts, url.Values{"ids": aids, "incidentStatus": {"RESOLVED"}, "analystVerdict": {"FALSE_POSITIVE"}}); l.total != 2 {
		t.Errorf("UPPER filters after update: %d", l.total)
	}
	acts := h.list(PathActivities, url.Values{"alertIds": {aids[0]}})
	if acts.total != 4 {
		t.Errorf("%d activities for the alert, want 4", acts.total)
	}
	for _, bad := range []map[string]any{
		{"filter": filter, "data": map[string]any{"analystVerdict": "True positive"}},
		{"filter": filter, "data": map[string]any{"analystVerdict": "True_Positive"}},
		{"filter": filter, "data": map[string]any{}},
		{"data": map[string]any{"analystVerdict": "suspicious"}},
		{"filter": map[string]any{"incidentStatus": []string{"resolved"}}, "data": map[string]any{"analystVerdict": "suspicious"}},
	} {
		wantAPIError(t, h.do(http.MethodPost, PathAlertVerdict, nil, bad), http.StatusBadRequest, CodeValidation, "")
	}
}
