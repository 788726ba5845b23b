package sentinelone

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBool(t *testing.T) {
	for in, want := range map[string]bool{
		`true`: true, `false`: false, `"True"`: true, `"FALSE"`: false, `"true"`: true, `null`: false, `" true "`: true,
	} {
		var b Bool
		if err := json.Unmarshal([]byte(in), &b); err != nil || bool(b) != want {
			t.Errorf("%s: %v, %v; want %v", in, b, err, want)
		}
	}
	for _, in := range []string{`"yes"`, `1`, `"1"`, `{}`, `""`} {
		var b Bool
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestID(t *testing.T) {
	for in, want := range map[string]ID{
		`"1559342436290084702"`: "1559342436290084702",
		`1559342436290084702`:   "1559342436290084702", // beyond float64 precision: kept verbatim
		`123456`:                "123456",
		`null`:                  "",
	} {
		var id ID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("%s: %q, %v; want %q", in, id, err, want)
		}
	}
	var id ID
	if err := json.Unmarshal([]byte(`true`), &id); err == nil {
		t.Error("true: no error")
	}
}

func TestTime(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v.UTC() }
	for in, want := range map[string]time.Time{
		`"2022-12-20T13:54:53.009117Z"`: utc("2022-12-20T13:54:53.009117Z"),
		`"2019-06-27T08:00:31Z"`:        utc("2019-06-27T08:00:31Z"),
		`"2022-07-31T08:11:06+00:00"`:   utc("2022-07-31T08:11:06Z"),
		`"2022-07-31T10:11:06.5+02:00"`: utc("2022-07-31T08:11:06.5Z"),
		`"1900-01-01T00:00:00"`:         utc("1900-01-01T00:00:00Z"),
		`"2185-07-21T23:34:33.709552Z"`: utc("2185-07-21T23:34:33.709552Z"),
		`null`:                          {},
		`""`:                            {},
		`"None"`:                        {},
	} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{`"yesterday"`, `1700000000`, `"2022-13-01T00:00:00Z"`} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
	b, _ := json.Marshal(struct{ A, B Time }{A: Time{utc("2024-05-01T10:00:00.5Z")}})
	if string(b) != `{"A":"2024-05-01T10:00:00.5Z","B":null}` {
		t.Errorf("marshal: %s", b)
	}
}

func TestDetectionEngines(t *testing.T) {
	var got []DetectionEngine
	if err := json.Unmarshal([]byte(`["pre_execution",{"key":"manual","title":"Manual"}]`), &got); err != nil {
		t.Fatal(err)
	}
	want := []DetectionEngine{{"pre_execution", "pre_execution"}, {"manual", "Manual"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := json.Unmarshal([]byte(`[1]`), &got); err == nil {
		t.Error("number: no error")
	}
}

func TestNormalizeCursor(t *testing.T) {
	for in, want := range map[string]string{
		``: "", `null`: "", `""`: "", `"null"`: "", `" null "`: "", `"YWdlbnRfaWQ6NTgwMjkzODE="`: "YWdlbnRfaWQ6NTgwMjkzODE=",
	} {
		got, err := normalizeCursor(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalizeCursor(json.RawMessage(`42`)); err == nil {
		t.Error("number: no error")
	}
}

func TestEnumCase(t *testing.T) {
	tests := []struct{ in, lower, upper, display string }{
		{"In progress", "in_progress", "IN_PROGRESS", "In progress"},
		{"IN_PROGRESS", "in_progress", "IN_PROGRESS", "In progress"},
		{"in_progress", "in_progress", "IN_PROGRESS", "In progress"},
		{"True positive", "true_positive", "TRUE_POSITIVE", "True positive"},
		{"FALSE_POSITIVE", "false_positive", "FALSE_POSITIVE", "False positive"},
		{"Unresolved", "unresolved", "UNRESOLVED", "Unresolved"},
		{"high", "high", "HIGH", "High"},
		{"  Critical ", "critical", "CRITICAL", "Critical"},
		{"non-malicious", "non-malicious", "NON-MALICIOUS", "Non-malicious"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		if got := LowerSnake(tt.in); got != tt.lower {
			t.Errorf("LowerSnake(%q) = %q, want %q", tt.in, got, tt.lower)
		}
		if got := UpperSnake(tt.in); got != tt.upper {
			t.Errorf("UpperSnake(%q) = %q, want %q", tt.in, got, tt.upper)
		}
		if got := DisplayCase(tt.in); got != tt.display {
			t.Errorf("DisplayCase(%q) = %q, want %q", tt.in, got, tt.display)
		}
	}
}
