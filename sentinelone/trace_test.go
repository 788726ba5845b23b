package sentinelone

import (
	"context"
	"net/http"
	"testing"
)

func TestTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name           string
		parent, state  string
		wantTP, wantTS string
	}{
		{"parent and state", tp, "congo=t61rcWkgMzE", tp, "congo=t61rcWkgMzE"},
		{"parent only", tp, "", tp, ""},
		{"malformed parent dropped", "00-xyz", "a=b", "", ""},
		{"upper-case hex is malformed", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "", "", ""},
		{"state with control characters dropped", tp, "a=b\r\nX-Evil: 1", tp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			con := newConsole(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 0 {
					reply(w, 503, `{}`) // the retry must carry the headers too
					return
				}
				reply(w, 200, okInfo)
			})
			ctx := WithTraceContext(context.Background(), tt.parent, tt.state)
			if _, err := newTestClient(t, fastConfig(con.URL)).SystemInfo(ctx); err != nil {
				t.Fatal(err)
			}
			for i, r := range con.requests() {
				if got := r.Header.Get(HeaderTraceParent); got != tt.wantTP {
					t.Errorf("attempt %d traceparent %q, want %q", i+1, got, tt.wantTP)
				}
				if got := r.Header.Get(HeaderTraceState); got != tt.wantTS {
					t.Errorf("attempt %d tracestate %q, want %q", i+1, got, tt.wantTS)
				}
			}
		})
	}
}
