// Package credentials watches the health of each console's API token
// (DESIGN.md §14): when it expires, read from SentinelOne at start and every
// six hours, shown as a metric, in /readyz and by `s1bridge check`, and
// announced by one console.token_expiring event a day while fewer than 14
// days are left.
//
// Every replica checks its consoles: the reads are one cheap call per six
// hours, the metric is per replica anyway, and the event is published once
// a day whoever sends it. Its id holds the expiry and the day
// (subjects.TokenExpiringID), sent as Nats-Msg-Id: replicas checking at
// the same moment are deduplicated by the stream, and a replica that finds
// the day's event already stored (the last event on the console's subject)
// sends nothing.
//
// A console that cannot say (older consoles answer 404 or 405, or give no
// expiry) is "unknown", which is no fault. A failed or unreadable answer is
// logged once (until a read succeeds again), reported unknown, and read
// again sooner than the interval.
package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// Defaults of Config.
const (
	// DefaultInterval is how often the expiry is read (DESIGN.md §14).
	DefaultInterval = 6 * time.Hour
	// DefaultWarnWithin is how close the expiry must be for /readyz to say
	// so and for the daily event (DESIGN.md §14).
	DefaultWarnWithin = 14 * 24 * time.Hour
	// retryAfterFailure is how soon a failed read is tried again: a passing
	// fault (a 503, a timeout) should not leave the expiry unknown for six
	// hours.
	retryAfterFailure = 15 * time.Minute
)

type (
	// Config is what a Checker needs.
	Config struct {
		Console string
		// Client reads the token's details (POST /users/api-token-details).
		Client *sentinelone.Client
		// Store receives the console.token_expiring events; nil publishes
		// none (s1bridge check).
		Store *store.Store
		// Interval is the time between reads, DefaultInterval when 0.
		Interval time.Duration
		// WarnWithin is the time left under which the expiry is reported,
		// DefaultWarnWithin when 0.
		WarnWithin time.Duration
		// Mode encodes the events (streams.events.mode); 0 is binary.
		Mode ce.Mode
		Log  *slog.Logger
		// Observer, when not nil, receives each read's expiry.
		Observer Observer
		// Now is the clock, time.Now when nil (tests move it).
		Now func() time.Time
	}

	// Observer receives what the metrics show of a console's token.
	Observer interface {
		// TokenExpiry reports the expiry of console's token; the zero time
		// when it is unknown.
		TokenExpiry(console string, expiresAt time.Time)
	}

	// Status is what the last read found.
	Status struct {
		// Checked is false until the first read has ended.
		Checked bool
		// ExpiresAt is the token's expiry; zero when unknown.
		ExpiresAt time.Time
		// Left is the time from the read to ExpiresAt (negative once
		// expired); 0 when unknown.
		Left time.Duration
		// Expiring is true when Left is under Config.WarnWithin.
		Expiring bool
		// Err is why the last read failed; nil when it succeeded, also when
		// the console could not say.
		Err error
	}

	// Checker reads one console's token expiry. Status is safe for
	// concurrent use; Run runs once.
	Checker struct {
		cfg  Config
		subj subjects.Subjects

		mu     sync.Mutex
		status Status
		logged bool // a failure has been logged since the last success
	}
)

