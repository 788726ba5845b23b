package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// GroupsListRequest is the request of groups.list. Name is an exact match;
// Query searches names and descriptions; Type is static, dynamic or pinned.
type GroupsListRequest struct {
	ListParams
	SiteIDs []string `json:"siteIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	Name    string   `json:"name,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	Query   string   `json:"query,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	Type    string   `json:"type,omitempty" jsonschema:"enum=static,enum=dynamic,enum=pinned"`
}

// Validate checks r.
func (r *GroupsListRequest) Validate() error {
	return firstError(
		r.ListParams.Validate(),
		checkIDs("siteIds", r.SiteIDs, scopeIDs),
		checkText("name", r.Name),
		checkText("query", r.Query),
		checkEnum("type", r.Type, groupTypes),
	)
}

func rawGroup(g *sentinelone.Group) json.RawMessage { return g.Raw }

func groupsList(ctx context.Context, env *Env, r *GroupsListRequest) (*ListReply, error) {
	f := sentinelone.GroupFilter{SiteIDs: r.SiteIDs, Name: r.Name, Query: r.Query, Type: r.Type}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListGroups(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawGroup), nil
	})
	return reply, err
}
