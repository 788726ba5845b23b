package handlers

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// These tests run the handlers against the SentinelOne emulator over real
// loopback HTTP and check both what a caller sees and the calls the
// emulator recorded. The httptest consoles of the other tests pin exact
// wire shapes and failure bodies; these check that the handlers work with
// an independent implementation of the console.

// emuServer starts a seeded emulator that accepts testToken, served on
// loopback until the test ends, and returns it with its URL.
func emuServer(t testing.TB, opts ...emulator.Option) (*emulator.Emulator, string) {
	t.Helper()
	e, err := emulator.New(append([]emulator.Option{emulator.WithToken(testToken), emulator.WithSeed(7)}, opts...)...)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	srv, err := e.Start("")
	if err != nil {
		t.Fatalf("emulator Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return e, srv.URL()
}

// emu is emuServer with an Env whose client talks to it.
func emu(t *testing.T, opts ...emulator.Option) (*emulator.Emulator, *Env) {
	t.Helper()
	e, u := emuServer(t, opts...)
	return e, envFor(t, u)
}

// emuCalls returns the recorded calls as "METHOD /path" (API prefix cut),
// in order.
func emuCalls(e *emulator.Emulator) []string {
	var out []string
	for _, r := range e.Requests() {
		out = append(out, r.Method+" "+strings.TrimPrefix(r.Path, apiPrefix))
	}
	return out
}

func TestEmulatorLists(t *testing.T) {
	e, env := emu(t)
	ids := e.IDs()
	cases := []struct {
		action, data string
		want         int
	}{
		{ActionThreatsList, `{"limit":1000,"all":true}`, len(ids.Threats)},
		{ActionAgentsList, `{"limit":1000,"all":true}`, len(ids.Agents)},
		{ActionGroupsList, `{"limit":1000,"all":true}`, len(ids.Groups)},
		{ActionSitesList, `{"limit":1000,"all":true}`, len(ids.Sites)},
		{ActionAlertsList, `{"limit":1000,"all":true}`, len(ids.Alerts)},
		{ActionActivitiesList, `{"limit":1000,"all":true}`, -1},
		// Without a scope the blocklist is read in every scope the token
		// sees: the seeded entries live in the tenant, a site, an account
		// and a group.
		{ActionBlocklistList, `{"limit":1000,"all":true}`, len(ids.Restrictions)},
	}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			var got listResult
			mustRun(t, env, tc.action, tc.data, &got)
			if len(got.Items) == 0 || got.TotalItems != len(got.Items) || got.NextCursor != nil || got.Truncated {
				t.Errorf("%d items, totalItems %d, next %v, truncated %t", len(got.Items), got.TotalItems, got.NextCursor, got.Truncated)
			}
			if tc.want >= 0 && len(got.Items) != tc.want {
				t.Errorf("%d items, want the %d seeded", len(got.Items), tc.want)
			}
			if tc.action == ActionSitesList && !strings.Contains(string(got.AllSites), "Licenses") {
				t.Errorf("allSites %s", got.AllSites)
			}
		})
	}
}

// TestEmulatorWalk follows the emulator's cursors under a small reply
// bound: every reply fits, and together they hold every threat once, in
// order.
func TestEmulatorWalk(t *testing.T) {
	e, env := emu(t)
	want := e.IDs().Threats
	env.MaxReplyBytes = 64 << 10
	var seen []string
	cursor, replies, truncated := "", 0, 0
	for replies < 1000 {
		b, err := run(t, env, ActionThreatsList, `{"limit":40,"all":true,"sortBy":"id","sortOrder":"asc","cursor":"`+cursor+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		replies++
		if len(b) > env.MaxReplyBytes {
			t.Fatalf("reply of %d bytes over %d", len(b), env.MaxReplyBytes)
		}
		var got listResult
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, got.ids(t)...)
		if got.Truncated {
			truncated++
		}
		if got.NextCursor == nil {
			break
		}
		cursor = *got.NextCursor
	}
	if !slices.Equal(seen, want) {
		t.Errorf("walked %d threats, want the %d seeded in id order", len(seen), len(want))
	}
	if truncated == 0 || replies < 2 {
		t.Errorf("%d replies, %d truncated: the bound never applied", replies, truncated)
	}
}

