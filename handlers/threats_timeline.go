package handlers

import (
	"context"
	"fmt"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// ThreatsTimelineRequest is the request of threats.timeline: the timeline
// of one threat (activity-shaped entries), by createdAt, newest first unless
// SortOrder is "asc", optionally only of ActivityTypes.
type ThreatsTimelineRequest struct {
	ListParams
	ThreatID      string `json:"threatId" jsonschema:"pattern=^[1-9][0-9]{17\\,19}$"`
	ActivityTypes []int  `json:"activityTypes,omitempty" jsonschema:"maxItems=500,minimum=1"`
	SortOrder     string `json:"sortOrder,omitempty" jsonschema:"enum=asc,enum=desc,default=desc"`
}

// Validate checks r and sets the default SortOrder.
func (r *ThreatsTimelineRequest) Validate() error {
	if err := firstError(
		r.ListParams.Validate(),
		checkThreatID(r.ThreatID),
		checkActivityTypes(r.ActivityTypes),
		checkEnum("sortOrder", r.SortOrder, sortOrders),
	); err != nil {
		return err
	}
	if r.SortOrder == "" {
		r.SortOrder = sentinelone.SortDesc
	}
	return nil
}

// checkActivityTypes checks a list of activity types: positive, at most
// maxValues of them.
func checkActivityTypes(types []int) error {
	if len(types) > maxValues {
		return Invalid("activityTypes", "holds %d values; at most %d are accepted", len(types), maxValues)
	}
	for i, t := range types {
		if t <= 0 {
			return Invalid(fmt.Sprintf("activityTypes[%d]", i), "%d is not an activity type (a positive integer)", t)
		}
	}
	return nil
}

func threatsTimeline(ctx context.Context, env *Env, r *ThreatsTimelineRequest) (*ListReply, error) {
	f := sentinelone.TimelineFilter{ActivityTypes: r.ActivityTypes, SortBy: activitiesSortBy, SortOrder: r.SortOrder}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ThreatTimeline(ctx, r.ThreatID, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawActivity), nil
	})
	return reply, err
}
