package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestResponseActionBodies checks the exact request of each response action:
// method, path (with the mitigation action as the path spells it) and body,
// targets always an explicit filter.ids and nothing else.
func TestResponseActionBodies(t *testing.T) {
	ids := []string{"100000000000000001", "100000000000000002"}
	mitigation := `{"data":{"affected":2,"details":[{"threatId":"100000000000000001","reports":[{"action":"kill","status":"sent"}],"skipped":[]}]},"errors":null}`
	tests := []struct {
		name   string
		answer string
		call   func(context.Context, *Client) (any, error)
		method string
		path   string
		body   string
		want   any
	}{
		{"kill", mitigation, func(ctx context.Context, c *Client) (any, error) {
			r, err := c.MitigateThreats(ctx, "kill", ids)
			return string(r.Details), err
		}, "POST", "/threats/mitigate/kill", `{"filter":{"ids":["100000000000000001","100000000000000002"]},"data":{}}`,
			`[{"threatId":"100000000000000001","reports":[{"action":"kill","status":"sent"}],"skipped":[]}]`},
		{"un_quarantine", okAffected, func(ctx context.Context, c *Client) (any, error) {
			r, err := c.MitigateThreats(ctx, "un_quarantine", ids[:1])
			return r.Affected, err
		}, "POST", "/threats/mitigate/un-quarantine", `{"filter":{"ids":["100000000000000001"]},"data":{}}`, 1},
		{"rollback path form", okAffected, func(ctx context.Context, c *Client) (any, error) {
			r, err := c.MitigateThreats(ctx, MitigateRollback, ids[:1])
			return r.Affected, err
		}, "POST", "/threats/mitigate/rollback-remediation", `{"filter":{"ids":["100000000000000001"]},"data":{}}`, 1},
		{"remediate any case", okAffected, func(ctx context.Context, c *Client) (any, error) {
			r, err := c.MitigateThreats(ctx, "Remediate", ids[:1])
			return r.Affected, err
		}, "POST", "/threats/mitigate/remediate", `{"filter":{"ids":["100000000000000001"]},"data":{}}`, 1},
		{"note", `{"data":{"affected":2}}`, func(ctx context.Context, c *Client) (any, error) {
			return c.AddThreatNote(ctx, ids, "isolated by SOAR, case 42")
		}, "POST", PathThreatNotes, `{"filter":{"ids":["100000000000000001","100000000000000002"]},"data":{"text":"isolated by SOAR, case 42"}}`, 2},
		{"fetch file", okAffected, func(ctx context.Context, c *Client) (any, error) {
			return c.FetchThreatFile(ctx, ids[0], "Zip-Pass-2024!x")
		}, "POST", PathThreatFetchFile, `{"filter":{"ids":["100000000000000001"]},"data":{"password":"Zip-Pass-2024!x"}}`, 1},
		{"initiate scan", `{"data":{"affected":2}}`, func(ctx context.Context, c *Client) (any, error) { return c.InitiateScan(ctx, ids) },
			"POST", PathAgentsInitiateScan, `{"filter":{"ids":["100000000000000001","100000000000000002"]},"data":{}}`, 2},
		{"abort scan", okAffected, func(ctx context.Context, c *Client) (any, error) { return c.AbortScan(ctx, ids[1:]) },
			"POST", PathAgentsAbortScan, `{"filter":{"ids":["100000000000000002"]},"data":{}}`, 1},
		{"token details", `{"data":{"createdAt":"2024-05-01T08:00:00.000000Z","expiresAt":"2024-11-01T08:00:00.000000Z"},"errors":null}`,
			func(ctx context.Context, c *Client) (any, error) {
				d, err := c.APITokenDetails(ctx)
				return d.Expiry() + " " + d.CreatedAt.Format(time.RFC3339), err
			}, "POST", PathAPITokenDetails, `{"data":{"apiToken":"` + testToken + `"}}`, "2024-11-01T08:00:00Z 2024-05-01T08:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, tt.answer) })
			got, err := tt.call(t.Context(), newTestClient(t, fastConfig(con.URL)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("result %v, want %v", got, tt.want)
			}
			r := con.requests()[0]
			if r.Method != tt.method || r.Path != APIPrefix+tt.path || !sameJSON(t, r.Body, []byte(tt.body)) || len(r.Query) != 0 {
				t.Errorf("sent %s %s?%v %s\nwant %s %s %s", r.Method, r.Path, r.Query, r.Body, tt.method, tt.path, tt.body)
			}
		})
	}
}

