package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// BlocklistListRequest is the request of blocklist.list. Without Scope it
// looks at every scope the token sees.
type BlocklistListRequest struct {
	ListParams
	Hash    string   `json:"hash,omitempty" jsonschema:"pattern=^[0-9a-fA-F]{40}$"` // SHA1
	OSTypes []string `json:"osTypes,omitempty" jsonschema:"uniqueItems=true,enum=windows,enum=macos,enum=linux,enum=windows_legacy"`
	Scope   *Scope   `json:"scope,omitempty"`
}

// Validate checks and normalises r.
func (r *BlocklistListRequest) Validate() (err error) {
	if err := r.ListParams.Validate(); err != nil {
		return err
	}
	if r.Hash != "" {
		if r.Hash, err = checkSHA1("hash", r.Hash); err != nil {
			return err
		}
	}
	if err := checkEnums("osTypes", r.OSTypes, osTypes); err != nil {
		return err
	}
	if r.Scope != nil {
		return r.Scope.validate("scope")
	}
	return nil
}

// restrictionFilter is the filter of blocklist entries of hash (any when
// ""), osTypes and scope (every scope the token sees when nil).
func restrictionFilter(hash string, osTypes []string, scope *Scope) sentinelone.RestrictionFilter {
	f := sentinelone.RestrictionFilter{Type: sentinelone.RestrictionBlackHash, OSTypes: osTypes}
	if hash != "" {
		// value is an exact but case-sensitive match, and entries made by
		// other tools may hold an upper-case hash. A 40-digit substring of
		// a 40-digit value is the whole value, so value__contains (which
		// ignores case) is the exact, case-insensitive match.
		f.ValueContains = []string{hash}
	}
	scope.filter(&f)
	return f
}

func rawRestriction(r *sentinelone.Restriction) json.RawMessage { return r.Raw }

func blocklistList(ctx context.Context, env *Env, r *BlocklistListRequest) (*ListReply, error) {
	f := restrictionFilter(r.Hash, r.OSTypes, r.Scope)
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ListRestrictions(ctx, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawRestriction), nil
	})
	return reply, err
}
