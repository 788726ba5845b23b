package handlers

import (
	"net/url"
	"testing"
)

// queryOf runs a list request against a console that serves path empty,
// and returns the query of the one call.
func queryOf(t *testing.T, action, methodPath, data string) url.Values {
	t.Helper()
	c := newConsole(t)
	c.handle(methodPath, collection{}.route)
	mustRun(t, c.env(), action, data, nil)
	calls := c.callsTo(methodPath)
	if len(calls) != 1 {
		t.Fatalf("%d calls to %s", len(calls), methodPath)
	}
	return calls[0].Query
}

// wantQuery compares q with want exactly.
func wantQuery(t *testing.T, q url.Values, want map[string]string) {
	t.Helper()
	for k := range q {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s=%q", k, q.Get(k))
		}
	}
	for k, v := range want {
		if got := q.Get(k); got != v || len(q[k]) != 1 {
			t.Errorf("%s=%q, want %q", k, q[k], v)
		}
	}
}

func TestThreatsListFilters(t *testing.T) {
	q := queryOf(t, ActionThreatsList, "GET /threats", `{
		"ids":["`+id(1)+`","`+id(2)+`"], "computerName":"FIN-LT", "incidentStatuses":["unresolved","in_progress"],
		"analystVerdicts":["true_positive"], "classifications":["Malware","Trojan"], "siteIds":["`+id(3)+`"],
		"groupIds":["`+id(4)+`"], "accountIds":["`+id(5)+`"], "createdAfter":"2024-05-01T00:00:00Z",
		"createdBefore":"2024-05-02T10:00:00.5+02:00", "updatedAfter":"2024-05-01T12:00:00Z", "updatedBefore":"2024-06-01T00:00:00Z",
		"query":"invoice", "sortBy":"updatedAt", "sortOrder":"asc", "limit":50}`)
	wantQuery(t, q, map[string]string{
		"ids": id(1) + "," + id(2), "computerName__contains": "FIN-LT", "incidentStatuses": "unresolved,in_progress",
		"analystVerdicts": "true_positive", "classifications": "Malware,Trojan", "siteIds": id(3), "groupIds": id(4),
		"accountIds":    id(5),
		"createdAt__gt": "2024-05-01T00:00:00.000000Z", "createdAt__lt": "2024-05-02T08:00:00.500000Z",
		"updatedAt__gt": "2024-05-01T12:00:00.000000Z", "updatedAt__lt": "2024-06-01T00:00:00.000000Z",
		"query": "invoice", "sortBy": "updatedAt", "sortOrder": "asc", "limit": "50",
	})
}
