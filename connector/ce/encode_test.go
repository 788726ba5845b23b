package ce

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// fullEvent has every attribute, the extensions s1bridge uses and one whose
// value needs percent-encoding.
func fullEvent() Event {
	return Event{
		ID:              "r-1",
		Source:          "/s1bridge/main",
		Type:            "s1bridge.hash.reputation.response",
		Subject:         `threat 42 "é" 100%`,
		Time:            time.Date(2024, 5, 1, 10, 0, 0, 5, time.FixedZone("CEST", 2*3600)),
		DataContentType: "application/json",
		DataSchema:      "https://example.com/schemas/reply",
		Extensions: map[string]string{
			"correlationid": "req-1",
			"traceparent":   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"note":          "Euro € 😀",
		},
		Data: json.RawMessage(`{"hash":"abc","verdict":"malicious","rank":null}`),
	}
}

func TestEncodeBinaryHeaders(t *testing.T) {
	h, payload, err := Encode(fullEvent(), ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	want := nats.Header{
		"ce-specversion":   {"1.0"},
		"ce-id":            {"r-1"},
		"ce-source":        {"/s1bridge/main"},
		"ce-type":          {"s1bridge.hash.reputation.response"},
		"ce-subject":       {"threat%2042%20%22%C3%A9%22%20100%25"},
		"ce-time":          {"2024-05-01T08:00:00.000000005Z"},
		"ce-dataschema":    {"https://example.com/schemas/reply"},
		"Content-Type":     {"application/json"},
		"ce-correlationid": {"req-1"},
		"ce-traceparent":   {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"ce-note":          {"Euro%20%E2%82%AC%20%F0%9F%98%80"},
	}
	if !maps.EqualFunc(h, want, func(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }) {
		t.Errorf("headers:\n got %v\nwant %v", h, want)
	}
	if string(payload) != string(fullEvent().Data) {
		t.Errorf("payload = %s", payload)
	}
	// The values share one backing array; appending to one header must
	// not overwrite the next.
	h.Add("ce-id", "extra")
	for k, v := range want {
		if k != "ce-id" && h[k][0] != v[0] {
			t.Errorf("after Add to ce-id, %s = %q, want %q", k, h[k][0], v[0])
		}
	}
}

func TestEncodeStructuredJSON(t *testing.T) {
	h, payload, err := Encode(fullEvent(), ModeStructured)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("Content-Type"); got != "application/cloudevents+json" || len(h) != 1 {
		t.Errorf("headers = %v, want only Content-Type: application/cloudevents+json", h)
	}
	want := `{"specversion":"1.0","id":"r-1","source":"/s1bridge/main","type":"s1bridge.hash.reputation.response",` +
		`"subject":"threat 42 \"é\" 100%","time":"2024-05-01T08:00:00.000000005Z","datacontenttype":"application/json",` +
		`"dataschema":"https://example.com/schemas/reply","correlationid":"req-1","note":"Euro € 😀",` +
		`"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",` +
		`"data":{"hash":"abc","verdict":"malicious","rank":null}}`
	if string(payload) != want {
		t.Errorf("payload:\n got %s\nwant %s", payload, want)
	}
}

// TestEncodeDecodeRoundTrip checks that what Encode writes, Decode reads
// back the same, in each mode.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	events := map[string]Event{
		"full":                 fullEvent(),
		"minimal without data": {ID: "1", Source: "/x", Type: "t"},
		"problem+json data goes base64": {ID: "1", Source: "/x", Type: "t",
			DataContentType: "application/problem+json", Data: json.RawMessage(`{"title":"x"}`)},
		"escapes and controls in JSON strings": {ID: `a"b\c`, Source: "/x", Type: "t",
			Extensions: map[string]string{"ls": "line\u2028sep"}},
	}
	for name, ev := range events {
		for _, mode := range []Mode{ModeBinary, ModeStructured, ModePlain} {
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				h, p, err := Encode(ev, mode)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(h, p)
				if err != nil {
					t.Fatalf("Decode(Encode()): %v\nheaders %v\npayload %s", err, h, p)
				}
				want := ev
				want.SpecVersion = "1.0"
				want.Mode = mode
				if mode == ModePlain {
					want.Mode = ModeBinary
				}
				if len(want.Data) == 0 {
					want.Data = json.RawMessage("{}")
				} else if want.DataContentType == "" {
					want.DataContentType = "application/json"
				}
				eqAttrs(t, got, want)
				eqData(t, got, string(want.Data))
			})
		}
	}
}

