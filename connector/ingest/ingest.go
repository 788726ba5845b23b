// Package ingest publishes the changes of SentinelOne objects to the events
// stream, exactly once (DESIGN.md §6): every change once, in order per
// object, nothing skipped, across restarts, crashes, replicas and pages of
// equal timestamps. The machinery is the same for every kind of object; a
// Source says how to read one kind (threats: Threats).
//
// How the promise is kept:
//
//  1. One replica per console and source polls, the holder of the KV lease
//     subjects.IngestLeaseKey ("<console>.ingest" for threats). It stops the
//     moment a renewal fails.
//  2. A poll reads the objects by updatedAt ascending from the watermark
//     minus the overlap, following the cursor with identical filters, so
//     ties at page edges and late-indexed objects are read again.
//  3. Each object is compared with its last known state (KV
//     subjects.StateKey, "<console>.threat.<id>"); the differences become
//     events whose ids are deterministic for the fact, sent as Nats-Msg-Id.
//  4. Per page: publish the events asynchronously and wait for every ack;
//     only then write the new states (compare-and-set on each key's
//     revision), and only then move the watermark (subjects.CursorKey,
//     compare-and-set too). A page's states are acknowledged while the next
//     page's events are published (see commit).
//
// A crash between 4's steps leaves the state behind the stream, never ahead:
// the next leader recomputes the same events with the same ids and the
// stream's duplicate window (streams.events.duplicates) drops them. Until
// its first complete poll, a new leader (or one whose commit failed) takes
// an object's state from the object's last event in the stream when that is
// newer than the stored state (see recoverStates). A replica that lost its
// lease fails its next compare-and-set and stops, releasing the lease.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/lease"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// Config is what an Ingester needs.
type Config struct {
	Console string
	Source  Source
	// Interval, FirstFetch, Overlap and PageSize are the console's ingest
	// settings (consoles.<name>.ingest): the time between polls, how far
	// back the very first poll reads, the re-read window behind the
	// watermark, and the page size asked of SentinelOne.
	Interval, FirstFetch, Overlap time.Duration
	PageSize                      int
	Store                         *store.Store
	// Holder is this replica's name in leases; LeaseTTL the leases' TTL.
	Holder   string
	LeaseTTL time.Duration
	Log      *slog.Logger
	// Observer, when not nil, receives what the metrics count.
	Observer Observer
	// Mode is how events are encoded (streams.events.mode); the zero value
	// is ce.ModeBinary.
	Mode ce.Mode
}

// Observer receives what the metrics count of ingestion.
type Observer interface {
	// EventsPublished counts a page's events: stored, and dropped by the
	// stream as duplicates.
	EventsPublished(console string, e subjects.Entity, n, duplicates int)
	// PollDone reports a poll's end, err nil when it completed.
	PollDone(console string, e subjects.Entity, p Progress, err error)
}

// Progress is where a source's ingestion stands.
type Progress struct {
	// Watermark is the newest updatedAt published.
	Watermark time.Time
	// PollStartedAt is when the last complete poll began: everything
	// SentinelOne had by then has been published.
	PollStartedAt time.Time
}

