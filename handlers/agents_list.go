package handlers

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// AgentsListRequest is the request of agents.list. ComputerName is an exact
// match. IP is an exact match against any local interface address or the
// external IP; with it every match comes in one reply (nextCursor null,
// totalItems the exact count), so it takes no cursor.
type AgentsListRequest struct {
	ListParams
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

// Validate checks r.
func (r *AgentsListRequest) Validate() error {
	if err := firstError(
		r.ListParams.Validate(),
		checkIDs("ids", r.IDs, objectIDs),
		checkText("computerName", r.ComputerName),
		checkText("query", r.Query),
		checkIDs("siteIds", r.SiteIDs, scopeIDs),
		checkIDs("groupIds", r.GroupIDs, scopeIDs),
		checkEnums("networkStatuses", r.NetworkStatuses, networkStatuses),
		checkEnums("osTypes", r.OSTypes, osTypes),
	); err != nil {
		return err
	}
	if r.IP == "" {
		return nil
	}
	ip, err := netip.ParseAddr(r.IP)
	if err != nil {
		return Invalid("ip", "%q is not an IPv4 or IPv6 address", r.IP)
	}
	if r.Cursor != "" {
		return Invalid("cursor", "is not taken with ip: every agent with that address comes in one reply")
	}
	// Consoles do not store zones, and show IPv4 plainly, not v4-in-v6.
	r.ip = ip.Unmap().WithZone("")
	return nil
}

// ipSpellings are the substrings to ask SentinelOne for: the API compares
// text, and an IPv6 address has many spellings ("fe80::791:a91b",
// "fe80::0791:a91b", fully expanded). The canonical form, the caller's own
// (copied from a console, it is how the console spells it) and the expanded
// form are asked for at once, as alternatives of one __contains filter;
// the exact comparison of parsed addresses follows.
func ipSpellings(ip netip.Addr, given string) []string {
	out := []string{ip.String()}
	given, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(given)), "%")
	for _, s := range []string{given, ip.StringExpanded()} {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func rawObject(o *sentinelone.Object) json.RawMessage { return o.Raw }

func agentsList(ctx context.Context, env *Env, r *AgentsListRequest) (*ListReply, error) {
	f := sentinelone.AgentFilter{
		IDs: r.IDs, ComputerName: r.ComputerName, Query: r.Query, SiteIDs: r.SiteIDs, GroupIDs: r.GroupIDs,
		IsActive: r.IsActive, NetworkStatuses: r.NetworkStatuses, OSTypes: r.OSTypes,
	}
	if r.ip.IsValid() {
		return agentsByIP(ctx, env, f, r.ip, ipSpellings(r.ip, r.IP), r.PageSize())
	}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		// The reply carries SentinelOne's agents as they are: the page is
		// checked, and the agents are not decoded (agentsByIP reads them).
		p, err := env.Client.ListAgentObjects(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawObject), nil
	})
	return reply, err
}

// agentsByIP finds the agents with ip as a local interface address or as
// their external IP. The API only matches addresses by substring ("10.0.0.1"
// also finds 10.0.0.12) and ANDs its filters, so it asks twice, once per
// address field, with the spellings of ip as alternatives, reads every page,
// and keeps the exact matches (each agent once, in the order found).
//
// Both questions are always asked: behind NAT an address can be one agent's
// local address and many agents' external IP at once.
func agentsByIP(ctx context.Context, env *Env, f sentinelone.AgentFilter, ip netip.Addr, spellings []string, pageSize int) (*ListReply, error) {
	want := ip.String()
	budget := replyBudget{max: env.MaxReplyBytes}
	reply := &ListReply{Items: []json.RawMessage{}}
	seen := map[string]bool{}
	used := 0
	f.Limit = pageSize
	local, external := f, f
	local.NetworkInterfaceInetContains = spellings
	external.ExternalIPContains = spellings
	for _, q := range []sentinelone.AgentFilter{local, external} {
		for page, err := range env.Client.AgentPages(ctx, q) {
			if err != nil {
				return nil, err
			}
			for i := range page.Items {
				a := &page.Items[i]
				if (a.ID != "" && seen[a.ID]) || !a.HasIP(want) {
					continue
				}
				seen[a.ID] = true
				enc, err := encodeItem(a.Raw)
				if err != nil {
					return nil, err
				}
				n := len(reply.Items)
				if budget.fit(n, used, &rawPage{total: n + 1}, []json.RawMessage{enc}) == 0 {
					return nil, Errorf(CodeTooLarge, "reply too large: more agents have ip %s than one reply of %d bytes holds (%d so far); narrow the request, e.g. with siteIds or groupIds", want, budget.max, n)
				}
				if n > 0 {
					used++
				}
				used += len(enc)
				reply.Items = append(reply.Items, enc)
			}
		}
	}
	reply.TotalItems = len(reply.Items)
	return reply, nil
}