// New returns the checker cfg describes; Run starts it.
func New(cfg Config) *Checker {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.WarnWithin <= 0 {
		cfg.WarnWithin = DefaultWarnWithin
	}
	if cfg.Mode == 0 {
		cfg.Mode = ce.ModeBinary
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{cfg: cfg}
	if cfg.Store != nil {
		c.subj = cfg.Store.Subjects()
	}
	return c
}

// Run reads the expiry now, unless a Check already did (the connector
// makes the first one before it serves), and then every Interval (sooner
// after a failed read) until ctx ends. Its calls take the background
// lane: a token check never delays an action.
func (c *Checker) Run(ctx context.Context) {
	ctx = sentinelone.WithLane(ctx, sentinelone.LaneBackground)
	for first := true; ; first = false {
		st := c.Status()
		if !first || !st.Checked {
			st = c.Check(ctx)
		}
		wait := c.cfg.Interval
		if st.Err != nil {
			wait = min(wait, retryAfterFailure)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Status returns what the last read found.
func (c *Checker) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Check reads the expiry once, reports it to the Observer, and publishes
// the day's console.token_expiring event when it is due and not yet
// stored. It returns what it found.
func (c *Checker) Check(ctx context.Context) Status {
	d, err := c.cfg.Client.APITokenDetails(ctx)
	if errors.Is(err, context.Canceled) {
		return c.Status() // stopped: what the last read found still holds
	}
	now := c.cfg.Now()
	st := Status{Checked: true, Err: err}
	if err == nil && d.Known() {
		st.ExpiresAt = d.ExpiresAt.UTC()
		st.Left = st.ExpiresAt.Sub(now)
		st.Expiring = st.Left < c.cfg.WarnWithin
	}
	c.mu.Lock()
	logFailure := err != nil && !c.logged
	c.logged = err != nil && (c.logged || logFailure)
	c.status = st
	c.mu.Unlock()
	if c.cfg.Observer != nil {
		c.cfg.Observer.TokenExpiry(c.cfg.Console, st.ExpiresAt)
	}
	switch {
	case logFailure:
		c.cfg.Log.Warn("credentials: could not read the API token's expiry; reported as unknown, read again in "+retryAfterFailure.String(),
			"console", c.cfg.Console, "error", err)
	case err == nil && st.ExpiresAt.IsZero():
		c.cfg.Log.Debug("credentials: the console does not report the API token's expiry", "console", c.cfg.Console)
	case st.Expiring:
		c.cfg.Log.Warn("credentials: the API token expires soon: replace it", "console", c.cfg.Console,
			"expires_at", st.ExpiresAt.Format(time.RFC3339), "days_left", DaysLeft(st.Left))
		if err := c.announce(ctx, st, now); err != nil && ctx.Err() == nil {
			c.cfg.Log.Warn("credentials: could not publish console.token_expiring (the next check tries again)", "console", c.cfg.Console, "error", err)
		}
	}
	return st
}

// DaysLeft is the number of whole days in left, 0 when it is less than a
// day or negative.
func DaysLeft(left time.Duration) int {
	if left <= 0 {
		return 0
	}
	return int(left / (24 * time.Hour))
}

// Note says what /readyz should say of the token, "" when nothing: the
// expiry and the days left when it is expiring. An expiring token is not a
// fault yet: the replica stays ready.
func (s Status) Note() string {
	switch {
	case !s.Expiring:
		return ""
	case s.Left <= 0:
		return fmt.Sprintf("API token expired at %s: replace it", s.ExpiresAt.Format(time.RFC3339))
	}
	return fmt.Sprintf("API token expires at %s (%d days left): replace it", s.ExpiresAt.Format(time.RFC3339), DaysLeft(s.Left))
}

// announce publishes the console.token_expiring event of the day now falls
// on, unless the console's last such event is already that one.
func (c *Checker) announce(ctx context.Context, st Status, now time.Time) error {
	if c.cfg.Store == nil {
		return nil
	}
	id := subjects.TokenExpiringID(c.cfg.Console, st.ExpiresAt, now)
	subject := c.subj.TokenExpiringEvent(c.cfg.Console)
	last, err := c.cfg.Store.Events().GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil && last.Header.Get(subjects.HeaderMsgID) == id:
		return nil // today's is stored
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return err
	}
	data, err := json.Marshal(events.TokenExpiring{Console: c.cfg.Console, ExpiresAt: st.ExpiresAt, DaysLeft: DaysLeft(st.Left)})
	if err != nil {
		return err
	}
	h, body, err := ce.Encode(ce.Event{
		SpecVersion: subjects.SpecVersion, ID: id, Source: subjects.Source(c.cfg.Console),
		Type: subjects.TypeTokenExpiring, Subject: c.cfg.Console, Time: now.UTC(),
		DataContentType: subjects.ContentTypeJSON, Data: data,
	}, c.cfg.Mode)
	if err != nil {
		return err
	}
	h.Set(subjects.HeaderMsgID, id)
	_, err = c.cfg.Store.Publish(ctx, &nats.Msg{Subject: subject, Header: h, Data: body})
	return err
}
