package sentinelone

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// pooledTransport is Go's default transport with a pool sized for
// concurrency: http.DefaultTransport keeps 2 idle connections per host, so
// 64 concurrent callers would open and close connections on almost every
// call (see TestConnectionPool and BenchmarkConnectionPool).
func pooledTransport(maxConns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxConns
	t.MaxIdleConnsPerHost = maxConns
	t.MaxConnsPerHost = maxConns
	return t
}

// attemptTransport runs below retryablehttp, once per attempt: it waits for
// the rate limiter (and tells it of a 429 answer), then applies the per-attempt timeout (so time spent
// queueing for the limiter does not eat into it), and logs the attempt.
//
// It deliberately has no CloseIdleConnections: retryablehttp calls that on
// every failed call, which would empty the pool shared by all callers
// whenever one of them failed. Client.CloseIdleConnections is the way.
type attemptTransport struct{ c *Client }

// CloseIdleConnections closes the connections the Client keeps idle, e.g.
// at shutdown. In-flight calls are not affected and later calls reconnect.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, ctx := t.c, req.Context()
	cs := callFrom(ctx)
	cs.mu.Lock()
	cs.attempts++
	attempt := cs.attempts
	cs.mu.Unlock()

	if err := c.pace(ctx, cs); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	start := time.Now()
	resp, err := c.transport.RoundTrip(req.WithContext(actx))
	// The attempt's record is built only when debug is on: every call to
	// the console passes here.
	var attrs []slog.Attr
	logged := c.log.Enabled(ctx, slog.LevelDebug)
	if logged {
		attrs = []slog.Attr{slog.String("method", cs.method), slog.String("path", cs.path), slog.Int("attempt", attempt),
			slog.Duration("duration", time.Since(start))}
		if tc, ok := traceFrom(ctx); ok {
			attrs = append(attrs, slog.String(HeaderTraceParent, tc.parent))
		}
	}
	if err != nil {
		cancel()
		if logged {
			c.log.LogAttrs(ctx, slog.LevelDebug, "sentinelone attempt", append(attrs, slog.String("error", c.redactCall(cs, err.Error())))...)
		}
		return nil, err
	}
	if logged {
		c.log.LogAttrs(ctx, slog.LevelDebug, "sentinelone attempt", append(attrs,
			slog.Int("status", resp.StatusCode), slog.String("rqid", resp.Header.Get(HeaderRequestID)))...)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.limiter.RateLimited()
	}
	// The timeout covers reading the body too; it ends when the body is closed.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// pace waits for the rate limiter in the call's lane (WithLane). A wait that
// would overrun ctx's deadline is refused at once (ErrRateLimited) rather
// than slept through.
func (c *Client) pace(ctx context.Context, cs *call) error {
	lane := LaneFrom(ctx)
	waited, err := c.limiter.Wait(ctx, lane)
	if err != nil {
		return err
	}
	if waited > 0 {
		c.obs.RateLimitWait(WaitEvent{Method: cs.method, Path: cs.path, Lane: lane, Waited: waited})
	}
	return nil
}
