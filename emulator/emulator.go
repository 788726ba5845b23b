// Package emulator is an in-memory SentinelOne Management API v2.1 served over
// real HTTP: the endpoints s1bridge uses, with the console's envelopes, error
// bodies, filters, cursors and quirks, deterministic seeded data, test hooks,
// a live mode that keeps producing threats and status changes, and fault
// injection (latency, 429, 5xx, broken bodies, resets, hangs).
//
// It is written from the API reference, the Swagger subset and the captured
// fixtures only, independently of the client in package sentinelone, so that
// it catches the client's mistakes rather than sharing them. It depends on the
// standard library and, for the Unified Alerts GraphQL endpoint (see
// uam_graphql.go), on gqlparser, which parses and validates every query
// against SentinelOne's schema subset as a real GraphQL server would.
//
// Use: New seeds a console (WithSeed, WithSizes, WithClock, WithToken, ...);
// Start serves it on a loopback port (Server.URL, Server.Close), Serve until
// a context ends, Handler inside another server. Tests drive it with
// AddThreats, AddLateThreats, UpdateThreat, SetHash, Inject and ClearFaults,
// and inspect it with IDs, Threat, Agent, Requests and RequestCount. RunLive
// keeps a demo console moving.
//
// Response actions (mitigation, notes, timeline, fetch-file, scans, network
// isolation) follow response-actions.md: the console logs the user's request
// at once and the agent answers after WithActionDelay, unless it is offline
// (SetAgentActive) or told otherwise (SetOutcome); see commands.go.
// POST /users/api-token-details reports the token's dates (WithTokenExpiry,
// WithoutTokenDetails).
//
// What the console does and the emulator copies: every list is a cursor
// page {"data":[...],"pagination":{"nextCursor","totalItems"}} (sites put
// {"allSites","sites"} in data), limit 1..1000 (default 10), cursors resume
// strictly after the last item's (sort key, id) so equal timestamps never
// lose or repeat items across pages; filters follow the console's grammar
// (csv or repeated keys, Nin, __contains, __like, __gt/__gte/__lt/__lte,
// __between) and unknown parameters are ignored; ids must be >= 1e17;
// errors are {"errors":[{"code","title","detail"}]} with the console's
// codes; alerts answer display-case enums and filter on UPPER_SNAKE ones.
package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultToken is the API token an emulator accepts unless WithToken says otherwise.
const DefaultToken = "s1bridge-emulator-token"

type (
	// Emulator is one emulated SentinelOne console. It is safe for concurrent
	// use: HTTP requests, test hooks and live mode may run at once. Create it
	// with New; serve it with Handler, Start or Serve.
	Emulator struct {
		cfg      config
		token    []byte
		mux      *http.ServeMux
		reqLog   requestLog
		faults   faultSet
		liveRand *rand.Rand // used by live mode only, under mu

		// mu guards the store: every collection, the hash table, the id
		// generator and the seeded random source. Reads of list endpoints take
		// it shared; mutations take it exclusively.
		mu           sync.RWMutex
		rnd          *rand.Rand
		ids          idGen
		gen          samples
		account      account
		sites        *collection[*site]
		groups       *collection[*group]
		agents       *collection[*agent]
		threats      *collection[*threat]
		alerts       *collection[*alert]
		activities   *collection[*activity]
		restrictions *collection[*restriction]
		uam          *uamStore
		uamDocs      docCache // validated GraphQL documents
		notes        *collection[*note]
		timeline     *collection[*activity] // a view of activities: see notes.go
		hashes       map[string]HashInfo
		newActs      []*activity // recorded, not yet inserted: see addActivity
		late         []*threat   // threats hidden by late indexing
		commands     []*command  // agent commands not answered yet: see commands.go
		cmdSeq       uint64
		outcomes     map[string]Outcome // by threat or agent id: see SetOutcome
		pinned       map[uint64]bool    // threats and alerts live mode leaves alone: see WithExamples
		pinnedUAM    map[*uamAlert]bool // the same for Unified Alerts
		// nextDue is the earliest time (unix ns) at which a hidden threat
		// appears or an agent transition completes; math.MaxInt64 when none.
		// Requests read it without the lock to skip settling in the common case.
		nextDue atomic.Int64
	}

	// Option configures an Emulator in New. An option returns an error for an
	// invalid value.
	Option func(*config) error

	// Sizes says how much seeded data New generates. Every field is taken as
	// given: zero means none. DefaultSizes is a small, complete console.
	Sizes struct {
		Sites         int // 1..10, all in one account
		GroupsPerSite int // at least 1: the default group
		Agents        int // spread over the groups; at least 1 when Threats or Alerts > 0
		Threats       int
		Alerts        int
		Activities    int
		Restrictions  int // black_hash items over the scopes
		// UAMAlerts is the number of Unified Alerts (every source,
		// severity and confidence level; the first eight are UAMSeedIDs).
		UAMAlerts int
	}

	// HashInfo is what the console knows of one SHA1, served by the verdict
	// and legacy reputation endpoints.
	HashInfo struct {
		// Verdict is malicious, non-malicious or unknown.
		Verdict string
		// Rank is the legacy reputation rank "0".."10"; empty means the legacy
		// endpoint does not know the hash and answers {"data":{}}.
		Rank string
		// NoVerdict makes the verdict endpoint answer 404 for this hash, so a
		// client's fallback to the legacy endpoint can be exercised.
		NoVerdict bool
	}

	// ThreatUpdate changes one threat through a test hook. Empty fields are
	// kept. At is the new threatInfo.updatedAt (zero: the emulator's clock).
	// VisibleAt, when after the clock, hides the threat from every query until
	// then while its updatedAt stays At: late indexing.
	ThreatUpdate struct {
		IncidentStatus   string
		AnalystVerdict   string
		MitigationStatus string
		At               time.Time
		VisibleAt        time.Time
	}

	// ThreatState is a threat's status as a test sees it.
	ThreatState struct {
		ID               string
		AgentID          string
		SHA1             string
		IncidentStatus   string
		AnalystVerdict   string
		MitigationStatus string
		CreatedAt        time.Time
		UpdatedAt        time.Time
	}

	// AgentState is an agent's network and scan status as a test sees it.
	AgentState struct {
		ID            string
		ComputerName  string
		NetworkStatus string
		IsActive      bool
		ScanStatus    string // none, started, aborted, finished
	}

	// IDs lists the ids of the seeded and added objects, in id order.
	IDs struct {
		Account      string
		Sites        []string
		Groups       []string
		Agents       []string
		Threats      []string
		Alerts       []string
		Restrictions []string
		UAMAlerts    []string // Unified Alerts ids, in creation order
	}

	// Fault is an injected failure. It matches requests whose URL path starts
	// with Path (given with or without /web/api/v2.1; empty: every path) and
	// whose method is Method (empty: any). It fires on every matching request,
	// or on a Rate fraction of them (0 < Rate <= 1), and, when Count > 0, only
	// until it has fired Count times. Rate decisions come from the seeded
	// random source, so a run is reproducible.
	Fault struct {
		Path       string
		Method     string
		Kind       FaultKind
		Count      int
		Rate       float64
		Latency    time.Duration // FaultLatency: the added delay
		Status     int           // FaultServerError: the status (default 500)
		RetryAfter string        // FaultRateLimit: the Retry-After value; empty sends none
		HTML       bool          // FaultRateLimit: nginx HTML page; FaultServerError: plain-text body
		Message    string        // FaultGraphQLError: the error message (default: graphql-java's "All Shards Down" fetch failure)
	}

	// FaultKind is what an injected fault does.
	FaultKind int

	// Request is one request as the emulator received it. Header is a copy
	// whose Authorization value keeps only its scheme: the token is never
	// stored.
	Request struct {
		Method   string
		Path     string // the URL path, e.g. /web/api/v2.1/threats
		RawQuery string
		Header   http.Header
		Body     []byte
		At       time.Time
	}
)

// Sentinel errors of the test hooks.
var (
	// ErrNotFound: no object has the given id.
	ErrNotFound = errors.New("emulator: not found")
	// ErrInvalid: a hook or option was given a value the console would refuse.
	ErrInvalid = errors.New("emulator: invalid value")
)

