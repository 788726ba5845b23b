package handlers

import (
	"testing"
)

func TestGroupsList(t *testing.T) {
	q := queryOf(t, ActionGroupsList, "GET /groups", `{"siteIds":["`+id(1)+`"],"name":"Default Group","query":"default","type":"static","limit":300}`)
	wantQuery(t, q, map[string]string{"siteIds": id(1), "name": "Default Group", "query": "default", "type": "static", "limit": "300"})
}

func TestGroupsListItems(t *testing.T) {
	c := newConsole(t)
	group := `{"id":"1286405255265411734","name":"Default Group","siteId":"1286405255257023125","type":"static","isDefault":true,
"rank":null,"filterId":null,"totalAgents":2,"inherits":true,"createdAt":"2021-11-10T21:37:36.554715Z"}`
	c.handle("GET /groups", collection{items: []string{group}}.route)
	var got listResult
	mustRun(t, c.env(), ActionGroupsList, `{}`, &got)
	if len(got.Items) != 1 || !sameJSON(t, got.Items[0], []byte(group)) || got.TotalItems != 1 {
		t.Errorf("reply %+v", got)
	}
}
