// Package connector is the s1bridge runtime's shell: the NATS connection
// (or an embedded server), the consoles, the micro service with one
// endpoint per action and console, the bounded dispatch of requests through
// their middleware chains (package middleware), health and metrics, and the
// lifecycle that starts and drains them. The loops and their shared parts
// are packages of their own, which never import this one: store (stream,
// buckets, compare-and-set), lease, ingest and monitor. The connector is
// the handlers' Runtime, handing each call to a console's ingesters and
// monitors.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/budget"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/credentials"
	"github.com/s1bridge/s1bridge/connector/ingest"
	"github.com/s1bridge/s1bridge/connector/lease"
	"github.com/s1bridge/s1bridge/connector/monitor"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/connector/tracking"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// Version is the s1bridge version, set at build time with
// -ldflags "-X github.com/s1bridge/s1bridge/connector.Version=v1.2.3".
// It must be semantic: `nats micro` checks it.
var Version = "0.1.0-dev"

// Commit returns the VCS revision the binary was built from, when known.
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Connector runs s1bridge for one configuration. Create it with New, then
// call Run (or Start and Stop). It is not reusable after Stop.
type Connector struct {
	cfg      *config.Config
	log      *slog.Logger
	subj     subjects.Subjects
	opts     options
	metrics  *metrics
	httpAddr string
	holder   string // this replica's id in leases

	nc       *nats.Conn
	embedded *Embedded
	svc      *service
	disp     *dispatcher
	guards   guards // idempotency and audit of the mutating actions
	// st and consoles are set by Start before the endpoints are registered
	// and the loops started, and read-only after; mu guards them for
	// /readyz, which serves from the start.
	mu       sync.Mutex
	st       *store.Store
	consoles map[string]*console
	closers  []func()
	bgCancel context.CancelFunc
	bg       sync.WaitGroup // background loops: ingestion, monitors
	// budgetCancel ends the consoles' budgets (stopBudgets).
	budgetCancel context.CancelFunc
}

// console is what the connector runs for one console.
type console struct {
	name   string
	cfg    config.Console
	env    *handlers.Env
	health *consoleHealth
	// budget is this replica's share of the console's rate_limit, which
	// the client waits on (DESIGN.md §14).
	budget *budget.Budget
	// ingest holds one ingester per source, threats first.
	ingest   []*ingest.Ingester
	monitors *monitor.Set
	tracking *tracking.Set
	// token reads the API token's expiry (credential health).
	token *credentials.Checker
}

// ingester returns the console's ingester of entity e, or nil.
func (cs *console) ingester(e subjects.Entity) *ingest.Ingester {
	for _, in := range cs.ingest {
		if in.Entity() == e {
			return in
		}
	}
	return nil
}

type options struct {
	conn       *nats.Conn                                 // use this connection instead of dialling
	consoleURL map[string]string                          // console name → base URL override
	actions    []handlers.Action                          // the action table, default handlers.All()
	clientOpts []sentinelone.Option                       // extra client options (tests)
	startEmu   func(token string) (string, func(), error) // runs the built-in emulator for url "emulator"
	leaseTTL   time.Duration
	uamRetry   time.Duration // how long a console without Unified Alerts waits, 0: ingest.UAMRetry
}

// Option adjusts a Connector in New.
type Option func(*options)

// WithConn makes the connector use nc instead of dialling NATS; the caller
// keeps ownership of nc (Stop does not close it).
func WithConn(nc *nats.Conn) Option { return func(o *options) { o.conn = nc } }

// WithConsoleURL points console name at url, overriding the configuration
// (the demo and the tests point consoles at an emulator this way).
func WithConsoleURL(name, url string) Option {
	return func(o *options) {
		if o.consoleURL == nil {
			o.consoleURL = map[string]string{}
		}
		o.consoleURL[name] = url
	}
}

// WithActions replaces the action table, handlers.All() by default (tests
// register extra actions).
func WithActions(actions []handlers.Action) Option {
	return func(o *options) { o.actions = actions }
}