func TestEmulatorHashReputation(t *testing.T) {
	e, env := emu(t)
	const unknownRank = "0123456789abcdef0123456789abcdef01234567"
	if err := e.SetHash(unknownRank, emulator.HashInfo{Verdict: emulator.VerdictUnknown, NoVerdict: true, Rank: "3"}); err != nil {
		t.Fatal(err)
	}
	for hash, want := range map[string]string{
		emulator.HashMalicious:  `{"hash":"` + emulator.HashMalicious + `","verdict":"malicious","rank":null}`,
		emulator.HashClean:      `{"hash":"` + emulator.HashClean + `","verdict":"non-malicious","rank":null}`,
		emulator.HashLegacyOnly: `{"hash":"` + emulator.HashLegacyOnly + `","verdict":"malicious","rank":9}`,
		unknownRank:             `{"hash":"` + unknownRank + `","verdict":"non-malicious","rank":3}`,
	} {
		if b := mustRun(t, env, ActionHashReputation, `{"hash":"`+strings.ToUpper(hash)+`"}`, nil); string(b) != want {
			t.Errorf("reply %s\nwant  %s", b, want)
		}
	}
	e2, env2 := emu(t, emulator.WithoutVerdictEndpoint())
	b := mustRun(t, env2, ActionHashReputation, `{"hash":"`+emulator.HashClean+`"}`, nil)
	if string(b) != `{"hash":"`+emulator.HashClean+`","verdict":"non-malicious","rank":2}` {
		t.Errorf("legacy console: %s", b)
	}
	if calls := emuCalls(e2); !slices.Equal(calls, []string{"GET /hashes/" + emulator.HashClean + "/verdict", "GET /hashes/" + emulator.HashClean + "/reputation"}) {
		t.Errorf("calls %v", calls)
	}
}

// TestEmulatorBlocklist adds a hash, adds it again (every OS already
// present), finds it, deletes it by hash, and deletes it again (nothing).
func TestEmulatorBlocklist(t *testing.T) {
	e, env := emu(t)
	const hash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	var add BlocklistAddReply
	mustRun(t, env, ActionBlocklistAdd, `{"hash":"`+strings.ToUpper(hash)+`","description":"s1bridge test"}`, &add)
	if len(add.Items) != 3 || len(add.AlreadyPresent) != 0 {
		t.Fatalf("first add: %d items, alreadyPresent %v", len(add.Items), add.AlreadyPresent)
	}
	mustRun(t, env, ActionBlocklistAdd, `{"hash":"`+hash+`"}`, &add)
	if len(add.Items) != 0 || !slices.Equal(add.AlreadyPresent, []string{"windows", "macos", "linux"}) {
		t.Fatalf("second add: %d items, alreadyPresent %v", len(add.Items), add.AlreadyPresent)
	}
	var list listResult
	mustRun(t, env, ActionBlocklistList, `{"hash":"`+hash+`"}`, &list)
	if list.TotalItems != 3 || len(list.Items) != 3 {
		t.Fatalf("list: %d items of %d", len(list.Items), list.TotalItems)
	}
	var del BlocklistDeleteReply
	mustRun(t, env, ActionBlocklistDelete, `{"hash":"`+hash+`"}`, &del)
	if del.Affected != 3 || !slices.Equal(del.IDs, list.ids(t)) {
		t.Errorf("delete: %+v, want the listed ids %v", del, list.ids(t))
	}
	mustRun(t, env, ActionBlocklistList, `{"hash":"`+hash+`"}`, &list)
	if list.TotalItems != 0 {
		t.Errorf("%d entries left", list.TotalItems)
	}
	e.ResetRequests()
	if b := mustRun(t, env, ActionBlocklistDelete, `{"hash":"`+hash+`"}`, nil); string(b) != `{"affected":0,"ids":[]}` {
		t.Errorf("second delete: %s", b)
	}
	if calls := emuCalls(e); !slices.Equal(calls, []string{"GET /restrictions"}) {
		t.Errorf("second delete calls %v, want the lookup only", calls)
	}
	// The seeded malicious hash is blocked tenant-wide on three OS types.
	mustRun(t, env, ActionBlocklistList, `{"hash":"`+emulator.HashMalicious+`","scope":{"tenant":true}}`, &list)
	if list.TotalItems != 3 {
		t.Errorf("tenant entries of the seeded hash: %d", list.TotalItems)
	}
}

