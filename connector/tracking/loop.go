package tracking

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// tracked is one record the loop holds.
type tracked struct {
	rec  record
	rev  uint64
	conf *confirmation // nil for an action this version does not track
	// pending counts the targets not yet confirmed.
	pending int
	// checks counts the agent (or threat) lookups done for it (not
	// stored: a successor looks again).
	checks int
	dirty  bool // targets changed since the record was written
	done   bool // its end is complete; the watch's delete is on its way
}

// ref is one target of a record: where the poller finds it from an id.
type ref struct {
	w *tracked
	i int // index in w.rec.Targets
}

// targetKey names a target: agent and threat ids are looked up apart.
type targetKey struct {
	kind targetKind
	id   string
}

// loop is the state of the lease holder's loop; one goroutine owns it.
type loop struct {
	s         *Set
	all       map[string]*tracked // by tracking id, ended ones until their delete
	byTarget  map[targetKey][]ref // the targets of the active records
	uncovered map[string]*tracked // active, not yet covered by a complete poll
	active    int
	reported  int
	batch     *store.Batch

	lastPoll   time.Time // start of the last complete poll
	coveredRev uint64    // records up to this revision are covered from lastPoll
	maxRev     uint64    // the highest revision the watch delivered
}

func newLoop(s *Set) *loop {
	return &loop{
		s: s, all: map[string]*tracked{}, byTarget: map[targetKey][]ref{}, uncovered: map[string]*tracked{},
		reported: -1, batch: s.st.NewBatch(),
	}
}

// run loads the records and serves them until ctx ends or the store fails.
func (l *loop) run(ctx context.Context) error {
	s := l.s
	c, err := s.st.LoadCursor(ctx, subjects.BucketTracking, subjects.TrackingPollKey(s.console))
	if err != nil {
		return err
	}
	l.lastPoll, l.coveredRev = c.LastPoll, c.CoveredRev
	w, err := s.kv.Watch(ctx, subjects.TrackingKeys(s.console))
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	loaded := false
	for {
		if loaded {
			l.report()
		}
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("tracking watch closed")
			case e == nil:
				loaded = true
				s.log.Info("tracking: loaded; polling", "active", l.active, "last_poll", l.lastPoll)
				// A successor polls at once: the actions it takes over
				// have waited for it.
				l.work(ctx)
			default:
				l.apply(e)
			}
		case <-tick.C:
			if loaded {
				l.work(ctx)
			}
		}
	}
}

// report updates the active gauge when the count changed.
func (l *loop) report() {
	if l.active != l.reported {
		l.s.obs.TrackingActive(l.s.console, l.active)
		l.reported = l.active
	}
}

// apply takes one watch entry into the loop's state.
func (l *loop) apply(e jetstream.KeyValueEntry) {
	en := store.DecodeEntry[record](e, l.s.key(""))
	id, rec := en.ID, en.Rec
	l.maxRev = max(l.maxRev, en.Rev)
	w := l.all[id]
	switch {
	case en.Deleted:
		if w != nil {
			l.unindex(w)
			delete(l.all, id)
		}
		return
	case w != nil && en.Rev <= w.rev:
		return // our own write, applied already
	case en.Err != nil:
		l.s.log.Error("tracking: unreadable record ignored", "key", e.Key(), "error", en.Err)
		return
	}
	if w == nil {
		w = &tracked{}
		l.all[id] = w
	}
	l.unindex(w)
	*w = tracked{rec: rec, rev: en.Rev, conf: confirmationOf(rec.Action, rec.Variant)}
	if w.conf == nil && rec.End == nil {
		l.s.log.Warn("tracking: an action this version does not track; it will time out", "tracking_id", id, "tracked_action", confirmKey(rec.Action, rec.Variant))
	}
	l.index(w)
	if rec.End == nil && w.rev > l.coveredRev {
		l.uncovered[id] = w
	}
}

// index adds an active record's pending targets to the indexes.
func (l *loop) index(w *tracked) {
	if w.rec.End != nil {
		return
	}
	l.active++
	for i, t := range w.rec.Targets {
		if t.State != events.TargetPending {
			continue
		}
		w.pending++
		if w.conf != nil {
			k := targetKey{w.conf.targets, t.ID}
			l.byTarget[k] = append(l.byTarget[k], ref{w, i})
		}
	}
}

// unindex removes w from the indexes.
func (l *loop) unindex(w *tracked) {
	if w.rec.End != nil || w.rev == 0 {
		return
	}
	l.active--
	delete(l.uncovered, w.rec.TrackingID)
	if w.conf == nil {
		return
	}
	for _, t := range w.rec.Targets {
		k := targetKey{w.conf.targets, t.ID}
		refs := slices.DeleteFunc(l.byTarget[k], func(r ref) bool { return r.w == w })
		if len(refs) == 0 {
			delete(l.byTarget, k)
		} else {
			l.byTarget[k] = refs
		}
	}
	w.pending = 0
}

