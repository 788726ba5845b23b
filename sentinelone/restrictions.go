package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"time"
)

// Restriction (blocklist) wire values.
const (
	RestrictionBlackHash = "black_hash"

	OSWindows       = "windows"
	OSWindowsLegacy = "windows_legacy"
	OSMacOS         = "macos"
	OSLinux         = "linux"
)

var osTypes = []string{OSWindows, OSWindowsLegacy, OSMacOS, OSLinux}

// Scope is where a blocklist entry lives: the whole tenant (global list), or
// the given sites, accounts or groups.
type Scope struct {
	Tenant     bool     `json:"tenant,omitempty"`
	SiteIDs    []string `json:"siteIds,omitempty"`
	AccountIDs []string `json:"accountIds,omitempty"`
	GroupIDs   []string `json:"groupIds,omitempty"`
}

func (s Scope) check() error {
	lists := 0
	for _, ids := range [][]string{s.SiteIDs, s.AccountIDs, s.GroupIDs} {
		if len(ids) > 0 {
			lists++
			if slices.Contains(ids, "") {
				return fmt.Errorf("%w: empty scope id", ErrInvalidArgument)
			}
		}
	}
	switch {
	case s.Tenant && lists > 0:
		return fmt.Errorf("%w: scope is either tenant or ids, not both", ErrInvalidArgument)
	case !s.Tenant && lists == 0:
		return fmt.Errorf("%w: no scope (set Tenant or site, account or group ids)", ErrInvalidArgument)
	}
	return nil
}

// Restriction is a blocklist entry. Raw is the object as the console sent
// it, and MarshalJSON writes Raw.
type Restriction struct {
	ID          string
	Value       string // SHA1
	SHA256Value string
	Type        string
	OSType      string
	Description string
	Source      string
	ScopeName   string
	Scope       Scope
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Raw         json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Restriction) UnmarshalJSON(data []byte) error {
	var w struct {
		ID          ID      `json:"id"`
		Value       *string `json:"value"`
		SHA256Value *string `json:"sha256Value"`
		Type        *string `json:"type"`
		OSType      *string `json:"osType"`
		Description *string `json:"description"`
		Source      *string `json:"source"`
		ScopeName   *string `json:"scopeName"`
		Scope       struct {
			Tenant     Bool     `json:"tenant"`
			SiteIDs    []string `json:"siteIds"`
			AccountIDs []string `json:"accountIds"`
			GroupIDs   []string `json:"groupIds"`
		} `json:"scope"`
		CreatedAt Time `json:"createdAt"`
		UpdatedAt Time `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = Restriction{
		ID: string(w.ID), Value: deref(w.Value), SHA256Value: deref(w.SHA256Value), Type: deref(w.Type),
		OSType: deref(w.OSType), Description: deref(w.Description), Source: deref(w.Source), ScopeName: deref(w.ScopeName),
		Scope:     Scope{Tenant: bool(w.Scope.Tenant), SiteIDs: w.Scope.SiteIDs, AccountIDs: w.Scope.AccountIDs, GroupIDs: w.Scope.GroupIDs},
		CreatedAt: w.CreatedAt.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (r Restriction) MarshalJSON() ([]byte, error) { return rawOrNull(r.Raw), nil }

// ListRestrictions returns one page of blocklist entries (GET /restrictions).
func (c *Client) ListRestrictions(ctx context.Context, f RestrictionFilter) (*Page[Restriction], error) {
	return list[Restriction](ctx, c, PathRestrictions, f.Values())
}

// RestrictionPages iterates the pages of blocklist entries matching f.
func (c *Client) RestrictionPages(ctx context.Context, f RestrictionFilter) iter.Seq2[*Page[Restriction], error] {
	return paginate(ctx, c.log, PathRestrictions, f.Cursor, func(ctx context.Context, cursor string) (*Page[Restriction], error) {
		f.Cursor = cursor
		return c.ListRestrictions(ctx, f)
	})
}

// NewRestriction is a blocklist entry to create: one hash for one OS.
type NewRestriction struct {
	Value       string // SHA1, required
	SHA256Value string // optional, newer consoles only
	OSType      string // windows, windows_legacy, macos, linux
	Description string
	Source      string
	Scope       Scope
}

// CreateRestriction adds a hash to the blocklist for one OS
// (POST /restrictions) and returns what the console created. An entry that
// already exists is an *APIError matching ErrAlreadyExists.
func (c *Client) CreateRestriction(ctx context.Context, r NewRestriction) ([]Restriction, error) {
	if r.Value == "" {
		return nil, fmt.Errorf("%w: no hash value", ErrInvalidArgument)
	}
	if err := checkEnum("OS type", LowerSnake(r.OSType), osTypes); err != nil {
		return nil, err
	}
	if err := r.Scope.check(); err != nil {
		return nil, err
	}
	type data struct {
		Type        string `json:"type"`
		Value       string `json:"value"`
		SHA256Value string `json:"sha256Value,omitempty"`
		OSType      string `json:"osType"`
		Description string `json:"description,omitempty"`
		Source      string `json:"source,omitempty"`
	}
	body := actionBody{
		Filter: r.Scope,
		Data:   data{Type: RestrictionBlackHash, Value: r.Value, SHA256Value: r.SHA256Value, OSType: LowerSnake(r.OSType), Description: r.Description, Source: r.Source},
	}
	var out []Restriction
	err := c.do(ctx, http.MethodPost, PathRestrictions, PathRestrictions, nil, body, func(b []byte) error { return decodeData(b, &out) })
	return out, err
}

// DeleteRestrictions removes blocklist entries by id (DELETE /restrictions)
// and returns how many the console removed. It is refused without ids.
func (c *Client) DeleteRestrictions(ctx context.Context, ids []string) (int, error) {
	if err := checkIDs("restriction", ids); err != nil {
		return 0, err
	}
	body := struct {
		Data struct {
			IDs  []string `json:"ids"`
			Type string   `json:"type"`
		} `json:"data"`
	}{}
	body.Data.IDs, body.Data.Type = ids, RestrictionBlackHash
	return c.affected(ctx, http.MethodDelete, PathRestrictions, body)
}
