// Package middleware is how the connector serves one action request: a
// chain of small handlers, each about one concern, around the action
// (Watermill's router middleware). The connector builds one chain per
// endpoint:
//
//	Logging, Stats, Respond, Recover, Decode, Admit, Deadline, Parse, …, Invoke
//
// Logging and Stats see the code of the reply that went out; Respond encodes
// and sends it; Recover turns a panic below it into a 500; Decode reads the
// CloudEvent; Admit refuses what must not run (403, 408, a foreign type);
// Deadline bounds the work and tells a passed deadline (504) from a
// shutdown (503); Parse decodes and validates the action's request (400);
// Invoke runs the action. A concern that applies to some actions only
// (idempotency and audit of mutating actions, a priority step) is one more
// Middleware inserted before Invoke.
//
// Writes that must be stored before the action runs (an idempotency claim,
// the audit's requested record) are started by their middlewares and
// registered with Request.Before: Invoke waits for all of them together,
// so they take one round trip rather than one each, and runs the action
// only when every one succeeded. Writes that must be stored before the
// reply is sent (the audit's completed record, the stored outcome) are
// registered with Request.After: Respond waits for them before it sends.
package middleware

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
)

type (
	// Request is one action request on its way through a chain. The
	// connector fills Action, Env, Denied, Msg and Received; Decode sets
	// Event. Middlewares may read it after their next returns: Respond and
	// Logging do, to answer in the request's mode and name its id.
	Request struct {
		Action handlers.Action
		Env    *handlers.Env // the console's environment
		Denied bool          // consoles.<name>.actions.deny lists the action
		Msg    *nats.Msg
		// Received is when the request arrived: its wait for a worker
		// counts against its deadline.
		Received time.Time
		Event    ce.Event
		// Parsed is the action's request as Action.Decode returned it,
		// set by Parse; nil before (Invoke then decodes it).
		Parsed any
		// Key is the <key> of the audit ids of this execution of the
		// request (subjects.AuditKey), set by the idempotency layer; ""
		// when it is off, and then the audit derives one.
		Key string

		// buf is the pooled buffer the reply was encoded in (replyBuffer),
		// given back by Release.
		buf *[]byte

		before  []func(context.Context) error
		after   []func(context.Context) error
		started bool
		// answer maps an error from below Deadline to the reply's, as
		// Deadline will; set by Deadline.
		answer func(error) *handlers.Error
	}

	// HandlerFunc serves a request: it returns the reply data (JSON), or
	// the error to answer with (a *handlers.Error, or any error, which
	// handlers.AsError maps).
	HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

	// Middleware wraps a HandlerFunc with one concern.
	Middleware func(next HandlerFunc) HandlerFunc
)

// Chain returns h wrapped by mws, the first outermost: Chain(h, a, b) is
// a(b(h)).
func Chain(h HandlerFunc, mws ...Middleware) HandlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Before registers wait, which waits for a write that must be stored before
// the action runs and returns its error. Invoke calls every one, in the
// order registered, and runs the action only if all return nil; the first
// error is the reply.
func (r *Request) Before(wait func(context.Context) error) { r.before = append(r.before, wait) }

// DropBefore forgets the Before writes not waited for yet: a middleware
// that calls next again (the idempotency layer after losing a claim) must
// not leave the last try's writes in front of the next one's.
func (r *Request) DropBefore() { r.before = nil }

// After registers wait, which waits for a write that must be stored before
// the reply is sent. Respond calls every one before it sends the reply;
// their errors are theirs to report (the reply is what it is).
func (r *Request) After(wait func(context.Context) error) { r.after = append(r.after, wait) }

// Answer returns the error the caller will be answered with for err, an
// error of the work below Deadline: Deadline's mapping of errors its
// deadline or a shutdown caused (504, 503) applied. A middleware below
// Deadline that records an outcome (the audit, the idempotency records)
// records this one.
func (r *Request) Answer(err error) *handlers.Error {
	if err == nil {
		return nil
	}
	if r.answer != nil {
		return r.answer(err)
	}
	return handlers.AsError(err)
}

// Started reports whether the action began to run: every Before write was
// stored and Invoke called it. A request refused before, or whose Before
// writes failed, did not start.
func (r *Request) Started() bool { return r.started }

// ready waits for the Before writes; on success the action has started.
// The list is emptied, so that a request run again (an idempotency
// takeover) waits only for its new writes.
func (r *Request) ready(ctx context.Context) error {
	waits := r.before
	r.before = nil
	for _, w := range waits {
		if err := w(ctx); err != nil {
			return err
		}
	}
	r.started = true
	return nil
}

// settleTimeout bounds Respond's wait for the After writes. Each is a
// JetStream publish whose ack times out on its own (store's
// PublishAckTimeout, 5 s); this only stops a wait that would not.
const settleTimeout = 10 * time.Second

// settle waits for the After writes, even when ctx has ended: a reply sent
// before its completed audit record is stored breaks the audit's promise.
func (r *Request) settle(ctx context.Context) {
	if len(r.after) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	waits := r.after
	r.after = nil
	for _, w := range waits {
		_ = w(ctx)
	}
}
