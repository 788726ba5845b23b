package handlers

import "context"

// Runtime is the connector state that some actions read or change: the
// ingestion progress and the monitors. The connector implements it; handlers
// reach it through Env.Runtime.
type Runtime interface {
	// IngestStatus describes the ingestion of console (DESIGN.md §8).
	IngestStatus(ctx context.Context, console string) (any, error)
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
