package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// TestErrorMapping runs threats.list against consoles that fail in each
// way SentinelOne does and checks the contract's code, retryability,
// upstreamStatus and details, and that no message holds the token.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name       string
		status     int    // SentinelOne's answer; 0: see setup
		body       string // its body
		setup      func(t *testing.T, c *console) *Env
		code       int
		retryable  bool
		upstream   int
		rqid       bool     // details carry the X-RQID
		attempts   int      // details attempts
		inMessage  []string // substrings of the message
		upstreamID int      // SentinelOne error code in details
	}{
		{
			name: "401 token refused", status: 401,
			// A console that echoes the token: the client redacts it.
			body: `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":"token ` + testToken + ` is expired"}]}`,
			code: CodeUpstream, upstream: 401, rqid: true, attempts: 1, upstreamID: 4010010,
			inMessage: []string{"API token", "401", "wrong, expired or revoked"},
		},
		{
			name: "403 permission", status: 403,
			body: `{"errors":[{"code":4030010,"title":"Forbidden","detail":"Missing permission Threats.view for ` + testToken + `"}]}`,
			code: CodeUpstream, upstream: 403, rqid: true, attempts: 1, upstreamID: 4030010,
			inMessage: []string{"lacks the SentinelOne permission", "GET /threats", "Missing permission Threats.view"},
		},
		{
			name: "400 on the caller's input", status: 400,
			body: `{"errors":[{"code":4000010,"title":"Validation Error","detail":"siteIds: 0: Must be greater than or equal to 100000000000000000."}]}`,
			code: CodeInvalid, upstream: 400, rqid: true, attempts: 1, upstreamID: 4000010,
			inMessage: []string{"SentinelOne refused the request", "siteIds: 0: Must be greater than or equal to 100000000000000000."},
		},
		{
			name: "400 with a three-digit code and no detail", status: 400,
			body: `{"errors":[{"code":400,"title":"filter: isLegacy: Unknown field","detail":""}]}`,
			code: CodeInvalid, upstream: 400, rqid: true, attempts: 1, upstreamID: 400,
			inMessage: []string{"filter: isLegacy: Unknown field"},
		},
		{
			name: "404", status: 404, body: `{"errors":[{"code":4040010,"title":"Requested resource was not found","detail":""}]}`,
			code: CodeUpstream, upstream: 404, rqid: true, attempts: 1, upstreamID: 4040010,
			inMessage: []string{"HTTP 404", "Requested resource was not found"},
		},
		{
			name: "429 after retries", status: 429, body: `<html><head><title>429 Too Many Requests</title></head><body>nginx</body></html>`,
			setup: func(t *testing.T, c *console) *Env {
				return c.env(func(cfg *sentinelone.Config) { cfg.RetryMax = 2 })
			},
			code: CodeRateLimited, retryable: true, upstream: 429, rqid: true, attempts: 3,
			inMessage: []string{"rate limiting", "429", "3 attempts"},
		},
		{
			name: "500", status: 500, body: `Server could not process the request.`,
			code: CodeUpstream, retryable: true, upstream: 500, rqid: true, attempts: 1,
			inMessage: []string{"SentinelOne failed on GET /threats (HTTP 500)", "Server could not process the request."},
		},
		{
			name: "503 after retries", status: 503, body: `{"errors":[{"code":5030010,"title":"Service Unavailable","detail":null}]}`,
			setup: func(t *testing.T, c *console) *Env {
				return c.env(func(cfg *sentinelone.Config) { cfg.RetryMax = 1 })
			},
			code: CodeUpstream, retryable: true, upstream: 503, rqid: true, attempts: 2, upstreamID: 5030010,
			inMessage: []string{"HTTP 503"},
		},
		{
			name: "malformed 2xx body", status: 200, body: `{"data":[{"id":"1"`,
			code: CodeUpstream, rqid: true,
			inMessage: []string{"unreadable answer to GET /threats (HTTP 200)"},
		},
		{
			name: "2xx of the wrong shape", status: 200, body: `{"data":{"threats":[]},"pagination":{"nextCursor":null}}`,
			code: CodeUpstream, rqid: true,
			inMessage: []string{"unreadable answer"},
		},
		{
			name: "API v2.0 threats", status: 200, body: `{"data":[{"id":"` + id(1) + `","classification":"Malware","resolved":false}],"pagination":{"nextCursor":null,"totalItems":1}}`,
			code: CodeUpstream, rqid: true,
			inMessage: []string{"unreadable answer", "API v2.0"},
		},
		{
			name: "timeout",
			setup: func(t *testing.T, c *console) *Env {
				c.handle("GET /threats", func(w http.ResponseWriter, r *http.Request, _ call) {
					<-r.Context().Done() // answer only when the client gives up
				})
				return c.env(func(cfg *sentinelone.Config) { cfg.Timeout = 50 * time.Millisecond })
			},
			code: CodeUpstreamTimeout, retryable: true, attempts: 1,
			inMessage: []string{"did not answer GET /threats in time"},
		},
		{
			name: "transport failure",
			setup: func(t *testing.T, c *console) *Env {
				env := c.env()
				c.srv.Close() // connection refused from now on
				return env
			},
			code: CodeUpstream, retryable: true, attempts: 1,
			inMessage: []string{"could not reach SentinelOne for GET /threats", "refused"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			env := (*Env)(nil)
			if tc.setup != nil {
				env = tc.setup(t, c)
			}
			if env == nil {
				env = c.env()
			}
			if tc.status != 0 {
				c.answer("GET /threats", tc.status, tc.body)
			}
			_, err := run(t, env, ActionThreatsList, `{}`)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Code != tc.code || err.Retryable != tc.retryable || err.UpstreamStatus != tc.upstream {
				t.Errorf("code %d retryable %t upstreamStatus %d, want %d %t %d (%v)",
					err.Code, err.Retryable, err.UpstreamStatus, tc.code, tc.retryable, tc.upstream, err)
			}
			for _, s := range tc.inMessage {
				if !strings.Contains(err.Message, s) {
					t.Errorf("message %q lacks %q", err.Message, s)
				}
			}
			d, ok := err.Details.(*UpstreamDetails)
			if !ok {
				t.Fatalf("details %T", err.Details)
			}
			if d.Operation != "GET /threats" || (d.RequestID != "") != tc.rqid || !strings.HasPrefix(d.RequestID, "rqid-") && tc.rqid ||
				d.Attempts != tc.attempts || d.UpstreamCode != tc.upstreamID {
				t.Errorf("details %+v", d)
			}
			// Nothing a caller sees holds the token.
			if seen := asJSON(err.Data()) + err.Message; strings.Contains(seen, testToken) {
				t.Errorf("the token leaked: %s", seen)
			}
		})
	}
}

