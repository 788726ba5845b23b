package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/netip"
	"time"
)

// Agent is an endpoint agent. Raw is the object as the console sent it, and
// MarshalJSON writes Raw.
type Agent struct {
	ID                string
	UUID              string
	ComputerName      string
	OSType            string
	AgentVersion      string
	NetworkStatus     string // connected, disconnected, connecting, disconnecting
	ExternalIP        string
	NetworkInterfaces []NetworkInterface
	IsActive          bool
	IsDecommissioned  bool
	Infected          bool
	IsUpToDate        bool
	FirewallEnabled   bool
	SiteID            string
	GroupID           string
	AccountID         string
	LastActiveDate    time.Time
	UpdatedAt         time.Time
	Raw               json.RawMessage
}

// NetworkInterface is one of an agent's local interfaces.
type NetworkInterface struct {
	ID       ID       `json:"id"`
	Name     string   `json:"name"`
	Physical string   `json:"physical"`
	Inet     []string `json:"inet"`
	Inet6    []string `json:"inet6"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Agent) UnmarshalJSON(data []byte) error {
	var w struct {
		ID                ID                 `json:"id"`
		UUID              *string            `json:"uuid"`
		ComputerName      *string            `json:"computerName"`
		OSType            *string            `json:"osType"`
		AgentVersion      *string            `json:"agentVersion"`
		NetworkStatus     *string            `json:"networkStatus"`
		ExternalIP        *string            `json:"externalIp"`
		NetworkInterfaces []NetworkInterface `json:"networkInterfaces"`
		IsActive          Bool               `json:"isActive"`
		IsDecommissioned  Bool               `json:"isDecommissioned"`
		Infected          Bool               `json:"infected"`
		IsUpToDate        Bool               `json:"isUpToDate"`
		FirewallEnabled   Bool               `json:"firewallEnabled"`
		SiteID            ID                 `json:"siteId"`
		GroupID           ID                 `json:"groupId"`
		AccountID         ID                 `json:"accountId"`
		LastActiveDate    Time               `json:"lastActiveDate"`
		UpdatedAt         Time               `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*a = Agent{
		ID: string(w.ID), UUID: deref(w.UUID), ComputerName: deref(w.ComputerName), OSType: deref(w.OSType),
		AgentVersion: deref(w.AgentVersion), NetworkStatus: deref(w.NetworkStatus), ExternalIP: deref(w.ExternalIP),
		NetworkInterfaces: w.NetworkInterfaces, IsActive: bool(w.IsActive), IsDecommissioned: bool(w.IsDecommissioned),
		Infected: bool(w.Infected), IsUpToDate: bool(w.IsUpToDate), FirewallEnabled: bool(w.FirewallEnabled), SiteID: string(w.SiteID), GroupID: string(w.GroupID), AccountID: string(w.AccountID),
		LastActiveDate: w.LastActiveDate.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (a Agent) MarshalJSON() ([]byte, error) { return rawOrNull(a.Raw), nil }

// HasIP reports whether ip is exactly one of a's interface addresses
// (IPv4 or IPv6) or its external IP. Addresses are compared parsed, so
// "2001:DB8::1" matches "2001:db8::1"; a prefix length on either side
// ("10.0.0.5/24") is ignored.
func (a *Agent) HasIP(ip string) bool {
	want, ok := parseAddr(ip)
	if !ok {
		return false
	}
	match := func(s string) bool { got, ok := parseAddr(s); return ok && got == want }
	if match(a.ExternalIP) {
		return true
	}
	for _, ni := range a.NetworkInterfaces {
		for _, s := range append(append([]string(nil), ni.Inet...), ni.Inet6...) {
			if match(s) {
				return true
			}
		}
	}
	return false
}

func parseAddr(s string) (netip.Addr, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap().WithZone(""), err == nil
}

// ListAgents returns one page of agents (GET /agents).
func (c *Client) ListAgents(ctx context.Context, f AgentFilter) (*Page[Agent], error) {
	return list[Agent](ctx, c, PathAgents, f.Values())
}

// AgentPages iterates the pages of agents matching f.
func (c *Client) AgentPages(ctx context.Context, f AgentFilter) iter.Seq2[*Page[Agent], error] {
	return paginate(ctx, c.log, PathAgents, f.Cursor, func(ctx context.Context, cursor string) (*Page[Agent], error) {
		f.Cursor = cursor
		return c.ListAgents(ctx, f)
	})
}

// ConnectAgents reconnects the agents ids to the network
// (POST /agents/actions/connect) and returns how many the console affected.
// It is refused without ids: an empty filter would act on every agent.
func (c *Client) ConnectAgents(ctx context.Context, ids []string) (int, error) {
	return c.agentAction(ctx, PathAgentsConnect, ids)
}

// DisconnectAgents isolates the agents ids from the network
// (POST /agents/actions/disconnect) and returns how many the console
// affected. It is refused without ids.
func (c *Client) DisconnectAgents(ctx context.Context, ids []string) (int, error) {
	return c.agentAction(ctx, PathAgentsDisconnect, ids)
}

func (c *Client) agentAction(ctx context.Context, path string, ids []string) (int, error) {
	if err := checkIDs("agent", ids); err != nil {
		return 0, err
	}
	return c.affected(ctx, http.MethodPost, path, actionBody{Filter: idsFilter{IDs: ids}, Data: struct{}{}})
}
