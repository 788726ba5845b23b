package sentinelone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	okInfo     = `{"data":{"version":"23.4"}}`
	okAffected = `{"data":{"affected":1}}`
	html429    = "<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests</h1></center><hr><center>nginx</center></body></html>"
)

// status answers code with an empty JSON error, or html for 429.
func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(code)
			fmt.Fprint(w, html429)
			return
		}
		reply(w, code, fmt.Sprintf(`{"errors":[{"code":%d0010,"title":"status %d","detail":null}]}`, code, code))
	}
}

func ok(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { reply(w, http.StatusOK, body) }
}

func TestRetryPolicy(t *testing.T) {
	getInfo := func(ctx context.Context, c *Client) error { _, err := c.SystemInfo(ctx); return err }
	postConnect := func(ctx context.Context, c *Client) error {
		_, err := c.ConnectAgents(ctx, []string{"100000000000000001"})
		return err
	}
	deleteRestr := func(ctx context.Context, c *Client) error {
		_, err := c.DeleteRestrictions(ctx, []string{"100000000000000001"})
		return err
	}
	tests := []struct {
		name      string
		call      func(context.Context, *Client) error
		answers   []func(http.ResponseWriter) // the last one repeats
		retryMax  int
		wantErr   error
		wantCalls int
	}{
		{"GET 429 html without Retry-After retried", getInfo, []func(http.ResponseWriter){status(429), ok(okInfo)}, 0, nil, 2},
		{"GET 503 retried", getInfo, []func(http.ResponseWriter){status(503), status(500), ok(okInfo)}, 0, nil, 3},
		{"GET 501 not retried", getInfo, []func(http.ResponseWriter){status(501), ok(okInfo)}, 0, ErrServer, 1},
		{"GET 400 not retried", getInfo, []func(http.ResponseWriter){status(400), ok(okInfo)}, 0, ErrBadRequest, 1},
		{"GET 401 not retried", getInfo, []func(http.ResponseWriter){status(401), ok(okInfo)}, 0, ErrUnauthorized, 1},
		{"POST 429 retried", postConnect, []func(http.ResponseWriter){status(429), ok(okAffected)}, 0, nil, 2},
		{"POST 500 not retried", postConnect, []func(http.ResponseWriter){status(500), ok(okAffected)}, 0, ErrServer, 1},
		{"POST 503 not retried", postConnect, []func(http.ResponseWriter){status(503), ok(okAffected)}, 0, ErrServer, 1},
		{"DELETE 502 not retried", deleteRestr, []func(http.ResponseWriter){status(502), ok(okAffected)}, 0, ErrServer, 1},
		{"DELETE 429 retried", deleteRestr, []func(http.ResponseWriter){status(429), ok(okAffected)}, 0, nil, 2},
		{"max retries honoured on GET 500", getInfo, []func(http.ResponseWriter){status(500)}, 2, ErrServer, 3},
		{"max retries honoured on POST 429", postConnect, []func(http.ResponseWriter){status(429)}, 3, ErrRateLimited, 4},
		{"negative RetryMax disables retries", getInfo, []func(http.ResponseWriter){status(503), ok(okInfo)}, -1, ErrServer, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				tt.answers[min(n, len(tt.answers)-1)](w)
			})
			cfg := fastConfig(con.URL)
			cfg.RetryMax = tt.retryMax
			var retries atomic.Int32
			var done RequestEvent
			c := newTestClient(t, cfg, WithObserver(ObserverFuncs{
				OnRetry:       func(RetryEvent) { retries.Add(1) },
				OnRequestDone: func(e RequestEvent) { done = e },
			}))
			err := tt.call(t.Context(), c)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := len(con.requests()); got != tt.wantCalls {
				t.Errorf("console saw %d requests, want %d", got, tt.wantCalls)
			}
			if int(retries.Load()) != tt.wantCalls-1 || done.Attempts != tt.wantCalls {
				t.Errorf("observer: %d retries, %d attempts; want %d, %d", retries.Load(), done.Attempts, tt.wantCalls-1, tt.wantCalls)
			}
			var apiErr *APIError
			if tt.wantErr != nil && errors.As(err, &apiErr) && apiErr.Attempts != tt.wantCalls {
				t.Errorf("APIError.Attempts = %d, want %d", apiErr.Attempts, tt.wantCalls)
			}
		})
	}
}

