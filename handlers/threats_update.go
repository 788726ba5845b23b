package handlers

import (
	"context"
	"encoding/json"
)

// ThreatsUpdateRequest is the request of threats.update: ThreatIDs and at
// least one of IncidentStatus and AnalystVerdict.
type ThreatsUpdateRequest struct {
	ThreatIDs      []string `json:"threatIds"`
	IncidentStatus string   `json:"incidentStatus,omitempty"`
	AnalystVerdict string   `json:"analystVerdict,omitempty"`
}

// Validate checks r.
func (r *ThreatsUpdateRequest) Validate() error {
	if r.IncidentStatus == "" && r.AnalystVerdict == "" {
		return Invalid("incidentStatus", "give incidentStatus, analystVerdict or both")
	}
	return firstError(
		checkIDs("threatIds", r.ThreatIDs, requiredIDs),
		checkEnum("incidentStatus", r.IncidentStatus, incidentStatuses),
		checkEnum("analystVerdict", r.AnalystVerdict, analystVerdicts),
	)
}

// ThreatsUpdateReply is the reply of threats.update. Details is
// SentinelOne's per-threat array as it returned it (null when it sent none),
// e.g. [{"threatId":"…","result":"updated","analystVerdict":"updated"}].
type ThreatsUpdateReply struct {
	Affected int             `json:"affected"`
	Details  json.RawMessage `json:"details"`
}

// threatsUpdate makes one call: /threats/incident when a status is given,
// carrying the verdict too, so that both change together or neither does;
// else /threats/analyst-verdict.
func threatsUpdate(ctx context.Context, env *Env, r *ThreatsUpdateRequest) (*ThreatsUpdateReply, error) {
	if r.IncidentStatus != "" {
		res, err := env.Client.UpdateThreatIncident(ctx, r.ThreatIDs, r.IncidentStatus, r.AnalystVerdict)
		if err != nil {
			return nil, err
		}
		return &ThreatsUpdateReply{Affected: res.Affected, Details: res.Details}, nil
	}
	res, err := env.Client.UpdateThreatVerdict(ctx, r.ThreatIDs, r.AnalystVerdict)
	if err != nil {
		return nil, err
	}
	return &ThreatsUpdateReply{Affected: res.Affected, Details: res.Details}, nil
}
