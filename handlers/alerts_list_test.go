package handlers

import (
	"testing"
)

func TestAlertsList(t *testing.T) {
	q := queryOf(t, ActionAlertsList, "GET /cloud-detection/alerts", `{"ids":["`+id(1)+`"],"incidentStatuses":["in_progress","unresolved"],
		"analystVerdicts":["true_positive"],"severities":["high","critical","info"],"ruleName":"PowerShell",
		"createdAfter":"2024-05-01T00:00:00Z","createdBefore":"2024-05-02T00:00:00Z","siteIds":["`+id(2)+`"],"limit":20}`)
	wantQuery(t, q, map[string]string{"ids": id(1), "incidentStatus": "IN_PROGRESS,UNRESOLVED", "analystVerdict": "TRUE_POSITIVE",
		"severity": "High,Critical,Info", "ruleName__contains": "PowerShell",
		"createdAt__gt": "2024-05-01T00:00:00.000000Z", "createdAt__lt": "2024-05-02T00:00:00.000000Z", "siteIds": id(2), "limit": "20"})
}

func TestAlertsListItems(t *testing.T) {
	c := newConsole(t)
	alert := `{"alertInfo":{"alertId":"1928374650192837465","analystVerdict":"Undefined","incidentStatus":"Unresolved",
"createdAt":"2024-05-01T08:00:43.040000Z"},"ruleInfo":{"id":"1876543210987654321","name":"Encoded PowerShell","severity":"High"},
"agentRealtimeInfo":{"id":"1559342436290084702","name":"FIN-LT-042"}}`
	c.handle("GET /cloud-detection/alerts", collection{items: []string{alert}}.route)
	var got listResult
	mustRun(t, c.env(), ActionAlertsList, `{}`, &got)
	// Passed through as the console sent it: display-case enums and the
	// undocumented agentRealtimeInfo included.
	if len(got.Items) != 1 || !sameJSON(t, got.Items[0], []byte(alert)) {
		t.Errorf("items %s", got.Items)
	}
}
