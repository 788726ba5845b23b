package events_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/subjects"
)

var placeholderRE = regexp.MustCompile(`\{[A-Za-z]+\}`)

func TestCatalogShape(t *testing.T) {
	names, types := map[string]bool{}, map[string]bool{}
	for _, k := range events.All() {
		if names[k.Name] {
			t.Errorf("kind %s listed twice", k.Name)
		}
		names[k.Name] = true
		for _, typ := range k.Types {
			if types[typ] {
				t.Errorf("%s: type %s belongs to two kinds", k.Name, typ)
			}
			types[typ] = true
			if !strings.HasPrefix(typ, subjects.TypePrefix) {
				t.Errorf("%s: type %s is outside the s1bridge. namespace", k.Name, typ)
			}
			if got, ok := events.ByType(typ); !ok || got.Name != k.Name {
				t.Errorf("ByType(%s) = %s, %t", typ, got.Name, ok)
			}
		}
		if len(k.Types) == 0 || k.Description == "" || k.SubjectAttr == "" || k.Time == "" || k.Data == nil {
			t.Errorf("%s: incomplete entry %+v", k.Name, k)
		}
		infix := ".event."
		if k.Stream == events.StreamAudit {
			infix = ".audit."
		}
		if !strings.HasPrefix(k.Subject, subjects.ParamPrefix+"."+subjects.ParamConsole+infix) {
			t.Errorf("%s: subject %s is not in the %s stream's subjects", k.Name, k.Subject, k.Stream)
		}
		// The placeholders of the subject are {prefix}, {console} and the
		// kind's Params, in order.
		want := []string{subjects.ParamPrefix, subjects.ParamConsole}
		for _, p := range k.Params {
			want = append(want, subjects.Param(p.Name))
			if p.Description == "" {
				t.Errorf("%s: parameter %s has no description", k.Name, p.Name)
			}
		}
		if got := placeholderRE.FindAllString(k.Subject, -1); !slices.Equal(got, want) {
			t.Errorf("%s: subject %s has placeholders %v, Params say %v", k.Name, k.Subject, got, want)
		}
		if !strings.HasPrefix(k.ID, subjects.ParamConsole+"/") {
			t.Errorf("%s: id pattern %s does not start with the console", k.Name, k.ID)
		}
		if strings.Contains(k.ID, "2001") {
			t.Errorf("%s: id pattern %s kept a sample time", k.Name, k.ID)
		}
	}
	if _, ok := events.ByType("s1bridge.threat.unknown"); ok {
		t.Error("ByType found an unknown type")
	}
	if got := events.Types(); !slices.IsSorted(got) || len(got) != len(types) {
		t.Errorf("Types() = %v", got)
	}
}

// patternRE turns a subject pattern into a regular expression: {action}
// spans dotted tokens, every other placeholder is one token.
func patternRE(pattern string) *regexp.Regexp {
	q := regexp.QuoteMeta(pattern)
	q = strings.ReplaceAll(q, regexp.QuoteMeta("{action}"), `[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*`)
	q = regexp.MustCompile(`\\\{[A-Za-z]+\\\}`).ReplaceAllString(q, `[A-Za-z0-9_-]+`)
	return regexp.MustCompile("^" + q + "$")
}

// TestRouting builds real events' subjects and types with package subjects,
// as the runtime does, and checks that each subject matches exactly one
// kind's pattern and that its type is one of that kind's.
func TestRouting(t *testing.T) {
	s, err := subjects.New("s1")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ subject, typ, id string }{
		{s.ThreatEvent("main", "1900000000000000001", subjects.KindCreated, ""), subjects.TypeThreatCreated, subjects.CreatedEventID("main", subjects.EntityThreat, "1900000000000000001")},
		{s.ThreatEvent("main", "19", subjects.KindStatus, "resolved"), subjects.TypeThreatResolved, subjects.ChangeEventID("main", subjects.EntityThreat, "19", events.FieldIncidentStatus, "resolved", at)},
		{s.ThreatEvent("main", "19", subjects.KindStatus, "in_progress"), subjects.TypeThreatStatusChanged, ""},
		{s.ThreatEvent("main", "19", subjects.KindVerdict, "true_positive"), subjects.TypeThreatVerdictChanged, ""},
		{s.ThreatEvent("main", "19", subjects.KindMitigation, "mitigated"), subjects.TypeThreatMitigationChanged, ""},
		{s.MonitorEvent("eu", "m1", subjects.OutcomeResolved), subjects.MonitorType(subjects.OutcomeResolved), subjects.MonitorEventID("eu", "m1", subjects.OutcomeResolved)},
		{s.MonitorEvent("eu", "m1", subjects.OutcomeTimedOut), subjects.MonitorType(subjects.OutcomeTimedOut), ""},
		{s.MonitorEvent("eu", "m1", subjects.OutcomeCancelled), subjects.MonitorType(subjects.OutcomeCancelled), ""},
		{s.AlertEvent("main", "a-1", subjects.KindCreated, ""), subjects.TypeAlertCreated, subjects.CreatedEventID("main", subjects.EntityAlert, "a-1")},
		{s.AlertEvent("main", "a-1", subjects.KindStatus, "resolved"), subjects.TypeAlertResolved, subjects.ChangeEventID("main", subjects.EntityAlert, "a-1", events.FieldStatus, "resolved", at)},
		{s.AlertEvent("main", "a-1", subjects.KindVerdict, "false_positive"), subjects.TypeAlertVerdictChanged, ""},
		{s.ActionOutcomeEvent("main", "t1", subjects.OutcomeCompleted), subjects.TypeActionCompleted, subjects.ActionOutcomeID("main", "t1", subjects.OutcomeCompleted)},
		{s.ActionOutcomeEvent("main", "t1", subjects.OutcomeFailed), subjects.TypeActionFailed, ""},
		{s.ActionOutcomeEvent("main", "t1", subjects.OutcomeTimedOut), subjects.TypeActionTimedOut, ""},
		{s.Audit("main", "agents.disconnect", subjects.PhaseRequested), subjects.TypeAuditRequested, subjects.AuditID("main", "k1", subjects.PhaseRequested)},
		{s.Audit("main", "threats.fetch_file", subjects.PhaseCompleted), subjects.TypeAuditCompleted, ""},
		{s.Audit("main", "blocklist.add", subjects.PhaseRefused), subjects.TypeAuditRefused, ""},
		{s.TokenExpiringEvent("main"), subjects.TypeTokenExpiring, subjects.TokenExpiringID("main", at, at)},
	} {
		var found []events.Kind
		for _, k := range events.All() {
			if patternRE(k.Subject).MatchString(tc.subject) {
				found = append(found, k)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s matches %d kinds", tc.subject, len(found))
			continue
		}
		k := found[0]
		if !slices.Contains(k.Types, tc.typ) {
			t.Errorf("%s: type %s is not among %s's %v", tc.subject, tc.typ, k.Name, k.Types)
		}
		if tc.id != "" && !idMatches(k.ID, tc.id) {
			t.Errorf("%s: id %s does not fit the pattern %s", k.Name, tc.id, k.ID)
		}
	}
}

