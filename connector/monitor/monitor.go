// Package monitor runs the threat monitors of DESIGN.md §4, §6 and §8:
// threats.monitor, monitors.list and monitors.cancel on any replica, and one
// poller per console that ends each monitor exactly once.
package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/lease"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// How monitors keep their promise (DESIGN.md §4, §6, §8: each monitor ends
// exactly once, across restarts, crashes and replicas):
//
//  1. A monitor is the KV record subjects.MonitorKey ("<console>.m.<id>") in
//     the monitors bucket (S1_MONITORS),
//     created by whichever replica received threats.monitor. The id is a
//     hash of the console and the request's CloudEvents source and id, so a
//     repeated request finds the record (or, once the monitor has ended, its
//     outcome event in the stream) and starts nothing new.
//  2. The outcome is decided by compare-and-set: the ender rewrites the
//     record with its outcome (the claim) on the revision it read. One claim
//     wins; a cancel on any replica and the poller race through this step.
//  3. The winner publishes the outcome event, whose id
//     subjects.MonitorEventID is sent as Nats-Msg-Id, waits
//     for the ack, then deletes the record (compare-and-set on the claim).
//  4. A claim left behind by a crash is completed by the poller: it
//     publishes the recorded outcome unless the stream already holds it, then
//     deletes the record.
//
// One replica per console polls: the holder of lease
// subjects.MonitorsLeaseKey ("<console>.monitors").
// It holds every record in memory through a KV watch and, at the shortest
// poll interval an active monitor asked for, makes one query for them all:
// resolved threats updated since its last poll (less the ingest overlap, for
// clock skew and late indexing), sorted by updatedAt, following the cursor.
// It also listens to the resolved events ingestion publishes, so a
// resolution ingestion sees first ends its monitors with no call at all. At
// a deadline it fetches the threats due, in short ids lists, to put them in
// the timed_out events.

// Limits.
const (
	// monitorIDsPerCall bounds the ids= list of one threat lookup: 50
	// 19-digit ids make a query of about 1 KB, well within the request-line
	// limits of the proxies in front of consoles.
	monitorIDsPerCall = 50
	// monitorEventBuffer is how many resolved events may wait for the loop;
	// beyond it they are dropped and the next poll finds the resolutions.
	monitorEventBuffer = 4096
)

// monitorRecord is one monitor as stored in KV.
type monitorRecord struct {
	MonitorID    string       `json:"monitorId"`
	ThreatID     string       `json:"threatId"`
	StartedAt    time.Time    `json:"startedAt"`
	Deadline     time.Time    `json:"deadline"`
	PollInterval jsonDuration `json:"pollInterval"`
	// ThreatUpdatedAt is the threat's updatedAt when the monitor started:
	// only a resolution after it counts (a late event about an earlier
	// resolution, since undone, must not end the monitor).
	ThreatUpdatedAt time.Time `json:"threatUpdatedAt"`
	// State is the state of the first reply, which repeats return.
	State string `json:"state"`
	// The request's correlation, carried into the outcome event.
	ce.Correlation
	// End is set by the claim that decided the outcome.
	End *monitorEnd `json:"end,omitempty"`
}

// monitorEnd is a decided outcome: everything its event carries.
type monitorEnd struct {
	Outcome string `json:"outcome"`
	// At is when the outcome happened: the resolving updatedAt, the
	// deadline, the cancel (the event's time).
	At time.Time `json:"at"`
	// EndedAt is when s1bridge ended the monitor; equal to StartedAt for a
	// threat resolved at the start.
	EndedAt time.Time       `json:"endedAt"`
	Threat  json.RawMessage `json:"threat"`
}

// monitorEventData is the data of a monitor event (DESIGN.md §6). Threat is
// the threat as the console had it when the monitor ended, null when the
// console no longer has it.
type monitorEventData struct {
	MonitorID string          `json:"monitorId"`
	ThreatID  string          `json:"threatId"`
	Threat    json.RawMessage `json:"threat"`
	StartedAt time.Time       `json:"startedAt"`
	EndedAt   time.Time       `json:"endedAt"`
}