// TestCountAgents sends the agent filter without paging or sorting, which
// GET /agents/count does not take, and reads data.total.
func TestCountAgents(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, `{"data":{"total":17}}`) })
	c := newTestClient(t, fastConfig(con.URL))
	active := true
	n, err := c.CountAgents(t.Context(), AgentFilter{IDs: []string{"100000000000000001"}, IsActive: &active, NetworkStatuses: []string{"Disconnected"},
		Limit: 50, Cursor: "abc", SortBy: "id", SortOrder: SortAsc})
	if err != nil || n != 17 {
		t.Fatalf("CountAgents = %d, %v", n, err)
	}
	r := con.requests()[0]
	if r.Method != "GET" || r.Path != APIPrefix+PathAgentsCount || r.Query.Encode() != "ids=100000000000000001&isActive=true&networkStatuses=disconnected" {
		t.Errorf("sent %s %s?%s", r.Method, r.Path, r.Query.Encode())
	}
	for _, body := range []string{`{"data":{}}`, `{"data":{"total":"x"}}`, `{"data":[]}`} {
		con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, body) })
		if _, err := newTestClient(t, fastConfig(con.URL)).CountAgents(t.Context(), AgentFilter{}); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%s: err = %v, want ErrMalformedResponse", body, err)
		}
	}
}

// TestNotesAndTimeline reads both per-threat lists with their filters.
func TestNotesAndTimeline(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if strings.HasSuffix(r.URL.Path, "/notes") {
			reply(w, 200, `{"data":[{"id":"1900000000000000001","text":"looks bad","creator":"SOAR API","creatorId":"1503807937830229037",`+
				`"createdAt":"2024-05-01T08:00:00.000000Z","updatedAt":"2024-05-01T08:00:00.000000Z","edited":false}],"pagination":{"nextCursor":"Yw==","totalItems":2}}`)
			return
		}
		reply(w, 200, `{"data":[{"id":"1900000000000000002","activityType":2011,"threatId":"100000000000000001","createdAt":"2024-05-01T08:00:00.000000Z"}],"pagination":{"nextCursor":null,"totalItems":1}}`)
	})
	c := newTestClient(t, fastConfig(con.URL))
	notes, err := c.ThreatNotes(t.Context(), "100000000000000001", NoteFilter{CreatorLike: "SOAR", SortBy: "createdAt", SortOrder: SortDesc, Limit: 1})
	if err != nil || len(notes.Items) != 1 || notes.NextCursor != "Yw==" || notes.TotalItems != 2 {
		t.Fatalf("notes %+v, %v", notes, err)
	}
	n := notes.Items[0]
	if n.ID != "1900000000000000001" || n.Text != "looks bad" || n.Creator != "SOAR API" || n.CreatorID != "1503807937830229037" || n.CreatedAt.IsZero() || n.Edited {
		t.Errorf("note %+v", n)
	}
	if b, _ := json.Marshal(n); !bytes.Equal(b, n.Raw) {
		t.Errorf("note marshals to %s, not its raw bytes", b)
	}
	tl, err := c.ThreatTimeline(t.Context(), "100000000000000001", TimelineFilter{ActivityTypes: []int{2011, 2001}, SortBy: "createdAt", SortOrder: SortAsc, Limit: 5})
	if err != nil || len(tl.Items) != 1 || tl.Items[0].ActivityType != 2011 || tl.Items[0].ThreatID != "100000000000000001" {
		t.Fatalf("timeline %+v, %v", tl, err)
	}
	reqs := con.requests()
	if reqs[0].Path != APIPrefix+"/threats/100000000000000001/notes" || reqs[0].Query.Encode() != "creator__like=SOAR&limit=1&sortBy=createdAt&sortOrder=desc" {
		t.Errorf("notes request %s?%s", reqs[0].Path, reqs[0].Query.Encode())
	}
	if reqs[1].Path != APIPrefix+"/threats/100000000000000001/timeline" || reqs[1].Query.Encode() != "activityTypes=2011%2C2001&limit=5&sortBy=createdAt&sortOrder=asc" {
		t.Errorf("timeline request %s?%s", reqs[1].Path, reqs[1].Query.Encode())
	}
}

