package handlers

import "context"

// UAMAlertsNotesAddRequest is the request of uam.alerts.notes.add: the same
// note Text (1 to 4096 bytes) added to every alert of AlertIDs, in one
// alertTriggerActions call.
type UAMAlertsNotesAddRequest struct {
	AlertIDs []string `json:"alertIds" jsonschema:"minItems=1,maxItems=5000,uniqueItems=true,pattern=^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"`
	Text     string   `json:"text" jsonschema:"minLength=1,maxLength=4096,pattern=^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"`
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
