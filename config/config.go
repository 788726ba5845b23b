package config

import (
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/s1bridge/s1bridge/subjects"
)

// File and environment conventions.
const (
	// DefaultFile is the configuration file `s1bridge run` and `s1bridge
	// check` read when no --config is given.
	DefaultFile = "config.yaml"
	// EnvPrefix starts every environment variable that overrides a key.
	EnvPrefix = "S1BRIDGE_"
	// EnvSeparator separates the levels of a key in an environment variable
	// name (a single "_" belongs to key names such as api_token).
	EnvSeparator = "__"
	// Emulator is the console URL that runs the built-in SentinelOne
	// emulator in-process instead of calling a real console.
	Emulator = "emulator"
	// DemoToken is the API token of the console of [Demo]; the demo's
	// emulator must be started with it.
	DemoToken = "s1bridge-demo-token"
)

// Accepted values of the enumerated keys.
const (
	StorageFile   = "file"   // streams.*.storage: JetStream file storage
	StorageMemory = "memory" // streams.*.storage: JetStream memory storage

	LevelDebug = "debug" // log.level: everything, including each upstream call
	LevelInfo  = "info"  // log.level: the default
	LevelWarn  = "warn"  // log.level: problems only
	LevelError = "error" // log.level: failures only

	ModeBinary     = "binary"     // streams.events.mode: attributes in ce-* headers, data as the payload
	ModeStructured = "structured" // streams.events.mode: the whole CloudEvent as JSON (application/cloudevents+json)

	FormatText = "text" // log.format: tint, coloured on a terminal
	FormatJSON = "json" // log.format: one JSON object per line

	// OutputStderr is the log.output that writes to standard error; any
	// other value is a file path, opened for append.
	OutputStderr = "stderr"
)

