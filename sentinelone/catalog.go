package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"time"
)

// This file holds the read-only inventory operations: groups, sites,
// activities and system info.

// Group is an agent group. Raw is the object as the console sent it, and
// MarshalJSON writes Raw.
type Group struct {
	ID          string
	Name        string
	SiteID      string
	Type        string // static, dynamic, pinned
	IsDefault   bool
	Rank        *int // null for static groups
	TotalAgents int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Raw         json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (g *Group) UnmarshalJSON(data []byte) error {
	var w struct {
		ID          ID      `json:"id"`
		Name        *string `json:"name"`
		SiteID      ID      `json:"siteId"`
		Type        *string `json:"type"`
		IsDefault   Bool    `json:"isDefault"`
		Rank        flexInt `json:"rank"`
		TotalAgents flexInt `json:"totalAgents"`
		CreatedAt   Time    `json:"createdAt"`
		UpdatedAt   Time    `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*g = Group{
		ID: string(w.ID), Name: deref(w.Name), SiteID: string(w.SiteID), Type: deref(w.Type), IsDefault: bool(w.IsDefault),
		TotalAgents: w.TotalAgents.V, CreatedAt: w.CreatedAt.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	if w.Rank.Valid {
		g.Rank = &w.Rank.V
	}
	return nil
}

// MarshalJSON returns Raw.
func (g Group) MarshalJSON() ([]byte, error) { return rawOrNull(g.Raw), nil }

// ListGroups returns one page of groups (GET /groups).
func (c *Client) ListGroups(ctx context.Context, f GroupFilter) (*Page[Group], error) {
	return list[Group](ctx, c, PathGroups, f.Values())
}

// GroupPages iterates the pages of groups matching f.
func (c *Client) GroupPages(ctx context.Context, f GroupFilter) iter.Seq2[*Page[Group], error] {
	return paginate(ctx, c.log, PathGroups, f.Cursor, func(ctx context.Context, cursor string) (*Page[Group], error) {
		f.Cursor = cursor
		return c.ListGroups(ctx, f)
	})
}

// Site is a site. Raw is the object as the console sent it, and MarshalJSON
// writes Raw.
type Site struct {
	ID             string
	Name           string
	AccountID      string
	AccountName    string
	State          string // active, expired, deleted
	SiteType       string // Trial, Paid
	IsDefault      bool
	ActiveLicenses int
	TotalLicenses  int
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Raw            json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Site) UnmarshalJSON(data []byte) error {
	var w struct {
		ID             ID      `json:"id"`
		Name           *string `json:"name"`
		AccountID      ID      `json:"accountId"`
		AccountName    *string `json:"accountName"`
		State          *string `json:"state"`
		SiteType       *string `json:"siteType"`
		IsDefault      Bool    `json:"isDefault"`
		ActiveLicenses flexInt `json:"activeLicenses"`
		TotalLicenses  flexInt `json:"totalLicenses"`
		CreatedAt      Time    `json:"createdAt"`
		UpdatedAt      Time    `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*s = Site{
		ID: string(w.ID), Name: deref(w.Name), AccountID: string(w.AccountID), AccountName: deref(w.AccountName),
		State: deref(w.State), SiteType: deref(w.SiteType), IsDefault: bool(w.IsDefault), ActiveLicenses: w.ActiveLicenses.V,
		TotalLicenses: w.TotalLicenses.V, CreatedAt: w.CreatedAt.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (s Site) MarshalJSON() ([]byte, error) { return rawOrNull(s.Raw), nil }

// SitesPage is a page of sites. GET /sites has its own envelope: data is
// {"allSites":{...},"sites":[...]}. AllSites is the licence summary as the
// console sent it (activeLicenses may exceed totalLicenses in real data).
type SitesPage struct {
	Page[Site]
	AllSites json.RawMessage
}

// ListSites returns one page of sites (GET /sites).
func (c *Client) ListSites(ctx context.Context, f SiteFilter) (*SitesPage, error) {
	var p *SitesPage
	err := c.do(ctx, http.MethodGet, PathSites, PathSites, f.Values(), nil, func(b []byte) error {
		var env listEnvelope
		if err := json.Unmarshal(b, &env); err != nil {
			return err
		}
		var data struct {
			AllSites json.RawMessage `json:"allSites"`
			Sites    json.RawMessage `json:"sites"`
		}
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return errors.New("sites answer's data is not an object with sites and allSites")
		}
		page, err := pageFrom[Site](env, data.Sites)
		if err != nil {
			return err
		}
		p = &SitesPage{Page: *page, AllSites: data.AllSites}
		return nil
	})
	return p, err
}

// SitePages iterates the pages of sites matching f.
func (c *Client) SitePages(ctx context.Context, f SiteFilter) iter.Seq2[*SitesPage, error] {
	return paginate(ctx, c.log, PathSites, f.Cursor, func(ctx context.Context, cursor string) (*SitesPage, error) {
		f.Cursor = cursor
		return c.ListSites(ctx, f)
	})
}

// Activity is an activity-log entry. Data is the free-form data object's
// common fields, whose ids may arrive as JSON numbers. Raw is the object as
// the console sent it, and MarshalJSON writes Raw.
type Activity struct {
	ID                   string
	ActivityType         int
	ActivityUUID         string
	PrimaryDescription   string
	SecondaryDescription string
	ThreatID             string
	AgentID              string
	UserID               string
	SiteID               string
	GroupID              string
	AccountID            string
	Data                 ActivityData
	CreatedAt            time.Time
	UpdatedAt            time.Time
	Raw                  json.RawMessage
}

// ActivityData holds the common fields of an activity's data object.
type ActivityData struct {
	AccountID   ID     `json:"accountId"`
	SiteID      ID     `json:"siteId"`
	GroupID     ID     `json:"groupId"`
	AccountName string `json:"accountName"`
	SiteName    string `json:"siteName"`
	GroupName   string `json:"groupName"`
	Username    string `json:"username"`
	ScopeLevel  string `json:"scopeLevel"`
	ScopeName   string `json:"scopeName"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Activity) UnmarshalJSON(data []byte) error {
	var w struct {
		ID                   ID           `json:"id"`
		ActivityType         flexInt      `json:"activityType"`
		ActivityUUID         *string      `json:"activityUuid"`
		PrimaryDescription   *string      `json:"primaryDescription"`
		SecondaryDescription *string      `json:"secondaryDescription"`
		ThreatID             ID           `json:"threatId"`
		AgentID              ID           `json:"agentId"`
		UserID               ID           `json:"userId"`
		SiteID               ID           `json:"siteId"`
		GroupID              ID           `json:"groupId"`
		AccountID            ID           `json:"accountId"`
		Data                 ActivityData `json:"data"`
		CreatedAt            Time         `json:"createdAt"`
		UpdatedAt            Time         `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*a = Activity{
		ID: string(w.ID), ActivityType: w.ActivityType.V, ActivityUUID: deref(w.ActivityUUID),
		PrimaryDescription: deref(w.PrimaryDescription), SecondaryDescription: deref(w.SecondaryDescription),
		ThreatID: string(w.ThreatID), AgentID: string(w.AgentID), UserID: string(w.UserID), SiteID: string(w.SiteID),
		GroupID: string(w.GroupID), AccountID: string(w.AccountID), Data: w.Data, CreatedAt: w.CreatedAt.Time,
		UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (a Activity) MarshalJSON() ([]byte, error) { return rawOrNull(a.Raw), nil }

// ListActivities returns one page of activities (GET /activities).
func (c *Client) ListActivities(ctx context.Context, f ActivityFilter) (*Page[Activity], error) {
	return list[Activity](ctx, c, PathActivities, f.Values())
}

// ActivityPages iterates the pages of activities matching f.
func (c *Client) ActivityPages(ctx context.Context, f ActivityFilter) iter.Seq2[*Page[Activity], error] {
	return paginate(ctx, c.log, PathActivities, f.Cursor, func(ctx context.Context, cursor string) (*Page[Activity], error) {
		f.Cursor = cursor
		return c.ListActivities(ctx, f)
	})
}

// ActivityType is one entry of the activity type catalogue.
type ActivityType struct {
	ID                  int    `json:"id"`
	Action              string `json:"action"`
	DescriptionTemplate string `json:"descriptionTemplate"`
}

// ActivityTypes returns the activity type catalogue (GET /activities/types).
func (c *Client) ActivityTypes(ctx context.Context) ([]ActivityType, error) {
	var out []ActivityType
	err := c.do(ctx, http.MethodGet, PathActivityTypes, PathActivityTypes, nil, nil, func(b []byte) error { return decodeData(b, &out) })
	return out, err
}

// SystemInfo is the console's version information.
type SystemInfo struct {
	Build              string `json:"build"`
	LatestAgentVersion string `json:"latestAgentVersion"`
	Patch              string `json:"patch"`
	Release            string `json:"release"`
	Version            string `json:"version"`
}

// SystemInfo returns the console's version (GET /system/info). It is the
// cheap call that checks a token: a bad one gives an *APIError matching
// ErrUnauthorized, a token without the permission one matching ErrForbidden.
func (c *Client) SystemInfo(ctx context.Context) (*SystemInfo, error) {
	var out SystemInfo
	if err := c.do(ctx, http.MethodGet, PathSystemInfo, PathSystemInfo, nil, nil, func(b []byte) error { return decodeData(b, &out) }); err != nil {
		return nil, err
	}
	return &out, nil
}
