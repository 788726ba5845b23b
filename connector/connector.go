// Package connector is the s1bridge runtime: the NATS connection (or an
// embedded server), the micro service with one endpoint per action and
// console, the bounded dispatch of requests to handlers, the CloudEvents
// replies, and the lifecycle that starts and drains them.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/s1bridge/s1bridge/config"
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

// Actions is the table of every action s1bridge serves: handlers.All, then
// the actions the runtime answers, in the order of DESIGN.md §4.
func Actions() []handlers.Action {
	return append(handlers.All(), handlers.ThreatsMonitor, handlers.MonitorsList, handlers.MonitorsCancel, handlers.IngestStatus)
}

// Connector runs s1bridge for one configuration. Create it with New, then
// call Run (or Start and Stop). It is not reusable after Stop.
type Connector struct {
	cfg      *config.Config
	log      *slog.Logger
	subj     subjects.Subjects
	opts     options
	obs      observer
	metrics  *metrics
	health   map[string]*consoleHealth
	httpAddr string

	nc       *nats.Conn
	embedded *Embedded
	svc      *service
	disp     *dispatcher
	envs     map[string]*handlers.Env
	closers  []func()

	st        *stores
	holder    string // this replica's id in leases
	ingesters map[string]*ingester
	monitors  map[string]*monitorSet // built before the endpoints, read-only after
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup // background loops: ingestion, monitors
}

type options struct {
	conn       *nats.Conn                                 // use this connection instead of dialling
	consoleURL map[string]string                          // console name → base URL override
	actions    []handlers.Action                          // the action table, default handlers.All()
	clientOpts []sentinelone.Option                       // extra client options (tests)
	startEmu   func(token string) (string, func(), error) // runs the built-in emulator for url "emulator"
	leaseTTL   time.Duration
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

// WithActions replaces the action table (tests register extra actions).
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

// WithLeaseTTL sets the lease TTL (default DefaultLeaseTTL). Every replica
// of a deployment must use the same; tests shorten it.
func WithLeaseTTL(d time.Duration) Option { return func(o *options) { o.leaseTTL = d } }

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
	c := &Connector{cfg: cfg, log: log, subj: subj, holder: host + "-" + nuid.Next()[:8], ingesters: map[string]*ingester{}, health: map[string]*consoleHealth{}}
	c.metrics = newMetrics()
	c.obs = c.metrics
	for _, o := range opts {
		o(&c.opts)
	}
	if c.opts.leaseTTL <= 0 {
		c.opts.leaseTTL = DefaultLeaseTTL
	}
	if c.opts.actions == nil {
		c.opts.actions = Actions()
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
// empty), builds a SentinelOne client per console and registers every action
// endpoint. On error the caller should still call Stop.
func (c *Connector) Start(ctx context.Context) error {
	if err := c.connect(); err != nil {
		return err
	}
	addr, err := c.serveHTTP(c.cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	c.httpAddr = addr
	if err := c.buildConsoles(); err != nil {
		return err
	}
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c.st, err = openStores(sctx, js, c.cfg, c.subj, c.opts.leaseTTL)
	cancel()
	if err != nil {
		return err
	}
	c.buildMonitors()
	if err := c.register(); err != nil {
		return err
	}
	c.startBackground()
	return nil
}

// startBackground starts one ingestion loop per console with ingest enabled
// and one monitor loop per console. The loops stop when Stop cancels them.
func (c *Connector) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	c.bgCancel = cancel
	for _, name := range c.consoleNames() {
		cc := c.cfg.Consoles[name]
		in := &ingester{
			console: name, client: c.envs[name].Client, cfg: cc.Ingest, subj: c.subj, st: c.st,
			holder: c.holder, log: c.log.With("console", name, "loop", "ingest"), obs: c.obs,
			leaseTTL: c.opts.leaseTTL,
		}
		c.ingesters[name] = in
		if !cc.Ingest.Enabled {
			continue
		}
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			in.run(ctx)
		}()
	}
	for _, ms := range c.monitors {
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			ms.run(ctx)
		}()
	}
}

