package handlers

import (
	"context"
	"errors"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// HashReputationRequest is the request of hash.reputation.
type HashReputationRequest struct {
	// Hash is a SHA1, in any case; it is lower-cased by Validate.
	Hash string `json:"hash" jsonschema:"pattern=^[0-9a-fA-F]{40}$"`
}

// Validate checks and normalises r.
func (r *HashReputationRequest) Validate() (err error) {
	r.Hash, err = checkSHA1("hash", r.Hash)
	return err
}

// HashReputationReply is the reply of hash.reputation. Verdict is
// malicious, non-malicious or unknown. Rank (0-10) is set only when the
// console answered the verdict endpoint with 404 and the legacy reputation
// endpoint with a rank; the key is always present.
type HashReputationReply struct {
	Hash    string `json:"hash"`
	Verdict string `json:"verdict"`
	Rank    *int   `json:"rank" jsonschema:"minimum=0,maximum=10,nullable"`
}

func hashReputation(ctx context.Context, env *Env, r *HashReputationRequest) (*HashReputationReply, error) {
	v, err := env.Client.HashVerdict(ctx, r.Hash)
	if errors.Is(err, sentinelone.ErrNotFound) {
		// The client only gives up with a 404 when both the verdict
		// endpoint and the legacy reputation endpoint answered 404.
		e := FromUpstream(err)
		e.Message = "this console serves neither /hashes/{hash}/verdict nor the legacy /hashes/{hash}/reputation (HTTP 404)"
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	return &HashReputationReply{Hash: r.Hash, Verdict: v.Verdict, Rank: v.Rank}, nil
}
