package ce

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// The fuzz targets of the codec. Seeds: f.Add with events the codec itself
// and sdk-go write, plus the files under testdata/fuzz/<target>/, which also
// keep every input a run found worth keeping (regressions included).
//
//	go test -run '^$' -fuzz '^FuzzDecode$' ./connector/ce
//	go test -run '^$' -fuzz '^FuzzDecodeBinary$' ./connector/ce
//	go test -run '^$' -fuzz '^FuzzDecodeStructured$' ./connector/ce

// FuzzDecode feeds Decode arbitrary headers and payloads (seeds in
// testdata/fuzz/FuzzDecode: binary, structured and plain requests). headers
// holds one "Name: value" per line, names kept in the case given. Beyond
// never panicking, Decode must refuse only with a *FieldError matching
// ErrInvalid, return JSON data, and every event it accepts in binary or
// structured mode must survive Encode and Decode again in both modes.
func FuzzDecode(f *testing.F) {
	for _, mode := range []Mode{ModeBinary, ModeStructured} {
		h, p, err := Encode(fullEvent(), mode)
		if err != nil {
			f.Fatal(err)
		}
		var lines strings.Builder
		ct := ""
		for _, k := range slices.Sorted(maps.Keys(h)) {
			if k == "Content-Type" {
				ct = h[k][0]
				continue
			}
			lines.WriteString(k + ": " + h[k][0] + "\n")
		}
		f.Add(ct, lines.String(), p)
	}
	f.Fuzz(func(t *testing.T, contentType, headers string, payload []byte) {
		h := nats.Header{}
		if contentType != "" {
			h["Content-Type"] = []string{contentType}
		}
		for line := range strings.SplitSeq(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				h[name] = append(h[name], strings.TrimPrefix(value, " "))
			}
		}
		ev, err := Decode(h, payload)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if !json.Valid(ev.Data) {
			t.Fatalf("accepted data that is not JSON: %q", ev.Data)
		}
		if ev.Mode == ModePlain {
			return
		}
		checkRoundTrip(t, ev)
	})
}

// Which binary headers FuzzDecodeBinary sends, one bit each in present.
var binaryFuzzHeaders = [...]string{
	hdrSpecVersion, hdrID, hdrSource, hdrType, hdrSubject, hdrTime, hdrDataSchema, hdrDataContentType,
}

