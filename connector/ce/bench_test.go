package ce

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// benchPayload is a typical request of about 200 bytes.
var benchPayload = json.RawMessage(`{"hash":"3395856ce81f2b7382dee72602f798b642f14140","osTypes":["windows","macos","linux"],` +
	`"description":"blocked by the SOAR playbook after triage of incident 4711","scope":{"tenant":true}}`)

// benchEvent is a request as an SDK would send it: the required attributes,
// time, datacontenttype and a traceparent.
func benchEvent() Event {
	return Event{
		ID:              "8f6c2a9e-55b1-4a0e-9d1e-0c2f3f6a7b81",
		Source:          "/soar/playbooks/triage",
		Type:            "s1bridge.blocklist.add.request",
		Time:            time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC),
		DataContentType: "application/json",
		Extensions: map[string]string{
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		},
		Data: benchPayload,
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, mode := range []Mode{ModeBinary, ModeStructured, ModePlain} {
		var (
			h   nats.Header
			p   []byte
			err error
		)
		if mode == ModePlain {
			p = benchPayload
		} else if h, p, err = Encode(benchEvent(), mode); err != nil {
			b.Fatal(err)
		}
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := Decode(h, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	// A reply: new id, source, type, correlationid, traceparent.
	ev := benchEvent()
	ev.ID = NewID()
	ev.Source = "/s1bridge/main"
	ev.Type = "s1bridge.blocklist.add.response"
	ev.SetExtension("correlationid", "8f6c2a9e-55b1-4a0e-9d1e-0c2f3f6a7b81")
	for _, mode := range []Mode{ModeBinary, ModeStructured} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Encode(ev, mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}
