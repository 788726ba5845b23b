package connector

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/s1bridge/s1bridge/connector/ingest"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// metrics counts what the connector, its ingesters (ingest.Observer) and
// its monitors (monitor.Observer) report, in Prometheus, on a registry of
// its own (so that several connectors in one test process do not collide).
// The names are listed in the README, section Metrics.
type metrics struct {
	reg *prometheus.Registry

	actionRequests *prometheus.CounterVec
	actionDuration *prometheus.HistogramVec
	upstream       *prometheus.CounterVec
	upstreamDur    *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	rateWait       *prometheus.CounterVec
	published      *prometheus.CounterVec
	duplicates     *prometheus.CounterVec
	polls          *prometheus.CounterVec
	lag            *prometheus.GaugeVec
	monitors       *prometheus.GaugeVec
	auditFailures  *prometheus.CounterVec
	replays        *prometheus.CounterVec
	tracking       *prometheus.GaugeVec
	untracked      *prometheus.CounterVec
	tokenExpiry    *prometheus.GaugeVec

	mu         sync.Mutex
	watermarks map[sourceKey]time.Time // the watermark of each console and source, for the age gauge
}

// sourceKey names one ingestion: a console and a source label.
type sourceKey struct{ console, source string }

// sourceLabel is the value of the source label of entity e's ingestion
// series: "threats", "alerts".
func sourceLabel(e subjects.Entity) string { return string(e) + "s" }

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), watermarks: map[sourceKey]time.Time{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.actionRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_action_requests_total", Help: "Action requests answered, by console, action and reply code (200 or an error code).",
	}, []string{"console", "action", "code"})
	m.actionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "s1bridge_action_duration_seconds", Help: "Time from receiving an action request to sending its reply.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
	}, []string{"console", "action"})
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_upstream_requests_total", Help: "SentinelOne API calls, by console, method, path template and final HTTP status (0: no answer).",
	}, []string{"console", "method", "path", "status"})
	m.upstreamDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "s1bridge_upstream_duration_seconds", Help: "Duration of SentinelOne API calls, retries and waits included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	}, []string{"console", "path"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_upstream_retries_total", Help: "Retries of SentinelOne API calls.",
	}, []string{"console", "path"})
	m.rateWait = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_upstream_rate_limit_wait_seconds_total", Help: "Time spent waiting for the per-console rate limiter.",
	}, []string{"console"})
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_events_published_total", Help: "Ingestion events stored in the events stream, by console and source (threats, alerts).",
	}, []string{"console", "source"})
	m.duplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_events_duplicates_total", Help: "Ingestion events the stream dropped as duplicates (Nats-Msg-Id seen within the window), by console and source.",
	}, []string{"console", "source"})
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_ingest_polls_total", Help: "Ingestion polls, by console, source (threats, alerts) and result (ok or error).",
	}, []string{"console", "source", "result"})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "s1bridge_ingest_lag_seconds", Help: "Seconds behind SentinelOne: age of the start of the last complete poll, by console and source.",
	}, []string{"console", "source"})
	m.monitors = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "s1bridge_monitors_active", Help: "Active threat monitors.",
	}, []string{"console"})
	m.auditFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_audit_failures_total", Help: "Audit records of mutating actions that could not be stored (a requested record's failure answered 503).",
	}, []string{"console"})
	m.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_idempotent_replays_total", Help: "Repeats of mutating requests answered with the first request's stored reply, running nothing.",
	}, []string{"console"})
	m.tracking = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "s1bridge_tracking_active", Help: "Tracked actions awaiting SentinelOne's confirmation or their deadline.",
	}, []string{"console"})
	m.untracked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s1bridge_tracking_untracked_total", Help: "Actions SentinelOne accepted that could not be tracked (replied without trackingId; no outcome event follows).",
	}, []string{"console"})
	m.tokenExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "s1bridge_console_token_expiry_seconds",
		Help: "When the console's API token expires, in Unix seconds (as the blackbox exporter's probe_ssl_earliest_cert_expiry: alert on it minus time()); 0 while unknown (not read yet, or the console does not say).",
	}, []string{"console"})
	for _, c := range []prometheus.Collector{
		m.actionRequests, m.actionDuration, m.upstream, m.upstreamDur, m.retries, m.rateWait,
		m.published, m.duplicates, m.polls, m.lag, m.monitors, m.auditFailures, m.replays, m.tracking, m.untracked, m.tokenExpiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	f(prometheus.CollectorFunc(m.collectWatermarkAge))
	return m
}

var watermarkAgeDesc = prometheus.NewDesc("s1bridge_ingest_watermark_age_seconds",
	"Seconds since the newest updatedAt ingestion has published, by console and source (grows when SentinelOne is quiet too).", []string{"console", "source"}, nil)

func (m *metrics) collectWatermarkAge(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, wm := range m.watermarks {
		ch <- prometheus.MustNewConstMetric(watermarkAgeDesc, prometheus.GaugeValue, time.Since(wm).Seconds(), k.console, k.source)
	}
}

