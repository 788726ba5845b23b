package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Parsing and matching of single values, shared by query strings and JSON filters.

func parseBetween(v string) (from, to int64, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	from, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	to, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	return from, to, err1 == nil && err2 == nil && from <= to
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"}

// parseTime reads an ISO-8601 timestamp; one without a zone is UTC.
func parseTime(s string) (int64, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), true
		}
	}
	return 0, false
}

// parseBool reads a boolean case-insensitively, as the console does (True, false).
func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseIDs validates ids as the console does: numeric and >= 1e17.
func parseIDs(name string, items []string) ([]uint64, *apiError) {
	ids := make([]uint64, 0, len(items))
	for i, it := range items {
		id, err := strconv.ParseUint(it, 10, 64)
		if err != nil {
			return nil, validation(fmt.Sprintf("%s: %d: Not a valid integer.", name, i))
		}
		if id < minID {
			return nil, validation(fmt.Sprintf("%s: %d: Must be greater than or equal to %d.", name, i, uint64(minID)))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func checkEnum(name string, enum, items []string, list bool) *apiError {
	if enum == nil {
		return nil
	}
	for i, it := range items {
		if !slices.Contains(enum, it) {
			if list {
				return validation(fmt.Sprintf("%s: %d: Must be one of: %s.", name, i, strings.Join(enum, ", ")))
			}
			return validation(fmt.Sprintf("%s: Must be one of: %s.", name, strings.Join(enum, ", ")))
		}
	}
	return nil
}

func anyContains(v string, needles []string) bool {
	for _, n := range needles {
		if containsFold(v, n) {
			return true
		}
	}
	return false
}

// containsFold reports whether lowerNeedle occurs in s ignoring case. It does
// not allocate for ASCII text, which is what a scan over 100,000 rows needs.
func containsFold(s, lowerNeedle string) bool {
	n := len(lowerNeedle)
	if n == 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), lowerNeedle)
		}
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// bodyFilter turns a JSON "filter" object into query-style values, so action
// bodies and list queries share one filter compiler. Arrays, strings (csv
// allowed), booleans and numbers are all accepted, as the console tolerates.
func bodyFilter(raw json.RawMessage) (url.Values, *apiError) {
	vals := url.Values{}
	if len(raw) == 0 || string(raw) == "null" {
		return vals, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, validation("filter: Invalid input type.")
	}
	for k, v := range m {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if s, ok := scalarString(e); ok {
					vals.Add(k, s)
				}
			}
		default:
			if s, ok := scalarString(x); ok {
				vals.Add(k, s)
			}
		}
	}
	return vals, nil
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}
