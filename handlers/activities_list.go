package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// ActivitiesListRequest is the request of activities.list. Activities are
// sorted by createdAt, newest first unless SortOrder is "asc"; the time
// bounds are RFC 3339 and exclusive.
type ActivitiesListRequest struct {
	ListParams
	ActivityTypes []int    `json:"activityTypes,omitempty" jsonschema:"maxItems=500,minimum=1"`
	ThreatIDs     []string `json:"threatIds,omitempty" jsonschema:"maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	AgentIDs      []string `json:"agentIds,omitempty" jsonschema:"maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	CreatedAfter  string   `json:"createdAfter,omitempty" jsonschema:"format=date-time"`
	CreatedBefore string   `json:"createdBefore,omitempty" jsonschema:"format=date-time"`
	SortOrder     string   `json:"sortOrder,omitempty" jsonschema:"enum=asc,enum=desc,default=desc"`

	created timeRange
}

// activitiesSortBy is the one sort of activities.list (DESIGN.md §8).
const activitiesSortBy = "createdAt"

// Validate checks r and sets the default SortOrder.
func (r *ActivitiesListRequest) Validate() (err error) {
	if len(r.ActivityTypes) > maxValues {
		return Invalid("activityTypes", "holds %d values; at most %d are accepted", len(r.ActivityTypes), maxValues)
	}
	for i, t := range r.ActivityTypes {
		if t <= 0 {
			return Invalid(fmt.Sprintf("activityTypes[%d]", i), "%d is not an activity type (a positive integer)", t)
		}
	}
	if err := firstError(
		r.ListParams.Validate(),
		checkIDs("threatIds", r.ThreatIDs, objectIDs),
		checkIDs("agentIds", r.AgentIDs, objectIDs),
		checkEnum("sortOrder", r.SortOrder, sortOrders),
	); err != nil {
		return err
	}
	if r.SortOrder == "" {
		r.SortOrder = sentinelone.SortDesc
	}
	r.created, err = parseRange("createdAfter", r.CreatedAfter, "createdBefore", r.CreatedBefore)
	return err
}

func rawActivity(a *sentinelone.Activity) json.RawMessage { return a.Raw }

func activitiesList(ctx context.Context, env *Env, r *ActivitiesListRequest) (*ListReply, error) {
	f := sentinelone.ActivityFilter{
		ActivityTypes: r.ActivityTypes, ThreatIDs: r.ThreatIDs, AgentIDs: r.AgentIDs,
		CreatedAtGt: r.created.after, CreatedAtLt: r.created.before, SortBy: activitiesSortBy, SortOrder: r.SortOrder,
	}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListActivities(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawActivity), nil
	})
	return reply, err
}
