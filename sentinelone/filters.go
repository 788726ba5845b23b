package sentinelone

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Filters are plain structs; their Values method spells the Swagger query
// parameter names (TestSwaggerConformance checks every one) and encodes
// arrays as one comma-separated value (collectionFormat csv), times with
// TimeFormat in UTC. Zero fields are left out. Paging is Limit (capped at
// MaxLimit; 0 leaves the console's default of 10) and Cursor.

// Shared query parameter names.
const (
	paramLimit     = "limit"
	paramCursor    = "cursor"
	paramSortBy    = "sortBy"
	paramSortOrder = "sortOrder"
	paramIDs       = "ids"
	paramSiteIDs   = "siteIds"
	paramGroupIDs  = "groupIds"
	paramAcctIDs   = "accountIds"
	paramQuery     = "query"
)

// Sort orders.
const (
	SortAsc  = "asc"
	SortDesc = "desc"
)

// query builds url.Values, skipping zero values.
type query url.Values

func (q query) str(name, v string) {
	if v != "" {
		q[name] = []string{v}
	}
}

func (q query) csv(name string, vs []string) {
	if len(vs) > 0 {
		q[name] = []string{strings.Join(vs, ",")}
	}
}

func (q query) ints(name string, vs []int) {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	q.csv(name, s)
}

func (q query) time(name string, t time.Time) {
	if !t.IsZero() {
		q[name] = []string{t.UTC().Format(TimeFormat)}
	}
}

func (q query) bool(name string, b *bool) {
	if b != nil {
		q[name] = []string{strconv.FormatBool(*b)}
	}
}

func (q query) page(limit int, cursor, sortBy, sortOrder string) {
	if limit > 0 {
		q[paramLimit] = []string{strconv.Itoa(min(limit, MaxLimit))}
	}
	q.str(paramCursor, cursor)
	q.str(paramSortBy, sortBy)
	q.str(paramSortOrder, sortOrder)
}

func mapStrings(vs []string, f func(string) string) []string {
	if vs == nil {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = f(v)
	}
	return out
}

// ThreatFilter selects threats (GET /threats). Times are exclusive (__gt,
// __lt) except UpdatedAtGte, the ingestion watermark's re-read bound.
// Enum values are lower_snake (LowerSnake is applied).
type ThreatFilter struct {
	IDs                  []string
	ComputerNameContains []string // substrings of the agent's computer name
	IncidentStatuses     []string // unresolved, in_progress, resolved
	AnalystVerdicts      []string // undefined, true_positive, false_positive, suspicious
	MitigationStatuses   []string // not_mitigated, mitigated, marked_as_benign
	Classifications      []string
	ContentHashes        []string // SHA1
	AgentIDs             []string
	SiteIDs              []string
	GroupIDs             []string
	AccountIDs           []string
	CreatedAtGt          time.Time
	CreatedAtLt          time.Time
	UpdatedAtGt          time.Time
	UpdatedAtGte         time.Time
	UpdatedAtLt          time.Time
	Query                string
	SortBy               string // e.g. updatedAt, createdAt, id
	SortOrder            string // SortAsc or SortDesc
	Limit                int
	Cursor               string
}

