package sentinelone

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestAPIError(t *testing.T) {
	long := strings.Repeat("Server could not process the request. ", 40)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        APIError
		is          []error
		isNot       []error
	}{
		{
			name: "401 authentication failed", status: 401,
			body: `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":null}]}`,
			want: APIError{StatusCode: 401, Code: CodeAuthFailed, Title: "Authentication Failed"},
			is:   []error{ErrUnauthorized}, isNot: []error{ErrForbidden, ErrServer},
		},
		{
			name: "400 already exists, first of two errors", status: 400,
			body: `{"errors":[{"code":4000030,"title":"Already Exists Error","detail":"hash exists"},{"code":1,"title":"other"}]}`,
			want: APIError{StatusCode: 400, Code: CodeAlreadyExists, Title: "Already Exists Error", Detail: "hash exists"},
			is:   []error{ErrBadRequest, ErrAlreadyExists},
		},
		{
			name: "400 validation, three-digit code as string", status: 400,
			body: `{"errors":[{"code":"400","title":"ids: Missing data for required field.","detail":""}]}`,
			want: APIError{StatusCode: 400, Code: 400, Title: "ids: Missing data for required field."},
			is:   []error{ErrBadRequest}, isNot: []error{ErrAlreadyExists},
		},
		{
			name: "403", status: 403, body: `{"errors":[{"code":4030010,"title":"Forbidden","detail":"Insufficient permissions"}]}`,
			want: APIError{StatusCode: 403, Code: 4030010, Title: "Forbidden", Detail: "Insufficient permissions"},
			is:   []error{ErrForbidden},
		},
		{
			name: "404 plain text from the router", status: 404, contentType: "text/plain", body: "404 page not found\n",
			want: APIError{StatusCode: 404, Body: "404 page not found"}, is: []error{ErrNotFound},
		},
		{
			name: "429 nginx HTML", status: 429, contentType: "text/html", body: html429,
			want: APIError{StatusCode: 429, Body: "429 Too Many Requests"}, is: []error{ErrRateLimited},
		},
		{
			name: "500 long text truncated", status: 500, contentType: "text/plain", body: long,
			want: APIError{StatusCode: 500, Body: strings.TrimSpace(long[:errorTextLimit]) + "…"}, is: []error{ErrServer},
		},
		{
			name: "409 JSON without errors kept as text", status: 409, body: `{"message":"conflict"}`,
			want: APIError{StatusCode: 409, Body: `{"message":"conflict"}`}, is: []error{ErrConflict},
		},
		{
			name: "422 errors [{}]", status: 422, body: `{"errors":[{}]}`,
			want: APIError{StatusCode: 422, Body: `{"errors":[{}]}`}, isNot: []error{ErrBadRequest, ErrServer},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", or(tt.contentType, "application/json"))
				w.Header().Set(HeaderRequestID, "rq-42")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			cfg := fastConfig(con.URL)
			cfg.RetryMax = -1
			_, err := newTestClient(t, cfg).SystemInfo(t.Context())
			var got *APIError
			if !errors.As(err, &got) {
				t.Fatalf("err = %T %v, want *APIError", err, err)
			}
			want := tt.want
			want.Method, want.Path, want.RequestID, want.Attempts = "GET", PathSystemInfo, "rq-42", 1
			if *got != want {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = false", s)
				}
			}
			for _, s := range append(tt.isNot, ErrTimeout, ErrTransport, ErrMalformedResponse) {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = true", s)
				}
			}
			if !strings.Contains(err.Error(), "rq-42") || !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("Error() = %q lacks status or rqid", err)
			}
		})
	}
}

