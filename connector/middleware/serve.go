package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// Decode reads the request's CloudEvent into req.Event; a request that is
// not one answers 400 naming the attribute at fault (and, when its id could
// be read, carries it as correlationid). A plain-JSON request is given an
// id.
func Decode(next HandlerFunc) HandlerFunc {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		ev, err := ce.Decode(req.Msg.Header, req.Msg.Data)
		req.Event = ev
		if err != nil {
			return nil, &handlers.Error{Code: handlers.CodeInvalid, Message: err.Error(), Err: err}
		}
		if ev.Mode == ce.ModePlain {
			req.Event.ID = ce.NewID()
		}
		return next(ctx, req)
	}
}

// Parse decodes and validates the action's request (Action.Decode) into
// req.Parsed: a request that is not valid answers 400 naming the field,
// before anything below it (an idempotency claim, an audit record, the
// action) happens.
func Parse(next HandlerFunc) HandlerFunc {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		parsed, err := req.Action.Decode(req.Env, req.Event.Data)
		if err != nil {
			return nil, err
		}
		req.Parsed = parsed
		return next(ctx, req)
	}
}

// Admit refuses what must not run, before any work begins: a request with
// no reply subject, a type naming another action, an expirytime that has
// passed (408), an action the console denies (403).
func Admit(next HandlerFunc) HandlerFunc {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		if herr := admit(req); herr != nil {
			return nil, herr
		}
		return next(ctx, req)
	}
}

func admit(req *Request) *handlers.Error {
	name := req.Action.Name
	if req.Msg.Reply == "" {
		return handlers.Invalid("reply", "the request has no reply subject; use request-reply")
	}
	if typ := req.Event.Type; typ != "" {
		if named, ok := subjects.ActionFromType(typ); ok && named != name {
			return handlers.Invalid("type", "%q names action %q but was sent to %q; expected %q", typ, named, name, subjects.RequestType(name))
		} else if !ok && len(typ) > len(subjects.TypePrefix) && strings.HasPrefix(typ, subjects.TypePrefix) {
			return handlers.Invalid("type", "%q is in the s1bridge namespace but is not a request type; expected %q", typ, subjects.RequestType(name))
		}
	}
	exp, ok, err := req.Event.ExpiryTime()
	if err != nil {
		return handlers.Invalid(subjects.ExtExpiryTime, "%v", err)
	}
	if ok && !exp.After(req.Received) {
		return handlers.Errorf(handlers.CodeExpired, "expirytime %s had passed before work began", exp.Format(time.RFC3339Nano))
	}
	if ok && !exp.After(time.Now()) {
		return handlers.Errorf(handlers.CodeExpired, "expirytime %s passed while the request waited for a free worker", exp.Format(time.RFC3339Nano))
	}
	if req.Denied {
		console := req.Env.Console
		return handlers.Errorf(handlers.CodeDenied, "action %s is denied on console %s by configuration (consoles.%s.actions.deny)", name, console, console)
	}
	return nil
}

// Deadline bounds the work below it: the earlier of the request's arrival
// plus timeout (service.action_timeout) and its expirytime, less a margin
// so that a 504 still reaches a caller who stops waiting then. A handler
// error caused by that deadline answers 504; one caused by the connector
// cancelling work (ctx ending: the drain timeout passed) answers 503.
func Deadline(timeout time.Duration) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, req *Request) ([]byte, error) {
			deadline := req.Received.Add(timeout)
			if exp, ok, _ := req.Event.ExpiryTime(); ok {
				if exp = exp.Add(-replyMargin(exp.Sub(req.Received))); exp.Before(deadline) {
					deadline = exp
				}
			}
			work, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			req.answer = func(err error) *handlers.Error { return classify(ctx, work, err) }
			data, err := next(work, req)
			if err != nil {
				return nil, classify(ctx, work, err)
			}
			return data, nil
		}
	}
}

// replyMargin is how long before a request's expirytime its work ends, so
// that the reply (a 504 when SentinelOne has not answered) reaches a caller
// that waits until then, even on a busy machine: a fifth of the request's
// time, at most 250 ms.
func replyMargin(budget time.Duration) time.Duration {
	return min(budget/5, 250*time.Millisecond)
}

// classify maps a handler error to the contract, telling a deadline that
// passed (504), a shutdown (503: parent ended) and everything else apart.
func classify(parent, work context.Context, err error) *handlers.Error {
	herr := handlers.AsError(err)
	if herr.Code == handlers.CodeUpstreamTimeout && parent.Err() == nil {
		return herr // a 504 below says why itself (a repeat that waited for the first)
	}
	if herr.Code == handlers.CodeInternal && errors.Is(err, context.DeadlineExceeded) || errors.Is(work.Err(), context.DeadlineExceeded) && herr.Code >= 500 {
		return &handlers.Error{Code: handlers.CodeUpstreamTimeout, Message: "the action's deadline passed before SentinelOne answered", Retryable: true, Err: err}
	}
	if parent.Err() != nil && herr.Code >= 500 {
		return shuttingDown(err)
	}
	return herr
}

