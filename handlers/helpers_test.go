package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// The SentinelOne emulator (package emulator) did not build while these
// tests were written, so they run the handlers against console, an
// httptest server that answers with bodies modelled on
// /work/shared/sentinelone/fixtures and records every call.

// testToken is recognisable so that tests can look for it in messages.
const testToken = "tok-SECRET-handlers-7f3a9c"

// apiPrefix is the path prefix of every SentinelOne call.
const apiPrefix = sentinelone.APIPrefix

// call is one request the test console received. Path is relative to
// apiPrefix.
type call struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
}

// route answers one "METHOD /path" of the test console.
type route func(w http.ResponseWriter, r *http.Request, c call)

// console is a test SentinelOne console: routes by "METHOD /path" (path
// relative to apiPrefix), token check, X-RQID on every answer, and a log of
// the calls. An unknown route answers the router's plain-text 404.
type console struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]route
	calls  []call
	rqids  int
}

func newConsole(t testing.TB) *console {
	t.Helper()
	c := &console{t: t, routes: map[string]route{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *console) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	cl := call{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, apiPrefix), Query: r.URL.Query(), Body: body}
	c.mu.Lock()
	c.calls = append(c.calls, cl)
	c.rqids++
	rqid := fmt.Sprintf("rqid-%d", c.rqids)
	h := c.routes[cl.Method+" "+cl.Path]
	c.mu.Unlock()
	w.Header().Set(sentinelone.HeaderRequestID, rqid)
	if r.Header.Get("Authorization") != "ApiToken "+testToken {
		writeJSON(w, http.StatusUnauthorized, `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":null}]}`)
		return
	}
	if h == nil {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "404 page not found")
		return
	}
	h(w, r, cl)
}

// handle sets the answer of "METHOD /path".
func (c *console) handle(methodPath string, h route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routes[methodPath] = h
}

// answer makes "METHOD /path" always answer status with body.
func (c *console) answer(methodPath string, status int, body string) {
	c.handle(methodPath, func(w http.ResponseWriter, _ *http.Request, _ call) { writeJSON(w, status, body) })
}

// Calls returns the calls received so far.
func (c *console) Calls() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.calls...)
}

// callsTo returns the calls to "METHOD /path".
func (c *console) callsTo(methodPath string) []call {
	var out []call
	for _, cl := range c.Calls() {
		if cl.Method+" "+cl.Path == methodPath {
			out = append(out, cl)
		}
	}
	return out
}

// env returns an Env whose client talks to c with the token testToken,
// no retries (unless cfg says otherwise) and no effective rate limit.
func (c *console) env(mod ...func(*sentinelone.Config)) *Env {
	return envFor(c.t, c.srv.URL, mod...)
}

func envFor(t testing.TB, baseURL string, mod ...func(*sentinelone.Config)) *Env {
	t.Helper()
	cfg := sentinelone.Config{
		BaseURL: baseURL, Token: testToken, Timeout: 5 * time.Second, RetryMax: -1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, RatePerSecond: 1e6, RateBurst: 1e6,
	}
	for _, m := range mod {
		m(&cfg)
	}
	client, err := sentinelone.New(cfg)
	if err != nil {
		t.Fatalf("sentinelone.New: %v", err)
	}
	return &Env{Console: "main", Client: client, Logger: slog.New(slog.DiscardHandler)}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// run sends data to the action name through Action.Handle, as the connector
// does, and returns the reply encoded as the connector encodes it.
func run(t testing.TB, env *Env, name, data string) ([]byte, *Error) {
	t.Helper()
	a, ok := Lookup(name)
	if !ok {
		t.Fatalf("no action %q", name)
	}
	out, err := a.Handle(context.Background(), env, []byte(data))
	if err != nil {
		return nil, AsError(err)
	}
	// Encode as the connector does.
	if a, ok := out.(Appender); ok {
		b := a.AppendJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("%s: AppendJSON wrote invalid JSON: %s", name, b)
		}
		return b, nil
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		t.Fatalf("%s: encoding reply: %v", name, merr)
	}
	return b, nil
}

// mustRun is run for a request that must succeed; it decodes the reply
// into v.
func mustRun(t testing.TB, env *Env, name, data string, v any) []byte {
	t.Helper()
	b, err := run(t, env, name, data)
	if err != nil {
		t.Fatalf("%s %s: %v", name, data, err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: decoding reply %s: %v", name, b, err)
		}
	}
	return b
}

