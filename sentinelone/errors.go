package sentinelone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Match them with errors.Is: an *APIError matches the one
// for its HTTP status, a *RequestError the one for its kind of failure, a
// *MalformedResponseError ErrMalformedResponse.
var (
	// ErrBadRequest matches a 400 answer: SentinelOne rejected the input.
	ErrBadRequest = errors.New("sentinelone: bad request")
	// ErrUnauthorized matches a 401 answer: the API token is wrong or expired.
	ErrUnauthorized = errors.New("sentinelone: unauthorized")
	// ErrForbidden matches a 403 answer: the token lacks a permission.
	ErrForbidden = errors.New("sentinelone: forbidden")
	// ErrNotFound matches a 404 answer.
	ErrNotFound = errors.New("sentinelone: not found")
	// ErrConflict matches a 409 answer.
	ErrConflict = errors.New("sentinelone: conflict")
	// ErrRateLimited matches a 429 answer still failing after the retries,
	// and a call refused locally because waiting for the rate limiter would
	// overrun its deadline.
	ErrRateLimited = errors.New("sentinelone: rate limited")
	// ErrServer matches any 5xx answer.
	ErrServer = errors.New("sentinelone: server error")
	// ErrAlreadyExists matches a 400 answer with code 4000030 ("Already
	// Exists Error"), e.g. a blocklist entry that is already there.
	ErrAlreadyExists = errors.New("sentinelone: already exists")

	// ErrTimeout matches a call that got no complete answer in time: the
	// per-attempt Config.Timeout or the caller's context deadline. Such an
	// error also matches context.DeadlineExceeded when that was the cause.
	ErrTimeout = errors.New("sentinelone: timeout")
	// ErrTransport matches a call that got no HTTP answer for another
	// reason: connection refused or reset, DNS, TLS.
	ErrTransport = errors.New("sentinelone: transport failure")
	// ErrMalformedResponse matches a 2xx answer whose body could not be read
	// or decoded (truncated, not JSON, wrong shape).
	ErrMalformedResponse = errors.New("sentinelone: malformed response")

	// ErrGraphQL matches a Unified Alerts answer (HTTP 200) that carries
	// GraphQL errors: a *GraphQLError.
	ErrGraphQL = errors.New("sentinelone: GraphQL error")
	// ErrGraphQLInput matches a *GraphQLError caused by a value the caller
	// chose (a variable SentinelOne refused: an enum value, an alert id that
	// is not a UUID, a filter field the console does not support, a page
	// size over its ceiling), as opposed to a failure of the console.
	ErrGraphQLInput = errors.New("sentinelone: GraphQL refused the input")
	// ErrUAMUnavailable matches an *APIError with HTTP 404 or 403 on the
	// Unified Alerts GraphQL path: a console without Unified Alert
	// Management, or a token without its View permission. Such an error also
	// matches ErrNotFound or ErrForbidden.
	ErrUAMUnavailable = errors.New("sentinelone: Unified Alerts not available on this console")
	// ErrUAMTriggerRefused matches a *UAMTriggerError: SentinelOne refused a
	// whole alertTriggerActions request (TriggerActionsError).
	ErrUAMTriggerRefused = errors.New("sentinelone: Unified Alerts refused the actions")

	// ErrInvalidArgument matches a call the client refused to send, e.g. a
	// mutating action without ids, which SentinelOne would apply to every
	// object in scope.
	ErrInvalidArgument = errors.New("sentinelone: invalid argument")
	// ErrInvalidConfig matches a Config that New rejects.
	ErrInvalidConfig = errors.New("sentinelone: invalid config")
	// ErrThreatNotV21 matches a threat object without threatInfo: the flat
	// API v2.0 shape, which must not pass for 2.1 (its statuses and
	// timestamps live elsewhere and would decode as empty).
	ErrThreatNotV21 = errors.New("sentinelone: threat is not an API v2.1 object (no threatInfo)")
)

// SentinelOne error codes the client gives meaning to (api-reference.md §1.8).
const (
	CodeValidation    = 4000010
	CodeAlreadyExists = 4000030
	CodeAuthFailed    = 4010010
	CodeNotFound      = 4040010
)

// Limits on what an error keeps of a non-JSON body.
const (
	errorBodyLimit = 64 << 10 // read at most this much of an error body
	errorTextLimit = 512      // keep at most this much text in APIError.Body
)

