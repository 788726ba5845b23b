package handlers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Limits of request lists, from the Swagger subset: object id lists take up
// to 5000 ids, scope lists (siteIds, groupIds, accountIds) up to 500, and
// every SentinelOne id is at least 1e17 (x-minimum; the cloud-detection
// alert ids have no documented minimum, but are the same 18-19 digit ids).
// Checking them here turns what would be an opaque upstream 400 into one
// naming the field and index.
const (
	maxIDs      = 5000
	maxScopeIDs = 500
	minObjectID = 100000000000000000
)

// Bounds of free text and of lists of free values (activityTypes,
// classifications), which the Swagger subset leaves open. Every one of them
// ends up in a URL, and a console (or the proxy in front of it) refuses an
// oversized request line with an error that would blame SentinelOne (502)
// for the caller's input; SentinelOne knows a few hundred activity types and
// a few dozen classifications.
const (
	maxTextLen = 4096
	maxValues  = 500
)

// Lengths of the hash kinds, in hex digits.
const (
	lenMD5    = 32
	lenSHA1   = 40
	lenSHA256 = 64
)

// Enum values of requests, in the lower_snake form of DESIGN.md §4.
var (
	incidentStatuses = []string{"unresolved", "in_progress", "resolved"}
	analystVerdicts  = []string{"undefined", "true_positive", "false_positive", "suspicious"}
	osTypes          = []string{"windows", "macos", "linux", "windows_legacy"}
	networkStatuses  = []string{"connected", "disconnected", "connecting", "disconnecting"}
	alertSeverities  = []string{"low", "medium", "high", "critical", "info"}
	sortOrders       = []string{"asc", "desc"}
	groupTypes       = []string{"static", "dynamic", "pinned"}
	siteStates       = []string{"active", "expired", "deleted"}
	// threatSortFields is the /threats sortBy enum of the Swagger subset.
	threatSortFields = []string{"id", "createdAt", "updatedAt", "mitigationStatus", "fileDisplayName", "agentVersion",
		"agentMachineType", "siteId", "siteName", "agentComputerName", "filePath", "contentHash", "collectionId", "classification",
		"createdDate", "cloudAccount", "cloudImage", "cloudInstanceId", "cloudInstanceSize", "cloudLocation", "cloudNetwork"}
)

// hashKind names the hash s looks like by its length ("SHA1", "SHA256",
// "MD5"), or returns "" when s is not hexadecimal or has another length.
func hashKind(s string) string {
	if s == "" || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return ""
	}
	switch len(s) {
	case lenSHA1:
		return "SHA1"
	case lenSHA256:
		return "SHA256"
	case lenMD5:
		return "MD5"
	}
	return ""
}

// checkSHA1 returns h lower-cased when it is a SHA1. A SHA256 or an MD5 is
// named as such, so that the caller knows the hash was read but is the
// wrong kind.
func checkSHA1(field, h string) (string, error) {
	switch kind := hashKind(h); kind {
	case "SHA1":
		return strings.ToLower(h), nil
	case "":
		return "", Invalid(field, "must be a SHA1: 40 hexadecimal digits")
	default:
		return "", Invalid(field, "only SHA1 (40 hexadecimal digits) is accepted, and this is a %s", kind)
	}
}

// checkSHA256 returns h lower-cased when it is a SHA256.
func checkSHA256(field, h string) (string, error) {
	if hashKind(h) != "SHA256" {
		return "", Invalid(field, "must be a SHA256: 64 hexadecimal digits")
	}
	return strings.ToLower(h), nil
}

// idRule says what an id list accepts.
type idRule struct {
	required bool
	max      int
	min      uint64 // smallest id
}

var (
	objectIDs   = idRule{max: maxIDs, min: minObjectID}
	requiredIDs = idRule{required: true, max: maxIDs, min: minObjectID}
	scopeIDs    = idRule{max: maxScopeIDs, min: minObjectID}
)

// checkIDs checks a list of SentinelOne ids: numeric strings, at least
// rule.min, at most rule.max of them, and at least one when required.
func checkIDs(field string, ids []string, rule idRule) error {
	switch {
	case len(ids) == 0 && rule.required:
		return Invalid(field, "is required and must hold at least one id")
	case len(ids) > rule.max:
		return Invalid(field, "holds %d ids; at most %d are accepted", len(ids), rule.max)
	}
	for i, id := range ids {
		n, err := strconv.ParseUint(id, 10, 64)
		switch {
		case id == "" || strings.Trim(id, "0123456789") != "":
			return Invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not a SentinelOne id (a string of digits)", id)
		case err != nil:
			return Invalid(fmt.Sprintf("%s[%d]", field, i), "%q is too large to be a SentinelOne id", id)
		case n < rule.min:
			return Invalid(fmt.Sprintf("%s[%d]", field, i), "%q is below %d, the smallest SentinelOne id", id, rule.min)
		}
	}
	return nil
}

// checkEnum checks that v, when set, is one of allowed.
func checkEnum(field, v string, allowed []string) error {
	if v != "" && !slices.Contains(allowed, v) {
		return Invalid(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// checkEnums checks every value of a list, naming the index at fault, and
// refuses a value given twice.
func checkEnums(field string, vs []string, allowed []string) error {
	for i, v := range vs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if v == "" {
			return Invalid(f, "must not be empty")
		}
		if err := checkEnum(f, v, allowed); err != nil {
			return err
		}
		if slices.Index(vs, v) < i {
			return Invalid(f, "%q is listed twice", v)
		}
	}
	return nil
}

// checkText refuses control characters (newlines included): every string
// of a request ends up in a URL query or a single-line console field.
func checkText(field, s string) error {
	if len(s) > maxTextLen {
		return Invalid(field, "is %d bytes long; at most %d are accepted", len(s), maxTextLen)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return Invalid(field, "must not contain control characters (found %U at byte %d)", []rune(s[i:])[0], i)
	}
	return nil
}

// checkListText is checkText for a value sent in a comma-separated query
// parameter, where a comma would split it in two.
func checkListText(field, s string) error {
	if strings.Contains(s, ",") {
		return Invalid(field, "must not contain a comma (SentinelOne reads it as a list separator)")
	}
	return checkText(field, s)
}

// checkListTexts applies checkListText to each value, refusing empty ones
// and more than maxValues of them.
func checkListTexts(field string, vs []string) error {
	if len(vs) > maxValues {
		return Invalid(field, "holds %d values; at most %d are accepted", len(vs), maxValues)
	}
	for i, v := range vs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(v) == "" {
			return Invalid(f, "must not be empty")
		}
		if err := checkListText(f, v); err != nil {
			return err
		}
	}
	return nil
}

// parseTime parses an RFC 3339 timestamp; "" gives the zero time.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Invalid(field, "%q is not an RFC 3339 timestamp such as 2024-05-01T08:00:00Z", s)
	}
	return t, nil
}

// timeRange is an exclusive time window of a list request.
type timeRange struct{ after, before time.Time }

// parseRange parses the after and before bounds of a window and refuses an
// empty one (before not later than after), which could match nothing.
func parseRange(afterField, after, beforeField, before string) (timeRange, error) {
	a, err := parseTime(afterField, after)
	if err != nil {
		return timeRange{}, err
	}
	b, err := parseTime(beforeField, before)
	if err != nil {
		return timeRange{}, err
	}
	if !a.IsZero() && !b.IsZero() && !b.After(a) {
		return timeRange{}, Invalid(beforeField, "must be later than %s", afterField)
	}
	return timeRange{after: a, before: b}, nil
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
