package handlers

import "context"

// UAMAlertsNotesAddRequest is the request of uam.alerts.notes.add: the same
// note Text (1 to 4096 bytes) added to every alert of AlertIDs, in one
// alertTriggerActions call.
type UAMAlertsNotesAddRequest struct {
	AlertIDs []string `json:"alertIds"`
	Text     string   `json:"text"`
}

// Validate checks r.
func (r *UAMAlertsNotesAddRequest) Validate() error {
	return firstError(checkUUIDs("alertIds", r.AlertIDs, true), checkNote("text", r.Text))
}

// Targets implements Targeted.
func (r *UAMAlertsNotesAddRequest) Targets() (string, []string) { return "alertIds", r.AlertIDs }

func uamAlertsNotesAdd(ctx context.Context, env *Env, r *UAMAlertsNotesAddRequest) (*UAMAlertsActionReply, error) {
	res, err := env.Client.AddUAMAlertNote(ctx, r.AlertIDs, r.Text)
	if err != nil {
		return nil, err
	}
	return actionReply(res), nil
}
