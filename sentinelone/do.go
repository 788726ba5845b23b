package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// One call, from the typed method down to retryablehttp and back: do builds
// the request, retryablehttp runs the attempts through attemptTransport
// (transport.go), and the hooks below keep the per-call state that logs,
// Observer events and errors are made of.

// call is the state of one client call across its attempts. Attempts run one
// after another on the caller's goroutine, but the mutex keeps the race
// detector and future transports honest.
type call struct {
	method, path string // path is the template
	// readOnly marks a POST that only reads (a GraphQL query): the retry
	// policy is asked about it as if it were a GET, since repeating it
	// cannot change anything.
	readOnly bool
	// secrets are values of this call's body that must never show in a
	// log, an error or an Observer event (a fetch-file password), besides
	// the API token the client always redacts.
	secrets []string

	mu       sync.Mutex
	attempts int
	lastEnd  time.Time
	lastCode int
	lastErr  error
	body     []byte
	bodyRead bool
	rqid     string // X-RQID of the final answer
	// wait is the wait before the next attempt, chosen by retryPolicy
	// after an answer; waitSet says it is there for waitBefore.
	wait    time.Duration
	waitSet bool
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	cs, _ := ctx.Value(callKey{}).(*call)
	if cs == nil {
		cs = &call{method: "?", path: "?"}
	}
	return cs
}

// do sends one call: method to APIPrefix+path (already expanded; tmpl is its
// template), with q as the query and in, when non-nil, as the JSON body. On a
// 2xx answer it passes the body to decode; a decode failure becomes a
// *MalformedResponseError.
func (c *Client) do(ctx context.Context, method, tmpl, path string, q url.Values, in any, decode func([]byte) error) error {
	return c.doCall(ctx, &call{method: method, path: tmpl}, path, q, in, decode)
}

// doSecret is do for a body that carries secrets: each is redacted, as the
// token is, from everything the call logs, reports or returns.
func (c *Client) doSecret(ctx context.Context, method, tmpl, path string, q url.Values, in any, decode func([]byte) error, secrets []string) error {
	return c.doCall(ctx, &call{method: method, path: tmpl, secrets: secretForms(secrets)}, path, q, in, decode)
}

// doCall is do for a call the caller has set up (a read-only POST, a body
// with secrets), so that it can read the call's state (the answer's request
// id) afterwards.
func (c *Client) doCall(ctx context.Context, cs *call, path string, q url.Values, in any, decode func([]byte) error) error {
	start := time.Now()
	status, err := c.send(context.WithValue(ctx, callKey{}, cs), cs, path, q, in, decode)
	cs.mu.Lock()
	attempts, rqid := cs.attempts, cs.rqid
	cs.mu.Unlock()
	ev := RequestEvent{Method: cs.method, Path: cs.path, Status: status, Attempts: attempts, Duration: time.Since(start), Err: err, RequestID: rqid}
	c.obs.RequestDone(ev)
	if rec := recorderFrom(ctx); rec != nil {
		rec(ev)
	}
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "sentinelone call failed", slog.String("method", cs.method), slog.String("path", cs.path),
			slog.Int("status", status), slog.Int("attempts", attempts), slog.Duration("duration", ev.Duration), slog.String("error", c.redactCall(cs, err.Error())))
	}
	return err
}

func (c *Client) send(ctx context.Context, cs *call, path string, q url.Values, in any, decode func([]byte) error) (int, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body any
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%w: encoding %s body: %v", ErrInvalidArgument, cs.path, err)
		}
		body = b
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, cs.method, u, body)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s: %v", ErrInvalidArgument, cs.method, cs.path, c.redactCall(cs, err.Error()))
	}
	req.Header.Set(HeaderAuthorization, AuthScheme+" "+c.token)
	req.Header.Set(HeaderAccept, ContentTypeJSON)
	req.Header.Set(HeaderUserAgent, c.userAgent)
	if in != nil {
		req.Header.Set(HeaderContentType, ContentTypeJSON)
	}
	if tc, ok := traceFrom(ctx); ok {
		req.Header.Set(HeaderTraceParent, tc.parent)
		if tc.state != "" {
			req.Header.Set(HeaderTraceState, tc.state)
		}
	}
	// Read the final answer's body inside the retry loop, so that a GET
	// whose body breaks off is retried like any other transport failure.
	req.SetResponseHandler(func(resp *http.Response) error { return cs.readBody(resp) })

	resp, err := c.rc.Do(req)
	cs.mu.Lock()
	attempts := cs.attempts
	cs.mu.Unlock()
	if resp == nil {
		return 0, &RequestError{Method: cs.method, Path: cs.path, Attempts: attempts, Err: err, kind: requestKind(err), msg: c.redactCall(cs, fmt.Sprint(err))}
	}
	defer resp.Body.Close()
	rqid := resp.Header.Get(HeaderRequestID)
	cs.mu.Lock()
	cs.rqid = rqid
	cs.mu.Unlock()
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if err == nil {
		// Answers that exhausted the retries (429, 5xx) were not read yet.
		err = cs.readBody(resp)
	}
	if err != nil {
		if kind := requestKind(err); ok && kind != ErrTimeout && kind != nil {
			return resp.StatusCode, &MalformedResponseError{Method: cs.method, Path: cs.path, StatusCode: resp.StatusCode, RequestID: rqid, Err: err}
		}
		if ok || ctx.Err() != nil {
			return resp.StatusCode, &RequestError{Method: cs.method, Path: cs.path, Attempts: attempts, Err: err, kind: requestKind(err), msg: c.redactCall(cs, err.Error())}
		}
		// An error answer whose body broke off is still an error answer.
	}
	if !ok {
		return resp.StatusCode, newAPIError(cs.method, cs.path, resp, cs.body, attempts, func(s string) string { return c.redactCall(cs, s) })
	}
	if decode != nil {
		if err := decode(cs.body); err != nil {
			return resp.StatusCode, &MalformedResponseError{Method: cs.method, Path: cs.path, StatusCode: resp.StatusCode, RequestID: rqid, Err: err}
		}
	}
	return resp.StatusCode, nil
}