// APIError is a non-2xx answer from the console. Code, Title and Detail come
// from the first entry of the body's errors[] when the body is JSON; otherwise
// Body keeps the text (an HTML page is reduced to its title), truncated. No
// field ever holds the API token: the client redacts it before building one.
type APIError struct {
	Method     string // HTTP method
	Path       string // path template, e.g. "/threats"
	StatusCode int
	Code       int    // SentinelOne error code, 0 if none
	Title      string // SentinelOne error title
	Detail     string // SentinelOne error detail
	Body       string // non-JSON body text, truncated; empty when Code/Title/Detail were decoded
	RequestID  string // X-RQID response header
	Attempts   int    // HTTP attempts made, retries included
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sentinelone: %s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.Title != "" {
		b.WriteString(": " + e.Title)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	if e.RequestID != "" {
		b.WriteString(" [rqid " + e.RequestID + "]")
	}
	return b.String()
}

// Is reports whether target is the sentinel for e's status (or, for
// ErrAlreadyExists, for its SentinelOne code; for ErrUAMUnavailable, for a
// 404 or 403 on the Unified Alerts path).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrAlreadyExists:
		return e.Code == CodeAlreadyExists
	case ErrUAMUnavailable:
		return e.Path == PathUAMGraphQL && (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusForbidden)
	}
	return target != nil && target == statusSentinel(e.StatusCode)
}

func statusSentinel(status int) error {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500 && status <= 599:
		return ErrServer
	}
	return nil
}

// RequestError is a call that ended without an HTTP answer: a timeout, a
// transport failure, a cancellation, or a local rate-limit refusal. It wraps
// the underlying error, so errors.Is(err, context.Canceled) and
// errors.Is(err, context.DeadlineExceeded) work as well as the sentinels.
type RequestError struct {
	Method   string
	Path     string
	Attempts int
	Err      error

	kind error  // ErrTimeout, ErrTransport, ErrRateLimited, or nil (cancelled)
	msg  string // Err's text, token redacted
}

// Error implements error.
func (e *RequestError) Error() string {
	what := "request failed"
	switch e.kind {
	case ErrTimeout:
		what = "timeout"
	case ErrRateLimited:
		what = "rate limited"
	case nil:
		what = "cancelled"
	}
	return fmt.Sprintf("sentinelone: %s %s: %s after %d attempt(s): %s", e.Method, e.Path, what, e.Attempts, e.msg)
}

// Unwrap returns the underlying error.
func (e *RequestError) Unwrap() error { return e.Err }

// Is matches ErrTimeout, ErrTransport or ErrRateLimited by kind.
func (e *RequestError) Is(target error) bool { return e.kind != nil && target == e.kind }

// MalformedResponseError is a 2xx answer whose body could not be read or
// decoded. It matches ErrMalformedResponse and wraps the read or decode error.
type MalformedResponseError struct {
	Method     string
	Path       string
	StatusCode int
	RequestID  string
	Err        error
}

// Error implements error.
func (e *MalformedResponseError) Error() string {
	s := fmt.Sprintf("sentinelone: %s %s: HTTP %d: malformed response: %v", e.Method, e.Path, e.StatusCode, e.Err)
	if e.RequestID != "" {
		s += " [rqid " + e.RequestID + "]"
	}
	return s
}

// Unwrap returns the read or decode error.
func (e *MalformedResponseError) Unwrap() error { return e.Err }

// Is matches ErrMalformedResponse.
func (e *MalformedResponseError) Is(target error) bool { return target == ErrMalformedResponse }

// isTimeout reports whether err is a deadline: a context deadline or a
// net.Error that timed out.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// requestKind classifies a failure without an HTTP answer.
func requestKind(err error) error {
	switch {
	case errors.Is(err, ErrRateLimited):
		return ErrRateLimited
	case isTimeout(err):
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		return nil
	}
	return ErrTransport
}

// errorDoc is the console's error body: {"errors":[{code,title,detail}]}.
type errorDoc struct {
	Errors []struct {
		Code   flexInt `json:"code"`
		Title  *string `json:"title"`
		Detail *string `json:"detail"`
	} `json:"errors"`
}

// newAPIError builds the error for a non-2xx answer; redact removes the
// token from anything taken from the body.
func newAPIError(method, path string, resp *http.Response, body []byte, attempts int, redact func(string) string) *APIError {
	e := &APIError{
		Method:     method,
		Path:       path,
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get(HeaderRequestID),
		Attempts:   attempts,
	}
	var doc errorDoc
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		first := doc.Errors[0]
		e.Code = first.Code.V
		if first.Title != nil {
			e.Title = redact(*first.Title)
		}
		if first.Detail != nil {
			e.Detail = redact(*first.Detail)
		}
		if e.Code != 0 || e.Title != "" || e.Detail != "" {
			return e
		}
	}
	e.Body = summarize(redact(string(body)))
	return e
}

var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// summarize turns an error body into one short line: an HTML page gives its
// title (nginx's "429 Too Many Requests"), anything else its first
// errorTextLimit bytes with whitespace collapsed.
func summarize(s string) string {
	if m := htmlTitle.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= errorTextLimit {
		return s
	}
	cut := errorTextLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
