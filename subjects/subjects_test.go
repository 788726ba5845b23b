package subjects

import "testing"

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
