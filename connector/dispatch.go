package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// route is one registered endpoint: an action of a console.
type route struct {
	action  handlers.Action
	env     *handlers.Env
	denied  bool // the console's actions.deny lists the action
	ep      *endpoint
	subject string
}

// dispatcher runs action requests on a bounded pool of goroutines. One
// dispatcher serves every endpoint of a process, so max_in_flight bounds the
// whole process, not one action.
type dispatcher struct {
	log           *slog.Logger
	actionTimeout time.Duration
	maxRequest    int   // bytes of request data; larger is a 413
	maxPayload    int64 // the server's max payload; a larger reply is a 413
	obs           observer

	slots    chan struct{}
	inflight sync.WaitGroup
	stopping chan struct{} // closed when the process begins to stop
	// workCtx is cancelled when the drain timeout passes: requests still
	// running then give up and answer 503.
	workCtx    context.Context
	cancelWork context.CancelFunc
	stopOnce   sync.Once
}

func newDispatcher(log *slog.Logger, maxInFlight int, actionTimeout time.Duration, maxRequest int, obs observer) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	if obs == nil {
		obs = nopObserver{}
	}
	return &dispatcher{
		log: log, actionTimeout: actionTimeout, maxRequest: maxRequest, obs: obs,
		slots: make(chan struct{}, maxInFlight), stopping: make(chan struct{}),
		workCtx: ctx, cancelWork: cancel,
	}
}

// handle is the subscription callback. It waits for a free slot (that wait is
// the backpressure: messages queue in the client meanwhile) and serves the
// request on its own goroutine. Time spent waiting counts against the
// request's deadline: a request whose deadline passed in the queue gets 408.
func (d *dispatcher) handle(r *route, m *nats.Msg) {
	received := time.Now()
	select {
	case d.slots <- struct{}{}:
	case <-d.stopping:
		d.reply(r, m, ce.Event{}, received, handlers.Errorf(handlers.CodeUnavailable, "s1bridge is shutting down; retry, another replica will answer"))
		return
	}
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		defer func() { <-d.slots }()
		d.serve(r, m, received)
	}()
}

// serve runs one request to its reply. A panic anywhere below becomes a 500
// reply and an error log line; the process goes on.
func (d *dispatcher) serve(r *route, m *nats.Msg, received time.Time) {
	var req ce.Event
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("action panicked", "console", r.env.Console, "action", r.action.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			d.reply(r, m, req, received, &handlers.Error{Code: handlers.CodeInternal, Message: "internal error while running " + r.action.Name})
		}
	}()

	req, err := ce.Decode(m.Header, m.Data)
	if err != nil {
		// ce's errors name the attribute or header at fault.
		d.reply(r, m, req, received, &handlers.Error{Code: handlers.CodeInvalid, Message: err.Error(), Err: err})
		return
	}
	if req.Mode == ce.ModePlain {
		req.ID = ce.NewID()
	}
	if herr := d.admit(r, m, &req, received); herr != nil {
		d.reply(r, m, req, received, herr)
		return
	}
	deadline := received.Add(d.actionTimeout)
	if exp, ok, _ := req.ExpiryTime(); ok {
		// The caller stops waiting at its expirytime: stop the work a little
		// before, so that a 504 can still reach it.
		if exp = exp.Add(-replyMargin(exp.Sub(received))); exp.Before(deadline) {
			deadline = exp
		}
	}
	ctx, cancel := context.WithDeadline(d.workCtx, deadline)
	defer cancel()
	ctx = withRequest(ctx, req)

	result, err := r.action.Handle(ctx, r.env.WithLogger(d.requestLogger(r, req)), req.Data)
	if err != nil {
		d.reply(r, m, req, received, d.classify(ctx, err))
		return
	}
	var data []byte
	if a, ok := result.(handlers.Appender); ok {
		data = a.AppendJSON(make([]byte, 0, 16<<10))
	} else {
		data, err = json.Marshal(result)
	}
	if err != nil {
		d.reply(r, m, req, received, &handlers.Error{Code: handlers.CodeInternal, Message: "could not encode the reply", Err: err})
		return
	}
	d.replyData(r, m, req, received, data)
}

// replyMargin is how long before a request's expirytime its work ends, so
// that the reply (a 504 when SentinelOne has not answered) reaches a caller
// that waits until then, even on a busy machine: a fifth of the request's
// time, at most 250 ms.
func replyMargin(budget time.Duration) time.Duration {
	return min(budget/5, 250*time.Millisecond)
}

