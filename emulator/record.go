package emulator

import (
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"
)

// requestLog keeps the most recent requests in a ring and counts every
// request per path. It has its own lock so recording never waits for the store.
type requestLog struct {
	mu     sync.Mutex
	limit  int
	ring   []Request
	next   int // where the next request goes once the ring is full
	counts map[string]int
}

func (l *requestLog) init(limit int) {
	l.limit = limit
	l.counts = make(map[string]int)
}

func (l *requestLog) add(r *http.Request, body []byte, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[r.URL.Path]++
	if l.limit == 0 {
		return
	}
	hdr := r.Header.Clone()
	if v := hdr.Get(headerAuthorization); v != "" {
		scheme, _, _ := strings.Cut(v, " ")
		hdr.Set(headerAuthorization, scheme+" REDACTED")
	}
	req := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: hdr, Body: body, At: at}
	if len(l.ring) < l.limit {
		l.ring = append(l.ring, req)
		return
	}
	l.ring[l.next] = req
	l.next = (l.next + 1) % l.limit
}

// Requests returns the recorded requests, oldest first (at most the
// WithRequestLog limit, the most recent ones).
func (e *Emulator) Requests() []Request {
	l := &e.reqLog
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Request, 0, len(l.ring))
	out = append(out, l.ring[l.next:]...)
	return append(out, l.ring[:l.next]...)
}

// ResetRequests forgets the recorded requests and the per-path counts.
func (e *Emulator) ResetRequests() {
	l := &e.reqLog
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring, l.next = nil, 0
	clear(l.counts)
}

// RequestCount is the number of requests received for path, with or without
// the /web/api/v2.1 prefix ("/threats" and "/web/api/v2.1/threats" are the
// same), since New or the last ResetRequests.
func (e *Emulator) RequestCount(path string) int {
	l := &e.reqLog
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[fullPath(path)]
}

// RequestCounts returns the number of requests per URL path.
func (e *Emulator) RequestCounts() map[string]int {
	l := &e.reqLog
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}

// fullPath puts the API prefix in front of a path given without it.
func fullPath(p string) string {
	if strings.HasPrefix(p, APIPrefix+"/") || p == APIPrefix {
		return p
	}
	return APIPrefix + p
}
