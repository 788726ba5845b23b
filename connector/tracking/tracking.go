// Package tracking tracks the actions SentinelOne carries out later on the
// endpoint (DESIGN.md §13): agents.connect, agents.disconnect,
// agents.scan.start, agents.scan.abort, threats.mitigate and
// threats.fetch_file. Their handlers hand each action SentinelOne accepted
// to Track (handlers.Runtime.Track) on any replica; one poller per console
// watches SentinelOne until every target is confirmed or the deadline
// passes, and publishes exactly one outcome event per tracked action:
// completed, failed or timed_out.
package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/lease"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// How tracking keeps its promise (exactly one outcome per tracking id,
// across restarts, crashes and replicas), on the monitors' pattern:
//
//  1. A tracked action is the KV record subjects.TrackingKey
//     ("<console>.t.<trackingId>") in the tracking bucket (P_TRACKING),
//     created by whichever replica ran the action. The id is a hash of the
//     console and the request's CloudEvents source and id
//     (subjects.TrackingID), so a repeated request finds the record, or
//     once it has ended its outcome in the stream, and tracks nothing new.
//  2. One replica per console polls: the holder of the lease
//     subjects.TrackingLeaseKey ("<console>.tracking"). It holds every
//     record in memory through a KV watch and, every poll interval, makes
//     ONE activities query for them all: the activity types that confirm
//     the actions pending, created since its last poll (less the ingest
//     overlap, for activities indexed late) or, for a record it has not
//     covered yet, since the record's request (less clockSkew), sorted by
//     createdAt, following the cursor only when a page is full.
//  3. Network actions have a second witness, the agents' networkStatus:
//     it confirms an agent already in the state asked for, whose agent logs
//     no activity. It is read by ids (lists of agentIDsPerCall) only when a
//     record is due for it: twice in its life, 2 intervals after the request
//     and one interval before the deadline, and at most checkIDsPerTick ids
//     a tick. So 10,000 tracked actions cost one call per interval in steady
//     state. The same lookup finds the targets SentinelOne did not count
//     (unknown ids, decommissioned agents), which end failed.
//  4. Confirmations found are written back to the record (compare-and-set
//     on the revision the poller holds), so a successor does not need to
//     find them again. The outcome is decided by compare-and-set too, and
//     published and the record deleted with store.End; a claim left behind
//     by a crash is completed by the next poller (store.Complete, which
//     looks for the event in the stream first).
//
// A deadline is acted on at the first tick after it whose poll succeeded,
// so an activity SentinelOne logged before the deadline is never missed
// because the console was unreachable then.

// Limits.
const (
	// agentIDsPerCall bounds the ids= list of one agents (or threats)
	// lookup: 50 19-digit ids make a query of about 1 KB.
	agentIDsPerCall = 50
	// checkIDsPerTick bounds the ids looked up in one tick, so that a burst
	// of new tracked actions spreads its lookups over several intervals.
	checkIDsPerTick = 10 * agentIDsPerCall
	// clockSkew is how much earlier than s1bridge's clock SentinelOne's may
	// stamp an activity of the action: a confirmation up to this much
	// before the request counts. Larger than the skew of synchronised
	// clocks, far smaller than the seconds an agent takes to act.
	clockSkew = time.Second
	// writeTimeout bounds Track's writes. They run even when the caller has
	// gone: the action has happened and must be tracked.
	writeTimeout = 10 * time.Second
	// defaultMaxPayload is the largest record or event assumed when Config
	// gives none: nats-server's default max payload.
	defaultMaxPayload = 1 << 20
)

// record is one tracked action as stored in KV.
type record struct {
	TrackingID string `json:"trackingId"`
	Action     string `json:"action"`
	// Variant is threats.mitigate's kind; "" for other actions.
	Variant string `json:"variant,omitempty"`
	// Targets hold every target once, in the request's order, with what
	// SentinelOne confirmed of each so far.
	Targets     []events.ActionTarget `json:"targets"`
	RequestedAt time.Time             `json:"requestedAt"`
	Deadline    time.Time             `json:"deadline"`
	// Unmatched is true when SentinelOne counted fewer targets than it did
	// not refuse: the poller looks them up.
	Unmatched bool `json:"unmatched,omitempty"`
	// The request's correlation, carried into the outcome event.
	ce.Correlation
	// End is set by the claim that decided the outcome.
	End *end `json:"end,omitempty"`
}

// end is a decided outcome.
type end struct {
	Outcome string `json:"outcome"`
	// At is when the outcome happened: the last confirmation, or the
	// deadline (the event's time).
	At time.Time `json:"at"`
	// EndedAt is when s1bridge decided it.
	EndedAt time.Time `json:"endedAt"`
}

// Observer receives what the metrics count of tracking.
type Observer interface {
	// TrackingActive reports how many tracked actions of console await
	// their outcome, as the polling replica sees them (0 when it stops
	// polling).
	TrackingActive(console string, n int)
}

