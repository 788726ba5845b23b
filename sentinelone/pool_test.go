package sentinelone

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// countingConsole counts the TCP connections clients open to it.
func countingConsole(t testing.TB) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, okInfo) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// hammer makes callers goroutines each do perCaller calls.
func hammer(t testing.TB, c *Client, callers, perCaller int) {
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range perCaller {
				if _, err := c.SystemInfo(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestConnectionPool shows why MaxConns matters: with Go's default transport
// (2 idle connections per host) 64 concurrent callers keep opening new
// connections; with the Client's pool, once warm, they reuse theirs.
func TestConnectionPool(t *testing.T) {
	const callers, perCaller = 64, 20
	steady := func(opts ...Option) (warmup, after int64) {
		srv, conns := countingConsole(t)
		c := newTestClient(t, fastConfig(srv.URL), opts...)
		hammer(t, c, callers, perCaller)
		warmup = conns.Swap(0)
		hammer(t, c, callers, perCaller)
		return warmup, conns.Load()
	}
	pooledWarm, pooled := steady()
	goDefault := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(goDefault.CloseIdleConnections)
	defaultWarm, dflt := steady(WithTransport(goDefault))

	t.Logf("%d callers x %d calls, new connections: pooled %d warm-up + %d steady, Go default %d + %d",
		callers, perCaller, pooledWarm, pooled, defaultWarm, dflt)
	// Go's transport may dial a spare while a request waits for an idle
	// connection, so the warm-up can exceed one per caller; the pool keeps
	// the spares, which is what matters.
	if pooled > callers/8 {
		t.Errorf("warm pool still opened %d connections for %d calls", pooled, callers*perCaller)
	}
	if dflt < callers || dflt < 10*max(pooled, 1) {
		t.Errorf("Go default transport opened %d connections when warm, pooled %d: expected churn", dflt, pooled)
	}
}

// BenchmarkConnectionPool reports new connections per call for the
// Client's pool against Go's default transport, 64 callers at a time.
func BenchmarkConnectionPool(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts func() []Option
	}{
		{"pooled", func() []Option { return nil }},
		{"go-default", func() []Option {
			return []Option{WithTransport(http.DefaultTransport.(*http.Transport).Clone())}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv, conns := countingConsole(b)
			c := newTestClient(b, fastConfig(srv.URL), tc.opts()...)
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // about 64 callers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.SystemInfo(b.Context()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(conns.Load())/float64(b.N), "conns/op")
		})
	}
}

func TestCloseIdleConnections(t *testing.T) {
	srv, conns := countingConsole(t)
	c := newTestClient(t, fastConfig(srv.URL))
	for range 3 {
		if _, err := c.SystemInfo(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for 3 sequential calls, want 1", conns.Load())
	}
	c.CloseIdleConnections()
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if conns.Load() != 2 {
		t.Errorf("%d connections after CloseIdleConnections, want 2", conns.Load())
	}
}
