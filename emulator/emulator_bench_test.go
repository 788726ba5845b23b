package emulator

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// benchServer serves emu on loopback and returns a client whose transport
// keeps enough idle keep-alive connections for the parallel goroutines.
func benchServer(b *testing.B, emu *Emulator) (*Server, *http.Client) {
	b.Helper()
	srv, err := emu.Start("")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true, ReadBufferSize: 64 << 10}
	b.Cleanup(tr.CloseIdleConnections)
	return srv, &http.Client{Transport: tr, Timeout: time.Minute}
}

// benchGet fetches u and returns the body (discarded unless keep is set) and its size.
func benchGet(b *testing.B, c *http.Client, u string, keep bool) ([]byte, int64) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", AuthScheme+" "+DefaultToken)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if keep {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return body, int64(len(body))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return nil, n
}

// BenchmarkAgentsList measures GET /agents?limit=10 through real loopback
// HTTP with keep-alive, from 16 concurrent clients.
func BenchmarkAgentsList(b *testing.B) {
	emu, err := New(WithRequestLog(0))
	if err != nil {
		b.Fatal(err)
	}
	srv, c := benchServer(b, emu)
	u := srv.URL() + APIPrefix + PathAgents + "?limit=10"
	benchGet(b, c, u, false) // render and cache the page's agents
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, c, u, false)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkThreatsPage1000 measures 1000-threat pages of GET /threats at a
// random updatedAt watermark, as an ingestion poller asks for them, over
// 25,000 threats, through real loopback HTTP from 4 concurrent clients.
func BenchmarkThreatsPage1000(b *testing.B) {
	s := DefaultSizes()
	s.Threats = 25000
	emu, err := New(WithSizes(s), WithRequestLog(0))
	if err != nil {
		b.Fatal(err)
	}
	srv, c := benchServer(b, emu)
	warmAll(b, c, srv.URL()+APIPrefix+PathThreats+"?limit=1000&sortBy=id")
	base := srv.URL() + APIPrefix + PathThreats + "?limit=1000&sortBy=updatedAt&sortOrder=asc&updatedAt__gte="
	now := time.Now()
	var bytes atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			// watermarks in the first 40 of the 48 seeded hours, so every page is full
			w := now.Add(-8*time.Hour - time.Duration(r.Int64N(int64(40*time.Hour)))).UTC().Format(TimeLayout)
			_, n := benchGet(b, c, base+url.QueryEscape(w), false)
			bytes.Add(n)
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "req/s")
	b.ReportMetric(float64(bytes.Load())/secs/1e6, "MB/s")
}

// warmAll follows u's cursors to the end, so every item is rendered once
// and cached, as in a console that has been serving for a while.
func warmAll(b *testing.B, c *http.Client, u string) {
	for q := u; ; {
		body, _ := benchGet(b, c, q, true)
		var env struct {
			Pagination struct {
				NextCursor *string `json:"nextCursor"`
			} `json:"pagination"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			b.Fatal(err)
		}
		if env.Pagination.NextCursor == nil {
			return
		}
		q = u + "&cursor=" + url.QueryEscape(*env.Pagination.NextCursor)
	}
}

// BenchmarkSeed100kThreats measures New with 100,000 threats.
func BenchmarkSeed100kThreats(b *testing.B) {
	s := DefaultSizes()
	s.Threats = 100000
	for b.Loop() {
		if _, err := New(WithSizes(s)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThreatsQuery100k measures the store alone: a 1000-item page at an
// updatedAt watermark over 100,000 threats, found by binary search, and its
// JSON from the per-threat cache, without HTTP.
func BenchmarkThreatsQuery100k(b *testing.B) {
	for _, filter := range []struct{ name, extra string }{
		{"index", ""},
		{"scan", "&incidentStatuses=unresolved,in_progress,resolved"},
	} {
		b.Run(filter.name, func(b *testing.B) {
			s := DefaultSizes()
			s.Threats = 100000
			emu, err := New(WithSizes(s))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 8<<20)
			for _, t := range emu.threats.t.ids {
				buf = t.appendJSON(buf[:0])
			}
			r := rand.New(rand.NewPCG(1, 2))
			now := time.Now()
			b.ResetTimer()
			for b.Loop() {
				w := now.Add(-8*time.Hour - time.Duration(r.Int64N(int64(40*time.Hour)))).UTC().Format(TimeLayout)
				vals, _ := url.ParseQuery("limit=1000&sortBy=updatedAt&updatedAt__gte=" + url.QueryEscape(w) + filter.extra)
				emu.mu.RLock()
				q, apiErr := emu.threats.parseList(vals, emu.now())
				if apiErr != nil {
					b.Fatal(apiErr)
				}
				p := emu.threats.t.query(q)
				buf = emu.threats.appendListBody(buf[:0], q, p)
				emu.mu.RUnlock()
				if len(p.items) != 1000 {
					b.Fatalf("page of %d", len(p.items))
				}
			}
		})
	}
}