func TestFromUpstream(t *testing.T) {
	if FromUpstream(nil) != nil || FromUpstream(errors.New("other")) != nil || FromUpstream(context.Canceled) != nil {
		t.Error("FromUpstream translated an error that is not the client's")
	}
	e := FromUpstream(fmt.Errorf("%w: no agent ids", sentinelone.ErrInvalidArgument))
	if e == nil || e.Code != CodeInvalid || e.Message != "request: no agent ids" {
		t.Errorf("invalid argument: %+v", e)
	}
	// AsError: an *Error is kept, the client's are translated, anything
	// else is a 500 that hides its cause.
	if got := AsError(Invalid("x", "y")); got.Code != CodeInvalid {
		t.Errorf("AsError(Invalid) = %+v", got)
	}
	if got := AsError(errors.New("secret detail")); got.Code != CodeInternal || strings.Contains(got.Message, "secret") {
		t.Errorf("AsError(other) = %+v", got)
	}
}

// TestCancelled: a call cut short by the caller is a retryable 503, not a
// SentinelOne failure.
func TestCancelled(t *testing.T) {
	c := newConsole(t)
	ctx, cancel := context.WithCancel(context.Background())
	c.handle("GET /threats", func(w http.ResponseWriter, r *http.Request, _ call) {
		cancel()
		<-r.Context().Done()
	})
	a, _ := Lookup(ActionThreatsList)
	_, err := a.Handle(ctx, c.env(), []byte(`{}`))
	e := AsError(err)
	if e.Code != CodeUnavailable || !e.Retryable {
		t.Errorf("err %+v", e)
	}
}