// cursorRecord is the ingestion progress of one console and source, as
// stored in KV.
type cursorRecord struct {
	Watermark     time.Time `json:"watermark"`
	LastPollAt    time.Time `json:"lastPollAt,omitzero"`
	PollStartedAt time.Time `json:"pollStartedAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	Holder        string    `json:"holder,omitempty"`
}

// Ingester publishes the changes of one source of one console. Leader,
// Halted and Status are safe for concurrent use; Run runs once.
type Ingester struct {
	cfg    Config
	src    Source
	entity subjects.Entity
	fields []Field
	subj   subjects.Subjects
	obs    Observer
	// dataStart opens an event's data: {"<entity>":
	dataStart []byte
	// eventsPrefix begins the subject of every event of the source:
	// <prefix>.<console>.event.<entity>.
	eventsPrefix string
	// The CloudEvents types, made once rather than per event: of the
	// created event, of a change of each field, of a change to resolved.
	createdType, resolvedType string
	changedTypes              [MaxFields]string

	mode       ce.Mode // of events: Config.Mode, binary when unset
	published  atomic.Int64
	duplicates atomic.Int64

	mu     sync.Mutex
	leader bool
	cursor cursorRecord
	halt   *Halt

	// Owned by the leading goroutine.
	states stateMap
	values valueTable // the values states refer to
	// stale is set while states holds states sent and not yet
	// acknowledged (commit): after a failure they are reloaded.
	stale   bool
	curRev  uint64
	batch   *store.Batch // events
	stBatch *store.Batch // states
	// recovering is set from taking the lease until a poll completes: an
	// object's events may then be in the stream without its state, written
	// by a leader that crashed (or a commit that failed) in between (see
	// recoverState).
	recovering bool
	// afterPublish, when set (tests only), runs between the events' acks and
	// the state writes; an error stands for a crash or failure there.
	afterPublish func() error
}

// New returns the ingester cfg describes; Run starts it.
func New(cfg Config) *Ingester {
	in := &Ingester{
		cfg: cfg, src: cfg.Source, entity: cfg.Source.Entity(), fields: cfg.Source.Fields(),
		subj: cfg.Store.Subjects(), obs: cfg.Observer, mode: cfg.Mode,
	}
	if in.mode == 0 {
		in.mode = ce.ModeBinary
	}
	if len(in.fields) > MaxFields {
		panic(fmt.Sprintf("ingest: source %s compares %d fields, more than %d", in.entity, len(in.fields), MaxFields))
	}
	if in.obs == nil {
		in.obs = nopObserver{}
	}
	in.dataStart = append(appendString([]byte("{"), string(in.entity)), ':')
	in.eventsPrefix = strings.TrimSuffix(in.subj.EntityEvents(cfg.Console, in.entity, "x"), "x.>")
	in.createdType, in.resolvedType = subjects.CreatedType(in.entity), subjects.ResolvedType(in.entity)
	for i, f := range in.fields {
		in.changedTypes[i] = subjects.ChangedType(in.entity, f.Kind)
	}
	return in
}

type nopObserver struct{}

func (nopObserver) EventsPublished(string, subjects.Entity, int, int) {}
func (nopObserver) PollDone(string, subjects.Entity, Progress, error) {}

func (in *Ingester) stateKey(id string) string {
	return subjects.StateKey(in.cfg.Console, in.entity, id)
}
func (in *Ingester) cursorKey() string      { return subjects.CursorKey(in.cfg.Console, in.entity) }
func (in *Ingester) leaseKey() string       { return subjects.IngestLeaseKey(in.cfg.Console, in.entity) }
func (in *Ingester) kv() jetstream.KeyValue { return in.cfg.Store.KV(subjects.BucketState) }

// Run takes part in the lease election until ctx ends, polling while it
// leads.
func (in *Ingester) Run(ctx context.Context) {
	// Background work: under contention for the console's budget, the
	// actions' calls go first (DESIGN.md §14).
	ctx = sentinelone.WithLane(ctx, sentinelone.LaneBackground)
	l := lease.New(in.cfg.Store.KV(subjects.BucketLeases), in.leaseKey(), in.cfg.Holder, in.cfg.LeaseTTL, in.cfg.Log)
	l.Hold(ctx, in.lead)
}

// Entity is the kind of object the ingester publishes (its source's).
func (in *Ingester) Entity() subjects.Entity { return in.entity }

// Leader reports whether this replica leads the ingestion.
func (in *Ingester) Leader() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.leader
}

// Halted returns what stopped the ingestion (Source.Halt), nil while it
// runs or waits for the lease.
func (in *Ingester) Halted() *Halt {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.halt
}

// lead loads the state and polls every interval until ctx ends.
func (in *Ingester) lead(ctx context.Context) {
	in.setLeader(true)
	defer in.setLeader(false)
	if err := in.load(ctx); err != nil {
		if ctx.Err() == nil {
			in.cfg.Log.Error("ingest: could not load state; giving up the lease", "error", err)
		}
		return
	}
	backoff := time.Second
	for {
		if in.stale {
			// A poll failed with states sent and not acknowledged: take
			// them from KV again, as a new leader would.
			if err := in.load(ctx); err != nil {
				if ctx.Err() == nil {
					in.cfg.Log.Error("ingest: could not reload state; giving up the lease", "error", err)
				}
				return
			}
		}
		err := in.poll(ctx)
		wait := in.cfg.Interval
		if ctx.Err() != nil {
			return
		}
		var halt *Halt
		if err != nil {
			halt = in.src.Halt(err)
		}
		switch {
		case halt != nil:
			in.setHalt(halt)
			in.cfg.Log.Error("ingest: "+halt.Advice, "error", err, "retry_in", halt.RetryIn)
			if halt.RetryIn == 0 {
				<-ctx.Done()
				return
			}
			wait = halt.RetryIn
		case errors.Is(err, errFenced):
			in.cfg.Log.Warn("ingest: state changed under us (another leader?); giving up the lease", "error", err)
			return
		case err != nil:
			in.cfg.Log.Warn("ingest: poll failed; watermark kept, retrying", "error", err, "retry_in", backoff)
			wait, backoff = backoff, min(backoff*2, max(in.cfg.Interval, time.Second)*4)
		default:
			in.setHalt(nil)
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

func (in *Ingester) setLeader(v bool) {
	in.mu.Lock()
	in.leader = v
	in.mu.Unlock()
}

func (in *Ingester) setHalt(h *Halt) {
	in.mu.Lock()
	in.halt = h
	in.mu.Unlock()
}

// errFenced means a compare-and-set failed: somebody else wrote our keys.
var errFenced = errors.New("ingest: compare-and-set failed")

// fenced returns err, the failure of a write of what, as errFenced when it
// is a compare-and-set refusal (store.IsConflict), keeping err in the chain.
func fenced(what string, err error) error {
	if store.IsConflict(err) {
		return fmt.Errorf("%w: %s: %w", errFenced, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// load reads the cursor and every known state of the console's objects.
func (in *Ingester) load(ctx context.Context) error {
	in.states = newStateMap()
	in.stale = false
	// Fresh batches: a failed poll may have left publishes unacknowledged.
	in.batch, in.stBatch = in.cfg.Store.NewBatch(), in.cfg.Store.NewBatch()
	in.curRev = 0
	e, err := in.kv().Get(ctx, in.cursorKey())
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
		// From the stream's leader: a replica that has not yet received a
		// failed leader's events would make this one take them for none.
		m, err := in.cfg.Store.LastEvent(ctx, in.subj.EntityEvents(in.cfg.Console, in.entity, "*"))
		if err != nil {
			return fmt.Errorf("look for earlier events: %w", err)
		}
		in.recovering = m != nil
	}
	w, err := in.kv().Watch(ctx, subjects.StateKeys(in.cfg.Console, in.entity), jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	prefix := len(in.stateKey(""))
	buf := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("state watcher closed")
			}
			if e == nil { // all current values delivered
				in.cfg.Log.Info("ingest: state loaded", "source", in.entity, "objects", in.states.len(), "watermark", in.snapshot().Watermark)
				return nil
			}
			s, err := decodeState(in.fields, e.Value(), buf)
			if err != nil {
				return fmt.Errorf("state %s: %w", e.Key(), err)
			}
			s.rev = e.Revision()
			in.states.set(e.Key()[prefix:], in.values.keep(&s))
		}
	}
}

func (in *Ingester) setCursor(c cursorRecord) {
	in.mu.Lock()
	in.cursor = c
	in.mu.Unlock()
}

func (in *Ingester) snapshot() cursorRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cursor
}

// poll reads every object updated since the watermark minus overlap and
// publishes the changes, page by page.
func (in *Ingester) poll(ctx context.Context) (err error) {
	started := time.Now().UTC()
	cur := in.snapshot()
	from := cur.Watermark.Add(-in.cfg.Overlap)
	if cur.Watermark.IsZero() {
		from = started.Add(-in.cfg.FirstFetch)
	}
	defer func() {
		if err != nil {
			// A page may have been published without its states: until a
			// poll completes, look in the stream before calling an object
			// new.
			in.recovering = true
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, errFenced) {
			c := in.snapshot()
			c.LastError = err.Error()
			_ = in.writeCursor(ctx, c) // best effort: the error is logged anyway
		}
		c := in.snapshot()
		in.obs.PollDone(in.cfg.Console, in.entity, Progress{Watermark: c.Watermark, PollStartedAt: c.PollStartedAt}, err)
	}()
	pages, objects := 0, 0
	var sent *sentStates
	for page, err := range prefetch(ctx, func(ctx context.Context) iter.Seq2[[]Item, error] {
		return in.src.Pages(ctx, from, in.cfg.PageSize)
	}) {
		if err != nil {
			return err
		}
		pages++
		objects += len(page)
		if err := in.commit(ctx, page, &sent); err != nil {
			return err
		}
	}
	if err := in.settle(ctx, &sent); err != nil {
		return err
	}
	in.cfg.Log.Debug("ingest: poll done", "source", in.entity, "from", from, "pages", pages, "objects", objects, "watermark", in.snapshot().Watermark)
	c := in.snapshot()
	c.LastPollAt, c.PollStartedAt, c.LastError = time.Now().UTC(), started, ""
	if err := in.writeCursor(ctx, c); err != nil {
		return err
	}
	in.recovering = false
	return nil
}

// recoverStates returns, for the objects of items that have events in the
// stream, their state as their last event has it. A crashed (or failed)
// commit may have published events without storing the states that go with
// them: treating such an object as new would publish created again (dropped
// as a duplicate) and never the change that followed; computing its next
// change from the older stored state would repeat a transition already
// published (from the wrong value). Only the first complete poll after
// taking the lease, or after a failed one, can meet one: the unfinished page
// lies after the stored watermark, which that poll re-reads.
//
// Every event carries the whole object as of its updatedAt, and the last one
// on any of the object's subjects is the last state published. They are
// read for the whole page at once, as the stream's leader has them
// (store.LastEvents).
func (in *Ingester) recoverStates(ctx context.Context, items []Item) (map[string]*state, error) {
	want := make(map[string]bool, len(items))
	filters := make([]string, 0, len(items))
	for i := range items {
		if id := items[i].ID; !want[id] {
			want[id] = true
			filters = append(filters, in.subj.EntityEvents(in.cfg.Console, in.entity, id))
		}
	}
	msgs, err := in.cfg.Store.LastEvents(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("recover states: %w", err)
	}
	last := map[string]*jetstream.RawStreamMsg{}
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m.Subject, in.eventsPrefix)
		id, _, _ := strings.Cut(rest, ".")
		if !ok || !want[id] {
			continue // another object's: LastEvents may add one
		}
		if prev := last[id]; prev == nil || m.Sequence > prev.Sequence {
			last[id] = m
		}
	}
	out := make(map[string]*state, len(last))
	for id, m := range last {
		s, err := in.stateOfEvent(m)
		if err != nil {
			return nil, fmt.Errorf("recover state of %s from event %d: %w", id, m.Sequence, err)
		}
		out[id] = s
	}
	return out, nil
}

// stateOfEvent is the state of the object an event carries.
func (in *Ingester) stateOfEvent(m *jetstream.RawStreamMsg) (*state, error) {
	ev, err := ce.Decode(m.Header, m.Data)
	if err != nil {
		return nil, err
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		return nil, err
	}
	it, err := in.src.Decode(data[string(in.entity)])
	if err != nil {
		return nil, err
	}
	s := stateOf(&it)
	return &s, nil
}

// change is the new state of one object of a page.
type change struct {
	id    string
	state state
}

// sentStates are the states of a page, sent and not yet acknowledged, and
// the watermark that page moves to once they are (see commit).
type sentStates struct {
	changes []change
	wm      time.Time
}

// commit publishes the events of one page and, once they are acknowledged,
// its states; the watermark moves when the states are acknowledged. Each
// step comes only after the previous one is acknowledged: the stored state
// is never ahead of the stream, and the watermark never ahead of the
// states.
//
// The page's states are not waited for here: they are acknowledged while
// the next page is read, compared and its events published, and commit (or
// settle, after the last page) waits for them before it sends that page's
// states (*sent). So that the next page is compared with them, they are
// taken into the ingester's states as they are sent, and their revisions
// when they are acknowledged; should anything fail meanwhile, the states
// are reloaded before the next poll (in.stale).
func (in *Ingester) commit(ctx context.Context, items []Item, sent **sentStates) error {
	if len(items) == 0 {
		return nil
	}
	var evs []*nats.Msg
	var changes []change
	inPage := map[string]int{} // id → index in changes: an object seen twice in one page
	wm := in.snapshot().Watermark
	if *sent != nil && (*sent).wm.After(wm) {
		wm = (*sent).wm
	}
	var fromStream map[string]*state
	if in.recovering {
		var err error
		if fromStream, err = in.recoverStates(ctx, items); err != nil {
			return err
		}
	}
	// 1. Events, sent as they are made, so that the server stores them
	// while the rest of the page is compared.
	b := in.batch
	for i := range items {
		it := &items[i]
		if it.UpdatedAt.After(wm) {
			wm = it.UpdatedAt
		}
		var prev *state
		if k, ok := in.states.get(it.ID); ok {
			s := in.values.state(k)
			prev = &s
		}
		recovered := false
		if j, ok := inPage[it.ID]; ok {
			prev = &changes[j].state
		} else if r := fromStream[it.ID]; r != nil {
			if prev == nil || r.updatedAt.After(prev.updatedAt) {
				in.cfg.Log.Info("ingest: recovered the state of an object published before a failure", "source", in.entity, "id", it.ID)
				if prev != nil {
					r.rev = prev.rev // the stored key, behind the stream
				} // else rev 0: the key does not exist yet
				in.states.set(it.ID, in.values.keep(r))
				prev, recovered = r, true
			}
		}
		if prev != nil && !it.UpdatedAt.After(prev.updatedAt) {
			if recovered {
				// Unchanged since it was published, but its state must be
				// stored with this page all the same: the watermark moves past
				// the object, so a later leader would neither recover it nor
				// find its state, and would take its next change for a new
				// object (a created event, dropped as a duplicate: the change
				// lost).
				inPage[it.ID] = len(changes)
				changes = append(changes, change{it.ID, *prev})
			}
			it.Raw = nil // see below
			continue     // already seen this version (or an older one, re-read in the overlap)
		}
		n := len(evs)
		var err error
		if evs, err = in.appendEvents(evs, it, prev); err != nil {
			return err
		}
		// The events have the object's bytes now; Raw holds on to the
		// whole page's answer (4 MB for 1000 threats), which would
		// otherwise stay until the acks are in.
		it.Raw = nil
		for _, m := range evs[n:] {
			if err := b.Publish(m); err != nil {
				return err
			}
		}
		if j, ok := inPage[it.ID]; ok {
			changes[j].state = stateOf(it)
		} else {
			inPage[it.ID] = len(changes)
			changes = append(changes, change{it.ID, stateOf(it)})
		}
	}
	dups := 0
	var first error
	if err := b.Wait(ctx, func(i int, a *jetstream.PubAck, err error) {
		switch {
		case err != nil && first == nil:
			first = fenced("publish "+evs[i].Header.Get(subjects.HeaderMsgID), err)
		case err == nil && a.Duplicate:
			dups++
		}
	}); err != nil {
		return err
	}
	if first != nil {
		return first
	}
	in.published.Add(int64(len(evs) - dups))
	in.duplicates.Add(int64(dups))
	if len(evs) > 0 {
		in.obs.EventsPublished(in.cfg.Console, in.entity, len(evs)-dups, dups)
	}
	if in.afterPublish != nil {
		if err := in.afterPublish(); err != nil {
			return err
		}
	}
	// 2. States, compare-and-set on each key's revision: the previous
	// page's first, since a key in both is written with the revision the
	// previous write gave it.
	if err := in.settle(ctx, sent); err != nil {
		return err
	}
	st := in.stBatch
	for _, c := range changes {
		k := in.values.keep(&c.state)
		if prev, ok := in.states.get(c.id); ok {
			k.rev = prev.rev
		}
		if err := st.Put(subjects.BucketState, in.stateKey(c.id), encodeState(in.fields, &c.state), k.rev); err != nil {
			in.stale = true
			return fmt.Errorf("write state of %s: %w", c.id, err)
		}
		// Taken at once, the next page is compared with it; its
		// revision comes with the ack (settle).
		in.states.set(c.id, k)
	}
	in.stale = true // until settle
	*sent = &sentStates{changes: changes, wm: wm}
	return nil
}

// settle waits for the states *sent, takes their revisions, moves the
// watermark to their page's, and clears *sent.
func (in *Ingester) settle(ctx context.Context, sent **sentStates) error {
	p := *sent
	if p == nil {
		return nil
	}
	*sent = nil
	var first error
	if err := in.stBatch.Wait(ctx, func(i int, a *jetstream.PubAck, err error) {
		c := &p.changes[i]
		switch {
		case err != nil && first == nil:
			first = fenced("write state of "+c.id, err)
		case err == nil:
			k, _ := in.states.get(c.id)
			k.rev = a.Sequence
			in.states.set(c.id, k)
		}
	}); err != nil {
		return err
	}
	if first != nil {
		return first
	}
	in.stale = false
	// 3. Watermark.
	cur := in.snapshot()
	cur.Watermark = p.wm
	return in.writeCursor(ctx, cur)
}

// writeCursor stores c with compare-and-set on the revision last written.
func (in *Ingester) writeCursor(ctx context.Context, c cursorRecord) error {
	c.Holder = in.cfg.Holder
	b, _ := json.Marshal(c)
	var rev uint64
	var err error
	if in.curRev == 0 {
		rev, err = in.kv().Create(ctx, in.cursorKey(), b)
	} else {
		rev, err = in.kv().Update(ctx, in.cursorKey(), b, in.curRev)
	}
	if err != nil {
		return fenced("write cursor", err)
	}
	in.curRev = rev
	in.setCursor(c)
	return nil
}

// appendEvents appends the events of object it given its previous state
// (nil: not seen before).
func (in *Ingester) appendEvents(evs []*nats.Msg, it *Item, prev *state) ([]*nats.Msg, error) {
	console := in.cfg.Console
	if prev == nil {
		m, err := in.event(it, subjects.KindCreated, "", in.createdType,
			subjects.CreatedEventID(console, in.entity, it.ID), it.CreatedAt, nil)
		if err != nil {
			return nil, err
		}
		return append(evs, m), nil
	}
	for i, f := range in.fields {
		from, to := prev.vals[i], it.Values[i]
		if from == to {
			continue
		}
		typ := in.changedTypes[i]
		if f.Resolved != "" && to == f.Resolved {
			typ = in.resolvedType
		}
		id := subjects.ChangeEventID(console, in.entity, it.ID, f.Name, to, it.UpdatedAt)
		m, err := in.event(it, f.Kind, to, typ, id, it.UpdatedAt, &changeData{Field: f.Name, From: from, To: to})
		if err != nil {
			return nil, err
		}
		evs = append(evs, m)
	}
	return evs, nil
}

// changeData is the change member of a change event.
type changeData struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// appendEventData appends {"<entity>":raw,"change":ch} to b. The object is
// SentinelOne's bytes, validated by the client when it decoded them;
// json.Marshal would scan and copy those few kilobytes once more per event.
func (in *Ingester) appendEventData(b []byte, raw json.RawMessage, ch *changeData) []byte {
	b = append(b, in.dataStart...)
	b = append(b, raw...)
	if ch != nil {
		c, _ := json.Marshal(ch) // three short strings
		b = append(b, `,"change":`...)
		b = append(b, c...)
	}
	return append(b, '}')
}

func (in *Ingester) event(it *Item, kind, to, typ, id string, at time.Time, ch *changeData) (*nats.Msg, error) {
	data := in.appendEventData(make([]byte, 0, len(it.Raw)+128), it.Raw, ch)
	h, body, err := ce.Encode(ce.Event{
		SpecVersion:     subjects.SpecVersion,
		ID:              id,
		Source:          subjects.Source(in.cfg.Console),
		Type:            typ,
		Subject:         it.ID,
		Time:            at,
		DataContentType: subjects.ContentTypeJSON,
		Data:            data,
	}, in.mode)
	if err != nil {
		return nil, err
	}
	h.Set(subjects.HeaderMsgID, id)
	return &nats.Msg{Subject: in.subj.EntityEvent(in.cfg.Console, in.entity, it.ID, kind, to), Header: h, Data: body}, nil
}

// Status is the progress of this source's ingestion, for ingest.status. A
// replica that does not lead reads the leader's progress from KV.
func (in *Ingester) Status(ctx context.Context) (handlers.IngestProgress, error) {
	in.mu.Lock()
	leader, cur, halt := in.leader, in.cursor, in.halt
	in.mu.Unlock()
	s := handlers.IngestProgress{Leader: leader, Published: in.published.Load()}
	holder, err := lease.Holder(ctx, in.cfg.Store.KV(subjects.BucketLeases), in.leaseKey())
	if err != nil {
		return s, err
	}
	s.LeaderID = holder
	if !leader {
		e, err := in.kv().Get(ctx, in.cursorKey())
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, err
		}
		cur = cursorRecord{}
		if err == nil {
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return s, err
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
		// Milliseconds are enough, and print without float noise.
		lag := math.Round(time.Since(cur.PollStartedAt).Seconds()*1000) / 1000
		s.LagSeconds = &lag
	}
	s.LastError = cur.LastError
	if halt != nil {
		s.LastError = halt.Err.Error()
	}
	return s, nil
}
