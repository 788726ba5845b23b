// Package middleware is how the connector serves one action request: a
// chain of small handlers, each about one concern, around the action
// (Watermill's router middleware). The connector builds one chain per
// endpoint:
//
//	Logging, Stats, Respond, Recover, Decode, Admit, Deadline, …, Invoke
//
// Logging and Stats see the code of the reply that went out; Respond encodes
// and sends it; Recover turns a panic below it into a 500; Decode reads the
// CloudEvent; Admit refuses what must not run (403, 408, a foreign type);
// Deadline bounds the work and tells a passed deadline (504) from a
// shutdown (503); Invoke runs the action. A concern that applies to some
// actions only (idempotency and audit of mutating actions, a priority step)
// is one more Middleware inserted before Invoke.
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
