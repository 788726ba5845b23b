package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/subjects"
)

// Streams a reader may name (--stream), and what each holds.
const (
	StreamEvents = "events" // <prefix>.*.event.>: threats, alerts, monitors, action outcomes, token health
	StreamAudit  = "audit"  // <prefix>.*.audit.>: the audit records of mutating actions
)

// ErrNoStream is returned when the server has no stream for what is asked.
var ErrNoStream = errors.New("no stream holds the subjects")

// FindStream returns the name of the stream of kind (StreamEvents or
// StreamAudit) of the deployment whose prefix is subj's: the stream that
// holds its subjects, whatever streams.*.name calls it. It fails with
// ErrNoStream, naming the usual name, when there is none.
func FindStream(ctx context.Context, js jetstream.JetStream, subj subjects.Subjects, kind string) (name, wildcard string, err error) {
	usual := ""
	switch kind {
	case StreamEvents:
		wildcard, usual = subj.EventsWildcard(), subj.EventsStream()
	case StreamAudit:
		wildcard, usual = subj.AuditWildcard(), subj.AuditStream()
	default:
		return "", "", fmt.Errorf("stream %q: want %s or %s", kind, StreamEvents, StreamAudit)
	}
	name, err = js.StreamNameBySubject(ctx, wildcard)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		hint := ""
		if kind == StreamAudit {
			hint = " (the audit stream is written by s1bridge versions with audit records)"
		}
		return "", wildcard, fmt.Errorf("%w %s on this server (usually stream %s)%s: is s1bridge running there with this --prefix?",
			ErrNoStream, wildcard, usual, hint)
	}
	if err != nil {
		return "", wildcard, fmt.Errorf("look up the stream of %s: %w", wildcard, err)
	}
	return name, wildcard, nil
}

// Within reports whether every subject filter matches is also matched by
// wildcard (a stream's subjects): a filter outside the stream reads
// nothing, and is better refused with a message than answered by silence.
func Within(filter, wildcard string) bool {
	f, w := strings.Split(filter, "."), strings.Split(wildcard, ".")
	for i, ft := range f {
		if i >= len(w) {
			return false
		}
		switch wt := w[i]; {
		case wt == ">":
			return true
		case ft == ">":
			return false // the filter goes on where the stream stops
		case wt == "*":
		case ft == "*" || ft != wt:
			return false
		}
	}
	return len(f) == len(w)
}

// ValidFilter reports whether s is a NATS subject filter: dot-separated
// non-empty tokens of printable characters, "*" a whole token, ">" only the
// whole last one.
func ValidFilter(s string) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "", strings.ContainsAny(t, " \t\r\n"):
			return false
		case t == ">":
			if i != len(toks)-1 {
				return false
			}
		case strings.ContainsAny(t, "*>") && t != "*":
			return false
		}
	}
	return true
}

// ReadOptions says what ReadEvents reads.
type ReadOptions struct {
	// Stream is the stream's name; Filter a subject filter within it
	// ("" reads every subject).
	Stream, Filter string
	// Since starts at the first event stored at or after it; zero starts
	// at the beginning.
	Since time.Time
	// Follow keeps reading new events after the stored ones, until ctx
	// ends; otherwise ReadEvents returns once it has read what the stream
	// held when it started.
	Follow bool
}

// ReadEvents reads events with an ordered consumer (nothing is left behind
// on the server) and calls fn with each, in stream order. It returns how
// many it read.
func ReadEvents(ctx context.Context, js jetstream.JetStream, o ReadOptions, fn func(jetstream.Msg) error) (int, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if o.Filter != "" {
		cfg.FilterSubjects = []string{o.Filter}
	}
	if !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := js.OrderedConsumer(ctx, o.Stream, cfg)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", o.Stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", o.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", o.Stream, err)
	}
	defer it.Stop()
	left, n := info.NumPending, 0
	for o.Follow || uint64(n) < left {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 10*time.Millisecond {
			<-ctx.Done()
			return n, nil
		}
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		expired := nctx.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return n, nil
		case err != nil && expired:
			// Nothing for a while. Events stored when the read began may
			// have aged out since (max_age): stop when none is left.
			if !o.Follow {
				if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 {
					return n, nil
				}
			}
			continue
		case err != nil:
			return n, fmt.Errorf("read %s after %d events: %w", o.Stream, n, err)
		}
		n++
		if err := fn(m); err != nil {
			return n, err
		}
	}
	return n, nil
}

// WaitEvent waits until ctx ends for the first event on subject (a
// wildcard such as a monitor's or a tracked action's reply subject) in
// stream, and returns it. It reads from the beginning of the stream, not
// from now: the subject names one monitor or tracking id, so whatever the
// stream holds on it is that request's outcome, also when it was published
// before the reply arrived (a threat already resolved) or long ago (a
// repeated, idempotent request); and no clock needs to agree with the
// server's.
func WaitEvent(ctx context.Context, js jetstream.JetStream, stream, subject string) (jetstream.Msg, error) {
	var got jetstream.Msg
	errDone := errors.New("done")
	_, err := ReadEvents(ctx, js, ReadOptions{Stream: stream, Filter: subject, Follow: true}, func(m jetstream.Msg) error {
		got = m
		return errDone
	})
	switch {
	case got != nil:
		return got, nil
	case err == nil:
		return nil, ctx.Err()
	}
	return nil, err
}

// FormatEvent writes an event message as its CloudEvent in JSON (the
// structured form, whatever mode it was stored in), on one line or
// indented.
func FormatEvent(m jetstream.Msg, indent bool) ([]byte, error) {
	ev, err := ce.Decode(nats.Header(m.Headers()), m.Data())
	if err != nil {
		return nil, fmt.Errorf("event %s is not a CloudEvent: %w", m.Subject(), err)
	}
	_, body, err := ce.Encode(ev, ce.ModeStructured)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if indent {
		err = json.Indent(&out, body, "", "  ")
	} else {
		err = json.Compact(&out, body)
	}
	if err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// IsFailure reports whether an outcome event says the work did not get
// done: an action that failed, or a monitor or action that timed out.
func IsFailure(ceType string) bool {
	return strings.HasSuffix(ceType, "."+subjects.OutcomeFailed) || strings.HasSuffix(ceType, "."+subjects.OutcomeTimedOut)
}
