package handlers

import (
	"testing"
)

func TestThreatsUpdate(t *testing.T) {
	details := `[{"threatId":"` + id(1) + `","result":"updated","analystVerdict":"updated"},{"threatId":"` + id(2) + `","result":"already_set"}]`
	cases := []struct {
		name, data, path, wantBody, want string
	}{
		{
			name:     "status and verdict in one incident call",
			data:     `{"threatIds":["` + id(1) + `","` + id(2) + `"],"incidentStatus":"resolved","analystVerdict":"true_positive"}`,
			path:     "POST /threats/incident",
			wantBody: `{"data":{"analystVerdict":"true_positive","incidentStatus":"resolved"},"filter":{"ids":["` + id(1) + `","` + id(2) + `"]}}`,
			want:     `{"affected":1,"details":` + details + `}`,
		},
		{
			name:     "status alone",
			data:     `{"threatIds":["` + id(1) + `"],"incidentStatus":"in_progress"}`,
			path:     "POST /threats/incident",
			wantBody: `{"data":{"incidentStatus":"in_progress"},"filter":{"ids":["` + id(1) + `"]}}`,
			want:     `{"affected":1,"details":` + details + `}`,
		},
		{
			name:     "verdict alone",
			data:     `{"threatIds":["` + id(1) + `"],"analystVerdict":"false_positive"}`,
			path:     "POST /threats/analyst-verdict",
			wantBody: `{"data":{"analystVerdict":"false_positive"},"filter":{"ids":["` + id(1) + `"]}}`,
			want:     `{"affected":1,"details":` + details + `}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			c.answer(tc.path, 200, `{"data":{"affected":1,"details":`+details+`},"errors":null}`)
			b := mustRun(t, c.env(), ActionThreatsUpdate, tc.data, nil)
			if !sameJSON(t, b, []byte(tc.want)) {
				t.Errorf("reply %s\nwant  %s", b, tc.want)
			}
			calls := c.Calls()
			if len(calls) != 1 || calls[0].Method+" "+calls[0].Path != tc.path {
				t.Fatalf("calls %+v, want one %s", calls, tc.path)
			}
			if !sameJSON(t, calls[0].Body, []byte(tc.wantBody)) {
				t.Errorf("body %s\nwant %s", calls[0].Body, tc.wantBody)
			}
		})
	}
}

func TestThreatsUpdateWithoutDetails(t *testing.T) {
	c := newConsole(t)
	c.answer("POST /threats/analyst-verdict", 200, `{"data":{"affected":0}}`)
	b := mustRun(t, c.env(), ActionThreatsUpdate, `{"threatIds":["`+id(1)+`"],"analystVerdict":"suspicious"}`, nil)
	if string(b) != `{"affected":0,"details":null}` {
		t.Errorf("reply %s", b)
	}
}
