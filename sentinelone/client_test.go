package sentinelone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewValidation(t *testing.T) {
	good := Config{BaseURL: "https://usea1.sentinelone.net", Token: testToken}
	tests := []struct {
		name     string
		edit     func(*Config)
		wantBase string // "" means New must fail
	}{
		{"console root", func(*Config) {}, "https://usea1.sentinelone.net/web/api/v2.1"},
		{"trailing slash", func(c *Config) { c.BaseURL += "/" }, "https://usea1.sentinelone.net/web/api/v2.1"},
		{"API prefix given", func(c *Config) { c.BaseURL += "/web/api/v2.1/" }, "https://usea1.sentinelone.net/web/api/v2.1"},
		{"proxy prefix kept", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/s1" }, "http://127.0.0.1:8080/s1/web/api/v2.1"},
		{"token with newline trimmed", func(c *Config) { c.Token += "\n" }, "https://usea1.sentinelone.net/web/api/v2.1"},
		{"no scheme", func(c *Config) { c.BaseURL = "usea1.sentinelone.net" }, ""},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://usea1.sentinelone.net" }, ""},
		{"no host", func(c *Config) { c.BaseURL = "https://" }, ""},
		{"user info", func(c *Config) { c.BaseURL = "https://u:p@usea1.sentinelone.net" }, ""},
		{"query", func(c *Config) { c.BaseURL += "?x=1" }, ""},
		{"empty", func(c *Config) { c.BaseURL = "" }, ""},
		{"no token", func(c *Config) { c.Token = " " }, ""},
		{"token with space", func(c *Config) { c.Token = "a b" }, ""},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, ""},
		{"wait min above max", func(c *Config) { c.RetryWaitMin, c.RetryWaitMax = 2e9, 1e9 }, ""},
		{"negative rate", func(c *Config) { c.RatePerSecond = -1 }, ""},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		c, err := New(cfg)
		switch {
		case tt.wantBase == "" && (err == nil || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("%s: err = %v, want ErrInvalidConfig", tt.name, err)
		case tt.wantBase != "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantBase != "" && c.base != tt.wantBase:
			t.Errorf("%s: base %q, want %q", tt.name, c.base, tt.wantBase)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error holds the token", tt.name)
		}
	}
	c, _ := New(good)
	if c.rc.RetryMax != DefaultRetryMax || c.timeout != DefaultTimeout || limitOf(c) != [2]float64{DefaultRatePerSecond, DefaultRateBurst} ||
		c.transport.(*http.Transport).MaxIdleConnsPerHost != DefaultMaxConns {
		t.Errorf("defaults not applied")
	}
	for _, opt := range []Option{WithObserver(nil), WithTransport(nil), WithCheckRetry(nil), WithBackoff(nil), WithLimiter(nil)} {
		if _, err := New(good, opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("nil option: %v", err)
		}
	}
}

func TestRequestHeaders(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodGet {
			reply(w, 200, okInfo)
			return
		}
		reply(w, 200, okAffected)
	})
	cfg := fastConfig(con.URL)
	cfg.UserAgent = "s1bridge-test/1"
	c := newTestClient(t, cfg)
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConnectAgents(t.Context(), []string{"100000000000000001"}); err != nil {
		t.Fatal(err)
	}
	reqs := con.requests()
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); got != "ApiToken "+testToken {
			t.Errorf("%s Authorization = %q", r.Method, got)
		}
		if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != "s1bridge-test/1" {
			t.Errorf("%s headers %v", r.Method, r.Header)
		}
	}
	if reqs[0].Path != "/web/api/v2.1/system/info" || reqs[0].Header.Get("Content-Type") != "" {
		t.Errorf("GET %s Content-Type %q", reqs[0].Path, reqs[0].Header.Get("Content-Type"))
	}
	if reqs[1].Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST Content-Type %q", reqs[1].Header.Get("Content-Type"))
	}
}

