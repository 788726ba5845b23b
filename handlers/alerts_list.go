package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// AlertsListRequest is the request of alerts.list. Statuses, verdicts and
// severities are lower_snake like every request enum; the client sends them
// in the case the alerts endpoint wants. RuleName is a substring; the time
// bounds are RFC 3339 and exclusive.
type AlertsListRequest struct {
	ListParams
	IDs              []string `json:"ids,omitempty" jsonschema:"maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	IncidentStatuses []string `json:"incidentStatuses,omitempty" jsonschema:"uniqueItems=true,enum=unresolved,enum=in_progress,enum=resolved"`
	AnalystVerdicts  []string `json:"analystVerdicts,omitempty" jsonschema:"uniqueItems=true,enum=undefined,enum=true_positive,enum=false_positive,enum=suspicious"`
	Severities       []string `json:"severities,omitempty" jsonschema:"uniqueItems=true,enum=low,enum=medium,enum=high,enum=critical,enum=info"`
	RuleName         string   `json:"ruleName,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\,\\x00-\\x1f\\x7f-\\x9f]*$"`
	CreatedAfter     string   `json:"createdAfter,omitempty" jsonschema:"format=date-time"`
	CreatedBefore    string   `json:"createdBefore,omitempty" jsonschema:"format=date-time"`
	SiteIDs          []string `json:"siteIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`

	created timeRange
}

// Validate checks r.
func (r *AlertsListRequest) Validate() (err error) {
	if err := firstError(
		r.ListParams.Validate(),
		checkIDs("ids", r.IDs, objectIDs),
		checkEnums("incidentStatuses", r.IncidentStatuses, incidentStatuses),
		checkEnums("analystVerdicts", r.AnalystVerdicts, analystVerdicts),
		checkEnums("severities", r.Severities, alertSeverities),
		checkListText("ruleName", r.RuleName),
		checkIDs("siteIds", r.SiteIDs, scopeIDs),
	); err != nil {
		return err
	}
	r.created, err = parseRange("createdAfter", r.CreatedAfter, "createdBefore", r.CreatedBefore)
	return err
}

func rawAlert(a *sentinelone.Alert) json.RawMessage { return a.Raw }

func alertsList(ctx context.Context, env *Env, r *AlertsListRequest) (*ListReply, error) {
	f := sentinelone.AlertFilter{
		IDs: r.IDs, IncidentStatuses: r.IncidentStatuses, AnalystVerdicts: r.AnalystVerdicts, Severities: r.Severities,
		CreatedAtGt: r.created.after, CreatedAtLt: r.created.before, SiteIDs: r.SiteIDs,
	}
	if r.RuleName != "" {
		f.RuleNameContains = []string{r.RuleName}
	}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListAlerts(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawAlert), nil
	})
	return reply, err
}
