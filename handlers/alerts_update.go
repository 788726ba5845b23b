package handlers

import (
	"context"
	"fmt"
)

// AlertsUpdateRequest is the request of alerts.update: AlertIDs and at least
// one of AnalystVerdict and IncidentStatus.
type AlertsUpdateRequest struct {
	AlertIDs       []string `json:"alertIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	AnalystVerdict string   `json:"analystVerdict,omitempty" jsonschema:"anyof_required=analystVerdict,enum=undefined,enum=true_positive,enum=false_positive,enum=suspicious"`
	IncidentStatus string   `json:"incidentStatus,omitempty" jsonschema:"anyof_required=incidentStatus,enum=unresolved,enum=in_progress,enum=resolved"`
}

// Validate checks r.
func (r *AlertsUpdateRequest) Validate() error {
	if r.IncidentStatus == "" && r.AnalystVerdict == "" {
		return Invalid("analystVerdict", "give analystVerdict, incidentStatus or both")
	}
	return firstError(
		checkIDs("alertIds", r.AlertIDs, requiredIDs),
		checkEnum("analystVerdict", r.AnalystVerdict, analystVerdicts),
		checkEnum("incidentStatus", r.IncidentStatus, incidentStatuses),
	)
}

// AlertsUpdateReply is the reply of alerts.update. The alerts API sets the
// verdict and the status in separate calls, each counting the alerts it
// changed: VerdictAffected and StatusAffected are those counts (0 for a
// field not asked for), Affected the larger.
type AlertsUpdateReply struct {
	Affected        int `json:"affected"`
	VerdictAffected int `json:"verdictAffected"`
	StatusAffected  int `json:"statusAffected"`
}

// AlertsUpdateApplied is PartialDetails.Applied when the status call failed
// after the verdict call succeeded.
type AlertsUpdateApplied struct {
	AnalystVerdict  string `json:"analystVerdict"`
	VerdictAffected int    `json:"verdictAffected"`
}

// alertsUpdate sets the verdict first, then the status. When the second
// call fails the error says the verdict was applied, so the caller can
// retry the whole request (setting the same verdict again changes nothing).
func alertsUpdate(ctx context.Context, env *Env, r *AlertsUpdateRequest) (*AlertsUpdateReply, error) {
	reply := &AlertsUpdateReply{}
	if r.AnalystVerdict != "" {
		n, err := env.Client.UpdateAlertVerdict(ctx, r.AlertIDs, r.AnalystVerdict)
		if err != nil {
			return nil, err
		}
		reply.VerdictAffected = n
	}
	if r.IncidentStatus != "" {
		n, err := env.Client.UpdateAlertIncident(ctx, r.AlertIDs, r.IncidentStatus)
		if err != nil && r.AnalystVerdict != "" {
			return nil, partialFailure(err, &AlertsUpdateApplied{AnalystVerdict: r.AnalystVerdict, VerdictAffected: reply.VerdictAffected},
				"incidentStatus", fmt.Sprintf("analystVerdict %s was set (%d alerts affected)", r.AnalystVerdict, reply.VerdictAffected))
		}
		if err != nil {
			return nil, err
		}
		reply.StatusAffected = n
	}
	reply.Affected = max(reply.VerdictAffected, reply.StatusAffected)
	return reply, nil
}