// idMatches compares an id with a pattern segment by segment ('/'), a
// placeholder standing for any non-empty segment.
func idMatches(pattern, id string) bool {
	p, v := strings.Split(pattern, "/"), strings.Split(id, "/")
	if len(p) != len(v) {
		return false
	}
	for i := range p {
		if v[i] == "" || !placeholderRE.MatchString(p[i]) && p[i] != v[i] {
			return false
		}
	}
	return true
}

// TestDataKeys holds each data type to the keys DESIGN.md lists: every key
// is present even when its value is empty or null.
func TestDataKeys(t *testing.T) {
	for _, tc := range []struct {
		data any
		keys string
	}{
		{events.ThreatCreated{}, "threat"},
		{events.ThreatChanged{}, "threat change"},
		{events.Change{}, "field from to"},
		{events.MonitorOutcome{}, "monitorId threatId threat startedAt endedAt"},
		{events.AlertCreated{}, "alert"},
		{events.AlertChanged{}, "alert change"},
		{events.ActionOutcome{}, "trackingId action console targets requestedAt endedAt"},
		{events.ActionTarget{}, "id state at activityId message"},
		{events.AuditRecord{}, "action console request targets dryRun outcome upstream replica at"},
		{events.AuditRequest{}, "id source type time traceparent data"},
		{events.AuditOutcome{}, "code message affected trackingId"},
		{events.UpstreamCall{}, "method path status requestId"},
		{events.TokenExpiring{}, "console expiresAt daysLeft"},
	} {
		b, err := json.Marshal(tc.data)
		if err != nil {
			t.Errorf("%T: %v", tc.data, err)
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(maps.Keys(m))
		want := strings.Fields(tc.keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%T has keys %v, DESIGN.md says %v", tc.data, got, want)
		}
	}
}

// Every data type of the catalog decodes a sample and encodes it back.
func TestDataRoundTrip(t *testing.T) {
	samples := map[string]string{
		"threat.created":         `{"threat":{"id":"1","threatInfo":{"incidentStatus":"unresolved"}}}`,
		"threat.status":          `{"threat":{"id":"1"},"change":{"field":"incidentStatus","from":"unresolved","to":"resolved"}}`,
		"monitor.cancelled":      `{"monitorId":"m1","threatId":"1","threat":null,"startedAt":"2024-05-01T08:00:00Z","endedAt":"2024-05-01T09:00:00Z"}`,
		"action.failed":          `{"trackingId":"t1","action":"agents.disconnect","console":"main","targets":[{"id":"1","state":"failed","at":"2024-05-01T08:00:00Z","activityId":"9","message":"agent refused"},{"id":"2","state":"pending","at":null,"activityId":null,"message":""}],"requestedAt":"2024-05-01T07:59:00Z","endedAt":"2024-05-01T08:00:00Z"}`,
		"audit.requested":        `{"action":"threats.fetch_file","console":"main","request":{"id":"r1","source":"/soar","type":"s1bridge.threats.fetch_file.request","time":null,"traceparent":"","data":{"threatIds":["1"],"password":"[REDACTED]"}},"targets":{"field":"threatIds","ids":["1"]},"dryRun":false,"outcome":null,"upstream":[],"replica":"r-1","at":"2024-05-01T08:00:00Z"}`,
		"console.token_expiring": `{"console":"main","expiresAt":"2024-05-10T00:00:00Z","daysLeft":8}`,
	}
	for _, k := range events.All() {
		in, ok := samples[k.Name]
		if !ok {
			continue
		}
		v := newOf(k.Data)
		if err := json.Unmarshal([]byte(in), v); err != nil {
			t.Errorf("%s: %v", k.Name, err)
			continue
		}
		out, _ := json.Marshal(v)
		if !jsonEqual(t, in, string(out)) {
			t.Errorf("%s: round trip\n in %s\nout %s", k.Name, in, out)
		}
		delete(samples, k.Name)
	}
	if len(samples) > 0 {
		t.Errorf("samples of unknown kinds: %v", slices.Collect(maps.Keys(samples)))
	}
}

// newOf returns a pointer to a new zero value of v's type.
func newOf(v any) any { return reflect.New(reflect.TypeOf(v)).Interface() }

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