// WithClientOptions adds options to every console's SentinelOne client.
func WithClientOptions(opts ...sentinelone.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithEmulator sets how a console whose url is "emulator" is served: start
// returns the base URL of an emulator accepting token, and a function that
// stops it.
func WithEmulator(start func(token string) (url string, stop func(), err error)) Option {
	return func(o *options) { o.startEmu = start }
}

// DefaultLeaseTTL is the lease TTL unless WithLeaseTTL says otherwise
// (lease.DefaultTTL).
const DefaultLeaseTTL = lease.DefaultTTL

// WithLeaseTTL sets the lease TTL (default DefaultLeaseTTL). Every replica
// of a deployment must use the same; tests shorten it.
func WithLeaseTTL(d time.Duration) Option { return func(o *options) { o.leaseTTL = d } }

// WithUAMRetry sets how long the alert ingestion of a console without
// Unified Alerts waits before asking again (default ingest.UAMRetry, an
// hour, as DESIGN.md §10 says); tests shorten it.
func WithUAMRetry(d time.Duration) Option { return func(o *options) { o.uamRetry = d } }

// New checks cfg and prepares a connector; it does not touch the network.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	subj, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	// The suffix comes from a generator of its own: the first characters of
	// nuid.Next() are the process-wide generator's prefix, the same for every
	// connector of a process, which would make two replicas in one process
	// one holder (of leases, and of a budget share).
	c := &Connector{cfg: cfg, log: log, subj: subj, holder: host + "-" + nuid.New().Next()[:8], metrics: newMetrics()}
	c.metrics.reg.MustRegister(prometheus.CollectorFunc(c.collectReady))
	for _, o := range opts {
		o(&c.opts)
	}
	if c.opts.leaseTTL <= 0 {
		c.opts.leaseTTL = DefaultLeaseTTL
	}
	if c.opts.actions == nil {
		c.opts.actions = handlers.All()
	}
	return c, nil
}

// Run starts the connector, serves until ctx ends, then stops gracefully:
// no new requests, those in flight finish within the drain timeout, the
// connection is drained.
func (c *Connector) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		c.Stop(context.Background())
		return err
	}
	<-ctx.Done()
	c.log.Info("stopping: no new requests; finishing those in flight", "drain_timeout", c.drainTimeout())
	stopCtx, cancel := context.WithTimeout(context.Background(), c.drainTimeout())
	defer cancel()
	return c.Stop(stopCtx)
}

func (c *Connector) drainTimeout() time.Duration {
	return c.cfg.Service.ActionTimeout + 5*time.Second
}

// Conn returns the NATS connection (nil before Start).
func (c *Connector) Conn() *nats.Conn { return c.nc }

// Embedded returns the embedded NATS server, or nil when NATS is external.
func (c *Connector) Embedded() *Embedded { return c.embedded }

// HTTPAddr returns the address of the health and metrics server ("" when
// http.listen is empty).
func (c *Connector) HTTPAddr() string { return c.httpAddr }

// Subjects returns the subject builder of the configured prefix.
func (c *Connector) Subjects() subjects.Subjects { return c.subj }

// Start connects to NATS (starting the embedded server when nats.url is
// empty), opens the stream and buckets, builds a SentinelOne client, the
// ingesters and the monitors per console, joins each console's rate budget,
// registers every action endpoint and starts the background loops. On
// error the caller should still call Stop.
func (c *Connector) Start(ctx context.Context) error {
	if err := c.connect(); err != nil {
		return err
	}
	addr, err := c.serveHTTP(c.cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	c.httpAddr = addr
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(sctx, c.nc, store.Options{Config: c.cfg, LeaseTTL: c.opts.leaseTTL})
	cancel()
	if err != nil {
		return err
	}
	consoles, err := c.buildConsoles(st)
	if err != nil {
		return err
	}
	c.buildGuards(st)
	c.mu.Lock()
	c.st, c.consoles = st, consoles
	c.mu.Unlock()
	// Each client sends nothing before its console's budget has joined.
	if err := c.startBudgets(); err != nil {
		return err
	}
	c.checkTokens(ctx, consoles)
	if err := c.register(); err != nil {
		return err
	}
	c.startBackground()
	return nil
}

// startBackground starts, per console, the ingestion loop of each source
// when ingest is enabled, the monitor loop, the tracking loop and the token check. The loops stop when Stop
// cancels them.
func (c *Connector) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	c.bgCancel = cancel
	for _, name := range c.cfg.ConsoleNames() {
		cs := c.consoles[name]
		if cs.cfg.Ingest.Enabled {
			for _, in := range cs.ingest {
				c.bg.Go(func() { in.Run(ctx) })
			}
		}
		c.bg.Go(func() { cs.monitors.Run(ctx) })
		c.bg.Go(func() { cs.tracking.Run(ctx) })
		c.bg.Go(func() { cs.token.Run(ctx) })
	}
}

// stopBackground stops the loops and waits for them (a leader releases its
// leases on the way out, so another replica takes over at once).
func (c *Connector) stopBackground() {
	if c.bgCancel != nil {
		c.bgCancel()
		c.bg.Wait()
	}
}

// IngestLeader reports whether this replica leads the threat ingestion of
// console.
func (c *Connector) IngestLeader(console string) bool {
	cs, ok := c.consoles[console]
	return ok && cs.ingester(subjects.EntityThreat).Leader()
}

// MonitorLeader reports whether this replica polls the monitors of console.
func (c *Connector) MonitorLeader(console string) bool {
	cs, ok := c.consoles[console]
	return ok && cs.monitors.Leading()
}

