package subjects

import (
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/sentinelone"
)

func TestGrammar(t *testing.T) {
	s, err := New("s1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{s.Action("main", "agents.list"), "s1.main.action.agents.list"},
		{s.ThreatEvent("main", "1234567890123456789", KindCreated, ""), "s1.main.event.threat.1234567890123456789.created"},
		{s.ThreatEvent("main", "1", KindStatus, "in_progress"), "s1.main.event.threat.1.status.in_progress"},
		{s.ThreatEvent("main", "1", KindVerdict, "n/a"), "s1.main.event.threat.1.verdict.n_a"},
		{s.MonitorEvent("eu", "m1", OutcomeTimedOut), "s1.eu.event.monitor.m1.timed_out"},
		{s.MonitorWildcard("eu", "m1"), "s1.eu.event.monitor.m1.*"},
		{s.EventsWildcard(), "s1.*.event.>"},
		{EndpointName("main", "agents.list"), "main_agents_list"},
		{RequestType("threats.update"), "s1bridge.threats.update.request"},
		{ResponseType("threats.update"), "s1bridge.threats.update.response"},
		{MonitorType(OutcomeCancelled), "s1bridge.monitor.cancelled"},
		{Source("main"), "/s1bridge/main"},
		{SafeToken(""), "none"},
		{SafeToken("a.b c*>"), "a_b_c__"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	s, _ := New("s1")
	for _, tc := range []struct {
		subject, console, action string
		ok                       bool
	}{
		{"s1.main.action.agents.list", "main", "agents.list", true},
		{"s1.main.action.", "", "", false},
		{"s2.main.action.agents.list", "", "", false},
		{"s1.main.event.threat.1.created", "", "", false},
		{"s1..action.x", "", "", false},
	} {
		c, a, ok := s.ParseAction(tc.subject)
		if c != tc.console || a != tc.action || ok != tc.ok {
			t.Errorf("%s: got %q %q %v", tc.subject, c, a, ok)
		}
	}
	for typ, want := range map[string]string{
		"s1bridge.agents.list.request":  "agents.list",
		"s1bridge.agents.list.response": "",
		"com.example.request":           "",
		"s1bridge..request":             "",
	} {
		got, ok := ActionFromType(typ)
		if got != want || ok != (want != "") {
			t.Errorf("%s: got %q %v", typ, got, ok)
		}
	}
}

func TestPrefixMustBeToken(t *testing.T) {
	for _, p := range []string{"", "a.b", "a b", "a*", "a>"} {
		if _, err := New(p); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

// TestNames pins every name a deployment owns in NATS, and that the threat
// keys and event ids are the ones release 1 wrote (a rolling upgrade finds
// its state, and the stream drops what it already has).
func TestNames(t *testing.T) {
	s1, _ := New("s1")
	nc, _ := New("nc-2")
	at := time.Date(2024, 5, 1, 8, 12, 10, 2311000, time.FixedZone("", 3600))
	for _, tc := range []struct{ got, want string }{
		{s1.EventsStream(), "S1_EVENTS"},
		{nc.EventsStream(), "NC-2_EVENTS"},
		{s1.BucketName(BucketState), "S1_STATE"},
		{s1.BucketName(BucketLeases), "S1_LEASES"},
		{nc.BucketName(BucketMonitors), "NC-2_MONITORS"},
		{KVSubject(s1.BucketName(BucketState), "main.cursor"), "$KV.S1_STATE.main.cursor"},
		{StateKey("main", EntityThreat, "123"), "main.threat.123"},
		{StateKeys("main", EntityThreat), "main.threat.*"},
		{CursorKey("main", EntityThreat), "main.cursor"},
		{CursorKey("main", "alert"), "main.cursor.alert"},
		{IngestLeaseKey("main", EntityThreat), "main.ingest"},
		{IngestLeaseKey("main", "alert"), "main.ingest.alert"},
		{MonitorKey("main", "m1"), "main.m.m1"},
		{MonitorKeys("main"), "main.m.*"},
		{MonitorPollKey("main"), "main.poll"},
		{MonitorsLeaseKey("main"), "main.monitors"},
		{CreatedEventID("main", EntityThreat, "123"), "main/123/created"},
		{CreatedEventID("main", "alert", "a-1"), "main/alert/a-1/created"},
		{ChangeEventID("main", EntityThreat, "123", "incidentStatus", "resolved", at), "main/123/incidentStatus/resolved/2024-05-01T07:12:10.002311Z"},
		{ChangeEventID("main", "alert", "a-1", "status", "resolved", at), "main/alert/a-1/status/resolved/2024-05-01T07:12:10.002311Z"},
		{MonitorEventID("main", "m1", OutcomeCancelled), "main/monitor/m1/cancelled"},
		{CreatedType(EntityThreat), TypeThreatCreated},
		{ChangedType(EntityThreat, KindStatus), TypeThreatStatusChanged},
		{ChangedType(EntityThreat, KindVerdict), TypeThreatVerdictChanged},
		{ChangedType(EntityThreat, KindMitigation), TypeThreatMitigationChanged},
		{ResolvedType(EntityThreat), TypeThreatResolved},
		{ResolvedType("alert"), "s1bridge.alert.resolved"},
		{s1.EntityEvents("main", EntityThreat, "123"), "s1.main.event.threat.123.>"},
		{s1.EntityEvent("main", "alert", "a-1", KindStatus, "in_progress"), "s1.main.event.alert.a-1.status.in_progress"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if EventIDTimeLayout != sentinelone.TimeFormat {
		t.Errorf("event ids write updatedAt as %q, SentinelOne as %q", EventIDTimeLayout, sentinelone.TimeFormat)
	}
	for subject, want := range map[string]string{"s1.*.event.>": "s1", "nc-2.*.event.>": "nc-2", "s1.main.event.>": "", "a.b.*.event.>": "", "foo.>": ""} {
		if got, ok := PrefixOfEvents(subject); got != want || ok != (want != "") {
			t.Errorf("PrefixOfEvents(%q) = %q %t, want %q", subject, got, ok, want)
		}
	}
}

func TestEventGrammar(t *testing.T) {
	s, _ := New("s1")
	at := time.Date(2024, 5, 1, 8, 0, 0, 123456000, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct{ got, want string }{
		{s.AlertEvent("main", "a1", KindCreated, ""), "s1.main.event.alert.a1.created"},
		{s.AlertEvent("main", "a1", KindStatus, "in_progress"), "s1.main.event.alert.a1.status.in_progress"},
		{s.AlertEvent("main", "a1", KindVerdict, "a.b"), "s1.main.event.alert.a1.verdict.a_b"},
		{s.ActionOutcomeEvent("main", "t1", OutcomeCompleted), "s1.main.event.action.t1.completed"},
		{s.ActionOutcomeWildcard("main", "t1"), "s1.main.event.action.t1.*"},
		{s.TokenExpiringEvent("eu"), "s1.eu.event.console.token_expiring"},
		{s.Audit("main", "agents.connect", PhaseRequested), "s1.main.audit.agents.connect.requested"},
		{s.AuditWildcard(), "s1.*.audit.>"},
		{s.EventsStream(), "S1_EVENTS"},
		{s.AuditStream(), "S1_AUDIT"},
		{ActionOutcomeType(OutcomeTimedOut), TypeActionTimedOut},
		{ActionOutcomeType(OutcomeFailed), TypeActionFailed},
		{AuditType(PhaseRefused), TypeAuditRefused},
		{CreatedEventID("main", EntityThreat, "1"), "main/1/created"},
		{ChangeEventID("main", EntityThreat, "1", "incidentStatus", "resolved", at), "main/1/incidentStatus/resolved/2024-05-01T06:00:00.123456Z"},
		{MonitorEventID("main", "m1", OutcomeCancelled), "main/monitor/m1/cancelled"},
		{CreatedEventID("main", EntityAlert, "a1"), "main/alert/a1/created"},
		{ChangeEventID("main", EntityAlert, "a1", "status", "resolved", at), "main/alert/a1/status/resolved/2024-05-01T06:00:00.123456Z"},
		{ActionOutcomeID("main", "t1", OutcomeFailed), "main/action/t1/failed"},
		{AuditID("main", "k", PhaseCompleted), "main/audit/k/completed"},
		{TokenExpiringID("main", at, at), "main/token/2024-05-01T06:00:00Z/2024-05-01"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestTemplate checks that a Template pattern, with its placeholders
// replaced by values, is the subject the builder makes of those values, and
// that a real builder still makes placeholders safe.
func TestTemplate(t *testing.T) {
	s, _ := New("s1")
	tpl := Template()
	fill := strings.NewReplacer(ParamPrefix, "s1", ParamConsole, "main", "{id}", "42", "{to}", "in_progress", "{outcome}", OutcomeTimedOut, "{action}", "agents.connect")
	for _, tc := range []struct{ pattern, real string }{
		{tpl.Action(ParamConsole, "agents.list"), s.Action("main", "agents.list")},
		{tpl.ThreatEvent(ParamConsole, "{id}", KindStatus, "{to}"), s.ThreatEvent("main", "42", KindStatus, "in_progress")},
		{tpl.ThreatEvent(ParamConsole, "{id}", KindCreated, ""), s.ThreatEvent("main", "42", KindCreated, "")},
		{tpl.MonitorEvent(ParamConsole, "{id}", "{outcome}"), s.MonitorEvent("main", "42", OutcomeTimedOut)},
		{tpl.AlertEvent(ParamConsole, "{id}", KindStatus, "{to}"), s.AlertEvent("main", "42", KindStatus, "in_progress")},
		{tpl.ActionOutcomeEvent(ParamConsole, "{id}", "{outcome}"), s.ActionOutcomeEvent("main", "42", OutcomeTimedOut)},
		{tpl.TokenExpiringEvent(ParamConsole), s.TokenExpiringEvent("main")},
		{tpl.Audit(ParamConsole, "{action}", PhaseRequested), s.Audit("main", "agents.connect", PhaseRequested)},
	} {
		if got := fill.Replace(tc.pattern); got != tc.real {
			t.Errorf("pattern %q filled is %q, want %q", tc.pattern, got, tc.real)
		}
	}
	if got := s.ThreatEvent("main", "1", KindStatus, "{to}"); got != "s1.main.event.threat.1.status._to_" {
		t.Errorf("a real builder kept a placeholder-like value: %q", got)
	}
}

func TestRequestNames(t *testing.T) {
	s, _ := New("acme")
	h := RequestHash("main", "/soar/playbook-7", "req-1")
	if len(h) != 24 || !ValidToken(h) || strings.ToLower(h) != h {
		t.Errorf("RequestHash %q: want 24 lower-case token characters", h)
	}
	for _, other := range []string{
		RequestHash("eu", "/soar/playbook-7", "req-1"),
		RequestHash("main", "/soar/playbook-8", "req-1"),
		RequestHash("main", "/soar/playbook-7", "req-2"),
		RequestHash("main", "/soar/playbook-7\x00req-1", ""), // the separator keeps fields apart
	} {
		if other == h {
			t.Errorf("two keys share the hash %s", h)
		}
	}
	if RequestHash("main", "/soar/playbook-7", "req-1") != h {
		t.Error("RequestHash is not deterministic")
	}
	for _, tc := range []struct{ got, want string }{
		{s.BucketName(BucketRequests), "ACME_REQUESTS"},
		{RequestKey("main", h), "main.req." + h},
		{AuditKey(h, 1), h},
		{AuditKey(h, 0), h},
		{AuditKey(h, 3), h + "-3"},
		{AuditID("main", AuditKey(h, 2), PhaseRequested), "main/audit/" + h + "-2/requested"},
		{s.Audit("main", "agents.disconnect", PhaseRefused), "acme.main.audit.agents.disconnect.refused"},
		{s.AuditStream(), "ACME_AUDIT"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestPrefixOfAudit(t *testing.T) {
	s, _ := New("acme")
	if p, ok := PrefixOfAudit(s.AuditWildcard()); !ok || p != "acme" {
		t.Errorf("PrefixOfAudit(%q) = %q, %v", s.AuditWildcard(), p, ok)
	}
	for _, bad := range []string{s.EventsWildcard(), "a.b.*.audit.>", "*.audit.>", ".*.audit.>"} {
		if p, ok := PrefixOfAudit(bad); ok {
			t.Errorf("PrefixOfAudit(%q) = %q, want not an audit wildcard", bad, p)
		}
	}
}