type (
	// Config is the whole s1bridge configuration. The `koanf` tag of each
	// field is its key in config.yaml and, upper-cased, in S1BRIDGE_*
	// variables. Build one with [Default], [Demo] or [Load]; a Config built
	// in code should pass [Config.Validate]. A Config is not modified after
	// Load and may then be shared between goroutines.
	Config struct {
		NATS     NATS               `koanf:"nats"`
		Subjects Subjects           `koanf:"subjects"`
		Service  Service            `koanf:"service"`
		Consoles map[string]Console `koanf:"consoles"` // key: console name, a subject token
		Streams  Streams            `koanf:"streams"`
		HTTP     HTTP               `koanf:"http"`
		Log      Log                `koanf:"log"`

		// warnings are the problems Load found that do not stop a start.
		warnings []string
	}

	// NATS is how the connector reaches NATS. At most one of CredsFile,
	// NKeyFile, Token and User/Password authenticates the connection.
	NATS struct {
		// URL is the server URL, or a comma-separated list of them
		// (nats://, tls://, ws://, wss://). Empty starts an embedded server
		// configured by Embedded and connects in-process.
		URL string `koanf:"url"`
		// Name is the connection name shown by the server (`nats server
		// report connections`).
		Name string `koanf:"name"`
		// CredsFile is a NATS .creds file (user JWT and nkey seed).
		CredsFile string `koanf:"creds_file"`
		// NKeyFile is a file holding an nkey seed.
		NKeyFile string `koanf:"nkey_file"`
		// Token is a server authentication token.
		Token Secret `koanf:"token"`
		// User and Password authenticate with a user name and password.
		User     string `koanf:"user"`
		Password Secret `koanf:"password"`
		// TLS configures TLS to the server; files are PEM.
		TLS TLS `koanf:"tls"`
		// Embedded configures the server started when URL is empty.
		Embedded Embedded `koanf:"embedded"`
	}

	// TLS names the PEM files of a TLS client. CertFile and KeyFile go
	// together; CAFile alone verifies a server with a private CA.
	TLS struct {
		CAFile   string `koanf:"ca_file"`
		CertFile string `koanf:"cert_file"`
		KeyFile  string `koanf:"key_file"`
	}

	// Embedded configures the in-process NATS server with JetStream.
	Embedded struct {
		// Listen is the host:port clients (the nats CLI) connect to.
		Listen string `koanf:"listen"`
		// StoreDir holds the JetStream store, relative to the working
		// directory when relative.
		StoreDir string `koanf:"store_dir"`
	}

	// Subjects configures the subject grammar of DESIGN.md §3.
	Subjects struct {
		// Prefix is the first token of every subject.
		Prefix string `koanf:"prefix"`
	}

	// Service configures the action service.
	Service struct {
		// QueueGroup is the NATS queue group shared by every replica.
		QueueGroup string `koanf:"queue_group"`
		// MaxInFlight bounds the actions one process runs at once.
		MaxInFlight int `koanf:"max_in_flight"`
		// ActionTimeout is the default deadline of one action; a request's
		// expirytime may only shorten it.
		ActionTimeout time.Duration `koanf:"action_timeout"`
		// DryRun makes mutating actions validate, log and reply with what
		// they would do, without calling SentinelOne.
		DryRun bool `koanf:"dry_run"`
		// Idempotency makes a mutating request run at most once per
		// (console, CloudEvents source, id) within IdempotencyWindow, on
		// any replica (DESIGN.md §12). Turning it off is for measuring what
		// it costs; a retried request then runs again.
		Idempotency bool `koanf:"idempotency"`
		// IdempotencyWindow is how long the outcome of a mutating request
		// is kept for its repeats: the TTL of the requests bucket. It must
		// be longer than ActionTimeout.
		IdempotencyWindow time.Duration `koanf:"idempotency_window"`
	}

	// Console is one SentinelOne console. Exactly one of APIToken and
	// APITokenFile is set in the file and environment; after Load, APIToken
	// holds the token either way.
	Console struct {
		// URL is the console's base URL (https://usea1.sentinelone.net), or
		// [Emulator].
		URL string `koanf:"url"`
		// APIToken is the API token. Prefer APITokenFile.
		APIToken Secret `koanf:"api_token"`
		// APITokenFile is a file holding the token, read once at load and
		// trimmed of white space. Relative to the config file's folder.
		APITokenFile string `koanf:"api_token_file"`
		// Timeout bounds one HTTP call.
		Timeout time.Duration `koanf:"timeout"`
		// Retry governs retries of failed calls.
		Retry Retry `koanf:"retry"`
		// RateLimit caps calls to this console from the whole deployment,
		// shared by every path and every replica (DESIGN.md §14).
		RateLimit RateLimit `koanf:"rate_limit"`
		// Actions restricts the actions this console serves.
		Actions Actions `koanf:"actions"`
		// Ingest configures the threat poller that feeds the events stream.
		Ingest Ingest `koanf:"ingest"`
		// Monitor configures threats.monitor.
		Monitor Monitor `koanf:"monitor"`
		// Tracking configures the tracking of actions SentinelOne carries
		// out later (DESIGN.md §13).
		Tracking Tracking `koanf:"tracking"`
	}

	// Retry is the retry policy of one console's HTTP calls: exponential
	// back-off from WaitMin to WaitMax, or the server's Retry-After.
	Retry struct {
		// Max counts retries, so a call is attempted at most Max+1 times.
		Max     int           `koanf:"max"`
		WaitMin time.Duration `koanf:"wait_min"`
		WaitMax time.Duration `koanf:"wait_max"`
	}

	// RateLimit is a token bucket: PerSecond tokens a second, at most Burst
	// at once.
	RateLimit struct {
		PerSecond float64 `koanf:"per_second"`
		Burst     int     `koanf:"burst"`
	}

	// Actions restricts a console's actions.
	Actions struct {
		// Deny lists action names (e.g. agents.disconnect) this console
		// refuses with a 403.
		Deny []string `koanf:"deny"`
		// MaxTargets bounds how many ids (agents, threats, alerts) one
		// request of a mutating action may name, 1 to MaxTargetsMax: more
		// is refused with a 400 before SentinelOne is called (DESIGN.md
		// §11), so that no single request acts on more hosts than this.
		MaxTargets int `koanf:"max_targets"`
	}

	// Ingest configures the threat poller of one console.
	Ingest struct {
		Enabled bool `koanf:"enabled"`
		// Interval is the time between polls.
		Interval time.Duration `koanf:"interval"`
		// FirstFetch is how far back the very first poll looks.
		FirstFetch time.Duration `koanf:"first_fetch"`
		// PageSize is the page size asked of SentinelOne, 1 to 1000.
		PageSize int `koanf:"page_size"`
		// Overlap is the re-read window behind the watermark.
		Overlap time.Duration `koanf:"overlap"`
		// Alerts configures the ingestion of Unified Alerts (DESIGN.md
		// §10), which shares Interval, FirstFetch and Overlap.
		Alerts IngestAlerts `koanf:"alerts"`
	}

	// IngestAlerts configures the ingestion of Unified Alerts of one
	// console.
	IngestAlerts struct {
		// Enabled publishes Unified Alerts to the events stream; it takes
		// effect when Ingest.Enabled, the switch of the console's ingestion.
		Enabled bool `koanf:"enabled"`
		// PageSize is the GraphQL page size (first), 1 to 1000.
		PageSize int `koanf:"page_size"`
	}

	// Monitor configures threats.monitor on one console.
	Monitor struct {
		// PollInterval is the default poll interval; a request's
		// pollInterval overrides it.
		PollInterval time.Duration `koanf:"poll_interval"`
		// DefaultTimeout is a monitor's lifetime when the request gives
		// none.
		DefaultTimeout time.Duration `koanf:"default_timeout"`
	}

	// Tracking configures action tracking on one console: how often the
	// one poller asks SentinelOne for the activities that confirm the
	// tracked actions, and how long it waits for them.
	Tracking struct {
		// PollInterval is the time between two activities queries, at
		// least MinPollInterval.
		PollInterval time.Duration `koanf:"poll_interval"`
		// Timeout is how long an action is tracked when the request gives
		// no trackTimeout: 1s to MaxTrackTimeout.
		Timeout time.Duration `koanf:"timeout"`
	}

	// Streams configures the JetStream streams the connector creates.
	Streams struct {
		Events EventsStream `koanf:"events"`
		Audit  AuditStream  `koanf:"audit"`
	}

	// EventsStream is the events stream's settings: a Stream's, and how
	// every event is encoded (DESIGN.md §14).
	EventsStream struct {
		Stream `koanf:",squash"`
		// Mode is ModeBinary or ModeStructured: every event publisher
		// (ingestion, monitors, action tracking) encodes its events so.
		// Nats-Msg-Id and the subjects are the same in both.
		Mode string `koanf:"mode"`
	}

	// AuditStream is the audit stream of DESIGN.md §12: every execution
	// and refusal of a mutating action. Its replicas and storage are the
	// events stream's; its de-duplication window is
	// service.idempotency_window (at most MaxAge), so that a repeat of a
	// request never writes a record twice.
	AuditStream struct {
		// Enabled writes the audit records, and makes a mutating action
		// fail closed (503) when its requested record cannot be stored.
		// Turning it off is an explicit choice of the operator: nothing is
		// then recorded of who ran what.
		Enabled bool `koanf:"enabled"`
		// Name is the stream's name; empty means the prefix's
		// (AuditStreamName).
		Name string `koanf:"name"`
		// MaxAge is how long records are kept; 0 keeps them forever.
		MaxAge time.Duration `koanf:"max_age"`
	}

	// Stream is a JetStream stream's settings.
	Stream struct {
		// Name is the stream's name; empty means the prefix's
		// (EventsStreamName).
		Name     string `koanf:"name"`
		Replicas int    `koanf:"replicas"`
		// MaxAge is how long messages are kept; 0 keeps them forever.
		MaxAge time.Duration `koanf:"max_age"`
		// Duplicates is the de-duplication window of Nats-Msg-Id.
		Duplicates time.Duration `koanf:"duplicates"`
		// Storage is StorageFile or StorageMemory.
		Storage string `koanf:"storage"`
	}

	// HTTP configures the HTTP server of /healthz, /readyz and /metrics.
	HTTP struct {
		Listen string `koanf:"listen"`
	}

	// Log configures the process logger (package logging).
	Log struct {
		// Level is LevelDebug, LevelInfo, LevelWarn or LevelError.
		Level string `koanf:"level"`
		// Format is FormatText or FormatJSON.
		Format string `koanf:"format"`
		// Output is OutputStderr or a file path (opened for append, 0600).
		Output string `koanf:"output"`
	}
)

