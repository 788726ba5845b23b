package handlers

import (
	"slices"
	"strings"
	"testing"
)

func TestBlocklistList(t *testing.T) {
	cases := []struct {
		name, data string
		want       map[string]string // query parameters that must be sent
		absent     []string
	}{
		{
			name: "every scope the token sees",
			data: `{"hash":"` + strings.ToUpper(sha1Hex) + `","osTypes":["windows","linux"]}`,
			want: map[string]string{"tenant": "true", "includeChildren": "true", "includeParents": "true",
				"value__contains": sha1Hex, "type": "black_hash", "osTypes": "windows,linux", "limit": "100"},
			absent: []string{"siteIds", "value"},
		},
		{
			name:   "tenant scope",
			data:   `{"scope":{"tenant":true},"limit":5}`,
			want:   map[string]string{"tenant": "true", "type": "black_hash", "limit": "5"},
			absent: []string{"includeChildren", "includeParents", "value__contains"},
		},
		{
			name:   "site scope",
			data:   `{"scope":{"siteIds":["` + id(1) + `","` + id(2) + `"]}}`,
			want:   map[string]string{"tenant": "false", "siteIds": id(1) + "," + id(2)},
			absent: []string{"includeChildren", "includeParents"},
		},
		{
			name: "account scope",
			data: `{"scope":{"accountIds":["` + id(3) + `"]}}`,
			want: map[string]string{"tenant": "false", "accountIds": id(3)},
		},
		{
			name: "group scope",
			data: `{"scope":{"groupIds":["` + id(4) + `"]}}`,
			want: map[string]string{"tenant": "false", "groupIds": id(4)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			entries := []string{restrictionJSON(id(10), sha1Hex, "windows"), restrictionJSON(id(11), sha1Hex, "linux")}
			c.handle("GET /restrictions", collection{items: entries}.route)
			var got listResult
			mustRun(t, c.env(), ActionBlocklistList, tc.data, &got)
			if !slices.Equal(got.ids(t), []string{id(10), id(11)}) || got.TotalItems != 2 || got.NextCursor != nil {
				t.Errorf("reply ids %v total %d next %v", got.ids(t), got.TotalItems, got.NextCursor)
			}
			q := c.callsTo("GET /restrictions")[0].Query
			for k, v := range tc.want {
				if q.Get(k) != v {
					t.Errorf("%s=%q, want %q (query %s)", k, q.Get(k), v, q.Encode())
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s sent: %s", k, q.Encode())
				}
			}
		})
	}
}