type config struct {
	token             string
	seed              uint64
	sizes             Sizes
	clock             func() time.Time
	transition        time.Duration // the action delay: see WithActionDelay
	scanDuration      time.Duration
	requestLogLimit   int
	noVerdictEndpoint bool
	uam               UAMSettings
	noTokenDetails    bool
	tokenCreated      int64 // unix ns; set in New unless WithTokenExpiry
	tokenExpires      int64
	examples          bool // WithExamples
}

// Defaults of the response-action options.
const (
	// DefaultScanDuration is how long a full disk scan runs unless
	// WithScanDuration says otherwise.
	DefaultScanDuration = 5 * time.Minute
	// DefaultTokenLifetime and DefaultTokenAge give the token's expiry
	// unless WithTokenExpiry says otherwise: created 30 days before New,
	// valid 180 days (a six-month console-user token), so 150 days left.
	DefaultTokenLifetime = 180 * 24 * time.Hour
	DefaultTokenAge      = 30 * 24 * time.Hour
)

// DefaultSizes is the seeded console New builds unless WithSizes says
// otherwise: three sites, six groups, 24 agents, 240 threats, 60 alerts,
// 120 activities, 6 blocklist items and 80 Unified Alerts.
func DefaultSizes() Sizes {
	return Sizes{Sites: 3, GroupsPerSite: 2, Agents: 24, Threats: 240, Alerts: 60, Activities: 120, Restrictions: 6, UAMAlerts: 80}
}

// WithToken sets the API token the emulator accepts (default DefaultToken).
func WithToken(token string) Option {
	return func(c *config) error {
		if strings.TrimSpace(token) == "" || strings.ContainsAny(token, " \t\r\n") {
			return fmt.Errorf("%w: token must be non-empty without spaces", ErrInvalid)
		}
		c.token = token
		return nil
	}
}

// WithSeed sets the seed of the generated data (default 1). The same seed,
// sizes and clock give the same console.
func WithSeed(seed int64) Option {
	return func(c *config) error { c.seed = uint64(seed); return nil }
}

// WithSizes sets how much data is seeded.
func WithSizes(s Sizes) Option {
	return func(c *config) error {
		switch {
		case s.Sites < 1 || s.Sites > 10:
			return fmt.Errorf("%w: Sites must be 1..10", ErrInvalid)
		case s.GroupsPerSite < 1:
			return fmt.Errorf("%w: GroupsPerSite must be at least 1", ErrInvalid)
		case s.Agents < 0 || s.Threats < 0 || s.Alerts < 0 || s.Activities < 0 || s.Restrictions < 0 || s.UAMAlerts < 0:
			return fmt.Errorf("%w: sizes must not be negative", ErrInvalid)
		case s.Agents == 0 && (s.Threats > 0 || s.Alerts > 0):
			return fmt.Errorf("%w: threats and alerts need at least one agent", ErrInvalid)
		}
		c.sizes = s
		return nil
	}
}

// WithThreats sets only the number of seeded threats.
func WithThreats(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: threats must not be negative", ErrInvalid)
		}
		c.sizes.Threats = n
		return nil
	}
}

// WithClock sets the emulator's clock (default time.Now). Seeded timestamps
// are relative to its value in New; updates, late indexing and agent
// transitions read it at each request.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalid)
		}
		c.clock = now
		return nil
	}
}

// WithTransitionDelay sets how long an agent stays connecting or
// disconnecting after a connect or disconnect action (default 0: the final
// state at once). It is measured on the emulator's clock. It is
// WithActionDelay under its older name: the delay is that of every
// response action.
func WithTransitionDelay(d time.Duration) Option { return WithActionDelay(d) }

// WithActionDelay sets how long after the console accepts a response action
// (connect, disconnect, mitigate, scan start and abort, fetch-file) an
// active agent answers it, with its confirmation or failure activity and
// state change (default 0: at once, in the same request). The user's
// request activity is always logged at once. It is measured on the
// emulator's clock. See SetOutcome and SetAgentActive.
func WithActionDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: negative action delay", ErrInvalid)
		}
		c.transition = d
		return nil
	}
}

// WithScanDuration sets how long a full disk scan runs, from the agent's
// start report (90) to its completion (92) (default DefaultScanDuration).
func WithScanDuration(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: negative scan duration", ErrInvalid)
		}
		c.scanDuration = d
		return nil
	}
}