// Default returns the defaults of DESIGN.md §2: a single console `main` at
// https://usea1.sentinelone.net with no token, so Default alone does not
// validate. Each call returns a new Config the caller may modify.
func Default() *Config {
	main := DefaultConsole()
	main.URL = "https://usea1.sentinelone.net"
	return &Config{
		NATS: NATS{
			URL:      "nats://127.0.0.1:4222",
			Name:     "s1bridge",
			Embedded: Embedded{Listen: "127.0.0.1:4222", StoreDir: "./data/nats"},
		},
		Subjects: Subjects{Prefix: "s1"},
		Service: Service{
			QueueGroup:    "s1bridge",
			MaxInFlight:   256,
			ActionTimeout: 30 * time.Second,

			Idempotency:       true,
			IdempotencyWindow: 24 * time.Hour,
		},
		Consoles: map[string]Console{"main": main},
		Streams: Streams{Events: EventsStream{
			Stream: Stream{
				Name:       "", // the prefix's: EventsStreamName
				Replicas:   1,
				MaxAge:     720 * time.Hour,
				Duplicates: 10 * time.Minute,
				Storage:    StorageFile,
			},
			Mode: ModeBinary,
		}, Audit: AuditStream{
			Enabled: true,
			Name:    "", // the prefix's: AuditStreamName
			MaxAge:  8760 * time.Hour,
		}},
		HTTP: HTTP{Listen: "127.0.0.1:8080"},
		Log:  Log{Level: LevelInfo, Format: FormatText, Output: OutputStderr},
	}
}

