package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s1bridge/s1bridge/subjects"
)

// Limits enforced by Validate.
const (
	MaxInFlightMax  = 100000      // service.max_in_flight is 1 to MaxInFlightMax
	PageSizeMax     = 1000        // consoles.*.ingest.page_size is 1 to PageSizeMax (SentinelOne's limit)
	RetryMaxMax     = 20          // consoles.*.retry.max is 0 to RetryMaxMax
	ReplicasMax     = 5           // streams.*.replicas is 1 to ReplicasMax (JetStream's limit)
	MinPollInterval = time.Second // consoles.*.monitor.poll_interval is at least MinPollInterval
	MaxTargetsMax   = 5000        // consoles.*.actions.max_targets is 1 to MaxTargetsMax (SentinelOne's largest ids filter)
	// MinTrackTimeout and MaxTrackTimeout bound consoles.*.tracking.timeout
	// and a request's trackTimeout (DESIGN.md §13).
	MinTrackTimeout = time.Second
	MaxTrackTimeout = 24 * time.Hour
)

// DefaultMaxTargets is the default of consoles.*.actions.max_targets.
const DefaultMaxTargets = 100

// actionNameRE is the syntax of an action name: dotted lower-case words, such
// as agents.disconnect.
var actionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Validate checks every value of c and returns all problems joined, each a
// [*FieldError] naming its key, or nil. It does not touch the file system:
// Load also reads the token files and checks that the other files it names
// can be read. It does not refuse a console with both api_token and
// api_token_file set (Load does), because after Load both are.
func (c *Config) Validate() error {
	var p problems
	c.validate(&p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	c.NATS.validate(p)
	if !subjects.ValidToken(c.Subjects.Prefix) {
		p.addf("subjects.prefix", notToken)
	}
	c.Service.validate(p)
	c.validateConsoles(p)
	c.Streams.Events.validate(p, "streams.events")
	c.validateAudit(p)
	if err := checkListen(c.HTTP.Listen); err != nil {
		p.add("http.listen", err)
	}
	c.Log.validate(p)
}

const notToken = "must be a non-empty NATS subject token of [A-Za-z0-9_-]"

func (n *NATS) validate(p *problems) {
	if n.URL == "" {
		if err := checkListen(n.Embedded.Listen); err != nil {
			p.add("nats.embedded.listen", err)
		}
		if n.Embedded.StoreDir == "" {
			p.addf("nats.embedded.store_dir", "required when nats.url is empty (embedded server)")
		}
	} else {
		for i, u := range strings.Split(n.URL, ",") {
			// The URL is not echoed: it may carry a password or token.
			if !natsURL(strings.TrimSpace(u)) {
				p.add("nats.url", fmt.Errorf("entry %d is not a nats://, tls://, ws:// or wss:// URL with a host", i+1))
			}
		}
	}
	var auth []string
	if n.CredsFile != "" {
		auth = append(auth, "creds_file")
	}
	if n.NKeyFile != "" {
		auth = append(auth, "nkey_file")
	}
	if !n.Token.IsZero() {
		auth = append(auth, "token")
	}
	if n.User != "" || !n.Password.IsZero() {
		auth = append(auth, "user")
		if n.User == "" {
			p.addf("nats.user", "required with nats.password")
		}
		if n.Password.IsZero() {
			p.addf("nats.password", "required with nats.user")
		}
	}
	for _, k := range auth[min(1, len(auth)):] {
		p.add("nats."+k, fmt.Errorf("conflicts with nats.%s: set only one of creds_file, nkey_file, token, user/password", auth[0]))
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		if n.TLS.CertFile == "" {
			p.addf("nats.tls.cert_file", "required with nats.tls.key_file")
		} else {
			p.addf("nats.tls.key_file", "required with nats.tls.cert_file")
		}
	}
}

func natsURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

func (s *Service) validate(p *problems) {
	if !subjects.ValidToken(s.QueueGroup) {
		p.addf("service.queue_group", notToken)
	}
	intRange(p, "service.max_in_flight", s.MaxInFlight, 1, MaxInFlightMax)
	positive(p, "service.action_timeout", s.ActionTimeout)
	// A record must outlive the request it is about, or a repeat arriving
	// while the first still runs would find nothing and run it again.
	if s.IdempotencyWindow <= s.ActionTimeout {
		p.add("service.idempotency_window", fmt.Errorf("%s must be more than service.action_timeout %s", s.IdempotencyWindow, s.ActionTimeout))
	}
}

func (c *Config) validateAudit(p *problems) {
	a := c.Streams.Audit
	if a.Name != "" && !subjects.ValidToken(a.Name) {
		p.addf("streams.audit.name", "must be a stream name of [A-Za-z0-9_-], or empty for the prefix's")
	}
	if a.MaxAge < 0 {
		p.addf("streams.audit.max_age", "must not be negative (0 keeps records forever)")
	}
	if name := c.AuditStreamName(); name != "" && name == c.EventsStreamName() {
		p.add("streams.audit.name", fmt.Errorf("%s is also the events stream (streams.events.name): the audit records need a stream of their own", name))
	}
}

func (c *Config) validateConsoles(p *problems) {
	if len(c.Consoles) == 0 {
		p.addf("consoles", "at least one console is required")
		return
	}
	names := c.ConsoleNames()
	for i, name := range names {
		key := "consoles." + name
		if !subjects.ValidToken(name) {
			p.add(key, fmt.Errorf("console name %s", notToken))
		}
		// Names that differ only in case would make S1BRIDGE_CONSOLES__X
		// ambiguous and are too easily confused on a dashboard.
		for _, other := range names[:i] {
			if strings.EqualFold(name, other) {
				p.add(key, fmt.Errorf("same name as consoles.%s apart from case", other))
			}
		}
		con := c.Consoles[name]
		con.validate(p, key)
	}
}

func (c *Console) validate(p *problems, key string) {
	if err := checkConsoleURL(c.URL); err != nil {
		p.add(key+".url", err)
	}
	if c.APIToken.IsZero() && c.APITokenFile == "" {
		p.addf(key+".api_token", "required (or api_token_file)")
	}
	positive(p, key+".timeout", c.Timeout)
	intRange(p, key+".retry.max", c.Retry.Max, 0, RetryMaxMax)
	positive(p, key+".retry.wait_min", c.Retry.WaitMin)
	positive(p, key+".retry.wait_max", c.Retry.WaitMax)
	if c.Retry.WaitMin > c.Retry.WaitMax {
		p.add(key+".retry.wait_min", fmt.Errorf("%s is more than retry.wait_max %s", c.Retry.WaitMin, c.Retry.WaitMax))
	}
	if !(c.RateLimit.PerSecond > 0) { // also refuses NaN
		p.addf(key+".rate_limit.per_second", "must be more than 0")
	}
	if c.RateLimit.Burst < 1 {
		p.addf(key+".rate_limit.burst", "must be at least 1")
	}
	for i, a := range c.Actions.Deny {
		if !actionNameRE.MatchString(a) {
			p.add(fmt.Sprintf("%s.actions.deny[%d]", key, i), fmt.Errorf("%q is not an action name (dotted lower-case words, e.g. agents.disconnect)", a))
		}
	}
	intRange(p, key+".actions.max_targets", c.Actions.MaxTargets, 1, MaxTargetsMax)
	positive(p, key+".ingest.interval", c.Ingest.Interval)
	positive(p, key+".ingest.first_fetch", c.Ingest.FirstFetch)
	intRange(p, key+".ingest.page_size", c.Ingest.PageSize, 1, PageSizeMax)
	intRange(p, key+".ingest.alerts.page_size", c.Ingest.Alerts.PageSize, 1, PageSizeMax)
	if c.Ingest.Overlap < 0 {
		p.addf(key+".ingest.overlap", "must not be negative")
	}
	if c.Monitor.PollInterval < MinPollInterval {
		p.add(key+".monitor.poll_interval", fmt.Errorf("must be at least %s", MinPollInterval))
	}
	positive(p, key+".monitor.default_timeout", c.Monitor.DefaultTimeout)
	if c.Tracking.PollInterval < MinPollInterval {
		p.add(key+".tracking.poll_interval", fmt.Errorf("must be at least %s", MinPollInterval))
	}
	if c.Tracking.Timeout < MinTrackTimeout || c.Tracking.Timeout > MaxTrackTimeout {
		p.add(key+".tracking.timeout", fmt.Errorf("%s is out of range %s to %s", c.Tracking.Timeout, MinTrackTimeout, MaxTrackTimeout))
	}
}

// checkConsoleURL accepts Emulator or an absolute http(s) URL with a host and
// without credentials, query or fragment (the client appends /web/api/v2.1).
func checkConsoleURL(s string) error {
	if s == Emulator {
		return nil
	}
	if s == "" {
		return fmt.Errorf("required: an https:// URL or %q", Emulator)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("not an absolute http(s) URL (or %q)", Emulator)
	case u.User != nil:
		return fmt.Errorf("must not carry credentials: use api_token_file")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("must not have a query or fragment")
	}
	return nil
}

func (s *EventsStream) validate(p *problems, key string) {
	s.Stream.validate(p, key)
	oneOf(p, key+".mode", s.Mode, ModeBinary, ModeStructured)
}

func (s *Stream) validate(p *problems, key string) {
	if s.Name != "" && !subjects.ValidToken(s.Name) {
		p.addf(key+".name", "must be a stream name of [A-Za-z0-9_-], or empty for the prefix's")
	}
	intRange(p, key+".replicas", s.Replicas, 1, ReplicasMax)
	if s.MaxAge < 0 {
		p.addf(key+".max_age", "must not be negative (0 keeps messages forever)")
	}
	positive(p, key+".duplicates", s.Duplicates)
	// JetStream refuses a de-duplication window longer than the messages live.
	if s.MaxAge > 0 && s.Duplicates > s.MaxAge {
		p.add(key+".duplicates", fmt.Errorf("%s is more than max_age %s", s.Duplicates, s.MaxAge))
	}
	oneOf(p, key+".storage", s.Storage, StorageFile, StorageMemory)
}

func (l *Log) validate(p *problems) {
	oneOf(p, "log.level", l.Level, LevelDebug, LevelInfo, LevelWarn, LevelError)
	oneOf(p, "log.format", l.Format, FormatText, FormatJSON)
	if l.Output == "" {
		p.add("log.output", fmt.Errorf("required: %q or a file path", OutputStderr))
	}
}

// checkListen accepts host:port with a numeric port (0 picks a free one); an
// empty host listens on every interface.
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port: %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func positive(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.addf(key, "must be more than 0")
	}
}

func intRange(p *problems, key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(key, fmt.Errorf("%d is out of range %d to %d", v, lo, hi))
	}
}

func oneOf(p *problems, key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(key, fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	}
}

// checkDenied reports deny entries that are not in known, when the caller
// knows the action names.
func (c *Config) checkDenied(p *problems, known []string) {
	if known == nil {
		return
	}
	for _, name := range c.ConsoleNames() {
		for i, a := range c.Consoles[name].Actions.Deny {
			if actionNameRE.MatchString(a) && !slices.Contains(known, a) {
				p.add(fmt.Sprintf("consoles.%s.actions.deny[%d]", name, i), fmt.Errorf("%q is not a known action", a))
			}
		}
	}
}
