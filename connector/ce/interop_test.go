package ce

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// These tests hold the codec against sdk-go's own readers and writers, so
// that an SDK client and s1bridge understand each other.
//
// Structured mode uses sdk-go's NATS binding (protocol/nats/v2: WriteMsg and
// NewMessage) on a *nats.Msg, as its Sender and Receiver do. That binding is
// structured-only (TestSDKNATSBindingIsStructuredOnly pins this), so binary
// mode is held against sdk-go's HTTP binding, the binary ce-* header mapping
// sdk-go ships: its headers are copied into a nats.Header as they come
// (canonical case, "Ce-Id"), and ours are copied into an http.Header as an
// HTTP hop would (canonicalised).

const testSubject = "s1.main.action.hash.reputation"

// sdkEvent builds, with sdk-go, an event with every attribute and extensions
// that need percent-encoding in headers. withPercent adds an extension
// holding '%', which sdk-go writes unencoded in binary mode.
func sdkEvent(t *testing.T, withPercent bool) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("req-1")
	e.SetSource("/cli/alice")
	e.SetType("s1bridge.hash.reputation.request")
	e.SetSubject("threat 42 é")
	e.SetTime(time.Date(2024, 5, 1, 8, 0, 0, 123456789, time.UTC))
	e.SetDataSchema("https://example.com/schemas/hash")
	e.SetExtension("correlationid", "corr-1")
	e.SetExtension("expirytime", "2024-05-01T08:00:30Z")
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	e.SetExtension("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	e.SetExtension("note", "café au lait, “quoted” 😀")
	if withPercent {
		e.SetExtension("progress", "100% done")
	}
	if err := e.SetData(event.ApplicationJSON, map[string]any{"hash": "3395856ce81f2b7382dee72602f798b642f14140", "n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}

// ourEvent is the Event sdkEvent describes.
func ourEvent(withPercent bool) Event {
	ev := Event{
		SpecVersion:     "1.0",
		ID:              "req-1",
		Source:          "/cli/alice",
		Type:            "s1bridge.hash.reputation.request",
		Subject:         "threat 42 é",
		Time:            time.Date(2024, 5, 1, 8, 0, 0, 123456789, time.UTC),
		DataContentType: "application/json",
		DataSchema:      "https://example.com/schemas/hash",
		Extensions: map[string]string{
			"correlationid": "corr-1",
			"expirytime":    "2024-05-01T08:00:30Z",
			"traceparent":   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"tracestate":    "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
			"note":          "café au lait, “quoted” 😀",
		},
		Data: json.RawMessage(`{"hash":"3395856ce81f2b7382dee72602f798b642f14140","n":1}`),
	}
	if withPercent {
		ev.Extensions["progress"] = "100% done"
	}
	return ev
}

// sameEvent fails t unless the sdk-go event and ours carry the same
// attributes, extensions (in canonical string form) and JSON data.
func sameEvent(t *testing.T, sdk event.Event, ours Event) {
	t.Helper()
	if sdk.SpecVersion() != ours.SpecVersion || sdk.ID() != ours.ID || sdk.Source() != ours.Source ||
		sdk.Type() != ours.Type || sdk.Subject() != ours.Subject || !sdk.Time().Equal(ours.Time) ||
		sdk.DataContentType() != ours.DataContentType || sdk.DataSchema() != ours.DataSchema {
		t.Errorf("attributes differ:\nsdk-go %s\n   ours %+v", sdk.String(), withoutData(ours))
	}
	sdkExt := map[string]string{}
	for k, v := range sdk.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			t.Fatalf("extension %s: %v", k, err)
		}
		sdkExt[k] = s
	}
	if !reflect.DeepEqual(sdkExt, nonNil(ours.Extensions)) {
		t.Errorf("extensions differ:\nsdk-go %q\n   ours %q", sdkExt, ours.Extensions)
	}
	if !sameJSON(t, sdk.Data(), ours.Data) {
		t.Errorf("data differs:\nsdk-go %s\n   ours %s", sdk.Data(), ours.Data)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// sdkNATSWrite writes e as sdk-go's NATS Sender does: structured JSON in the
// payload, and no headers at all.
func sdkNATSWrite(t *testing.T, e event.Event) *nats.Msg {
	t.Helper()
	var buf bytes.Buffer
	if err := cenats.WriteMsg(context.Background(), binding.ToMessage(&e), &buf); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(testSubject)
	msg.Data = buf.Bytes()
	return msg
}

// sdkNATSRead reads msg as sdk-go's NATS Receiver does.
func sdkNATSRead(t *testing.T, msg *nats.Msg) event.Event {
	t.Helper()
	e, err := binding.ToEvent(context.Background(), cenats.NewMessage(msg))
	if err != nil {
		t.Fatalf("sdk-go cannot read the message: %v\nheaders %v\npayload %s", err, msg.Header, msg.Data)
	}
	return *e
}

func TestInteropStructuredFromSDK(t *testing.T) {
	sdk := sdkEvent(t, true)
	msg := sdkNATSWrite(t, sdk)
	if len(msg.Header) != 0 {
		t.Fatalf("sdk-go's NATS binding now writes headers %v; revisit the headerless detection", msg.Header)
	}
	for name, header := range map[string]nats.Header{
		"as sdk-go sends it, without headers": nil,
		"with the binding's Content-Type":     {"Content-Type": {"application/cloudevents+json"}},
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := Decode(header, msg.Data)
			if err != nil {
				t.Fatalf("Decode: %v\npayload %s", err, msg.Data)
			}
			if ev.Mode != ModeStructured {
				t.Errorf("Mode = %v, want structured", ev.Mode)
			}
			sameEvent(t, sdk, ev)
		})
	}
}

func TestInteropStructuredBase64FromSDK(t *testing.T) {
	sdk := sdkEvent(t, false)
	raw := []byte(`{"hash":"abc"}`)
	if err := sdk.SetData(event.ApplicationJSON, raw); err != nil { // []byte: sdk-go writes data_base64
		t.Fatal(err)
	}
	msg := sdkNATSWrite(t, sdk)
	if !bytes.Contains(msg.Data, []byte(`"data_base64"`)) {
		t.Fatalf("sdk-go wrote no data_base64: %s", msg.Data)
	}
	ev, err := Decode(nats.Header{"Content-Type": {"application/cloudevents+json"}}, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, sdk, ev)
	eqData(t, ev, string(raw))
}

func TestInteropStructuredToSDK(t *testing.T) {
	ours := ourEvent(true)
	h, p, err := Encode(ours, ModeStructured)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(testSubject)
	msg.Header, msg.Data = h, p
	sameEvent(t, sdkNATSRead(t, msg), ours)

	// Data of a +json type other than application/json goes as data_base64,
	// which sdk-go decodes to the same bytes.
	ours.DataContentType = "application/problem+json"
	if msg.Header, msg.Data, err = Encode(ours, ModeStructured); err != nil {
		t.Fatal(err)
	}
	sameEvent(t, sdkNATSRead(t, msg), ours)
}

// TestSDKNATSBindingIsStructuredOnly pins why binary mode is tested against
// sdk-go's HTTP binding: its NATS binding reads every message as structured,
// so it cannot read a binary one. Should a later sdk-go read binary NATS
// messages, this fails and the binary interop tests should move to it.
func TestSDKNATSBindingIsStructuredOnly(t *testing.T) {
	h, p, err := Encode(ourEvent(false), ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(testSubject)
	msg.Header, msg.Data = h, p
	if e, err := binding.ToEvent(context.Background(), cenats.NewMessage(msg)); err == nil && e.ID() == "req-1" {
		t.Fatal("sdk-go's NATS binding now reads binary mode; test binary interop against it")
	}
}

// sdkBinaryWrite writes e in binary mode with sdk-go and returns its headers
// as a nats.Header, names in the case sdk-go wrote them.
func sdkBinaryWrite(t *testing.T, e event.Event) (nats.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://s1bridge.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Ce-Id") == "" {
		t.Fatalf("sdk-go did not write binary mode: %v", req.Header)
	}
	return nats.Header(req.Header), body
}

// sdkBinaryRead reads a binary-mode message with sdk-go.
func sdkBinaryRead(t *testing.T, h nats.Header, payload []byte) event.Event {
	t.Helper()
	hh := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			hh.Add(k, v) // canonicalises, as any HTTP hop does
		}
	}
	e, err := binding.ToEvent(context.Background(), cehttp.NewMessage(hh, io.NopCloser(bytes.NewReader(payload))))
	if err != nil {
		t.Fatalf("sdk-go cannot read the message: %v\nheaders %v", err, hh)
	}
	return *e
}

