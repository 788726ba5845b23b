// Package sentinelone is a client of the SentinelOne Management REST API v2.1,
// cut to the operations s1bridge needs. It knows nothing of NATS.
//
// One Client talks to one console. It retries what is safe to retry (see
// DefaultCheckRetry), paces every attempt through one Limiter shared by all
// its callers (a token bucket with priority lanes unless WithLimiter gives
// another: see Lane and WithLane), keeps a connection pool sized for concurrency, and turns
// every failure into an error that errors.Is can sort (see the sentinel
// errors). List items keep the bytes the console sent (the Raw field of each
// item type) so replies can pass them through unchanged; the typed fields are
// lenient views for the connector's own decisions.
//
// The API token goes only into the Authorization header: it is never logged
// and is redacted from anything an error carries.
package sentinelone

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Wire names.
const (
	// APIPrefix is the path prefix of every v2.1 operation.
	APIPrefix = "/web/api/v2.1"

	HeaderAuthorization = "Authorization"
	HeaderAccept        = "Accept"
	HeaderContentType   = "Content-Type"
	HeaderUserAgent     = "User-Agent"
	HeaderRetryAfter    = "Retry-After"
	// HeaderRequestID is the console's per-request id, worth quoting to support.
	HeaderRequestID = "X-RQID"

	// AuthScheme is the Authorization scheme of an API token.
	AuthScheme      = "ApiToken"
	ContentTypeJSON = "application/json"
)

// Path templates, relative to APIPrefix. They are also the path label of
// logs and Observer events.
const (
	PathHashVerdict            = "/hashes/{hash}/verdict"
	PathHashReputation         = "/hashes/{hash}/reputation" // legacy, outside the Swagger subset
	PathRestrictions           = "/restrictions"
	PathThreats                = "/threats"
	PathThreatIncident         = "/threats/incident"
	PathThreatVerdict          = "/threats/analyst-verdict"
	PathGroups                 = "/groups"
	PathAgents                 = "/agents"
	PathAgentsConnect          = "/agents/actions/connect"
	PathAgentsDisconnect       = "/agents/actions/disconnect"
	PathSites                  = "/sites"
	PathActivities             = "/activities"
	PathActivityTypes          = "/activities/types"
	PathAlerts                 = "/cloud-detection/alerts"
	PathAlertVerdict           = "/cloud-detection/alerts/analyst-verdict"
	PathAlertIncident          = "/cloud-detection/alerts/incident"
	PathSystemInfo             = "/system/info"
	pathHashPlaceholder        = "{hash}"
	maxResponseBytes     int64 = 256 << 20 // a 1000-threat page is ~15 MB; this only stops a runaway body
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultRetryMax      = 4
	DefaultRetryWaitMin  = 500 * time.Millisecond
	DefaultRetryWaitMax  = 30 * time.Second
	DefaultRatePerSecond = 10
	DefaultRateBurst     = 20
	DefaultMaxConns      = 256
	DefaultUserAgent     = "s1bridge"
)

