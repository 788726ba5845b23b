package sentinelone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CheckRetry decides whether a failed attempt is tried again, in the manner
// of retryablehttp.CheckRetry plus the request method, which decides whether
// a retry is safe. A POST that only reads (a Unified Alerts GraphQL query) is
// passed as GET: repeating it is as safe as repeating a GET. resp is nil when err reports a failure without an answer;
// both are set when the answer's body could not be read. A non-nil error
// ends the call with that error. It is called on the calling goroutine and
// must be safe for concurrent use by many calls.
type CheckRetry func(ctx context.Context, method string, resp *http.Response, err error) (bool, error)

// Backoff returns how long to wait before retry number attempt+1, in the
// manner of retryablehttp.Backoff. resp is the failed answer, or nil after a
// failure without one.
type Backoff func(min, max time.Duration, attempt int, resp *http.Response) time.Duration

// DefaultCheckRetry is the default retry policy.
//
// It never retries once ctx is done. A GET (or HEAD) is retried on 429, on
// any 5xx but 501, and on any failure without an answer (timeouts included)
// except TLS certificate errors. Any other method mutates the console, and a
// second attempt is only safe when the first provably did not land: it is
// retried on 429 (refused before processing) and on a failure to connect
// (dial error, connection refused, DNS), never after a timeout, a reset or a
// 5xx, where the change may already have been made.
func DefaultCheckRetry(ctx context.Context, method string, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	idempotent := method == http.MethodGet || method == http.MethodHead
	if err != nil {
		if errors.Is(err, ErrRateLimited) || isCertError(err) {
			return false, nil
		}
		if idempotent {
			return true, nil
		}
		return resp == nil && notSent(err), nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return idempotent, nil
	}
	return false, nil
}

// notSent reports whether err proves the request never reached the server:
// the connection could not be opened.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

func isCertError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification)
}

// DefaultBackoff is the default wait policy. After a 429 or 503 carrying
// Retry-After (seconds or an HTTP date) it waits what the server asked,
// capped at max so a console cannot park a caller for an hour. Otherwise
// (including nginx's HTML 429 without the header) it waits min·2^attempt,
// capped at max, with the upper half jittered so that callers refused
// together do not return together.
func DefaultBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := RetryAfter(resp.Header, time.Now()); ok {
			return clamp(d, 0, max)
		}
	}
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// RetryAfter parses the Retry-After header of h as of now: either
// delay-seconds or an HTTP date. A date in the past gives 0. ok is false when
// the header is absent or unparsable.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get(HeaderRetryAfter))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return clamp(at.Sub(now), 0, maxRetryAfter), true
}

// maxRetryAfter bounds a parsed Retry-After so the arithmetic cannot
// overflow; DefaultBackoff caps further at RetryWaitMax.
const maxRetryAfter = 24 * time.Hour

func clamp(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }
