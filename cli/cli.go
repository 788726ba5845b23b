// Package cli is what the s1bridge command does for a person at a
// terminal, beyond running the connector: it lists the actions, finds the
// one a typo meant, points at the error in a JSON argument, tells whether an
// action's reply names an outcome to wait for, and reads events from the
// streams (events.go). cmd/s1bridge parses the flags and calls it.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/s1bridge/s1bridge/handlers"
)

// ListActions writes every action of actions, sorted by name, with its
// description, marking the mutating ones and those whose outcome --wait
// can wait for.
func ListActions(w io.Writer, actions []handlers.Action) error {
	actions = slices.Clone(actions)
	slices.SortFunc(actions, func(a, b handlers.Action) int { return strings.Compare(a.Name, b.Name) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range actions {
		var marks []string
		if a.Mutating {
			marks = append(marks, "mutating")
		}
		if HasOutcome(a) {
			marks = append(marks, "--wait")
		}
		mark := ""
		if len(marks) > 0 {
			mark = "[" + strings.Join(marks, ", ") + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Name, mark, a.Description)
	}
	return tw.Flush()
}

// Nearest returns the name of known closest to name, when it is close
// enough to be the one meant (a typo, a missing or extra letter, two
// letters swapped, a wrong separator), else "".
func Nearest(name string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		d := distance(strings.ToLower(name), k)
		if bestD < 0 || d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if bestD < 0 || bestD > max(2, utf8.RuneCountInString(name)/3) {
		return ""
	}
	return best
}

// distance is the optimal string alignment distance of a and b: the edits
// (insert, delete, replace one rune, swap two neighbours) that turn a into b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// JSONError is a JSON argument that does not parse, with where: Line and
// Column (1-based, in runes) of the byte at Offset (0-based) the parser
// stopped at (Offset is the input's length when it ended too soon).
type JSONError struct {
	Line, Column, Offset int
	// Excerpt is the line at fault, Caret a line pointing at Column.
	Excerpt, Caret string
	Err            error
}

// Error says what is wrong and where, with the line and a caret below it.
func (e *JSONError) Error() string {
	return fmt.Sprintf("line %d, column %d (byte %d): %v\n  %s\n  %s", e.Line, e.Column, e.Offset, e.Err, e.Excerpt, e.Caret)
}

// Unwrap returns the parser's error.
func (e *JSONError) Unwrap() error { return e.Err }

// CheckJSON reports whether b is one JSON object, and where it goes wrong
// when it is not (a *JSONError), so that a request typed at a terminal is
// corrected before anything is sent. Empty input is the empty request.
func CheckJSON(b []byte) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	switch {
	case err == nil:
		if _, ok := v.(map[string]any); !ok {
			return at(b, len(b)-len(strings.TrimLeft(string(b), " \t\r\n")), fmt.Errorf("a request is a JSON object ({...}), not %s", kind(v)))
		}
		return nil
	case errors.As(err, &se) && se.Offset >= int64(len(b)) && strings.Contains(se.Error(), "unexpected end"):
		return at(b, len(b), errors.New("unexpected end of JSON input: a } or \" is missing"))
	case errors.As(err, &se):
		// The offset is after the byte the parser could not take.
		return at(b, int(se.Offset)-1, err)
	}
	return at(b, 0, err)
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// at locates byte pos of b (len(b): after the end) for a JSONError.
func at(b []byte, pos int, err error) *JSONError {
	pos = min(max(pos, 0), len(b))
	lineStart := strings.LastIndexByte(string(b[:pos]), '\n') + 1
	lineEnd := len(b)
	if i := strings.IndexByte(string(b[lineStart:]), '\n'); i >= 0 {
		lineEnd = lineStart + i
	}
	col := utf8.RuneCount(b[lineStart:pos]) + 1
	return &JSONError{
		Line: strings.Count(string(b[:pos]), "\n") + 1, Column: col, Offset: pos,
		Excerpt: strings.ReplaceAll(string(b[lineStart:lineEnd]), "\t", " "),
		Caret:   strings.Repeat(" ", col-1) + "^", Err: err,
	}
}

// HasOutcome reports whether a's reply names, in a "subject" member, the
// events subject its outcome will be published on (threats.monitor, and the
// actions that are tracked): the ones `s1bridge call --wait` can wait for.
func HasOutcome(a handlers.Action) bool {
	t := reflect.TypeOf(a.Response)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return false
	}
	return hasSubject(t)
}

func hasSubject(t reflect.Type) bool {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && hasSubject(ft) {
				return true
			}
			continue
		}
		if name == "subject" && f.Type.Kind() == reflect.String {
			return true
		}
	}
	return false
}

// OutcomeSubject returns the "subject" member of a reply's data: the events
// subject the action's outcome goes to, "" when there is none (a dry run's
// reply, or an action that is not tracked).
func OutcomeSubject(data []byte) string {
	var d struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(data, &d)
	return d.Subject
}

// ParseSince reads --since: a Go duration back from now (90m, 24h) or an
// RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q is negative: give how far back to start (24h) or a time (2026-05-01T08:00:00Z)", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a Go duration (90m, 24h) nor an RFC 3339 time (2026-05-01T08:00:00Z)", s)
}
