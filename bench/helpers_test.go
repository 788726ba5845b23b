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

func TestThreatOf(t *testing.T) {
	s, err := subjects.New("s1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := threatOf(s.ThreatEvent("main", "1938475610293847561", subjects.KindCreated, ""))
	if err != nil || id != "1938475610293847561" {
		t.Errorf("threatOf(created) = %q, %v", id, err)
	}
	if _, err := threatOf(s.ThreatEvent("main", "1938475610293847561", subjects.KindStatus, "resolved")); err == nil {
		t.Error("threatOf accepted a status event")
	}
}

func TestPadData(t *testing.T) {
	for _, n := range []int{0, 5, 21, 22, 4142} {
		b := padData(n)
		if len(b) != n {
			t.Errorf("padData(%d) has %d bytes", n, len(b))
		}
		if n >= 21 && !json.Valid(b) {
			t.Errorf("padData(%d) = %q is not JSON", n, b)
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
	data := padData(100)
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
