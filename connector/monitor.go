package connector

import (
	"container/heap"
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
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// How monitors keep their promise (DESIGN.md §4, §6, §8: each monitor ends
// exactly once, across restarts, crashes and replicas):
//
//  1. A monitor is the KV record "<console>.m.<monitorId>" in S1_MONITORS,
//     created by whichever replica received threats.monitor. The id is a
//     hash of the console and the request's CloudEvents source and id, so a
//     repeated request finds the record (or, once the monitor has ended, its
//     outcome event in the stream) and starts nothing new.
//  2. The outcome is decided by compare-and-set: the ender rewrites the
//     record with its outcome (the claim) on the revision it read. One claim
//     wins; a cancel on any replica and the poller race through this step.
//  3. The winner publishes the outcome event, whose id
//     "<console>/monitor/<monitorId>/<outcome>" is sent as Nats-Msg-Id, waits
//     for the ack, then deletes the record (compare-and-set on the claim).
//  4. A claim left behind by a crash is completed by the poller: it
//     publishes the recorded outcome unless the stream already holds it, then
//     deletes the record.
//
// One replica per console polls: the holder of lease "<console>.monitors".
// It holds every record in memory through a KV watch and, at the shortest
// poll interval an active monitor asked for, makes one query for them all:
// resolved threats updated since its last poll (less the ingest overlap, for
// clock skew and late indexing), sorted by updatedAt, following the cursor.
// It also listens to the resolved events ingestion publishes, so a
// resolution ingestion sees first ends its monitors with no call at all. At
// a deadline it fetches the threats due, in short ids lists, to put them in
// the timed_out events.

// Monitor record keys and limits.
const (
	monitorKeyInfix = ".m."   // "<console>.m.<monitorId>"
	monitorCursor   = ".poll" // "<console>.poll": the poller's progress
	monitorLease    = ".monitors"
	// monitorIDsPerCall bounds the ids= list of one threat lookup: 50
	// 19-digit ids make a query of about 1 KB, well within the request-line
	// limits of the proxies in front of consoles.
	monitorIDsPerCall = 50
	// monitorEventBuffer is how many resolved events may wait for the loop;
	// beyond it they are dropped and the next poll finds the resolutions.
	monitorEventBuffer = 4096
	// monitorBatch is how many monitors end in one pipelined round trip,
	// within the async publish window the connector gives JetStream (4096).
	monitorBatch = 1000
)

// KV wire names the loop writes by hand to pipeline its writes (the same
// headers jetstream.KeyValue.Delete sends).
const (
	kvOperationHeader = "KV-Operation"
	kvOperationDelete = "DEL"
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
	RequestID     string `json:"requestId,omitempty"`
	RequestSource string `json:"requestSource,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
	TraceState    string `json:"tracestate,omitempty"`
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

// pollCursor is the poller's progress, as stored in KV: every monitor whose
// record revision is at most CoveredRev has had every resolution since
// LastPoll (less the overlap) looked for.
type pollCursor struct {
	LastPoll   time.Time `json:"lastPoll"`
	CoveredRev uint64    `json:"coveredRev"`
	Holder     string    `json:"holder"`
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

// monitorObserver receives what the metrics count of monitors.
type monitorObserver interface {
	monitorsActive(console string, n int)
}

// monitorSet is the monitors of one console: the request side (start, list,
// cancel), safe for concurrent use on any replica, and the poll loop that
// runs on the lease holder.
type monitorSet struct {
	console  string
	client   *sentinelone.Client
	cfg      config.Monitor
	overlap  time.Duration // re-read window of each poll
	pageSize int
	subj     subjects.Subjects
	st       *stores
	nc       *nats.Conn
	holder   string
	log      *slog.Logger
	obs      monitorObserver
	leaseTTL time.Duration // also the grace before completing another's claim

	leading atomic.Bool // this replica holds the monitors lease
}

func (ms *monitorSet) key(id string) string { return ms.console + monitorKeyInfix + id }
func (ms *monitorSet) cursorKey() string    { return ms.console + monitorCursor }
func (ms *monitorSet) leaseKey() string     { return ms.console + monitorLease }

func kvSubject(key string) string { return "$KV." + subjects.BucketMonitors + "." + key }

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

// monitorEventID is the CloudEvents id (and Nats-Msg-Id) of an outcome.
func (ms *monitorSet) monitorEventID(id, outcome string) string {
	return ms.console + "/monitor/" + id + "/" + outcome
}

// storeError is a 503 for a KV or stream failure: another try may work.
func storeError(err error) error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Message: "the monitor store (JetStream) did not answer; retry", Retryable: true, Err: err}
}

// monitorNow is the time of a monitor's start or end: UTC, to the
// microsecond like SentinelOne's timestamps.
func monitorNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// start answers threats.monitor.
func (ms *monitorSet) start(ctx context.Context, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
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
			RequestID: spec.Request.ID, RequestSource: spec.Request.Source,
			TraceParent: spec.Request.TraceParent, TraceState: spec.Request.TraceState,
		}
		if t.IncidentStatus == sentinelone.IncidentResolved {
			rec.State = handlers.MonitorResolved
			rec.End = &monitorEnd{Outcome: subjects.OutcomeResolved, At: t.UpdatedAt, EndedAt: started, Threat: t.Raw}
		}
		b, _ := json.Marshal(rec)
		rev, err := ms.st.monitors.Create(ctx, ms.key(id), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
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
func (ms *monitorSet) repeat(ctx context.Context, id string, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
	e, err := ms.st.monitors.Get(ctx, ms.key(id))
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
	m, err := ms.st.events.GetLastMsgForSubject(ctx, ms.subj.MonitorWildcard(ms.console, id))
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

func (ms *monitorSet) reply(rec *monitorRecord) *handlers.MonitorReply {
	return &handlers.MonitorReply{
		MonitorID: rec.MonitorID, ThreatID: rec.ThreatID, State: rec.State, Deadline: rec.Deadline,
		Subject: ms.subj.MonitorWildcard(ms.console, rec.MonitorID),
	}
}

// cancel answers monitors.cancel. The threat is read first, so that a
// SentinelOne failure leaves the monitor as it was.
func (ms *monitorSet) cancel(ctx context.Context, id string) error {
	for range 3 {
		e, err := ms.st.monitors.Get(ctx, ms.key(id))
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
		rev, err := ms.st.monitors.Update(ctx, ms.key(id), b, e.Revision())
		if isWrongLastSeq(err) {
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
// rev, then deletes the record. With check it first looks for the event in
// the stream, for a claim older than the duplicate window may have been
// published long ago. It is idempotent.
func (ms *monitorSet) complete(ctx context.Context, rec *monitorRecord, rev uint64, check bool) error {
	published := false
	if check {
		_, err := ms.st.events.GetLastMsgForSubject(ctx, ms.subj.MonitorEvent(ms.console, rec.MonitorID, rec.End.Outcome))
		switch {
		case err == nil:
			published = true
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return err
		}
	}
	if !published {
		m, err := ms.event(rec)
		if err != nil {
			return err
		}
		if _, err := ms.st.js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
	err := ms.st.monitors.Delete(ctx, ms.key(rec.MonitorID), jetstream.LastRevision(rev))
	if err != nil && !isWrongLastSeq(err) { // wrong revision: somebody completed it first
		return fmt.Errorf("delete monitor %s: %w", rec.MonitorID, err)
	}
	return nil
}

// event builds the outcome event of rec (rec.End set).
func (ms *monitorSet) event(rec *monitorRecord) (*nats.Msg, error) {
	end := rec.End
	data, err := json.Marshal(monitorEventData{
		MonitorID: rec.MonitorID, ThreatID: rec.ThreatID, Threat: end.Threat, StartedAt: rec.StartedAt, EndedAt: end.EndedAt,
	})
	if err != nil {
		return nil, err
	}
	id := ms.monitorEventID(rec.MonitorID, end.Outcome)
	ev := ce.Event{
		SpecVersion: subjects.SpecVersion, ID: id, Source: subjects.Source(ms.console),
		Type: subjects.MonitorType(end.Outcome), Subject: rec.ThreatID, Time: end.At,
		DataContentType: subjects.ContentTypeJSON, Data: data,
	}
	ev.SetExtension(subjects.ExtCorrelationID, rec.RequestID)
	ev.SetExtension(subjects.ExtTraceParent, rec.TraceParent)
	ev.SetExtension(subjects.ExtTraceState, rec.TraceState)
	h, body, err := ce.Encode(ev, ce.ModeBinary)
	if err != nil {
		return nil, err
	}
	h.Set(subjects.HeaderMsgID, id)
	return &nats.Msg{Subject: ms.subj.MonitorEvent(ms.console, rec.MonitorID, end.Outcome), Header: h, Data: body}, nil
}

// fetchThreats reads threats by id, monitorIDsPerCall per call; an id the
// console does not have is absent from the map.
func (ms *monitorSet) fetchThreats(ctx context.Context, ids []string) (map[string]*sentinelone.Threat, error) {
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

// list answers monitors.list from KV, so any replica answers it.
func (ms *monitorSet) list(ctx context.Context) ([]handlers.MonitorItem, error) {
	w, err := ms.st.monitors.Watch(ctx, ms.key("*"), jetstream.IgnoreDeletes())
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

// isWrongLastSeq reports a compare-and-set rejection (10071, or 10164 from
// a replicated stream).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// run takes part in the lease election until ctx ends, polling while it
// holds the lease.
func (ms *monitorSet) run(ctx context.Context) {
	l := &lease{kv: ms.st.leases, key: ms.leaseKey(), holder: ms.holder, log: ms.log, ttl: ms.leaseTTL}
	l.hold(ctx, func(ctx context.Context) {
		ms.leading.Store(true)
		defer ms.leading.Store(false)
		defer ms.obs.monitorsActive(ms.console, 0)
		if err := newMonitorLoop(ms).run(ctx); err != nil && ctx.Err() == nil {
			ms.log.Error("monitors: loop failed; giving up the lease", "error", err)
		}
	})
}

// watched is one record the loop holds.
type watched struct {
	rec      monitorRecord
	rev      uint64
	interval time.Duration
	done     bool // its end is complete; the watch's delete is on its way
}

// monitorLoop is the state of the lease holder's loop; one goroutine owns it.
type monitorLoop struct {
	ms        *monitorSet
	all       map[string]*watched            // by monitor id, ended ones until their delete
	byThreat  map[string]map[string]*watched // threat id → monitor id → active monitor
	intervals map[time.Duration]int          // poll interval → active monitors asking for it
	uncovered map[string]*watched            // active, not yet covered by a complete poll
	active    int
	reported  int
	timers    timerHeap

	lastPoll   time.Time // start of the last complete poll
	coveredRev uint64    // monitors up to this revision are covered from lastPoll
	maxRev     uint64    // the highest revision the watch delivered
	// nextPoll is when to poll next: one interval after the last poll, or
	// sooner when a monitor asks for it (zero while none is active).
	nextPoll time.Time
}

func newMonitorLoop(ms *monitorSet) *monitorLoop {
	return &monitorLoop{
		ms: ms, all: map[string]*watched{}, byThreat: map[string]map[string]*watched{},
		intervals: map[time.Duration]int{}, uncovered: map[string]*watched{}, reported: -1,
	}
}

// run loads the monitors and serves them until ctx ends or the store fails.
func (l *monitorLoop) run(ctx context.Context) error {
	ms := l.ms
	e, err := ms.st.monitors.Get(ctx, ms.cursorKey())
	switch {
	case err == nil:
		var c pollCursor
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return fmt.Errorf("poll cursor: %w", err)
		}
		l.lastPoll, l.coveredRev = c.LastPoll, c.CoveredRev
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return err
	}
	// Subscribe before loading, so that no resolution falls in between.
	events := make(chan *nats.Msg, monitorEventBuffer)
	sub, err := ms.nc.ChanSubscribe(ms.subj.ThreatEvent(ms.console, "*", subjects.KindStatus, sentinelone.IncidentResolved), events)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	w, err := ms.st.monitors.Watch(ctx, ms.key("*"))
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	loaded := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if loaded {
			l.report()
			timer.Reset(time.Until(l.nextWake()))
		}
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("monitor watch closed")
			case e == nil:
				loaded = true
				ms.log.Info("monitors: loaded; polling", "active", l.active, "last_poll", l.lastPoll)
			default:
				l.apply(e)
			}
		case m := <-events:
			if loaded {
				l.onResolved(ctx, m)
			}
		case <-timer.C:
			l.work(ctx)
		}
	}
}

// report updates the active-monitors gauge when the count changed.
func (l *monitorLoop) report() {
	if l.active != l.reported {
		l.ms.obs.monitorsActive(l.ms.console, l.active)
		l.reported = l.active
	}
}

// nextWake is when work has something to do: the earliest timer, or the
// next poll while monitors are active. An idle loop wakes once an hour.
func (l *monitorLoop) nextWake() time.Time {
	next := time.Now().Add(time.Hour)
	if len(l.timers) > 0 && l.timers[0].at.Before(next) {
		next = l.timers[0].at
	}
	if l.active > 0 && l.nextPoll.Before(next) {
		next = l.nextPoll
	}
	return next
}

// apply takes one watch entry into the loop's state.
func (l *monitorLoop) apply(e jetstream.KeyValueEntry) {
	id := strings.TrimPrefix(e.Key(), l.ms.key(""))
	l.maxRev = max(l.maxRev, e.Revision())
	w := l.all[id]
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		if w != nil {
			l.unindex(w)
			delete(l.all, id)
		}
		return
	}
	if w != nil && e.Revision() <= w.rev {
		return // our own claim, applied already
	}
	var rec monitorRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		l.ms.log.Error("monitors: unreadable record ignored", "key", e.Key(), "error", err)
		return
	}
	if w == nil {
		w = &watched{}
		l.all[id] = w
	}
	l.unindex(w)
	w.rec, w.rev, w.interval, w.done = rec, e.Revision(), time.Duration(rec.PollInterval), false
	l.index(w)
}

// index adds w to the active indexes and schedules its timer: the deadline
// of an active monitor, or for a claim, the end of the grace its claimer has
// to complete it.
func (l *monitorLoop) index(w *watched) {
	if w.rec.End != nil {
		heap.Push(&l.timers, monitorTimer{at: w.rec.End.EndedAt.Add(l.ms.leaseTTL), id: w.rec.MonitorID, rev: w.rev})
		return
	}
	id, tid := w.rec.MonitorID, w.rec.ThreatID
	if l.byThreat[tid] == nil {
		l.byThreat[tid] = map[string]*watched{}
	}
	l.byThreat[tid][id] = w
	l.intervals[w.interval]++
	if w.rev > l.coveredRev {
		l.uncovered[id] = w
	}
	// threats.monitor read the threat at the start, so the first poll a
	// monitor needs is one interval later (at once for an older monitor a
	// new leader takes over).
	if first := w.rec.StartedAt.Add(w.interval); l.nextPoll.IsZero() || first.Before(l.nextPoll) {
		l.nextPoll = first
	}
	l.active++
	heap.Push(&l.timers, monitorTimer{at: w.rec.Deadline, id: id, rev: w.rev})
}

// unindex removes w from the active indexes (its timers lapse: their
// revision no longer matches).
func (l *monitorLoop) unindex(w *watched) {
	if w.rec.End != nil || w.rev == 0 {
		return
	}
	id, tid := w.rec.MonitorID, w.rec.ThreatID
	delete(l.byThreat[tid], id)
	if len(l.byThreat[tid]) == 0 {
		delete(l.byThreat, tid)
	}
	if l.intervals[w.interval]--; l.intervals[w.interval] == 0 {
		delete(l.intervals, w.interval)
	}
	delete(l.uncovered, id)
	if l.active--; l.active == 0 {
		l.nextPoll = time.Time{}
	}
}

// minInterval is the shortest poll interval of the active monitors.
func (l *monitorLoop) minInterval() time.Duration {
	var m time.Duration
	for d := range l.intervals {
		if m == 0 || d < m {
			m = d
		}
	}
	return max(m, config.MinPollInterval)
}

// work does what is due: completes stale claims, ends the monitors past
// their deadline, and polls.
func (l *monitorLoop) work(ctx context.Context) {
	t0 := time.Now()
	var due, stale []*watched
	for len(l.timers) > 0 && !l.timers[0].at.After(t0) {
		t := heap.Pop(&l.timers).(monitorTimer)
		w := l.all[t.id]
		switch {
		case w == nil || w.rev != t.rev || w.done:
		case w.rec.End == nil:
			due = append(due, w)
		default:
			stale = append(stale, w)
		}
	}
	for _, w := range stale {
		if err := l.ms.complete(ctx, &w.rec, w.rev, true); err != nil {
			l.ms.log.Warn("monitors: could not complete an outcome; retrying", "monitor", w.rec.MonitorID, "outcome", w.rec.End.Outcome, "error", err)
			heap.Push(&l.timers, monitorTimer{at: time.Now().Add(l.minInterval()), id: w.rec.MonitorID, rev: w.rev})
			continue
		}
		w.done = true
		l.ms.log.Info("monitors: completed an outcome left behind", "monitor", w.rec.MonitorID, "outcome", w.rec.End.Outcome)
	}
	if len(due) > 0 {
		l.timeouts(ctx, due)
	}
	if l.active > 0 && !t0.Before(l.nextPoll) {
		l.nextPoll = t0.Add(l.minInterval())
		if err := l.poll(ctx); err != nil && ctx.Err() == nil {
			l.ms.log.Warn("monitors: poll failed; retrying at the next interval", "error", err, "retry_in", l.minInterval())
		}
	}
}

// since is where the next poll starts reading: the last complete poll for
// the monitors it covered, the start of each monitor it did not, less the
// overlap.
func (l *monitorLoop) since() time.Time {
	var s time.Time
	if l.active > len(l.uncovered) {
		s = l.lastPoll
	}
	for _, w := range l.uncovered {
		if s.IsZero() || w.rec.StartedAt.Before(s) {
			s = w.rec.StartedAt
		}
	}
	return s.Add(-l.ms.overlap)
}

// poll makes the one query that serves every monitor: the threats resolved
// since the last poll.
func (l *monitorLoop) poll(ctx context.Context) error {
	started := time.Now().UTC()
	startRev := l.maxRev
	f := sentinelone.ThreatFilter{
		IncidentStatuses: []string{sentinelone.IncidentResolved}, UpdatedAtGte: l.since(),
		SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: l.ms.pageSize,
	}
	for page, err := range l.ms.client.ThreatPages(ctx, f) {
		if err != nil {
			return err
		}
		var ends []ending
		for i := range page.Items {
			ends = l.resolutions(&page.Items[i], ends)
		}
		l.finish(ctx, ends)
	}
	for id, w := range l.uncovered {
		if w.rev <= startRev {
			delete(l.uncovered, id)
		}
	}
	l.lastPoll, l.coveredRev = started, startRev
	b, _ := json.Marshal(pollCursor{LastPoll: started, CoveredRev: startRev, Holder: l.ms.holder})
	// A stale cursor only makes the next leader read further back, so a
	// plain put is enough.
	if _, err := l.ms.st.monitors.Put(ctx, l.ms.cursorKey(), b); err != nil {
		return fmt.Errorf("write poll cursor: %w", err)
	}
	return nil
}

// onResolved ends the monitors of the threat a resolved event (published
// by ingestion) is about.
func (l *monitorLoop) onResolved(ctx context.Context, m *nats.Msg) {
	ev, err := ce.Decode(m.Header, m.Data)
	if err != nil || l.byThreat[ev.Subject] == nil {
		return
	}
	var d struct {
		Threat sentinelone.Threat `json:"threat"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		l.ms.log.Warn("monitors: unreadable resolved event ignored (the next poll covers it)", "subject", m.Subject, "error", err)
		return
	}
	l.finish(ctx, l.resolutions(&d.Threat, nil))
}

