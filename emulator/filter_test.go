package emulator

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// filterCase is one filter and the rule it must apply, written
// independently over the decoded JSON items.
type filterCase struct {
	name  string
	q     url.Values
	keep  func(it map[string]any) bool
	every bool // the filter may legitimately keep every item
}

// checkFilters lists path unfiltered, then with each case, and compares the
// answer with the case's rule applied to the unfiltered list.
func checkFilters(t *testing.T, h *harness, path, idPath string, cases []filterCase) {
	t.Helper()
	all := h.walk(path, url.Values{"limit": {"1000"}}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, it := range all {
				if c.keep(it) {
					want = append(want, str(it, idPath))
				}
			}
			if len(want) == 0 || (len(want) == len(all) && !c.every) {
				t.Fatalf("the case keeps %d of %d items: it cannot tell a filter from none", len(want), len(all))
			}
			q := cloneValues(c.q)
			q.Set("limit", "1000")
			got := h.walk(path, q, nil)
			if g, w := sortedCopy(ids(got, idPath)), sortedCopy(want); !slices.Equal(g, w) {
				t.Fatalf("got %d items, want %d", len(g), len(w))
			}
		})
	}
}

func containsFoldAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			return true
		}
	}
	return false
}

func inSet(v string, set ...string) bool { return slices.Contains(set, v) }

