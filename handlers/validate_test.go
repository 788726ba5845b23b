package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const (
	sha1Hex   = "3395856ce81f2b7382dee72602f798b642f14140"
	sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	md5Hex    = "d41d8cd98f00b204e9800998ecf8427e"
)

// idList returns n valid ids as a JSON array.
func idList(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = `"` + id(i) + `"`
	}
	return "[" + strings.Join(ids, ",") + "]"
}

// TestValidation sends invalid requests to every action through
// Action.Handle: each must be a 400 whose message starts with the field at
// fault, and none may reach SentinelOne.
func TestValidation(t *testing.T) {
	cases := []struct {
		action, data, field string
	}{
		// Shape: the strict decoder.
		{ActionHashReputation, `{"hash":"` + sha1Hex + `","bogus":1}`, "bogus: unknown field"},
		{ActionAgentsList, `{"limit":10,"Limit":5}`, "Limit: unknown field"},
		{ActionAgentsConnect, `{"agentids":["` + id(1) + `"]}`, "agentids: unknown field"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"Tenant":true}}`, "scope.Tenant: unknown field"},
		{ActionThreatsList, `[]`, "data: must be a JSON object"},
		{ActionThreatsList, `{"ids":["` + id(1) + `"]} {}`, "data: unexpected data"},
		{ActionThreatsList, `{"ids":`, "data: truncated JSON"},
		{ActionAgentsConnect, `{"agentIds":"` + id(1) + `"}`, "agentIds: must be an array"},
		{ActionAgentsList, `{"isActive":"true"}`, "isActive: must be a boolean"},
		{ActionThreatsList, `{"limit":"10"}`, "limit: must be an integer"},
		{ActionThreatsList, `{"limit":1.5}`, "limit: must be an integer"},
		{ActionActivitiesList, `{"activityTypes":["27"]}`, "activityTypes: must be an integer"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"tenant":"yes"}}`, "scope.tenant: must be a boolean"},
		// Paging.
		{ActionThreatsList, `{"limit":-1}`, "limit: must be between 1 and 1000"},
		{ActionGroupsList, `{"limit":0}`, "limit: must be between 1 and 1000"},
		{ActionSitesList, `{"limit":1001}`, "limit: must be between 1 and 1000"},
		{ActionAlertsList, `{"cursor":"abc\ndef"}`, "cursor: must not contain control characters"},
		{ActionAlertsList, `{"cursor":"` + strings.Repeat("c", maxCursorLen+1) + `"}`, "cursor: is 4097 bytes"},
		// Hashes.
		{ActionHashReputation, `{}`, "hash: must be a SHA1"},
		{ActionHashReputation, `{"hash":"` + sha256Hex + `"}`, "hash: only SHA1 (40 hexadecimal digits) is accepted, and this is a SHA256"},
		{ActionHashReputation, `{"hash":"` + md5Hex + `"}`, "hash: only SHA1 (40 hexadecimal digits) is accepted, and this is a MD5"},
		{ActionHashReputation, `{"hash":"` + strings.Repeat("g", 40) + `"}`, "hash: must be a SHA1"},
		{ActionHashReputation, `{"hash":"` + sha1Hex[:39] + `"}`, "hash: must be a SHA1"},
		{ActionBlocklistAdd, `{}`, "hash: must be a SHA1"},
		{ActionBlocklistAdd, `{"hash":"` + sha256Hex + `"}`, "hash: only SHA1"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","sha256":"` + sha1Hex + `"}`, "sha256: must be a SHA256"},
		{ActionBlocklistList, `{"hash":"` + md5Hex + `"}`, "hash: only SHA1"},
		{ActionBlocklistDelete, `{"hash":"xyz"}`, "hash: must be a SHA1"},
		// Enums.
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","osTypes":["windows","solaris"]}`, "osTypes[1]: \"solaris\" is not one of windows, macos, linux, windows_legacy"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","osTypes":["linux","linux"]}`, "osTypes[1]: \"linux\" is listed twice"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","osTypes":[]}`, "osTypes: must hold at least one OS type"},
		{ActionBlocklistList, `{"osTypes":["Windows"]}`, "osTypes[0]: \"Windows\" is not one of"},
		{ActionThreatsList, `{"incidentStatuses":["unresolved","IN_PROGRESS"]}`, "incidentStatuses[1]: \"IN_PROGRESS\" is not one of unresolved, in_progress, resolved"},
		{ActionThreatsList, `{"analystVerdicts":["benign"]}`, "analystVerdicts[0]:"},
		{ActionThreatsList, `{"sortBy":"name"}`, "sortBy: \"name\" is not one of"},
		{ActionThreatsList, `{"sortOrder":"up"}`, "sortOrder: \"up\" is not one of asc, desc"},
		{ActionThreatsUpdate, `{"threatIds":["` + id(1) + `"],"incidentStatus":"closed"}`, "incidentStatus: \"closed\" is not one of"},
		{ActionThreatsUpdate, `{"threatIds":["` + id(1) + `"],"analystVerdict":"TRUE_POSITIVE"}`, "analystVerdict: \"TRUE_POSITIVE\" is not one of"},
		{ActionThreatsUpdate, `{"threatIds":["` + id(1) + `"]}`, "incidentStatus: give incidentStatus, analystVerdict or both"},
		{ActionAlertsUpdate, `{"alertIds":["` + id(1) + `"]}`, "analystVerdict: give analystVerdict, incidentStatus or both"},
		{ActionAlertsUpdate, `{"alertIds":["` + id(1) + `"],"incidentStatus":"done"}`, "incidentStatus: \"done\" is not one of"},
		{ActionAlertsList, `{"severities":["High"]}`, "severities[0]: \"High\" is not one of low, medium, high, critical, info"},
		{ActionAlertsList, `{"analystVerdicts":[""]}`, "analystVerdicts[0]: must not be empty"},
		{ActionAgentsList, `{"networkStatuses":["online"]}`, "networkStatuses[0]:"},
		{ActionAgentsList, `{"osTypes":["android"]}`, "osTypes[0]:"},
		{ActionGroupsList, `{"type":"smart"}`, "type: \"smart\" is not one of static, dynamic, pinned"},
		{ActionSitesList, `{"state":"paused"}`, "state: \"paused\" is not one of active, expired, deleted"},
		{ActionActivitiesList, `{"sortOrder":"newest"}`, "sortOrder:"},
		{ActionActivitiesList, `{"activityTypes":[27,0]}`, "activityTypes[1]: 0 is not an activity type"},
		// Id lists.
		{ActionAgentsConnect, `{}`, "agentIds: is required"},
		{ActionAgentsDisconnect, `{"agentIds":[]}`, "agentIds: is required"},
		{ActionAgentsDisconnect, `{"agentIds":` + idList(5001) + `}`, "agentIds: holds 5001 ids; at most 5000"},
		{ActionAgentsConnect, `{"agentIds":["` + id(1) + `","` + id(2) + `","99999999999999999"]}`, "agentIds[2]: \"99999999999999999\" is below 100000000000000000"},
		{ActionAgentsConnect, `{"agentIds":["` + id(1) + `","12a"]}`, "agentIds[1]: \"12a\" is not a SentinelOne id"},
		{ActionAgentsConnect, `{"agentIds":["-1900000000000000000"]}`, "agentIds[0]: \"-1900000000000000000\" is not a SentinelOne id"},
		{ActionAgentsConnect, `{"agentIds":[""]}`, "agentIds[0]: \"\" is not a SentinelOne id"},
		{ActionAgentsConnect, `{"agentIds":["99999999999999999999"]}`, "agentIds[0]: \"99999999999999999999\" is too large"},
		{ActionThreatsUpdate, `{"incidentStatus":"resolved"}`, "threatIds: is required"},
		{ActionThreatsUpdate, `{"threatIds":["1"],"incidentStatus":"resolved"}`, "threatIds[0]: \"1\" is below"},
		{ActionAlertsUpdate, `{"alertIds":` + idList(5001) + `,"analystVerdict":"suspicious"}`, "alertIds: holds 5001 ids"},
		{ActionAlertsUpdate, `{"alertIds":["123"],"analystVerdict":"suspicious"}`, "alertIds[0]: \"123\" is below"},
		{ActionThreatsList, `{"ids":["` + id(1) + `","x"]}`, "ids[1]:"},
		{ActionThreatsList, `{"siteIds":` + idList(501) + `}`, "siteIds: holds 501 ids; at most 500"},
		{ActionThreatsList, `{"groupIds":["100"]}`, "groupIds[0]:"},
		{ActionThreatsList, `{"accountIds":["100"]}`, "accountIds[0]:"},
		{ActionAgentsList, `{"ids":["5"]}`, "ids[0]:"},
		{ActionAgentsList, `{"siteIds":["5"]}`, "siteIds[0]:"},
		{ActionAgentsList, `{"groupIds":["5"]}`, "groupIds[0]:"},
		{ActionGroupsList, `{"siteIds":["5"]}`, "siteIds[0]:"},
		{ActionSitesList, `{"siteIds":["5"]}`, "siteIds[0]:"},
		{ActionActivitiesList, `{"threatIds":["5"]}`, "threatIds[0]:"},
		{ActionActivitiesList, `{"agentIds":["5"]}`, "agentIds[0]:"},
		{ActionAlertsList, `{"ids":["5"]}`, "ids[0]:"},
		{ActionAlertsList, `{"siteIds":["5"]}`, "siteIds[0]:"},
		{ActionBlocklistDelete, `{}`, "ids: give the ids of the entries to delete, or the hash"},
		{ActionBlocklistDelete, `{"ids":[]}`, "ids: is required"},
		{ActionBlocklistDelete, `{"ids":["` + id(1) + `"],"hash":"` + sha1Hex + `"}`, "ids: give ids or hash, not both"},
		{ActionBlocklistDelete, `{"ids":["` + id(1) + `"],"scope":{"tenant":true}}`, "scope: only narrows a delete by hash"},
		{ActionBlocklistDelete, `{"ids":["7"]}`, "ids[0]:"},
		// Scopes.
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{}}`, `scope: must be {"tenant":true} or hold siteIds, accountIds or groupIds`},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"tenant":false}}`, "scope: must be"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"tenant":true,"siteIds":["` + id(1) + `"]}}`, "scope: is either tenant:true or one list"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"siteIds":["` + id(1) + `"],"groupIds":["` + id(2) + `"]}}`, "scope: takes one list"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"siteIds":[]}}`, "scope.siteIds: must hold at least one id"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"accountIds":["1"]}}`, "scope.accountIds[0]:"},
		{ActionBlocklistList, `{"scope":{"groupIds":` + idList(501) + `}}`, "scope.groupIds: holds 501 ids"},
		{ActionBlocklistDelete, `{"hash":"` + sha1Hex + `","scope":{"tenant":false}}`, "scope: must be"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"sites":["` + id(1) + `"]}}`, "scope.sites: unknown field"},
		// Times.
		{ActionThreatsList, `{"createdAfter":"yesterday"}`, "createdAfter: \"yesterday\" is not an RFC 3339 timestamp"},
		{ActionThreatsList, `{"createdBefore":"2024-05-01"}`, "createdBefore: \"2024-05-01\" is not an RFC 3339"},
		{ActionThreatsList, `{"updatedAfter":"2024-05-01 08:00:00"}`, "updatedAfter:"},
		{ActionThreatsList, `{"updatedBefore":"2024-05-01T08:00:00"}`, "updatedBefore:"},
		{ActionThreatsList, `{"createdAfter":"2024-05-02T00:00:00Z","createdBefore":"2024-05-01T00:00:00Z"}`, "createdBefore: must be later than createdAfter"},
		{ActionActivitiesList, `{"createdAfter":"2024-05-01T00:00:00Z","createdBefore":"2024-05-01T00:00:00Z"}`, "createdBefore: must be later than createdAfter"},
		{ActionAlertsList, `{"createdAfter":"1714550400"}`, "createdAfter:"},
		// Free text.
		{ActionThreatsList, `{"computerName":"FIN\u0000LT"}`, "computerName: must not contain control characters"},
		{ActionThreatsList, `{"computerName":"FIN,LT"}`, "computerName: must not contain a comma"},
		{ActionThreatsList, `{"classifications":["Malware",""]}`, "classifications[1]: must not be empty"},
		{ActionThreatsList, `{"query":"a\tb"}`, "query: must not contain control characters"},
		{ActionAgentsList, `{"computerName":"host\r\n"}`, "computerName: must not contain control characters"},
		{ActionAgentsList, `{"query":"\u001b[31m"}`, "query:"},
		{ActionGroupsList, `{"name":"a\nb"}`, "name:"},
		{ActionGroupsList, `{"query":"a\nb"}`, "query:"},
		{ActionSitesList, `{"name":"a\nb"}`, "name:"},
		{ActionSitesList, `{"query":"a\u007fb"}`, "query:"},
		{ActionAlertsList, `{"ruleName":"Encoded, PowerShell"}`, "ruleName: must not contain a comma"},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","description":"line1\nline2"}`, "description: must not contain control characters"},
		// IP.
		{ActionAgentsList, `{"ip":"10.0.0.256"}`, "ip: \"10.0.0.256\" is not an IPv4 or IPv6 address"},
		{ActionAgentsList, `{"ip":"10.0.0.0/24"}`, "ip:"},
		{ActionAgentsList, `{"ip":"host.example.com"}`, "ip:"},
		{ActionAgentsList, `{"ip":"10.0.0.1","cursor":"abc"}`, "cursor: is not taken with ip"},
	}
	c := newConsole(t)
	env := c.env()
	for _, tc := range cases {
		t.Run(tc.action+" "+tc.field, func(t *testing.T) {
			_, err := run(t, env, tc.action, tc.data)
			if err == nil {
				t.Fatalf("%s %s: accepted, want a 400 about %q", tc.action, tc.data, tc.field)
			}
			if err.Code != CodeInvalid || err.Retryable {
				t.Errorf("code %d retryable %t, want 400 not retryable (%v)", err.Code, err.Retryable, err)
			}
			if !strings.HasPrefix(err.Message, tc.field) {
				t.Errorf("message %q, want it to start with %q", err.Message, tc.field)
			}
		})
	}
	if calls := c.Calls(); len(calls) != 0 {
		t.Errorf("invalid requests reached SentinelOne: %+v", calls)
	}
}