// shuttingDown is the 503 of a request the process stops before serving.
func shuttingDown(err error) *handlers.Error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Message: "s1bridge is shutting down; retry, another replica will answer", Retryable: true, Err: err}
}

// Unavailable is the end of the chain of a request that arrives while the
// process stops: a 503, so that the caller retries on another replica.
func Unavailable(context.Context, *Request) ([]byte, error) { return nil, shuttingDown(nil) }

// Invoke is the end of every chain: it decodes the request unless Parse
// did, waits for the writes registered with Request.Before, then runs the
// action with its context (request id, source, trace context) and a logger
// that names it, and encodes the reply.
func Invoke(log *slog.Logger) HandlerFunc {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		ev := &req.Event
		if req.Parsed == nil {
			parsed, err := req.Action.Decode(req.Env, ev.Data)
			if err != nil {
				return nil, err
			}
			req.Parsed = parsed
		}
		if err := req.ready(ctx); err != nil {
			return nil, err
		}
		// The console's budget serves mutating actions first, then
		// read-only ones, then background work (DESIGN.md §14).
		lane := sentinelone.LaneRead
		if req.Action.Mutating {
			lane = sentinelone.LaneMutating
		}
		ctx = sentinelone.WithLane(ctx, lane)
		ctx = handlers.WithRequest(ctx, handlers.RequestInfo{
			ID: ev.ID, Source: ev.Source, TraceParent: ev.TraceParent(), TraceState: ev.TraceState(),
		})
		attrs := []slog.Attr{slog.String("console", req.Env.Console), slog.String("action", req.Action.Name), slog.String("id", ev.ID)}
		if tp := ev.TraceParent(); tp != "" {
			// Upstream calls carry the trace context too.
			ctx = sentinelone.WithTraceContext(ctx, tp, ev.TraceState())
			attrs = append(attrs, slog.String(subjects.ExtTraceParent, tp))
		}
		result, err := req.Action.Run(ctx, req.Env.WithLogger(withAttrs(log, attrs)), req.Parsed)
		if err != nil {
			return nil, err
		}
		if a, ok := result.(handlers.Appender); ok {
			size := 16 << 10
			if h, ok := result.(interface{ SizeHint() int }); ok {
				size = h.SizeHint()
			}
			return a.AppendJSON(req.replyBuffer(size)), nil
		}
		data, err := json.Marshal(result)
		if err != nil {
			return nil, &handlers.Error{Code: handlers.CodeInternal, Message: "could not encode the reply", Err: err}
		}
		return data, nil
	}
}

// withAttrs returns log with attrs added to every record it logs. Unlike
// log.With, which formats the attributes at once into a new handler, it
// adds them only to records that are logged: a request's logger usually
// logs nothing, and it is made for every request.
func withAttrs(log *slog.Logger, attrs []slog.Attr) *slog.Logger {
	return slog.New(&lazyAttrs{h: log.Handler(), attrs: attrs})
}

// lazyAttrs is a slog.Handler adding attrs to each record before h handles
// it, first, as slog.Logger.With would.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(l.attrs...)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return l.h.Handle(ctx, out)
}

func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.h.WithAttrs(l.attrs).WithAttrs(attrs)
}

func (l *lazyAttrs) WithGroup(name string) slog.Handler {
	return l.h.WithAttrs(l.attrs).WithGroup(name)
}

// Reply buffers. A list reply is tens of kilobytes, encoded once, copied
// into the NATS connection's write buffer by the send, and then garbage:
// with a two-CPU machine answering thousands of them a second, collecting
// them is much of what the connector costs. A read-only action's reply
// buffer is taken from a pool and given back once the reply is sent
// (Release): nothing on its chain keeps the reply. A mutating action's
// reply is kept by the idempotency layer (the stored outcome) and is never
// pooled.
var replyBuffers sync.Pool // of *[]byte

// maxPooledReply bounds the buffers the pool keeps, so that one large reply
// does not stay in memory for every later small one.
const maxPooledReply = 256 << 10

// replyBuffer returns an empty buffer of at least size bytes for req's
// reply.
func (req *Request) replyBuffer(size int) []byte {
	if req.Action.Mutating || size > maxPooledReply || req.buf != nil {
		return make([]byte, 0, size)
	}
	bp, _ := replyBuffers.Get().(*[]byte)
	if bp == nil || cap(*bp) < size {
		b := make([]byte, 0, max(size, 16<<10))
		bp = &b
	}
	req.buf = bp
	return (*bp)[:0]
}

// Release gives back the buffer req's reply was encoded in. The connector
// calls it once the whole chain has returned: the reply's bytes must not be
// used after it.
func (req *Request) Release() {
	bp := req.buf
	if bp == nil {
		return
	}
	req.buf = nil
	if cap(*bp) <= maxPooledReply {
		replyBuffers.Put(bp)
	}
}
