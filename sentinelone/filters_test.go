package sentinelone

import (
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestFilterValues(t *testing.T) {
	yes, no := true, false
	cest := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		got  url.Values
		want url.Values
	}{
		{"empty filter sends nothing", ThreatFilter{}.Values(), url.Values{}},
		{
			"threats: csv, enums lower_snake, times UTC with microseconds, limit capped",
			ThreatFilter{
				IDs: []string{"1", "2"}, ComputerNameContains: []string{"FIN-LT"}, IncidentStatuses: []string{"In progress", "RESOLVED"},
				CreatedAtGt: time.Date(2024, 5, 1, 10, 0, 0, 123456789, cest), UpdatedAtGte: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
				SortBy: "updatedAt", SortOrder: SortAsc, Limit: 5000, Cursor: "YWJj",
			}.Values(),
			url.Values{
				"ids": {"1,2"}, "computerName__contains": {"FIN-LT"}, "incidentStatuses": {"in_progress,resolved"},
				"createdAt__gt": {"2024-05-01T08:00:00.123456Z"}, "updatedAt__gte": {"2024-05-01T00:00:00.000000Z"},
				"sortBy": {"updatedAt"}, "sortOrder": {"asc"}, "limit": {"1000"}, "cursor": {"YWJj"},
			},
		},
		{
			"agents: IP filters and booleans",
			AgentFilter{NetworkInterfaceInetContains: []string{"10.1.2.3"}, IsActive: &yes, Infected: &no, NetworkStatuses: []string{"Connected"}, Limit: 10}.Values(),
			url.Values{"networkInterfaceInet__contains": {"10.1.2.3"}, "isActive": {"true"}, "infected": {"false"}, "networkStatuses": {"connected"}, "limit": {"10"}},
		},
		{
			"alerts: UPPER_SNAKE statuses, display-case severity",
			AlertFilter{IncidentStatuses: []string{"in_progress"}, AnalystVerdicts: []string{"True positive", "undefined"}, Severities: []string{"high", "INFO"}, RuleNameContains: []string{"PowerShell"}}.Values(),
			url.Values{"incidentStatus": {"IN_PROGRESS"}, "analystVerdict": {"TRUE_POSITIVE,UNDEFINED"}, "severity": {"High,Info"}, "ruleName__contains": {"PowerShell"}},
		},
		{
			"activities: int csv",
			ActivityFilter{ActivityTypes: []int{27, 5040}, ThreatIDs: []string{"9"}, SortBy: "createdAt", SortOrder: SortDesc}.Values(),
			url.Values{"activityTypes": {"27,5040"}, "threatIds": {"9"}, "sortBy": {"createdAt"}, "sortOrder": {"desc"}},
		},
		{
			"restrictions: every scope",
			RestrictionFilter{Value: "abc", Tenant: &yes, IncludeParents: &yes, IncludeChildren: &yes, OSTypes: []string{"Windows"}}.Values(),
			url.Values{"value": {"abc"}, "tenant": {"true"}, "includeParents": {"true"}, "includeChildren": {"true"}, "osTypes": {"windows"}},
		},
		{"groups: ids as groupIds", GroupFilter{IDs: []string{"5"}, Type: "Static"}.Values(), url.Values{"groupIds": {"5"}, "type": {"static"}}},
		{"sites: ids as siteIds", SiteFilter{IDs: []string{"5"}, State: "Active"}.Values(), url.Values{"siteIds": {"5"}, "state": {"active"}}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestEveryFilterFieldIsSent sets each field of each filter alone and
// requires it to produce a query parameter: a field Values forgets would
// silently widen a query.
func TestEveryFilterFieldIsSent(t *testing.T) {
	for _, f := range []interface{ Values() url.Values }{
		ThreatFilter{}, AgentFilter{}, GroupFilter{}, SiteFilter{}, ActivityFilter{}, AlertFilter{}, RestrictionFilter{}, NoteFilter{}, TimelineFilter{},
	} {
		typ := reflect.TypeOf(f)
		for i := range typ.NumField() {
			full := reflect.New(typ)
			fill(full.Interface(), nil)
			one := reflect.New(typ).Elem()
			one.Field(i).Set(full.Elem().Field(i))
			if got := one.Interface().(interface{ Values() url.Values }).Values(); len(got) != 1 {
				t.Errorf("%s.%s alone gives %v, want one parameter", typ.Name(), typ.Field(i).Name, got)
			}
		}
	}
}
