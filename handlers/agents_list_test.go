package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestAgentsListFilters(t *testing.T) {
	q := queryOf(t, ActionAgentsList, "GET /agents", `{"ids":["`+id(1)+`"],"computerName":"FIN-LT-042","query":"fin",
		"siteIds":["`+id(2)+`"],"groupIds":["`+id(3)+`"],"isActive":false,"networkStatuses":["connected","connecting"],
		"osTypes":["windows","linux"],"limit":25}`)
	wantQuery(t, q, map[string]string{"ids": id(1), "computerName": "FIN-LT-042", "query": "fin", "siteIds": id(2),
		"groupIds": id(3), "isActive": "false", "networkStatuses": "connected,connecting", "osTypes": "windows,linux", "limit": "25"})
}

// agentsByIPConsole answers the two substring queries as a console would:
// every agent whose local or external address contains the substring.
func agentsByIPConsole(t *testing.T, agents []string, pageSize int) *console {
	t.Helper()
	c := newConsole(t)
	c.handle("GET /agents", func(w http.ResponseWriter, r *http.Request, cl call) {
		inet, ext := cl.Query.Get("networkInterfaceInet__contains"), cl.Query.Get("externalIp__contains")
		if (inet == "") == (ext == "") {
			t.Errorf("query %s: want exactly one address filter", cl.Query.Encode())
		}
		var matched []string
		for _, a := range agents {
			// Crude but sufficient: the fixtures put each address once.
			local, _, _ := strings.Cut(a[strings.Index(a, `"networkInterfaces"`):], `"siteId"`)
			external, _, _ := strings.Cut(a[strings.Index(a, `"externalIp"`):], `,`)
			for _, alt := range strings.Split(inet+ext, ",") { // __contains alternatives
				if inet != "" && strings.Contains(local, alt) || ext != "" && strings.Contains(external, alt) {
					matched = append(matched, a)
					break
				}
			}
		}
		if pageSize > 0 {
			cl.Query = cloneWith(cl.Query, "limit", itoa(pageSize))
		}
		collection{items: matched}.route(w, r, cl)
	})
	return c
}

func TestAgentsListIPExact(t *testing.T) {
	agents := []string{
		agentJSON(id(1), "203.0.113.9", []string{"10.0.0.1"}, nil),                // local, exact
		agentJSON(id(2), "203.0.113.9", []string{"10.0.0.12"}, nil),               // local, substring only
		agentJSON(id(3), "10.0.0.1", []string{"192.168.1.5"}, nil),                // external, exact
		agentJSON(id(4), "110.0.0.1", []string{"192.168.1.6"}, nil),               // external, substring only
		agentJSON(id(5), "10.0.0.1", []string{"10.0.0.1"}, nil),                   // both: reported once
		agentJSON(id(6), "198.51.100.1", []string{"10.0.0.100", "10.0.0.1"}, nil), // second address
	}
	c := agentsByIPConsole(t, agents, 2) // pages of 2: every page is read
	var got listResult
	mustRun(t, c.env(), ActionAgentsList, `{"ip":"10.0.0.1","isActive":true,"limit":2,"all":false}`, &got)
	want := []string{id(1), id(5), id(6), id(3)}
	if !slices.Equal(got.ids(t), want) {
		t.Errorf("ids %v, want %v", got.ids(t), want)
	}
	if got.TotalItems != 4 || got.NextCursor != nil || got.Truncated {
		t.Errorf("total %d next %v truncated %t", got.TotalItems, got.NextCursor, got.Truncated)
	}
	var inet, ext int
	for _, cl := range c.callsTo("GET /agents") {
		if cl.Query.Get("isActive") != "true" {
			t.Errorf("query %s lost the other filters", cl.Query.Encode())
		}
		if cl.Query.Has("networkInterfaceInet__contains") {
			inet++
		} else {
			ext++
		}
	}
	// Four inet matches and three external ones, in pages of 2.
	if inet != 2 || ext != 2 {
		t.Errorf("%d inet pages and %d external pages, want 2 and 2", inet, ext)
	}
}