// resolutions appends the endings t's resolution causes.
func (l *monitorLoop) resolutions(t *sentinelone.Threat, ends []ending) []ending {
	if t.IncidentStatus != sentinelone.IncidentResolved {
		return ends
	}
	at := monitorNow()
	for _, w := range l.byThreat[t.ID] {
		if resolves(&w.rec, t) {
			ends = append(ends, ending{w, monitorEnd{Outcome: subjects.OutcomeResolved, At: t.UpdatedAt, EndedAt: at, Threat: t.Raw}})
		}
	}
	return ends
}

// resolves reports whether t, resolved, ends rec: resolved after the monitor
// started and no later than its deadline.
func resolves(rec *monitorRecord, t *sentinelone.Threat) bool {
	return t.IncidentStatus == sentinelone.IncidentResolved && t.UpdatedAt.After(rec.ThreatUpdatedAt) && !t.UpdatedAt.After(rec.Deadline)
}

// timeouts ends the monitors past their deadline, each with the threat as
// the console has it now; one resolved before the deadline (and not yet
// seen) ends resolved. When SentinelOne fails they are tried again later.
func (l *monitorLoop) timeouts(ctx context.Context, due []*watched) {
	ids := make([]string, 0, len(due))
	for _, w := range due {
		ids = append(ids, w.rec.ThreatID)
	}
	slices.Sort(ids)
	threats, err := l.ms.fetchThreats(ctx, slices.Compact(ids))
	if err != nil {
		retry := l.minInterval()
		l.ms.log.Warn("monitors: could not read the threats of monitors past their deadline; retrying", "monitors", len(due), "error", err, "retry_in", retry)
		for _, w := range due {
			heap.Push(&l.timers, monitorTimer{at: time.Now().Add(retry), id: w.rec.MonitorID, rev: w.rev})
		}
		return
	}
	at := monitorNow()
	ends := make([]ending, 0, len(due))
	for _, w := range due {
		t := threats[w.rec.ThreatID]
		switch {
		case t != nil && resolves(&w.rec, t):
			ends = append(ends, ending{w, monitorEnd{Outcome: subjects.OutcomeResolved, At: t.UpdatedAt, EndedAt: at, Threat: t.Raw}})
		case t != nil:
			ends = append(ends, ending{w, monitorEnd{Outcome: subjects.OutcomeTimedOut, At: w.rec.Deadline, EndedAt: at, Threat: t.Raw}})
		default:
			ends = append(ends, ending{w, monitorEnd{Outcome: subjects.OutcomeTimedOut, At: w.rec.Deadline, EndedAt: at}})
		}
	}
	l.finish(ctx, ends)
}