func (c *Connector) connect() error {
	if c.opts.conn != nil {
		c.nc = c.opts.conn
		return nil
	}
	n := c.cfg.NATS
	o := NATSOptions{
		URL: n.URL, Name: n.Name, CredsFile: n.CredsFile, NkeyFile: n.NKeyFile,
		Token: n.Token.Reveal(), User: n.User, Password: n.Password.Reveal(),
		CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		RetryOnFailedConnect: true,
	}
	url := n.URL
	if url == "" {
		emb, err := StartEmbedded(n.Embedded.Listen, n.Embedded.StoreDir, c.log)
		if err != nil {
			return err
		}
		c.embedded = emb
		url = emb.ClientURL()
	}
	nc, err := Connect(o, url, c.log)
	if err != nil {
		return err
	}
	c.nc = nc
	c.closers = append(c.closers, func() { _ = nc.Drain() })
	return nil
}

// maxPayload is the largest message the server takes. Start opens the store,
// which needs the server, before it builds the consoles and registers the
// endpoints, so the connection knows it by then; should it not (no connect
// yet), assume nats-server's default, 1 MB, so that list replies are cut to
// a size every server takes rather than not cut at all.
func (c *Connector) maxPayload() int64 {
	if n := c.nc.MaxPayload(); n > 0 {
		return n
	}
	return 1 << 20
}

