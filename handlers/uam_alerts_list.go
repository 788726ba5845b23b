package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UAMAlertsListRequest is the request of uam.alerts.list (DESIGN.md §10).
// Enums are lower_snake; the time bounds are RFC 3339 and exclusive; Name
// and AssetName are case-insensitive substrings. Without ConfidenceLevels
// every level is asked for by name (informational included) together with
// alerts that have none: SentinelOne hides informational alerts from a
// query that does not name them, and s1bridge hides nothing by default.
// Limit is the GraphQL page size first, Cursor the previous page's
// endCursor.
type UAMAlertsListRequest struct {
	ListParams
	IDs              []string `json:"ids,omitempty"`
	Statuses         []string `json:"statuses,omitempty"`
	AnalystVerdicts  []string `json:"analystVerdicts,omitempty"`
	Severities       []string `json:"severities,omitempty"`
	ConfidenceLevels []string `json:"confidenceLevels,omitempty"`
	DetectedAfter    string   `json:"detectedAfter,omitempty"`
	DetectedBefore   string   `json:"detectedBefore,omitempty"`
	UpdatedAfter     string   `json:"updatedAfter,omitempty"`
	UpdatedBefore    string   `json:"updatedBefore,omitempty"`
	Name             string   `json:"name,omitempty"`
	AssetName        string   `json:"assetName,omitempty"`
	SortBy           string   `json:"sortBy,omitempty"`
	SortOrder        string   `json:"sortOrder,omitempty"`

	detected, updated timeRange
}

// Validate checks r.
func (r *UAMAlertsListRequest) Validate() (err error) {
	if err := firstError(
		r.ListParams.Validate(),
		checkUUIDs("ids", r.IDs, false),
		checkEnums("statuses", r.Statuses, uamStatuses),
		checkEnums("analystVerdicts", r.AnalystVerdicts, uamVerdicts),
		checkEnums("severities", r.Severities, uamSeverities),
		checkEnums("confidenceLevels", r.ConfidenceLevels, uamConfidenceLevels),
		checkText("name", r.Name),
		checkText("assetName", r.AssetName),
		checkEnum("sortBy", r.SortBy, uamSortFields),
		checkEnum("sortOrder", r.SortOrder, sortOrders),
	); err != nil {
		return err
	}
	if r.detected, err = parseRange("detectedAfter", r.DetectedAfter, "detectedBefore", r.DetectedBefore); err != nil {
		return err
	}
	r.updated, err = parseRange("updatedAfter", r.UpdatedAfter, "updatedBefore", r.UpdatedBefore)
	return err
}

// filter is the client filter of r, without paging.
func (r *UAMAlertsListRequest) filter() sentinelone.UAMAlertFilter {
	f := sentinelone.UAMAlertFilter{
		IDs: r.IDs, Statuses: r.Statuses, AnalystVerdicts: r.AnalystVerdicts, Severities: r.Severities,
		DetectedAfter: r.detected.after, DetectedBefore: r.detected.before, UpdatedAfter: r.updated.after, UpdatedBefore: r.updated.before,
		NameContains: r.Name, AssetNameContains: r.AssetName, SortBy: r.SortBy, SortOrder: r.SortOrder,
	}
	if len(r.ConfidenceLevels) > 0 {
		f.ConfidenceLevels = r.ConfidenceLevels // nil asks for every level: see the client
	}
	return f
}

func rawUAMAlert(a *sentinelone.UAMAlert) json.RawMessage { return a.Raw }

func uamAlertsList(ctx context.Context, env *Env, r *UAMAlertsListRequest) (*ListReply, error) {
	f := r.filter()
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.First, f.After = limit, cursor
		p, err := env.Client.ListUAMAlerts(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawUAMAlert), nil
	})
	return reply, err
}