// Config is what a Set needs.
type Config struct {
	Console string
	Client  *sentinelone.Client
	// Tracking is the console's tracking settings; Overlap and PageSize its
	// ingest overlap (the re-read window of each poll) and page size.
	Tracking config.Tracking
	Overlap  time.Duration
	PageSize int
	Store    *store.Store
	// Holder is this replica's name in leases; LeaseTTL the leases' TTL,
	// also the grace a replica has to complete an outcome it claimed.
	Holder   string
	LeaseTTL time.Duration
	// Mode is the content mode of the outcome events (streams.events.mode);
	// zero means ce.ModeBinary.
	Mode ce.Mode
	// MaxPayload is the NATS server's max payload, which bounds a record
	// and an event; zero means 1 MB.
	MaxPayload int
	Log        *slog.Logger
	// Observer, when not nil, receives what the metrics count.
	Observer Observer
}

// Set is the tracked actions of one console: Track, safe for concurrent
// use on any replica, and the poll loop (Run) that works on the lease
// holder.
type Set struct {
	console    string
	client     *sentinelone.Client
	cfg        config.Tracking
	overlap    time.Duration
	pageSize   int
	subj       subjects.Subjects
	st         *store.Store
	kv         jetstream.KeyValue // the tracking bucket
	holder     string
	leaseTTL   time.Duration
	mode       ce.Mode
	maxPayload int
	log        *slog.Logger
	obs        Observer

	leading atomic.Bool // this replica holds the tracking lease
}

// New returns the tracked actions cfg describes; Run starts the poll loop.
func New(cfg Config) *Set {
	s := &Set{
		console: cfg.Console, client: cfg.Client, cfg: cfg.Tracking, overlap: cfg.Overlap, pageSize: cfg.PageSize,
		subj: cfg.Store.Subjects(), st: cfg.Store, kv: cfg.Store.KV(subjects.BucketTracking),
		holder: cfg.Holder, leaseTTL: cfg.LeaseTTL, mode: cfg.Mode, maxPayload: cfg.MaxPayload, log: cfg.Log, obs: cfg.Observer,
	}
	if s.mode == 0 {
		s.mode = ce.ModeBinary
	}
	if s.maxPayload <= 0 {
		s.maxPayload = defaultMaxPayload
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s
}

type nopObserver struct{}

func (nopObserver) TrackingActive(string, int) {}

// Leading reports whether this replica polls the tracked actions of the
// console.
func (s *Set) Leading() bool { return s.leading.Load() }

func (s *Set) key(id string) string { return subjects.TrackingKey(s.console, id) }

// trackingID is the tracking id of request r: subjects.TrackingID, or a
// random one for a request without an id (a handler run directly), which
// nothing can repeat.
func trackingID(console string, r handlers.RequestInfo) string {
	if r.ID == "" {
		return subjects.TrackingID(console, "", nuid.Next())
	}
	return subjects.TrackingID(console, r.Source, r.ID)
}

// storeError is a 503 for a KV or stream failure.
func storeError(err error) error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Message: "the tracking store (JetStream) did not answer", Retryable: true, Err: err}
}

// now is the time of a decision: UTC, to the microsecond like SentinelOne's
// timestamps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Track records spec, an action SentinelOne accepted
// (handlers.Runtime.Track), and returns its tracking id and outcome
// subject. A repeat of spec.Request returns them without tracking anything
// new: from the record while it is tracked, from the outcome in the stream
// once it has ended. A repeat that names another action or other targets
// is a 409 (the idempotency layer refuses it before the action runs).
func (s *Set) Track(ctx context.Context, spec handlers.TrackSpec) (*handlers.TrackReply, error) {
	conf := confirmationOf(spec.Action, spec.Variant)
	if conf == nil {
		return nil, fmt.Errorf("tracking: %s is not a tracked action", confirmKey(spec.Action, spec.Variant))
	}
	id := trackingID(s.console, spec.Request)
	reply := &handlers.TrackReply{TrackingID: id, Subject: s.subj.ActionOutcomeWildcard(s.console, id)}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	rec := s.newRecord(id, spec)
	b, err := s.encode(rec)
	if err != nil {
		return nil, err
	}
	for range 3 {
		if spec.Request.ID != "" {
			if done, err := s.repeat(ctx, id, rec); done || err != nil {
				return reply, err
			}
		}
		_, err := s.kv.Create(ctx, s.key(id), b)
		if store.IsConflict(err) {
			continue // a concurrent repeat created it: check it is the same
		}
		if err != nil {
			return nil, storeError(err)
		}
		s.log.Info("tracking an action", "tracking_id", id, "tracked_action", confirmKey(rec.Action, rec.Variant),
			"targets", len(rec.Targets), "deadline", rec.Deadline)
		return reply, nil
	}
	return nil, handlers.Errorf(handlers.CodeConflict, "tracked action %s changed while it was being recorded", id)
}

