package handlers

import (
	"strconv"
	"strings"
	"testing"
)

func TestAlertsUpdate(t *testing.T) {
	ids := `["` + id(1) + `","` + id(2) + `","` + id(3) + `"]`
	cases := []struct {
		name, data   string
		verdict      int // affected by the verdict call, -1: not called
		status       int
		want         string
		wantVerdict  string // expected body of the verdict call
		wantIncident string
	}{
		{
			name: "both: two calls, verdict first", data: `{"alertIds":` + ids + `,"analystVerdict":"true_positive","incidentStatus":"resolved"}`,
			verdict: 3, status: 2, want: `{"affected":3,"verdictAffected":3,"statusAffected":2}`,
			wantVerdict:  `{"data":{"analystVerdict":"true_positive"},"filter":{"ids":` + ids + `}}`,
			wantIncident: `{"data":{"incidentStatus":"resolved"},"filter":{"ids":` + ids + `}}`,
		},
		{
			name: "status larger", data: `{"alertIds":` + ids + `,"analystVerdict":"suspicious","incidentStatus":"in_progress"}`,
			verdict: 1, status: 3, want: `{"affected":3,"verdictAffected":1,"statusAffected":3}`,
			wantVerdict:  `{"data":{"analystVerdict":"suspicious"},"filter":{"ids":` + ids + `}}`,
			wantIncident: `{"data":{"incidentStatus":"in_progress"},"filter":{"ids":` + ids + `}}`,
		},
		{
			name: "verdict only", data: `{"alertIds":` + ids + `,"analystVerdict":"false_positive"}`,
			verdict: 2, status: -1, want: `{"affected":2,"verdictAffected":2,"statusAffected":0}`,
			wantVerdict: `{"data":{"analystVerdict":"false_positive"},"filter":{"ids":` + ids + `}}`,
		},
		{
			name: "status only", data: `{"alertIds":` + ids + `,"incidentStatus":"unresolved"}`,
			verdict: -1, status: 1, want: `{"affected":1,"verdictAffected":0,"statusAffected":1}`,
			wantIncident: `{"data":{"incidentStatus":"unresolved"},"filter":{"ids":` + ids + `}}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			c.answer("POST /cloud-detection/alerts/analyst-verdict", 200, `{"data":{"affected":`+itoa(tc.verdict)+`}}`)
			c.answer("POST /cloud-detection/alerts/incident", 200, `{"data":{"affected":`+itoa(tc.status)+`}}`)
			b := mustRun(t, c.env(), ActionAlertsUpdate, tc.data, nil)
			if string(b) != tc.want {
				t.Errorf("reply %s, want %s", b, tc.want)
			}
			var order []string
			for _, cl := range c.Calls() {
				order = append(order, cl.Path)
				want := tc.wantIncident
				if strings.HasSuffix(cl.Path, "analyst-verdict") {
					want = tc.wantVerdict
				}
				if !sameJSON(t, cl.Body, []byte(want)) {
					t.Errorf("%s body %s, want %s", cl.Path, cl.Body, want)
				}
			}
			var wantOrder []string
			if tc.verdict >= 0 {
				wantOrder = append(wantOrder, "/cloud-detection/alerts/analyst-verdict")
			}
			if tc.status >= 0 {
				wantOrder = append(wantOrder, "/cloud-detection/alerts/incident")
			}
			if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
				t.Errorf("calls %v, want %v", order, wantOrder)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(max(n, 0)) }

// TestAlertsUpdatePartialFailure: the verdict was set, the status call
// failed; the error's details say what was applied.
func TestAlertsUpdatePartialFailure(t *testing.T) {
	c := newConsole(t)
	c.answer("POST /cloud-detection/alerts/analyst-verdict", 200, `{"data":{"affected":2}}`)
	c.answer("POST /cloud-detection/alerts/incident", 403, `{"errors":[{"code":4030010,"title":"Forbidden","detail":"Missing permission Custom Alerts.updateIncidentStatus"}]}`)
	_, err := run(t, c.env(), ActionAlertsUpdate, `{"alertIds":["`+id(1)+`","`+id(2)+`"],"analystVerdict":"true_positive","incidentStatus":"resolved"}`)
	if err == nil || err.Code != CodeUpstream || err.UpstreamStatus != 403 || err.Retryable {
		t.Fatalf("err %+v", err)
	}
	want := `{"applied":{"analystVerdict":"true_positive","verdictAffected":2},"failed":"incidentStatus","upstream":{"operation":"POST /cloud-detection/alerts/incident","requestId":"rqid-2","upstreamCode":4030010,"attempts":1}}`
	if got := asJSON(err.Details); got != want {
		t.Errorf("details %s\nwant    %s", got, want)
	}
	for _, part := range []string{"analystVerdict true_positive was set (2 alerts affected)", "incidentStatus failed", "permission"} {
		if !strings.Contains(err.Message, part) {
			t.Errorf("message %q lacks %q", err.Message, part)
		}
	}
	// What the caller receives.
	if d := err.Data(); asJSON(d.Details) != want {
		t.Errorf("error data details %s", asJSON(d.Details))
	}
}

// TestAlertsUpdateFirstFails: nothing applied, no second call.
func TestAlertsUpdateFirstFails(t *testing.T) {
	c := newConsole(t)
	c.answer("POST /cloud-detection/alerts/analyst-verdict", 500, `Server could not process the request.`)
	_, err := run(t, c.env(), ActionAlertsUpdate, `{"alertIds":["`+id(1)+`"],"analystVerdict":"true_positive","incidentStatus":"resolved"}`)
	if err == nil || err.Code != CodeUpstream || !err.Retryable {
		t.Fatalf("err %+v", err)
	}
	if _, partial := err.Details.(*PartialDetails); partial {
		t.Errorf("details %s: nothing was applied", asJSON(err.Details))
	}
	if n := len(c.Calls()); n != 1 {
		t.Errorf("%d calls", n)
	}
}
