package schema_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// These tests hold the schemas to the running system: a connector on a
// real NATS server, over the emulator. Every request they send validates,
// every reply and event they receive validates.

// validRequests returns a request of every action that the emulator
// answers with a success.
func validRequests(ids emulator.IDs) map[string]string {
	q := func(s string) string { return `"` + s + `"` }
	uam := emulator.UAMSeedIDs()
	return map[string]string{
		"hash.reputation":   `{"hash":"` + emulator.HashMalicious + `"}`,
		"blocklist.add":     `{"hash":"` + emulator.HashClean + `","osTypes":["linux"],"description":"schema test"}`,
		"blocklist.list":    `{"limit":5}`,
		"blocklist.delete":  `{"ids":[` + q(ids.Restrictions[0]) + `]}`,
		"threats.list":      `{"limit":3,"incidentStatuses":["unresolved","in_progress"],"sortBy":"updatedAt"}`,
		"threats.update":    `{"threatIds":[` + q(ids.Threats[1]) + `],"analystVerdict":"true_positive"}`,
		"groups.list":       `{"limit":3}`,
		"agents.list":       `{"limit":2,"osTypes":["windows","linux"]}`,
		"agents.connect":    `{"agentIds":[` + q(ids.Agents[0]) + `]}`,
		"agents.disconnect": `{"agentIds":[` + q(ids.Agents[1]) + `]}`,
		"sites.list":        `{"limit":2}`,
		"activities.list":   `{"limit":3}`,
		"alerts.list":       `{"limit":3,"severities":["high","critical","low","medium","info"]}`,
		"alerts.update":     `{"alertIds":[` + q(ids.Alerts[0]) + `],"analystVerdict":"false_positive","incidentStatus":"resolved"}`,
		"threats.monitor":   `{"threatId":` + q(ids.Threats[2]) + `,"timeout":"1h","pollInterval":"5s"}`,
		"monitors.list":     `{}`,
		"monitors.cancel":   ``, // set from the threats.monitor reply
		"ingest.status":     ``,

		"uam.alerts.list":      `{"limit":5,"statuses":["new","in_progress"],"confidenceLevels":["malicious","suspicious","informational"],"sortBy":"updatedAt"}`,
		"uam.alerts.get":       `{"id":` + q(uam[0]) + `}`,
		"uam.alerts.update":    `{"alertIds":[` + q(uam[0]) + `],"status":"in_progress","analystVerdict":"true_positive_malware"}`,
		"uam.alerts.notes.add": `{"alertIds":[` + q(uam[0]) + `,` + q(uam[3]) + `],"text":"schema test"}`,

		"threats.mitigate":   `{"threatIds":[` + q(ids.Threats[3]) + `],"action":"quarantine"}`,
		"threats.notes.add":  `{"threatIds":[` + q(ids.Threats[3]) + `],"text":"schema test note"}`,
		"threats.notes.list": `{"threatId":` + q(ids.Threats[3]) + `}`,
		"threats.timeline":   `{"threatId":` + q(ids.Threats[3]) + `,"sortOrder":"asc","limit":20}`,
		"threats.fetch_file": `{"threatIds":[` + q(ids.Threats[3]) + `],"password":"Zip-Pass-2024!x9"}`,
		"agents.scan.start":  `{"agentIds":[` + q(ids.Agents[2]) + `]}`,
		"agents.scan.abort":  `{"agentIds":[` + q(ids.Agents[2]) + `]}`,
		"agents.count":       `{"osTypes":["windows"],"isActive":true}`,
	}
}

func call(t *testing.T, e *testenv.Env, action, data string) *connector.Reply {
	t.Helper()
	return e.Call(t, action, data)
}