// DefaultConsole returns the defaults every console starts from, whether the
// file spells it out in full or names only its url and token. It has no URL
// and no token: those have no sensible default.
func DefaultConsole() Console {
	return Console{
		Timeout:   30 * time.Second,
		Retry:     Retry{Max: 4, WaitMin: 500 * time.Millisecond, WaitMax: 30 * time.Second},
		RateLimit: RateLimit{PerSecond: 10, Burst: 20},
		Actions:   Actions{Deny: []string{}, MaxTargets: DefaultMaxTargets},
		Ingest: Ingest{
			Enabled:    true,
			Interval:   30 * time.Second,
			FirstFetch: 72 * time.Hour,
			PageSize:   1000,
			Overlap:    5 * time.Minute,
			Alerts:     IngestAlerts{Enabled: true, PageSize: 500},
		},
		Monitor:  Monitor{PollInterval: 30 * time.Second, DefaultTimeout: 12 * time.Hour},
		Tracking: Tracking{PollInterval: 10 * time.Second, Timeout: time.Hour},
	}
}

// Demo returns the configuration of `s1bridge demo`: an embedded NATS server
// listening on 127.0.0.1:4222 with its store under the system temporary
// folder, and one console `main` served by the in-process emulator with
// [DemoToken], polled every 5 seconds so new threats show up quickly. It
// validates as is; pass it as [Options.Base] to apply a file and S1BRIDGE_*
// overrides on top.
func Demo() *Config {
	c := Default()
	c.NATS.URL = ""
	c.NATS.Embedded = Embedded{
		Listen:   "127.0.0.1:4222",
		StoreDir: filepath.Join(os.TempDir(), "s1bridge-demo", "nats"),
	}
	main := DefaultConsole()
	main.URL = Emulator
	main.APIToken = NewSecret(DemoToken)
	main.Ingest.Interval = 5 * time.Second
	main.Monitor.PollInterval = 5 * time.Second
	main.Tracking.PollInterval = 2 * time.Second
	c.Consoles = map[string]Console{"main": main}
	return c
}

// ConsoleNames returns the console names, sorted.
func (c *Config) ConsoleNames() []string {
	return slices.Sorted(maps.Keys(c.Consoles))
}

// Secrets returns every secret value of c (console API tokens, the NATS token
// and password, a password inside nats.url), without duplicates, for the log
// redactor. The caller must not log the result.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, name := range c.ConsoleNames() {
		add(c.Consoles[name].APIToken.Reveal())
	}
	add(c.NATS.Token.Reveal())
	add(c.NATS.Password.Reveal())
	for u := range strings.SplitSeq(c.NATS.URL, ",") {
		if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.User != nil {
			if p, ok := pu.User.Password(); ok {
				add(p)
			} else {
				// nats://TOKEN@host carries a token as the user name.
				add(pu.User.Username())
			}
		}
	}
	return out
}

// EventsStreamName is the name of the events stream: streams.events.name,
// or when that is empty the prefix's (S1_EVENTS with prefix s1, DESIGN.md
// §9). It is "" for an invalid prefix, which Validate refuses.
func (c *Config) EventsStreamName() string {
	if c.Streams.Events.Name != "" {
		return c.Streams.Events.Name
	}
	s, err := subjects.New(c.Subjects.Prefix)
	if err != nil {
		return ""
	}
	return s.EventsStream()
}

// AuditStreamName is the name of the audit stream: streams.audit.name, or
// when that is empty the prefix's (S1_AUDIT with prefix s1, DESIGN.md §9,
// §12). It is "" for an invalid prefix, which Validate refuses.
func (c *Config) AuditStreamName() string {
	if c.Streams.Audit.Name != "" {
		return c.Streams.Audit.Name
	}
	s, err := subjects.New(c.Subjects.Prefix)
	if err != nil {
		return ""
	}
	return s.AuditStream()
}

// AuditDuplicates is the audit stream's de-duplication window:
// service.idempotency_window, cut to streams.audit.max_age when that is
// shorter (JetStream refuses a window longer than the messages live).
func (c *Config) AuditDuplicates() time.Duration {
	d := c.Service.IdempotencyWindow
	if m := c.Streams.Audit.MaxAge; m > 0 && m < d {
		d = m
	}
	return d
}

// Warnings returns what Load found worth telling but not worth refusing to
// start for, such as a token file readable by others. Each names its key.
func (c *Config) Warnings() []string { return slices.Clone(c.warnings) }

// clone returns a deep copy of c, so that loading on top of a base never
// changes the base.
func (c *Config) clone() *Config {
	out := *c
	out.warnings = slices.Clone(c.warnings)
	out.Consoles = make(map[string]Console, len(c.Consoles))
	for name, con := range c.Consoles {
		out.Consoles[name] = con.clone()
	}
	return &out
}

func (c Console) clone() Console {
	if c.Actions.Deny != nil {
		c.Actions.Deny = slices.Clone(c.Actions.Deny)
	}
	return c
}
