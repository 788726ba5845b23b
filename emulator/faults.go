package emulator

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of injected faults.
const (
	// FaultLatency delays the request by Fault.Latency, then answers normally.
	FaultLatency FaultKind = iota + 1
	// FaultRateLimit answers 429, with Retry-After when Fault.RetryAfter is
	// set, and nginx's HTML page instead of a JSON body when Fault.HTML is set.
	FaultRateLimit
	// FaultServerError answers Fault.Status (default 500) with a JSON error
	// body, or a plain-text one when Fault.HTML is set.
	FaultServerError
	// FaultMalformed answers 200 with the real body cut in half: a complete
	// HTTP message whose JSON does not parse.
	FaultMalformed
	// FaultTruncated declares the real body's length, sends half of it and
	// closes the connection: the client sees an unexpected EOF.
	FaultTruncated
	// FaultReset closes the connection (with a TCP reset) without answering.
	FaultReset
	// FaultHang never answers: the request blocks until its context ends
	// (the client gives up or the server closes).
	FaultHang
	// FaultGraphQLError answers HTTP 200 with a GraphQL errors body and null
	// data, as the Unified Alerts endpoint reports a failure behind it;
	// Fault.Message is the message (default: graphql-java's fetch failure
	// "All Shards Down" seen under bulk load, uam-reference.md §7.5).
	FaultGraphQLError
)

var faultNames = map[FaultKind]string{
	FaultLatency: "latency", FaultRateLimit: "rate-limit", FaultServerError: "server-error",
	FaultMalformed: "malformed", FaultTruncated: "truncated", FaultReset: "reset", FaultHang: "hang",
	FaultGraphQLError: "graphql-error",
}

// String names the fault kind.
func (k FaultKind) String() string {
	if s, ok := faultNames[k]; ok {
		return s
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Inject adds a fault. Faults are tried in the order they were injected; the
// first that matches a request and fires applies to it. A fault with Count
// is removed once it has fired Count times.
func (e *Emulator) Inject(f Fault) error {
	if _, ok := faultNames[f.Kind]; !ok {
		return fmt.Errorf("%w: unknown fault kind %d", ErrInvalid, f.Kind)
	}
	if f.Rate < 0 || f.Rate > 1 || f.Count < 0 || f.Latency < 0 {
		return fmt.Errorf("%w: fault rate must be 0..1, count and latency not negative", ErrInvalid)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("%w: fault status %d", ErrInvalid, f.Status)
	}
	if f.Path != "" {
		f.Path = fullPath(f.Path)
	}
	s := &e.faults
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, &faultEntry{f: f, left: f.Count})
	s.n.Store(int32(len(s.list)))
	return nil
}

// ClearFaults removes every injected fault. Requests already hanging keep
// hanging until their context ends.
func (e *Emulator) ClearFaults() {
	s := &e.faults
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = nil
	s.n.Store(0)
}

type faultEntry struct {
	f    Fault
	left int // firings left when f.Count > 0
}

type faultSet struct {
	mu   sync.Mutex
	n    atomic.Int32 // len(list), read without the lock on every request
	list []*faultEntry
	rnd  *rand.Rand // decides Rate faults reproducibly; under mu
}

// pick returns the fault that applies to r, if any.
func (s *faultSet) pick(r *http.Request) (Fault, bool) {
	if s.n.Load() == 0 {
		return Fault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fe := range s.list {
		f := fe.f
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.Path != "" && !strings.HasPrefix(r.URL.Path, f.Path) {
			continue
		}
		if f.Rate > 0 && s.rnd.Float64() >= f.Rate {
			continue
		}
		if f.Count > 0 {
			fe.left--
			if fe.left == 0 {
				s.list = append(s.list[:i:i], s.list[i+1:]...)
				s.n.Store(int32(len(s.list)))
			}
		}
		return f, true
	}
	return Fault{}, false
}

const (
	nginx429 = "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n" +
		"<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	json429     = `{"errors":[{"code":4290010,"title":"Too Many Requests","detail":null}]}`
	text5xx     = "Server could not process the request."
	json5xxTmpl = `{"errors":[{"code":%d0010,"title":%q,"detail":null}]}`
)

// applyFault carries out f. It reports whether the request is finished; a
// latency fault returns false so the request then proceeds normally.
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case FaultRateLimit:
		if f.RetryAfter != "" {
			w.Header().Set(HeaderRetryAfter, f.RetryAfter)
		}
		if f.HTML {
			writeRaw(w, http.StatusTooManyRequests, contentHTML, nginx429)
		} else {
			writeJSON(w, http.StatusTooManyRequests, []byte(json429))
		}
	case FaultServerError:
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if f.HTML {
			writeRaw(w, status, contentText, text5xx)
		} else {
			writeJSON(w, status, fmt.Appendf(nil, json5xxTmpl, status, http.StatusText(status)))
		}
	case FaultMalformed, FaultTruncated:
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		e.mux.ServeHTTP(rec, r)
		body := rec.body
		half := body[:len(body)/2]
		if len(half) == 0 {
			half = []byte(`{"data":`)
		}
		for k, v := range rec.header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		if f.Kind == FaultMalformed {
			writeRaw(w, http.StatusOK, contentJSON, string(half))
			return true
		}
		w.Header().Set("Content-Length", strconv.Itoa(max(len(body), len(half)+1)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(half)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // the server drops the connection without logging
	case FaultReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, as a crashed proxy would
		}
		_ = conn.Close()
	case FaultHang:
		<-r.Context().Done()
	case FaultGraphQLError:
		msg := f.Message
		if msg == "" {
			msg = "Exception while fetching data (/alerts) : All Shards Down"
		}
		writeGraphQL(w, http.StatusOK, nil, []gqlErr{{Message: msg, Extensions: map[string]string{"classification": classDataFetching}}})
	}
	return true
}

func writeRaw(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set(headerContentType, contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// recorder captures a handler's answer so a fault can damage it.
type recorder struct {
	header http.Header
	status int
	body   []byte
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	r.body = append(r.body, b...)
	return len(b), nil
}