// admit checks what must hold before any work begins.
func (d *dispatcher) admit(r *route, m *nats.Msg, req *ce.Event, received time.Time) *handlers.Error {
	if m.Reply == "" {
		return handlers.Invalid("reply", "the request has no reply subject; use request-reply")
	}
	if req.Type != "" {
		if named, ok := subjects.ActionFromType(req.Type); ok && named != r.action.Name {
			return handlers.Invalid("type", "%q names action %q but was sent to %q; expected %q", req.Type, named, r.action.Name, subjects.RequestType(r.action.Name))
		} else if !ok && len(req.Type) > len(subjects.TypePrefix) && req.Type[:len(subjects.TypePrefix)] == subjects.TypePrefix {
			return handlers.Invalid("type", "%q is in the s1bridge namespace but is not a request type; expected %q", req.Type, subjects.RequestType(r.action.Name))
		}
	}
	if d.maxRequest > 0 && len(req.Data) > d.maxRequest {
		return handlers.Errorf(handlers.CodeTooLarge, "data: request of %d bytes is over the limit of %d", len(req.Data), d.maxRequest)
	}
	exp, ok, err := req.ExpiryTime()
	if err != nil {
		return handlers.Invalid(subjects.ExtExpiryTime, "%v", err)
	}
	if ok && !exp.After(received) {
		return handlers.Errorf(handlers.CodeExpired, "expirytime %s had passed before work began", exp.Format(time.RFC3339Nano))
	}
	if ok && !exp.After(time.Now()) {
		return handlers.Errorf(handlers.CodeExpired, "expirytime %s passed while the request waited for a free worker", exp.Format(time.RFC3339Nano))
	}
	if r.denied {
		return handlers.Errorf(handlers.CodeDenied, "action %s is denied on console %s by configuration (consoles.%s.actions.deny)", r.action.Name, r.env.Console, r.env.Console)
	}
	return nil
}

// classify maps a handler error to the contract, telling a deadline that
// passed (504), a shutdown (503) and everything else apart.
func (d *dispatcher) classify(ctx context.Context, err error) *handlers.Error {
	herr := handlers.AsError(err)
	if herr.Code == handlers.CodeInternal && errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) && herr.Code >= 500 {
		return &handlers.Error{Code: handlers.CodeUpstreamTimeout, Message: "the action's deadline passed before SentinelOne answered", Retryable: true, Err: err}
	}
	if d.workCtx.Err() != nil && herr.Code >= 500 {
		return &handlers.Error{Code: handlers.CodeUnavailable, Message: "s1bridge is shutting down; retry, another replica will answer", Retryable: true, Err: err}
	}
	return herr
}

func (d *dispatcher) requestLogger(r *route, req ce.Event) *slog.Logger {
	attrs := []any{"console", r.env.Console, "action", r.action.Name, "id", req.ID}
	if tp := req.TraceParent(); tp != "" {
		attrs = append(attrs, subjects.ExtTraceParent, tp)
	}
	return d.log.With(attrs...)
}

// replyData sends a successful reply, or a 413 when it would not fit.
func (d *dispatcher) replyData(r *route, m *nats.Msg, req ce.Event, received time.Time, data []byte) {
	ev := replyEvent(r, req, subjects.ResponseType(r.action.Name), data)
	msg, err := encodeReply(m, ev, req.Mode)
	if err == nil && d.tooLarge(msg) {
		err = handlers.Errorf(handlers.CodeTooLarge, "reply of %d bytes is over the NATS max payload; ask for fewer items (limit) or follow nextCursor", len(msg.Data))
	}
	if err != nil {
		d.reply(r, m, req, received, handlers.AsError(err))
		return
	}
	d.send(r, m, msg, req, received, nil)
}

// maxErrorMessage bounds the message of an error reply. Messages quote the
// value at fault, which a hostile request can make megabytes long, and the
// message goes out twice (header and data): unbounded, it could push the
// reply past the max payload and leave the caller with no answer at all.
const maxErrorMessage = 1024