// jsonDuration is a time.Duration written as a Go duration string.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = jsonDuration(v)
	return err
}

// Observer receives what the metrics count of monitors.
type Observer interface {
	// MonitorsActive reports how many monitors of console are active, as
	// the polling replica sees them (0 when it stops polling).
	MonitorsActive(console string, n int)
}

// Config is what a Set needs.
type Config struct {
	Console string
	Client  *sentinelone.Client
	// Monitor is the console's monitor settings; Overlap and PageSize its
	// ingest overlap (the re-read window of each poll) and page size.
	Monitor  config.Monitor
	Overlap  time.Duration
	PageSize int
	Store    *store.Store
	// Conn receives the resolved events ingestion publishes.
	Conn *nats.Conn
	// Holder is this replica's name in leases; LeaseTTL the leases' TTL,
	// also the grace a replica has to complete an outcome it claimed.
	Holder   string
	LeaseTTL time.Duration
	Log      *slog.Logger
	// Observer, when not nil, receives what the metrics count.
	Observer Observer
	// Mode is how outcome events are encoded (streams.events.mode); the
	// zero value is ce.ModeBinary.
	Mode ce.Mode
}

// Set is the monitors of one console: the request side (Start, List,
// Cancel), safe for concurrent use on any replica, and the poll loop (Run)
// that works on the lease holder.
type Set struct {
	console  string
	client   *sentinelone.Client
	cfg      config.Monitor
	overlap  time.Duration // re-read window of each poll
	pageSize int
	subj     subjects.Subjects
	st       *store.Store
	kv       jetstream.KeyValue // the monitors bucket
	nc       *nats.Conn
	holder   string
	log      *slog.Logger
	obs      Observer
	leaseTTL time.Duration // also the grace before completing another's claim
	mode     ce.Mode       // of outcome events

	leading atomic.Bool // this replica holds the monitors lease
}

// New returns the monitors cfg describes; Run starts the poll loop.
func New(cfg Config) *Set {
	ms := &Set{
		console: cfg.Console, client: cfg.Client, cfg: cfg.Monitor, overlap: cfg.Overlap, pageSize: cfg.PageSize,
		subj: cfg.Store.Subjects(), st: cfg.Store, kv: cfg.Store.KV(subjects.BucketMonitors), nc: cfg.Conn,
		holder: cfg.Holder, log: cfg.Log, obs: cfg.Observer, leaseTTL: cfg.LeaseTTL, mode: cfg.Mode,
	}
	if ms.mode == 0 {
		ms.mode = ce.ModeBinary
	}
	if ms.obs == nil {
		ms.obs = nopObserver{}
	}
	return ms
}

type nopObserver struct{}

func (nopObserver) MonitorsActive(string, int) {}

// Leading reports whether this replica polls the monitors of the console.
func (ms *Set) Leading() bool { return ms.leading.Load() }

func (ms *Set) key(id string) string { return subjects.MonitorKey(ms.console, id) }
func (ms *Set) cursorKey() string    { return subjects.MonitorPollKey(ms.console) }
func (ms *Set) leaseKey() string     { return subjects.MonitorsLeaseKey(ms.console) }

// newMonitorID derives a monitor id from the request: the same console,
// source and id give the same monitor, so repeats need no lookup table. A
// request without an id (a handler called directly) gets a random one. The
// id is 24 lower-case base32 characters (120 bits), one subject token.
func newMonitorID(console string, r handlers.RequestInfo) string {
	seed := console + "\x00" + r.Source + "\x00" + r.ID
	if r.ID == "" {
		seed = nuid.Next()
	}
	h := sha256.Sum256([]byte(seed))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:15]))
}