func TestAgentsListIPv6(t *testing.T) {
	agents := []string{
		agentJSON(id(1), "1.2.3.4", []string{"1.2.3.4"}, []string{"2001:db8:8:4::1"}),
		agentJSON(id(2), "1.2.3.5", []string{"1.2.3.5"}, []string{"2001:db8:8:4::10"}),
		// Spelt with leading zeros, as some consoles (and the emulator) do.
		agentJSON(id(3), "1.2.3.6", []string{"1.2.3.6"}, []string{"fe80::0791:a91b"}),
	}
	cases := []struct {
		ip   string
		want []string
		alts string // the __contains alternatives asked for
	}{
		{"2001:DB8:8:4:0:0:0:1", []string{id(1)}, "2001:db8:8:4::1,2001:db8:8:4:0:0:0:1,2001:0db8:0008:0004:0000:0000:0000:0001"},
		{"2001:db8:8:4::1", []string{id(1)}, "2001:db8:8:4::1,2001:0db8:0008:0004:0000:0000:0000:0001"},
		{"fe80::0791:a91b", []string{id(3)}, "fe80::791:a91b,fe80::0791:a91b,fe80:0000:0000:0000:0000:0000:0791:a91b"},
		// No spelling asked for is a substring of the console's: the limit
		// of a text search, shown here so that it is a known one.
		{"fe80::791:a91b%eth0", nil, "fe80::791:a91b,fe80:0000:0000:0000:0000:0000:0791:a91b"},
	}
	for _, tc := range cases {
		c := agentsByIPConsole(t, agents, 0)
		var got listResult
		mustRun(t, c.env(), ActionAgentsList, `{"ip":"`+tc.ip+`"}`, &got)
		if !slices.Equal(got.ids(t), tc.want) && len(got.ids(t))+len(tc.want) > 0 {
			t.Errorf("ip %s: ids %v, want %v", tc.ip, got.ids(t), tc.want)
		}
		if q := c.callsTo("GET /agents")[0].Query; q.Get("networkInterfaceInet__contains") != tc.alts {
			t.Errorf("ip %s: asked for %q, want %q", tc.ip, q.Get("networkInterfaceInet__contains"), tc.alts)
		}
	}
}

func TestAgentsListIPNoMatch(t *testing.T) {
	c := agentsByIPConsole(t, []string{agentJSON(id(1), "203.0.113.9", []string{"10.0.0.12"}, nil)}, 0)
	b := mustRun(t, c.env(), ActionAgentsList, `{"ip":"10.0.0.1"}`, nil)
	if string(b) != `{"items":[],"nextCursor":null,"totalItems":0,"truncated":false}` {
		t.Errorf("reply %s", b)
	}
}

func TestAgentsListIPTooLarge(t *testing.T) {
	var agents []string
	for i := range 20 {
		agents = append(agents, agentJSON(id(i), "203.0.113.9", []string{"10.0.0.1"}, nil))
	}
	c := agentsByIPConsole(t, agents, 0)
	env := c.env()
	env.MaxReplyBytes = 2000
	_, err := run(t, env, ActionAgentsList, `{"ip":"203.0.113.9"}`)
	if err == nil || err.Code != CodeTooLarge || !strings.Contains(err.Message, "203.0.113.9") {
		t.Fatalf("err %v, want a 413 naming the address", err)
	}
}

// TestAgentsListPassesAgentsAsSent: agents.list carries SentinelOne's agent
// objects byte for byte (the client checks the page and reads none of their
// members), and an answer whose items are not objects is SentinelOne's
// error, not a reply.
func TestAgentsListPassesAgentsAsSent(t *testing.T) {
	answer := `{"data":[{"id":"1","computerName":"h\u00e9","future":{"x":[1,2]}},{"id":2,"isActive":"yes"}],"pagination":{"nextCursor":null,"totalItems":2}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	out, herr := run(t, envFor(t, srv.URL), ActionAgentsList, `{}`)
	if herr != nil {
		t.Fatal(herr)
	}
	want := `{"items":[{"id":"1","computerName":"h\u00e9","future":{"x":[1,2]}},{"id":2,"isActive":"yes"}],"nextCursor":null,"totalItems":2,"truncated":false}`
	if string(out) != want {
		t.Errorf("reply %s\nwant  %s", out, want)
	}
	answer = `{"data":[{"id":"1"},null],"pagination":{"nextCursor":null,"totalItems":2}}`
	if _, herr := run(t, envFor(t, srv.URL), ActionAgentsList, `{}`); herr == nil || herr.Code != CodeUpstream || herr.Retryable {
		t.Errorf("a page with a null agent: %+v, want a non-retryable upstream error", herr)
	}
}