// FuzzDecodeBinary fuzzes binary mode attribute by attribute, so that the
// fuzzer works on header values (percent-encoding, quoting, UTF-8, time
// syntax) rather than on the header syntax of FuzzDecode. present says which
// of the context attribute headers are sent (bit i: binaryFuzzHeaders[i]);
// upper sends every name in another case (any case must be read); one
// extension extName: extValue is added when extName is not empty.
//
// Besides FuzzDecode's properties, each attribute value Decode accepts must
// be exactly what net/url's percent-decoding gives for the header value (the
// binding's rule), and a value net/url cannot decode must be refused: the
// codec's hand-written unescaping is held against the standard library.
// Quoted values ("...") are unquoted first, which net/url knows nothing of,
// so only the refusal of a bad escape is checked for them.
func FuzzDecodeBinary(f *testing.F) {
	all := uint8(0x0f) // specversion, id, source, type
	f.Add(all, false, "1.0", "req-1", "/cli/alice", "s1bridge.hash.reputation.request", "", "", "", "", "", "", []byte(`{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`))
	f.Add(uint8(0xff), true, "1.0", "req%2D2", "/soar/playbook%207", "s1bridge.agents.list.request", "host%20%C3%A9%25", "2024-05-01T08:00:00.5+02:00",
		"https://example.com/s", "application/json; charset=utf-8", "expirytime", "2024-05-01T08:00:30Z", []byte(`{"limit":2}`))
	f.Add(all, false, "1.0", `"quoted \"id\""`, "/x", "t", "", "", "", "", "note", "100%zz", []byte(`{}`))
	f.Add(all, false, "1.0", "%FF%FE", "/x", "t", "", "", "", "", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", []byte(`{}`))
	f.Add(all, false, "1.0", "id", "/x", "t", "", "", "", "", "expirytime", "yesterday", []byte(`[1,2`))
	f.Add(uint8(0x0b), false, "1.0", "id", "", "t", "", "", "", "", "", "", []byte(`null`)) // no ce-source
	f.Add(all, false, "1.0", "%", "/x", "t", "", "", "", "", "bad-name", "v", []byte(``))
	f.Fuzz(func(t *testing.T, present uint8, upper bool, specversion, id, source, typ, subject, tm, dataschema, dct, extName, extValue string, payload []byte) {
		vals := [...]string{specversion, id, source, typ, subject, tm, dataschema, dct}
		h := nats.Header{}
		for i, name := range binaryFuzzHeaders {
			if present&(1<<i) == 0 {
				continue
			}
			if upper {
				name = strings.ToUpper(name)
			}
			h[name] = []string{vals[i]}
		}
		if extName != "" {
			h[cePrefix(upper)+extName] = []string{extValue}
		}
		if len(h) == 0 {
			return // plain mode: FuzzDecode's business
		}
		ev, err := Decode(h, payload)
		if ev.Mode != ModeBinary {
			t.Fatalf("Mode = %v for a message with ce-* headers only, want binary (err %v)", ev.Mode, err)
		}
		for i, v := range vals {
			if present&(1<<i) == 0 {
				continue
			}
			want, uerr := url.PathUnescape(v)
			quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
			if err == nil && uerr != nil && !quoted {
				t.Fatalf("%s %q: accepted, but it is not valid percent-encoding (%v)", binaryFuzzHeaders[i], v, uerr)
			}
			if err != nil || quoted {
				continue
			}
			var got string
			switch i {
			case 0:
				got = ev.SpecVersion
			case 1:
				got = ev.ID
			case 2:
				got = ev.Source
			case 3:
				got = ev.Type
			case 4:
				got = ev.Subject
			case 5:
				if pt, perr := types.ParseTime(want); perr != nil || !pt.Equal(ev.Time) {
					t.Fatalf("ce-time %q: decoded %v, want %q parsed (%v)", v, ev.Time, want, perr)
				}
				continue
			case 6:
				got = ev.DataSchema
			case 7:
				got = ev.DataContentType
			}
			if got != want {
				t.Fatalf("%s %q decoded as %q, want %q (net/url)", binaryFuzzHeaders[i], v, got, want)
			}
		}
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if ext := lowerASCII(extName); extName != "" && attrIndex(ext) < 0 && !strings.HasPrefix(extValue, `"`) {
			want, _ := url.PathUnescape(extValue)
			if got := ev.Extensions[ext]; got != want {
				t.Fatalf("extension %s %q decoded as %q, want %q (net/url)", extName, extValue, got, want)
			}
		}
		if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source == "" || ev.Type == "" {
			t.Fatalf("accepted an event without its required attributes: %+v", withoutData(ev))
		}
		if !json.Valid(ev.Data) {
			t.Fatalf("accepted data that is not JSON: %q", ev.Data)
		}
		checkRoundTrip(t, ev)
	})
}

// cePrefix is the binary header prefix, upper-cased when upper.
func cePrefix(upper bool) string {
	if upper {
		return "CE-"
	}
	return "ce-"
}

// FuzzDecodeStructured fuzzes structured mode with sdk-go as the oracle.
// headerless sends no Content-Type, as sdk-go's NATS binding does (the
// payload is then read as structured only when it has a specversion member).
// Every event Decode accepts must also be accepted by sdk-go's own JSON
// event format reader (event.Event's UnmarshalJSON and Validate), with the
// same attributes, the same extensions in canonical string form and the
// same data; and it must survive Encode and Decode again in both modes.
func FuzzDecodeStructured(f *testing.F) {
	_, p, err := Encode(fullEvent(), ModeStructured)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, p)
	f.Add(true, []byte(`{"specversion":"1.0","id":"1","source":"/x","type":"t","data":[1,"two",{"3":null}]}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"1","source":"/x","type":"t","datacontenttype":"application/problem+json","data_base64":"eyJhIjoxfQ=="}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"e-1","source":"/s1bridge/main","type":"s1bridge.threat.created","subject":"1234","time":"2024-05-01T08:00:00Z","correlationid":"r","n":42,"b":true,"z":null,"note":"caf\u00e9 \"q\"","data":{"threat":{"id":"1234"}}}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"1","source":"/x","type":"t","expirytime":"2024-05-01T08:00:30Z","data":"not an object"}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"1","id":"2","source":"/x","type":"t"}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"1","source":"/x","type":"t","datacontenttype":"text/plain","data":"hello"}`))
	f.Add(false, []byte(`{"specversion":"1.0","id":"1","source":"/x","type":"t","n":2147483648}`))
	f.Add(true, []byte(`{"specversion":"0.3","id":"1","source":"/x","type":"t"}`))
	f.Fuzz(func(t *testing.T, headerless bool, payload []byte) {
		h := nats.Header{"Content-Type": []string{structuredCT}}
		if headerless {
			h = nil
		}
		ev, err := Decode(h, payload)
		if err != nil {
			if !headerless && ev.Mode != ModeStructured {
				t.Fatalf("Mode = %v on a refused structured event, want structured (the error reply follows it)", ev.Mode)
			}
			checkRefusal(t, err)
			return
		}
		if ev.Mode == ModePlain {
			if !headerless {
				t.Fatalf("structured Content-Type decoded as plain")
			}
			return
		}
		if ev.Mode != ModeStructured {
			t.Fatalf("Mode = %v, want structured", ev.Mode)
		}
		var sdk event.Event
		if err := json.Unmarshal(bytes.TrimSpace(payload), &sdk); err != nil {
			t.Fatalf("accepted an event sdk-go cannot read: %v\npayload %s", err, payload)
		}
		if err := sdk.Validate(); err != nil {
			t.Fatalf("accepted an event sdk-go finds invalid: %v\npayload %s", err, payload)
		}
		sameStructured(t, sdk, ev, payload)
		checkRoundTrip(t, ev)
	})
}

