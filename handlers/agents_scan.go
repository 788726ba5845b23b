package handlers

import "context"

// AgentsScanRequest is the request of agents.scan.start and
// agents.scan.abort. AgentIDs is required: SentinelOne scans (or stops the
// scans of) every agent in scope when the filter is empty.
type AgentsScanRequest struct {
	AgentIDs []string `json:"agentIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
}

// Validate checks r.
func (r *AgentsScanRequest) Validate() error {
	return checkIDs("agentIds", r.AgentIDs, requiredIDs)
}

// agentsScanStart starts a full disk scan on the agents.
func agentsScanStart(ctx context.Context, env *Env, r *AgentsScanRequest) (*TrackedReply, error) {
	n, err := env.Client.InitiateScan(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return &TrackedReply{Affected: n}, nil
}

// agentsScanAbort stops the full disk scans of the agents.
func agentsScanAbort(ctx context.Context, env *Env, r *AgentsScanRequest) (*TrackedReply, error) {
	n, err := env.Client.AbortScan(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return &TrackedReply{Affected: n}, nil
}