// buildConsoles builds, per console, its SentinelOne client and handler
// environment, its ingesters and its monitors on st.
func (c *Connector) buildConsoles(st *store.Store) (map[string]*console, error) {
	consoles := map[string]*console{}
	maxReply := int(c.maxPayload()) - replyOverhead
	for _, name := range c.cfg.ConsoleNames() {
		cc := c.cfg.Consoles[name]
		url := cc.URL
		if u, ok := c.opts.consoleURL[name]; ok {
			url = u
		} else if url == config.Emulator {
			if c.opts.startEmu == nil {
				return nil, fmt.Errorf("consoles.%s.url: %q needs the built-in emulator, which this build did not provide", name, config.Emulator)
			}
			u, stop, err := c.opts.startEmu(cc.APIToken.Reveal())
			if err != nil {
				return nil, fmt.Errorf("consoles.%s: start emulator: %w", name, err)
			}
			c.closers = append(c.closers, stop)
			url = u
			c.log.Info("console served by the built-in emulator", "console", name, "url", url)
		}
		log := c.log.With("console", name)
		health := &consoleHealth{}
		mobs := c.metrics.clientObserver(name)
		b, err := c.newBudget(name, cc, st, log)
		if err != nil {
			return nil, err
		}
		obs := sentinelone.ObserverFuncs{
			OnRequestDone:   func(e sentinelone.RequestEvent) { mobs.RequestDone(e); health.observe(e) },
			OnRetry:         mobs.Retry,
			OnRateLimitWait: mobs.RateLimitWait,
		}
		client, err := sentinelone.New(sentinelone.Config{
			BaseURL:       url,
			Token:         cc.APIToken.Reveal(),
			Timeout:       cc.Timeout,
			RetryMax:      retryMax(cc.Retry.Max),
			RetryWaitMin:  cc.Retry.WaitMin,
			RetryWaitMax:  cc.Retry.WaitMax,
			RatePerSecond: cc.RateLimit.PerSecond,
			RateBurst:     cc.RateLimit.Burst,
			MaxConns:      c.cfg.Service.MaxInFlight,
			Logger:        log,
			UserAgent:     "s1bridge/" + Version,
		}, append([]sentinelone.Option{sentinelone.WithObserver(obs), sentinelone.WithLimiter(b.Limiter())}, c.opts.clientOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("consoles.%s: %w", name, err)
		}
		cs := &console{
			name: name, cfg: cc, health: health, budget: b,
			env: &handlers.Env{
				Console: name, Client: client, MaxReplyBytes: maxReply,
				DryRun: c.cfg.Service.DryRun, MaxTargets: cc.Actions.MaxTargets, Logger: log, Runtime: c,
			},
		}
		// Every console has its ingesters, so that ingest.status answers
		// (from KV) on a replica that does not ingest; Start runs them only
		// when ingest is enabled.
		cs.ingest = []*ingest.Ingester{ingest.New(ingest.Config{
			Console: name, Source: ingest.Threats(client),
			Interval: cc.Ingest.Interval, FirstFetch: cc.Ingest.FirstFetch, Overlap: cc.Ingest.Overlap, PageSize: cc.Ingest.PageSize,
			Store: st, Holder: c.holder, LeaseTTL: c.opts.leaseTTL,
			Log: log.With("loop", "ingest"), Observer: c.metrics, Mode: c.eventsMode(),
		})}
		if in := c.alertIngester(name, cc, client, st, log); in != nil {
			cs.ingest = append(cs.ingest, in)
		}
		for _, in := range cs.ingest {
			c.metrics.initSource(name, in.Entity())
		}
		cs.monitors = monitor.New(monitor.Config{
			Console: name, Client: client, Monitor: cc.Monitor, Overlap: cc.Ingest.Overlap, PageSize: cc.Ingest.PageSize,
			Store: st, Conn: c.nc, Holder: c.holder, LeaseTTL: c.opts.leaseTTL,
			Log: log.With("loop", "monitors"), Observer: c.metrics, Mode: c.eventsMode(),
		})
		cs.tracking = c.newTracking(name, cc, client, st, log)
		cs.token = c.tokenChecker(name, client, st, log)
		consoles[name] = cs
	}
	return consoles, nil
}

// alertIngester returns the console's Unified Alerts ingester (DESIGN.md
// §10), or nil when ingest.alerts.enabled is false. It shares the threat
// ingestion's interval, first fetch and overlap, and runs when ingestion is
// enabled (ingest.enabled stays the switch of the console's ingestion).
func (c *Connector) alertIngester(name string, cc config.Console, client *sentinelone.Client, st *store.Store, log *slog.Logger) *ingest.Ingester {
	if !cc.Ingest.Alerts.Enabled {
		return nil
	}
	return ingest.New(ingest.Config{
		Console: name, Source: ingest.Alerts(client, c.opts.uamRetry),
		Interval: cc.Ingest.Interval, FirstFetch: cc.Ingest.FirstFetch, Overlap: cc.Ingest.Overlap, PageSize: cc.Ingest.Alerts.PageSize,
		Store: st, Holder: c.holder, LeaseTTL: c.opts.leaseTTL,
		Log: log.With("loop", "ingest-alerts"), Observer: c.metrics, Mode: c.eventsMode(),
	})
}

// tokenCheckAtStart bounds the first read of the consoles' token expiry.
const tokenCheckAtStart = 5 * time.Second

// checkTokens reads every console's token expiry once, all at once, before
// the connector serves: the metric and /readyz have it from the start, and
// the call is not made among the first requests. A console that does not
// answer in tokenCheckAtStart is unknown until its checker reads it again.
func (c *Connector) checkTokens(ctx context.Context, consoles map[string]*console) {
	ctx, cancel := context.WithTimeout(sentinelone.WithLane(ctx, sentinelone.LaneBackground), tokenCheckAtStart)
	defer cancel()
	var wg sync.WaitGroup
	for _, cs := range consoles {
		wg.Go(func() { cs.token.Check(ctx) })
	}
	wg.Wait()
}

// tokenChecker is the credential health check of a console (DESIGN.md
// §14), which every replica runs: see package credentials.
func (c *Connector) tokenChecker(name string, client *sentinelone.Client, st *store.Store, log *slog.Logger) *credentials.Checker {
	return credentials.New(credentials.Config{
		Console: name, Client: client, Store: st, Mode: c.eventsMode(),
		Log: log.With("loop", "credentials"), Observer: c.metrics,
	})
}

// eventsMode is how every event publisher encodes its events
// (streams.events.mode, validated by config: binary unless it says
// structured). An event loop added later takes it the same way, through its
// Config's Mode.
func (c *Connector) eventsMode() ce.Mode {
	if m, ok := ce.ParseMode(c.cfg.Streams.Events.Mode); ok {
		return m
	}
	return ce.ModeBinary
}

// retryMax maps the configuration's retry.max (0 = no retries) onto the
// client's convention (0 = default, negative = none).
func retryMax(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// replyOverhead is what a reply adds around its data: CloudEvents headers
// or the structured envelope, and the micro error headers.
const replyOverhead = 4 << 10

// Stop stops taking requests, waits for those in flight until ctx ends
// (then cancels them: they answer 503), removes the service and drains the
// connection. It is safe to call after a failed Start.
func (c *Connector) Stop(ctx context.Context) error {
	var errs []error
	c.stopBackground()
	if c.svc != nil {
		if err := c.svc.drainEndpoints(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.disp != nil {
		c.disp.beginStop()
		if err := c.disp.wait(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.svc != nil {
		if err := c.svc.stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
	}
	// Nothing calls SentinelOne any more: give the budget to the others.
	if err := c.stopBudgets(ctx); err != nil {
		errs = append(errs, err)
	}
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
	if c.nc != nil && c.opts.conn == nil {
		waitClosed(c.nc, 5*time.Second)
	}
	if c.embedded != nil {
		c.embedded.Close()
	}
	return errors.Join(errs...)
}

// waitClosed waits until a draining connection has closed.
func waitClosed(nc *nats.Conn, max time.Duration) {
	deadline := time.Now().Add(max)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !nc.IsClosed() {
		nc.Close()
	}
}