// WithTokenExpiry sets when the API token was created and when it expires,
// as POST /users/api-token-details reports them (default: created
// DefaultTokenAge before New, expiring DefaultTokenLifetime later). Once
// expiresAt has passed on the emulator's clock every other route answers
// 401, as the console does for an expired token.
func WithTokenExpiry(createdAt, expiresAt time.Time) Option {
	return func(c *config) error {
		if createdAt.IsZero() || expiresAt.IsZero() || expiresAt.Before(createdAt) {
			return fmt.Errorf("%w: token expiry must be set and after its creation", ErrInvalid)
		}
		c.tokenCreated, c.tokenExpires = micros(createdAt), micros(expiresAt)
		return nil
	}
}

// WithoutTokenDetails models an older console without
// POST /users/api-token-details: the route answers the router's plain
// "404 page not found", so a client cannot learn the token's expiry.
func WithoutTokenDetails() Option {
	return func(c *config) error { c.noTokenDetails = true; return nil }
}

// WithRequestLog sets how many recent requests Requests keeps (default
// 10,000; 0 keeps none). Per-path counts are kept regardless.
func WithRequestLog(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: negative request log size", ErrInvalid)
		}
		c.requestLogLimit = n
		return nil
	}
}

// WithoutVerdictEndpoint models an older console that has only the legacy
// /hashes/{hash}/reputation endpoint: /verdict answers the router's plain
// "404 page not found".
func WithoutVerdictEndpoint() Option {
	return func(c *config) error { c.noVerdictEndpoint = true; return nil }
}

// New builds an emulator and seeds it. Generating 100,000 threats takes a
// fraction of a second.
func New(opts ...Option) (*Emulator, error) {
	cfg := config{token: DefaultToken, seed: 1, sizes: DefaultSizes(), clock: time.Now, requestLogLimit: 10000, uam: DefaultUAMSettings(), scanDuration: DefaultScanDuration}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.tokenExpires == 0 {
		cfg.tokenCreated = micros(cfg.clock().Add(-DefaultTokenAge))
		cfg.tokenExpires = cfg.tokenCreated + int64(DefaultTokenLifetime)
	}
	e := &Emulator{
		cfg:      cfg,
		token:    []byte(cfg.token),
		rnd:      rand.New(rand.NewPCG(cfg.seed, 0x51_b71d6e)),
		liveRand: rand.New(rand.NewPCG(cfg.seed, 0x11fe)),
		hashes:   make(map[string]HashInfo),
		outcomes: make(map[string]Outcome),
	}
	e.reqLog.init(cfg.requestLogLimit)
	e.faults.rnd = rand.New(rand.NewPCG(cfg.seed, 0xfa17))
	e.nextDue.Store(math.MaxInt64)
	e.initCollections()
	e.uam = newUAMStore(cfg.seed)
	e.seed(cfg.sizes)
	if cfg.examples {
		e.seedExamples()
	}
	e.mux = e.routes()
	return e, nil
}

// now is the emulator's clock in unix nanoseconds, truncated to a microsecond.
func (e *Emulator) now() int64 { return micros(e.cfg.clock()) }

// Handler returns the emulator's HTTP handler; the emulator itself is one.
func (e *Emulator) Handler() http.Handler { return e }

// ServeHTTP records the request, applies any injected fault, then routes it.
// Every answer carries X-RQID and Server: nginx, as the console's do.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set(HeaderRequestID, newUUID())
	h.Set(headerServer, serverName)
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
		if err != nil {
			return // the client went away mid-body: there is no one to answer
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	e.reqLog.add(r, e.redactToken(body), e.cfg.clock())
	if f, ok := e.faults.pick(r); ok {
		if e.applyFault(w, r, f) {
			return
		}
	}
	e.mux.ServeHTTP(w, r)
}

