package sentinelone

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func intp(v int) *int { return &v }

func TestHashVerdict(t *testing.T) {
	const hash = "3395856ce81f2b7382dee72602f798b642f14140"
	notFound := `{"errors":[{"code":4040010,"title":"Requested resource was not found"}]}`
	tests := []struct {
		name       string
		verdict    func(http.ResponseWriter) // answer of /verdict
		reputation func(http.ResponseWriter) // answer of /reputation
		want       *HashVerdict
		wantErr    error
		wantPaths  int
	}{
		{"verdict answers", ok(`{"data":{"verdict":"malicious"}}`), nil, &HashVerdict{Verdict: HashMalicious}, nil, 1},
		{"verdict empty", ok(`{"data":{}}`), nil, &HashVerdict{Verdict: HashUnknown}, nil, 1},
		{"legacy rank string", func(w http.ResponseWriter) { reply(w, 404, notFound) }, ok(`{"data":{"rank":"7"}}`),
			&HashVerdict{Verdict: HashMalicious, Rank: intp(7), Legacy: true}, nil, 2},
		{"legacy rank 3", func(w http.ResponseWriter) { reply(w, 404, "404 page not found") }, ok(`{"data":{"rank":"3"}}`),
			&HashVerdict{Verdict: HashNonMalicious, Rank: intp(3), Legacy: true}, nil, 2},
		{"legacy rank 0", func(w http.ResponseWriter) { reply(w, 404, notFound) }, ok(`{"data":{"rank":"0"}}`),
			&HashVerdict{Verdict: HashUnknown, Rank: intp(0), Legacy: true}, nil, 2},
		{"legacy unknown hash", func(w http.ResponseWriter) { reply(w, 404, notFound) }, ok(`{"data":{}}`),
			&HashVerdict{Verdict: HashUnknown, Legacy: true}, nil, 2},
		{"legacy rank not a number", func(w http.ResponseWriter) { reply(w, 404, notFound) }, ok(`{"data":{"rank":"high"}}`), nil, ErrMalformedResponse, 2},
		{"both 404", func(w http.ResponseWriter) { reply(w, 404, notFound) }, func(w http.ResponseWriter) { reply(w, 404, notFound) }, nil, ErrNotFound, 2},
		{"401 does not fall back", func(w http.ResponseWriter) { reply(w, 401, `{}`) }, ok(`{"data":{"rank":"7"}}`), nil, ErrUnauthorized, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				switch r.URL.Path {
				case APIPrefix + "/hashes/" + hash + "/verdict":
					tt.verdict(w)
				case APIPrefix + "/hashes/" + hash + "/reputation":
					tt.reputation(w)
				default:
					reply(w, 500, `{}`)
				}
			})
			got, err := newTestClient(t, fastConfig(con.URL)).HashVerdict(t.Context(), " "+strings.ToUpper(hash)+" ")
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && (got.Verdict != tt.want.Verdict || got.Legacy != tt.want.Legacy ||
				(got.Rank == nil) != (tt.want.Rank == nil) || (got.Rank != nil && *got.Rank != *tt.want.Rank)) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if n := len(con.requests()); n != tt.wantPaths {
				t.Errorf("%d requests, want %d", n, tt.wantPaths)
			}
		})
	}
	c := newTestClient(t, fastConfig("http://127.0.0.1:1"))
	for _, bad := range []string{"", "../../agents", "xyz", "abc/def"} {
		if _, err := c.HashVerdict(t.Context(), bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("HashVerdict(%q) = %v", bad, err)
		}
	}
}

