package handlers

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UAMAlertsGetRequest is the request of uam.alerts.get: one alert id.
type UAMAlertsGetRequest struct {
	ID string `json:"id" jsonschema:"pattern=^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"`
}

// Validate checks r.
func (r *UAMAlertsGetRequest) Validate() error {
	if r.ID == "" {
		return Invalid("id", "is required")
	}
	if !uuidRe.MatchString(r.ID) {
		return Invalid("id", "%q is not a Unified Alerts id (a UUID such as 00000000-0000-7000-8000-00000000a001)", r.ID)
	}
	return nil
}

// UAMAlertsGetReply is the reply of uam.alerts.get: the alert with its
// detail fields (indicators, observables), as the console returned it.
type UAMAlertsGetReply struct {
	Alert json.RawMessage `json:"alert" jsonschema:"type=object"`
}

func uamAlertsGet(ctx context.Context, env *Env, r *UAMAlertsGetRequest) (*UAMAlertsGetReply, error) {
	a, err := env.Client.GetUAMAlert(ctx, r.ID)
	if errors.Is(err, sentinelone.ErrNotFound) && errors.Is(err, sentinelone.ErrGraphQL) {
		return nil, &Error{Code: CodeNotFound, Message: "id: SentinelOne has no alert " + r.ID + " (or the token may not see it)", Err: err}
	}
	if err != nil {
		return nil, err
	}
	return &UAMAlertsGetReply{Alert: a.Raw}, nil
}