// Values encodes f as query parameters.
func (f ThreatFilter) Values() url.Values {
	q := query{}
	q.csv(paramIDs, f.IDs)
	q.csv("computerName__contains", f.ComputerNameContains)
	q.csv("incidentStatuses", mapStrings(f.IncidentStatuses, LowerSnake))
	q.csv("analystVerdicts", mapStrings(f.AnalystVerdicts, LowerSnake))
	q.csv("mitigationStatuses", mapStrings(f.MitigationStatuses, LowerSnake))
	q.csv("classifications", f.Classifications)
	q.csv("contentHashes", f.ContentHashes)
	q.csv("agentIds", f.AgentIDs)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.time("createdAt__gt", f.CreatedAtGt)
	q.time("createdAt__lt", f.CreatedAtLt)
	q.time("updatedAt__gt", f.UpdatedAtGt)
	q.time("updatedAt__gte", f.UpdatedAtGte)
	q.time("updatedAt__lt", f.UpdatedAtLt)
	q.str(paramQuery, f.Query)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// AgentFilter selects agents (GET /agents). The console ANDs filters, so
// finding an IP that may be local or external takes one call with
// NetworkInterfaceInetContains and one with ExternalIPContains; both match
// substrings, and Agent.HasIP then keeps the exact matches.
type AgentFilter struct {
	IDs                          []string
	ComputerName                 string   // exact
	ComputerNameContains         []string // substrings
	NetworkInterfaceInetContains []string // local interface address substrings
	ExternalIPContains           []string // external address substrings
	UUIDs                        []string
	Query                        string
	SiteIDs                      []string
	GroupIDs                     []string
	AccountIDs                   []string
	IsActive                     *bool
	Infected                     *bool
	NetworkStatuses              []string // connected, disconnected, connecting, disconnecting
	OSTypes                      []string // windows, windows_legacy, macos, linux
	SortBy                       string
	SortOrder                    string
	Limit                        int
	Cursor                       string
}

// Values encodes f as query parameters.
func (f AgentFilter) Values() url.Values {
	q := query{}
	q.csv(paramIDs, f.IDs)
	q.str("computerName", f.ComputerName)
	q.csv("computerName__contains", f.ComputerNameContains)
	q.csv("networkInterfaceInet__contains", f.NetworkInterfaceInetContains)
	q.csv("externalIp__contains", f.ExternalIPContains)
	q.csv("uuids", f.UUIDs)
	q.str(paramQuery, f.Query)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.bool("isActive", f.IsActive)
	q.bool("infected", f.Infected)
	q.csv("networkStatuses", mapStrings(f.NetworkStatuses, LowerSnake))
	q.csv("osTypes", mapStrings(f.OSTypes, LowerSnake))
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// GroupFilter selects groups (GET /groups).
type GroupFilter struct {
	IDs        []string // sent as groupIds
	SiteIDs    []string
	AccountIDs []string
	Name       string // exact
	Query      string // name or description
	Type       string // static, dynamic, pinned
	IsDefault  *bool
	SortBy     string
	SortOrder  string
	Limit      int
	Cursor     string
}

// Values encodes f as query parameters.
func (f GroupFilter) Values() url.Values {
	q := query{}
	q.csv(paramGroupIDs, f.IDs)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.str("name", f.Name)
	q.str(paramQuery, f.Query)
	q.str("type", LowerSnake(f.Type))
	q.bool("isDefault", f.IsDefault)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// SiteFilter selects sites (GET /sites).
type SiteFilter struct {
	IDs          []string // sent as siteIds
	AccountIDs   []string
	Name         string // exact
	NameContains []string
	State        string // active, expired, deleted
	Query        string // name, account name, description
	SortBy       string
	SortOrder    string
	Limit        int
	Cursor       string
}

// Values encodes f as query parameters.
func (f SiteFilter) Values() url.Values {
	q := query{}
	q.csv(paramSiteIDs, f.IDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.str("name", f.Name)
	q.csv("name__contains", f.NameContains)
	q.str("state", LowerSnake(f.State))
	q.str(paramQuery, f.Query)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// ActivityFilter selects activities (GET /activities). Times are exclusive.
type ActivityFilter struct {
	IDs           []string
	ActivityTypes []int
	ThreatIDs     []string
	AgentIDs      []string
	AlertIDs      []string
	SiteIDs       []string
	GroupIDs      []string
	AccountIDs    []string
	CreatedAtGt   time.Time
	CreatedAtLt   time.Time
	SortBy        string // id, activityType, createdAt
	SortOrder     string
	Limit         int
	Cursor        string
}

// Values encodes f as query parameters.
func (f ActivityFilter) Values() url.Values {
	q := query{}
	q.csv(paramIDs, f.IDs)
	q.ints("activityTypes", f.ActivityTypes)
	q.csv("threatIds", f.ThreatIDs)
	q.csv("agentIds", f.AgentIDs)
	q.csv("alertIds", f.AlertIDs)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.time("createdAt__gt", f.CreatedAtGt)
	q.time("createdAt__lt", f.CreatedAtLt)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// AlertFilter selects cloud-detection alerts (GET /cloud-detection/alerts).
// Statuses and verdicts may be given in any case; they are sent UPPER_SNAKE
// as this endpoint wants, and severities in display case ("High"). Times are
// exclusive.
type AlertFilter struct {
	IDs              []string
	IncidentStatuses []string // unresolved, in_progress, resolved
	AnalystVerdicts  []string // undefined, true_positive, false_positive, suspicious
	Severities       []string // low, medium, high, critical, info
	RuleNameContains []string
	CreatedAtGt      time.Time
	CreatedAtLt      time.Time
	SiteIDs          []string
	GroupIDs         []string
	AccountIDs       []string
	Query            string
	SortBy           string // e.g. alertInfoCreatedAt
	SortOrder        string
	Limit            int
	Cursor           string
}

// Values encodes f as query parameters.
func (f AlertFilter) Values() url.Values {
	q := query{}
	q.csv(paramIDs, f.IDs)
	q.csv("incidentStatus", mapStrings(f.IncidentStatuses, UpperSnake))
	q.csv("analystVerdict", mapStrings(f.AnalystVerdicts, UpperSnake))
	q.csv("severity", mapStrings(f.Severities, DisplayCase))
	q.csv("ruleName__contains", f.RuleNameContains)
	q.time("createdAt__gt", f.CreatedAtGt)
	q.time("createdAt__lt", f.CreatedAtLt)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.str(paramQuery, f.Query)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// RestrictionFilter selects blocklist entries (GET /restrictions). The
// console's scope rule: Tenant true alone for the global list, or false with
// SiteIDs/AccountIDs/GroupIDs; IncludeParents and IncludeChildren widen it,
// and all three set to true see every scope the token can.
type RestrictionFilter struct {
	IDs             []string
	Value           string   // SHA1, exact and case-sensitive
	ValueContains   []string // case-insensitive
	OSTypes         []string // windows, windows_legacy, macos, linux
	Type            string   // black_hash (the console's default)
	Tenant          *bool
	SiteIDs         []string
	GroupIDs        []string
	AccountIDs      []string
	IncludeParents  *bool
	IncludeChildren *bool
	Query           string
	SortBy          string
	SortOrder       string
	Limit           int
	Cursor          string
}

// Values encodes f as query parameters.
func (f RestrictionFilter) Values() url.Values {
	q := query{}
	q.csv(paramIDs, f.IDs)
	q.str("value", f.Value)
	q.csv("value__contains", f.ValueContains)
	q.csv("osTypes", mapStrings(f.OSTypes, LowerSnake))
	q.str("type", f.Type)
	q.bool("tenant", f.Tenant)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.bool("includeParents", f.IncludeParents)
	q.bool("includeChildren", f.IncludeChildren)
	q.str(paramQuery, f.Query)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}