// TestMutationBodies checks the exact JSON each mutating call sends.
func TestMutationBodies(t *testing.T) {
	ids := []string{"100000000000000001", "100000000000000002"}
	tests := []struct {
		name   string
		answer string
		call   func(context.Context, *Client) (any, error)
		method string
		path   string
		body   string
		want   any
	}{
		{"connect", okAffected, func(ctx context.Context, c *Client) (any, error) { return c.ConnectAgents(ctx, ids) },
			"POST", PathAgentsConnect, `{"filter":{"ids":["100000000000000001","100000000000000002"]},"data":{}}`, 1},
		{"disconnect", okAffected, func(ctx context.Context, c *Client) (any, error) { return c.DisconnectAgents(ctx, ids[:1]) },
			"POST", PathAgentsDisconnect, `{"filter":{"ids":["100000000000000001"]},"data":{}}`, 1},
		{"threat incident with verdict",
			`{"data":{"affected":1,"details":[{"threatId":"100000000000000001","result":"updated","analystVerdict":"updated"}]},"errors":null}`,
			func(ctx context.Context, c *Client) (any, error) {
				r, err := c.UpdateThreatIncident(ctx, ids[:1], "Resolved", "TRUE_POSITIVE")
				return string(r.Details), err
			},
			"POST", PathThreatIncident, `{"filter":{"ids":["100000000000000001"]},"data":{"incidentStatus":"resolved","analystVerdict":"true_positive"}}`,
			`[{"threatId":"100000000000000001","result":"updated","analystVerdict":"updated"}]`},
		{"threat incident alone", `{"data":{"affected":0}}`,
			func(ctx context.Context, c *Client) (any, error) {
				r, err := c.UpdateThreatIncident(ctx, ids[:1], "in_progress", "")
				return r.Affected, err
			},
			"POST", PathThreatIncident, `{"filter":{"ids":["100000000000000001"]},"data":{"incidentStatus":"in_progress"}}`, 0},
		{"threat verdict", `{"data":{"affected":2}}`,
			func(ctx context.Context, c *Client) (any, error) {
				r, err := c.UpdateThreatVerdict(ctx, ids, "false positive")
				return r.Affected, err
			},
			"POST", PathThreatVerdict, `{"filter":{"ids":["100000000000000001","100000000000000002"]},"data":{"analystVerdict":"false_positive"}}`, 2},
		{"alert verdict", okAffected, func(ctx context.Context, c *Client) (any, error) {
			return c.UpdateAlertVerdict(ctx, ids[:1], "True positive")
		},
			"POST", PathAlertVerdict, `{"filter":{"ids":["100000000000000001"]},"data":{"analystVerdict":"true_positive"}}`, 1},
		{"alert incident", okAffected, func(ctx context.Context, c *Client) (any, error) {
			return c.UpdateAlertIncident(ctx, ids[:1], "IN_PROGRESS")
		},
			"POST", PathAlertIncident, `{"filter":{"ids":["100000000000000001"]},"data":{"incidentStatus":"in_progress"}}`, 1},
		{"delete restrictions", `{"data":{"affected":2},"errors":[{}]}`,
			func(ctx context.Context, c *Client) (any, error) { return c.DeleteRestrictions(ctx, ids) },
			"DELETE", PathRestrictions, `{"data":{"ids":["100000000000000001","100000000000000002"],"type":"black_hash"}}`, 2},
		{"create restriction global",
			`{"data":[{"id":"1845678901234567890","value":"3395856ce81f2b7382dee72602f798b642f14141","type":"black_hash","osType":"windows","scope":{"tenant":true}}],"errors":null}`,
			func(ctx context.Context, c *Client) (any, error) {
				r, err := c.CreateRestriction(ctx, NewRestriction{Value: "3395856ce81f2b7382dee72602f798b642f14141", OSType: "windows",
					Description: "SOAR block", Source: "s1bridge", Scope: Scope{Tenant: true}})
				if err != nil || len(r) != 1 {
					return nil, err
				}
				return r[0].ID + " " + r[0].OSType, nil
			},
			"POST", PathRestrictions,
			`{"filter":{"tenant":true},"data":{"type":"black_hash","value":"3395856ce81f2b7382dee72602f798b642f14141","osType":"windows","description":"SOAR block","source":"s1bridge"}}`,
			"1845678901234567890 windows"},
		{"create restriction for sites with sha256", `{"data":[]}`,
			func(ctx context.Context, c *Client) (any, error) {
				r, err := c.CreateRestriction(ctx, NewRestriction{Value: "aa", SHA256Value: "bb", OSType: "MacOS", Scope: Scope{SiteIDs: ids[:1]}})
				return len(r), err
			},
			"POST", PathRestrictions, `{"filter":{"siteIds":["100000000000000001"]},"data":{"type":"black_hash","value":"aa","sha256Value":"bb","osType":"macos"}}`, 0},
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
			if r.Method != tt.method || r.Path != APIPrefix+tt.path || !sameJSON(t, r.Body, []byte(tt.body)) {
				t.Errorf("sent %s %s %s\nwant %s %s %s", r.Method, r.Path, r.Body, tt.method, tt.path, tt.body)
			}
		})
	}
}