func TestThreatFilters(t *testing.T) {
	h := newHarness(t)
	all := h.walk(PathThreats, url.Values{"limit": {"1000"}, "sortBy": {"createdAt"}}, nil)
	t0, t1 := all[3], all[len(all)/2]
	mid := str(t1, "threatInfo.createdAt")
	midUpd := str(all[len(all)*2/3], "threatInfo.updatedAt")
	computer := str(t0, "agentRealtimeInfo.agentComputerName")
	var sha1 string
	for _, it := range all {
		if sha1 = str(it, "threatInfo.sha1"); sha1 != "" {
			break
		}
	}
	ti := func(it map[string]any, f string) string { return str(it, "threatInfo."+f) }
	checkFilters(t, h, PathThreats, "id", []filterCase{
		{"ids", url.Values{"ids": {str(t0, "id") + "," + str(t1, "id")}}, func(it map[string]any) bool {
			return inSet(str(it, "id"), str(t0, "id"), str(t1, "id"))
		}, false},
		{"siteIds", url.Values{"siteIds": {str(t0, "agentRealtimeInfo.siteId")}}, func(it map[string]any) bool {
			return str(it, "agentRealtimeInfo.siteId") == str(t0, "agentRealtimeInfo.siteId")
		}, false},
		{"groupIds", url.Values{"groupIds": {str(t0, "agentRealtimeInfo.groupId")}}, func(it map[string]any) bool {
			return str(it, "agentRealtimeInfo.groupId") == str(t0, "agentRealtimeInfo.groupId")
		}, false},
		{"accountIds", url.Values{"accountIds": {str(t0, "agentRealtimeInfo.accountId")}}, func(map[string]any) bool { return true }, true},
		{"agentIds", url.Values{"agentIds": {str(t0, "agentRealtimeInfo.agentId")}}, func(it map[string]any) bool {
			return str(it, "agentRealtimeInfo.agentId") == str(t0, "agentRealtimeInfo.agentId")
		}, false},
		{"computerName__contains, any case", url.Values{"computerName__contains": {strings.ToLower(computer[:len(computer)-1])}},
			func(it map[string]any) bool {
				return containsFoldAny(str(it, "agentRealtimeInfo.agentComputerName"), computer[:len(computer)-1])
			}, false},
		{"contentHashes", url.Values{"contentHashes": {sha1}}, func(it map[string]any) bool { return ti(it, "sha1") == sha1 }, false},
		{"contentHash__contains", url.Values{"contentHash__contains": {strings.ToUpper(sha1[:10])}}, func(it map[string]any) bool {
			return containsFoldAny(ti(it, "sha1"), sha1[:10]) || containsFoldAny(ti(it, "sha256"), sha1[:10])
		}, false},
		{"incidentStatuses", url.Values{"incidentStatuses": {"in_progress,resolved"}}, func(it map[string]any) bool {
			return inSet(ti(it, "incidentStatus"), "in_progress", "resolved")
		}, false},
		{"incidentStatusesNin", url.Values{"incidentStatusesNin": {"resolved"}}, func(it map[string]any) bool {
			return ti(it, "incidentStatus") != "resolved"
		}, false},
		{"analystVerdicts", url.Values{"analystVerdicts": {"true_positive", "suspicious"}}, func(it map[string]any) bool {
			return inSet(ti(it, "analystVerdict"), "true_positive", "suspicious")
		}, false},
		{"mitigationStatuses", url.Values{"mitigationStatuses": {"mitigated"}}, func(it map[string]any) bool {
			return ti(it, "mitigationStatus") == "mitigated"
		}, false},
		{"classifications", url.Values{"classifications": {"Malware,Trojan"}}, func(it map[string]any) bool {
			return inSet(ti(it, "classification"), "Malware", "Trojan")
		}, false},
		{"confidenceLevels", url.Values{"confidenceLevels": {"suspicious"}}, func(it map[string]any) bool {
			return ti(it, "confidenceLevel") == "suspicious"
		}, false},
		{"osTypes", url.Values{"osTypes": {"linux,macos"}}, func(it map[string]any) bool {
			return inSet(str(it, "agentRealtimeInfo.agentOsType"), "linux", "macos")
		}, false},
		{"createdAt__gt", url.Values{"createdAt__gt": {mid}}, func(it map[string]any) bool { return ti(it, "createdAt") > mid }, false},
		{"createdAt__gte and __lt", url.Values{"createdAt__gte": {mid}, "createdAt__lt": {midUpd}}, func(it map[string]any) bool {
			return ti(it, "createdAt") >= mid && ti(it, "createdAt") < midUpd
		}, false},
		{"createdAt__lte", url.Values{"createdAt__lte": {mid}}, func(it map[string]any) bool { return ti(it, "createdAt") <= mid }, false},
		{"updatedAt__gte", url.Values{"updatedAt__gte": {midUpd}}, func(it map[string]any) bool { return ti(it, "updatedAt") >= midUpd }, false},
		{"updatedAt__gt with a status", url.Values{"updatedAt__gt": {mid}, "incidentStatuses": {"unresolved"}}, func(it map[string]any) bool {
			return ti(it, "updatedAt") > mid && ti(it, "incidentStatus") == "unresolved"
		}, false},
		{"query over names", url.Values{"query": {"MIMIKATZ"}}, func(it map[string]any) bool {
			return containsFoldAny(ti(it, "threatName"), "mimikatz") || containsFoldAny(ti(it, "filePath"), "mimikatz") ||
				containsFoldAny(ti(it, "maliciousProcessArguments"), "mimikatz")
		}, false},
		{"query over computer names", url.Values{"query": {computer}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "agentRealtimeInfo.agentComputerName"), computer)
		}, false},
		{"filePath__contains", url.Values{"filePath__contains": {"downloads"}}, func(it map[string]any) bool {
			return containsFoldAny(ti(it, "filePath"), "downloads")
		}, false},
		{"resolved", url.Values{"resolved": {"True"}}, func(it map[string]any) bool { return ti(it, "incidentStatus") == "resolved" }, false},
		{"agentIsActive", url.Values{"agentIsActive": {"false"}}, func(it map[string]any) bool {
			return get(it, "agentRealtimeInfo.agentIsActive") == false
		}, false},
		{"displayName", url.Values{"displayName": {ti(t0, "threatName")}}, func(it map[string]any) bool {
			return ti(it, "threatName") == ti(t0, "threatName")
		}, false},
		{"storylines", url.Values{"storylines": {ti(t1, "storyline")}}, func(it map[string]any) bool {
			return ti(it, "storyline") == ti(t1, "storyline")
		}, false},
		{"detectionEngines", url.Values{"detectionEngines": {"manual"}}, func(it map[string]any) bool {
			for _, e := range get(it, "threatInfo.detectionEngines").([]any) {
				if e.(map[string]any)["key"] == "manual" {
					return true
				}
			}
			return false
		}, false},
	})
}

