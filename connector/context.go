package connector

import (
	"context"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// withRequest carries what an action's upstream calls and events must repeat
// of its request: the W3C trace context.
func withRequest(ctx context.Context, req ce.Event) context.Context {
	if tp := req.TraceParent(); tp != "" {
		return sentinelone.WithTraceContext(ctx, tp, req.TraceState())
	}
	return ctx
}
