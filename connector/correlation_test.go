package connector_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// TestErrorReplyKeepsCorrelation sends requests that cannot be served as
// they are (data that is not JSON, a bad attribute, a missing one) but
// whose id can be read: every error reply must carry that id as
// correlationid, in the request's mode. A request whose id cannot be read
// still gets its 400.
func TestErrorReplyKeepsCorrelation(t *testing.T) {
	env := testenv.Start(t, nil)
	subject := env.Connector.Subjects().Action("main", "agents.list")
	binary := func(id string, edit func(nats.Header)) nats.Header {
		h := nats.Header{}
		h.Set("ce-specversion", subjects.SpecVersion)
		h.Set("ce-id", id)
		h.Set("ce-source", "/correlation-test")
		h.Set("ce-type", subjects.RequestType("agents.list"))
		h.Set(subjects.HeaderContentType, subjects.ContentTypeJSON)
		if edit != nil {
			edit(h)
		}
		return h
	}
	structured := nats.Header{subjects.HeaderContentType: []string{subjects.ContentTypeCloudEvent}}
	for _, tc := range []struct {
		name   string
		header nats.Header
		data   string
		mode   ce.Mode
		want   string // the correlationid; "" when the id cannot be read
	}{
		{"binary, data not JSON", binary("corr-bin-1", nil), `not json`, ce.ModeBinary, "corr-bin-1"},
		{"binary, bad time", binary("corr-bin-2", func(h nats.Header) { h.Set("ce-time", "yesterday") }), `{}`, ce.ModeBinary, "corr-bin-2"},
		{"binary, no type", binary("corr-bin-3", func(h nats.Header) { h.Del("ce-type") }), `{}`, ce.ModeBinary, "corr-bin-3"},
		{"binary, percent-encoded id", binary("corr%20bin%2D4", func(h nats.Header) { h.Set("ce-time", "yesterday") }), `{}`, ce.ModeBinary, "corr bin-4"},
		{"binary, unreadable id", binary("corr%zz", nil), `not json`, ce.ModeBinary, ""},
		{"structured, bad time", structured,
			`{"specversion":"1.0","id":"corr-str-1","source":"/t","type":"s1bridge.agents.list.request","time":"yesterday","data":{}}`, ce.ModeStructured, "corr-str-1"},
		{"structured, no source", structured,
			`{"specversion":"1.0","id":"corr-str-2","type":"s1bridge.agents.list.request","data":{}}`, ce.ModeStructured, "corr-str-2"},
		{"structured, data_base64 not base64", structured,
			`{"specversion":"1.0","id":"corr-str-3","source":"/t","type":"s1bridge.agents.list.request","data_base64":"%%%"}`, ce.ModeStructured, "corr-str-3"},
		{"structured, malformed JSON", structured, `{"specversion":"1.0","id":"corr-str-4",`, ce.ModeStructured, ""},
		{"structured, id not a string", structured,
			`{"specversion":"1.0","id":7,"source":"/t","type":"s1bridge.agents.list.request"}`, ce.ModeStructured, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			msg, err := env.NC.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Header: tc.header, Data: []byte(tc.data)})
			if err != nil {
				t.Fatal(err)
			}
			r := parse(t, msg)
			checkError(t, r, 400, "")
			if got := r.Event.CorrelationID(); got != tc.want {
				t.Errorf("correlationid %q, want %q (reply to: %s)", got, tc.want, r.Err.Message)
			}
			if r.Event.Mode != tc.mode {
				t.Errorf("reply mode %v, want %v", r.Event.Mode, tc.mode)
			}
		})
	}
}
