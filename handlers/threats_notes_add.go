package handlers

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a note's text: SentinelOne refuses a note of fewer than 2
// characters; s1bridge caps it at 4096 bytes, as its other free text.
const (
	minNoteChars = 2
	maxNoteBytes = maxTextLen
)

// ThreatsNotesAddRequest is the request of threats.notes.add: one note with
// Text added to each threat of ThreatIDs.
type ThreatsNotesAddRequest struct {
	ThreatIDs []string `json:"threatIds" jsonschema:"minItems=1,maxItems=5000,pattern=^[1-9][0-9]{17\\,19}$"`
	Text      string   `json:"text" jsonschema:"minLength=2,maxLength=4096,pattern=^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"`
}

// Validate checks r. A note may span lines (newlines and tabs are kept);
// other control characters are refused.
func (r *ThreatsNotesAddRequest) Validate() error {
	if err := checkIDs("threatIds", r.ThreatIDs, requiredIDs); err != nil {
		return err
	}
	if len(r.Text) > maxNoteBytes || utf8.RuneCountInString(r.Text) < minNoteChars {
		return Invalid("text", "must be %d to %d bytes long and at least %d characters (SentinelOne refuses shorter notes), not %d bytes",
			minNoteChars, maxNoteBytes, minNoteChars, len(r.Text))
	}
	if i := strings.IndexFunc(r.Text, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' && c != '\r' }); i >= 0 {
		return Invalid("text", "must not contain control characters other than line breaks and tabs (found %U at byte %d)", []rune(r.Text[i:])[0], i)
	}
	return nil
}

// threatsNotesAdd adds the note in one call.
func threatsNotesAdd(ctx context.Context, env *Env, r *ThreatsNotesAddRequest) (*AffectedReply, error) {
	n, err := env.Client.AddThreatNote(ctx, r.ThreatIDs, r.Text)
	if err != nil {
		return nil, err
	}
	return &AffectedReply{Affected: n}, nil
}