// sameStructured is sameEvent for a structured payload: sdk-go keeps
// data_base64 as the bytes it decodes to, which the codec does too.
func sameStructured(t *testing.T, sdk event.Event, ours Event, payload []byte) {
	t.Helper()
	// sdk-go holds source and dataschema as parsed URLs and gives them
	// back re-encoded (" " as "%20"); the codec keeps the text it read.
	if sdk.SpecVersion() != ours.SpecVersion || sdk.ID() != ours.ID || sdk.Source() != asURL(ours.Source) ||
		sdk.Type() != ours.Type || sdk.Subject() != ours.Subject || !sdk.Time().Equal(ours.Time) ||
		sdk.DataContentType() != ours.DataContentType || sdk.DataSchema() != asURL(ours.DataSchema) {
		t.Fatalf("attributes differ from sdk-go's:\nsdk-go %s\n  ours %+v\npayload %s", sdk.String(), withoutData(ours), payload)
	}
	for k, v := range sdk.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			t.Fatalf("sdk-go extension %s: %v", k, err)
		}
		if ours.Extensions[k] != s {
			t.Fatalf("extension %s = %q, sdk-go reads %q\npayload %s", k, ours.Extensions[k], s, payload)
		}
	}
	for k := range ours.Extensions {
		if _, ok := sdk.Extensions()[k]; !ok {
			t.Fatalf("extension %s = %q, which sdk-go does not read\npayload %s", k, ours.Extensions[k], payload)
		}
	}
	if !isInlineJSONMedia(ours.DataContentType) && len(ours.Data) > 0 && ours.Data[0] == '"' {
		// sdk-go reads a JSON string as the data's text for any type but
		// application/json and text/json, +json ones included; the JSON
		// event format keeps the JSON value for those (see
		// isInlineJSONMedia), as the codec does.
		return
	}
	var a, b any
	sdkData := sdk.Data()
	if len(sdkData) == 0 {
		sdkData = []byte("{}") // no data: the codec's "{}"
	}
	if json.Unmarshal(sdkData, &a) != nil || json.Unmarshal(ours.Data, &b) != nil || !jsonEqual(a, b) {
		t.Fatalf("data = %s, sdk-go reads %s\npayload %s", ours.Data, sdk.Data(), payload)
	}
}

// asURL is s as sdk-go gives back a URI attribute it parsed.
func asURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.String()
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// checkRefusal fails t unless err is what Decode promises for a refusal.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v (%T) is not a *FieldError matching ErrInvalid", err, err)
	}
	if fe.Reason == "" { // Field may be "": a member named "" in structured mode
		t.Fatalf("FieldError %+v gives no reason", fe)
	}
}

// checkRoundTrip fails t unless ev, accepted by Decode, survives Encode and
// Decode in both modes with the same attributes and data.
func checkRoundTrip(t *testing.T, ev Event) {
	t.Helper()
	for _, mode := range []Mode{ModeBinary, ModeStructured} {
		h2, p2, err := Encode(ev, mode)
		if err != nil {
			t.Fatalf("Encode(%v) of a decoded event: %v\nevent %+v", mode, err, ev)
		}
		back, err := Decode(h2, p2)
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v\nheaders %v\npayload %q", mode, err, h2, p2)
		}
		want := ev
		want.Mode = mode
		if want.DataContentType == "" {
			want.DataContentType = "application/json"
		}
		eqAttrs(t, back, want)
		if !bytes.Equal(back.Data, ev.Data) {
			t.Errorf("Data after %v round trip = %q, want %q", mode, back.Data, ev.Data)
		}
	}
}