// storeError is a 503 for a KV or stream failure: another try may work.
func storeError(err error) error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Message: "the monitor store (JetStream) did not answer; retry", Retryable: true, Err: err}
}

// monitorNow is the time of a monitor's start or end: UTC, to the
// microsecond like SentinelOne's timestamps.
func monitorNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Start answers threats.monitor (handlers.Runtime.StartMonitor).
func (ms *Set) Start(ctx context.Context, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
	if spec.Timeout == 0 {
		spec.Timeout = ms.cfg.DefaultTimeout
	}
	if spec.PollInterval == 0 {
		spec.PollInterval = ms.cfg.PollInterval
	}
	id := newMonitorID(ms.console, spec.Request)
	for range 3 {
		if r, err := ms.repeat(ctx, id, spec); r != nil || err != nil {
			return r, err
		}
		started := monitorNow()
		threats, err := ms.fetchThreats(ctx, []string{spec.ThreatID})
		if err != nil {
			return nil, err
		}
		t := threats[spec.ThreatID]
		if t == nil {
			return nil, handlers.Errorf(handlers.CodeNotFound, "threatId: console %s has no threat %s (or the API token cannot see it)", ms.console, spec.ThreatID)
		}
		rec := &monitorRecord{
			MonitorID: id, ThreatID: spec.ThreatID, StartedAt: started, Deadline: started.Add(spec.Timeout),
			PollInterval: jsonDuration(spec.PollInterval), ThreatUpdatedAt: t.UpdatedAt, State: handlers.MonitorWatching,
			Correlation: ce.Correlation{RequestID: spec.Request.ID, RequestSource: spec.Request.Source,
				TraceParent: spec.Request.TraceParent, TraceState: spec.Request.TraceState},
		}
		if t.IncidentStatus == sentinelone.IncidentResolved {
			rec.State = handlers.MonitorResolved
			rec.End = &monitorEnd{Outcome: subjects.OutcomeResolved, At: t.UpdatedAt, EndedAt: started, Threat: t.Raw}
		}
		b, _ := json.Marshal(rec)
		rev, err := ms.kv.Create(ctx, ms.key(id), b)
		if store.IsConflict(err) {
			continue // a concurrent repeat created it: answer as it did
		}
		if err != nil {
			return nil, storeError(err)
		}
		if rec.End != nil {
			if err := ms.complete(ctx, rec, rev, false); err != nil {
				return nil, storeError(err)
			}
		}
		ms.log.Info("monitor started", "monitor", id, "threat", rec.ThreatID, "state", rec.State, "deadline", rec.Deadline, "poll_interval", spec.PollInterval)
		return ms.reply(rec), nil
	}
	return nil, handlers.Errorf(handlers.CodeConflict, "monitor %s changed while it was being started; retry", id)
}

// repeat returns the first reply to the request that started monitor id,
// or nil when there was none. A repeat that asks for something else is a
// 409.
func (ms *Set) repeat(ctx context.Context, id string, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
	e, err := ms.kv.Get(ctx, ms.key(id))
	switch {
	case err == nil:
		var rec monitorRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return nil, fmt.Errorf("monitor record %s: %w", e.Key(), err)
		}
		if rec.ThreatID != spec.ThreatID || rec.Deadline.Sub(rec.StartedAt) != spec.Timeout || time.Duration(rec.PollInterval) != spec.PollInterval {
			return nil, reusedID(spec, &rec)
		}
		if rec.State == handlers.MonitorResolved && rec.End != nil {
			// The first request may have failed before its event was out:
			// the reply says the event is in the stream, so make it so.
			if err := ms.complete(ctx, &rec, e.Revision(), true); err != nil {
				return nil, storeError(err)
			}
		}
		return ms.reply(&rec), nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, storeError(err)
	}
	// Ended, or never started: an ended monitor's outcome is in the stream.
	m, err := ms.st.Events().GetLastMsgForSubject(ctx, ms.subj.MonitorWildcard(ms.console, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	ev, err := ce.Decode(m.Header, m.Data)
	if err != nil {
		return nil, fmt.Errorf("monitor event %d: %w", m.Sequence, err)
	}
	var d monitorEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return nil, fmt.Errorf("monitor event %d: %w", m.Sequence, err)
	}
	rec := &monitorRecord{MonitorID: id, ThreatID: d.ThreatID, StartedAt: d.StartedAt, Deadline: d.StartedAt.Add(spec.Timeout), State: handlers.MonitorWatching}
	if rec.ThreatID != spec.ThreatID {
		return nil, reusedID(spec, rec)
	}
	// Only a monitor whose threat was resolved at the start ended as it
	// started; its first reply said so.
	if ev.Type == subjects.MonitorType(subjects.OutcomeResolved) && d.EndedAt.Equal(d.StartedAt) {
		rec.State = handlers.MonitorResolved
	}
	return ms.reply(rec), nil
}

