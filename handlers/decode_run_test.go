package handlers

import (
	"context"
	"strings"
	"testing"
)

// TestDecodeThenRun: Decode checks a request completely without calling
// SentinelOne (what the audit's requested record relies on), Run then does
// the work, and a request Decode did not make for the action is a 500, not
// a call.
func TestDecodeThenRun(t *testing.T) {
	c := newConsole(t)
	c.answer("POST /agents/actions/disconnect", 200, `{"data":{"affected":1}}`)
	env := c.env()
	a, _ := Lookup(ActionAgentsDisconnect)

	for _, bad := range []struct{ data, field string }{
		{`{"agentIds":[]}`, "agentIds"},
		{`{"agentIds":["1"],"bogus":1}`, "bogus"},
		{`{"agentIds":["` + strings.Repeat(`1234567890123456789","`, 100) + `1234567890123456789"]}`, "max_targets"},
	} {
		if _, err := a.Decode(env, []byte(bad.data)); err == nil || AsError(err).Code != CodeInvalid || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("Decode(%.60s): %v, want a 400 naming %s", bad.data, err, bad.field)
		}
	}
	if n := len(c.Calls()); n != 0 {
		t.Fatalf("Decode called SentinelOne %d times", n)
	}

	req, err := a.Decode(env, []byte(`{"agentIds":["1555480684406604929"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := req.(*AgentsActionRequest); !ok {
		t.Fatalf("Decode returned %T", req)
	}
	if n := len(c.Calls()); n != 0 {
		t.Fatalf("Decode called SentinelOne %d times", n)
	}
	out, err := a.Run(context.Background(), env, req)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := out.(*TrackedReply); !ok || r.Affected != 1 || r.TrackingID != "" {
		t.Errorf("Run replied %#v", out)
	}
	if n := len(c.callsTo("POST /agents/actions/disconnect")); n != 1 {
		t.Errorf("Run made %d disconnect calls, want 1", n)
	}

	other, _ := Lookup(ActionThreatsMitigate)
	wrong, err := other.Decode(env, []byte(`{"threatIds":["1555480684406604929"],"action":"kill"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []any{wrong, nil, AgentsActionRequest{AgentIDs: []string{"1"}}} {
		if _, err := a.Run(context.Background(), env, r); AsError(err).Code != CodeInternal {
			t.Errorf("Run(%T): %v, want a 500", r, err)
		}
	}
	if n := len(c.Calls()); n != 1 {
		t.Errorf("a request of another type reached SentinelOne: %d calls", n)
	}

	// Dry run: Run answers without calling.
	dry := *env
	dry.DryRun = true
	out, err = a.Run(context.Background(), &dry, req)
	if d, ok := out.(*DryRunReply); err != nil || !ok || !d.DryRun {
		t.Errorf("dry Run: %#v, %v", out, err)
	}
	if n := len(c.Calls()); n != 1 {
		t.Errorf("a dry run reached SentinelOne")
	}
}
