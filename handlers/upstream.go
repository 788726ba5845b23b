package handlers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UpstreamDetails is the Details of an error caused by a SentinelOne answer:
// what s1bridge called and the console's request id, which SentinelOne
// support asks for. Fields SentinelOne did not give are left out.
type UpstreamDetails struct {
	Operation    string `json:"operation"`              // e.g. "GET /threats"
	RequestID    string `json:"requestId,omitempty"`    // the answer's X-RQID header
	UpstreamCode int    `json:"upstreamCode,omitempty"` // SentinelOne's error code, e.g. 4000010
	Attempts     int    `json:"attempts,omitempty"`     // HTTP attempts made, retries included
}

// FromUpstream translates an error of the SentinelOne client into the
// contract's codes (DESIGN.md §7 and §8), or returns nil when err is not one.
//
//	SentinelOne 401, 403         502, with upstreamStatus and a word on the token
//	SentinelOne 400              400 with SentinelOne's detail
//	SentinelOne 404, 409, other  502
//	SentinelOne 429              429, retryable (the client has already retried)
//	SentinelOne 5xx              502, retryable
//	no answer in time            504, retryable
//	no answer (transport)        502, retryable
//	local rate limit refusal     429, retryable
//	cancelled                    503, retryable
//	2xx that cannot be decoded   502, not retryable ("unreadable answer")
//	2xx whose body broke off     502, retryable
//	client refused the call      400
//
// The client redacts the API token from everything its errors carry, and
// the messages built here never quote a request header, so no message can
// hold the token. The cause stays in Err for logs.
func FromUpstream(err error) *Error {
	if err == nil {
		return nil
	}
	if e := fromUAM(err); e != nil {
		return e
	}
	var (
		apiErr *sentinelone.APIError
		reqErr *sentinelone.RequestError
		badErr *sentinelone.MalformedResponseError
	)
	switch {
	case errors.As(err, &apiErr):
		return fromAPIError(apiErr, err)
	case errors.As(err, &badErr):
		e := &Error{Code: CodeUpstream, Message: fmt.Sprintf("SentinelOne sent an unreadable answer to %s %s (HTTP %d)", badErr.Method, badErr.Path, badErr.StatusCode),
			Details: &UpstreamDetails{Operation: badErr.Method + " " + badErr.Path, RequestID: badErr.RequestID}, Err: err}
		switch {
		case brokeOff(err):
			// Not a bad answer but a connection lost while reading a good
			// one: a transport failure, worth another try.
			e.Message = fmt.Sprintf("SentinelOne's answer to %s %s (HTTP %d) broke off", badErr.Method, badErr.Path, badErr.StatusCode)
			e.Retryable = true
		case errors.Is(err, sentinelone.ErrThreatNotV21):
			e.Message += ": its threats have the API v2.0 shape, not v2.1"
		}
		return e
	case errors.As(err, &reqErr):
		return fromRequestError(reqErr, err)
	case errors.Is(err, sentinelone.ErrInvalidArgument):
		return &Error{Code: CodeInvalid, Message: "request: " + trimSentinel(err, sentinelone.ErrInvalidArgument), Err: err}
	}
	return nil
}

func fromAPIError(a *sentinelone.APIError, err error) *Error {
	op := a.Method + " " + a.Path
	e := &Error{UpstreamStatus: a.StatusCode, Err: err,
		Details: &UpstreamDetails{Operation: op, RequestID: a.RequestID, UpstreamCode: a.Code, Attempts: a.Attempts}}
	switch {
	case a.StatusCode == http.StatusUnauthorized:
		e.Code = CodeUpstream
		e.Message = "SentinelOne refused the API token (HTTP 401): it is wrong, expired or revoked; check the console's api_token"
	case a.StatusCode == http.StatusForbidden:
		e.Code = CodeUpstream
		e.Message = fmt.Sprintf("the API token lacks the SentinelOne permission %s needs (HTTP 403)", op)
		if s := upstreamText(a); s != "" {
			e.Message += ": " + s
		}
	case a.StatusCode == http.StatusBadRequest:
		e.Code = CodeInvalid
		e.Message = "SentinelOne refused the request"
		if s := upstreamText(a); s != "" {
			e.Message += ": " + s
		}
	case a.StatusCode == http.StatusTooManyRequests:
		e.Code, e.Retryable = CodeRateLimited, true
		e.Message = fmt.Sprintf("SentinelOne is rate limiting %s (HTTP 429 after %d attempts); retry later", op, a.Attempts)
	case a.StatusCode >= 500:
		e.Code, e.Retryable = CodeUpstream, true
		e.Message = fmt.Sprintf("SentinelOne failed on %s (HTTP %d)", op, a.StatusCode)
		if s := upstreamText(a); s != "" {
			e.Message += ": " + s
		}
	default:
		e.Code = CodeUpstream
		e.Message = fmt.Sprintf("SentinelOne answered %s with HTTP %d", op, a.StatusCode)
		if s := upstreamText(a); s != "" {
			e.Message += ": " + s
		}
	}
	return e
}

func fromRequestError(r *sentinelone.RequestError, err error) *Error {
	op := r.Method + " " + r.Path
	details := &UpstreamDetails{Operation: op, Attempts: r.Attempts}
	switch {
	case errors.Is(err, sentinelone.ErrTimeout):
		return &Error{Code: CodeUpstreamTimeout, Retryable: true, Details: details, Err: err,
			Message: fmt.Sprintf("SentinelOne did not answer %s in time (%d attempts)", op, r.Attempts)}
	case errors.Is(err, sentinelone.ErrRateLimited):
		return &Error{Code: CodeRateLimited, Retryable: true, Details: details, Err: err,
			Message: fmt.Sprintf("s1bridge's own rate limit for this console (rate_limit) leaves no room for %s before the deadline; retry later", op)}
	case errors.Is(err, sentinelone.ErrTransport):
		msg := fmt.Sprintf("could not reach SentinelOne for %s (%d attempts)", op, r.Attempts)
		var netErr *net.OpError
		if errors.As(err, &netErr) && netErr.Err != nil {
			msg += ": " + netErr.Err.Error()
		}
		return &Error{Code: CodeUpstream, Retryable: true, Details: details, Err: err, Message: msg}
	}
	// Cancelled: the caller went away or s1bridge is stopping.
	return &Error{Code: CodeUnavailable, Retryable: true, Details: details, Err: err,
		Message: fmt.Sprintf("the call to SentinelOne (%s) was cancelled", op)}
}

// brokeOff reports whether reading an answer's body failed on the
// connection (cut short, reset), as opposed to a body that arrived whole
// and did not decode.
func brokeOff(err error) bool {
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &netErr)
}

// upstreamText is what SentinelOne said about an error: its title and
// detail, or the start of a body that was not JSON.
func upstreamText(a *sentinelone.APIError) string {
	switch {
	case a.Detail != "" && a.Title != "":
		return a.Title + ": " + a.Detail
	case a.Detail != "":
		return a.Detail
	case a.Title != "":
		return a.Title
	}
	return a.Body
}

// trimSentinel returns err's text without the "sentinel: " prefix.
func trimSentinel(err, sentinel error) string {
	s, p := err.Error(), sentinel.Error()+": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
