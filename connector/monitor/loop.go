package monitor

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// watched is one record the loop holds.
type watched struct {
	rec      monitorRecord
	rev      uint64
	interval time.Duration
	done     bool // its end is complete; the watch's delete is on its way
}

// monitorLoop is the state of the lease holder's loop; one goroutine owns it.
type monitorLoop struct {
	ms        *Set
	all       map[string]*watched            // by monitor id, ended ones until their delete
	byThreat  map[string]map[string]*watched // threat id → monitor id → active monitor
	intervals map[time.Duration]int          // poll interval → active monitors asking for it
	uncovered map[string]*watched            // active, not yet covered by a complete poll
	active    int
	reported  int
	timers    timerHeap
	batch     *store.Batch // the pipelined writes of finish

	lastPoll   time.Time // start of the last complete poll
	coveredRev uint64    // monitors up to this revision are covered from lastPoll
	maxRev     uint64    // the highest revision the watch delivered
	// nextPoll is when to poll next: one interval after the last poll, or
	// sooner when a monitor asks for it (zero while none is active).
	nextPoll time.Time
}

func newMonitorLoop(ms *Set) *monitorLoop {
	return &monitorLoop{
		ms: ms, all: map[string]*watched{}, byThreat: map[string]map[string]*watched{},
		intervals: map[time.Duration]int{}, uncovered: map[string]*watched{}, reported: -1,
		batch: ms.st.NewBatch(),
	}
}

// run loads the monitors and serves them until ctx ends or the store fails.
func (l *monitorLoop) run(ctx context.Context) error {
	ms := l.ms
	c, err := ms.st.LoadCursor(ctx, subjects.BucketMonitors, ms.cursorKey())
	if err != nil {
		return err
	}
	l.lastPoll, l.coveredRev = c.LastPoll, c.CoveredRev
	// Subscribe before loading, so that no resolution falls in between.
	events := make(chan *nats.Msg, monitorEventBuffer)
	sub, err := ms.nc.ChanSubscribe(ms.subj.ThreatEvent(ms.console, "*", subjects.KindStatus, sentinelone.IncidentResolved), events)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	w, err := ms.kv.Watch(ctx, subjects.MonitorKeys(ms.console))
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
		l.ms.obs.MonitorsActive(l.ms.console, l.active)
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
	en := store.DecodeEntry[monitorRecord](e, l.ms.key(""))
	l.maxRev = max(l.maxRev, en.Rev)
	w := l.all[en.ID]
	switch {
	case en.Deleted:
		if w != nil {
			l.unindex(w)
			delete(l.all, en.ID)
		}
		return
	case w != nil && en.Rev <= w.rev:
		return // our own claim, applied already
	case en.Err != nil:
		l.ms.log.Error("monitors: unreadable record ignored", "key", e.Key(), "error", en.Err)
		return
	}
	if w == nil {
		w = &watched{}
		l.all[en.ID] = w
	}
	l.unindex(w)
	w.rec, w.rev, w.interval, w.done = en.Rec, en.Rev, time.Duration(en.Rec.PollInterval), false
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
	return l.ms.st.SaveCursor(ctx, subjects.BucketMonitors, l.ms.cursorKey(), store.PollCursor{LastPoll: started, CoveredRev: startRev, Holder: l.ms.holder})
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

// finish ends monitors with store.End: claim every record (compare-and-set
// on the revision the loop holds), publish the events of the claims won,
// delete the records whose event is stored. A claim lost means another
// replica decided first. Any other failure leaves a claim behind, which the
// loop completes after the grace (the watch delivers it).
func (l *monitorLoop) finish(ctx context.Context, ends []ending) {
	log := l.ms.log
	es := make([]store.Ending, 0, len(ends))
	for _, e := range ends {
		rec := e.w.rec
		end := e.end
		rec.End = &end
		v, _ := json.Marshal(&rec)
		m, err := l.ms.event(&rec)
		if err != nil {
			log.Warn("monitors: could not build an outcome", "monitor", rec.MonitorID, "error", err)
			break
		}
		es = append(es, store.Ending{Key: l.ms.key(rec.MonitorID), Rev: e.w.rev, Claim: v, Event: m})
	}
	res, _ := l.batch.End(ctx, subjects.BucketMonitors, es)
	var won []*watched
	for i, r := range res {
		if r.Claimed == 0 {
			if r.Err != nil {
				log.Warn("monitors: claim failed", "monitor", ends[i].w.rec.MonitorID, "error", r.Err)
			}
			continue
		}
		w := ends[i].w
		l.unindex(w)
		end := ends[i].end
		w.rec.End, w.rev = &end, r.Claimed
		l.index(w) // the grace timer, should a later round have failed
		w.done = r.Deleted
		if r.Err != nil {
			log.Warn("monitors: outcome not complete; retrying after the grace", "monitor", w.rec.MonitorID, "error", r.Err)
		}
		won = append(won, w)
	}
	for _, w := range won {
		log.Debug("monitor ended", "monitor", w.rec.MonitorID, "threat", w.rec.ThreatID, "outcome", w.rec.End.Outcome)
	}
	if len(won) > 0 {
		log.Info("monitors ended", "count", len(won), "outcome", won[0].rec.End.Outcome)
	}
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
