package sentinelone

import (
	"errors"
	"fmt"
	"iter"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestThreatPages(t *testing.T) {
	threat := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"threatInfo":{"threatId":%q,"incidentStatus":"unresolved","updatedAt":"2024-05-01T08:12:10.002311Z"}}`, id, id)
	}
	page := func(next string, ids ...string) string {
		items := ""
		for i, id := range ids {
			if i > 0 {
				items += ","
			}
			items += threat(id)
		}
		return fmt.Sprintf(`{"data":[%s],"pagination":{"nextCursor":%s,"totalItems":9}}`, items, next)
	}
	tests := []struct {
		name    string
		pages   []string // answer n serves pages[n]
		wantIDs [][]string
	}{
		{"null cursor stops", []string{page(`"c1"`, "1", "2"), page(`null`, "3")}, [][]string{{"1", "2"}, {"3"}}},
		{"empty string stops", []string{page(`"c1"`, "1"), page(`""`, "2")}, [][]string{{"1"}, {"2"}}},
		{"string null stops", []string{page(`"c1"`, "1"), page(`"null"`, "2")}, [][]string{{"1"}, {"2"}}},
		{"missing cursor stops", []string{`{"data":[` + threat("1") + `],"pagination":{"totalItems":1}}`}, [][]string{{"1"}}},
		{"repeated cursor stops", []string{page(`"c1"`, "1"), page(`"c2"`, "2"), page(`"c1"`, "3"), page(`null`, "4")}, [][]string{{"1"}, {"2"}, {"3"}}},
		{"same cursor again stops", []string{page(`"c1"`, "1"), page(`"c1"`, "2"), page(`null`, "3")}, [][]string{{"1"}, {"2"}}},
		{"empty page stops", []string{page(`"c1"`, "1"), page(`"c2"`), page(`null`, "3")}, [][]string{{"1"}, {}}},
		{"empty first page", []string{page(`"c1"`)}, [][]string{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n >= len(tt.pages) {
					reply(w, 500, `{"errors":[{"title":"fetched past the end"}]}`)
					return
				}
				reply(w, 200, tt.pages[n])
			})
			c := newTestClient(t, fastConfig(con.URL))
			since := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
			f := ThreatFilter{IncidentStatuses: []string{"Unresolved", "IN_PROGRESS"}, UpdatedAtGte: since, SortBy: "updatedAt", SortOrder: SortAsc, Limit: 5000}
			var got [][]string
			for p, err := range c.ThreatPages(t.Context(), f) {
				if err != nil {
					t.Fatal(err)
				}
				ids := []string{}
				for _, th := range p.Items {
					ids = append(ids, th.ID)
				}
				got = append(got, ids)
			}
			if !reflect.DeepEqual(got, tt.wantIDs) {
				t.Errorf("pages = %v, want %v", got, tt.wantIDs)
			}
			reqs := con.requests()
			if len(reqs) != len(tt.wantIDs) {
				t.Fatalf("%d requests for %d pages", len(reqs), len(tt.wantIDs))
			}
			first := reqs[0].Query
			if first.Get("limit") != "1000" || first.Get("incidentStatuses") != "unresolved,in_progress" ||
				first.Get("updatedAt__gte") != "2024-05-01T00:00:00.000000Z" || first.Has("cursor") {
				t.Errorf("first query = %v", first)
			}
			for i, r := range reqs[1:] {
				q := r.Query
				if q.Get("cursor") == "" {
					t.Errorf("request %d has no cursor", i+1)
				}
				q.Del("cursor")
				if !reflect.DeepEqual(q, first) {
					t.Errorf("request %d filters %v differ from the first %v", i+1, q, first)
				}
			}
		})
	}
}

func TestPagesStopOnErrorAndBreak(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		switch n {
		case 0:
			reply(w, 200, `{"data":[{"id":"1","name":"g"}],"pagination":{"nextCursor":"c1","totalItems":3}}`)
		default:
			reply(w, 400, `{"errors":[{"code":4000010,"title":"Validation JSONError","detail":"Invalid cursor value received"}]}`)
		}
	})
	c := newTestClient(t, fastConfig(con.URL))
	var pages, errs int
	for p, err := range c.GroupPages(t.Context(), GroupFilter{Limit: 1}) {
		if err != nil {
			errs++
			if !errors.Is(err, ErrBadRequest) || p != nil {
				t.Errorf("err = %v, page %v", err, p)
			}
			continue
		}
		pages++
	}
	if pages != 1 || errs != 1 || len(con.requests()) != 2 {
		t.Errorf("pages=%d errs=%d requests=%d, want 1, 1, 2", pages, errs, len(con.requests()))
	}

	// Breaking out after the first page fetches nothing more.
	con2 := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		reply(w, 200, fmt.Sprintf(`{"data":[{"id":"%d"}],"pagination":{"nextCursor":"c%d"}}`, n, n+1))
	})
	for range newTestClient(t, fastConfig(con2.URL)).AgentPages(t.Context(), AgentFilter{}) {
		break
	}
	if n := len(con2.requests()); n != 1 {
		t.Errorf("break: %d requests, want 1", n)
	}
}

func TestSitePagesResumeFromCursor(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Query().Get("cursor") == "start" {
			reply(w, 200, `{"data":{"allSites":{"activeLicenses":3,"totalLicenses":5},"sites":[{"id":"2","name":"b"}]},"pagination":{"nextCursor":"null","totalItems":2}}`)
			return
		}
		reply(w, 400, `{"errors":[{"title":"no cursor"}]}`)
	})
	var sites []string
	for p, err := range newTestClient(t, fastConfig(con.URL)).SitePages(t.Context(), SiteFilter{Cursor: "start", State: "active"}) {
		if err != nil {
			t.Fatal(err)
		}
		if string(p.AllSites) != `{"activeLicenses":3,"totalLicenses":5}` || p.TotalItems != 2 || p.NextCursor != "" {
			t.Errorf("page = %+v", p)
		}
		for _, s := range p.Items {
			sites = append(sites, s.Name)
		}
	}
	if !reflect.DeepEqual(sites, []string{"b"}) {
		t.Errorf("sites = %v", sites)
	}
}

// TestEveryIteratorFollowsCursors runs each resource's iterator over two
// pages and checks the second request carries the first page's cursor.
func TestEveryIteratorFollowsCursors(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		item, next := `{"id":"1","threatInfo":{}}`, `"c1"`
		if r.URL.Query().Get("cursor") == "c1" {
			next = `null`
		}
		data := "[" + item + "]"
		if r.URL.Path == APIPrefix+PathSites {
			data = `{"allSites":{},"sites":[` + item + `]}`
		}
		reply(w, 200, `{"data":`+data+`,"pagination":{"nextCursor":`+next+`}}`)
	})
	c := newTestClient(t, fastConfig(con.URL))
	ctx := t.Context()
	runs := map[string]func() (int, error){
		PathThreats:      func() (int, error) { return countPages(c.ThreatPages(ctx, ThreatFilter{})) },
		PathAgents:       func() (int, error) { return countPages(c.AgentPages(ctx, AgentFilter{})) },
		PathGroups:       func() (int, error) { return countPages(c.GroupPages(ctx, GroupFilter{})) },
		PathSites:        func() (int, error) { return countPages(c.SitePages(ctx, SiteFilter{})) },
		PathActivities:   func() (int, error) { return countPages(c.ActivityPages(ctx, ActivityFilter{})) },
		PathAlerts:       func() (int, error) { return countPages(c.AlertPages(ctx, AlertFilter{})) },
		PathRestrictions: func() (int, error) { return countPages(c.RestrictionPages(ctx, RestrictionFilter{})) },
	}
	for path, run := range runs {
		before := len(con.requests())
		if n, err := run(); n != 2 || err != nil {
			t.Errorf("%s: %d pages, %v", path, n, err)
			continue
		}
		reqs := con.requests()[before:]
		if len(reqs) != 2 || reqs[0].Path != APIPrefix+path || reqs[1].Query.Get("cursor") != "c1" {
			t.Errorf("%s: requests %+v", path, reqs)
		}
	}
}

func countPages[P any](seq iter.Seq2[P, error]) (int, error) {
	n := 0
	for _, err := range seq {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