type (
	// Config configures a Client. Zero fields take the Default* values.
	Config struct {
		// BaseURL is the console root, e.g. https://usea1.sentinelone.net
		// (http is allowed for emulators). A trailing /web/api/v2.1 is
		// accepted and dropped; user info, query and fragment are refused.
		BaseURL string
		// Token is the API token, sent as "Authorization: ApiToken <token>".
		Token string
		// Timeout bounds one HTTP attempt, from asking the pool for a
		// connection to the end of the body. It does not include waiting for
		// the rate limiter or between retries; bound the whole call with the
		// context.
		Timeout time.Duration
		// RetryMax is the number of retries (attempts = RetryMax+1). Zero
		// means DefaultRetryMax; a negative value disables retries.
		RetryMax int
		// RetryWaitMin and RetryWaitMax bound the wait between attempts.
		RetryWaitMin time.Duration
		RetryWaitMax time.Duration
		// RatePerSecond and RateBurst size the token bucket every request to
		// this console (each attempt) passes through: the LaneLimiter New
		// builds. WithLimiter replaces it, and these are then unused.
		RatePerSecond float64
		RateBurst     int
		// MaxConns is both the idle pool size and the cap of connections to
		// the console. Go's default keeps only 2 idle connections per host,
		// which makes concurrent callers open and close connections all the
		// time.
		MaxConns int
		// Logger receives debug records of each attempt; nil discards them.
		Logger *slog.Logger
		// UserAgent is sent on every request.
		UserAgent string
	}

	// Client is a SentinelOne API client for one console. It is safe for
	// concurrent use; the rate limiter and connection pool are shared by all
	// its callers. Create it with New.
	Client struct {
		base       string // scheme://host[/prefix] + APIPrefix
		token      string
		userAgent  string
		log        *slog.Logger
		obs        Observer
		limiter    Limiter
		timeout    time.Duration
		transport  http.RoundTripper // the bottom transport, before pacing and timeouts
		checkRetry CheckRetry
		backoff    Backoff
		rc         *retryablehttp.Client
	}

	// Option adjusts a Client in New. An option that fails makes New fail.
	Option func(*Client) error

	// Observer receives events for metrics. Its methods are called
	// synchronously on the calling goroutine, by many goroutines at once:
	// they must be fast and safe for concurrent use.
	Observer interface {
		// RequestDone is called once per call, after its last attempt.
		RequestDone(RequestEvent)
		// Retry is called before each retry, after its wait.
		Retry(RetryEvent)
		// RateLimitWait is called when an attempt had to queue for the rate
		// limiter, once it may go.
		RateLimitWait(WaitEvent)
	}

	// RequestEvent describes a finished call.
	RequestEvent struct {
		Method   string
		Path     string // template, e.g. "/threats"
		Status   int    // last HTTP status, 0 if no answer
		Attempts int
		Duration time.Duration // whole call, waits included
		Err      error         // nil on success
		// RequestID is SentinelOne's X-RQID of the final answer, "" when
		// it sent none.
		RequestID string
	}

	// RetryEvent describes a retry about to be sent.
	RetryEvent struct {
		Method  string
		Path    string
		Attempt int           // number of the attempt about to start (2 for the first retry)
		Wait    time.Duration // time since the failed attempt ended
		Status  int           // status of the failed attempt, 0 if no answer
		Err     error         // failure of the failed attempt, nil if it had a status
	}

	// WaitEvent describes time spent waiting for the rate limiter.
	WaitEvent struct {
		Method string
		Path   string
		Lane   Lane // the call's lane (WithLane)
		Waited time.Duration
	}

	// ObserverFuncs is an Observer made of optional functions; nil ones are
	// skipped.
	ObserverFuncs struct {
		OnRequestDone   func(RequestEvent)
		OnRetry         func(RetryEvent)
		OnRateLimitWait func(WaitEvent)
	}
)

// RequestDone implements Observer.
func (o ObserverFuncs) RequestDone(e RequestEvent) {
	if o.OnRequestDone != nil {
		o.OnRequestDone(e)
	}
}

// Retry implements Observer.
func (o ObserverFuncs) Retry(e RetryEvent) {
	if o.OnRetry != nil {
		o.OnRetry(e)
	}
}

// RateLimitWait implements Observer.
func (o ObserverFuncs) RateLimitWait(e WaitEvent) {
	if o.OnRateLimitWait != nil {
		o.OnRateLimitWait(e)
	}
}

// WithObserver sends events to o.
func WithObserver(o Observer) Option {
	return func(c *Client) error {
		if o == nil {
			return fmt.Errorf("%w: nil observer", ErrInvalidArgument)
		}
		c.obs = o
		return nil
	}
}

// WithTransport replaces the pooled transport New builds (MaxConns is then
// the caller's business). Rate limiting, timeouts and retries still apply.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) error {
		if rt == nil {
			return fmt.Errorf("%w: nil transport", ErrInvalidArgument)
		}
		c.transport = rt
		return nil
	}
}

// WithLimiter paces every attempt through l instead of the LaneLimiter New
// would build from Config.RatePerSecond and RateBurst (which are then
// unused). Several Clients may share one Limiter.
func WithLimiter(l Limiter) Option {
	return func(c *Client) error {
		if l == nil {
			return fmt.Errorf("%w: nil Limiter", ErrInvalidArgument)
		}
		c.limiter = l
		return nil
	}
}

// WithCheckRetry replaces DefaultCheckRetry.
func WithCheckRetry(f CheckRetry) Option {
	return func(c *Client) error {
		if f == nil {
			return fmt.Errorf("%w: nil CheckRetry", ErrInvalidArgument)
		}
		c.checkRetry = f
		return nil
	}
}

