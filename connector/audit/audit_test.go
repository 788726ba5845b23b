package audit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/s1bridge/s1bridge/handlers"
)

// TestRequestData: the request data of a record is a JSON object with every
// secret redacted, whatever the caller sent.
func TestRequestData(t *testing.T) {
	fetch, _ := handlers.Lookup(handlers.ActionThreatsFetchFile)
	disc, _ := handlers.Lookup(handlers.ActionAgentsDisconnect)
	const pw = "Zip-Pass-2024!x9"
	for _, tc := range []struct {
		name string
		a    handlers.Action
		raw  string
		want string
	}{
		{"empty", disc, "", `{}`},
		{"null", disc, "null", `{}`},
		{"as sent", disc, `{"agentIds":["1"]}`, `{"agentIds":["1"]}`},
		{"password", fetch, `{"threatIds":["1"],"password":"` + pw + `"}`, `{"password":"[REDACTED]","threatIds":["1"]}`},
		{"password in another case", fetch, `{"threatIds":["1"],"Password":"` + pw + `"}`, `{"Password":"[REDACTED]","threatIds":["1"]}`},
		{"not an object", disc, `["x"]`, `{"unreadable":"[\"x\"]"}`},
		{"not JSON", disc, `{"agentIds":`, `{"unreadable":"{\"agentIds\":"}`},
		{"not JSON, with a secret", fetch, `{"password":"` + pw + `",`, `{"unreadable":"[REDACTED]"}`},
	} {
		got := requestData(tc.a, []byte(tc.raw))
		if string(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if strings.Contains(string(got), pw) {
			t.Errorf("%s: the password is in %s", tc.name, got)
		}
	}
	long := requestData(disc, []byte(`{"x":"`+strings.Repeat("a", 5000)))
	var v struct{ Unreadable string }
	if json.Unmarshal(long, &v) != nil || len(v.Unreadable) > maxMessage+len("…") {
		t.Errorf("unreadable data kept at %d bytes", len(v.Unreadable))
	}
}

// TestOutcome: the outcome reads affected and trackingId from a reply when
// it has them, and is null otherwise; an error gives its code and message.
func TestOutcome(t *testing.T) {
	o := outcome([]byte(`{"affected":3,"trackingId":"abc","subject":"s1.main.event.action.abc.*"}`), nil)
	if o.Code != 200 || o.Affected == nil || *o.Affected != 3 || o.TrackingID == nil || *o.TrackingID != "abc" {
		t.Errorf("tracked reply: %+v", o)
	}
	o = outcome([]byte(`{"items":[],"alreadyPresent":["linux"]}`), nil)
	if o.Affected != nil || o.TrackingID != nil {
		t.Errorf("reply without them: %+v", o)
	}
	o = outcome(nil, handlers.Errorf(handlers.CodeUpstream, "%s", strings.Repeat("é", 1000)))
	if o.Code != 502 || len(o.Message) > maxMessage+len("…") || !strings.HasSuffix(o.Message, "…") {
		t.Errorf("error outcome: code %d, message of %d bytes", o.Code, len(o.Message))
	}
}