// reply sends an error reply: the micro error headers plus an s1bridge.error
// CloudEvent in the request's mode.
func (d *dispatcher) reply(r *route, m *nats.Msg, req ce.Event, received time.Time, herr *handlers.Error) {
	if len(herr.Message) > maxErrorMessage {
		short := *herr
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(herr.Message[cut]) {
			cut--
		}
		short.Message = herr.Message[:cut] + "…"
		herr = &short
	}
	data, _ := json.Marshal(herr.Data())
	ev := replyEvent(r, req, subjects.TypeError, data)
	// A request that could not be read still has the mode it was sent in,
	// when it could be told; binary is the default.
	msg, err := encodeReply(m, ev, req.Mode)
	if err != nil {
		msg = &nats.Msg{Subject: m.Reply, Header: nats.Header{}, Data: data}
	}
	msg.Header.Set(subjects.HeaderErrorCode, strconv.Itoa(herr.Code))
	msg.Header.Set(subjects.HeaderError, herr.Message)
	d.send(r, m, msg, req, received, herr)
}

func (d *dispatcher) send(r *route, m *nats.Msg, msg *nats.Msg, req ce.Event, received time.Time, herr *handlers.Error) {
	code := 200
	if herr != nil {
		code = herr.Code
	}
	if m.Reply != "" {
		if err := m.RespondMsg(msg); err != nil {
			d.log.Warn("could not send reply", "console", r.env.Console, "action", r.action.Name, "id", req.ID, "error", err)
		}
	}
	took := time.Since(received)
	errMsg := ""
	if herr != nil {
		errMsg = strconv.Itoa(herr.Code) + " " + herr.Message
	}
	r.ep.record(took, errMsg)
	d.obs.actionDone(r.env.Console, r.action.Name, code, took)
	level := slog.LevelDebug
	if herr != nil && herr.Code >= 500 {
		level = slog.LevelWarn
	}
	if d.log.Enabled(context.Background(), level) {
		attrs := []slog.Attr{
			slog.String("console", r.env.Console), slog.String("action", r.action.Name), slog.String("id", req.ID),
			slog.Int("code", code), slog.Duration("took", took),
		}
		if tp := req.TraceParent(); tp != "" {
			attrs = append(attrs, slog.String(subjects.ExtTraceParent, tp))
		}
		if herr != nil {
			attrs = append(attrs, slog.String("error", herr.Error()))
		}
		d.log.LogAttrs(context.Background(), level, "action done", attrs...)
	}
}

func replyEvent(r *route, req ce.Event, typ string, data []byte) ce.Event {
	ev := ce.Event{
		SpecVersion:     subjects.SpecVersion,
		ID:              ce.NewID(),
		Source:          subjects.Source(r.env.Console),
		Type:            typ,
		Time:            time.Now().UTC(),
		DataContentType: subjects.ContentTypeJSON,
		Extensions:      map[string]string{},
		Data:            data,
	}
	if req.ID != "" {
		ev.Extensions[subjects.ExtCorrelationID] = req.ID
	}
	if tp := req.TraceParent(); tp != "" {
		ev.Extensions[subjects.ExtTraceParent] = tp
		if ts := req.TraceState(); ts != "" {
			ev.Extensions[subjects.ExtTraceState] = ts
		}
	}
	return ev
}

func encodeReply(m *nats.Msg, ev ce.Event, mode ce.Mode) (*nats.Msg, error) {
	if mode != ce.ModeStructured {
		mode = ce.ModeBinary
	}
	h, data, err := ce.Encode(ev, mode)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: m.Reply, Header: h, Data: data}, nil
}

// tooLarge reports whether msg would exceed the server's max payload (headers
// count against it).
func (d *dispatcher) tooLarge(msg *nats.Msg) bool {
	if d.maxPayload <= 0 {
		return false
	}
	size := int64(len(msg.Data))
	for k, vs := range msg.Header {
		for _, v := range vs {
			size += int64(len(k) + len(v) + 4)
		}
	}
	return size+64 > d.maxPayload
}

// beginStop stops taking work from the queue: callers waiting for a slot are
// answered 503.
func (d *dispatcher) beginStop() { d.stopOnce.Do(func() { close(d.stopping) }) }

// wait waits for the requests in flight, at most until ctx ends; then the
// ones still running are cancelled (they answer 503) and wait returns once
// they have replied.
func (d *dispatcher) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.cancelWork()
		<-done
		return fmt.Errorf("drain timeout: requests still running were cancelled: %w", ctx.Err())
	}
}