func (e *Emulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" "+APIPrefix+path, e.authed(h))
	}
	handle("GET "+PathSystemInfo, e.handleSystemInfo)
	if !e.cfg.noVerdictEndpoint {
		handle("GET "+PathHashes+"{hash}"+pathHashVerdictSuffix, e.handleHashVerdict)
	}
	handle("GET "+PathHashes+"{hash}"+pathHashReputationSuffix, e.handleHashReputation)
	handle("GET "+PathRestrictions, e.handleRestrictionsList)
	handle("POST "+PathRestrictions, e.handleRestrictionsCreate)
	handle("DELETE "+PathRestrictions, e.handleRestrictionsDelete)
	handle("GET "+PathThreats, func(w http.ResponseWriter, r *http.Request) { serveList(e, w, r, e.threats) })
	handle("POST "+PathThreatIncident, e.handleThreatIncident)
	handle("POST "+PathThreatVerdict, e.handleThreatVerdict)
	handle("GET "+PathGroups, func(w http.ResponseWriter, r *http.Request) { serveList(e, w, r, e.groups) })
	handle("GET "+PathAgents, func(w http.ResponseWriter, r *http.Request) { serveList(e, w, r, e.agents) })
	handle("POST "+PathAgentsConnect, e.handleAgentsConnect)
	handle("POST "+PathAgentsDisconnect, e.handleAgentsDisconnect)
	handle("GET "+PathSites, e.handleSites)
	handle("GET "+PathActivities, func(w http.ResponseWriter, r *http.Request) { serveList(e, w, r, e.activities) })
	handle("GET "+PathActivityTypes, e.handleActivityTypes)
	handle("GET "+PathAlerts, func(w http.ResponseWriter, r *http.Request) { serveList(e, w, r, e.alerts) })
	handle("POST "+PathAlertVerdict, e.handleAlertVerdict)
	handle("POST "+PathAlertIncident, e.handleAlertIncident)
	if !e.cfg.uam.Disabled {
		// UAM takes the API token as ApiToken or Bearer (uam-reference.md §1).
		m.HandleFunc("POST "+APIPrefix+PathUAMGraphQL, e.authedAs(e.handleGraphQL, AuthScheme, "Bearer"))
	}
	e.responseRoutes(m, handle)
	return m
}

// authed wraps a handler with the token check. The token is compared in
// constant time and never echoed.
func (e *Emulator) authed(h http.HandlerFunc) http.HandlerFunc { return e.authedAs(h, AuthScheme) }

// authedAs is authed accepting any of schemes (case-insensitively).
func (e *Emulator) authedAs(h http.HandlerFunc, schemes ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get(headerAuthorization), " ")
		known := false
		for _, s := range schemes {
			known = known || strings.EqualFold(scheme, s)
		}
		if !ok || !known ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), e.token) != 1 || e.tokenExpired() {
			writeJSON(w, http.StatusUnauthorized, authFailedBody)
			return
		}
		h(w, r)
	}
}

// authFailedBody is the console's 401 body, built once.
var authFailedBody, _ = json.Marshal(errorBody{Errors: []errorItem{{Code: CodeAuthFailed, Title: titleAuthFailed}}})

// mutate runs fn under the write lock, after settling due changes, with the
// clock's time, and inserts the activities fn recorded.
func (e *Emulator) mutate(fn func(now int64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.settleLocked(now)
	fn(now)
	e.flushActivities()
}

// settle completes due agent transitions and reveals late-indexed threats.
// It costs one atomic load when nothing is due.
func (e *Emulator) settle() {
	if due := e.nextDue.Load(); due == math.MaxInt64 || e.now() < due {
		return
	}
	e.mutate(func(int64) {})
}

// settleLocked does settle's work; the caller holds mu.
func (e *Emulator) settleLocked(now int64) {
	next := int64(math.MaxInt64)
	e.settleCommands(now, &next)
	kept := e.late[:0]
	for _, t := range e.late {
		if t.hiddenUntil <= now {
			t.hiddenUntil = 0
			e.threats.t.hidden--
			continue
		}
		next = min(next, t.hiddenUntil)
		kept = append(kept, t)
	}
	clear(e.late[len(kept):])
	e.late = kept
	e.settleUAM(now, &next)
	e.nextDue.Store(next)
}

// due records that something changes at ns; the caller holds mu.
func (e *Emulator) due(ns int64) {
	if ns < e.nextDue.Load() {
		e.nextDue.Store(ns)
	}
}
