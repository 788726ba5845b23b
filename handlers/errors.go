package handlers

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the contract (DESIGN.md §7). They are HTTP status numbers so
// that people read them without a table.
const (
	CodeInvalid         = http.StatusBadRequest            // 400 invalid request
	CodeDenied          = http.StatusForbidden             // 403 action denied by configuration
	CodeNotFound        = http.StatusNotFound              // 404 unknown threat or monitor
	CodeExpired         = http.StatusRequestTimeout        // 408 request expired before work began
	CodeConflict        = http.StatusConflict              // 409 idempotency key reused with another request
	CodeTooLarge        = http.StatusRequestEntityTooLarge // 413 request or reply too large
	CodeRateLimited     = http.StatusTooManyRequests       // 429 rate limited (after retries)
	CodeInternal        = http.StatusInternalServerError   // 500 internal
	CodeUpstream        = http.StatusBadGateway            // 502 SentinelOne error or unreadable answer
	CodeUnavailable     = http.StatusServiceUnavailable    // 503 not ready or shutting down
	CodeUpstreamTimeout = http.StatusGatewayTimeout        // 504 SentinelOne timeout
)

// Error is the one coded error of s1bridge: every failure a caller sees is an
// *Error, and its Code is one of the contract's codes. Message is for people:
// it names the field at fault and never carries a secret.
type Error struct {
	Code           int    // one of the Code constants
	Message        string // human readable, names the field at fault
	Retryable      bool   // whether the same request may succeed later
	UpstreamStatus int    // SentinelOne's HTTP status, 0 when there was none
	Details        any    // optional structured details (e.g. what was applied)
	Err            error  // the cause, for logs and errors.Is; never sent to callers
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &Error{Code: CodeNotFound}) matches any 404.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Message == "" && t.Err == nil
}

// Data is the payload of the s1bridge.error CloudEvent.
type Data struct {
	Code           int    `json:"code"`
	Message        string `json:"message"`
	Retryable      bool   `json:"retryable"`
	UpstreamStatus int    `json:"upstreamStatus,omitempty"`
	Details        any    `json:"details,omitempty"`
}

// Data returns what callers see of e.
func (e *Error) Data() Data {
	return Data{Code: e.Code, Message: e.Message, Retryable: e.Retryable, UpstreamStatus: e.UpstreamStatus, Details: e.Details}
}

// Errorf returns an *Error with code and a formatted message. Retryable is set
// from the code per DESIGN.md §8 (429, 503 and 504 are; 502 is set by the
// upstream mapping, which knows whether the cause was transient).
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Retryable: code == CodeRateLimited || code == CodeUnavailable || code == CodeUpstreamTimeout}
}

// Invalid returns a 400 naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// AsError turns any error into an *Error: an *Error anywhere in the chain is
// returned as is, upstream errors are translated (see FromUpstream), and
// anything else is a 500 whose message hides the cause.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if up := FromUpstream(err); up != nil {
		return up
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
