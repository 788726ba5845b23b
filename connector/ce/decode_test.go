package ce

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// hdr builds a nats.Header from name, value pairs, keeping each name's case
// as given (nats.Header.Add would too, but a repeated name must stay two
// values of one key, which is what this does).
func hdr(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// binaryBase returns the four required binary headers followed by extra.
func binaryBase(extra ...string) nats.Header {
	return hdr(append([]string{
		"ce-specversion", "1.0",
		"ce-id", "req-1",
		"ce-source", "/cli/alice",
		"ce-type", "s1bridge.hash.reputation.request",
	}, extra...)...)
}

// without returns h without the named keys.
func without(h nats.Header, keys ...string) nats.Header {
	for _, k := range keys {
		delete(h, k)
	}
	return h
}

const structuredCT = "application/cloudevents+json"

func TestDecode(t *testing.T) {
	okTime := time.Date(2024, 5, 1, 8, 0, 0, 123000000, time.UTC)
	huge := strings.Repeat("a", 1<<20)
	hugeEncoded := strings.Repeat("%C3%A9", 1<<16)

	tests := []struct {
		name   string
		header nats.Header
		data   string
		// wantField is the FieldError.Field expected; "" means success.
		wantField  string
		wantReason string // substring of the reason, when set
		check      func(t *testing.T, ev Event)
	}{
		// Binary mode: names.
		{
			name:   "binary lower case",
			header: binaryBase(),
			data:   `{"hash":"abc"}`,
			check: func(t *testing.T, ev Event) {
				want := Event{SpecVersion: "1.0", ID: "req-1", Source: "/cli/alice",
					Type: "s1bridge.hash.reputation.request", Mode: ModeBinary}
				eqAttrs(t, ev, want)
				eqData(t, ev, `{"hash":"abc"}`)
			},
		},
		{
			name: "binary header names in any case",
			header: hdr("CE-SPECVERSION", "1.0", "Ce-Id", "req-1", "cE-sOuRcE", "/x",
				"CE-Type", "t", "Ce-TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"CE-CORRELATIONID", "c-1", "content-TYPE", "application/json"),
			check: func(t *testing.T, ev Event) {
				if ev.ID != "req-1" || ev.Source != "/x" || ev.Type != "t" || ev.DataContentType != "application/json" {
					t.Errorf("attributes = %+v", ev)
				}
				if ev.TraceParent() != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
					t.Errorf("TraceParent() = %q", ev.TraceParent())
				}
				if ev.CorrelationID() != "c-1" {
					t.Errorf("CorrelationID() = %q", ev.CorrelationID())
				}
			},
		},
		{name: "binary same attribute in two cases", header: binaryBase("CE-ID", "req-2"), wantField: "ce-id", wantReason: "more than once"},
		{name: "binary attribute with two values", header: binaryBase("ce-type", "other"), wantField: "ce-type", wantReason: "more than once"},
		{name: "binary same extension in two cases", header: binaryBase("ce-note", "a", "CE-NOTE", "b"), wantField: "ce-note", wantReason: "more than once"},
		{name: "binary extension name with dash", header: binaryBase("ce-my-ext", "x"), wantField: "ce-my-ext", wantReason: "attribute name"},
		{name: "binary extension named data", header: binaryBase("ce-data", "x"), wantField: "ce-data"},
		{name: "binary empty attribute name", header: binaryBase("ce-", "x"), wantField: "ce-"},

		// Binary mode: values.
		{
			name:   "percent-decoding of spaces, UTF-8, percent, lower-case hex",
			header: binaryBase("ce-subject", "a%20b%C3%A9%25", "ce-note", "caf%c3%a9%20100%25"),
			check: func(t *testing.T, ev Event) {
				if ev.Subject != "a bé%" {
					t.Errorf("Subject = %q, want %q", ev.Subject, "a bé%")
				}
				if got := ev.Extensions["note"]; got != "café 100%" {
					t.Errorf("note = %q", got)
				}
			},
		},
		{
			name:   "spec example Euro and emoji",
			header: binaryBase("ce-note", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
			check: func(t *testing.T, ev Event) {
				if got := ev.Extensions["note"]; got != "Euro € 😀" {
					t.Errorf("note = %q", got)
				}
			},
		},
		{
			name:   "unencoded spaces and UTF-8 kept as sent (sdk-go writes them raw)",
			header: binaryBase("ce-subject", "threat 42 é"),
			check: func(t *testing.T, ev Event) {
				if ev.Subject != "threat 42 é" {
					t.Errorf("Subject = %q", ev.Subject)
				}
			},
		},
		{
			name:   "RFC 7230 quoted string then percent-decoding",
			header: binaryBase("ce-subject", `"say \"hi\"%21"`),
			check: func(t *testing.T, ev Event) {
				if ev.Subject != `say "hi"!` {
					t.Errorf("Subject = %q", ev.Subject)
				}
			},
		},
		{name: "bad percent-encoding", header: binaryBase("ce-subject", "a%zzb"), wantField: "ce-subject", wantReason: "malformed percent"},
		{name: "truncated percent-encoding", header: binaryBase("ce-note", "abc%4"), wantField: "ce-note", wantReason: "truncated"},
		{name: "lone percent at the end", header: binaryBase("ce-note", "100%"), wantField: "ce-note", wantReason: "truncated"},
		{name: "invalid UTF-8 after decoding", header: binaryBase("ce-subject", "%FF%FE"), wantField: "ce-subject", wantReason: "UTF-8"},
		{name: "overlong UTF-8 after decoding", header: binaryBase("ce-subject", "%C0%A0"), wantField: "ce-subject", wantReason: "UTF-8"},
		{name: "control character after decoding", header: binaryBase("ce-note", "a%0Ab"), wantField: "ce-note", wantReason: "control"},
		{name: "C1 control character after decoding", header: binaryBase("ce-note", "%C2%85"), wantField: "ce-note", wantReason: "control"},
		{name: "malformed quoted string", header: binaryBase("ce-subject", `"a"b"`), wantField: "ce-subject", wantReason: "quoted"},
		{name: "quoted string ending in a backslash", header: binaryBase("ce-subject", `"a\"`), wantField: "ce-subject", wantReason: "quoted"},

		// Binary mode: required and checked attributes.
		{name: "missing ce-type", header: without(binaryBase(), "ce-type"), wantField: "ce-type", wantReason: "required"},
		{name: "missing ce-id", header: without(binaryBase(), "ce-id"), wantField: "ce-id", wantReason: "required"},
		{name: "missing ce-source", header: without(binaryBase(), "ce-source"), wantField: "ce-source", wantReason: "required"},
		{name: "missing ce-specversion", header: without(binaryBase(), "ce-specversion"), wantField: "ce-specversion", wantReason: "required"},
		{name: "missing ce-id and ce-type names ce-id first", header: without(binaryBase(), "ce-id", "ce-type"), wantField: "ce-id"},
		{name: "wrong specversion", header: hdr("ce-specversion", "0.3", "ce-id", "1", "ce-source", "/x", "ce-type", "t"), wantField: "ce-specversion", wantReason: "unsupported"},
		{name: "empty ce-id", header: hdr("ce-specversion", "1.0", "ce-id", "", "ce-source", "/x", "ce-type", "t"), wantField: "ce-id", wantReason: "empty"},
		{name: "blank ce-type refused by sdk-go validation", header: hdr("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/x", "ce-type", "%20%20"), wantField: "ce-type", wantReason: "non-empty"},
		{name: "source not a URI-reference", header: hdr("ce-specversion", "1.0", "ce-id", "1", "ce-source", "http://[::1", "ce-type", "t"), wantField: "ce-source", wantReason: "URI"},
		{name: "relative dataschema refused by sdk-go validation", header: binaryBase("ce-dataschema", "/schemas/x"), wantField: "ce-dataschema", wantReason: "Absolute URI"},
		{
			name:   "good time and expirytime",
			header: binaryBase("ce-time", "2024-05-01T10:00:00.123+02:00", "ce-expirytime", "2024-05-01T08:00:30Z"),
			check: func(t *testing.T, ev Event) {
				if !ev.Time.Equal(okTime) {
					t.Errorf("Time = %v, want %v", ev.Time, okTime)
				}
				exp, ok, err := ev.ExpiryTime()
				if err != nil || !ok || !exp.Equal(time.Date(2024, 5, 1, 8, 0, 30, 0, time.UTC)) {
					t.Errorf("ExpiryTime() = %v, %v, %v", exp, ok, err)
				}
			},
		},
		{name: "bad time", header: binaryBase("ce-time", "yesterday"), wantField: "ce-time", wantReason: "RFC 3339"},
		{name: "time without zone", header: binaryBase("ce-time", "2024-05-01T10:00:00"), wantField: "ce-time", wantReason: "RFC 3339"},
		{name: "bad expirytime", header: binaryBase("ce-expirytime", "in 5 minutes"), wantField: "ce-expirytime", wantReason: "RFC 3339"},
		{
			name: "empty extensions are absent", header: binaryBase("ce-note", "", "ce-quoted", `""`),
			check: func(t *testing.T, ev Event) {
				eqAttrs(t, ev, Event{SpecVersion: "1.0", ID: "req-1", Source: "/cli/alice", Type: "s1bridge.hash.reputation.request", Mode: ModeBinary})
			},
		},
		{name: "empty optional subject", header: binaryBase("ce-subject", ""), wantField: "ce-subject", wantReason: "empty"},

		// Binary mode: data and its content type.
		{
			name: "JSON content types with parameters and +json suffix", header: binaryBase("Content-Type", "application/problem+json; charset=utf-8"),
			data: `[1]`,
			check: func(t *testing.T, ev Event) {
				if ev.DataContentType != "application/problem+json; charset=utf-8" {
					t.Errorf("DataContentType = %q", ev.DataContentType)
				}
			},
		},
		{name: "non-JSON Content-Type", header: binaryBase("Content-Type", "text/plain"), data: "hi", wantField: "Content-Type", wantReason: "JSON"},
		{name: "non-JSON ce-datacontenttype", header: binaryBase("ce-datacontenttype", "application/xml"), wantField: "ce-datacontenttype", wantReason: "JSON"},
		{name: "Content-Type and ce-datacontenttype disagree", header: binaryBase("Content-Type", "application/json", "ce-datacontenttype", "text/json"), wantField: "Content-Type", wantReason: "differs"},
		{name: "Content-Type given twice in two cases", header: binaryBase("Content-Type", "application/json", "content-type", "application/json"), wantField: "Content-Type", wantReason: "more than once"},
		{name: "binary data not JSON", header: binaryBase(), data: `{"hash":`, wantField: "data", wantReason: "JSON"},
		{name: "binary empty payload", header: binaryBase(), data: "", check: func(t *testing.T, ev Event) { eqData(t, ev, `{}`) }},
		{name: "binary blank payload", header: binaryBase(), data: " \n\t", check: func(t *testing.T, ev Event) { eqData(t, ev, `{}`) }},

		// Huge values: decoded whole, in linear time.
		{
			name:   "huge header values",
			header: binaryBase("ce-subject", huge, "ce-note", hugeEncoded),
			check: func(t *testing.T, ev Event) {
				if ev.Subject != huge {
					t.Errorf("Subject has %d bytes, want %d", len(ev.Subject), len(huge))
				}
				if got := ev.Extensions["note"]; got != strings.Repeat("é", 1<<16) {
					t.Errorf("note has %d bytes, want %d", len(got), 2<<16)
				}
			},
		},

		// Structured mode.
		{
			name:   "structured with every attribute and typed extensions",
			header: hdr("Content-Type", "Application/CloudEvents+JSON; charset=utf-8"),
			data: `{"specversion":"1.0","id":"e-1","source":"/s1bridge/main","type":"s1bridge.threat.created",
				"subject":"1234","time":"2024-05-01T08:00:00.123Z","datacontenttype":"application/json",
				"dataschema":"https://example.com/schema","correlationid":"req-9","MyExt":"x",
				"count":42,"ratio":1.9,"flag":true,"nothing":null,"empty":"","note":"caf\u00e9 \"q\"",
				"data":{"threat":{"id":"1234"}}}`,
			check: func(t *testing.T, ev Event) {
				want := Event{SpecVersion: "1.0", ID: "e-1", Source: "/s1bridge/main", Type: "s1bridge.threat.created",
					Subject: "1234", Time: okTime, DataContentType: "application/json",
					DataSchema: "https://example.com/schema", Mode: ModeStructured,
					Extensions: map[string]string{"correlationid": "req-9", "myext": "x", "count": "42",
						"ratio": "1", "flag": "true", "note": `café "q"`}}
				eqAttrs(t, ev, want)
				eqData(t, ev, `{"threat":{"id":"1234"}}`)
			},
		},
		{
			name:   "structured with data_base64",
			header: hdr("Content-Type", structuredCT),
			data:   `{"specversion":"1.0","id":"1","source":"/x","type":"t","data_base64":"eyJoYXNoIjoiYWJjIn0="}`,
			check:  func(t *testing.T, ev Event) { eqData(t, ev, `{"hash":"abc"}`) },
		},
		{name: "structured data_base64 not JSON", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","data_base64":"aGVsbG8="}`, wantField: "data", wantReason: "JSON"},
		{name: "structured data_base64 not base64", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","data_base64":"!!"}`, wantField: "data_base64", wantReason: "base64"},
		{name: "structured data and data_base64", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","data":{},"data_base64":"e30="}`, wantField: "data_base64"},
		{name: "structured without data", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t"}`, check: func(t *testing.T, ev Event) { eqData(t, ev, `{}`) }},
		{name: "structured null data", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","data":null}`, check: func(t *testing.T, ev Event) { eqData(t, ev, `{}`) }},
		{name: "structured malformed JSON", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0",`, wantField: "payload", wantReason: "malformed"},
		{name: "structured trailing garbage", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0"} x`, wantField: "payload", wantReason: "malformed"},
		{name: "structured array", header: hdr("Content-Type", structuredCT), data: `[{"specversion":"1.0"}]`, wantField: "payload", wantReason: "object"},
		{name: "structured empty payload", header: hdr("Content-Type", structuredCT), data: ``, wantField: "payload", wantReason: "empty"},
		{name: "structured missing specversion", header: hdr("Content-Type", structuredCT), data: `{"id":"1","source":"/x","type":"t"}`, wantField: "specversion", wantReason: "required"},
		{name: "structured wrong specversion", header: hdr("Content-Type", structuredCT), data: `{"specversion":"0.3","id":"1","source":"/x","type":"t"}`, wantField: "specversion", wantReason: "unsupported"},
		{name: "structured missing type", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x"}`, wantField: "type", wantReason: "required"},
		{name: "structured id not a string", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":1,"source":"/x","type":"t"}`, wantField: "id", wantReason: "string"},
		{name: "structured repeated member", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","id":"2","source":"/x","type":"t"}`, wantField: "id", wantReason: "more than once"},
		{name: "structured bad time", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","time":"2024-13-01T00:00:00Z"}`, wantField: "time", wantReason: "RFC 3339"},
		{name: "structured bad expirytime", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","expirytime":"soon"}`, wantField: "expirytime", wantReason: "RFC 3339"},
		{name: "structured non-JSON datacontenttype", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","datacontenttype":"text/plain","data":"hi"}`, wantField: "datacontenttype", wantReason: "JSON"},
		{name: "structured extension object", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","ext":{"a":1}}`, wantField: "ext", wantReason: "string, number or boolean"},
		{name: "structured extension name with dash", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","my-ext":"x"}`, wantField: "my-ext"},
		{name: "structured upper-case attribute name", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","ID":"2"}`, wantField: "ID", wantReason: "context attribute"},
		{name: "structured extension number out of range", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","n":1e12}`, wantField: "n", wantReason: "range"},
		{name: "structured control character in an escape", header: hdr("Content-Type", structuredCT), data: `{"specversion":"1.0","id":"a\nb","source":"/x","type":"t"}`, wantField: "id", wantReason: "control"},
		{
			name: "structured wins over ce headers", header: hdr("Content-Type", structuredCT, "ce-id", "from-header", "ce-type", "ignored"),
			data: `{"specversion":"1.0","id":"from-body","source":"/x","type":"t"}`,
			check: func(t *testing.T, ev Event) {
				eqAttrs(t, ev, Event{SpecVersion: "1.0", ID: "from-body", Source: "/x", Type: "t", Mode: ModeStructured})
			},
		},
		{
			name: "headerless structured event as sdk-go's NATS binding sends it", header: nil,
			data: `{"specversion":"1.0","id":"1","source":"/x","type":"t","data":{"a":1}}`,
			check: func(t *testing.T, ev Event) {
				eqAttrs(t, ev, Event{SpecVersion: "1.0", ID: "1", Source: "/x", Type: "t", Mode: ModeStructured})
				eqData(t, ev, `{"a":1}`)
			},
		},
		{name: "unsupported event format", header: hdr("Content-Type", "application/cloudevents-batch+json"), data: `[]`, wantField: "Content-Type", wantReason: "format"},

		// Plain mode.
		{
			name: "plain JSON", header: nil, data: ` {"hash":"abc"} `,
			check: func(t *testing.T, ev Event) {
				eqAttrs(t, ev, Event{Mode: ModePlain})
				eqData(t, ev, `{"hash":"abc"}`)
			},
		},
		{name: "plain empty payload", header: nil, data: "", check: func(t *testing.T, ev Event) { eqData(t, ev, `{}`) }},
		{name: "plain with unrelated headers", header: hdr("Nats-Msg-Id", "x"), data: `{}`, check: func(t *testing.T, ev Event) { eqAttrs(t, ev, Event{Mode: ModePlain}) }},
		{name: "plain not JSON", header: nil, data: "hash=abc", wantField: "data", wantReason: "JSON"},
		{name: "plain non-JSON Content-Type", header: hdr("Content-Type", "text/plain"), data: `{}`, wantField: "Content-Type", wantReason: "JSON"},
		{
			name: "plain with a nested specversion stays plain", header: nil, data: `{"query":{"specversion":"1.0"}}`,
			check: func(t *testing.T, ev Event) { eqAttrs(t, ev, Event{Mode: ModePlain}) },
		},
		{
			name: "plain declared application/json is not sniffed", header: hdr("Content-Type", "application/json"),
			data:  `{"specversion":"1.0"}`,
			check: func(t *testing.T, ev Event) { eqAttrs(t, ev, Event{Mode: ModePlain}) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(tt.header, []byte(tt.data))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if tt.check != nil {
					tt.check(t, ev)
				}
				return
			}
			checkFieldError(t, err, tt.wantField, tt.wantReason)
		})
	}
}

func checkFieldError(t *testing.T, err error, field, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", field)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("error %q names field %q, want %q", err, fe.Field, field)
	}
	if !strings.Contains(fe.Reason, reason) {
		t.Errorf("error %q: reason does not contain %q", err, reason)
	}
	if len(err.Error()) > 300 {
		t.Errorf("error message has %d bytes; it must not echo values", len(err.Error()))
	}
}

func eqAttrs(t *testing.T, got, want Event) {
	t.Helper()
	if got.SpecVersion != want.SpecVersion || got.ID != want.ID || got.Source != want.Source ||
		got.Type != want.Type || got.Subject != want.Subject || !got.Time.Equal(want.Time) ||
		got.DataContentType != want.DataContentType || got.DataSchema != want.DataSchema || got.Mode != want.Mode {
		t.Errorf("attributes:\n got %+v\nwant %+v", withoutData(got), withoutData(want))
	}
	if len(got.Extensions) != len(want.Extensions) {
		t.Errorf("extensions = %v, want %v", got.Extensions, want.Extensions)
		return
	}
	for k, v := range want.Extensions {
		if gv, ok := got.Extensions[k]; !ok || gv != v {
			t.Errorf("extension %q = %q (present %v), want %q", k, gv, ok, v)
		}
	}
}

func withoutData(ev Event) Event {
	ev.Data = nil
	return ev
}

func eqData(t *testing.T, ev Event, want string) {
	t.Helper()
	if string(ev.Data) != want {
		t.Errorf("Data = %s, want %s", ev.Data, want)
	}
}

func TestExpiryTimeAccessor(t *testing.T) {
	var ev Event
	if _, ok, err := ev.ExpiryTime(); ok || err != nil {
		t.Errorf("no extension: ok=%v err=%v, want false, nil", ok, err)
	}
	ev.SetExtension("expirytime", "tomorrow")
	if _, ok, err := ev.ExpiryTime(); !ok || !errors.Is(err, ErrInvalid) {
		t.Errorf("bad value: ok=%v err=%v, want true and ErrInvalid", ok, err)
	}
	ev.SetExtension("expirytime", "")
	if _, ok := ev.Extensions["expirytime"]; ok {
		t.Error("SetExtension with an empty value did not remove the extension")
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeBinary: "binary", ModeStructured: "structured", ModePlain: "plain", 0: "Mode(0)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool, 1000)
	for range 1000 {
		id := NewID()
		if len(id) != 22 || seen[id] {
			t.Fatalf("NewID() = %q: wrong length or repeated", id)
		}
		seen[id] = true
	}
}

// TestDecodeErrorKeepsMode checks that a refused request still tells its mode,
// so that the error reply follows it (DESIGN.md §8), and nothing else but
// its id (TestDecodeErrorKeepsID).
func TestDecodeErrorKeepsMode(t *testing.T) {
	tests := []struct {
		name   string
		header nats.Header
		data   string
		want   Mode
	}{
		{"binary", without(binaryBase(), "ce-type"), `{}`, ModeBinary},
		{"structured", hdr("Content-Type", structuredCT), `{"specversion":"1.0"}`, ModeStructured},
		{"headerless structured", nil, `{"specversion":"0.3","id":"1","source":"/x","type":"t"}`, ModeStructured},
		{"plain", nil, `not json`, ModePlain},
		{"no mode chosen", hdr("Content-Type", "application/cloudevents+avro"), ``, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(tt.header, []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if !reflect.DeepEqual(ev, Event{Mode: tt.want, ID: ev.ID}) {
				t.Errorf("event with the error = %+v, want only Mode %v and the id", ev, tt.want)
			}
		})
	}
}

// TestDecodeErrorKeepsID: a request that fails to decode comes back with
// its id whenever the id can be read on its own, so that the error reply
// can carry it as correlationid.
func TestDecodeErrorKeepsID(t *testing.T) {
	ct := func(h nats.Header, v string) nats.Header { h["Content-Type"] = []string{v}; return h }
	structured := func(body string) (nats.Header, string) { return hdr("Content-Type", structuredCT), body }
	withID := func(id string, extra ...string) nats.Header {
		h := binaryBase(extra...)
		h["ce-id"] = []string{id}
		return h
	}
	for _, tc := range []struct {
		name   string
		header nats.Header
		data   string
		mode   Mode
		want   string
	}{
		{"binary, data not JSON", binaryBase(), `not json`, ModeBinary, "req-1"},
		{"binary, no type", without(binaryBase(), "ce-type"), `{}`, ModeBinary, "req-1"},
		{"binary, id in upper case", without(binaryBase("CE-ID", "req-2"), "ce-id", "ce-source"), `{}`, ModeBinary, "req-2"},
		{"binary, percent-encoded id", withID("a%20b", "ce-time", "noon"), `{}`, ModeBinary, "a b"},
		{"binary, id given twice", binaryBase("CE-ID", "req-2"), `{}`, ModeBinary, ""},
		{"binary, id badly encoded", withID("a%zz"), `{}`, ModeBinary, ""},
		{"binary, id with a control character", withID("a%01"), `{}`, ModeBinary, ""},
		{"binary, id empty", withID("", "ce-time", "noon"), `{}`, ModeBinary, ""},
		{"binary, bad content type", ct(binaryBase(), "text/plain"), `{}`, ModeBinary, "req-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(tc.header, []byte(tc.data))
			if err == nil {
				t.Fatal("decoded")
			}
			if ev.Mode != tc.mode || ev.ID != tc.want {
				t.Errorf("mode %v id %q, want %v %q (%v)", ev.Mode, ev.ID, tc.mode, tc.want, err)
			}
		})
	}
	for _, tc := range []struct{ name, body, want string }{
		{"structured, no source", `{"specversion":"1.0","id":"s-1","type":"x"}`, "s-1"},
		{"structured, escaped id", `{"specversion":"1.0","id":"s\u002d2","type":"x","time":"noon","source":"/a"}`, "s-2"},
		{"structured, data_base64 not base64", `{"specversion":"1.0","id":"s-3","source":"/a","type":"x","data_base64":"%%"}`, "s-3"},
		{"structured, id not a string", `{"specversion":"1.0","id":3,"source":"/a","type":"x"}`, ""},
		{"structured, id given twice", `{"specversion":"1.0","id":"a","id":"b","source":"/a","type":"x"}`, ""},
		{"structured, malformed", `{"specversion":"1.0","id":"s-4",`, ""},
		{"structured, not an object", `["id"]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, body := structured(tc.body)
			ev, err := Decode(h, []byte(body))
			if err == nil {
				t.Fatal("decoded")
			}
			if ev.Mode != ModeStructured || ev.ID != tc.want {
				t.Errorf("mode %v id %q, want structured %q (%v)", ev.Mode, ev.ID, tc.want, err)
			}
		})
	}
	// A plain request has no id to keep.
	if ev, err := Decode(nil, []byte(`{`)); err == nil || ev.ID != "" || ev.Mode != ModePlain {
		t.Errorf("plain: %+v %v", ev, err)
	}
}

// TestDecodeReply: DecodeReply checks a binary event's attributes as Decode
// does and leaves the data to its reader: the same event, data included,
// when the data is JSON; no refusal when it is not (Decode refuses it).
func TestDecodeReply(t *testing.T) {
	ev := Event{SpecVersion: "1.0", ID: "r-1", Source: "/s1bridge/main", Type: "s1bridge.agents.list.response",
		DataContentType: "application/json", Extensions: map[string]string{"correlationid": "q-1"}, Data: []byte(`{"items":[]}`)}
	h, data, err := Encode(ev, ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Decode(h, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReply(h, data)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeReply = %+v, %v; Decode = %+v", got, err, want)
	}
	if _, err := DecodeReply(h, []byte(`{"items":[`)); err != nil {
		t.Errorf("DecodeReply checked the data: %v", err)
	}
	if _, err := Decode(h, []byte(`{"items":[`)); err == nil {
		t.Error("Decode accepted data that is not JSON")
	}
	h.Del("ce-id")
	if _, err := DecodeReply(h, data); err == nil || !strings.Contains(err.Error(), "ce-id") {
		t.Errorf("DecodeReply of an event without an id: %v, want an error naming ce-id", err)
	}
}
