package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// defaultOSTypes are the OS types blocklist.add blocks a hash on when the
// request names none (DESIGN.md §4).
var defaultOSTypes = []string{sentinelone.OSWindows, sentinelone.OSMacOS, sentinelone.OSLinux}

// BlocklistAddRequest is the request of blocklist.add. Validate lower-cases
// the hashes and fills the defaults: OSTypes windows, macos and linux, Scope
// the tenant.
type BlocklistAddRequest struct {
	Hash        string   `json:"hash" jsonschema:"pattern=^[0-9a-fA-F]{40}$"`             // SHA1, required
	SHA256      string   `json:"sha256,omitempty" jsonschema:"pattern=^[0-9a-fA-F]{64}$"` // sent as sha256Value
	OSTypes     []string `json:"osTypes,omitempty" jsonschema:"minItems=1,uniqueItems=true,enum=windows,enum=macos,enum=linux,enum=windows_legacy"`
	Description string   `json:"description,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	Scope       *Scope   `json:"scope,omitempty"`
}

// Validate checks and normalises r.
func (r *BlocklistAddRequest) Validate() (err error) {
	if r.Hash, err = checkSHA1("hash", r.Hash); err != nil {
		return err
	}
	if r.SHA256 != "" {
		if r.SHA256, err = checkSHA256("sha256", r.SHA256); err != nil {
			return err
		}
	}
	switch {
	case r.OSTypes == nil:
		r.OSTypes = defaultOSTypes
	case len(r.OSTypes) == 0:
		return Invalid("osTypes", "must hold at least one OS type when given (default: windows, macos, linux)")
	}
	if err := checkEnums("osTypes", r.OSTypes, osTypes); err != nil {
		return err
	}
	if err := checkText("description", r.Description); err != nil {
		return err
	}
	if r.Scope == nil {
		r.Scope = &Scope{Tenant: true}
	}
	return r.Scope.validate("scope")
}

// BlocklistAddReply is the reply of blocklist.add: the entries created, as
// SentinelOne returned them, and the OS types on which the hash was already
// blocked in that scope (not an error).
type BlocklistAddReply struct {
	Items          []json.RawMessage `json:"items"`
	AlreadyPresent []string          `json:"alreadyPresent"`
}

// BlocklistAddApplied is PartialDetails.Applied of a blocklist.add that
// failed on one OS type after others were done.
type BlocklistAddApplied struct {
	Created        []string `json:"created"`
	AlreadyPresent []string `json:"alreadyPresent"`
}

// blocklistAdd makes one POST /restrictions per OS type, in order: the
// console takes one OS per entry.
func blocklistAdd(ctx context.Context, env *Env, r *BlocklistAddRequest) (*BlocklistAddReply, error) {
	reply := &BlocklistAddReply{Items: []json.RawMessage{}, AlreadyPresent: []string{}}
	created := []string{}
	for _, osType := range r.OSTypes {
		items, err := env.Client.CreateRestriction(ctx, sentinelone.NewRestriction{
			Value: r.Hash, SHA256Value: r.SHA256, OSType: osType, Description: r.Description, Scope: r.Scope.client(),
		})
		switch {
		case errors.Is(err, sentinelone.ErrAlreadyExists):
			reply.AlreadyPresent = append(reply.AlreadyPresent, osType)
			continue
		case err != nil && len(created)+len(reply.AlreadyPresent) > 0:
			return nil, partialFailure(err, &BlocklistAddApplied{Created: created, AlreadyPresent: reply.AlreadyPresent}, "osType "+osType,
				fmt.Sprintf("the hash was blocked on %s", strings.Join(append(append([]string{}, created...), reply.AlreadyPresent...), ", ")))
		case err != nil:
			return nil, err
		}
		created = append(created, osType)
		for _, it := range items {
			reply.Items = append(reply.Items, it.Raw)
		}
	}
	return reply, nil
}
