package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// rawGet sends one GET on a fresh connection, so the transport has no
// reused connection to retry a failed request on.
func rawGet(ctx context.Context, h *harness, path string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL()+APIPrefix+path, nil)
	req.Header.Set("Authorization", AuthScheme+" "+DefaultToken)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func mustInject(t *testing.T, h *harness, f Fault) {
	t.Helper()
	if err := h.emu.Inject(f); err != nil {
		t.Fatal(err)
	}
}

func TestFaultRateLimit(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		f           Fault
		retryAfter  string
		contentType string
		body        string
	}{
		{Fault{Kind: FaultRateLimit, RetryAfter: "1"}, "1", "application/json", `"code":4290010`},
		{Fault{Kind: FaultRateLimit, HTML: true}, "", "text/html", "<title>429 Too Many Requests</title>"},
		{Fault{Kind: FaultRateLimit, HTML: true, RetryAfter: "3"}, "3", "text/html", "nginx"},
	}
	for _, c := range cases {
		c.f.Path, c.f.Count = PathThreats, 2
		mustInject(t, h, c.f)
		for range 2 {
			r := h.do(http.MethodGet, PathThreats, nil, nil)
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != c.retryAfter ||
				r.header.Get("Content-Type") != c.contentType || !strings.Contains(string(r.body), c.body) {
				t.Fatalf("%+v: %d Retry-After=%q %s %s", c.f, r.status, r.header.Get("Retry-After"), r.header.Get("Content-Type"), r.body)
			}
			if r.header.Get(HeaderRequestID) == "" {
				t.Error("fault answer without X-RQID")
			}
		}
		if r := h.do(http.MethodGet, PathThreats, nil, nil); r.status != http.StatusOK {
			t.Fatalf("third call after a Count=2 fault: %d", r.status)
		}
	}
}

func TestFaultServerError(t *testing.T) {
	h := newHarness(t)
	mustInject(t, h, Fault{Path: "/agents", Kind: FaultServerError, Status: 503, Count: 1})
	r := h.do(http.MethodGet, PathAgents, nil, nil)
	if r.status != 503 || !json.Valid(r.body) || !strings.Contains(string(r.body), `"code":5030010`) {
		t.Errorf("JSON 5xx: %d %s", r.status, r.body)
	}
	mustInject(t, h, Fault{Path: "/agents", Kind: FaultServerError, HTML: true, Count: 1})
	r = h.do(http.MethodGet, PathAgents, nil, nil)
	if r.status != 500 || json.Valid(r.body) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("text 5xx: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
}

func TestFaultMalformedAndTruncated(t *testing.T) {
	h := newHarness(t)
	full := h.do(http.MethodGet, PathThreats, nil, nil).body
	mustInject(t, h, Fault{Path: PathThreats, Kind: FaultMalformed, Count: 1})
	r := h.do(http.MethodGet, PathThreats, nil, nil)
	if r.status != 200 || json.Valid(r.body) || len(r.body) == 0 || !strings.HasPrefix(string(full), string(r.body)) {
		t.Errorf("malformed: %d, %d bytes, valid=%v", r.status, len(r.body), json.Valid(r.body))
	}
	mustInject(t, h, Fault{Path: PathThreats, Kind: FaultTruncated, Count: 1})
	resp, b, err := rawGet(context.Background(), h, PathThreats)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != 200 || len(b) == 0 {
		t.Errorf("truncated: err %v, %d bytes", err, len(b))
	}
}

func TestFaultReset(t *testing.T) {
	h := newHarness(t)
	mustInject(t, h, Fault{Path: PathSites, Kind: FaultReset, Count: 1})
	if _, _, err := rawGet(context.Background(), h, PathSites); err == nil {
		t.Fatal("reset connection gave no error")
	}
	if resp, _, err := rawGet(context.Background(), h, PathSites); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the reset: %v", err)
	}
}

func TestFaultHang(t *testing.T) {
	h := newHarness(t)
	mustInject(t, h, Fault{Path: PathGroups, Kind: FaultHang})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := rawGet(ctx, h, PathGroups); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: err %v, want the client's deadline", err)
	}
	// Closing the server ends a hanging request.
	wrote := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) },
		})
		_, _, err := rawGet(ctx, h, PathGroups)
		done <- err
	}()
	<-wrote
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("hanging request succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the hanging request")
	}
}

func TestFaultLatencyAndMatching(t *testing.T) {
	h := newHarness(t)
	mustInject(t, h, Fault{Path: PathThreats, Method: http.MethodPost, Kind: FaultServerError})
	mustInject(t, h, Fault{Kind: FaultLatency, Latency: 80 * time.Millisecond, Count: 1})
	start := time.Now()
	if r := h.do(http.MethodGet, PathThreats, nil, nil); r.status != 200 {
		t.Fatalf("GET /threats under a POST-only fault: %d", r.status)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("latency fault: answered after %v", d)
	}
	r := h.do(http.MethodPost, PathThreatIncident, nil, map[string]any{})
	if r.status != 500 {
		t.Errorf("POST /threats/incident under the prefix fault: %d", r.status)
	}
	h.emu.ClearFaults()
	if r := h.do(http.MethodPost, PathThreatVerdict, nil, map[string]any{}); r.status != 400 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}

func TestFaultRate(t *testing.T) {
	h := newHarness(t)
	mustInject(t, h, Fault{Path: PathSystemInfo, Kind: FaultRateLimit, Rate: 0.25})
	limited := 0
	for range 200 {
		if h.do(http.MethodGet, PathSystemInfo, nil, nil).status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 25 || limited > 75 {
		t.Errorf("%d of 200 requests limited at rate 0.25", limited)
	}
	for _, bad := range []Fault{{}, {Kind: FaultHang, Rate: 2}, {Kind: FaultServerError, Status: 42}, {Kind: FaultLatency, Count: -1}} {
		if err := h.emu.Inject(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Inject(%+v) = %v", bad, err)
		}
	}
	if FaultReset.String() != "reset" || FaultKind(99).String() != "FaultKind(99)" {
		t.Error("FaultKind.String")
	}
}