// TestMalformedResponse covers 2xx answers the client cannot use. A GET whose
// body breaks off is retried; the same on a POST is not (it landed).
func TestMalformedResponse(t *testing.T) {
	truncated := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "100")
		w.Header().Set(HeaderRequestID, "rq-7")
		w.WriteHeader(200)
		io.WriteString(w, `{"data":{"aff`)
	}
	tests := []struct {
		name      string
		post      bool
		answer    func(http.ResponseWriter)
		wantCalls int
	}{
		{"GET invalid JSON", false, func(w http.ResponseWriter) { reply(w, 200, `{"data":{"version":`) }, 1},
		{"GET HTML on 200", false, func(w http.ResponseWriter) { reply(w, 200, `<html>maintenance</html>`) }, 1},
		{"GET no data member", false, func(w http.ResponseWriter) { reply(w, 200, `{"errors":null}`) }, 1},
		{"GET empty body", false, func(w http.ResponseWriter) { reply(w, 200, ``) }, 1},
		{"GET truncated body, retried", false, truncated, 3},
		{"POST truncated body, not retried", true, truncated, 1},
		{"POST wrong type", true, func(w http.ResponseWriter) { reply(w, 200, `{"data":{"affected":"many"}}`) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, _ int) { tt.answer(w) })
			cfg := fastConfig(con.URL)
			cfg.RetryMax = 2
			c := newTestClient(t, cfg)
			var err error
			if tt.post {
				_, err = c.ConnectAgents(t.Context(), []string{"100000000000000001"})
			} else {
				_, err = c.SystemInfo(t.Context())
			}
			var me *MalformedResponseError
			if !errors.Is(err, ErrMalformedResponse) || !errors.As(err, &me) || me.StatusCode != 200 || errors.Unwrap(err) == nil {
				t.Fatalf("err = %v, want *MalformedResponseError with status 200 wrapping the cause", err)
			}
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrServer) {
				t.Errorf("err %v also matches another sentinel", err)
			}
			if n := len(con.requests()); n != tt.wantCalls {
				t.Errorf("console saw %d requests, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestErrorsNeverCarryToken makes the console echo the Authorization header
// into every kind of error body.
func TestErrorsNeverCarryToken(t *testing.T) {
	echo := func(status int, ct string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(status)
			a := r.Header.Get(HeaderAuthorization)
			if ct == "application/json" {
				io.WriteString(w, `{"errors":[{"code":4010010,"title":"bad `+a+`","detail":"token `+a+` expired"}]}`)
				return
			}
			io.WriteString(w, "<html><title>denied "+a+"</title></html>")
		}
	}
	for _, handle := range []func(http.ResponseWriter, *http.Request, int){
		echo(401, "application/json"), echo(403, "text/html"), echo(500, "text/plain"),
	} {
		con := newConsole(t, handle)
		cfg := fastConfig(con.URL)
		cfg.RetryMax = -1
		_, err := newTestClient(t, cfg).SystemInfo(t.Context())
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error text holds the token: %s", err)
		}
		var ae *APIError
		if errors.As(err, &ae) && strings.Contains(ae.Title+ae.Detail+ae.Body, testToken) {
			t.Errorf("APIError fields hold the token: %+v", ae)
		}
	}
}

func TestRequestErrorKinds(t *testing.T) {
	for _, tt := range []struct {
		err  error
		kind error
	}{
		{context.DeadlineExceeded, ErrTimeout},
		{context.Canceled, nil},
		{io.ErrUnexpectedEOF, ErrTransport},
		{errors.Join(ErrRateLimited, context.DeadlineExceeded), ErrRateLimited},
	} {
		e := &RequestError{Method: "GET", Path: "/x", Attempts: 1, Err: tt.err, kind: requestKind(tt.err), msg: tt.err.Error()}
		for _, s := range []error{ErrTimeout, ErrTransport, ErrRateLimited} {
			if errors.Is(e, s) != (s == tt.kind) {
				t.Errorf("%v: errors.Is(%v) = %v", tt.err, s, errors.Is(e, s))
			}
		}
		if !errors.Is(e, tt.err) {
			t.Errorf("%v does not unwrap", tt.err)
		}
	}
}
