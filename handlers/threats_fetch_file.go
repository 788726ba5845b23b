package handlers

import (
	"context"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Bounds of a fetch-file password (SentinelOne's rules, response-actions.md
// §6; the upper bound is s1bridge's, as for its other free text).
const (
	minPasswordChars = 10
	maxPasswordBytes = 256
)

// ThreatsFetchFileRequest is the request of threats.fetch_file: SentinelOne
// asks the agent of each threat to upload the threat's file in a ZIP archive
// encrypted with Password. Password is a Secret: it never shows in a log, a
// reply (a dry run's included), a metric, an audit record or an error.
type ThreatsFetchFileRequest struct {
	ThreatIDs []string `json:"threatIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	Password  Secret   `json:"password" jsonschema:"minLength=10,maxLength=256"`
	TrackParams
}

// Validate checks r against SentinelOne's password rules, naming the rule
// that failed (never the password).
func (r *ThreatsFetchFileRequest) Validate() error {
	if err := checkIDs("threatIds", r.ThreatIDs, requiredIDs); err != nil {
		return err
	}
	if err := checkPassword(r.Password.Reveal()); err != nil {
		return err
	}
	return r.TrackParams.Validate()
}

// checkPassword applies SentinelOne's rules: 10 or more characters, no
// white space, and at least one upper-case letter, lower-case letter, digit
// and symbol.
func checkPassword(p string) error {
	var upper, lower, digit, symbol bool
	for _, c := range p {
		switch {
		case unicode.IsSpace(c) || unicode.IsControl(c):
			return Invalid("password", "must not contain white space or control characters")
		case unicode.IsUpper(c):
			upper = true
		case unicode.IsLower(c):
			lower = true
		case unicode.IsDigit(c):
			digit = true
		default:
			symbol = true
		}
	}
	switch {
	case p == "":
		return Invalid("password", "is required: the ZIP archive of the file is encrypted with it")
	case utf8.RuneCountInString(p) < minPasswordChars:
		return Invalid("password", "must be at least %d characters long", minPasswordChars)
	case len(p) > maxPasswordBytes:
		return Invalid("password", "must be at most %d bytes long", maxPasswordBytes)
	case !upper:
		return Invalid("password", "must contain an upper-case letter")
	case !lower:
		return Invalid("password", "must contain a lower-case letter")
	case !digit:
		return Invalid("password", "must contain a digit")
	case !symbol:
		return Invalid("password", "must contain a symbol (a character that is not a letter, a digit or white space)")
	}
	return nil
}

// ThreatsFetchFileApplied is PartialDetails.Applied when a fetch failed
// after others had been accepted.
type ThreatsFetchFileApplied struct {
	ThreatIDs []string `json:"threatIds"` // the threats whose fetch SentinelOne accepted
	Affected  int      `json:"affected"`
}

// threatsFetchFile makes one call per threat, each threat once: SentinelOne
// takes exactly one threat per fetch ("bulk operations are not supported").
// When a call fails after others succeeded, the error says which were
// accepted; repeating the request fetches those files again, which is
// harmless. The fetch is tracked until each agent reports the upload; a
// threat SentinelOne matched nothing for ends failed at once. A partial
// failure is not tracked: its error reply has no place for a tracking id.
func threatsFetchFile(ctx context.Context, env *Env, r *ThreatsFetchFileRequest) (*TrackedReply, error) {
	at := trackNow()
	affected := 0
	var done []string
	refused := map[string]string{}
	for i, id := range r.ThreatIDs {
		if slices.Index(r.ThreatIDs, id) < i {
			continue
		}
		n, err := env.Client.FetchThreatFile(ctx, id, r.Password.Reveal())
		if err != nil && len(done) > 0 {
			return nil, partialFailure(err, &ThreatsFetchFileApplied{ThreatIDs: done, Affected: affected},
				"threat "+id, fmt.Sprintf("the files of %d threats were requested", len(done)))
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			refused[id] = notMatched("threat", id)
		}
		affected += n
		done = append(done, id)
	}
	return track(ctx, env, affected, TrackSpec{Action: ActionThreatsFetchFile, Targets: r.ThreatIDs, Refused: refused, Timeout: r.trackTimeout, RequestedAt: at}), nil
}