// TestValidRequests accepts the edge of each rule: the requests must pass
// validation (and reach the console).
func TestValidRequests(t *testing.T) {
	cases := []struct{ action, data string }{
		{ActionHashReputation, `{"hash":"` + strings.ToUpper(sha1Hex) + `"}`},
		{ActionAgentsConnect, `{"agentIds":` + idList(5000) + `}`},
		{ActionAgentsConnect, `{"agentIds":["100000000000000000"]}`},
		{ActionAgentsConnect, `{"agentIds":["18446744073709551615"]}`},
		{ActionThreatsList, `{"limit":1,"sortBy":"updatedAt","sortOrder":"asc","createdAfter":"2024-05-01T00:00:00.123456+02:00"}`},
		{ActionThreatsList, `{"limit":1000,"siteIds":` + idList(500) + `}`},
		{ActionThreatsList, `null`},
		{ActionThreatsList, ``},
		{ActionAgentsList, `{"ip":"2001:DB8::1"}`},
		{ActionAgentsList, `{"isActive":false,"computerName":"FIN-LT-042 (é)"}`},
		{ActionBlocklistAdd, `{"hash":"` + sha1Hex + `","scope":{"groupIds":["` + id(1) + `"]},"osTypes":["windows_legacy"]}`},
		{ActionBlocklistList, `{"scope":{"tenant":true}}`},
	}
	c := newConsole(t)
	env := c.env()
	env.MaxTargets = 5000
	for _, tc := range cases {
		_, err := run(t, env, tc.action, tc.data)
		// The console has no routes: reaching it gives a 404, mapped to 502.
		if err != nil && err.Code == CodeInvalid {
			t.Errorf("%s %.80s: refused: %v", tc.action, tc.data, err)
		}
	}
	if got := len(c.Calls()); got < len(cases) {
		t.Errorf("%d calls reached the console, want at least %d", got, len(cases))
	}
}