// TestLiveRepliesAndEvents runs every action once against the emulator,
// validating each request and reply, then validates the events ingestion
// and the monitor published.
func TestLiveRepliesAndEvents(t *testing.T) {
	e := testenv.Start(t, testenv.IngestOn)
	reqs := validRequests(e.Emu.IDs())
	// The table and this test must name the same actions.
	var names []string
	for _, a := range schema.Actions() {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	if got := slices.Sorted(maps.Keys(reqs)); !slices.Equal(got, names) {
		t.Fatalf("requests for %v, actions %v", got, names)
	}
	var monitorID string
	order := append(slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "monitors.cancel" }), "monitors.cancel")
	for _, action := range order {
		data := reqs[action]
		if action == "monitors.cancel" {
			data = `{"monitorId":"` + monitorID + `"}`
		}
		if err := schema.ValidateRequest(action, []byte(data)); err != nil {
			t.Errorf("%s: the request the test sends does not validate: %v", action, err)
		}
		r := call(t, e, action, data)
		if r.Err != nil {
			t.Errorf("%s %s: error reply %d %s", action, data, r.Err.Code, r.Err.Message)
			if err := schema.ValidateError(r.Event.Data); err != nil {
				t.Errorf("%s: error data: %v", action, err)
			}
			continue
		}
		if r.Event.Type != subjects.ResponseType(action) {
			t.Errorf("%s: reply type %s", action, r.Event.Type)
		}
		if err := schema.ValidateReply(action, r.Event.Data); err != nil {
			t.Errorf("%s: reply does not validate: %v\n%s", action, err, r.Event.Data)
		}
		switch action {
		case "threats.monitor":
			var m struct{ MonitorID string }
			_ = json.Unmarshal(r.Event.Data, &m)
			monitorID = m.MonitorID
		case "ingest.status":
			// The schema's copy of the reply type lists exactly the
			// members the connector sends.
			var got map[string]any
			_ = json.Unmarshal(r.Event.Data, &got)
			s, _ := schema.ReplySchema(action)
			want := slices.Sorted(maps.Keys(s["properties"].(map[string]any)))
			if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
				t.Errorf("ingest.status sends %v, the schema lists %v", keys, want)
			}
		}
	}
	// An error reply validates as s1bridge.error data.
	r := call(t, e, "monitors.cancel", `{"monitorId":"`+monitorID+`"}`)
	if r.Err == nil || r.Err.Code != 404 {
		t.Fatalf("second cancel: %+v", r.Err)
	}
	if err := schema.ValidateError(r.Event.Data); err != nil {
		t.Errorf("error reply: %v", err)
	}

	// Events: ingestion publishes created and change events (threats.update
	// above changed a verdict), the cancel a monitor outcome.
	seen := map[string]int{}
	testenv.WaitFor(t, 20*time.Second, "created, verdict and monitor events", func() bool {
		for typ, n := range readEvents(t, e) {
			seen[typ] = n
		}
		return seen[subjects.TypeThreatCreated] > 0 && seen[subjects.TypeThreatVerdictChanged] > 0 &&
			seen[subjects.MonitorType(subjects.OutcomeCancelled)] > 0
	})
	t.Logf("events validated by type: %v", seen)
}

// readEvents reads the whole events stream, validates every event's data
// against the schema of its ce-type, and counts them by type.
func readEvents(t *testing.T, e *testenv.Env) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, e.Cfg.EventsStreamName(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			typ := testenv.CheckEvent(t, m.Subject(), m.Headers(), m.Data()).Type // schema.ValidateEvent
			if k, ok := events.ByType(typ); !ok || !strings.HasPrefix(m.Subject(), "s1.main.event.") {
				t.Errorf("event %s of unknown type %q (kind %s)", m.Subject(), typ, k.Name)
			}
			counts[typ]++
		}
		if n == 0 {
			break
		}
		left -= uint64(n)
	}
	return counts
}

