package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// upstreamGrace is how long a console may keep failing after its last
// success before /readyz reports it.
const upstreamGrace = 5 * time.Minute

// consoleHealth remembers the outcome of a console's SentinelOne calls.
type consoleHealth struct {
	mu      sync.Mutex
	lastOK  time.Time
	lastErr error
	errAt   time.Time
}

func (h *consoleHealth) observe(e sentinelone.RequestEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// The token check reports through its own status (an older console
	// answers it 404 or 405, which is no fault).
	if e.Path == sentinelone.PathAPITokenDetails {
		return
	}
	// Only failures that say something about the console or the token count;
	// a 400 or 404 is the caller's problem, and a 403 on the Unified Alerts
	// path a console without UAM (the alert ingestion says so, DESIGN.md §10).
	if e.Err == nil || e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound ||
		errors.Is(e.Err, sentinelone.ErrUAMUnavailable) {
		h.lastOK, h.lastErr = time.Now(), nil
		return
	}
	h.lastErr, h.errAt = e.Err, time.Now()
}

// problem returns why the console is not healthy, or "".
func (h *consoleHealth) problem() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastErr == nil {
		return ""
	}
	auth := errors.Is(h.lastErr, sentinelone.ErrUnauthorized) || errors.Is(h.lastErr, sentinelone.ErrForbidden)
	if !auth && time.Since(h.lastOK) < upstreamGrace {
		return ""
	}
	return fmt.Sprintf("last SentinelOne call failed %s ago: %v", time.Since(h.errAt).Round(time.Second), h.lastErr)
}

// readiness is the body of /readyz.
type readiness struct {
	Ready    bool              `json:"ready"`
	NATS     string            `json:"nats"`
	Stream   string            `json:"stream"`
	Audit    string            `json:"audit"` // the audit stream: "ok", "off", or what is wrong
	Consoles map[string]string `json:"consoles"`
	// Ingest is, per console, the state of each source's ingestion
	// (threats, alerts): ingestStateOK, ingestStateOff, or why it stopped.
	Ingest map[string]map[string]string `json:"ingest"`
}

// States of a source's ingestion in /readyz, besides the reason it stopped.
const (
	ingestStateOK  = "ok"  // polling, or standing by for the lease
	ingestStateOff = "off" // consoles.<name>.ingest.enabled is false
)

func (c *Connector) readiness(ctx context.Context) readiness {
	r, _ := c.readinessByConsole(ctx)
	return r
}

// readinessByConsole is /readyz's body, and whether each console is served
// (the replica is ready for it: NATS, the streams and the console itself).
func (c *Connector) readinessByConsole(ctx context.Context) (readiness, map[string]bool) {
	r := readiness{Ready: true, NATS: "ok", Stream: "ok", Audit: "ok", Consoles: map[string]string{}, Ingest: map[string]map[string]string{}}
	byConsole := map[string]bool{}
	if c.nc == nil || !c.nc.IsConnected() {
		r.Ready, r.NATS = false, "not connected"
	}
	c.mu.Lock()
	st, consoles := c.st, c.consoles
	c.mu.Unlock()
	if st == nil {
		r.Ready, r.Stream = false, "not opened"
	} else if r.NATS == "ok" {
		if err := st.CheckEvents(ctx); err != nil {
			r.Ready, r.Stream = false, err.Error()
		}
	}
	c.auditReadiness(ctx, &r, st)
	shared := r.Ready // NATS and the streams
	for _, name := range c.cfg.ConsoleNames() {
		cs := consoles[name]
		if cs == nil {
			r.Ready, r.Consoles[name] = false, "starting"
			byConsole[name] = false
			continue
		}
		status, ready := cs.readiness()
		r.Ready = r.Ready && ready
		r.Consoles[name] = status
		r.Ingest[name] = cs.ingestStates()
		byConsole[name] = shared && ready
	}
	return r, byConsole
}

var readyDesc = prometheus.NewDesc("s1bridge_ready",
	"1 when this replica serves the console (NATS connected, the events stream there, the console's calls and ingestion healthy: what /readyz checks), else 0.",
	[]string{"console"}, nil)

// collectReady writes s1bridge_ready for every configured console, read
// when Prometheus scrapes, so an alert on it needs no probe of /readyz.
func (c *Connector) collectReady(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, byConsole := c.readinessByConsole(ctx)
	for _, name := range c.cfg.ConsoleNames() {
		v := 0.0
		if byConsole[name] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, name)
	}
}

// ingestStates is the console's part of /readyz's ingest: the state of each
// source's ingestion by its metrics label ("threats", "alerts").
func (cs *console) ingestStates() map[string]string {
	out := make(map[string]string, len(cs.ingest))
	for _, in := range cs.ingest {
		state := ingestStateOK
		if !cs.cfg.Ingest.Enabled {
			state = ingestStateOff
		} else if h := in.Halted(); h != nil {
			state = "stopped: " + h.Err.Error()
		}
		out[sourceLabel(in.Entity())] = state
	}
	return out
}

// readiness is the console's part of /readyz: "ok", or what is wrong, and
// whether that leaves the replica ready. An ingestion a source stopped as
// nothing being broken (Halt.Ready) is said without making it unready.
func (cs *console) readiness() (string, bool) {
	var notes []string
	ready := true
	if p := cs.health.problem(); p != "" {
		notes, ready = append(notes, p), false
	}
	if cs.token != nil {
		if n := cs.token.Status().Note(); n != "" {
			notes = append(notes, n) // not a fault yet: ready stays as it is
		}
	}
	for _, in := range cs.ingest {
		if h := in.Halted(); h != nil {
			what := "ingestion stopped"
			if in.Entity() != subjects.EntityThreat {
				what = string(in.Entity()) + " " + what
			}
			notes = append(notes, what+": "+h.Err.Error())
			ready = ready && h.Ready
		}
	}
	if len(notes) == 0 {
		return "ok", true
	}
	return strings.Join(notes, "; "), ready
}

// serveHTTP starts /healthz, /readyz and /metrics on addr ("" disables it)
// and returns the bound address.
func (c *Connector) serveHTTP(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		rd := c.readiness(ctx)
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rd)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.metrics.reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		// Say plainly that the port is taken, and which one is free, as
		// for the embedded NATS server.
		return "", fmt.Errorf("%w: http.listen %s is taken (another s1bridge?); set S1BRIDGE_HTTP__LISTEN=%s or stop what uses it: %v",
			ErrPortInUse, addr, freeAddr(addr, "127.0.0.1:8081"), err)
	}
	if err != nil {
		return "", fmt.Errorf("http.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	c.closers = append(c.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	c.log.Info("health and metrics", "url", "http://"+ln.Addr().String(), "paths", "/healthz /readyz /metrics")
	return ln.Addr().String(), nil
}