func TestValidateNormalises(t *testing.T) {
	r := &BlocklistAddRequest{Hash: strings.ToUpper(sha1Hex), SHA256: strings.ToUpper(sha256Hex)}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Hash != sha1Hex || r.SHA256 != sha256Hex {
		t.Errorf("hashes %s %s, want lower case", r.Hash, r.SHA256)
	}
	if fmt.Sprint(r.OSTypes) != "[windows macos linux]" || r.Scope == nil || !r.Scope.Tenant {
		t.Errorf("defaults: osTypes %v scope %+v", r.OSTypes, r.Scope)
	}
	a := &ActivitiesListRequest{}
	if err := a.Validate(); err != nil || a.SortOrder != "desc" || a.PageSize() != DefaultLimit {
		t.Errorf("activities defaults: %v %q %d", err, a.SortOrder, a.PageSize())
	}
}

func TestHashKind(t *testing.T) {
	for s, want := range map[string]string{
		sha1Hex: "SHA1", strings.ToUpper(sha1Hex): "SHA1", sha256Hex: "SHA256", md5Hex: "MD5",
		"": "", "abc": "", sha1Hex + "0": "", " " + sha1Hex[1:]: "", strings.Repeat("z", 32): "",
	} {
		if got := hashKind(s); got != want {
			t.Errorf("hashKind(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestValidationDoesNotCallUpstream is covered by TestValidation; this
// checks that a 400 from validation is an *Error the connector can send.
func TestValidationErrorData(t *testing.T) {
	_, err := run(t, newConsole(t).env(), ActionAgentsConnect, `{}`)
	if err == nil {
		t.Fatal("accepted")
	}
	d := err.Data()
	if d.Code != http.StatusBadRequest || d.UpstreamStatus != 0 || d.Details != nil {
		t.Errorf("data %+v", d)
	}
}