// ending is an outcome the loop decided for an active monitor.
type ending struct {
	w   *watched
	end monitorEnd
}

// finish ends monitors in three pipelined rounds, each waiting for the
// previous one's acks: claim every record (compare-and-set on the revision
// the loop holds), publish the events of the claims won, delete the records
// whose event is stored. A claim lost means another replica decided first.
// Any other failure leaves a claim behind, which the loop completes after
// the grace (the watch delivers it).
func (l *monitorLoop) finish(ctx context.Context, ends []ending) {
	// Batches stay within the client's async publish window.
	for batch := range slices.Chunk(ends, monitorBatch) {
		l.finishBatch(ctx, batch)
	}
}

func (l *monitorLoop) finishBatch(ctx context.Context, ends []ending) {
	log := l.ms.log
	// 1. Claims.
	claimed := make([]uint64, len(ends))
	futs := make([]jetstream.PubAckFuture, 0, len(ends))
	for _, e := range ends {
		rec := e.w.rec
		end := e.end
		rec.End = &end
		b, _ := json.Marshal(&rec)
		f, err := l.ms.st.js.PublishMsgAsync(&nats.Msg{Subject: kvSubject(l.ms.key(rec.MonitorID)), Data: b},
			jetstream.WithExpectLastSequencePerSubject(e.w.rev))
		if err != nil {
			log.Warn("monitors: could not claim", "monitor", rec.MonitorID, "error", err)
			break
		}
		futs = append(futs, f)
	}
	if err := awaitEach(ctx, futs, func(i int, a *jetstream.PubAck) { claimed[i] = a.Sequence }, func(i int, err error) {
		if !isWrongLastSeq(err) {
			log.Warn("monitors: claim failed", "monitor", ends[i].w.rec.MonitorID, "error", err)
		}
	}); err != nil {
		return
	}
	var won []*watched
	for i, e := range ends {
		if claimed[i] == 0 {
			continue
		}
		w := e.w
		l.unindex(w)
		end := e.end
		w.rec.End, w.rev = &end, claimed[i]
		l.index(w) // the grace timer, should a later round fail
		won = append(won, w)
	}
	// 2. Events.
	futs = futs[:0]
	for _, w := range won {
		m, err := l.ms.event(&w.rec)
		if err == nil {
			var f jetstream.PubAckFuture
			if f, err = l.ms.st.js.PublishMsgAsync(m); err == nil {
				futs = append(futs, f)
				continue
			}
		}
		log.Warn("monitors: could not publish an outcome; retrying after the grace", "monitor", w.rec.MonitorID, "error", err)
		won = won[:len(futs)]
		break
	}
	stored := make([]bool, len(won))
	if err := awaitEach(ctx, futs, func(i int, _ *jetstream.PubAck) { stored[i] = true }, func(i int, err error) {
		log.Warn("monitors: outcome not stored; retrying after the grace", "monitor", won[i].rec.MonitorID, "error", err)
	}); err != nil {
		return
	}
	// 3. Deletes.
	futs = futs[:0]
	var deleting []*watched
	for i, w := range won {
		if !stored[i] {
			continue
		}
		m := &nats.Msg{Subject: kvSubject(l.ms.key(w.rec.MonitorID)), Header: nats.Header{}}
		m.Header.Set(kvOperationHeader, kvOperationDelete)
		f, err := l.ms.st.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(w.rev))
		if err != nil {
			log.Warn("monitors: could not delete an ended monitor; retrying after the grace", "monitor", w.rec.MonitorID, "error", err)
			break
		}
		futs = append(futs, f)
		deleting = append(deleting, w)
	}
	_ = awaitEach(ctx, futs, func(i int, _ *jetstream.PubAck) { deleting[i].done = true }, func(i int, err error) {
		if isWrongLastSeq(err) {
			deleting[i].done = true // somebody completed it first
			return
		}
		log.Warn("monitors: could not delete an ended monitor; retrying after the grace", "monitor", deleting[i].rec.MonitorID, "error", err)
	})
	for _, w := range won {
		log.Debug("monitor ended", "monitor", w.rec.MonitorID, "threat", w.rec.ThreatID, "outcome", w.rec.End.Outcome)
	}
	if len(won) > 0 {
		log.Info("monitors ended", "count", len(won), "outcome", won[0].rec.End.Outcome)
	}
}

// awaitEach waits for every future, calling ok or fail with its index. It
// returns early only when ctx ends.
func awaitEach(ctx context.Context, futs []jetstream.PubAckFuture, ok func(int, *jetstream.PubAck), fail func(int, error)) error {
	for i, f := range futs {
		select {
		case a := <-f.Ok():
			ok(i, a)
		case err := <-f.Err():
			fail(i, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// monitorTimer is when the loop must look at monitor id again, valid while
// the monitor's record is still at revision rev.
type monitorTimer struct {
	at  time.Time
	id  string
	rev uint64
}

// timerHeap is a min-heap of timers by time.
type timerHeap []monitorTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(monitorTimer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
