package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// How ingestion keeps its promise (DESIGN.md §6: every change once, in order
// per threat, nothing skipped):
//
//  1. One replica per console polls, the holder of the KV lease
//     "<console>.ingest". It stops the moment a renewal fails.
//  2. A poll reads GET /threats sorted by updatedAt ascending from the
//     watermark minus overlap, following the cursor with identical filters,
//     so ties at page edges and late-indexed threats are read again.
//  3. Each threat is compared with its last known state (KV
//     "<console>.threat.<id>"); the differences become events whose ids are
//     deterministic for the fact, sent as Nats-Msg-Id.
//  4. Per page: publish the events asynchronously and wait for every ack;
//     only then write the new states (compare-and-set on each key's
//     revision), and only then move the watermark (compare-and-set too).
//
// A crash between 4's steps leaves the state behind the stream, never ahead:
// the next leader recomputes the same events with the same ids and the
// stream's duplicate window (streams.events.duplicates) drops them. A replica
// that lost its lease fails its next compare-and-set and stops.

// threatState is the last known state of one threat, as stored in KV.
type threatState struct {
	Status     string    `json:"s"`
	Verdict    string    `json:"v"`
	Mitigation string    `json:"m"`
	UpdatedAt  time.Time `json:"u"`
	rev        uint64
}

