package handlers

import "context"

// Runtime is the connector state that some actions read or change: the
// ingestion progress and the monitors. The connector implements it; handlers
// reach it through Env.Runtime. Its methods are called concurrently.
type Runtime interface {
	// IngestStatus describes the ingestion of console (DESIGN.md §8).
	IngestStatus(ctx context.Context, console string) (any, error)

	// StartMonitor stores a monitor of spec.ThreatID on console, or returns
	// the reply of the monitor spec.Request already started (the same
	// request id from the same source starts nothing new). It answers 404
	// for a threat the console does not have, and 409 when the request id
	// was used for a different monitor.
	StartMonitor(ctx context.Context, console string, spec MonitorSpec) (*MonitorReply, error)
	// ListMonitors returns the active monitors of console, ordered by
	// startedAt then monitorId.
	ListMonitors(ctx context.Context, console string) ([]MonitorItem, error)
	// CancelMonitor ends monitor id of console with the cancelled outcome;
	// an ended or unknown monitor is a 404.
	CancelMonitor(ctx context.Context, console, id string) error
}

// RequestInfo is what a handler may know of the CloudEvents request it
// serves: the attributes that identify it and the trace context it carries.
// A plain-JSON request has an ID the connector assigned.
type RequestInfo struct {
	ID          string // the CloudEvents id
	Source      string // the CloudEvents source
	TraceParent string // W3C traceparent, "" when absent
	TraceState  string // W3C tracestate, "" when absent
}

type requestKey struct{}

// WithRequest returns ctx carrying r, for RequestFrom. The connector calls
// it for every request before running the handler.
func WithRequest(ctx context.Context, r RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request info WithRequest put in ctx, and whether
// there was any (handlers run by tests directly have none).
func RequestFrom(ctx context.Context) (RequestInfo, bool) {
	r, ok := ctx.Value(requestKey{}).(RequestInfo)
	return r, ok
}

// IngestStatusRequest takes no fields.
type IngestStatusRequest struct{}

// ingestStatus answers ingest.status from the runtime.
func ingestStatus(ctx context.Context, env *Env, _ *IngestStatusRequest) (*any, error) {
	if env.Runtime == nil {
		return nil, Errorf(CodeUnavailable, "ingestion state is not available on this replica yet")
	}
	s, err := env.Runtime.IngestStatus(ctx, env.Console)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// IngestStatus is the ingest.status action (the seed's SentinelOne Threats
// Daemon, seen from outside).
var IngestStatus = Define("ingest.status", "SentinelOne Threats Daemon",
	"Ingestion progress of this console: leader, watermark, last poll, lag, events published", false, ingestStatus)