// TestRetryAfterSeconds waits for real: the console asks for 1 s, far more
// than RetryWaitMax's exponential path would give.
func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 0 {
			w.Header().Set(HeaderRetryAfter, "1")
			status(429)(w)
			return
		}
		reply(w, 200, okInfo)
	})
	cfg := fastConfig(con.URL)
	cfg.RetryWaitMax = 10 * time.Second
	var wait time.Duration
	c := newTestClient(t, cfg, WithObserver(ObserverFuncs{OnRetry: func(e RetryEvent) { wait = e.Wait }}))
	start := time.Now()
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second || el > 5*time.Second {
		t.Errorf("call took %s, want about 1s", el)
	}
	if wait < time.Second {
		t.Errorf("Retry event Wait = %s, want >= 1s", wait)
	}
}

// TestBackoffFromAnswers runs DefaultBackoff on real 429 answers and records
// what it decided instead of sleeping it.
func TestBackoffFromAnswers(t *testing.T) {
	const waitMin, waitMax = 100 * time.Millisecond, time.Minute
	tests := []struct {
		name       string
		retryAfter func() string
		lo, hi     time.Duration
	}{
		{"seconds", func() string { return "7" }, 7 * time.Second, 7 * time.Second},
		{"HTTP date", func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }, 28 * time.Second, 30 * time.Second},
		{"date in the past", func() string { return "Fri, 31 Dec 1999 23:59:59 GMT" }, 0, 0},
		{"capped at RetryWaitMax", func() string { return "3600" }, waitMax, waitMax},
		{"no header (HTML 429)", func() string { return "" }, waitMin / 2, waitMin},
		{"garbage header", func() string { return "soon" }, waitMin / 2, waitMin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 0 {
					if v := tt.retryAfter(); v != "" {
						w.Header().Set(HeaderRetryAfter, v)
					}
					status(429)(w)
					return
				}
				reply(w, 200, okInfo)
			})
			cfg := fastConfig(con.URL)
			cfg.RetryWaitMin, cfg.RetryWaitMax = waitMin, waitMax
			var got []time.Duration
			c := newTestClient(t, cfg, WithBackoff(func(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
				got = append(got, DefaultBackoff(min, max, attempt, resp))
				return 0
			}))
			if _, err := c.SystemInfo(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] < tt.lo || got[0] > tt.hi {
				t.Errorf("backoff = %v, want one in [%s, %s]", got, tt.lo, tt.hi)
			}
		})
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999", maxRetryAfter, true},
		{"Wed, 01 May 2024 10:00:30 GMT", 30 * time.Second, true}, // IMF-fixdate
		{"Wednesday, 01-May-24 10:01:00 GMT", time.Minute, true},  // RFC 850
		{"Wed May  1 10:00:10 2024", 10 * time.Second, true},      // ANSI C
		{"Wed, 01 May 2024 09:00:00 GMT", 0, true},                // past
		{"Wed, 01 May 2025 10:00:00 GMT", maxRetryAfter, true},    // absurd
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set(HeaderRetryAfter, tt.header)
		}
		got, ok := RetryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RetryAfter(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDefaultBackoffExponential(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		for range 50 {
			got := DefaultBackoff(lo, hi, attempt, nil)
			if got < want/2 || got > want {
				t.Fatalf("attempt %d: %s, want in [%s, %s]", attempt, got, want/2, want)
			}
		}
	}
	if got := DefaultBackoff(time.Second, time.Hour, 200, nil); got < 30*time.Minute || got > time.Hour {
		t.Errorf("attempt 200 overflowed: %s", got)
	}
}