// buildMonitors prepares the monitors of every console (monitor.go). It runs
// before the endpoints are registered, so requests never see the map change.
func (c *Connector) buildMonitors() {
	c.monitors = map[string]*monitorSet{}
	for _, name := range c.consoleNames() {
		cc := c.cfg.Consoles[name]
		c.monitors[name] = &monitorSet{
			console: name, client: c.envs[name].Client, cfg: cc.Monitor, overlap: cc.Ingest.Overlap,
			pageSize: cc.Ingest.PageSize, subj: c.subj, st: c.st, nc: c.nc, holder: c.holder,
			log: c.log.With("console", name, "loop", "monitors"), obs: c.metrics, leaseTTL: c.opts.leaseTTL,
		}
	}
}

// monitorSet returns the monitors of console, or a 503 when it has none.
func (c *Connector) monitorSet(console string) (*monitorSet, error) {
	ms, ok := c.monitors[console]
	if !ok {
		return nil, handlers.Errorf(handlers.CodeUnavailable, "monitors of console %s are not running", console)
	}
	return ms, nil
}

// StartMonitor implements handlers.Runtime.
func (c *Connector) StartMonitor(ctx context.Context, console string, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
	ms, err := c.monitorSet(console)
	if err != nil {
		return nil, err
	}
	return ms.start(ctx, spec)
}

// ListMonitors implements handlers.Runtime.
func (c *Connector) ListMonitors(ctx context.Context, console string) ([]handlers.MonitorItem, error) {
	ms, err := c.monitorSet(console)
	if err != nil {
		return nil, err
	}
	return ms.list(ctx)
}

// MonitorLeader reports whether this replica polls the monitors of console.
func (c *Connector) MonitorLeader(console string) bool {
	ms, ok := c.monitors[console]
	return ok && ms.leading.Load()
}

// CancelMonitor implements handlers.Runtime.
func (c *Connector) CancelMonitor(ctx context.Context, console, id string) error {
	ms, err := c.monitorSet(console)
	if err != nil {
		return err
	}
	return ms.cancel(ctx, id)
}

// stopBackground stops the loops and waits for them (a leader releases its
// leases on the way out, so another replica takes over at once).
func (c *Connector) stopBackground() {
	if c.bgCancel != nil {
		c.bgCancel()
		c.bg.Wait()
	}
}

// IngestLeader reports whether this replica leads the ingestion of console.
func (c *Connector) IngestLeader(console string) bool {
	in, ok := c.ingesters[console]
	if !ok {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.leader
}

// IngestStatus implements handlers.Runtime.
func (c *Connector) IngestStatus(ctx context.Context, console string) (any, error) {
	in, ok := c.ingesters[console]
	if !ok {
		return nil, handlers.Errorf(handlers.CodeUnavailable, "ingestion is not running")
	}
	s, err := in.status(ctx)
	if err != nil {
		return nil, handlers.Errorf(handlers.CodeUnavailable, "ingestion state unreadable: %v", err)
	}
	return s, nil
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

// maxPayload is the largest message the server takes. Until the first
// connect succeeds (NATS not up at start) the connection does not know it:
// then assume nats-server's default, 1 MB, so that list replies are cut to
// a size every server takes rather than not cut at all.
func (c *Connector) maxPayload() int64 {
	if n := c.nc.MaxPayload(); n > 0 {
		return n
	}
	return 1 << 20
}

func (c *Connector) buildConsoles() error {
	c.envs = map[string]*handlers.Env{}
	maxReply := int(c.maxPayload()) - replyOverhead
	for _, name := range c.consoleNames() {
		cc := c.cfg.Consoles[name]
		url := cc.URL
		if u, ok := c.opts.consoleURL[name]; ok {
			url = u
		} else if url == config.Emulator {
			if c.opts.startEmu == nil {
				return fmt.Errorf("consoles.%s.url: %q needs the built-in emulator, which this build did not provide", name, config.Emulator)
			}
			u, stop, err := c.opts.startEmu(cc.APIToken.Reveal())
			if err != nil {
				return fmt.Errorf("consoles.%s: start emulator: %w", name, err)
			}
			c.closers = append(c.closers, stop)
			url = u
			c.log.Info("console served by the built-in emulator", "console", name, "url", url)
		}
		log := c.log.With("console", name)
		health := &consoleHealth{}
		c.health[name] = health
		mobs := c.metrics.clientObserver(name)
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
		}, append([]sentinelone.Option{sentinelone.WithObserver(obs)}, c.opts.clientOpts...)...)
		if err != nil {
			return fmt.Errorf("consoles.%s: %w", name, err)
		}
		c.envs[name] = &handlers.Env{
			Console: name, Client: client, MaxReplyBytes: maxReply,
			DryRun: c.cfg.Service.DryRun, Logger: log, Runtime: c,
		}
	}
	return nil
}

