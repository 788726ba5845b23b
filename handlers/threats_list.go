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
	IDs              []string `json:"ids,omitempty"`
	ComputerName     string   `json:"computerName,omitempty"`
	IncidentStatuses []string `json:"incidentStatuses,omitempty"`
	AnalystVerdicts  []string `json:"analystVerdicts,omitempty"`
	Classifications  []string `json:"classifications,omitempty"`
	SiteIDs          []string `json:"siteIds,omitempty"`
	GroupIDs         []string `json:"groupIds,omitempty"`
	AccountIDs       []string `json:"accountIds,omitempty"`
	CreatedAfter     string   `json:"createdAfter,omitempty"`
	CreatedBefore    string   `json:"createdBefore,omitempty"`
	UpdatedAfter     string   `json:"updatedAfter,omitempty"`
	UpdatedBefore    string   `json:"updatedBefore,omitempty"`
	Query            string   `json:"query,omitempty"`
	SortBy           string   `json:"sortBy,omitempty"`
	SortOrder        string   `json:"sortOrder,omitempty"`

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
