// Command client is an example s1bridge client to copy: it sends one action
// request as a binary-mode CloudEvent (built with the CloudEvents Go SDK,
// sent with nats.go), checks the reply (its correlationid, the NATS micro
// error headers), then reads events from the events stream through a
// durable JetStream consumer with a filter subject, acknowledging each.
//
//	go run ./examples/client --server nats://127.0.0.1:4222 --action agents.list --data '{"limit":2}'
//
// It depends only on nats.go and the CloudEvents SDK, not on s1bridge, so
// the wire names (subjects, header names, types) are spelled here as the
// contract (docs/asyncapi.yaml) gives them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	server, prefix, console, action, data string
	stream, consumer                      string
	events                                int
	timeout                               time.Duration
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.StringVar(&o.server, "server", nats.DefaultURL, "NATS server URL")
	fs.StringVar(&o.prefix, "prefix", "s1", "subjects.prefix of the s1bridge deployment")
	fs.StringVar(&o.console, "console", "main", "console name")
	fs.StringVar(&o.action, "action", "agents.list", "action to call")
	fs.StringVar(&o.data, "data", `{"limit":2}`, "request data (JSON object)")
	fs.StringVar(&o.stream, "stream", "S1_EVENTS", "events stream (streams.events.name)")
	fs.StringVar(&o.consumer, "consumer", "example-client", "durable consumer name: a second run goes on where the first stopped")
	fs.IntVar(&o.events, "events", 5, "events to read (0: none)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of the request, and of reading the events")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if !json.Valid([]byte(o.data)) {
		return nil, fmt.Errorf("--data is not JSON: %s", o.data)
	}
	return o, nil
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(o.server, nats.Name("s1bridge example client"))
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	if err := callAction(ctx, nc, o, out); err != nil {
		return err
	}
	if o.events > 0 {
		return readEvents(ctx, nc, o, out)
	}
	return nil
}

// callAction sends the request and prints the reply.
func callAction(ctx context.Context, nc *nats.Conn, o *options, out io.Writer) error {
	req := cloudevents.NewEvent()
	req.SetID(uuid.NewString())
	req.SetSource("/examples/client")
	req.SetType("s1bridge." + o.action + ".request")
	req.SetTime(time.Now())
	if deadline, ok := ctx.Deadline(); ok {
		// s1bridge does not start work its caller has given up on.
		req.SetExtension("expirytime", deadline)
	}
	if err := req.SetData(cloudevents.ApplicationJSON, json.RawMessage(o.data)); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	msg, err := binaryMessage(o.prefix+"."+o.console+".action."+o.action, req)
	if err != nil {
		return err
	}
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no s1bridge serves console %q (is it running, and is the console configured?)", o.console)
	}
	if err != nil {
		return err
	}
	resp, err := eventOf(reply)
	if err != nil {
		return fmt.Errorf("unreadable reply: %w", err)
	}
	if got, _ := resp.Extensions()["correlationid"].(string); got != req.ID() {
		return fmt.Errorf("reply correlationid %q is not the request id %q", got, req.ID())
	}
	fmt.Fprintf(out, "reply type=%s correlationid=%s\n", resp.Type(), req.ID())
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
		// The data says more: {code, message, retryable, upstreamStatus?, details?}.
		var e struct {
			Code      int    `json:"code"`
			Message   string `json:"message"`
			Retryable bool   `json:"retryable"`
		}
		_ = json.Unmarshal(resp.Data(), &e)
		fmt.Fprintf(out, "error code=%s retryable=%t message=%s\n", code, e.Retryable, reply.Header.Get("Nats-Service-Error"))
		return fmt.Errorf("%s answered %s", o.action, code)
	}
	fmt.Fprintf(out, "data %s\n", resp.Data())
	return nil
}

// readEvents reads up to o.events events through a durable consumer of the
// console's events, acknowledging each after it is handled.
func readEvents(ctx context.Context, nc *nats.Conn, o *options, out io.Writer) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, o.stream, jetstream.ConsumerConfig{
		Durable:       o.consumer,
		FilterSubject: o.prefix + "." + o.console + ".event.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	for read := 0; read < o.events; {
		batch, err := cons.Fetch(o.events-read, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			ev, err := eventOf(&nats.Msg{Header: m.Headers(), Data: m.Data()})
			if err != nil {
				_ = m.Term() // never readable: do not redeliver it
				return fmt.Errorf("event on %s: %w", m.Subject(), err)
			}
			fmt.Fprintf(out, "event subject=%s type=%s id=%s\n", m.Subject(), ev.Type(), ev.ID())
			if err := m.Ack(); err != nil {
				return err
			}
			read++
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read %d of %d events before the deadline", read, o.events)
		}
	}
	return nil
}

// The CloudEvents NATS binding, binary mode: attributes in ce-* headers
// (percent-encoded), data in the payload.
const headerPrefix = "ce-"

// binaryMessage encodes ev as a binary-mode NATS message on subject.
func binaryMessage(subject string, ev cloudevents.Event) (*nats.Msg, error) {
	m := nats.NewMsg(subject)
	set := func(name, value string) { m.Header.Set(headerPrefix+name, encodeHeader(value)) }
	set("specversion", ev.SpecVersion())
	set("id", ev.ID())
	set("source", ev.Source())
	set("type", ev.Type())
	if !ev.Time().IsZero() {
		set("time", ev.Time().UTC().Format(time.RFC3339Nano))
	}
	if ct := ev.DataContentType(); ct != "" {
		set("datacontenttype", ct)
	}
	for name, v := range ev.Extensions() {
		s, err := extensionString(v)
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", name, err)
		}
		set(name, s)
	}
	m.Data = ev.Data()
	return m, nil
}

// eventOf decodes a message (a reply or an event) in either mode of the
// CloudEvents NATS binding: structured (the whole event as JSON, the form
// streams.events.mode: structured publishes) or binary.
func eventOf(m *nats.Msg) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent()
	if ct := m.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/cloudevents+json") {
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return ev, fmt.Errorf("structured CloudEvent: %w", err)
		}
		return ev, ev.Validate()
	}
	get := func(name string) string { return decodeHeader(m.Header.Get(headerPrefix + name)) }
	if get("specversion") != "1.0" || get("id") == "" || get("type") == "" {
		return ev, errors.New("not a binary-mode CloudEvent 1.0 (no ce-specversion, ce-id or ce-type)")
	}
	ev.SetID(get("id"))
	ev.SetSource(get("source"))
	ev.SetType(get("type"))
	if s := get("subject"); s != "" {
		ev.SetSubject(s)
	}
	if t := get("time"); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return ev, fmt.Errorf("ce-time %q: %w", t, err)
		}
		ev.SetTime(at)
	}
	for name := range m.Header {
		lower := strings.ToLower(name)
		ext, ok := strings.CutPrefix(lower, headerPrefix)
		if !ok || isContextAttribute(ext) {
			continue
		}
		ev.SetExtension(ext, decodeHeader(m.Header.Get(name)))
	}
	if err := ev.SetData(or(get("datacontenttype"), cloudevents.ApplicationJSON), json.RawMessage(m.Data)); err != nil {
		return ev, err
	}
	return ev, ev.Validate()
}

func isContextAttribute(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema":
		return true
	}
	return false
}

func extensionString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	return "", fmt.Errorf("unsupported type %T", v)
}

// encodeHeader percent-encodes what a header value may not carry as is:
// '%', '"', and bytes outside printable ASCII.
func encodeHeader(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' || c == '"' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeHeader undoes encodeHeader; a malformed escape is kept as it is.
func decodeHeader(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
