package handlers

import (
	"context"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UAMAlertsUpdateRequest is the request of uam.alerts.update: AlertIDs and
// a status, an analyst verdict or both (lower_snake). Both go to
// SentinelOne in one alertTriggerActions call.
type UAMAlertsUpdateRequest struct {
	AlertIDs       []string `json:"alertIds" jsonschema:"minItems=1,maxItems=5000,uniqueItems=true,pattern=^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"`
	Status         string   `json:"status,omitempty" jsonschema:"anyof_required=status,enum=new,enum=in_progress,enum=resolved"`
	AnalystVerdict string   `json:"analystVerdict,omitempty" jsonschema:"anyof_required=analystVerdict,enum=undefined,enum=true_positive_malware,enum=true_positive_ransomware,enum=true_positive_unauthorized_access,enum=true_positive_data_exfiltration,enum=true_positive_insider_threat,enum=true_positive_phishing_attack,enum=true_positive_advanced_persistent_threat,enum=true_positive_denial_of_service,enum=true_positive_policy_violation,enum=true_positive_exploitation_tools,enum=true_positive_pua_adware,enum=true_positive_benign,enum=true_positive_benign_but_suspicious,enum=true_positive_undefined,enum=false_positive_benign,enum=false_positive_benign_but_suspicious,enum=false_positive_system_error,enum=false_positive_user_error,enum=false_positive_undefined"`
}

// Validate checks r.
func (r *UAMAlertsUpdateRequest) Validate() error {
	if r.Status == "" && r.AnalystVerdict == "" {
		return Invalid("status", "give status, analystVerdict or both")
	}
	return firstError(
		checkUUIDs("alertIds", r.AlertIDs, true),
		checkEnum("status", r.Status, uamStatuses),
		checkEnum("analystVerdict", r.AnalystVerdict, uamVerdicts),
	)
}

// Targets implements Targeted.
func (r *UAMAlertsUpdateRequest) Targets() (string, []string) { return "alertIds", r.AlertIDs }

// UAMAlertsActionReply is the reply of uam.alerts.update and
// uam.alerts.notes.add (DESIGN.md §10): Affected counts the alerts
// SentinelOne reported done, Failed and Skipped list the others as it
// reported them, Scheduled is its execution id when it answered that the
// work was scheduled for later (then nothing is known per alert yet), else
// null. A per-alert failure is not an error reply.
type UAMAlertsActionReply struct {
	Affected  int               `json:"affected" jsonschema:"minimum=0"`
	Failed    []UAMAlertFailure `json:"failed"`
	Skipped   []string          `json:"skipped"`
	Scheduled *string           `json:"scheduled" jsonschema:"nullable"`
}

// UAMAlertFailure is one alert SentinelOne did not act on: Reason is its
// error type and message ("MISSING_PERMISSION: Missing UAM manage
// permissions"), NOT_REPORTED when SentinelOne said nothing of the alert.
type UAMAlertFailure struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// actionReply turns a trigger result into the reply.
func actionReply(res *sentinelone.UAMTriggerResult) *UAMAlertsActionReply {
	o := res.Outcome()
	reply := &UAMAlertsActionReply{Affected: len(o.Succeeded), Failed: []UAMAlertFailure{}, Skipped: []string{}}
	for _, f := range o.Failed {
		reply.Failed = append(reply.Failed, UAMAlertFailure{ID: f.ID, Reason: f.Reason})
	}
	reply.Skipped = append(reply.Skipped, o.Skipped...)
	if o.Scheduled != "" {
		reply.Scheduled = &o.Scheduled
	}
	return reply
}

func uamAlertsUpdate(ctx context.Context, env *Env, r *UAMAlertsUpdateRequest) (*UAMAlertsActionReply, error) {
	res, err := env.Client.UpdateUAMAlerts(ctx, r.AlertIDs, sentinelone.UAMAlertUpdate{Status: r.Status, AnalystVerdict: r.AnalystVerdict})
	if err != nil {
		return nil, err
	}
	return actionReply(res), nil
}