// TestResponseActionsRefused: calls that would widen the selection, put
// anything but digits into a path, or carry a value the console refuses
// never leave the client.
func TestResponseActionsRefused(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, okAffected) })
	c := newTestClient(t, fastConfig(con.URL))
	ctx := t.Context()
	id := []string{"100000000000000001"}
	calls := map[string]func() error{
		"mitigate no ids":            func() error { _, err := c.MitigateThreats(ctx, "kill", nil); return err },
		"mitigate empty id":          func() error { _, err := c.MitigateThreats(ctx, "kill", []string{""}); return err },
		"mitigate network":           func() error { _, err := c.MitigateThreats(ctx, "network_quarantine", id); return err },
		"mitigate network path form": func() error { _, err := c.MitigateThreats(ctx, "network-quarantine", id); return err },
		"mitigate macros":            func() error { _, err := c.MitigateThreats(ctx, "remove_macros", id); return err },
		"mitigate path traversal":    func() error { _, err := c.MitigateThreats(ctx, "../incident", id); return err },
		"mitigate empty action":      func() error { _, err := c.MitigateThreats(ctx, "", id); return err },
		"note no ids":                func() error { _, err := c.AddThreatNote(ctx, nil, "hello"); return err },
		"note too short":             func() error { _, err := c.AddThreatNote(ctx, id, "x"); return err },
		"note too long":              func() error { _, err := c.AddThreatNote(ctx, id, strings.Repeat("é", NoteMaxChars+1)); return err },
		"notes bad id":               func() error { _, err := c.ThreatNotes(ctx, "../agents", NoteFilter{}); return err },
		"notes empty id":             func() error { _, err := c.ThreatNotes(ctx, "", NoteFilter{}); return err },
		"timeline bad id":            func() error { _, err := c.ThreatTimeline(ctx, "1?x=1", TimelineFilter{}); return err },
		"fetch bad id":               func() error { _, err := c.FetchThreatFile(ctx, "1,2", "Zip-Pass-2024!x"); return err },
		"fetch no password":          func() error { _, err := c.FetchThreatFile(ctx, id[0], ""); return err },
		"scan no ids":                func() error { _, err := c.InitiateScan(ctx, nil); return err },
		"abort no ids":               func() error { _, err := c.AbortScan(ctx, []string{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := len(con.requests()); n != 0 {
		t.Errorf("%d requests left the client", n)
	}
	// The note bounds count characters, as the Swagger's minLength and
	// maxLength do: 10000 two-byte characters are accepted.
	if _, err := c.AddThreatNote(ctx, id, strings.Repeat("é", NoteMaxChars)); err != nil {
		t.Errorf("a note of %d characters: %v", NoteMaxChars, err)
	}
}

// TestFetchFilePasswordNeverShown makes the console echo the password, raw
// and JSON-escaped, in every kind of answer, with a retry and a debug
// logger, and looks for it in the logs, the error and the Observer events.
func TestFetchFilePasswordNeverShown(t *testing.T) {
	const password = `Zip"Pass<2024>&\x` // quote, backslash and HTML characters: escaped differently by each encoder
	escaped, _ := json.Marshal(password)
	forms := []string{password, string(escaped[1 : len(escaped)-1]), `Zip\"Pass<2024>&\\x`}
	answers := []func(http.ResponseWriter, []byte){
		func(w http.ResponseWriter, body []byte) {
			reply(w, 400, `{"errors":[{"code":4000010,"title":"Validation Error `+string(escaped[1:len(escaped)-1])+`","detail":"password `+string(escaped[1:len(escaped)-1])+` is weak"}]}`)
		},
		func(w http.ResponseWriter, body []byte) { // a non-JSON page quoting the body as it came
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(500)
			w.Write(append([]byte("cannot process "), body...))
		},
		func(w http.ResponseWriter, _ []byte) { // Python's escaping: only what JSON needs
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, `<html><title>bad `+forms[2]+`</title></html>`)
		},
	}
	for i, answer := range answers {
		var con *console
		con = newConsole(t, func(w http.ResponseWriter, r *http.Request, n int) {
			body := con.requests()[n].Body
			if n == 0 { // a first failure, retried (a 429 is, for every method), quoting the body as Go escaped it
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(429)
				w.Write(append([]byte("busy: "), body...))
				return
			}
			answer(w, body)
		})
		var buf bytes.Buffer
		var mu sync.Mutex
		var events []string
		cfg := fastConfig(con.URL)
		cfg.RetryMax = 1
		cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		obs := ObserverFuncs{
			OnRequestDone: func(e RequestEvent) { mu.Lock(); events = append(events, errText(e.Err)); mu.Unlock() },
			OnRetry:       func(e RetryEvent) { mu.Lock(); events = append(events, errText(e.Err)); mu.Unlock() },
		}
		_, err := newTestClient(t, cfg, WithObserver(obs)).FetchThreatFile(t.Context(), "100000000000000001", password)
		if err == nil {
			t.Fatalf("answer %d: want an error", i)
		}
		var ae *APIError
		fields := ""
		if errors.As(err, &ae) {
			fields = ae.Title + ae.Detail + ae.Body
		}
		mu.Lock()
		all := buf.String() + "\n" + err.Error() + "\n" + fields + "\n" + strings.Join(events, "\n")
		mu.Unlock()
		for _, f := range forms {
			if strings.Contains(all, f) {
				t.Errorf("answer %d: the password (as %q) leaked:\n%s", i, f, all)
			}
		}
		if !strings.Contains(all, Redacted) {
			t.Errorf("answer %d: nothing was redacted, so the echo was not seen:\n%s", i, all)
		}
		if n := len(con.requests()); n != 2 {
			t.Errorf("answer %d: %d requests, want 2 (one retry)", i, n)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestAPITokenDetailsUnknown: a console that cannot say gives an unknown
// expiry and no error; real failures stay errors and never show the token,
// which this call also sends in its body.
func TestAPITokenDetailsUnknown(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answer  func(http.ResponseWriter)
		known   bool
		wantErr error
	}{
		{"older console, router 404", func(w http.ResponseWriter) { w.WriteHeader(404); io.WriteString(w, "404 page not found") }, false, nil},
		{"older console, 405", func(w http.ResponseWriter) { w.WriteHeader(405) }, false, nil},
		{"no expiresAt", func(w http.ResponseWriter) { reply(w, 200, `{"data":{"createdAt":"2024-05-01T08:00:00Z"}}`) }, false, nil},
		{"null expiresAt", func(w http.ResponseWriter) { reply(w, 200, `{"data":{"createdAt":null,"expiresAt":null}}`) }, false, nil},
		{"expiry", func(w http.ResponseWriter) { reply(w, 200, `{"data":{"expiresAt":"2030-01-01T00:00:00+00:00"}}`) }, true, nil},
		{"401", func(w http.ResponseWriter) {
			reply(w, 401, `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":"token `+testToken+` expired"}]}`)
		}, false, ErrUnauthorized},
		{"400 unknown token", func(w http.ResponseWriter) {
			reply(w, 400, `{"errors":[{"code":4000010,"title":"Validation Error","detail":"apiToken `+testToken+` not found"}]}`)
		}, false, ErrBadRequest},
		{"not JSON", func(w http.ResponseWriter) { reply(w, 200, `<html>`) }, false, ErrMalformedResponse},
	} {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { tt.answer(w) })
			d, err := newTestClient(t, fastConfig(con.URL)).APITokenDetails(t.Context())
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d.Known() != tt.known || (d.Expiry() == "unknown") == tt.known {
				t.Errorf("details %+v (expiry %s), known %t", d, d.Expiry(), tt.known)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("the token leaked: %v", err)
			}
		})
	}
}