// readBody reads and closes resp's body once, keeping it in cs.
func (cs *call) readBody(resp *http.Response) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.bodyRead {
		return nil
	}
	limit := maxResponseBytes
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		limit = errorBodyLimit
	}
	b, err := readAll(io.LimitReader(resp.Body, limit+1), resp.ContentLength, limit)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if int64(len(b)) > limit {
		if limit == errorBodyLimit {
			b = b[:limit] // an error page only needs its start
		} else {
			return fmt.Errorf("body exceeds %d bytes", limit)
		}
	}
	cs.body, cs.bodyRead = b, true
	return nil
}

// retryPolicy adapts c.checkRetry to retryablehttp and remembers why an
// attempt failed for the Retry event.
func (c *Client) retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	cs := callFrom(ctx)
	method := cs.method
	if cs.readOnly {
		method = http.MethodGet
	}
	retry, cerr := c.checkRetry(ctx, method, resp, err)
	if retry && resp != nil {
		// Choose the wait now. When the next attempt could not start before
		// the deadline (a 429 whose Retry-After is longer than the time
		// left), return this answer at once: sleeping until the deadline
		// would only turn SentinelOne's answer into a timeout.
		cs.mu.Lock()
		n := cs.attempts
		cs.mu.Unlock()
		wait := c.backoff(c.rc.RetryWaitMin, c.rc.RetryWaitMax, n-1, resp)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return false, nil
		}
		cs.mu.Lock()
		cs.wait, cs.waitSet = wait, true
		cs.mu.Unlock()
	}
	if retry {
		cs.mu.Lock()
		cs.lastEnd, cs.lastErr, cs.lastCode = time.Now(), err, 0
		if resp != nil {
			cs.lastCode = resp.StatusCode
		}
		// The retried answer's body is not the final one.
		cs.body, cs.bodyRead = nil, false
		cs.mu.Unlock()
	}
	return retry, cerr
}

// waitBefore is the Backoff retryablehttp runs: the wait retryPolicy chose
// after an answer, or c.backoff's after a failure without one.
func (c *Client) waitBefore(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		cs := callFrom(resp.Request.Context())
		cs.mu.Lock()
		wait, ok := cs.wait, cs.waitSet
		cs.waitSet = false
		cs.mu.Unlock()
		if ok {
			return wait
		}
	}
	return c.backoff(min, max, attempt, resp)
}

// beforeAttempt runs before every attempt; attempt is 0 for the first.
func (c *Client) beforeAttempt(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if attempt == 0 {
		return
	}
	cs := callFrom(req.Context())
	cs.mu.Lock()
	ev := RetryEvent{Method: cs.method, Path: cs.path, Attempt: attempt + 1, Wait: time.Since(cs.lastEnd), Status: cs.lastCode, Err: cs.lastErr}
	cs.mu.Unlock()
	attrs := []slog.Attr{slog.String("method", ev.Method), slog.String("path", ev.Path), slog.Int("attempt", ev.Attempt),
		slog.Duration("wait", ev.Wait), slog.Int("status", ev.Status)}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", c.redactCall(cs, ev.Err.Error())))
	}
	c.log.LogAttrs(req.Context(), slog.LevelDebug, "sentinelone retry", attrs...)
	c.obs.Retry(ev)
}

// decodeData decodes the "data" member of a JSON envelope into v.
func decodeData(body []byte, v any) error {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return err
	}
	if len(bytes.TrimSpace(env.Data)) == 0 || isNull(env.Data) {
		return errors.New("response has no data member")
	}
	return json.Unmarshal(env.Data, v)
}

// readAll is io.ReadAll reading into one buffer of the announced size when
// there is one (at most limit): io.ReadAll starts at 512 bytes and doubles,
// which for a 4 MB page of threats allocates and copies twice the page.
func readAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 || size > limit {
		return io.ReadAll(r)
	}
	// One more byte than announced, so that the read which finds the end
	// does not have to grow the buffer.
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			// Longer than announced: let append grow it.
			b = append(b, 0)[:len(b)]
		}
	}
}