// cursorRecord is the ingestion progress of one console, as stored in KV.
type cursorRecord struct {
	Watermark  time.Time `json:"watermark"`
	LastPollAt time.Time `json:"lastPollAt,omitzero"`
	// PollStartedAt is when the last complete poll began: everything
	// SentinelOne had by then has been published.
	PollStartedAt time.Time `json:"pollStartedAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	Holder        string    `json:"holder,omitempty"`
}

// Event field names, as they appear in change.field and in event ids.
const (
	fieldStatus     = "incidentStatus"
	fieldVerdict    = "analystVerdict"
	fieldMitigation = "mitigationStatus"
)

// IngestStatus is the reply data of ingest.status (DESIGN.md §8).
type IngestStatus struct {
	Console    string     `json:"console"`
	Leader     bool       `json:"leader"`
	LeaderID   string     `json:"leaderId"`
	Watermark  *time.Time `json:"watermark"`
	LastPollAt *time.Time `json:"lastPollAt"`
	LastError  string     `json:"lastError"`
	Published  int64      `json:"published"`
	LagSeconds *float64   `json:"lagSeconds"`
}

// ingester polls one console and publishes its threat events.
type ingester struct {
	console  string
	client   *sentinelone.Client
	cfg      config.Ingest
	subj     subjects.Subjects
	st       *stores
	holder   string
	log      *slog.Logger
	obs      ingestObserver
	leaseTTL time.Duration

	published  atomic.Int64
	duplicates atomic.Int64

	mu       sync.Mutex
	leader   bool
	cursor   cursorRecord
	fatalErr error // 401/403: polling stopped until restart

	// Owned by the leading goroutine.
	states map[string]*threatState
	curRev uint64
	// recovering is set from taking the lease until a poll completes: a
	// threat's events may then be in the stream without its state, written
	// by a leader that crashed (or a commit that failed) in between (see
	// recover).
	recovering bool
	// afterPublish, when set (tests only), runs between the events' acks and
	// the state writes; an error stands for a crash or failure there.
	afterPublish func() error
}

// ingestObserver receives what the metrics count of ingestion.
type ingestObserver interface {
	eventsPublished(console string, n, duplicates int)
	pollDone(console string, cursor cursorRecord, err error)
}

func (in *ingester) stateKey(id string) string { return in.console + ".threat." + id }
func (in *ingester) cursorKey() string         { return in.console + ".cursor" }
func (in *ingester) leaseKey() string          { return in.console + ".ingest" }

// run takes part in the lease election until ctx ends, polling while it leads.
func (in *ingester) run(ctx context.Context) {
	l := &lease{kv: in.st.leases, key: in.leaseKey(), holder: in.holder, log: in.log, ttl: in.leaseTTL}
	l.hold(ctx, in.lead)
}

// lead loads the state and polls every interval until ctx ends.
func (in *ingester) lead(ctx context.Context) {
	in.setLeader(true)
	defer in.setLeader(false)
	if err := in.load(ctx); err != nil {
		if ctx.Err() == nil {
			in.log.Error("ingest: could not load state; giving up the lease", "error", err)
		}
		return
	}
	backoff := time.Second
	for {
		err := in.poll(ctx)
		wait := in.cfg.Interval
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, sentinelone.ErrUnauthorized) || errors.Is(err, sentinelone.ErrForbidden):
			in.mu.Lock()
			in.fatalErr = err
			in.mu.Unlock()
			in.log.Error("ingest: SentinelOne refused the API token (401/403); polling of this console stopped until s1bridge restarts with a valid token and permission Threats.view", "error", err)
			<-ctx.Done()
			return
		case errors.Is(err, errFenced):
			in.log.Warn("ingest: state changed under us (another leader?); reloading", "error", err)
			return
		case err != nil:
			in.log.Warn("ingest: poll failed; watermark kept, retrying", "error", err, "retry_in", backoff)
			wait, backoff = backoff, min(backoff*2, max(in.cfg.Interval, time.Second)*4)
		default:
			backoff = time.Second
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

func (in *ingester) setLeader(v bool) {
	in.mu.Lock()
	in.leader = v
	in.mu.Unlock()
}

// errFenced means a compare-and-set failed: somebody else wrote our keys.
var errFenced = errors.New("ingest: compare-and-set failed")

// load reads the cursor and every known threat state of the console.
func (in *ingester) load(ctx context.Context) error {
	in.states = map[string]*threatState{}
	in.curRev = 0
	e, err := in.st.state.Get(ctx, in.cursorKey())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		in.setCursor(cursorRecord{})
	case err != nil:
		return err
	default:
		var c cursorRecord
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return fmt.Errorf("cursor record: %w", err)
		}
		in.curRev = e.Revision()
		in.setCursor(c)
	}
	// Events of this console in the stream without a watermark mean a
	// leader failed within its first page: recover as after any failure.
	in.recovering = !in.snapshot().Watermark.IsZero()
	if !in.recovering {
		_, err := in.st.events.GetLastMsgForSubject(ctx, in.subj.ConsoleEvents(in.console))
		switch {
		case err == nil:
			in.recovering = true
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return fmt.Errorf("look for earlier events: %w", err)
		}
	}
	w, err := in.st.state.Watch(ctx, in.console+".threat.*", jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	prefix := in.console + ".threat."
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("state watcher closed")
			}
			if e == nil { // all current values delivered
				in.log.Info("ingest: state loaded", "threats", len(in.states), "watermark", in.snapshot().Watermark)
				return nil
			}
			var s threatState
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				return fmt.Errorf("state %s: %w", e.Key(), err)
			}
			s.rev = e.Revision()
			in.states[strings.TrimPrefix(e.Key(), prefix)] = &s
		}
	}
}

func (in *ingester) setCursor(c cursorRecord) {
	in.mu.Lock()
	in.cursor = c
	in.mu.Unlock()
}

func (in *ingester) snapshot() cursorRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cursor
}

// poll reads every threat updated since the watermark minus overlap and
// publishes the changes, page by page.
func (in *ingester) poll(ctx context.Context) (err error) {
	started := time.Now().UTC()
	cur := in.snapshot()
	from := cur.Watermark.Add(-in.cfg.Overlap)
	if cur.Watermark.IsZero() {
		from = started.Add(-in.cfg.FirstFetch)
	}
	defer func() {
		if err != nil {
			// A page may have been published without its states: until a
			// poll completes, look in the stream before calling a threat new.
			in.recovering = true
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, errFenced) {
			c := in.snapshot()
			c.LastError = err.Error()
			_ = in.writeCursor(ctx, c) // best effort: the error is logged anyway
		}
		in.obs.pollDone(in.console, in.snapshot(), err)
	}()
	f := sentinelone.ThreatFilter{
		UpdatedAtGte: from, SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: in.cfg.PageSize,
	}
	pages, threats := 0, 0
	for page, err := range prefetch(ctx, func(ctx context.Context) iter.Seq2[*sentinelone.Page[sentinelone.Threat], error] {
		return in.client.ThreatPages(ctx, f)
	}) {
		if err != nil {
			return err
		}
		pages++
		threats += len(page.Items)
		if err := in.commit(ctx, page.Items); err != nil {
			return err
		}
	}
	in.log.Debug("ingest: poll done", "from", from, "pages", pages, "threats", threats, "watermark", in.snapshot().Watermark)
	c := in.snapshot()
	c.LastPollAt, c.PollStartedAt, c.LastError = time.Now().UTC(), started, ""
	if err := in.writeCursor(ctx, c); err != nil {
		return err
	}
	in.recovering = false
	return nil
}

// recover returns the state of threat id as its last event in the stream
// has it, or nil when the stream has none. A crashed (or failed) commit may
// have published events without storing the state that goes with them:
// treating such a threat as new would publish created again (dropped as a
// duplicate) and never the change that followed; computing its next change
// from the older stored state would repeat a transition already published
// (from the wrong value). Only the first complete poll after taking the
// lease, or after a failed one, can meet one: the unfinished page lies after
// the stored watermark, which that poll re-reads.
func (in *ingester) recover(ctx context.Context, id string) (*threatState, error) {
	// Every event carries the whole threat as of its updatedAt; the last
	// one on any of the threat's subjects is the last state published.
	m, err := in.st.events.GetLastMsgForSubject(ctx, in.subj.ThreatEvent(in.console, id, ">", ""))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recover state of %s: %w", id, err)
	}
	var d struct {
		Threat sentinelone.Threat `json:"threat"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return nil, fmt.Errorf("recover state of %s from event %d: %w", id, m.Sequence, err)
	}
	t := d.Threat
	return &threatState{Status: t.IncidentStatus, Verdict: t.AnalystVerdict, Mitigation: t.MitigationStatus, UpdatedAt: t.UpdatedAt}, nil
}

