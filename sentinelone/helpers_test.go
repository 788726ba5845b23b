package sentinelone

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// testToken is recognisable so tests can search for it in logs and errors.
const testToken = "tok-SECRET-5e3c1d9a7b"

// request is what a test console saw.
type request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// console is an httptest server that records requests and answers with
// handle(w, r, n), n counting requests from 0.
type console struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newConsole(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *console {
	t.Helper()
	c := &console{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		c.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *console) requests() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]request(nil), c.reqs...)
}

// reply writes a JSON answer with an X-RQID header.
func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderRequestID, "rqid-test-1")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// fastConfig is a Config for tests: millisecond retry waits and no
// effective rate limit.
func fastConfig(baseURL string) Config {
	return Config{
		BaseURL:       baseURL,
		Token:         testToken,
		Timeout:       5 * time.Second,
		RetryWaitMin:  time.Millisecond,
		RetryWaitMax:  5 * time.Millisecond,
		RatePerSecond: 1e6,
		RateBurst:     1e6,
	}
}

func newTestClient(t testing.TB, cfg Config, opts ...Option) *Client {
	t.Helper()
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