// work is one tick: complete the claims left behind, poll, look up what is
// due, and end what is decided.
func (l *loop) work(ctx context.Context) {
	t0 := now()
	l.completeStale(ctx, t0)
	if l.active == 0 {
		return
	}
	polled := false
	// The records the poll covers: those the watch delivered before it.
	startRev := l.maxRev
	var covering []string
	for id, w := range l.uncovered {
		if w.rev <= startRev {
			covering = append(covering, id)
		}
	}
	if err := l.poll(ctx); err != nil {
		if ctx.Err() == nil {
			l.s.log.Warn("tracking: poll failed; retrying at the next interval (deadlines wait for a poll)", "error", err, "retry_in", l.s.cfg.PollInterval)
		}
	} else {
		polled = true
		if err := l.check(ctx, t0); err != nil && ctx.Err() == nil {
			l.s.log.Warn("tracking: agent lookup failed; retrying at the next interval", "error", err)
		}
	}
	l.write(ctx, l.decide(t0, polled))
	if polled {
		l.commit(ctx, t0, startRev, covering)
	}
}

// since is where the next poll starts reading: the last complete poll for
// the records it covered, the request of each record it did not.
func (l *loop) since() time.Time {
	var s time.Time
	if l.active > len(l.uncovered) && !l.lastPoll.IsZero() {
		s = l.lastPoll.Add(-l.s.overlap)
	}
	for _, w := range l.uncovered {
		if r := w.rec.RequestedAt.Add(-clockSkew); s.IsZero() || r.Before(s) {
			s = r
		}
	}
	return s
}

