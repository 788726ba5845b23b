package sentinelone

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Hash verdicts, as GET /hashes/{hash}/verdict spells them.
const (
	HashMalicious    = "malicious"
	HashNonMalicious = "non-malicious"
	HashUnknown      = "unknown"
)

// HashVerdict is what the console knows of a file hash.
type HashVerdict struct {
	// Verdict is HashMalicious, HashNonMalicious or HashUnknown (also for an
	// answer without one). From the legacy endpoint it is derived from
	// Rank: 5-10 malicious, 1-4 non-malicious, 0 or none unknown.
	Verdict string
	// Rank (0-10) is set only when the answer came from the legacy
	// /reputation endpoint and carried one.
	Rank *int
	// Legacy is true when /verdict answered 404 and /reputation answered.
	Legacy bool
}

// HashVerdict looks up a hash (lower-cased first): GET /hashes/{hash}/verdict,
// and on 404 the legacy GET /hashes/{hash}/reputation, the one request made
// outside the Swagger subset. If both answer 404 the second error is returned.
func (c *Client) HashVerdict(ctx context.Context, hash string) (*HashVerdict, error) {
	hash = strings.ToLower(strings.TrimSpace(hash))
	if hash == "" || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: hash %q is not hexadecimal", ErrInvalidArgument, hash)
	}
	var v struct {
		Verdict string `json:"verdict"`
	}
	path := strings.Replace(PathHashVerdict, pathHashPlaceholder, hash, 1)
	err := c.do(ctx, http.MethodGet, PathHashVerdict, path, nil, nil, func(b []byte) error { return decodeData(b, &v) })
	if err == nil {
		return &HashVerdict{Verdict: or(strings.ToLower(strings.TrimSpace(v.Verdict)), HashUnknown)}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	var r struct {
		Rank flexInt `json:"rank"`
	}
	path = strings.Replace(PathHashReputation, pathHashPlaceholder, hash, 1)
	if err := c.do(ctx, http.MethodGet, PathHashReputation, path, nil, nil, func(b []byte) error { return decodeData(b, &r) }); err != nil {
		return nil, err
	}
	out := &HashVerdict{Verdict: HashUnknown, Legacy: true}
	if r.Rank.Valid {
		rank := r.Rank.V
		out.Rank = &rank
		switch {
		case rank >= 5:
			out.Verdict = HashMalicious
		case rank >= 1:
			out.Verdict = HashNonMalicious
		}
	}
	return out, nil
}
