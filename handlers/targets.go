package handlers

import "fmt"

// Targeted is implemented by the request type of every mutating action that
// names its targets (agents, threats, alerts, blocklist entries): Targets
// returns the JSON name of the field that names them and the ids it holds.
// Define bounds their number by Env.MaxTargets before the handler runs, and
// the audit and idempotency layers read the targets of a request through
// it. A request that names no ids (blocklist.delete by hash) returns none.
//
// blocklist.add does not implement it: it names a hash and a scope, not
// objects to act on.
type Targeted interface {
	Targets() (field string, ids []string)
}

// DefaultMaxTargets is the bound Define applies when Env.MaxTargets is zero:
// the default of consoles.<name>.actions.max_targets, so that an Env built
// without the setting still refuses a request naming thousands of hosts.
const DefaultMaxTargets = 100

// checkTargets refuses a request naming more targets than env allows, with
// a 400 naming the field and the configuration key that sets the bound.
func checkTargets(env *Env, req any) error {
	t, ok := req.(Targeted)
	if !ok {
		return nil
	}
	field, ids := t.Targets()
	max := env.MaxTargets
	if max <= 0 {
		max = DefaultMaxTargets
	}
	if len(ids) > max {
		return Invalid(field, "names %d ids; %s allows at most %d in one request", len(ids), maxTargetsKey(env.Console), max)
	}
	return nil
}

// The mutating requests that name targets.

// Targets implements Targeted.
func (r *AgentsActionRequest) Targets() (string, []string) { return "agentIds", r.AgentIDs }

// Targets implements Targeted.
func (r *ThreatsUpdateRequest) Targets() (string, []string) { return "threatIds", r.ThreatIDs }

// Targets implements Targeted.
func (r *AlertsUpdateRequest) Targets() (string, []string) { return "alertIds", r.AlertIDs }

// Targets implements Targeted: the entries named by id; none for a delete by
// hash, whose entries are found by lookup.
func (r *BlocklistDeleteRequest) Targets() (string, []string) { return "ids", r.IDs }

// Targets implements Targeted.
func (r *ThreatsMitigateRequest) Targets() (string, []string) { return "threatIds", r.ThreatIDs }

// Targets implements Targeted.
func (r *ThreatsNotesAddRequest) Targets() (string, []string) { return "threatIds", r.ThreatIDs }

// Targets implements Targeted.
func (r *ThreatsFetchFileRequest) Targets() (string, []string) { return "threatIds", r.ThreatIDs }

// Targets implements Targeted.
func (r *AgentsScanRequest) Targets() (string, []string) { return "agentIds", r.AgentIDs }

// maxTargetsKey is the configuration key of the bound for console.
func maxTargetsKey(console string) string {
	return fmt.Sprintf("consoles.%s.actions.max_targets", console)
}
