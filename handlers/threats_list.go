package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// ThreatsListRequest is the request of threats.list. ComputerName is a
// substring (the API has no exact filter); the time bounds are RFC 3339 and
// exclusive.
type ThreatsListRequest struct {
	ListParams
	IDs              []string `json:"ids,omitempty" jsonschema:"maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	ComputerName     string   `json:"computerName,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\,\\x00-\\x1f\\x7f-\\x9f]*$"`
	IncidentStatuses []string `json:"incidentStatuses,omitempty" jsonschema:"uniqueItems=true,enum=unresolved,enum=in_progress,enum=resolved"`
	AnalystVerdicts  []string `json:"analystVerdicts,omitempty" jsonschema:"uniqueItems=true,enum=undefined,enum=true_positive,enum=false_positive,enum=suspicious"`
	Classifications  []string `json:"classifications,omitempty" jsonschema:"maxItems=500,minLength=1,maxLength=4096,pattern=^[^\\,\\x00-\\x1f\\x7f-\\x9f]*$"`
	SiteIDs          []string `json:"siteIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	GroupIDs         []string `json:"groupIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	AccountIDs       []string `json:"accountIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	CreatedAfter     string   `json:"createdAfter,omitempty" jsonschema:"format=date-time"`
	CreatedBefore    string   `json:"createdBefore,omitempty" jsonschema:"format=date-time"`
	UpdatedAfter     string   `json:"updatedAfter,omitempty" jsonschema:"format=date-time"`
	UpdatedBefore    string   `json:"updatedBefore,omitempty" jsonschema:"format=date-time"`
	Query            string   `json:"query,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	SortBy           string   `json:"sortBy,omitempty" jsonschema:"enum=id,enum=createdAt,enum=updatedAt,enum=mitigationStatus,enum=fileDisplayName,enum=agentVersion,enum=agentMachineType,enum=siteId,enum=siteName,enum=agentComputerName,enum=filePath,enum=contentHash,enum=collectionId,enum=classification,enum=createdDate,enum=cloudAccount,enum=cloudImage,enum=cloudInstanceId,enum=cloudInstanceSize,enum=cloudLocation,enum=cloudNetwork"`
	SortOrder        string   `json:"sortOrder,omitempty" jsonschema:"enum=asc,enum=desc"`

	created, updated timeRange
}

// Validate checks r.
func (r *ThreatsListRequest) Validate() (err error) {
	if err := firstError(
		r.ListParams.Validate(),
		checkIDs("ids", r.IDs, objectIDs),
		checkListText("computerName", r.ComputerName),
		checkEnums("incidentStatuses", r.IncidentStatuses, incidentStatuses),
		checkEnums("analystVerdicts", r.AnalystVerdicts, analystVerdicts),
		checkListTexts("classifications", r.Classifications),
		checkIDs("siteIds", r.SiteIDs, scopeIDs),
		checkIDs("groupIds", r.GroupIDs, scopeIDs),
		checkIDs("accountIds", r.AccountIDs, scopeIDs),
		checkText("query", r.Query),
		checkEnum("sortBy", r.SortBy, threatSortFields),
		checkEnum("sortOrder", r.SortOrder, sortOrders),
	); err != nil {
		return err
	}
	if r.created, err = parseRange("createdAfter", r.CreatedAfter, "createdBefore", r.CreatedBefore); err != nil {
		return err
	}
	r.updated, err = parseRange("updatedAfter", r.UpdatedAfter, "updatedBefore", r.UpdatedBefore)
	return err
}

func rawThreat(t *sentinelone.Threat) json.RawMessage { return t.Raw }

func threatsList(ctx context.Context, env *Env, r *ThreatsListRequest) (*ListReply, error) {
	f := sentinelone.ThreatFilter{
		IDs: r.IDs, IncidentStatuses: r.IncidentStatuses, AnalystVerdicts: r.AnalystVerdicts,
		Classifications: r.Classifications, SiteIDs: r.SiteIDs, GroupIDs: r.GroupIDs, AccountIDs: r.AccountIDs,
		CreatedAtGt: r.created.after, CreatedAtLt: r.created.before, UpdatedAtGt: r.updated.after, UpdatedAtLt: r.updated.before,
		Query: r.Query, SortBy: r.SortBy, SortOrder: r.SortOrder,
	}
	if r.ComputerName != "" {
		f.ComputerNameContains = []string{r.ComputerName}
	}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListThreats(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawThreat), nil
	})
	return reply, err
}
