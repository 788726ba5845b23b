package sentinelone

import (
	"context"
	"regexp"
)

// W3C trace context header names (https://www.w3.org/TR/trace-context/).
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

type traceKey struct{}

type traceContext struct{ parent, state string }

// traceParentRe is version-traceid-parentid-flags, lower-case hex.
var traceParentRe = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// WithTraceContext returns ctx carrying a W3C trace context, which every
// attempt of a call made with it sends as the traceparent and tracestate
// headers, and which the client's debug logs include. A traceparent that is
// not well formed is dropped (tracestate with it), so a caller's garbage
// never reaches the console.
func WithTraceContext(ctx context.Context, traceparent, tracestate string) context.Context {
	if !traceParentRe.MatchString(traceparent) {
		return ctx
	}
	if len(tracestate) > 512 || !printable(tracestate) {
		tracestate = ""
	}
	return context.WithValue(ctx, traceKey{}, traceContext{parent: traceparent, state: tracestate})
}

func traceFrom(ctx context.Context) (traceContext, bool) {
	tc, ok := ctx.Value(traceKey{}).(traceContext)
	return tc, ok
}

// printable reports whether s holds only visible ASCII and spaces, as a
// header value must.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
