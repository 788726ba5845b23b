package sentinelone

import "context"

type recorderKey struct{}

// WithRecorder returns ctx carrying rec, which every call made with it
// reports to once it is done, with the same RequestEvent the client's
// Observer receives (so its errors are redacted alike). The Observer
// counts calls for the whole client; a recorder sees the calls of one
// piece of work: the audit of an action lists the SentinelOne calls that
// action made this way. rec runs on the calling goroutine; a context may
// carry one recorder (the innermost WithRecorder wins).
func WithRecorder(ctx context.Context, rec func(RequestEvent)) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

func recorderFrom(ctx context.Context) func(RequestEvent) {
	rec, _ := ctx.Value(recorderKey{}).(func(RequestEvent))
	return rec
}
