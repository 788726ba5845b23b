package handlers

import (
	"context"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UAMAlertsUpdateRequest is the request of uam.alerts.update: AlertIDs and
// a status, an analyst verdict or both (lower_snake). Both go to
// SentinelOne in one alertTriggerActions call.
type UAMAlertsUpdateRequest struct {
	AlertIDs       []string `json:"alertIds"`
	Status         string   `json:"status,omitempty"`
	AnalystVerdict string   `json:"analystVerdict,omitempty"`
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
	Affected  int               `json:"affected"`
	Failed    []UAMAlertFailure `json:"failed"`
	Skipped   []string          `json:"skipped"`
	Scheduled *string           `json:"scheduled"`
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
