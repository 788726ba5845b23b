package handlers

import "context"

// AgentsScanRequest is the request of agents.scan.start and
// agents.scan.abort. AgentIDs is required: SentinelOne scans (or stops the
// scans of) every agent in scope when the filter is empty.
type AgentsScanRequest struct {
	AgentIDs []string `json:"agentIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	TrackParams
}

// Validate checks r.
func (r *AgentsScanRequest) Validate() error {
	if err := checkIDs("agentIds", r.AgentIDs, requiredIDs); err != nil {
		return err
	}
	return r.TrackParams.Validate()
}

// agentsScanStart starts a full disk scan on the agents, tracked until each
// agent reports that its scan started.
func agentsScanStart(ctx context.Context, env *Env, r *AgentsScanRequest) (*TrackedReply, error) {
	at := trackNow()
	n, err := env.Client.InitiateScan(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return track(ctx, env, n, TrackSpec{Action: ActionAgentsScanStart, Targets: r.AgentIDs, Timeout: r.trackTimeout, RequestedAt: at}), nil
}

// agentsScanAbort stops the full disk scans of the agents, tracked until
// each agent reports its scan aborted.
func agentsScanAbort(ctx context.Context, env *Env, r *AgentsScanRequest) (*TrackedReply, error) {
	at := trackNow()
	n, err := env.Client.AbortScan(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return track(ctx, env, n, TrackSpec{Action: ActionAgentsScanAbort, Targets: r.AgentIDs, Timeout: r.trackTimeout, RequestedAt: at}), nil
}