func TestInteropBinaryFromSDK(t *testing.T) {
	sdk := sdkEvent(t, false)
	h, payload := sdkBinaryWrite(t, sdk)
	ev, err := Decode(h, payload)
	if err != nil {
		t.Fatalf("Decode: %v\nheaders %v", err, h)
	}
	if ev.Mode != ModeBinary {
		t.Errorf("Mode = %v, want binary", ev.Mode)
	}
	sameEvent(t, sdk, ev)
}

// TestInteropBinaryPercentFromSDK pins the one known gap: sdk-go writes '%'
// unencoded (cloudevents/sdk-go#1331), which the binding forbids, so Decode
// reads it as an escape.
func TestInteropBinaryPercentFromSDK(t *testing.T) {
	sdk := sdkEvent(t, false)
	sdk.SetExtension("progress", "100% done")
	h, payload := sdkBinaryWrite(t, sdk)
	_, err := Decode(h, payload)
	checkFieldError(t, err, "ce-progress", "percent")

	sdk.SetExtension("progress", "%41")
	h, payload = sdkBinaryWrite(t, sdk)
	ev, err := Decode(h, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Extensions["progress"]; got != "A" {
		t.Errorf(`"%%41" from sdk-go decoded as %q, want "A" (one round of percent-decoding)`, got)
	}
}

func TestInteropBinaryToSDK(t *testing.T) {
	ours := ourEvent(true)
	h, payload, err := Encode(ours, ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	sdk := sdkBinaryRead(t, h, payload)

	// sdk-go does not percent-decode (cloudevents/sdk-go#1331): it sees the
	// values that needed encoding still encoded, and every other value as
	// is. Undoing the escapes on its side gives our event back exactly.
	if sdk.Subject() != escapeHeader(ours.Subject) {
		t.Errorf("sdk-go subject = %q, want the escaped %q", sdk.Subject(), escapeHeader(ours.Subject))
	}
	subject, err := url.PathUnescape(sdk.Subject())
	if err != nil {
		t.Fatal(err)
	}
	sdk.SetSubject(subject)
	for name, v := range sdk.Extensions() {
		s, _ := v.(string)
		if s != escapeHeader(ours.Extensions[name]) {
			t.Errorf("sdk-go extension %s = %q, want %q", name, s, escapeHeader(ours.Extensions[name]))
		}
		u, err := url.PathUnescape(s)
		if err != nil {
			t.Fatal(err)
		}
		sdk.SetExtension(name, u)
	}
	sameEvent(t, sdk, ours)
}