// WithBackoff replaces DefaultBackoff.
func WithBackoff(f Backoff) Option {
	return func(c *Client) error {
		if f == nil {
			return fmt.Errorf("%w: nil Backoff", ErrInvalidArgument)
		}
		c.backoff = f
		return nil
	}
}

// New validates cfg, applies defaults and options, and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	token := strings.TrimSpace(cfg.Token)
	if token == "" {
		return nil, fmt.Errorf("%w: Token is empty", ErrInvalidConfig)
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: Token contains whitespace or control characters", ErrInvalidConfig)
	}
	retryMax := cfg.RetryMax
	switch {
	case retryMax == 0:
		retryMax = DefaultRetryMax
	case retryMax < 0:
		retryMax = 0
	}
	c := &Client{
		base:       base,
		token:      token,
		userAgent:  or(cfg.UserAgent, DefaultUserAgent),
		log:        cfg.Logger,
		obs:        ObserverFuncs{},
		timeout:    or(cfg.Timeout, DefaultTimeout),
		checkRetry: DefaultCheckRetry,
		backoff:    DefaultBackoff,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout < 0 || cfg.RetryWaitMin < 0 || cfg.RetryWaitMax < 0 || cfg.RatePerSecond < 0 || cfg.RateBurst < 0 || cfg.MaxConns < 0 {
		return nil, fmt.Errorf("%w: Timeout, RetryWaitMin, RetryWaitMax, RatePerSecond, RateBurst and MaxConns must not be negative", ErrInvalidConfig)
	}
	waitMin, waitMax := or(cfg.RetryWaitMin, DefaultRetryWaitMin), or(cfg.RetryWaitMax, DefaultRetryWaitMax)
	if waitMin > waitMax {
		return nil, fmt.Errorf("%w: RetryWaitMin %s exceeds RetryWaitMax %s", ErrInvalidConfig, waitMin, waitMax)
	}
	c.limiter = NewLaneLimiter(or(cfg.RatePerSecond, DefaultRatePerSecond), float64(or(cfg.RateBurst, DefaultRateBurst)))
	c.transport = pooledTransport(or(cfg.MaxConns, DefaultMaxConns))
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:     &http.Client{Transport: &attemptTransport{c: c}},
		RetryWaitMin:   waitMin,
		RetryWaitMax:   waitMax,
		RetryMax:       retryMax,
		CheckRetry:     c.retryPolicy,
		Backoff:        c.waitBefore,
		RequestLogHook: c.beforeAttempt,
		// Hand back the last answer or error as is: do builds the errors.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Parse quotes the input, which could hold anything; keep it out.
		return "", fmt.Errorf("%w: BaseURL is not a URL", ErrInvalidConfig)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("%w: BaseURL must start with https:// (or http://), e.g. https://usea1.sentinelone.net", ErrInvalidConfig)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%w: BaseURL has no host", ErrInvalidConfig)
	case u.User != nil:
		return "", fmt.Errorf("%w: BaseURL must not contain user info (put the token in Token)", ErrInvalidConfig)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%w: BaseURL must not have a query or fragment", ErrInvalidConfig)
	}
	path := strings.TrimSuffix(strings.TrimRight(u.EscapedPath(), "/"), APIPrefix)
	return u.Scheme + "://" + u.Host + strings.TrimRight(path, "/") + APIPrefix, nil
}

// Redacted replaces a secret wherever the client would otherwise show it.
const Redacted = "[REDACTED]"

// redact removes the token from s.
func (c *Client) redact(s string) string {
	return strings.ReplaceAll(s, c.token, Redacted)
}

// redactCall removes the token and the call's own secrets from s.
func (c *Client) redactCall(cs *call, s string) string {
	s = c.redact(s)
	if cs != nil {
		for _, secret := range cs.secrets {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// secretForms returns each non-empty secret with the spellings it takes
// inside a JSON text (escaped by Go, or by a console that escapes only what
// JSON requires), longest first, so that an answer echoing a secret in any of
// them is redacted whole.
func secretForms(secrets []string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		for _, html := range []bool{true, false} {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			if enc.Encode(s) == nil {
				q := strings.TrimSuffix(b.String(), "\n") // "..." with its quotes
				add(q[1 : len(q)-1])
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