func TestAgentFilters(t *testing.T) {
	h := newHarness(t)
	all := h.walk(PathAgents, url.Values{"limit": {"1000"}}, nil)
	a0 := all[2]
	ip := get(a0, "networkInterfaces").([]any)[0].(map[string]any)["inet"].([]any)[0].(string)
	inets := func(it map[string]any) []string {
		var out []string
		for _, n := range get(it, "networkInterfaces").([]any) {
			for _, a := range n.(map[string]any)["inet"].([]any) {
				out = append(out, a.(string))
			}
		}
		return out
	}
	name := str(a0, "computerName")
	checkFilters(t, h, PathAgents, "id", []filterCase{
		{"ids", url.Values{"ids": {str(a0, "id")}}, func(it map[string]any) bool { return str(it, "id") == str(a0, "id") }, false},
		{"computerName exact", url.Values{"computerName": {name}}, func(it map[string]any) bool { return str(it, "computerName") == name }, false},
		{"computerName__contains list", url.Values{"computerName__contains": {"srv,mbp"}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "computerName"), "srv", "mbp")
		}, false},
		{"computerName__like", url.Values{"computerName__like": {strings.ToLower(name[:4])}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "computerName"), name[:4])
		}, false},
		{"networkInterfaceInet__contains", url.Values{"networkInterfaceInet__contains": {ip}}, func(it map[string]any) bool {
			return slices.ContainsFunc(inets(it), func(s string) bool { return strings.Contains(s, ip) })
		}, false},
		{"externalIp__contains", url.Values{"externalIp__contains": {str(a0, "externalIp")}}, func(it map[string]any) bool {
			return strings.Contains(str(it, "externalIp"), str(a0, "externalIp"))
		}, false},
		{"query by ip", url.Values{"query": {ip}}, func(it map[string]any) bool {
			return slices.ContainsFunc(inets(it), func(s string) bool { return strings.Contains(s, ip) }) ||
				strings.Contains(str(it, "externalIp"), ip)
		}, false},
		{"isActive False", url.Values{"isActive": {"False"}}, func(it map[string]any) bool { return get(it, "isActive") == false }, false},
		{"networkStatuses", url.Values{"networkStatuses": {"disconnected"}}, func(it map[string]any) bool {
			return str(it, "networkStatus") == "disconnected"
		}, false},
		{"osTypes", url.Values{"osTypes": {"macos", "linux"}}, func(it map[string]any) bool {
			return inSet(str(it, "osType"), "macos", "linux")
		}, false},
		{"osTypesNin", url.Values{"osTypesNin": {"windows"}}, func(it map[string]any) bool { return str(it, "osType") != "windows" }, false},
		{"siteIds", url.Values{"siteIds": {str(a0, "siteId")}}, func(it map[string]any) bool { return str(it, "siteId") == str(a0, "siteId") }, false},
		{"groupIds", url.Values{"groupIds": {str(a0, "groupId")}}, func(it map[string]any) bool { return str(it, "groupId") == str(a0, "groupId") }, false},
		{"isDecommissioned", url.Values{"isDecommissioned": {"true"}}, func(it map[string]any) bool { return get(it, "isDecommissioned") == true }, false},
		{"machineTypes", url.Values{"machineTypes": {"server"}}, func(it map[string]any) bool { return str(it, "machineType") == "server" }, false},
		{"uuid", url.Values{"uuid": {str(a0, "uuid")}}, func(it map[string]any) bool { return str(it, "uuid") == str(a0, "uuid") }, false},
		{"updatedAt__gt", url.Values{"updatedAt__gt": {str(a0, "updatedAt")}}, func(it map[string]any) bool {
			return str(it, "updatedAt") > str(a0, "updatedAt")
		}, false},
	})
}

