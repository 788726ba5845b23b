package handlers

import (
	"testing"
)

func TestActivitiesList(t *testing.T) {
	q := queryOf(t, ActionActivitiesList, "GET /activities", `{"activityTypes":[27,5040],"threatIds":["`+id(1)+`"],"agentIds":["`+id(2)+`"],
		"createdAfter":"2024-05-01T00:00:00Z","createdBefore":"2024-05-02T00:00:00Z"}`)
	wantQuery(t, q, map[string]string{"activityTypes": "27,5040", "threatIds": id(1), "agentIds": id(2),
		"createdAt__gt": "2024-05-01T00:00:00.000000Z", "createdAt__lt": "2024-05-02T00:00:00.000000Z",
		"sortBy": "createdAt", "sortOrder": "desc", "limit": "100"})

	q = queryOf(t, ActionActivitiesList, "GET /activities", `{"sortOrder":"asc","limit":1}`)
	wantQuery(t, q, map[string]string{"sortBy": "createdAt", "sortOrder": "asc", "limit": "1"})
}
