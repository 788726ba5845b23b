package connector

import (
	"context"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// withRequest carries what an action's upstream calls and events must repeat
// of its request: the W3C trace context, and for the handlers the request's
// id and source (threats.monitor keys its idempotency on them).
func withRequest(ctx context.Context, req ce.Event) context.Context {
	ctx = handlers.WithRequest(ctx, handlers.RequestInfo{
		ID: req.ID, Source: req.Source, TraceParent: req.TraceParent(), TraceState: req.TraceState(),
	})
	if tp := req.TraceParent(); tp != "" {
		return sentinelone.WithTraceContext(ctx, tp, req.TraceState())
	}
	return ctx
}