// types returns the activity types that confirm the actions pending,
// sorted.
func (l *loop) types() []int {
	seen := map[*confirmation]bool{}
	var out []int
	for _, w := range l.all {
		if w.rec.End == nil && w.conf != nil && w.pending > 0 && !seen[w.conf] {
			seen[w.conf] = true
			out = append(out, w.conf.types()...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// poll makes the one query that serves every tracked action: the
// activities of the types that confirm them, created since the last poll.
func (l *loop) poll(ctx context.Context) error {
	types := l.types()
	if len(types) == 0 {
		return nil
	}
	f := sentinelone.ActivityFilter{
		ActivityTypes: types, CreatedAtGt: l.since(),
		SortBy: "createdAt", SortOrder: sentinelone.SortAsc, Limit: l.s.pageSize,
	}
	for page, err := range l.s.client.ActivityPages(ctx, f) {
		if err != nil {
			return err
		}
		for i := range page.Items {
			l.confirm(&page.Items[i])
		}
	}
	return nil
}

// confirm applies one activity to the pending targets it names.
func (l *loop) confirm(a *sentinelone.Activity) {
	for _, k := range []targetKey{{agentTargets, a.AgentID}, {threatTargets, a.ThreatID}} {
		if k.id == "" {
			continue
		}
		for _, r := range l.byTarget[k] {
			w := r.w
			t := &w.rec.Targets[r.i]
			if t.State != events.TargetPending || a.CreatedAt.Before(w.rec.RequestedAt.Add(-clockSkew)) || a.CreatedAt.After(w.rec.Deadline) {
				continue
			}
			switch class := w.conf.class(a.ActivityType); class {
			case classSucceeded, classFailed:
				at, id := a.CreatedAt.UTC(), a.ID
				t.State, t.At, t.ActivityID, t.Message = class, &at, &id, a.PrimaryDescription
				w.pending--
				w.dirty = true
			case classWaiting:
				if t.Message != a.PrimaryDescription {
					t.Message = a.PrimaryDescription
					w.dirty = true
				}
			}
		}
	}
}

// checkDue reports whether w is due for a lookup of its targets at t:
// network actions twice (2 intervals after the request, for an agent
// already in the state asked for, and one interval before the deadline,
// for a report that never came), records with targets SentinelOne did not
// count once.
func (l *loop) checkDue(w *tracked, t time.Time) bool {
	if w.rec.End != nil || w.conf == nil || w.pending == 0 || (w.conf.network == "" && !w.rec.Unmatched) {
		return false
	}
	iv := l.s.cfg.PollInterval
	first, last := w.rec.RequestedAt.Add(2*iv), w.rec.Deadline.Add(-iv)
	switch {
	case w.checks == 0:
		if last.Before(first) {
			first = last
		}
		return !t.Before(first)
	case w.checks == 1 && w.conf.network != "" && last.After(first):
		return !t.Before(last)
	}
	return false
}

// check looks up the pending targets of the records due, up to
// checkIDsPerTick ids (the others wait for the next tick).
func (l *loop) check(ctx context.Context, t time.Time) error {
	var due []*tracked
	ids := map[targetKind][]string{}
	n := 0
	for _, w := range l.all {
		if n >= checkIDsPerTick || !l.checkDue(w, t) {
			continue
		}
		due = append(due, w)
		for _, tg := range w.rec.Targets {
			if tg.State == events.TargetPending {
				ids[w.conf.targets] = append(ids[w.conf.targets], tg.ID)
				n++
			}
		}
	}
	if len(due) == 0 {
		return nil
	}
	agents, threats, err := l.lookup(ctx, ids[agentTargets], ids[threatTargets])
	if err != nil {
		return err
	}
	for _, w := range due {
		w.checks++
		for i := range w.rec.Targets {
			tg := &w.rec.Targets[i]
			if tg.State != events.TargetPending {
				continue
			}
			var state, msg string
			if w.conf.targets == threatTargets {
				if _, ok := threats[tg.ID]; !ok && w.rec.Unmatched {
					state, msg = events.TargetFailed, "SentinelOne has no threat "+tg.ID+" (or the API token cannot see it)"
				}
			} else {
				a, ok := agents[tg.ID]
				switch {
				case !ok && w.rec.Unmatched:
					state, msg = events.TargetFailed, "SentinelOne has no agent "+tg.ID+" (or the API token cannot see it)"
				case ok && a.IsDecommissioned && w.rec.Unmatched:
					state, msg = events.TargetFailed, "the agent is decommissioned: SentinelOne did not send it the action"
				case ok && w.conf.network != "" && a.NetworkStatus == w.conf.network:
					state, msg = events.TargetSucceeded, "the agent's networkStatus is "+a.NetworkStatus
				}
			}
			if state != "" {
				at := t
				tg.State, tg.At, tg.Message = state, &at, msg
				w.pending--
				w.dirty = true
			}
		}
	}
	return nil
}

// lookup reads agents and threats by id, agentIDsPerCall per call; an id
// the console does not have is absent from the maps.
func (l *loop) lookup(ctx context.Context, agentIDs, threatIDs []string) (map[string]*sentinelone.Agent, map[string]*sentinelone.Threat, error) {
	agents := make(map[string]*sentinelone.Agent, len(agentIDs))
	for chunk := range slices.Chunk(dedupe(agentIDs), agentIDsPerCall) {
		p, err := l.s.client.ListAgents(ctx, sentinelone.AgentFilter{IDs: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, nil, err
		}
		for i := range p.Items {
			agents[p.Items[i].ID] = &p.Items[i]
		}
	}
	threats := make(map[string]*sentinelone.Threat, len(threatIDs))
	for chunk := range slices.Chunk(dedupe(threatIDs), agentIDsPerCall) {
		p, err := l.s.client.ListThreats(ctx, sentinelone.ThreatFilter{IDs: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, nil, err
		}
		for i := range p.Items {
			threats[p.Items[i].ID] = &p.Items[i]
		}
	}
	return agents, threats, nil
}

func dedupe(ids []string) []string {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ending is an outcome the loop decided for an active record.
type ending struct {
	w   *tracked
	end end
}

// decide returns the endings due at t: every record whose targets are all
// confirmed, and after a successful poll (polled) every record past its
// deadline.
func (l *loop) decide(t time.Time, polled bool) []ending {
	var out []ending
	for _, w := range l.all {
		if w.rec.End != nil {
			continue
		}
		switch {
		case w.pending == 0:
			e := end{Outcome: subjects.OutcomeCompleted, At: w.rec.RequestedAt, EndedAt: t}
			for _, tg := range w.rec.Targets {
				if tg.State == events.TargetFailed {
					e.Outcome = subjects.OutcomeFailed
				}
				if tg.At != nil && tg.At.After(e.At) {
					e.At = *tg.At
				}
			}
			out = append(out, ending{w, e})
		case polled && !t.Before(w.rec.Deadline):
			out = append(out, ending{w, end{Outcome: subjects.OutcomeTimedOut, At: w.rec.Deadline, EndedAt: t}})
		}
	}
	return out
}

// write stores what the tick found: the confirmations of records that go
// on (compare-and-set on the revision the loop holds; a conflict means
// another writer, whose version the watch delivers), then the endings
// (store.End).
func (l *loop) write(ctx context.Context, ends []ending) {
	log := l.s.log
	ending := make(map[*tracked]bool, len(ends))
	for _, e := range ends {
		ending[e.w] = true
	}
	var progress []*tracked
	for _, w := range l.all {
		if !w.dirty || ending[w] || w.rec.End != nil {
			continue
		}
		b, err := l.s.encode(&w.rec)
		if err == nil {
			err = l.batch.Put(subjects.BucketTracking, l.s.key(w.rec.TrackingID), b, w.rev)
		}
		if err != nil {
			log.Warn("tracking: could not store confirmations; retrying at the next tick", "tracking_id", w.rec.TrackingID, "error", err)
			break
		}
		progress = append(progress, w)
	}
	if err := l.batch.Wait(ctx, func(i int, a *jetstream.PubAck, err error) {
		w := progress[i]
		switch {
		case err == nil:
			w.rev, w.dirty = a.Sequence, false
		case !store.IsConflict(err):
			log.Warn("tracking: could not store confirmations; retrying at the next tick", "tracking_id", w.rec.TrackingID, "error", err)
		}
	}); err != nil {
		return
	}
	if len(ends) > 0 {
		l.finish(ctx, ends)
	}
}

// finish ends records with store.End. A claim lost means another poller
// decided first; any other failure leaves a claim behind, which the loop
// completes after the grace.
func (l *loop) finish(ctx context.Context, ends []ending) {
	log := l.s.log
	es := make([]store.Ending, 0, len(ends))
	for _, e := range ends {
		rec := e.w.rec
		end := e.end
		rec.End = &end
		v, err := l.s.encode(&rec)
		var m *nats.Msg
		if err == nil {
			m, err = l.s.event(&rec)
		}
		if err != nil {
			log.Error("tracking: could not build an outcome", "tracking_id", rec.TrackingID, "error", err)
			ends = ends[:len(es)]
			break
		}
		es = append(es, store.Ending{Key: l.s.key(rec.TrackingID), Rev: e.w.rev, Claim: v, Event: m})
	}
	res, _ := l.batch.End(ctx, subjects.BucketTracking, es)
	counts := map[string]int{}
	for i, r := range res {
		w := ends[i].w
		if r.Claimed == 0 {
			if r.Err != nil {
				log.Warn("tracking: claim failed; retrying at the next tick", "tracking_id", w.rec.TrackingID, "error", r.Err)
			}
			continue
		}
		l.unindex(w)
		end := ends[i].end
		w.rec.End, w.rev, w.dirty, w.done = &end, r.Claimed, false, r.Deleted
		if r.Err != nil {
			log.Warn("tracking: outcome not complete; retrying after the grace", "tracking_id", w.rec.TrackingID, "error", r.Err)
		}
		counts[end.Outcome]++
		log.Debug("tracked action ended", "tracking_id", w.rec.TrackingID, "tracked_action", confirmKey(w.rec.Action, w.rec.Variant), "outcome", end.Outcome)
	}
	if len(counts) > 0 {
		log.Info("tracked actions ended", "completed", counts[subjects.OutcomeCompleted], "failed", counts[subjects.OutcomeFailed], "timed_out", counts[subjects.OutcomeTimedOut])
	}
}

// completeStale completes the claims whose claimer had its grace (the
// lease TTL) and did not delete them: a crash between claim and delete.
func (l *loop) completeStale(ctx context.Context, t time.Time) {
	for _, w := range l.all {
		if w.rec.End == nil || w.done || t.Before(w.rec.End.EndedAt.Add(l.s.leaseTTL)) {
			continue
		}
		m, err := l.s.event(&w.rec)
		if err == nil {
			err = l.s.st.Complete(ctx, subjects.BucketTracking, l.s.key(w.rec.TrackingID), w.rev, m, true)
		}
		if err != nil {
			l.s.log.Warn("tracking: could not complete an outcome left behind; retrying", "tracking_id", w.rec.TrackingID, "outcome", w.rec.End.Outcome, "error", err)
			continue
		}
		w.done = true
		l.s.log.Info("tracking: completed an outcome left behind", "tracking_id", w.rec.TrackingID, "outcome", w.rec.End.Outcome)
	}
}

// commit records that the poll that started at t covered every record up
// to revision startRev, among them the uncovered ones listed in covered
// (their revision may have grown since with the confirmations written).
func (l *loop) commit(ctx context.Context, t time.Time, startRev uint64, covered []string) {
	for _, id := range covered {
		delete(l.uncovered, id)
	}
	l.lastPoll, l.coveredRev = t, startRev
	c := store.PollCursor{LastPoll: t, CoveredRev: startRev, Holder: l.s.holder}
	if err := l.s.st.SaveCursor(ctx, subjects.BucketTracking, subjects.TrackingPollKey(l.s.console), c); err != nil && ctx.Err() == nil {
		l.s.log.Warn("tracking: could not write the poll cursor", "error", err)
	}
}