// TestLogsNeverCarryToken logs at debug level through a failing and a
// succeeding call, retries included, and searches the output for the token.
func TestLogsNeverCarryToken(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == APIPrefix+PathSystemInfo && n == 0:
			reply(w, 503, `{"errors":[{"title":"echo `+r.Header.Get("Authorization")+`"}]}`)
		case r.URL.Path == APIPrefix+PathSystemInfo:
			reply(w, 200, okInfo)
		default:
			reply(w, 401, `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":"`+r.Header.Get("Authorization")+`"}]}`)
		}
	})
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := fastConfig(con.URL)
	cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, cfg)
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := c.ListThreats(t.Context(), ThreatFilter{Query: "x"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	for _, want := range []string{"sentinelone attempt", "sentinelone retry", "sentinelone call failed", "rqid=rqid-test-1", "attempt=2", "path=/threats", "status=503"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testToken) || strings.Contains(err.Error(), testToken) {
		t.Errorf("token leaked:\nlogs: %s\nerr: %s", logs, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestObserverRequestDone(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 0 {
			reply(w, 500, `{}`)
			return
		}
		reply(w, 404, `{"errors":[{"code":4040010,"title":"Requested resource was not found"}]}`)
	})
	var mu sync.Mutex
	var events []RequestEvent
	c := newTestClient(t, fastConfig(con.URL), WithObserver(ObserverFuncs{OnRequestDone: func(e RequestEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}}))
	_, err := c.ListGroups(t.Context(), GroupFilter{})
	if len(events) != 1 {
		t.Fatalf("%d events", len(events))
	}
	e := events[0]
	if e.Method != "GET" || e.Path != PathGroups || e.Status != 404 || e.Attempts != 2 || e.Duration <= 0 || e.Err != err || err == nil {
		t.Errorf("event %+v, err %v", e, err)
	}
}

// TestConcurrentUse shares one Client between goroutines doing different
// calls, for the race detector.
func TestConcurrentUse(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case n%7 == 3:
			reply(w, 429, `{}`)
		case r.Method == http.MethodPost:
			reply(w, 200, okAffected)
		case r.URL.Path == APIPrefix+PathSystemInfo:
			reply(w, 200, okInfo)
		default:
			reply(w, 200, `{"data":[{"id":"1"}],"pagination":{"nextCursor":null,"totalItems":1}}`)
		}
	})
	cfg := fastConfig(con.URL)
	cfg.RetryMax = 10
	c := newTestClient(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 10 {
				var err error
				switch i % 3 {
				case 0:
					_, err = c.SystemInfo(ctx)
				case 1:
					_, err = c.ListGroups(ctx, GroupFilter{Limit: 1})
				case 2:
					_, err = c.ConnectAgents(ctx, []string{"100000000000000001"})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// TestRecorder: a context's recorder sees the calls made with that context
// only, each with its final status and SentinelOne's X-RQID; the client's
// Observer still sees every call.
func TestRecorder(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, n int) {
		body := okInfo
		if r.Method == http.MethodPost {
			body = okAffected
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderRequestID, fmt.Sprintf("rq-%d", n))
		w.WriteHeader(200)
		_, _ = io.WriteString(w, body)
	})
	var observed atomic.Int32
	c := newTestClient(t, fastConfig(con.URL), WithObserver(ObserverFuncs{OnRequestDone: func(RequestEvent) { observed.Add(1) }}))
	var mine []RequestEvent
	ctx := WithRecorder(t.Context(), func(e RequestEvent) { mine = append(mine, e) })
	if _, err := c.SystemInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisconnectAgents(ctx, []string{"1555480684406604929"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SystemInfo(t.Context()); err != nil { // not recorded
		t.Fatal(err)
	}
	if len(mine) != 2 || observed.Load() != 3 {
		t.Fatalf("recorded %d calls, observed %d; want 2 and 3", len(mine), observed.Load())
	}
	if e := mine[0]; e.Method != http.MethodGet || e.Path != PathSystemInfo || e.Status != 200 || e.RequestID != "rq-0" {
		t.Errorf("first call recorded as %+v", e)
	}
	if e := mine[1]; e.Method != http.MethodPost || e.Status != 200 || e.RequestID != "rq-1" || e.Err != nil {
		t.Errorf("second call recorded as %+v", e)
	}
}
