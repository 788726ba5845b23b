package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// SitesListRequest is the request of sites.list. Name is an exact match;
// State is active, expired or deleted; Query searches site names, account
// names and descriptions.
type SitesListRequest struct {
	ListParams
	SiteIDs []string `json:"siteIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	Name    string   `json:"name,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	State   string   `json:"state,omitempty" jsonschema:"enum=active,enum=expired,enum=deleted"`
	Query   string   `json:"query,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
}

// Validate checks r.
func (r *SitesListRequest) Validate() error {
	return firstError(
		r.ListParams.Validate(),
		checkIDs("siteIds", r.SiteIDs, scopeIDs),
		checkText("name", r.Name),
		checkEnum("state", r.State, siteStates),
		checkText("query", r.Query),
	)
}

// SitesListReply is a list reply plus AllSites, the console's licence
// summary ({activeLicenses, totalLicenses}) as it sent it.
type SitesListReply struct {
	ListReply
	AllSites json.RawMessage `json:"allSites" jsonschema:"type=object,nullable"`
}

// AppendJSON appends r's JSON encoding to b; see ListReply.AppendJSON.
func (r *SitesListReply) AppendJSON(b []byte) []byte {
	b = r.ListReply.AppendJSON(b)
	b = append(b[:len(b)-1], `,"allSites":`...)
	if len(r.AllSites) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.AllSites...)
	}
	return append(b, '}')
}

// SizeHint returns at least the length AppendJSON writes.
func (r *SitesListReply) SizeHint() int {
	return r.ListReply.SizeHint() + len(`,"allSites":null`) + len(r.AllSites)
}

// allSitesKey is the JSON name of SitesListReply.AllSites.
const allSitesKey = "allSites"

func rawSite(s *sentinelone.Site) json.RawMessage { return s.Raw }

func sitesList(ctx context.Context, env *Env, r *SitesListRequest) (*SitesListReply, error) {
	f := sentinelone.SiteFilter{IDs: r.SiteIDs, Name: r.Name, State: r.State, Query: r.Query}
	reply, allSites, err := collect(ctx, env, r.ListParams, allSitesKey, func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListSites(ctx, f)
		if err != nil {
			return nil, err
		}
		page := pageOf(&p.Page, rawSite)
		page.extra = p.AllSites
		return page, nil
	})
	if err != nil {
		return nil, err
	}
	return &SitesListReply{ListReply: *reply, AllSites: allSites}, nil
}