func TestEncodeDefaults(t *testing.T) {
	h, _, err := Encode(Event{ID: "1", Source: "/x", Type: "t", Data: json.RawMessage(`{}`)}, ModePlain)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("ce-specversion") != "1.0" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v, want specversion 1.0 and Content-Type application/json", h)
	}
	h, _, err = Encode(Event{ID: "1", Source: "/x", Type: "t"}, ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h["Content-Type"]; ok {
		t.Errorf("Content-Type written for an event without data: %v", h)
	}
	for _, mode := range []Mode{ModeBinary, ModeStructured} {
		h, p, err := Encode(Event{ID: "1", Source: "/x", Type: "t", Extensions: map[string]string{"note": ""}}, mode)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := h["ce-note"]; ok || bytes.Contains(p, []byte("note")) {
			t.Errorf("%v: empty extension written: %v %s", mode, h, p)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	base := func(mod func(*Event)) Event {
		ev := Event{ID: "1", Source: "/x", Type: "t"}
		mod(&ev)
		return ev
	}
	tests := []struct {
		name  string
		ev    Event
		mode  Mode
		field string
	}{
		{"no id", base(func(e *Event) { e.ID = "" }), ModeBinary, "id"},
		{"no source", base(func(e *Event) { e.Source = "" }), ModeBinary, "source"},
		{"no type", base(func(e *Event) { e.Type = "" }), ModeStructured, "type"},
		{"old specversion", base(func(e *Event) { e.SpecVersion = "0.3" }), ModeBinary, "specversion"},
		{"control character", base(func(e *Event) { e.Subject = "a\nb" }), ModeBinary, "subject"},
		{"invalid UTF-8", base(func(e *Event) { e.ID = "\xff" }), ModeStructured, "id"},
		{"upper-case extension name", base(func(e *Event) { e.Extensions = map[string]string{"Note": "x"} }), ModeBinary, "Note"},
		{"extension name with dash", base(func(e *Event) { e.Extensions = map[string]string{"my-ext": "x"} }), ModeBinary, "my-ext"},
		{"extension named like an attribute", base(func(e *Event) { e.Extensions = map[string]string{"id": "x"} }), ModeBinary, "id"},
		{"extension named data", base(func(e *Event) { e.Extensions = map[string]string{"data": "x"} }), ModeStructured, "data"},
		{"structured data not JSON", base(func(e *Event) { e.Data = json.RawMessage(`{"a":`) }), ModeStructured, "data"},
		{"unknown mode", base(func(*Event) {}), Mode(0), "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Encode(tt.ev, tt.mode)
			checkFieldError(t, err, tt.field, "")
		})
	}
}

func TestHeaderEscaping(t *testing.T) {
	tests := []struct{ raw, encoded string }{
		{"plain-ascii_/:+=.~", "plain-ascii_/:+=.~"},
		{"a b", "a%20b"},
		{`"q"`, "%22q%22"},
		{"100%", "100%25"},
		{"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"tab\there", "tab%09here"},
		{"del\x7f", "del%7F"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := escapeHeader(tt.raw); got != tt.encoded {
			t.Errorf("escapeHeader(%q) = %q, want %q", tt.raw, got, tt.encoded)
		}
		if got, why := unescapeHeader(tt.encoded); why != "" || got != tt.raw {
			t.Errorf("unescapeHeader(%q) = %q, %q; want %q", tt.encoded, got, why, tt.raw)
		}
	}
}

// TestParseMode reads the names streams.events.mode takes, and only them.
func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeBinary, ModeStructured} {
		if got, ok := ParseMode(m.String()); !ok || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, ok)
		}
	}
	for _, name := range []string{"", "plain", "Binary", "json", "Mode(0)"} {
		if m, ok := ParseMode(name); ok {
			t.Errorf("ParseMode(%q) = %v, want refused", name, m)
		}
	}
}