func TestAlertFilters(t *testing.T) {
	h := newHarness(t)
	all := h.walk(PathAlerts, url.Values{"limit": {"1000"}, "sortBy": {"alertInfoCreatedAt"}}, nil)
	a0, mid := all[1], str(all[len(all)/2], "alertInfo.createdAt")
	checkFilters(t, h, PathAlerts, "alertInfo.alertId", []filterCase{
		{"ids", url.Values{"ids": {str(a0, "alertInfo.alertId")}}, func(it map[string]any) bool {
			return str(it, "alertInfo.alertId") == str(a0, "alertInfo.alertId")
		}, false},
		{"incidentStatus UPPER", url.Values{"incidentStatus": {"UNRESOLVED"}}, func(it map[string]any) bool {
			return str(it, "alertInfo.incidentStatus") == "Unresolved"
		}, false},
		{"analystVerdict UPPER list", url.Values{"analystVerdict": {"TRUE_POSITIVE,FALSE_POSITIVE"}}, func(it map[string]any) bool {
			return inSet(str(it, "alertInfo.analystVerdict"), "True positive", "False positive")
		}, false},
		{"severity", url.Values{"severity": {"High", "Critical"}}, func(it map[string]any) bool {
			return inSet(str(it, "ruleInfo.severity"), "High", "Critical")
		}, false},
		{"ruleName__contains", url.Values{"ruleName__contains": {"powershell"}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "ruleInfo.name"), "powershell")
		}, false},
		{"createdAt__gt", url.Values{"createdAt__gt": {mid}}, func(it map[string]any) bool { return str(it, "alertInfo.createdAt") > mid }, false},
		{"siteIds", url.Values{"siteIds": {str(a0, "agentDetectionInfo.siteId")}}, func(it map[string]any) bool {
			return str(it, "agentDetectionInfo.siteId") == str(a0, "agentDetectionInfo.siteId")
		}, false},
		{"sourceProcessName__contains", url.Values{"sourceProcessName__contains": {"exe"}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "sourceProcessInfo.name"), "exe")
		}, false},
		{"osType", url.Values{"osType": {"windows"}}, func(it map[string]any) bool { return str(it, "agentRealtimeInfo.os") == "windows" }, false},
	})
}

func TestCatalogFilters(t *testing.T) {
	h := newHarness(t)
	ids := h.emu.IDs()
	threat := h.list(PathThreats, url.Values{"limit": {"1"}, "ids": {ids.Threats[5]}}).items[0]
	acts := h.walk(PathActivities, url.Values{"limit": {"1000"}}, nil)
	var threatID string
	for _, a := range acts {
		if threatID = str(a, "threatId"); threatID != "" {
			break
		}
	}
	checkFilters(t, h, PathActivities, "id", []filterCase{
		{"activityTypes", url.Values{"activityTypes": {"27,5040"}}, func(it map[string]any) bool {
			n := get(it, "activityType")
			return n != nil && (n.(interface{ String() string }).String() == "27" || n.(interface{ String() string }).String() == "5040")
		}, false},
		{"threatIds", url.Values{"threatIds": {threatID}}, func(it map[string]any) bool { return str(it, "threatId") == threatID }, false},
		{"siteIds", url.Values{"siteIds": {ids.Sites[0]}}, func(it map[string]any) bool { return str(it, "siteId") == ids.Sites[0] }, false},
		{"createdAt__gte", url.Values{"createdAt__gte": {str(acts[len(acts)/2], "createdAt")}}, func(it map[string]any) bool {
			return str(it, "createdAt") >= str(acts[len(acts)/2], "createdAt")
		}, false},
	})
	checkFilters(t, h, PathGroups, "id", []filterCase{
		{"siteIds", url.Values{"siteIds": {ids.Sites[1]}}, func(it map[string]any) bool { return str(it, "siteId") == ids.Sites[1] }, false},
		{"type", url.Values{"type": {"static"}}, func(it map[string]any) bool { return str(it, "type") == "static" }, false},
		{"name", url.Values{"name": {"Default Group"}}, func(it map[string]any) bool { return str(it, "name") == "Default Group" }, false},
		{"query", url.Values{"query": {"SERVERS"}}, func(it map[string]any) bool {
			return containsFoldAny(str(it, "name"), "servers") || containsFoldAny(str(it, "description"), "servers")
		}, false},
		{"isDefault", url.Values{"isDefault": {"False"}}, func(it map[string]any) bool { return get(it, "isDefault") == false }, false},
		{"groupIds", url.Values{"groupIds": {str(threat, "agentRealtimeInfo.groupId")}}, func(it map[string]any) bool {
			return str(it, "id") == str(threat, "agentRealtimeInfo.groupId")
		}, false},
	})
}