func TestDefaultCheckRetry(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	timeout := fmt.Errorf("Post: %w", context.DeadlineExceeded)
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	tests := []struct {
		method string
		resp   *http.Response
		err    error
		want   bool
	}{
		{"GET", resp(429), nil, true},
		{"GET", resp(500), nil, true},
		{"GET", resp(503), nil, true},
		{"GET", resp(501), nil, false},
		{"GET", resp(404), nil, false},
		{"GET", resp(200), nil, false},
		{"GET", nil, refused, true},
		{"GET", nil, reset, true},
		{"GET", nil, timeout, true},
		{"GET", nil, fmt.Errorf("%w: local", ErrRateLimited), false},
		{"POST", resp(429), nil, true},
		{"POST", resp(500), nil, false},
		{"POST", resp(503), nil, false},
		{"POST", nil, refused, true},
		{"POST", nil, reset, false},
		{"POST", nil, timeout, false},
		{"POST", resp(200), errors.New("unexpected EOF"), false},
		{"DELETE", nil, &net.DNSError{Err: "no such host", Name: "x"}, true},
		{"DELETE", resp(502), nil, false},
	}
	for _, tt := range tests {
		got, err := DefaultCheckRetry(context.Background(), tt.method, tt.resp, tt.err)
		if got != tt.want || err != nil {
			t.Errorf("%s %v %v: retry=%v err=%v, want %v", tt.method, tt.resp != nil, tt.err, got, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := DefaultCheckRetry(ctx, "GET", resp(503), nil); got || !errors.Is(err, context.Canceled) {
		t.Errorf("done context: retry=%v err=%v", got, err)
	}
}

// TestConnectionRefusedPostRetried sends a POST to a port nobody listens on;
// the console starts listening there before the retry, which must land once.
func TestConnectionRefusedPostRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		reply(w, 200, okAffected)
	}))
	t.Cleanup(srv.Close)
	var start sync.Once
	var firstErr error
	c := newTestClient(t, fastConfig("http://"+addr), WithObserver(ObserverFuncs{OnRetry: func(e RetryEvent) {
		start.Do(func() {
			firstErr = e.Err
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("re-listen on %s: %v", addr, err)
				return
			}
			srv.Listener = l
			srv.Start()
		})
	}}))
	n, err := c.DisconnectAgents(t.Context(), []string{"100000000000000001"})
	if err != nil || n != 1 {
		t.Fatalf("DisconnectAgents = %d, %v", n, err)
	}
	if !notSent(firstErr) {
		t.Errorf("first attempt failed with %v, want a dial error", firstErr)
	}
	if hits.Load() != 1 {
		t.Errorf("console saw %d requests, want 1", hits.Load())
	}
}

func TestConnectionRefusedExhausted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fastConfig("http://" + addr)
	cfg.RetryMax = 2
	_, err = newTestClient(t, cfg).SystemInfo(t.Context())
	var re *RequestError
	if !errors.Is(err, ErrTransport) || errors.Is(err, ErrTimeout) || !errors.As(err, &re) || re.Attempts != 3 {
		t.Fatalf("err = %v, want ErrTransport after 3 attempts", err)
	}
}

// hangFirst blocks the first request until the client gives up on it.
func hangFirst(t *testing.T, body string) *console {
	return newConsole(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			<-r.Context().Done()
			return
		}
		reply(w, 200, body)
	})
}

func TestTimeoutPostNotRetried(t *testing.T) {
	con := hangFirst(t, okAffected)
	cfg := fastConfig(con.URL)
	cfg.Timeout = 100 * time.Millisecond
	_, err := newTestClient(t, cfg).DisconnectAgents(t.Context(), []string{"100000000000000001"})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want ErrTimeout wrapping context.DeadlineExceeded", err)
	}
	if n := len(con.requests()); n != 1 {
		t.Errorf("console saw %d requests, want 1", n)
	}
}

func TestTimeoutGetRetried(t *testing.T) {
	con := hangFirst(t, okInfo)
	cfg := fastConfig(con.URL)
	cfg.Timeout = 100 * time.Millisecond
	if _, err := newTestClient(t, cfg).SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(con.requests()); n != 2 {
		t.Errorf("console saw %d requests, want 2", n)
	}
}

func TestCallerDeadlineIsTimeout(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := newTestClient(t, fastConfig(con.URL)).SystemInfo(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestCancelStopsBackoff(t *testing.T) {
	served := make(chan struct{}, 1)
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set(HeaderRetryAfter, "3600")
		status(429)(w)
		served <- struct{}{}
	})
	cfg := fastConfig(con.URL)
	cfg.RetryWaitMax = time.Hour
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-served; cancel() }()
	start := time.Now()
	_, err := c.SystemInfo(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v, want context.Canceled only", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("cancel took %s to stop the wait", el)
	}
	if n := len(con.requests()); n != 1 {
		t.Errorf("console saw %d requests, want 1", n)
	}
}

func TestWithCheckRetry(t *testing.T) {
	con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 0 {
			status(400)(w)
			return
		}
		reply(w, 200, okInfo)
	})
	var methods []string
	// A policy that also retries a 400: the console's own answer decides.
	c := newTestClient(t, fastConfig(con.URL), WithCheckRetry(func(ctx context.Context, method string, resp *http.Response, err error) (bool, error) {
		methods = append(methods, method)
		return resp != nil && resp.StatusCode == 400, nil
	}))
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(con.requests()) != 2 || len(methods) == 0 || methods[0] != http.MethodGet {
		t.Errorf("requests %d, policy saw %v", len(con.requests()), methods)
	}
}
