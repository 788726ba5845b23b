package handlers

import (
	"context"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// BlocklistDeleteRequest is the request of blocklist.delete: either IDs (of
// blocklist entries), or Hash, whose entries in Scope (every scope the token
// sees when nil) are looked up first.
type BlocklistDeleteRequest struct {
	IDs   []string `json:"ids,omitempty" jsonschema:"oneof_required=ids,minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	Hash  string   `json:"hash,omitempty" jsonschema:"oneof_required=hash,pattern=^[0-9a-fA-F]{40}$"` // SHA1
	Scope *Scope   `json:"scope,omitempty"`
}

// Validate checks and normalises r.
func (r *BlocklistDeleteRequest) Validate() (err error) {
	switch {
	case r.IDs != nil && r.Hash != "":
		return Invalid("ids", "give ids or hash, not both")
	case r.IDs == nil && r.Hash == "":
		return Invalid("ids", "give the ids of the entries to delete, or the hash whose entries to delete")
	case r.IDs != nil && r.Scope != nil:
		return Invalid("scope", "only narrows a delete by hash; ids name the entries already")
	case r.IDs != nil:
		return checkIDs("ids", r.IDs, requiredIDs)
	}
	if r.Hash, err = checkSHA1("hash", r.Hash); err != nil {
		return err
	}
	if r.Scope != nil {
		return r.Scope.validate("scope")
	}
	return nil
}

// BlocklistDeleteReply is the reply of blocklist.delete: how many entries
// SentinelOne removed, and the ids asked for or found by hash.
type BlocklistDeleteReply struct {
	Affected int      `json:"affected"`
	IDs      []string `json:"ids"`
}

// lookupPageSize is the page size of lookups that read a whole list.
const lookupPageSize = sentinelone.MaxLimit

func blocklistDelete(ctx context.Context, env *Env, r *BlocklistDeleteRequest) (*BlocklistDeleteReply, error) {
	ids := r.IDs
	if r.Hash != "" {
		f := restrictionFilter(r.Hash, nil, r.Scope)
		f.Limit = lookupPageSize
		ids = []string{}
		for page, err := range env.Client.RestrictionPages(ctx, f) {
			if err != nil {
				return nil, err
			}
			for _, it := range page.Items {
				if it.ID != "" {
					ids = append(ids, it.ID)
				}
			}
		}
		if len(ids) == 0 {
			return &BlocklistDeleteReply{Affected: 0, IDs: ids}, nil
		}
	}
	affected := 0
	// A hash has at most a few entries per scope, but the console takes at
	// most maxIDs ids per call.
	for start := 0; start < len(ids); start += maxIDs {
		n, err := env.Client.DeleteRestrictions(ctx, ids[start:min(start+maxIDs, len(ids))])
		if err != nil {
			if affected > 0 {
				return nil, partialFailure(err, &BlocklistDeleteReply{Affected: affected, IDs: ids[:start]}, "deleting the next ids", "some entries were deleted")
			}
			return nil, err
		}
		affected += n
	}
	return &BlocklistDeleteReply{Affected: affected, IDs: ids}, nil
}
