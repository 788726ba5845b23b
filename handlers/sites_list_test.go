package handlers

import (
	"slices"
	"testing"
)

func siteJSON(id string) string {
	return `{"id":"` + id + `","name":"Site ` + id + `","accountId":"1286405255240245908","accountName":"Acme","state":"active",
"siteType":"Paid","sku":"Core","isDefault":false,"activeLicenses":764,"totalLicenses":40,"expiration":null}`
}

const allSites = `{"activeLicenses":764,"totalLicenses":40}`

func sitesConsole(t *testing.T, n int) *console {
	c := newConsole(t)
	var items []string
	for i := range n {
		items = append(items, siteJSON(id(i)))
	}
	c.handle("GET /sites", collection{items: items, wrap: func(items string) string {
		return `{"allSites":` + allSites + `,"sites":` + items + `}`
	}}.route)
	return c
}

func TestSitesList(t *testing.T) {
	c := sitesConsole(t, 5)
	var got listResult
	b := mustRun(t, c.env(), ActionSitesList, `{"limit":2,"all":true,"state":"active","name":"Default site","query":"acme","siteIds":["`+id(0)+`"]}`, &got)
	if !slices.Equal(got.ids(t), []string{id(0), id(1), id(2), id(3), id(4)}) || got.TotalItems != 5 || got.NextCursor != nil {
		t.Errorf("reply %s", b)
	}
	if !sameJSON(t, got.AllSites, []byte(allSites)) {
		t.Errorf("allSites %s, want the console's %s", got.AllSites, allSites)
	}
	calls := c.callsTo("GET /sites")
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	wantQuery(t, calls[0].Query, map[string]string{"state": "active", "name": "Default site", "query": "acme", "siteIds": id(0), "limit": "2"})
}

// TestSitesListTruncated: allSites counts against the reply bound too.
func TestSitesListTruncated(t *testing.T) {
	c := sitesConsole(t, 6)
	env := c.env()
	b, _ := run(t, env, ActionSitesList, `{"limit":2}`)
	env.MaxReplyBytes = len(b) + 5 // the first page fits, two would not
	var got listResult
	b = mustRun(t, env, ActionSitesList, `{"limit":2,"all":true}`, &got)
	if len(b) > env.MaxReplyBytes || len(got.Items) != 2 || !got.Truncated || got.NextCursor == nil || *got.NextCursor != cursorAt(2) {
		t.Errorf("reply of %d bytes (max %d): %s", len(b), env.MaxReplyBytes, b)
	}
	if got.AllSites == nil {
		t.Errorf("allSites missing: %s", b)
	}
}