// prefetch runs the sequence pages(ctx) one step ahead on its own goroutine: SentinelOne reads
// (and decodes) page n+1 while page n is published and acknowledged. Pages
// still come in order, and the cursor walk is the same; a page read ahead is
// simply dropped when the caller stops early.
func prefetch[T any](ctx context.Context, pages func(context.Context) iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		type item struct {
			v   T
			err error
		}
		ctx, cancel := context.WithCancel(ctx)
		seq := pages(ctx)
		ch := make(chan item, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer close(ch)
			for v, err := range seq {
				select {
				case ch <- item{v, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
		defer func() { cancel(); <-done }()
		for it := range ch {
			if !yield(it.v, it.err) {
				return
			}
		}
	}
}

// pending is one publish awaiting its ack.
type pending struct {
	fut  jetstream.PubAckFuture
	id   string
	keep func(*jetstream.PubAck) // on success
}

// commit publishes the events of one page, then the states, then moves the
// watermark; each step only after the previous one is acknowledged.
func (in *ingester) commit(ctx context.Context, threats []sentinelone.Threat) error {
	if len(threats) == 0 {
		return nil
	}
	var evs []*nats.Msg
	type change struct {
		id    string
		state threatState
	}
	var changes []change
	inPage := map[string]int{} // id → index in changes: a threat seen twice in one page
	wm := in.snapshot().Watermark
	for i := range threats {
		t := &threats[i]
		if t.UpdatedAt.After(wm) {
			wm = t.UpdatedAt
		}
		prev := in.states[t.ID]
		recovered := false
		if j, ok := inPage[t.ID]; ok {
			prev = &changes[j].state
		} else if in.recovering {
			r, err := in.recover(ctx, t.ID)
			if err != nil {
				return err
			}
			if r != nil && (prev == nil || r.UpdatedAt.After(prev.UpdatedAt)) {
				in.log.Info("ingest: recovered the state of a threat published before a crash", "threat", t.ID)
				if prev != nil {
					r.rev = prev.rev // the stored key, behind the stream
				} // else rev 0: the key does not exist yet
				in.states[t.ID] = r
				prev, recovered = r, true
			}
		}
		next := threatState{Status: t.IncidentStatus, Verdict: t.AnalystVerdict, Mitigation: t.MitigationStatus, UpdatedAt: t.UpdatedAt}
		if prev != nil && !t.UpdatedAt.After(prev.UpdatedAt) {
			if recovered {
				// Unchanged since it was published, but its state must be
				// stored with this page all the same: the watermark moves past
				// the threat, so a later leader would neither recover it nor
				// find its state, and would take its next change for a new
				// threat (a created event, dropped as a duplicate: the change
				// lost).
				inPage[t.ID] = len(changes)
				changes = append(changes, change{t.ID, *prev})
			}
			continue // already seen this version (or an older one, re-read in the overlap)
		}
		msgs, err := in.events(t, prev)
		if err != nil {
			return err
		}
		evs = append(evs, msgs...)
		if j, ok := inPage[t.ID]; ok {
			changes[j].state = next
		} else {
			inPage[t.ID] = len(changes)
			changes = append(changes, change{t.ID, next})
		}
	}
	// 1. Events.
	var futs []pending
	for _, m := range evs {
		f, err := in.st.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		futs = append(futs, pending{fut: f, id: m.Header.Get(subjects.HeaderMsgID)})
	}
	dups := 0
	if err := awaitAcks(ctx, futs, func(a *jetstream.PubAck) {
		if a.Duplicate {
			dups++
		}
	}); err != nil {
		return err
	}
	in.published.Add(int64(len(evs) - dups))
	in.duplicates.Add(int64(dups))
	if len(evs) > 0 {
		in.obs.eventsPublished(in.console, len(evs)-dups, dups)
	}
	if in.afterPublish != nil {
		if err := in.afterPublish(); err != nil {
			return err
		}
	}
	// 2. States, compare-and-set on each key's revision.
	futs = futs[:0]
	for _, c := range changes {
		b, _ := json.Marshal(c.state)
		var rev uint64
		if prev := in.states[c.id]; prev != nil {
			rev = prev.rev
		}
		m := &nats.Msg{Subject: "$KV." + subjects.BucketState + "." + in.stateKey(c.id), Data: b}
		f, err := in.st.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(rev))
		if err != nil {
			return fmt.Errorf("write state of %s: %w", c.id, err)
		}
		s := c.state
		id := c.id
		futs = append(futs, pending{fut: f, id: id, keep: func(a *jetstream.PubAck) {
			s.rev = a.Sequence
			in.states[id] = &s
		}})
	}
	if err := awaitAcks(ctx, futs, nil); err != nil {
		return err
	}
	// 3. Watermark.
	c := in.snapshot()
	c.Watermark = wm
	return in.writeCursor(ctx, c)
}

// awaitAcks waits for every future; a wrong-last-sequence rejection is
// errFenced. each, when not nil, sees every ack.
func awaitAcks(ctx context.Context, futs []pending, each func(*jetstream.PubAck)) error {
	var first error
	for _, p := range futs {
		select {
		case a := <-p.fut.Ok():
			if p.keep != nil {
				p.keep(a)
			}
			if each != nil {
				each(a)
			}
		case err := <-p.fut.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				err = fmt.Errorf("%w: %s: %v", errFenced, p.id, err)
			}
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// writeCursor stores c with compare-and-set on the revision last written.
func (in *ingester) writeCursor(ctx context.Context, c cursorRecord) error {
	c.Holder = in.holder
	b, _ := json.Marshal(c)
	var rev uint64
	var err error
	if in.curRev == 0 {
		rev, err = in.st.state.Create(ctx, in.cursorKey(), b)
	} else {
		rev, err = in.st.state.Update(ctx, in.cursorKey(), b, in.curRev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: cursor: %v", errFenced, err)
	}
	if err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	in.curRev = rev
	in.setCursor(c)
	return nil
}

// events returns the events for threat t given its previous state (nil: not
// seen before).
func (in *ingester) events(t *sentinelone.Threat, prev *threatState) ([]*nats.Msg, error) {
	if prev == nil {
		m, err := in.event(t, subjects.KindCreated, "", subjects.TypeThreatCreated,
			in.console+"/"+t.ID+"/"+subjects.KindCreated, t.CreatedAt, nil)
		return []*nats.Msg{m}, err
	}
	var out []*nats.Msg
	for _, c := range []struct {
		field, kind, from, to, typ string
	}{
		{fieldStatus, subjects.KindStatus, prev.Status, t.IncidentStatus, statusType(t.IncidentStatus)},
		{fieldVerdict, subjects.KindVerdict, prev.Verdict, t.AnalystVerdict, subjects.TypeThreatVerdictChanged},
		{fieldMitigation, subjects.KindMitigation, prev.Mitigation, t.MitigationStatus, subjects.TypeThreatMitigationChanged},
	} {
		if c.from == c.to {
			continue
		}
		id := in.console + "/" + t.ID + "/" + c.field + "/" + c.to + "/" + t.UpdatedAt.Format(sentinelone.TimeFormat)
		m, err := in.event(t, c.kind, c.to, c.typ, id, t.UpdatedAt, &changeData{Field: c.field, From: c.from, To: c.to})
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func statusType(to string) string {
	if to == sentinelone.IncidentResolved {
		return subjects.TypeThreatResolved
	}
	return subjects.TypeThreatStatusChanged
}

type changeData struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// appendThreatEventData appends {"threat":raw,"change":ch} to b. The threat
// is SentinelOne's bytes, validated by the client when it decoded them;
// json.Marshal would scan and copy those few kilobytes once more per event.
func appendThreatEventData(b []byte, raw json.RawMessage, ch *changeData) []byte {
	b = append(b, `{"threat":`...)
	b = append(b, raw...)
	if ch != nil {
		c, _ := json.Marshal(ch) // three short strings
		b = append(b, `,"change":`...)
		b = append(b, c...)
	}
	return append(b, '}')
}

func (in *ingester) event(t *sentinelone.Threat, kind, to, typ, id string, at time.Time, ch *changeData) (*nats.Msg, error) {
	data := appendThreatEventData(make([]byte, 0, len(t.Raw)+128), t.Raw, ch)
	h, body, err := ce.Encode(ce.Event{
		SpecVersion:     subjects.SpecVersion,
		ID:              id,
		Source:          subjects.Source(in.console),
		Type:            typ,
		Subject:         t.ID,
		Time:            at,
		DataContentType: subjects.ContentTypeJSON,
		Data:            data,
	}, ce.ModeBinary)
	if err != nil {
		return nil, err
	}
	h.Set(subjects.HeaderMsgID, id)
	return &nats.Msg{Subject: in.subj.ThreatEvent(in.console, t.ID, kind, to), Header: h, Data: body}, nil
}

// status answers ingest.status. A replica that does not lead reads the
// leader's progress from KV.
func (in *ingester) status(ctx context.Context) (*IngestStatus, error) {
	in.mu.Lock()
	leader, cur, fatal := in.leader, in.cursor, in.fatalErr
	in.mu.Unlock()
	s := &IngestStatus{Console: in.console, Leader: leader, Published: in.published.Load()}
	holder, err := leaseHolder(ctx, in.st.leases, in.leaseKey())
	if err != nil {
		return nil, err
	}
	s.LeaderID = holder
	if !leader {
		e, err := in.st.state.Get(ctx, in.cursorKey())
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		cur = cursorRecord{}
		if err == nil {
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return nil, err
			}
		}
	}
	if !cur.Watermark.IsZero() {
		wm := cur.Watermark
		s.Watermark = &wm
	}
	if !cur.LastPollAt.IsZero() {
		lp := cur.LastPollAt
		s.LastPollAt = &lp
	}
	if !cur.PollStartedAt.IsZero() {
		lag := time.Since(cur.PollStartedAt).Seconds()
		s.LagSeconds = &lag
	}
	s.LastError = cur.LastError
	if fatal != nil {
		s.LastError = fatal.Error()
	}
	return s, nil
}