func reusedID(spec handlers.MonitorSpec, rec *monitorRecord) error {
	return handlers.Errorf(handlers.CodeConflict, "id: request id %q already started monitor %s of threat %s with other settings; a new monitor needs a new request id",
		spec.Request.ID, rec.MonitorID, rec.ThreatID)
}

func (ms *Set) reply(rec *monitorRecord) *handlers.MonitorReply {
	return &handlers.MonitorReply{
		MonitorID: rec.MonitorID, ThreatID: rec.ThreatID, State: rec.State, Deadline: rec.Deadline,
		Subject: ms.subj.MonitorWildcard(ms.console, rec.MonitorID),
	}
}

// Cancel answers monitors.cancel (handlers.Runtime.CancelMonitor). The threat is read first, so that a
// SentinelOne failure leaves the monitor as it was.
func (ms *Set) Cancel(ctx context.Context, id string) error {
	for range 3 {
		e, err := ms.kv.Get(ctx, ms.key(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return handlers.Errorf(handlers.CodeNotFound, "monitorId: no active monitor %s on console %s (it has ended, or never existed)", id, ms.console)
		}
		if err != nil {
			return storeError(err)
		}
		var rec monitorRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return fmt.Errorf("monitor record %s: %w", e.Key(), err)
		}
		if rec.End != nil {
			return handlers.Errorf(handlers.CodeNotFound, "monitorId: monitor %s has ended (%s)", id, rec.End.Outcome)
		}
		threats, err := ms.fetchThreats(ctx, []string{rec.ThreatID})
		if err != nil {
			return err
		}
		at := monitorNow()
		rec.End = &monitorEnd{Outcome: subjects.OutcomeCancelled, At: at, EndedAt: at}
		if t := threats[rec.ThreatID]; t != nil {
			rec.End.Threat = t.Raw
		}
		b, _ := json.Marshal(&rec)
		rev, err := ms.kv.Update(ctx, ms.key(id), b, e.Revision())
		if store.IsConflict(err) {
			continue // ended meanwhile: the next read says how
		}
		if err != nil {
			return storeError(err)
		}
		if err := ms.complete(ctx, &rec, rev, false); err != nil {
			// The claim stands, so the monitor is cancelled; the poller
			// publishes the event once its grace has passed.
			ms.log.Warn("monitor cancelled; its event will follow", "monitor", id, "error", err)
		}
		ms.log.Info("monitor cancelled", "monitor", id, "threat", rec.ThreatID)
		return nil
	}
	return handlers.Errorf(handlers.CodeConflict, "monitorId: monitor %s changed while it was being cancelled; retry", id)
}

// complete publishes the decided outcome of rec, whose claim is revision
// rev, then deletes the record (store.Complete). With check it first looks
// for the event in the stream, for a claim older than the duplicate window
// may have been published long ago. It is idempotent.
func (ms *Set) complete(ctx context.Context, rec *monitorRecord, rev uint64, check bool) error {
	m, err := ms.event(rec)
	if err != nil {
		return err
	}
	return ms.st.Complete(ctx, subjects.BucketMonitors, ms.key(rec.MonitorID), rev, m, check)
}

