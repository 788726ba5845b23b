package handlers

import (
	"context"
	"time"
)

// Runtime is the connector state that some actions read or change: the
// ingestion progress, the monitors and the tracked actions. The connector implements it; handlers
// reach it through Env.Runtime. Its methods are called concurrently.
type Runtime interface {
	// IngestStatus describes the ingestion of console (DESIGN.md §8).
	IngestStatus(ctx context.Context, console string) (*IngestStatusReply, error)

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

	// Track records an action SentinelOne has accepted on console, to be
	// watched until SentinelOne confirms every target or the deadline
	// passes (DESIGN.md §13), and returns its tracking id and the subject
	// of its outcome event. A repeat of spec.Request gets the tracking id
	// of the first and tracks nothing new. An error means the action is not
	// tracked; it has happened all the same.
	Track(ctx context.Context, console string, spec TrackSpec) (*TrackReply, error)
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

// IngestStatusReply is the reply of ingest.status (DESIGN.md §8): the
// console, then the progress of its threat ingestion.
type IngestStatusReply struct {
	Console string `json:"console"`
	IngestProgress
}

// IngestProgress is the progress of the ingestion of one kind of object on
// one console. Watermark, LastPollAt and LagSeconds are null until the first
// poll of any replica stored them; LagSeconds is rounded to milliseconds.
type IngestProgress struct {
	Leader     bool       `json:"leader"`   // this replica holds the lease
	LeaderID   string     `json:"leaderId"` // the replica that does, "" when none
	Watermark  *time.Time `json:"watermark" jsonschema:"nullable"`
	LastPollAt *time.Time `json:"lastPollAt" jsonschema:"nullable"`
	LastError  string     `json:"lastError"`
	Published  int64      `json:"published" jsonschema:"minimum=0"` // events this process stored since it started
	LagSeconds *float64   `json:"lagSeconds" jsonschema:"nullable"`
}

// ingestStatus answers ingest.status from the runtime.
func ingestStatus(ctx context.Context, env *Env, _ *IngestStatusRequest) (*IngestStatusReply, error) {
	if env.Runtime == nil {
		return nil, Errorf(CodeUnavailable, "ingestion state is not available on this replica yet")
	}
	return env.Runtime.IngestStatus(ctx, env.Console)
}