func TestEmulatorThreatsUpdate(t *testing.T) {
	e, env := emu(t)
	ids := e.IDs().Threats[:3]
	e.ResetRequests()
	var got ThreatsUpdateReply
	mustRun(t, env, ActionThreatsUpdate, `{"threatIds":["`+strings.Join(ids, `","`)+`"],"incidentStatus":"resolved","analystVerdict":"true_positive"}`, &got)
	if got.Affected == 0 || !strings.Contains(string(got.Details), ids[0]) {
		t.Errorf("reply %+v %s", got, got.Details)
	}
	for _, id := range ids {
		if s, _ := e.Threat(id); s.IncidentStatus != "resolved" || s.AnalystVerdict != "true_positive" {
			t.Errorf("threat %s: %+v", id, s)
		}
	}
	if calls := emuCalls(e); !slices.Equal(calls, []string{"POST /threats/incident"}) {
		t.Errorf("calls %v", calls)
	}
	// The filters find them again.
	var list listResult
	mustRun(t, env, ActionThreatsList, `{"ids":["`+strings.Join(ids, `","`)+`"],"incidentStatuses":["resolved"],"analystVerdicts":["true_positive"]}`, &list)
	if list.TotalItems != 3 {
		t.Errorf("threats.list found %d of the updated threats", list.TotalItems)
	}
}

func TestEmulatorAlertsUpdate(t *testing.T) {
	e, env := emu(t)
	ids := e.IDs().Alerts[:2]
	e.ResetRequests()
	var got AlertsUpdateReply
	mustRun(t, env, ActionAlertsUpdate, `{"alertIds":["`+strings.Join(ids, `","`)+`"],"analystVerdict":"false_positive","incidentStatus":"in_progress"}`, &got)
	if got.Affected != max(got.VerdictAffected, got.StatusAffected) || got.Affected == 0 {
		t.Errorf("reply %+v", got)
	}
	if calls := emuCalls(e); !slices.Equal(calls, []string{"POST /cloud-detection/alerts/analyst-verdict", "POST /cloud-detection/alerts/incident"}) {
		t.Errorf("calls %v", calls)
	}
	// alerts.list maps the lower_snake filters to what the endpoint takes.
	var list listResult
	mustRun(t, env, ActionAlertsList, `{"ids":["`+strings.Join(ids, `","`)+`"],"incidentStatuses":["in_progress"],"analystVerdicts":["false_positive"]}`, &list)
	if list.TotalItems != 2 {
		t.Fatalf("alerts.list found %d of the updated alerts", list.TotalItems)
	}
	if !strings.Contains(string(list.Items[0]), `"In progress"`) {
		t.Errorf("item not passed through in display case: %.300s", list.Items[0])
	}
	q, _ := url.ParseQuery(e.Requests()[len(e.Requests())-1].RawQuery)
	if q.Get("incidentStatus") != "IN_PROGRESS" || q.Get("analystVerdict") != "FALSE_POSITIVE" {
		t.Errorf("alert filters sent as %s", q.Encode())
	}
}

func TestEmulatorAgentsConnect(t *testing.T) {
	e, env := emu(t)
	agent := e.IDs().Agents[0]
	var got AffectedReply
	mustRun(t, env, ActionAgentsDisconnect, `{"agentIds":["`+agent+`"]}`, &got)
	if s, _ := e.Agent(agent); got.Affected != 1 || s.NetworkStatus != "disconnected" {
		t.Errorf("disconnect: affected %d, agent %+v", got.Affected, s)
	}
	mustRun(t, env, ActionAgentsConnect, `{"agentIds":["`+agent+`"]}`, &got)
	if s, _ := e.Agent(agent); got.Affected != 1 || s.NetworkStatus != "connected" {
		t.Errorf("connect: affected %d, agent %+v", got.Affected, s)
	}
	var list listResult
	mustRun(t, env, ActionAgentsList, `{"ids":["`+agent+`"],"networkStatuses":["connected"],"isActive":true}`, &list)
	if list.TotalItems != 1 {
		t.Errorf("agents.list found %d", list.TotalItems)
	}
}

