package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/subjects"
)

// The benchmarks' numbers are only as good as the arithmetic and parsing
// below; these checks are cheap, so `go test ./...` runs them while the
// benchmarks themselves run only with -bench.

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, n := range v {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"p0 is the minimum", ms(1, 2, 3), 0, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSorts(t *testing.T) {
	s := summarize([]time.Duration{5, 1, 4, 2, 3})
	if s.n != 5 || s.p50 != 3 || s.p99 != 5 {
		t.Errorf("summarize = %+v, want n 5, p50 3, p99 5", s)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtCount(0), "0"},
		{fmtCount(999.4), "999"},
		{fmtCount(1280), "1,280"},
		{fmtCount(35697.2), "35,697"},
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(-1234), "-1,234"},
		{fmtDur(61 * time.Microsecond), "61 µs"},
		{fmtDur(2305 * time.Microsecond), "2.31 ms"},
		{fmtDur(203 * time.Millisecond), "203 ms"},
		{fmtDur(33300 * time.Millisecond), "33.3 s"},
		{fmtMiB(150 << 20), "150.0 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"present", "Name:\tbench.test\nVmPeak:\t 2000 kB\nVmHWM:\t   91544 kB\nVmRSS:\t 80000 kB\n", 91544 << 10, false},
		{"missing", "Name:\tbench.test\nVmRSS:\t 80000 kB\n", 0, true},
		{"other unit", "VmHWM:\t 12 MB\n", 0, true},
		{"not a number", "VmHWM:\t lots kB\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmHWM(strings.NewReader(tc.status))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseVmHWM = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseHostBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 5 50 9000 40 3 2 10 0 0\ncpu0 50 2 25 4500 20 1 1 5 0 0\nintr 1 2 3\n"
	got, err := parseHostBusy(stat)
	want := time.Duration(100+5+50+3+2+10) * time.Second / userHZ
	if err != nil || got != want {
		t.Errorf("parseHostBusy = %v, %v; want %v (idle and iowait left out)", got, err, want)
	}
	if _, err := parseHostBusy("cpu0 1 2 3 4 5 6 7 8\n"); err == nil {
		t.Error("parseHostBusy accepted a stat without the aggregate cpu line")
	}
}

func TestObjectOf(t *testing.T) {
	s, err := subjects.New("s1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := objectOf(s.ThreatEvent("main", "1938475610293847561", subjects.KindCreated, ""), subjects.EntityThreat)
	if err != nil || id != "1938475610293847561" {
		t.Errorf("objectOf(threat created) = %q, %v", id, err)
	}
	if _, err := objectOf(s.ThreatEvent("main", "1938475610293847561", subjects.KindStatus, "resolved"), subjects.EntityThreat); err == nil {
		t.Error("objectOf accepted a status event")
	}
	const uuid = "00000000-0000-7000-8000-00000000a001"
	if id, err := objectOf(s.AlertEvent("main", uuid, subjects.KindCreated, ""), subjects.EntityAlert); err != nil || id != uuid {
		t.Errorf("objectOf(alert created) = %q, %v", id, err)
	}
	if _, err := objectOf(s.AlertEvent("main", uuid, subjects.KindCreated, ""), subjects.EntityThreat); err == nil {
		t.Error("objectOf took an alert event for a threat's")
	}
}

func TestPadData(t *testing.T) {
	for _, e := range []subjects.Entity{subjects.EntityThreat, subjects.EntityAlert} {
		for _, n := range []int{0, 5, 21, 22, 4142} {
			b := padData(n, e)
			if len(b) != n {
				t.Errorf("padData(%d, %s) has %d bytes", n, e, len(b))
			}
			if n >= 21 && !json.Valid(b) {
				t.Errorf("padData(%d, %s) = %q is not JSON", n, e, b)
			}
		}
	}
}

// TestPublishJobMessage checks that the raw publisher's messages are the
// events' twins: same header names and sizes, a unique id in every place
// the template's threat id was, subjects of the same length.
func TestPublishJobMessage(t *testing.T) {
	const tmplID = "1938475610293847561"
	events, _ := subjects.New("s1")
	raw, _ := subjects.New(rawPrefix)
	tmpl := nats.Header{
		subjects.HeaderMsgID: {"main/" + tmplID + "/created"},
		"ce-id":              {"main/" + tmplID + "/created"},
		"ce-subject":         {tmplID},
		"ce-type":            {subjects.TypeThreatCreated},
	}
	job := &publishJob{Header: cloneHeader(tmpl), TemplateID: tmplID}
	data := padData(100, subjects.EntityThreat)
	m0, m1 := job.message(raw, 0, data), job.message(raw, 1, data)
	if m0.Header.Get(subjects.HeaderMsgID) == m1.Header.Get(subjects.HeaderMsgID) {
		t.Errorf("two messages share Nats-Msg-Id %q", m0.Header.Get(subjects.HeaderMsgID))
	}
	if got := headerLen(m0.Header); got != headerLen(tmpl) {
		t.Errorf("message headers are %d B, the template's %d B", got, headerLen(tmpl))
	}
	if strings.Contains(m0.Header.Get("ce-id"), tmplID) || m0.Header.Get("ce-type") != subjects.TypeThreatCreated {
		t.Errorf("headers %v: the template id must be replaced, the rest kept", m0.Header)
	}
	if want := len(events.ThreatEvent("main", tmplID, subjects.KindCreated, "")); len(m0.Subject) != want {
		t.Errorf("subject %q is %d B, the events' %d B", m0.Subject, len(m0.Subject), want)
	}
	if tmpl.Get("ce-subject") != tmplID {
		t.Error("message changed the template")
	}
}

func TestHeaderLen(t *testing.T) {
	h := nats.Header{"A": {"1", "22"}}
	// "NATS/1.0\r\n" + "A: 1\r\n" + "A: 22\r\n" + "\r\n"
	if got, want := headerLen(h), 10+6+7+2; got != want {
		t.Errorf("headerLen = %d, want %d", got, want)
	}
	if headerLen(nil) != 0 {
		t.Error("headerLen(nil) != 0")
	}
}

// TestPublishJobAlertMessage: for the Unified Alerts backlog the raw
// publisher's messages are alert events' twins: UUID ids of the emulator's
// length, alert subjects of the same length.
func TestPublishJobAlertMessage(t *testing.T) {
	const tmplID = "00000000-0000-7000-8000-00000000a001"
	events, _ := subjects.New("s1")
	raw, _ := subjects.New(rawPrefix)
	tmpl := nats.Header{
		subjects.HeaderMsgID: {subjects.CreatedEventID("main", subjects.EntityAlert, tmplID)},
		"ce-id":              {subjects.CreatedEventID("main", subjects.EntityAlert, tmplID)},
		"ce-subject":         {tmplID},
		"ce-type":            {subjects.TypeAlertCreated},
	}
	job := &publishJob{Entity: subjects.EntityAlert, Header: cloneHeader(tmpl), TemplateID: tmplID}
	data := padData(100, subjects.EntityAlert)
	m0, m1 := job.message(raw, 0, data), job.message(raw, 70000, data)
	if m0.Header.Get(subjects.HeaderMsgID) == m1.Header.Get(subjects.HeaderMsgID) || len(m0.Header.Get("ce-subject")) != len(tmplID) {
		t.Errorf("ids %q, %q: want unique ids as long as %q", m0.Header.Get("ce-subject"), m1.Header.Get("ce-subject"), tmplID)
	}
	if got := headerLen(m1.Header); got != headerLen(tmpl) {
		t.Errorf("message headers are %d B, the template's %d B", got, headerLen(tmpl))
	}
	if want := events.AlertEvent("main", tmplID, subjects.KindCreated, ""); len(m1.Subject) != len(want) || !strings.Contains(m1.Subject, ".event.alert.") {
		t.Errorf("subject %q, want an alert subject as long as %q", m1.Subject, want)
	}
}