// newRecord is the record of spec: its targets pending, except those
// SentinelOne refused at once, which have failed.
func (s *Set) newRecord(id string, spec handlers.TrackSpec) *record {
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = s.cfg.Timeout
	}
	at := spec.RequestedAt.UTC()
	if at.IsZero() {
		at = now()
	}
	decided := now()
	rec := &record{
		TrackingID: id, Action: spec.Action, Variant: spec.Variant, RequestedAt: at, Deadline: at.Add(timeout),
		Targets:     make([]events.ActionTarget, 0, len(spec.Targets)),
		Correlation: ce.Correlation{RequestID: spec.Request.ID, RequestSource: spec.Request.Source, TraceParent: spec.Request.TraceParent, TraceState: spec.Request.TraceState},
	}
	refused := 0
	for _, t := range spec.Targets {
		target := events.ActionTarget{ID: t, State: events.TargetPending}
		if why, ok := spec.Refused[t]; ok {
			target.State, target.At, target.Message = events.TargetFailed, &decided, why
			refused++
		}
		rec.Targets = append(rec.Targets, target)
	}
	rec.Unmatched = spec.Affected < len(spec.Targets)-refused
	return rec
}

// repeat reports whether tracking id already exists (a record, or an
// outcome in the stream), and a 409 when it exists for another action.
func (s *Set) repeat(ctx context.Context, id string, want *record) (bool, error) {
	e, err := s.kv.Get(ctx, s.key(id))
	switch {
	case err == nil:
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return false, fmt.Errorf("tracking record %s: %w", e.Key(), err)
		}
		if !sameAction(&rec, want) {
			return false, handlers.Errorf(handlers.CodeConflict, "id: request id %q already started tracked action %s (%s of %d targets); a new action needs a new request id",
				want.RequestID, id, confirmKey(rec.Action, rec.Variant), len(rec.Targets))
		}
		return true, nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return false, storeError(err)
	}
	_, err = s.st.Events().GetLastMsgForSubject(ctx, s.subj.ActionOutcomeWildcard(s.console, id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, storeError(err)
}

// sameAction reports whether a and b track the same action on the same
// targets.
func sameAction(a, b *record) bool {
	if a.Action != b.Action || a.Variant != b.Variant || len(a.Targets) != len(b.Targets) {
		return false
	}
	for i := range a.Targets {
		if a.Targets[i].ID != b.Targets[i].ID {
			return false
		}
	}
	return true
}

// encode returns rec as stored. A record (and so its event) must fit the
// server's max payload: when it would not, SentinelOne's messages are cut,
// those of succeeded targets first (with max_targets at its 5000 bound and
// long messages, the targets alone are under half a megabyte).
func (s *Set) encode(rec *record) ([]byte, error) {
	limit := s.maxPayload - 8<<10 // the event's headers, or the structured envelope
	b, err := json.Marshal(rec)
	for _, state := range []string{events.TargetSucceeded, ""} {
		if err != nil || len(b) <= limit {
			break
		}
		for i := range rec.Targets {
			if state == "" || rec.Targets[i].State == state {
				rec.Targets[i].Message = ""
			}
		}
		b, err = json.Marshal(rec)
	}
	if err == nil && len(b) > limit {
		err = fmt.Errorf("tracking record %s is %d bytes, more than the %d a message may hold", rec.TrackingID, len(b), limit)
	}
	return b, err
}

// event builds the outcome event of rec (rec.End set).
func (s *Set) event(rec *record) (*nats.Msg, error) {
	e := rec.End
	data, err := json.Marshal(events.ActionOutcome{
		TrackingID: rec.TrackingID, Action: rec.Action, Console: s.console, Targets: rec.Targets,
		RequestedAt: rec.RequestedAt, EndedAt: e.EndedAt,
	})
	if err != nil {
		return nil, err
	}
	id := subjects.ActionOutcomeID(s.console, rec.TrackingID, e.Outcome)
	ev := ce.Event{
		SpecVersion: subjects.SpecVersion, ID: id, Source: subjects.Source(s.console),
		Type: subjects.ActionOutcomeType(e.Outcome), Subject: rec.TrackingID, Time: e.At,
		DataContentType: subjects.ContentTypeJSON, Data: data,
	}
	rec.Stamp(&ev)
	h, body, err := ce.Encode(ev, s.mode)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = nats.Header{}
	}
	h.Set(subjects.HeaderMsgID, id)
	return &nats.Msg{Subject: s.subj.ActionOutcomeEvent(s.console, rec.TrackingID, e.Outcome), Header: h, Data: body}, nil
}

// Run takes part in the lease election until ctx ends, polling while it
// holds the lease. Its SentinelOne calls are background work.
func (s *Set) Run(ctx context.Context) {
	ctx = sentinelone.WithLane(ctx, sentinelone.LaneBackground)
	l := lease.New(s.st.KV(subjects.BucketLeases), subjects.TrackingLeaseKey(s.console), s.holder, s.leaseTTL, s.log)
	l.Hold(ctx, func(ctx context.Context) {
		s.leading.Store(true)
		defer s.leading.Store(false)
		defer s.obs.TrackingActive(s.console, 0)
		if err := newLoop(s).run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("tracking: loop failed; giving up the lease", "error", err)
		}
	})
}