// retryMax maps the configuration's retry.max (0 = no retries) onto the
// client's convention (0 = default, negative = none).
func retryMax(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// publishAckTimeout bounds the wait for the ack of one asynchronous publish
// (events, states, monitor records). In a cluster, a message the stream's
// leader took as it stepped down (its node shutting down) may never be
// acknowledged: without a bound, the ingestion and monitor loops would wait
// for that ack forever while their leases, in another stream, kept being
// renewed. A timed-out publish fails the page, which is retried: the events'
// ids and the states' compare-and-set make a retry safe.
const publishAckTimeout = 5 * time.Second

// replyOverhead is what a reply adds around its data: CloudEvents headers
// or the structured envelope, and the micro error headers.
const replyOverhead = 4 << 10

func (c *Connector) consoleNames() []string {
	names := make([]string, 0, len(c.cfg.Consoles))
	for n := range c.cfg.Consoles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Connector) register() error {
	svc, err := newService(c.nc, subjects.ServiceName, Version, subjects.ServiceDescription, map[string]string{
		"prefix": c.subj.Prefix(), "commit": Commit(),
	})
	if err != nil {
		return fmt.Errorf("register micro service: %w", err)
	}
	c.svc = svc
	c.disp = newDispatcher(c.log, c.cfg.Service.MaxInFlight, c.cfg.Service.ActionTimeout, 0, c.obs)
	c.disp.maxPayload = c.maxPayload()
	for _, name := range c.consoleNames() {
		cc := c.cfg.Consoles[name]
		for _, a := range c.opts.actions {
			r := &route{action: a, env: c.envs[name], subject: c.subj.Action(name, a.Name)}
			for _, d := range cc.Actions.Deny {
				if d == a.Name {
					r.denied = true
				}
			}
			meta := map[string]string{
				subjects.MetaConsole:      name,
				subjects.MetaAction:       a.Name,
				subjects.MetaRequestType:  subjects.RequestType(a.Name),
				subjects.MetaResponseType: subjects.ResponseType(a.Name),
				subjects.MetaMutating:     fmt.Sprint(a.Mutating),
				subjects.MetaDescription:  a.Description,
			}
			ep, err := svc.addEndpoint(subjects.EndpointName(name, a.Name), r.subject, c.cfg.Service.QueueGroup, meta,
				func(_ *endpoint, m *nats.Msg) { c.disp.handle(r, m) })
			if err != nil {
				return fmt.Errorf("register %s: %w", r.subject, err)
			}
			r.ep = ep
		}
	}
	// The subscriptions exist once the server has processed them: flush, so
	// that Start returning means requests are served.
	if err := c.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("register endpoints: %w", err)
	}
	// The server answers a refused subscription before the flush's PONG: a
	// replica that may not subscribe to its subjects must not start and
	// look ready while serving nothing.
	if err := c.nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("register endpoints: %w (the NATS user needs subscribe permission on %s and the $SRV subjects: see deploy/nats/nats-server.conf)",
			err, c.subj.Action("*", ">"))
	}
	c.log.Info("serving actions", "consoles", len(c.envs), "actions", len(c.opts.actions),
		"subjects", c.subj.Action("<console>", "<action>"), "queue_group", c.cfg.Service.QueueGroup)
	return nil
}

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