// TestSchemaAgreesWithHandlers sends, for every enum of every request
// schema, each allowed value and one that is not, and checks that the
// schema and the running connector agree: a request the schema accepts is
// not answered 400, one it refuses is answered 400. Mutating actions run in
// dry-run mode, so they stop after validation.
func TestSchemaAgreesWithHandlers(t *testing.T) {
	e := testenv.Start(t, func(c *config.Config) { c.Service.DryRun = true })
	base := validRequests(e.Emu.IDs())
	base["monitors.cancel"] = `{"monitorId":"m1"}`
	base["ingest.status"] = `{}`
	type tc struct{ action, data string }
	var cases []tc
	for _, a := range schema.Actions() {
		s, err := schema.RequestSchema(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		var req map[string]any
		_ = json.Unmarshal([]byte(or(base[a.Name], "{}")), &req)
		props, _ := s["properties"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(props)) {
			p := props[name].(map[string]any)
			values, isList := enumOf(p)
			for _, v := range append(values, "not_a_value") {
				r := maps.Clone(req)
				if isList {
					r[name] = []any{v}
				} else {
					r[name] = v
				}
				if len(values) == 0 {
					break
				}
				b, _ := json.Marshal(r)
				cases = append(cases, tc{a.Name, string(b)})
			}
		}
		// An unknown member, and a value of the wrong JSON type.
		cases = append(cases, tc{a.Name, `{"unknownMember":1}`})
		for _, name := range slices.Sorted(maps.Keys(props)) {
			r := maps.Clone(req)
			r[name] = map[string]any{"nested": true}
			b, _ := json.Marshal(r)
			cases = append(cases, tc{a.Name, string(b)})
		}
	}
	cases = append(cases,
		tc{"agents.list", `{"limit":0}`}, tc{"agents.list", `{"limit":1}`}, tc{"agents.list", `{"limit":1000}`}, tc{"agents.list", `{"limit":1001}`},
		tc{"agents.list", `{"ids":["99999999999999999"]}`}, tc{"agents.list", `{"ids":["100000000000000000"]}`},
		tc{"agents.list", `{"query":"` + strings.Repeat("x", 4096) + `"}`}, tc{"agents.list", `{"query":"` + strings.Repeat("x", 4097) + `"}`},
		tc{"agents.list", `{"query":"tab\there"}`},
		tc{"threats.list", `{"classifications":[""]}`}, tc{"threats.list", `{"classifications":["Malware"]}`},
		tc{"threats.list", `{"createdAfter":"2024-05-01T08:00:00Z"}`}, tc{"threats.list", `{"createdAfter":"2024-05-01"}`},
		tc{"activities.list", `{"activityTypes":[0]}`}, tc{"activities.list", `{"activityTypes":[19]}`},
		tc{"agents.connect", `{"agentIds":[]}`}, tc{"agents.connect", `{}`},
		tc{"threats.update", `{"threatIds":["100000000000000000"]}`},
		tc{"blocklist.add", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"tenant":true}}`},
		tc{"blocklist.add", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{}}`},
		tc{"blocklist.add", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"siteIds":["100000000000000000"],"groupIds":["100000000000000000"]}}`},
		tc{"blocklist.add", `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","sha256":"abc"}`},
		tc{"blocklist.delete", `{}`}, tc{"blocklist.delete", `{"ids":["100000000000000000"],"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`},
		tc{"threats.monitor", `{"threatId":"100000000000000000","timeout":"90m"}`}, tc{"threats.monitor", `{"threatId":"100000000000000000","timeout":"an hour"}`},
		tc{"monitors.cancel", `{"monitorId":"a.b"}`}, tc{"monitors.cancel", `{"monitorId":"` + strings.Repeat("m", 65) + `"}`},
	)
	// The members whose rules are more than an enum: note texts, the
	// fetch-file password, Unified Alerts ids.
	tid, uid := e.Emu.IDs().Threats[0], emulator.UAMSeedIDs()[0]
	for _, text := range []string{"x", "ok", "  ", " \n ", "line one\nline two\ttabbed", "bell\u0007", "nul\u0000", "\u0085next", strings.Repeat("n", 4096), strings.Repeat("n", 4097), "é"} {
		cases = append(cases,
			tc{"threats.notes.add", `{"threatIds":["` + tid + `"],"text":"` + text + `"}`},
			tc{"uam.alerts.notes.add", `{"alertIds":["` + uid + `"],"text":"` + text + `"}`})
	}
	for _, pw := range []string{"Zip-Pass-2024!x9", "Short1!a", "alllowercase1!", "ALLUPPER1!XX", "NoDigits!!xx", "NoSymbol12ab", "With Space1!a", "Tab\tbed1!aaa", "Ünïcödé-Pass-1", "Pass-密码-2024a", strings.Repeat("Aa1!", 64), strings.Repeat("Aa1!", 65)} {
		cases = append(cases, tc{"threats.fetch_file", `{"threatIds":["` + tid + `"],"password":"` + pw + `"}`})
	}
	cases = append(cases,
		tc{"uam.alerts.get", `{"id":"not-a-uuid"}`}, tc{"uam.alerts.get", `{"id":"` + strings.ToUpper(uid) + `"}`},
		tc{"uam.alerts.update", `{"alertIds":["` + uid + `","` + uid + `"],"status":"new"}`},
		tc{"uam.alerts.update", `{"alertIds":["` + uid + `"]}`}, tc{"uam.alerts.update", `{"alertIds":[],"status":"new"}`},
		tc{"uam.alerts.list", `{"detectedAfter":"2024-05-01T08:00:00Z","updatedBefore":"2030-01-01T00:00:00+02:00"}`},
		tc{"uam.alerts.list", `{"detectedAfter":"yesterday"}`},
		tc{"threats.timeline", `{"threatId":"` + tid + `","activityTypes":[0]}`}, tc{"threats.timeline", `{"threatId":"12"}`},
		tc{"threats.mitigate", `{"threatIds":["` + tid + `"],"action":"network_quarantine"}`},
		tc{"agents.scan.start", `{"agentIds":[]}`}, tc{"agents.count", `{"limit":5}`},
	)
	disagree := 0
	for _, c := range cases {
		schemaOK := schema.ValidateRequest(c.action, []byte(c.data)) == nil
		r := call(t, e, c.action, c.data)
		handlerOK := r.Err == nil || r.Err.Code != 400
		if schemaOK != handlerOK {
			disagree++
			msg := ""
			if r.Err != nil {
				msg = fmt.Sprintf("%d %s", r.Err.Code, r.Err.Message)
			}
			t.Errorf("%s %s: schema accepts %t, connector accepts %t (%s)", c.action, c.data, schemaOK, handlerOK, msg)
		}
	}
	t.Logf("%d requests, schema and connector disagree on %d", len(cases), disagree)
}

// enumOf returns the enum of a property, or of its items, and whether the
// property is a list.
func enumOf(p map[string]any) ([]any, bool) {
	if e, ok := p["enum"].([]any); ok {
		return e, false
	}
	if items, ok := p["items"].(map[string]any); ok {
		if e, ok := items["enum"].([]any); ok {
			return e, true
		}
	}
	return nil, false
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