// TestMutationsRefused checks that a call that would act on everything in
// scope, or with a wrong value, never leaves the client.
func TestMutationsRefused(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, okAffected) })
	c := newTestClient(t, fastConfig(con.URL))
	ctx := t.Context()
	id := []string{"100000000000000001"}
	many := make([]string, maxIDs+1)
	for i := range many {
		many[i] = "1"
	}
	calls := map[string]func() error{
		"connect nil":            func() error { _, err := c.ConnectAgents(ctx, nil); return err },
		"connect empty":          func() error { _, err := c.ConnectAgents(ctx, []string{}); return err },
		"disconnect nil":         func() error { _, err := c.DisconnectAgents(ctx, nil); return err },
		"disconnect empty id":    func() error { _, err := c.DisconnectAgents(ctx, []string{""}); return err },
		"disconnect too many":    func() error { _, err := c.DisconnectAgents(ctx, many); return err },
		"threat incident no ids": func() error { _, err := c.UpdateThreatIncident(ctx, nil, "resolved", ""); return err },
		"threat incident bad":    func() error { _, err := c.UpdateThreatIncident(ctx, id, "closed", ""); return err },
		"threat incident bad v":  func() error { _, err := c.UpdateThreatIncident(ctx, id, "resolved", "benign"); return err },
		"threat verdict no ids":  func() error { _, err := c.UpdateThreatVerdict(ctx, nil, "suspicious"); return err },
		"threat verdict empty":   func() error { _, err := c.UpdateThreatVerdict(ctx, id, ""); return err },
		"alert verdict no ids":   func() error { _, err := c.UpdateAlertVerdict(ctx, nil, "suspicious"); return err },
		"alert incident bad":     func() error { _, err := c.UpdateAlertIncident(ctx, id, "done"); return err },
		"delete no ids":          func() error { _, err := c.DeleteRestrictions(ctx, nil); return err },
		"create no scope": func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{Value: "aa", OSType: "linux"})
			return err
		},
		"create both scopes": func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{Value: "aa", OSType: "linux", Scope: Scope{Tenant: true, SiteIDs: id}})
			return err
		},
		"create bad os": func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{Value: "aa", OSType: "solaris", Scope: Scope{Tenant: true}})
			return err
		},
		"create no value": func() error {
			_, err := c.CreateRestriction(ctx, NewRestriction{OSType: "linux", Scope: Scope{Tenant: true}})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := len(con.requests()); n != 0 {
		t.Errorf("%d requests left the client", n)
	}
}

func TestCreateRestrictionAlreadyExists(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 400, `{"errors":[{"code":4000030,"title":"Already Exists Error","detail":"Hash already exists"}]}`)
	})
	_, err := newTestClient(t, fastConfig(con.URL)).CreateRestriction(t.Context(),
		NewRestriction{Value: "aa", OSType: "linux", Scope: Scope{AccountIDs: []string{"100000000000000001"}}})
	if !errors.Is(err, ErrAlreadyExists) || !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v, want ErrAlreadyExists", err)
	}
	if n := len(con.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (a 400 is not retried)", n)
	}
}

func TestListRejectsWrongShape(t *testing.T) {
	for _, body := range []string{
		`{"data":{"affected":1}}`,                    // an object where a list is due
		`{"data":[1,2]}`,                             // items that are not objects
		`{"data":[],"pagination":{"nextCursor":42}}`, // a number cursor
		`{"pagination":{"totalItems":0}}`,            // no data
	} {
		con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, body) })
		if _, err := newTestClient(t, fastConfig(con.URL)).ListAgents(t.Context(), AgentFilter{}); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%s: err = %v, want ErrMalformedResponse", body, err)
		}
	}
	// data null is an empty page, errors null/[]/[{}] on 2xx are ignored.
	for _, body := range []string{`{"data":null,"errors":[{}]}`, `{"data":[],"errors":[]}`, `{"data":[],"errors":null}`} {
		con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, body) })
		p, err := newTestClient(t, fastConfig(con.URL)).ListAgents(t.Context(), AgentFilter{})
		if err != nil || len(p.Items) != 0 || p.NextCursor != "" {
			t.Errorf("%s: %+v, %v", body, p, err)
		}
	}
}

func TestThreatRaw(t *testing.T) {
	raw := `{"id":"1","threatInfo":{"incidentStatus":"In progress","detectionEngines":["sentinelone_cloud"],"createdAt":null,"updatedAt":"2024-05-01T08:12:10+00:00"},"unknownField":{"kept":true}}`
	var th Threat
	if err := json.Unmarshal([]byte(raw), &th); err != nil {
		t.Fatal(err)
	}
	if th.IncidentStatus != IncidentInProgress || !th.CreatedAt.IsZero() || th.UpdatedAt.IsZero() || th.DetectionEngines[0].Key != "sentinelone_cloud" {
		t.Errorf("threat %+v", th)
	}
	if b, _ := json.Marshal(th); string(b) != raw {
		t.Errorf("marshal = %s, want the raw bytes", b)
	}
	for _, bad := range []string{`{"id":"1"}`, `{"id":"1","threatInfo":null}`, `{"id":"1","threatInfo":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &th); !errors.Is(err, ErrThreatNotV21) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