// listResult is a list reply as a caller decodes it.
type listResult struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"nextCursor"`
	TotalItems int               `json:"totalItems"`
	Truncated  bool              `json:"truncated"`
	AllSites   json.RawMessage   `json:"allSites"`
}

// ids returns the "id" member of each item.
func (l listResult) ids(t testing.TB) []string {
	t.Helper()
	out := make([]string, len(l.Items))
	for i, it := range l.Items {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(it, &v); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		out[i] = v.ID
	}
	return out
}

// collection serves a list from items: limit (default 10) and an opaque
// cursor that encodes the offset, like the console's base64 position
// markers; wrap, when set, builds the data member (sites wrap the array).
type collection struct {
	items []string
	wrap  func(items string) string
}

func cursorAt(off int) string {
	return base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(off)))
}

func offsetOf(cursor string) (int, bool) {
	b, err := base64.StdEncoding.DecodeString(cursor)
	if err != nil || !bytes.HasPrefix(b, []byte("offset:")) {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[len("offset:"):]))
	return n, err == nil
}

func (c collection) route(w http.ResponseWriter, _ *http.Request, cl call) {
	limit := 10
	if s := cl.Query.Get("limit"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	off := 0
	if cur := cl.Query.Get("cursor"); cur != "" {
		var ok bool
		if off, ok = offsetOf(cur); !ok {
			writeJSON(w, http.StatusBadRequest, `{"errors":[{"code":4000010,"title":"Validation JSONError","detail":"Invalid cursor value received"}]}`)
			return
		}
	}
	end := min(off+limit, len(c.items))
	next := "null"
	if end < len(c.items) {
		next = strconv.Quote(cursorAt(end))
	}
	data := "[" + strings.Join(c.items[min(off, end):end], ",") + "]"
	if c.wrap != nil {
		data = c.wrap(data)
	}
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"data":%s,"pagination":{"nextCursor":%s,"totalItems":%d}}`, data, next, len(c.items)))
}

// threatJSON is a v2.1 threat modelled on xsoar_threats_get_v2.1.json,
// with extra bytes of padding in its file path.
func threatJSON(id string, pad int) string {
	return fmt.Sprintf(`{"id": "%s", "threatInfo": {"threatId": "%s", "threatName": "invoice.exe", "sha1": "ddd5030a3d029f3845fc1052419829f08f312240",
  "classification": "Malware", "confidenceLevel": "malicious", "incidentStatus": "unresolved", "analystVerdict": "undefined",
  "mitigationStatus": "mitigated", "createdAt": "2024-05-01T08:12:09.481223Z", "updatedAt": "2024-05-01T08:12:10.002311Z",
  "filePath": "\\Device\\HarddiskVolume3\\%s<x>.exe", "detectionEngines": [{"key": "sentinelone_cloud", "title": "SentinelOne Cloud"}]},
 "agentRealtimeInfo": {"agentId": "1559342436290084702", "agentComputerName": "FIN-LT-042", "siteId": "1286405255257023125"},
 "mitigationStatus": [{"action": "kill", "status": "success"}], "indicators": []}`, id, id, strings.Repeat("a", pad))
}

// agentJSON is an agent modelled on r7_agents_get_single.json.
func agentJSON(id, externalIP string, inet, inet6 []string) string {
	q := func(ss []string) string {
		b, _ := json.Marshal(ss)
		if ss == nil {
			return "[]"
		}
		return string(b)
	}
	return fmt.Sprintf(`{"id":"%s","uuid":"f431b0a1a8744d2a8a92fc88fa3c13bc","computerName":"host-%s","networkStatus":"connected",
"isActive":true,"osType":"windows","externalIp":"%s","networkInterfaces":[{"id":"1559342436298473311","name":"Ethernet0",
"physical":"00:50:56:aa:bb:cc","inet":%s,"inet6":%s}],"siteId":"1286405255257023125","updatedAt":"2024-05-01T08:10:01.000000Z"}`,
		id, id, externalIP, q(inet), q(inet6))
}

// restrictionJSON is a blocklist entry modelled on r7_restrictions_get.json.
func restrictionJSON(id, hash, osType string) string {
	return fmt.Sprintf(`{"id":"%s","value":"%s","type":"black_hash","osType":"%s","description":"SOAR block","source":"user",
"scopeName":"Global","scope":{"tenant":true},"createdAt":"2024-05-01T10:00:00.123456Z","updatedAt":"2024-05-01T10:00:00.123456Z"}`, id, hash, osType)
}

// id returns the n-th test id: 19 digits, above the 1e17 minimum.
func id(n int) string { return strconv.FormatInt(1900000000000000000+int64(n), 10) }

// compact returns s without insignificant whitespace, for comparing JSON.
func compact(t testing.TB, s []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, s); err != nil {
		t.Fatalf("compact %s: %v", s, err)
	}
	return b.String()
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// body decodes a recorded JSON body.
func body(t testing.TB, c call) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(c.Body, &v); err != nil {
		t.Fatalf("%s %s body %q: %v", c.Method, c.Path, c.Body, err)
	}
	return v
}

// asJSON encodes v for comparisons in messages.
func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// cloneWith returns a copy of q with k set to v; a recorded query is left
// as it was sent.
func cloneWith(q url.Values, k, v string) url.Values {
	c := url.Values{}
	for key, vs := range q {
		c[key] = append([]string(nil), vs...)
	}
	c.Set(k, v)
	return c
}
