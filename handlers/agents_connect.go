package handlers

import (
	"context"
)

// AgentsActionRequest is the request of agents.connect and
// agents.disconnect. AgentIDs is required: SentinelOne applies an action
// with an empty filter to every agent in scope.
type AgentsActionRequest struct {
	AgentIDs []string `json:"agentIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	TrackParams
}

// Validate checks r.
func (r *AgentsActionRequest) Validate() error {
	if err := checkIDs("agentIds", r.AgentIDs, requiredIDs); err != nil {
		return err
	}
	return r.TrackParams.Validate()
}

// AffectedReply is the reply of actions that only count what they changed.
type AffectedReply struct {
	Affected int `json:"affected"`
}

// agentsConnect reconnects agents to the network, tracked until each agent
// reports it.
func agentsConnect(ctx context.Context, env *Env, r *AgentsActionRequest) (*TrackedReply, error) {
	at := trackNow()
	n, err := env.Client.ConnectAgents(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return track(ctx, env, n, TrackSpec{Action: ActionAgentsConnect, Targets: r.AgentIDs, Timeout: r.trackTimeout, RequestedAt: at}), nil
}

// agentsDisconnect isolates agents from the network (they keep talking to
// the console), tracked until each agent reports it.
func agentsDisconnect(ctx context.Context, env *Env, r *AgentsActionRequest) (*TrackedReply, error) {
	at := trackNow()
	n, err := env.Client.DisconnectAgents(ctx, r.AgentIDs)
	if err != nil {
		return nil, err
	}
	return track(ctx, env, n, TrackSpec{Action: ActionAgentsDisconnect, Targets: r.AgentIDs, Timeout: r.trackTimeout, RequestedAt: at}), nil
}