func (m *metrics) actionDone(console, action string, code int, took time.Duration) {
	m.actionRequests.WithLabelValues(console, action, strconv.Itoa(code)).Inc()
	m.actionDuration.WithLabelValues(console, action).Observe(took.Seconds())
}

// EventsPublished implements ingest.Observer.
func (m *metrics) EventsPublished(console string, e subjects.Entity, n, dups int) {
	source := sourceLabel(e)
	m.published.WithLabelValues(console, source).Add(float64(n))
	m.duplicates.WithLabelValues(console, source).Add(float64(dups))
}

// PollDone implements ingest.Observer.
func (m *metrics) PollDone(console string, e subjects.Entity, p ingest.Progress, err error) {
	source := sourceLabel(e)
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.polls.WithLabelValues(console, source, result).Inc()
	if !p.PollStartedAt.IsZero() {
		m.lag.WithLabelValues(console, source).Set(time.Since(p.PollStartedAt).Seconds())
	}
	if !p.Watermark.IsZero() {
		m.mu.Lock()
		m.watermarks[sourceKey{console, source}] = p.Watermark
		m.mu.Unlock()
	}
}

// MonitorsActive implements monitor.Observer.
func (m *metrics) MonitorsActive(console string, n int) {
	m.monitors.WithLabelValues(console).Set(float64(n))
}

// TrackingActive implements tracking.Observer.
func (m *metrics) TrackingActive(console string, n int) {
	m.tracking.WithLabelValues(console).Set(float64(n))
}

// TokenExpiry implements credentials.Observer.
func (m *metrics) TokenExpiry(console string, expiresAt time.Time) {
	v := 0.0
	if !expiresAt.IsZero() {
		v = float64(expiresAt.Unix())
	}
	m.tokenExpiry.WithLabelValues(console).Set(v)
}

// initConsole creates, at zero, every series of console whose labels are
// known before anything happens, so that dashboards and alert rules see the
// console from the start and rate() counts its first event (Prometheus'
// advice on missing series). Series labelled by what happens (an action's
// reply code, a SentinelOne path and status) appear on first use. It must
// be called once for every configured console at start; clientObserver,
// which the connector calls then for every console, calls it. The
// ingestion series are initSource's.
func (m *metrics) initConsole(console string) {
	m.rateWait.WithLabelValues(console)
	m.monitors.WithLabelValues(console).Set(0)
	m.tracking.WithLabelValues(console).Set(0)
	m.untracked.WithLabelValues(console)
	m.auditFailures.WithLabelValues(console)
	m.replays.WithLabelValues(console)
	m.initToken(console)
}

// initSource creates, at zero, the ingestion series of console and the
// source of entity e (see initConsole). The connector calls it at start
// for every ingester it builds: threats always, alerts when
// ingest.alerts.enabled.
func (m *metrics) initSource(console string, e subjects.Entity) {
	source := sourceLabel(e)
	for _, result := range []string{"ok", "error"} {
		m.polls.WithLabelValues(console, source, result)
	}
	m.published.WithLabelValues(console, source)
	m.duplicates.WithLabelValues(console, source)
	m.lag.WithLabelValues(console, source).Set(0) // 0 until the first complete poll
}

// AuditFailed implements audit.Observer.
func (m *metrics) AuditFailed(console, _ string) { m.auditFailures.WithLabelValues(console).Inc() }

// Replayed implements idempotency.Observer.
func (m *metrics) Replayed(console string) { m.replays.WithLabelValues(console).Inc() }

// initToken creates the console's token expiry series, 0 (unknown) until
// the first read.
func (m *metrics) initToken(console string) { m.tokenExpiry.WithLabelValues(console).Set(0) }

// budgetShare exports share, this replica's share of console's rate budget
// (budget.Budget.Share), as s1bridge_upstream_budget_share{console}. It is
// read at every scrape, so the series exists from the console's start.
func (m *metrics) budgetShare(console string, share func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "s1bridge_upstream_budget_share",
		Help:        "Fraction (0 to 1) of the console's rate_limit this replica may use now; over the live replicas it adds up to 1, less after SentinelOne answered 429.",
		ConstLabels: prometheus.Labels{"console": console},
	}, share))
}

// clientObserver counts one console's SentinelOne calls, and initialises
// the console's series (initConsole).
func (m *metrics) clientObserver(console string) sentinelone.Observer {
	m.initConsole(console)
	return sentinelone.ObserverFuncs{
		OnRequestDone: func(e sentinelone.RequestEvent) {
			m.upstream.WithLabelValues(console, e.Method, e.Path, strconv.Itoa(e.Status)).Inc()
			m.upstreamDur.WithLabelValues(console, e.Path).Observe(e.Duration.Seconds())
		},
		OnRetry: func(e sentinelone.RetryEvent) { m.retries.WithLabelValues(console, e.Path).Inc() },
		OnRateLimitWait: func(e sentinelone.WaitEvent) {
			m.rateWait.WithLabelValues(console).Add(e.Waited.Seconds())
		},
	}
}
