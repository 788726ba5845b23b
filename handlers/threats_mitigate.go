package handlers

import (
	"context"
	"slices"
	"strings"
)

// mitigationActions are the values of threats.mitigate's action, in the
// lower_snake form of requests. network_quarantine is not one:
// agents.disconnect isolates a host.
var mitigationActions = []string{"kill", "quarantine", "remediate", "rollback_remediation", "un_quarantine"}

// ThreatsMitigateRequest is the request of threats.mitigate. ThreatIDs is
// required: SentinelOne mitigates every threat in scope when the filter is
// empty.
type ThreatsMitigateRequest struct {
	ThreatIDs []string `json:"threatIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	Action    string   `json:"action" jsonschema:"enum=kill,enum=quarantine,enum=remediate,enum=rollback_remediation,enum=un_quarantine"`
	TrackParams
}

// Validate checks r.
func (r *ThreatsMitigateRequest) Validate() error {
	if err := checkIDs("threatIds", r.ThreatIDs, requiredIDs); err != nil {
		return err
	}
	switch {
	case r.Action == "":
		return Invalid("action", "is required: one of %s", strings.Join(mitigationActions, ", "))
	case r.Action == "network_quarantine":
		return Invalid("action", "network_quarantine is not offered: agents.disconnect isolates the host")
	case !slices.Contains(mitigationActions, r.Action):
		return Invalid("action", "%q is not one of %s", r.Action, strings.Join(mitigationActions, ", "))
	}
	return r.TrackParams.Validate()
}

// threatsMitigate makes one call for every threat: SentinelOne accepts the
// command and the agents carry it out later, tracked until each reports
// it; threats it cannot apply to (a rollback on Linux) are not counted, and
// their targets end failed with SentinelOne's reason.
func threatsMitigate(ctx context.Context, env *Env, r *ThreatsMitigateRequest) (*TrackedReply, error) {
	at := trackNow()
	res, err := env.Client.MitigateThreats(ctx, r.Action, r.ThreatIDs)
	if err != nil {
		return nil, err
	}
	return track(ctx, env, res.Affected, TrackSpec{
		Action: ActionThreatsMitigate, Variant: r.Action, Targets: r.ThreatIDs,
		Refused: mitigationRefused(distinct(r.ThreatIDs), res.Details), Timeout: r.trackTimeout, RequestedAt: at,
	}), nil
}
