package handlers

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// Request enums of the uam.* actions, in the lower_snake form of
// DESIGN.md §10, built from the client's UAM enums so that the two cannot
// drift. Severities are DESIGN's five: UNKNOWN is not a level a caller
// filters on (alerts of unknown severity are listed when no severity is
// given).
var (
	uamStatuses         = lowerAll(sentinelone.UAMStatuses())
	uamVerdicts         = lowerAll(sentinelone.UAMAnalystVerdicts())
	uamConfidenceLevels = lowerAll(sentinelone.UAMConfidenceLevels())
	uamSeverities       = []string{"info", "low", "medium", "high", "critical"}
	uamSortFields       = []string{sentinelone.UAMSortDetectedAt, sentinelone.UAMSortUpdatedAt}
)

func lowerAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = sentinelone.LowerSnake(v)
	}
	return out
}

// uuidRe is a UUID's text form: Unified Alerts ids are UUIDs
// (uam-reference.md §0), and the console answers "Invalid UUID" to anything
// else in a mutation, so a malformed id is refused here, naming the field,
// before anything is sent.
var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkUUIDs checks a list of alert ids: UUIDs, at most maxIDs, no
// repeats, at least one when required.
func checkUUIDs(field string, ids []string, required bool) error {
	switch {
	case len(ids) == 0 && required:
		return Invalid(field, "is required and must hold at least one alert id")
	case len(ids) > maxIDs:
		return Invalid(field, "holds %d ids; at most %d are accepted", len(ids), maxIDs)
	}
	for i, id := range ids {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !uuidRe.MatchString(id) {
			return Invalid(f, "%q is not a Unified Alerts id (a UUID such as 00000000-0000-7000-8000-00000000a001)", id)
		}
		if slices.Index(ids, id) < i {
			return Invalid(f, "%q is listed twice", id)
		}
	}
	return nil
}

// checkNote checks a note's text: 1 to 4096 bytes, not blank, no control
// characters other than line breaks and tabs (a note is multi-line text in
// a JSON body, not a URL value).
func checkNote(field, s string) error {
	switch {
	case s == "":
		return Invalid(field, "is required: 1 to %d bytes", sentinelone.UAMMaxNoteBytes)
	case len(s) > sentinelone.UAMMaxNoteBytes:
		return Invalid(field, "is %d bytes long; at most %d are accepted", len(s), sentinelone.UAMMaxNoteBytes)
	case strings.TrimSpace(s) == "":
		return Invalid(field, "must not be blank")
	case !utf8.ValidString(s):
		return Invalid(field, "must be valid UTF-8")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }); i >= 0 {
		return Invalid(field, "must not contain control characters other than line breaks and tabs (found %U at byte %d)", []rune(s[i:])[0], i)
	}
	return nil
}
