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
	IDs              []string `json:"ids,omitempty" jsonschema:"maxItems=5000,uniqueItems=true,pattern=^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"`
	Statuses         []string `json:"statuses,omitempty" jsonschema:"uniqueItems=true,enum=new,enum=in_progress,enum=resolved"`
	AnalystVerdicts  []string `json:"analystVerdicts,omitempty" jsonschema:"uniqueItems=true,enum=undefined,enum=true_positive_malware,enum=true_positive_ransomware,enum=true_positive_unauthorized_access,enum=true_positive_data_exfiltration,enum=true_positive_insider_threat,enum=true_positive_phishing_attack,enum=true_positive_advanced_persistent_threat,enum=true_positive_denial_of_service,enum=true_positive_policy_violation,enum=true_positive_exploitation_tools,enum=true_positive_pua_adware,enum=true_positive_benign,enum=true_positive_benign_but_suspicious,enum=true_positive_undefined,enum=false_positive_benign,enum=false_positive_benign_but_suspicious,enum=false_positive_system_error,enum=false_positive_user_error,enum=false_positive_undefined"`
	Severities       []string `json:"severities,omitempty" jsonschema:"uniqueItems=true,enum=info,enum=low,enum=medium,enum=high,enum=critical"`
	ConfidenceLevels []string `json:"confidenceLevels,omitempty" jsonschema:"uniqueItems=true,enum=malicious,enum=suspicious,enum=informational"`
	DetectedAfter    string   `json:"detectedAfter,omitempty" jsonschema:"format=date-time"`
	DetectedBefore   string   `json:"detectedBefore,omitempty" jsonschema:"format=date-time"`
	UpdatedAfter     string   `json:"updatedAfter,omitempty" jsonschema:"format=date-time"`
	UpdatedBefore    string   `json:"updatedBefore,omitempty" jsonschema:"format=date-time"`
	Name             string   `json:"name,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	AssetName        string   `json:"assetName,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	SortBy           string   `json:"sortBy,omitempty" jsonschema:"enum=detectedAt,enum=updatedAt,default=detectedAt"`
	SortOrder        string   `json:"sortOrder,omitempty" jsonschema:"enum=asc,enum=desc,default=desc"`

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
