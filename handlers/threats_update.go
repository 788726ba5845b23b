package handlers

import (
	"context"
	"encoding/json"
)

// ThreatsUpdateRequest is the request of threats.update: ThreatIDs and at
// least one of IncidentStatus and AnalystVerdict.
type ThreatsUpdateRequest struct {
	ThreatIDs      []string `json:"threatIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	IncidentStatus string   `json:"incidentStatus,omitempty" jsonschema:"anyof_required=incidentStatus,enum=unresolved,enum=in_progress,enum=resolved"`
	AnalystVerdict string   `json:"analystVerdict,omitempty" jsonschema:"anyof_required=analystVerdict,enum=undefined,enum=true_positive,enum=false_positive,enum=suspicious"`
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
	Details  json.RawMessage `json:"details" jsonschema:"type=array,nullable"`
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