func TestSitesEnvelopeAndFilters(t *testing.T) {
	h := newHarness(t)
	ids := h.emu.IDs()
	m := h.do("GET", PathSites, url.Values{"name__contains": {"euro"}}, nil).json(t)
	if _, ok := get(m, "data.allSites.activeLicenses").(interface{ String() string }); !ok {
		t.Fatalf("no data.allSites.activeLicenses in %v", m)
	}
	sites, _ := get(m, "data.sites").([]any)
	if len(sites) != 1 || str(sites[0].(map[string]any), "name") != "Europe" {
		t.Errorf("name__contains=euro gave %v", sites)
	}
	if get(m, "pagination.totalItems").(interface{ String() string }).String() != "1" {
		t.Errorf("pagination %v", get(m, "pagination"))
	}
	for q, want := range map[string]int{
		"siteIds=" + ids.Sites[0]:    1,
		"state=active":               len(ids.Sites),
		"query=datacenter":           1,
		"name=Default+site":          1,
		"isDefault=true":             1,
		"accountIds=" + ids.Account:  len(ids.Sites),
		"siteType=Trial":             len(ids.Sites) - 1,
		"states=expired,deleted":     0,
		"name__contains=ur&limit=1":  1,
		"sortBy=name&sortOrder=desc": len(ids.Sites),
	} {
		vals, _ := url.ParseQuery(q)
		m := h.do("GET", PathSites, vals, nil).json(t)
		if got := get(m, "pagination.totalItems").(interface{ String() string }).String(); got != itoa(want) {
			t.Errorf("%s: totalItems %s, want %d", q, got, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestAbsentFieldFiltersMatchNothing(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		path string
		q    url.Values
		want int
	}{
		{PathThreats, url.Values{"k8sPodName__contains": {"web"}}, 0},
		{PathThreats, url.Values{"externalTicketIds": {"JIRA-1"}}, 0},
		{PathThreats, url.Values{"externalTicketIdsNin": {"JIRA-1"}}, DefaultSizes().Threats},
		{PathAgents, url.Values{"adUserName__contains": {"alice"}}, 0},
		{PathAlerts, url.Values{"containerName__contains": {"nginx"}}, 0},
	} {
		if l := h.list(c.path, c.q); l.total != c.want {
			t.Errorf("%s?%s: %d items, want %d", c.path, c.q.Encode(), l.total, c.want)
		}
	}
	// Agents by the hash of one of their threats.
	th := h.list(PathThreats, url.Values{"limit": {"1000"}}).items
	var sha1 string
	for _, it := range th {
		if sha1 = str(it, "threatInfo.sha1"); sha1 != "" {
			break
		}
	}
	want := map[string]bool{}
	for _, it := range th {
		if str(it, "threatInfo.sha1") == sha1 {
			want[str(it, "agentRealtimeInfo.agentId")] = true
		}
	}
	got := h.list(PathAgents, url.Values{"threatContentHash": {sha1}, "limit": {"1000"}})
	if got.total != len(want) {
		t.Fatalf("threatContentHash: %d agents, want %d", got.total, len(want))
	}
	for _, id := range ids(got.items, "id") {
		if !want[id] {
			t.Errorf("agent %s has no threat with hash %s", id, sha1)
		}
	}
}
