package idempotency

import (
	"testing"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/handlers"
)

// TestDigest: what "the same data" means. Members in another order, other
// white space, another spelling of one string, empty data for {}: the
// same request. Another value, another number literal, another type or
// action: another request.
func TestDigest(t *testing.T) {
	req := func(action, typ, data string) *middleware.Request {
		return &middleware.Request{Action: handlers.Action{Name: action}, Event: ce.Event{Type: typ, Data: []byte(data)}}
	}
	const typ = "s1bridge.agents.disconnect.request"
	base := digestOf(req("agents.disconnect", typ, `{"agentIds":["1","2"],"note":"A"}`))
	for _, same := range []string{
		`{"note":"A","agentIds":["1","2"]}`,
		" {\n  \"agentIds\" : [ \"1\" , \"2\" ] ,\t\"note\":\"A\" }\n",
		`{"agentIds":["1","2"],"note":"\u0041"}`,
	} {
		if d := digestOf(req("agents.disconnect", typ, same)); d != base {
			t.Errorf("%s: another digest than the same data", same)
		}
	}
	for _, tc := range []struct{ action, typ, data string }{
		{"agents.disconnect", typ, `{"agentIds":["2","1"],"note":"A"}`},
		{"agents.disconnect", typ, `{"agentIds":["1","2"],"note":"a"}`},
		{"agents.disconnect", typ, `{"agentIds":["1","2"]}`},
		{"agents.disconnect", "com.example.isolate", `{"agentIds":["1","2"],"note":"A"}`},
		{"agents.connect", typ, `{"agentIds":["1","2"],"note":"A"}`},
	} {
		if d := digestOf(req(tc.action, tc.typ, tc.data)); d == base {
			t.Errorf("%+v: the digest of another request", tc)
		}
	}
	for _, empty := range []string{"", " ", "null", "{}", "{ }"} {
		if a, b := digestOf(req("x.y", typ, empty)), digestOf(req("x.y", typ, "{}")); a != b {
			t.Errorf("%q is not the same data as {}", empty)
		}
	}
	if a, b := digestOf(req("x.y", typ, `{"limit":1}`)), digestOf(req("x.y", typ, `{"limit":1.0}`)); a == b {
		t.Error("number literals 1 and 1.0 digest alike (kept as written)")
	}
}

// TestFinal: what is stored and replayed.
func TestFinal(t *testing.T) {
	for code, want := range map[int]bool{
		200: true, 400: true, 403: true, 404: true, 409: true, 413: true,
		408: false, 429: false, 500: false, 502: false, 503: false, 504: false,
	} {
		if got := final(code); got != want {
			t.Errorf("final(%d) = %t, want %t", code, got, want)
		}
	}
}
