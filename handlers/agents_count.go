package handlers

import (
	"context"
	"net/netip"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// AgentsCountRequest is the request of agents.count: the filters of
// agents.list (without paging), with the same meaning; ip is the exact
// match of agents.list.
type AgentsCountRequest struct {
	IDs             []string `json:"ids,omitempty" jsonschema:"maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	ComputerName    string   `json:"computerName,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	IP              string   `json:"ip,omitempty" jsonschema:"example=10.0.0.12,example=fe80::791:a91b"`
	Query           string   `json:"query,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	SiteIDs         []string `json:"siteIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	GroupIDs        []string `json:"groupIds,omitempty" jsonschema:"maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	IsActive        *bool    `json:"isActive,omitempty"`
	NetworkStatuses []string `json:"networkStatuses,omitempty" jsonschema:"uniqueItems=true,enum=connected,enum=disconnected,enum=connecting,enum=disconnecting"`
	OSTypes         []string `json:"osTypes,omitempty" jsonschema:"uniqueItems=true,enum=windows,enum=macos,enum=linux,enum=windows_legacy"`

	ip netip.Addr
}

// list is r as the agents.list request with the same filters.
func (r *AgentsCountRequest) list() *AgentsListRequest {
	return &AgentsListRequest{
		IDs: r.IDs, ComputerName: r.ComputerName, IP: r.IP, Query: r.Query, SiteIDs: r.SiteIDs, GroupIDs: r.GroupIDs,
		IsActive: r.IsActive, NetworkStatuses: r.NetworkStatuses, OSTypes: r.OSTypes,
	}
}

// Validate checks r with the rules of agents.list.
func (r *AgentsCountRequest) Validate() error {
	l := r.list()
	if err := l.Validate(); err != nil {
		return err
	}
	r.ip = l.ip
	return nil
}

// AgentsCountReply is the reply of agents.count.
type AgentsCountReply struct {
	Total int `json:"total" jsonschema:"minimum=0"`
}

// agentsCount asks GET /agents/count. An ip cannot be counted there (the
// API matches addresses by substring), so with ip it reads the agents as
// agents.list does and counts the exact matches.
func agentsCount(ctx context.Context, env *Env, r *AgentsCountRequest) (*AgentsCountReply, error) {
	f := sentinelone.AgentFilter{
		IDs: r.IDs, ComputerName: r.ComputerName, Query: r.Query, SiteIDs: r.SiteIDs, GroupIDs: r.GroupIDs,
		IsActive: r.IsActive, NetworkStatuses: r.NetworkStatuses, OSTypes: r.OSTypes,
	}
	if !r.ip.IsValid() {
		n, err := env.Client.CountAgents(ctx, f)
		if err != nil {
			return nil, err
		}
		return &AgentsCountReply{Total: n}, nil
	}
	want, spellings := r.ip.String(), ipSpellings(r.ip, r.IP)
	f.Limit = lookupPageSize
	local, external := f, f
	local.NetworkInterfaceInetContains = spellings
	external.ExternalIPContains = spellings
	seen := map[string]bool{}
	for _, q := range []sentinelone.AgentFilter{local, external} {
		for page, err := range env.Client.AgentPages(ctx, q) {
			if err != nil {
				return nil, err
			}
			for i := range page.Items {
				if a := &page.Items[i]; !seen[a.ID] && a.HasIP(want) {
					seen[a.ID] = true
				}
			}
		}
	}
	return &AgentsCountReply{Total: len(seen)}, nil
}