// TestEmulatorAgentsIP checks ip, for every address in the fleet, against
// an exact match computed from the whole fleet, and for addresses that only
// appear as substrings of others. The seeded IPv6 addresses are spelt with
// leading zeros.
func TestEmulatorAgentsIP(t *testing.T) {
	_, env := emu(t)
	var all listResult
	mustRun(t, env, ActionAgentsList, `{"limit":1000,"all":true}`, &all)
	var agents []sentinelone.Agent
	addrs := map[string]bool{}
	for _, raw := range all.Items {
		var a sentinelone.Agent
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
		addrs[a.ExternalIP] = true
		for _, ni := range a.NetworkInterfaces {
			for _, ip := range append(ni.Inet, ni.Inet6...) {
				addrs[ip] = true
			}
		}
	}
	delete(addrs, "")
	if len(addrs) < 2*len(agents) {
		t.Fatalf("only %d addresses in the fleet", len(addrs))
	}
	// Addresses held by no agent but contained in many (the seeded external
	// IPs run from 203.0.113.10 up): every substring hit must be dropped.
	addrs["203.0.113.1"], addrs["203.0.113.2"] = true, true
	for _, ip := range slices.Sorted(maps.Keys(addrs)) {
		var want []string
		for _, a := range agents {
			if a.HasIP(ip) {
				want = append(want, a.ID)
			}
		}
		var got listResult
		mustRun(t, env, ActionAgentsList, `{"ip":"`+ip+`","limit":5}`, &got)
		ids := got.ids(t)
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) || got.TotalItems != len(want) || got.NextCursor != nil {
			t.Errorf("ip %s: %v (total %d), want %v", ip, ids, got.TotalItems, want)
		}
	}
}

// TestEmulatorFaults checks the error mapping against the emulator's
// injected failures.
func TestEmulatorFaults(t *testing.T) {
	cases := []struct {
		name      string
		fault     emulator.Fault
		cfg       func(*sentinelone.Config)
		code      int
		retryable bool
		upstream  int
	}{
		{"429 html", emulator.Fault{Kind: emulator.FaultRateLimit, HTML: true}, func(c *sentinelone.Config) { c.RetryMax = 1 }, CodeRateLimited, true, 429},
		{"500", emulator.Fault{Kind: emulator.FaultServerError}, nil, CodeUpstream, true, 500},
		{"502 text", emulator.Fault{Kind: emulator.FaultServerError, Status: 502, HTML: true}, nil, CodeUpstream, true, 502},
		{"malformed", emulator.Fault{Kind: emulator.FaultMalformed}, nil, CodeUpstream, false, 0},
		{"truncated", emulator.Fault{Kind: emulator.FaultTruncated}, nil, CodeUpstream, true, 0},
		{"reset", emulator.Fault{Kind: emulator.FaultReset}, nil, CodeUpstream, true, 0},
		{"hang", emulator.Fault{Kind: emulator.FaultHang}, func(c *sentinelone.Config) { c.Timeout = 100 * time.Millisecond }, CodeUpstreamTimeout, true, 0},
	}
	e, srvURL := emuServer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.ClearFaults()
			if err := e.Inject(tc.fault); err != nil {
				t.Fatal(err)
			}
			var mods []func(*sentinelone.Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			_, err := run(t, envFor(t, srvURL, mods...), ActionGroupsList, `{}`)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Code != tc.code || err.Retryable != tc.retryable || err.UpstreamStatus != tc.upstream {
				t.Errorf("code %d retryable %t upstream %d, want %d %t %d: %v", err.Code, err.Retryable, err.UpstreamStatus, tc.code, tc.retryable, tc.upstream, err)
			}
		})
	}
	e.ClearFaults()
	// A token the console does not know.
	_, err := run(t, envFor(t, srvURL, func(c *sentinelone.Config) { c.Token = "not-" + testToken }), ActionGroupsList, `{}`)
	if err == nil || err.Code != CodeUpstream || err.UpstreamStatus != 401 || err.Retryable || strings.Contains(asJSON(err.Data()), testToken) {
		t.Errorf("wrong token: %+v", err)
	}
	if d, _ := err.Details.(*UpstreamDetails); d == nil || d.RequestID == "" {
		t.Errorf("details %+v: no X-RQID", err.Details)
	}
}
