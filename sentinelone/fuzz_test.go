package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets of the client's response decoding. Seeds: every fixture
// under testdata/fixtures (real and peer-written console answers, identical
// to shared/sentinelone/fixtures) through f.Add, plus the files under
// testdata/fuzz/<target>/, which keep what runs found worth keeping.
//
//	go test -run '^$' -fuzz '^FuzzThreat$' ./sentinelone
//	go test -run '^$' -fuzz '^FuzzResponse$' ./sentinelone
//	go test -run '^$' -fuzz '^FuzzLenient$' ./sentinelone

// fuzzToken is the client's token in FuzzResponse; seeds hold it so that the
// fuzzer moves it around error bodies.
const fuzzToken = "tok-FUZZ-9d2b7e51"

// fixtureSeeds returns the fixtures' bodies by file name.
func fixtureSeeds(f *testing.F) map[string][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

// dataItems returns the elements of body's data array (or of data.sites),
// or nil when body has none.
func dataItems(body []byte) []json.RawMessage {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(env.Data, &items) == nil {
		return items
	}
	var sites struct {
		Sites []json.RawMessage `json:"sites"`
	}
	if json.Unmarshal(env.Data, &sites) == nil {
		return sites.Sites
	}
	if len(env.Data) > 0 {
		return []json.RawMessage{env.Data}
	}
	return nil
}

// FuzzThreat holds Threat's one-pass decoder against its two-pass fallback:
// for any object, UnmarshalJSON (one pass when it can, else the fallback)
// and unmarshalSlow alone must both refuse it or both give the same Threat.
// The fallback exists only to say why a threat is refused, so a difference
// means ingestion sees other statuses and timestamps than the reason path
// would. An accepted threat also keeps the console's bytes (Raw, written
// back by MarshalJSON) and normalised statuses; a v2.0 one (no threatInfo
// object) is refused with ErrThreatNotV21.
//
// Objects with a repeated member name are left out of the comparison: for a
// repeated "threatInfo", encoding/json merges both objects into the one-pass
// decoder's struct while the fallback's json.RawMessage keeps the last one.
// RFC 8259 leaves repeated names undefined and no console sends them; both
// decoders still must not panic on them.
func FuzzThreat(f *testing.F) {
	for name, body := range fixtureSeeds(f) {
		if strings.Contains(name, "threat") {
			for _, it := range dataItems(body) {
				f.Add([]byte(it))
			}
		}
	}
	f.Add([]byte(`{"id":"1","threatInfo":{"threatId":"2","incidentStatus":"In progress","analystVerdict":"TRUE_POSITIVE","mitigationStatus":"not_mitigated","createdAt":"2024-05-01T08:00:00","updatedAt":"None","detectionEngines":["sentinelone_cloud",{"key":"k","title":"t"}]},"agentRealtimeInfo":{"agentId":1234567890123456789,"siteId":null}}`))
	f.Add([]byte(`{"threatInfo":null}`))
	f.Add([]byte(`{"threatInfo":[]}`))
	f.Add([]byte(`{"threatInfo":{"createdAt":12}}`))
	f.Add([]byte(`{"threatInfo":{"threatName":"a"},"threatInfo":{}}`))
	f.Add([]byte(`{"ThreatInfo":{"incidentStatus":"resolved"},"id":1.5e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Threat
		err := got.UnmarshalJSON(data)
		var slow Threat
		serr := slow.unmarshalSlow(data)
		if err != nil {
			if serr == nil && !hasRepeatedNames(data) {
				t.Fatalf("UnmarshalJSON refuses (%v), the fallback accepts: %+v\n%s", err, slow, data)
			}
			return
		}
		if serr != nil {
			if !hasRepeatedNames(data) {
				t.Fatalf("one pass accepts, the fallback refuses: %v\n%s", serr, data)
			}
		} else if !reflect.DeepEqual(got, slow) && !hasRepeatedNames(data) {
			t.Fatalf("one pass and fallback differ:\none pass %+v\nfallback %+v\n%s", got, slow, data)
		}
		if !bytes.Equal(got.Raw, data) {
			t.Fatalf("Raw = %s, want the input %s", got.Raw, data)
		}
		if m, _ := got.MarshalJSON(); !bytes.Equal(m, data) {
			t.Fatalf("MarshalJSON = %s, want the input", m)
		}
		for _, s := range []string{got.IncidentStatus, got.AnalystVerdict, got.MitigationStatus} {
			if LowerSnake(s) != s {
				t.Fatalf("status %q is not normalised", s)
			}
		}
		for _, tm := range []time.Time{got.CreatedAt, got.UpdatedAt, got.IdentifiedAt} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("time %v is not UTC", tm)
			}
		}
	})
}

// hasRepeatedNames reports whether a JSON object in data, at any depth,
// names a member twice, ignoring case as encoding/json does when it matches
// names to struct fields.
func hasRepeatedNames(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj   bool
		key   bool // the next token of this object is a key
		names map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if s, ok := tok.(string); ok {
				k := strings.ToLower(s)
				if top.names[k] {
					return true
				}
				top.names[k] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.obj {
				top.key = true
			}
			stack = append(stack, &frame{obj: true, key: true, names: map[string]bool{}})
			continue
		case json.Delim('['):
			if top != nil && top.obj {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

// Operations FuzzResponse sends, by its op argument.
const (
	opThreats = iota
	opAgents
	opAlerts
	opGroups
	opSites
	opActivities
	opRestrictions
	opActivityTypes
	opSystemInfo
	opHashVerdict
	opThreatIncident
	opAgentsConnect
	nOps
)

// Statuses FuzzResponse answers with, by its status argument.
var fuzzStatuses = []int{200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503, 302}

// fixtureOp says which operation reads each fixture.
var fixtureOp = map[string]int{
	"r7_action_affected.json":             opAgentsConnect,
	"r7_activities_get_page1_cursor.json": opActivities,
	"r7_activities_types.json":            opActivityTypes,
	"r7_agents_get_single.json":           opAgents,
	"r7_restrictions_get.json":            opRestrictions,
	"r7_threats_get_v2.0_flat.json":       opThreats,
	"swimlane_groups_get.json":            opGroups,
	"swimlane_sites_get.json":             opSites,
	"xsoar_activities_get.json":           opActivities,
	"xsoar_agents_get_data_array.json":    opAgents,
	"xsoar_alerts_get.json":               opAlerts,
	"xsoar_threats_get_v2.1.json":         opThreats,
}

// cannedConsole answers every request with one status and body.
type cannedConsole struct {
	status int
	body   []byte
}

func (c *cannedConsole) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: c.status,
		Header:     http.Header{"Content-Type": []string{"application/json"}, HeaderRequestID: []string{"rqid-fuzz"}},
		Body:       io.NopCloser(bytes.NewReader(c.body)),
		Request:    r,
	}, nil
}

// FuzzResponse runs the client's operations against a console answering
// with status and body, through the whole client (retryablehttp, the
// attempt transport, the error mapping) with retries off.
//
// Properties: nothing panics. A 2xx answer either decodes or gives an error
// matching ErrMalformedResponse. A decoded list page holds, in order, the
// console's bytes of every item of data (Raw), its cursor normalised (never
// "null", never padded), and equals what the two-pass path (listEnvelope,
// pageFrom) makes of the same body: the one-pass decodePage must not read a
// page differently from the path it falls back to. Any other status gives an
// *APIError with that status, matching the sentinel of its status, whose
// kept body text is bounded. No error ever carries the API token.
func FuzzResponse(f *testing.F) {
	for name, body := range fixtureSeeds(f) {
		op, ok := fixtureOp[name]
		if !ok {
			f.Fatalf("fixture %s has no operation in fixtureOp", name)
		}
		f.Add(uint8(op), uint8(0), body)
	}
	for op := range nOps {
		f.Add(uint8(op), uint8(0), []byte(`{"data":[],"pagination":{"nextCursor":"null","totalItems":0}}`))
	}
	f.Add(uint8(opThreats), uint8(0), []byte(`{"data":null,"pagination":{"nextCursor":" YWJj ","totalItems":"7"}}`))
	f.Add(uint8(opAgents), uint8(0), []byte(`{"data":{"id":"1"},"pagination":{"nextCursor":12}}`))
	f.Add(uint8(opSites), uint8(0), []byte(`{"data":{"allSites":{"activeLicenses":3},"sites":null},"pagination":{"nextCursor":null}}`))
	f.Add(uint8(opGroups), uint8(0), []byte(`{"data":[{"id":1,"rank":"4","totalAgents":"x"}]}`))
	f.Add(uint8(opHashVerdict), uint8(0), []byte(`{"data":{"verdict":" MALICIOUS "}}`))
	f.Add(uint8(opHashVerdict), uint8(8), []byte(`{"errors":[{"code":4040010,"title":"Not Found","detail":null}]}`))
	f.Add(uint8(opThreatIncident), uint8(0), []byte(`{"data":{"affected":2,"details":[{"id":"1"}]}}`))
	f.Add(uint8(opThreats), uint8(5), []byte(`{"errors":[{"code":"4000010","title":"Validation Error","detail":"token `+fuzzToken+` refused"}]}`))
	f.Add(uint8(opAgents), uint8(6), []byte(`{"errors":[{"code":4010010,"title":"Authentication Failed: `+fuzzToken+`","detail":null}]}`))
	f.Add(uint8(opAlerts), uint8(10), []byte(`<html><head><title>429 Too Many Requests `+fuzzToken+`</title></head><body>nginx</body></html>`))
	f.Add(uint8(opGroups), uint8(11), []byte("upstream \t connect error or disconnect/reset before headers. "+fuzzToken+" reset reason: overflow"))
	f.Add(uint8(opSites), uint8(12), []byte(`{"errors":[]}`))
	f.Add(uint8(opActivities), uint8(13), []byte(strings.Repeat("é", 400)+fuzzToken))

	console := &cannedConsole{}
	c, err := New(Config{BaseURL: "https://console.invalid", Token: fuzzToken, RetryMax: -1, RatePerSecond: 1e9, RateBurst: 1 << 30},
		WithTransport(console))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op, statusIdx uint8, body []byte) {
		var err error
		console.status = fuzzStatuses[int(statusIdx)%len(fuzzStatuses)]
		console.body = body
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var check func(t *testing.T) // what a decoded answer must hold
		switch op % nOps {
		case opThreats:
			p, e := c.ListThreats(ctx, ThreatFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opAgents:
			p, e := c.ListAgents(ctx, AgentFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opAlerts:
			p, e := c.ListAlerts(ctx, AlertFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opGroups:
			p, e := c.ListGroups(ctx, GroupFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opSites:
			p, e := c.ListSites(ctx, SiteFilter{})
			err = e
			check = func(t *testing.T) {
				checkCursor(t, p.NextCursor)
				sameRaw(t, p.Items, dataItems(body), func(s *Site) json.RawMessage { return s.Raw })
			}
		case opActivities:
			p, e := c.ListActivities(ctx, ActivityFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opRestrictions:
			p, e := c.ListRestrictions(ctx, RestrictionFilter{})
			err, check = e, func(t *testing.T) { samePage(t, p, body) }
		case opActivityTypes:
			_, err = c.ActivityTypes(ctx)
		case opSystemInfo:
			_, err = c.SystemInfo(ctx)
		case opHashVerdict:
			var v *HashVerdict
			v, err = c.HashVerdict(ctx, "3395856ce81f2b7382dee72602f798b642f14140")
			check = func(t *testing.T) {
				// The verdict endpoint's value is passed on lower-cased.
				if v.Verdict == "" || v.Verdict != strings.ToLower(v.Verdict) {
					t.Fatalf("verdict %q is empty or not lower-cased", v.Verdict)
				}
				if v.Rank != nil && !v.Legacy {
					t.Fatalf("rank %d from the verdict endpoint", *v.Rank)
				}
			}
		case opThreatIncident:
			_, err = c.UpdateThreatIncident(ctx, []string{"1938475610293847561"}, "resolved", "")
		case opAgentsConnect:
			_, err = c.ConnectAgents(ctx, []string{"1559342436290084702"})
		}
		status := console.status
		if err != nil && strings.Contains(err.Error(), fuzzToken) {
			t.Fatalf("error carries the token: %v", err)
		}
		if status >= 200 && status <= 299 {
			if err != nil {
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("HTTP %d: error %v does not match ErrMalformedResponse", status, err)
				}
				return
			}
			if check != nil {
				check(t)
			}
			return
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("HTTP %d: error %v (%T) is not an *APIError", status, err, err)
		}
		if ae.StatusCode != status {
			t.Fatalf("APIError.StatusCode = %d, want %d", ae.StatusCode, status)
		}
		if s := statusSentinel(status); s != nil && !errors.Is(err, s) {
			t.Fatalf("HTTP %d: %v does not match %v", status, err, s)
		}
		if len(ae.Body) > errorTextLimit+len("…") {
			t.Fatalf("APIError.Body keeps %d bytes", len(ae.Body))
		}
		for _, s := range []string{ae.Title, ae.Detail, ae.Body} {
			if strings.Contains(s, fuzzToken) {
				t.Fatalf("APIError field carries the token: %q", s)
			}
		}
	})
}

// samePage checks a decoded list page against the body it came from.
func samePage[T any](t *testing.T, p *Page[T], body []byte) {
	t.Helper()
	checkCursor(t, p.NextCursor)
	var env listEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("page decoded from a body the envelope cannot read: %v", err)
	}
	two, err := pageFrom[T](env, env.Data)
	if err != nil {
		if !hasRepeatedNames(body) {
			t.Fatalf("one pass decodes the page, the two-pass path refuses it: %v\n%s", err, body)
		}
		return
	}
	if two.Items == nil {
		two.Items = []T{}
	}
	one := *p
	if one.Items == nil {
		one.Items = []T{}
	}
	if !reflect.DeepEqual(&one, two) && !hasRepeatedNames(body) {
		t.Fatalf("one pass and two-pass pages differ:\none pass %+v\ntwo-pass %+v\n%s", one, *two, body)
	}
	sameRaw(t, p.Items, dataItems(body), func(it *T) json.RawMessage {
		return reflect.ValueOf(it).Elem().FieldByName("Raw").Bytes()
	})
}

// sameRaw checks that items keep, in order, the console's bytes.
func sameRaw[T any](t *testing.T, items []T, want []json.RawMessage, raw func(*T) json.RawMessage) {
	t.Helper()
	if len(items) != len(want) {
		return // data was null, or not what dataItems reads: nothing to compare
	}
	for i := range items {
		if got := raw(&items[i]); !bytes.Equal(got, want[i]) {
			t.Fatalf("item %d Raw = %s, console sent %s", i, got, want[i])
		}
	}
}

// checkCursor checks a normalised cursor.
func checkCursor(t *testing.T, c string) {
	t.Helper()
	if c == "null" || c != strings.TrimSpace(c) {
		t.Fatalf("NextCursor %q is not normalised", c)
	}
}

// FuzzLenient feeds one JSON value to each lenient decoder, through
// encoding/json as the client does. Each must refuse with an error or
// decode to what the value says: an ID keeps a number's digits verbatim
// (never through float64); a Time is UTC and writes back (MarshalJSON) to
// the same instant; a Bool, an integer and a cursor come back from their
// own encoding unchanged; nothing panics.
func FuzzLenient(f *testing.F) {
	for _, s := range []string{
		`"1938475610293847561"`, `1938475610293847561`, `12345678901234567890123`, `-0`, `1e3`, `null`, `true`, `"True"`, `" FALSE "`,
		`"2024-05-01T08:00:00.123456Z"`, `"2024-05-01T08:00:00+02:00"`, `"2024-05-01T08:00:00"`, `"None"`, `""`, `"9999-12-31T23:00:00-05:00"`,
		`"0000-01-01T00:30:00+01:00"`, `{"key":"k","title":"t"}`, `"sentinelone_cloud"`, `"42"`, `" 7 "`, `"null"`, `" YWJj "`, `[1]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		var id ID
		if err := json.Unmarshal(data, &id); err == nil {
			if v := bytes.TrimSpace(data); v[0] != '"' && !isNull(v) && string(id) != string(v) {
				t.Fatalf("ID from %s = %q, want the digits as sent", data, id)
			}
		}
		var tm Time
		if err := json.Unmarshal(data, &tm); err == nil && !tm.IsZero() {
			if tm.Location() != time.UTC {
				t.Fatalf("Time from %s is not UTC: %v", data, tm.Time)
			}
			out, err := tm.MarshalJSON()
			if err != nil {
				t.Fatalf("Time %v does not encode: %v", tm.Time, err)
			}
			var back Time
			if err := json.Unmarshal(out, &back); err != nil || !back.Equal(tm.Time) {
				t.Fatalf("Time from %s encodes as %s, which reads back as %v (%v)", data, out, back.Time, err)
			}
		}
		var b Bool
		if err := json.Unmarshal(data, &b); err == nil {
			enc, _ := json.Marshal(bool(b))
			var back Bool
			if json.Unmarshal(enc, &back) != nil || back != b {
				t.Fatalf("Bool %v does not read back", b)
			}
		}
		var n flexInt
		if err := json.Unmarshal(data, &n); err == nil && n.Valid {
			var back flexInt
			if json.Unmarshal([]byte(strconv.Itoa(n.V)), &back) != nil || back != n {
				t.Fatalf("integer %d from %s does not read back", n.V, data)
			}
		}
		var de DetectionEngine
		if err := json.Unmarshal(data, &de); err == nil && !utf8.Valid([]byte(de.Key+de.Title)) {
			t.Fatalf("detection engine %+v from %s is not UTF-8", de, data)
		}
		if valid {
			if c, err := normalizeCursor(data); err == nil {
				checkCursor(t, c)
			}
		}
		if s := string(data); utf8.ValidString(s) {
			if pt, err := ParseTime(s); err == nil && !pt.IsZero() {
				if back, err := ParseTime(pt.Format(time.RFC3339Nano)); err != nil || !back.Equal(pt) {
					t.Fatalf("ParseTime(%q) = %v, which does not read back (%v)", s, pt, err)
				}
			}
		}
	})
}
