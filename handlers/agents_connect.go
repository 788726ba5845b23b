package handlers

import (
	"context"
)

// AgentsActionRequest is the request of agents.connect and
// agents.disconnect. AgentIDs is required: SentinelOne applies an action
// with an empty filter to every agent in scope.
type AgentsActionRequest struct {
	AgentIDs []string `json:"agentIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
}

// Validate checks r.
func (r *AgentsActionRequest) Validate() error {
	return checkIDs("agentIds", r.AgentIDs, requiredIDs)
}

// AffectedReply is the reply of actions that only count what they changed.
type AffectedReply struct {
	Affected int `json:"affected"`
}

// agentsConnect reconnects agents to the network.
func agentsConnect(ctx context.Context, env *Env, r *AgentsActionRequest) (*AffectedReply, error) {
	n, err := env.Client.ConnectAgents(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return &AffectedReply{Affected: n}, nil
}

// agentsDisconnect isolates agents from the network; they keep talking to
// the console.
func agentsDisconnect(ctx context.Context, env *Env, r *AgentsActionRequest) (*AffectedReply, error) {
	n, err := env.Client.DisconnectAgents(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return &AffectedReply{Affected: n}, nil
}