// event builds the outcome event of rec (rec.End set).
func (ms *Set) event(rec *monitorRecord) (*nats.Msg, error) {
	end := rec.End
	data, err := json.Marshal(monitorEventData{
		MonitorID: rec.MonitorID, ThreatID: rec.ThreatID, Threat: end.Threat, StartedAt: rec.StartedAt, EndedAt: end.EndedAt,
	})
	if err != nil {
		return nil, err
	}
	id := subjects.MonitorEventID(ms.console, rec.MonitorID, end.Outcome)
	ev := ce.Event{
		SpecVersion: subjects.SpecVersion, ID: id, Source: subjects.Source(ms.console),
		Type: subjects.MonitorType(end.Outcome), Subject: rec.ThreatID, Time: end.At,
		DataContentType: subjects.ContentTypeJSON, Data: data,
	}
	rec.Stamp(&ev)
	h, body, err := ce.Encode(ev, ms.mode)
	if err != nil {
		return nil, err
	}
	h.Set(subjects.HeaderMsgID, id)
	return &nats.Msg{Subject: ms.subj.MonitorEvent(ms.console, rec.MonitorID, end.Outcome), Header: h, Data: body}, nil
}

// fetchThreats reads threats by id, monitorIDsPerCall per call; an id the
// console does not have is absent from the map.
func (ms *Set) fetchThreats(ctx context.Context, ids []string) (map[string]*sentinelone.Threat, error) {
	out := make(map[string]*sentinelone.Threat, len(ids))
	for chunk := range slices.Chunk(ids, monitorIDsPerCall) {
		p, err := ms.client.ListThreats(ctx, sentinelone.ThreatFilter{IDs: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, err
		}
		for i := range p.Items {
			out[p.Items[i].ID] = &p.Items[i]
		}
	}
	return out, nil
}

// List answers monitors.list (handlers.Runtime.ListMonitors) from KV, so
// any replica answers it.
func (ms *Set) List(ctx context.Context) ([]handlers.MonitorItem, error) {
	w, err := ms.kv.Watch(ctx, subjects.MonitorKeys(ms.console), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, storeError(err)
	}
	defer w.Stop()
	items := []handlers.MonitorItem{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, storeError(errors.New("monitor watch closed"))
			}
			if e == nil {
				slices.SortFunc(items, func(a, b handlers.MonitorItem) int {
					if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
						return c
					}
					return strings.Compare(a.MonitorID, b.MonitorID)
				})
				return items, nil
			}
			var rec monitorRecord
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return nil, fmt.Errorf("monitor record %s: %w", e.Key(), err)
			}
			if rec.End == nil {
				items = append(items, handlers.MonitorItem{
					MonitorID: rec.MonitorID, ThreatID: rec.ThreatID, StartedAt: rec.StartedAt,
					Deadline: rec.Deadline, PollInterval: time.Duration(rec.PollInterval).String(),
				})
			}
		}
	}
}

// Run takes part in the lease election until ctx ends, polling while it
// holds the lease.
func (ms *Set) Run(ctx context.Context) {
	// Background work: under contention for the console's budget, the
	// actions' calls go first (DESIGN.md §14).
	ctx = sentinelone.WithLane(ctx, sentinelone.LaneBackground)
	l := lease.New(ms.st.KV(subjects.BucketLeases), ms.leaseKey(), ms.holder, ms.leaseTTL, ms.log)
	l.Hold(ctx, func(ctx context.Context) {
		ms.leading.Store(true)
		defer ms.leading.Store(false)
		defer ms.obs.MonitorsActive(ms.console, 0)
		if err := newMonitorLoop(ms).run(ctx); err != nil && ctx.Err() == nil {
			ms.log.Error("monitors: loop failed; giving up the lease", "error", err)
		}
	})
}
