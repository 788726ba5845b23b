// Package idempotency runs each mutating request at most once (DESIGN.md
// §12): a request is identified by (console, CloudEvents source, id), and
// within service.idempotency_window the same key again, on any replica,
// runs nothing and gets the first request's reply.
//
// One record per key in the requests bucket (its MaxAge is the window)
// holds the state of the request:
//
//	running  claimed by a replica that is running it; a repeat waits for
//	         it (a KV watch on the key) within the repeat's own deadline,
//	         then answers 504 (retryable)
//	done     the outcome is stored: a repeat gets the same data, or the
//	         same error, and nothing runs
//	open     the last attempt ended without an outcome worth keeping (a
//	         retryable error, the audit refusing, a shutdown): a repeat
//	         runs it again at once
//
// A claim is a compare-and-set write (create, or update of the revision
// read), so of two replicas claiming one key at the same time exactly one
// runs the request. The claim is started before the action and waited for
// with the audit's requested record (middleware.Request.Before), in one
// round trip. The takeover rule: a running record whose replica stored no
// outcome by its startedAt + service.action_timeout belongs to a replica
// that died; a repeat then claims it and runs the request again, under a
// new attempt number, so both attempts are audited under ids of their own
// (subjects.AuditKey).
//
// What is stored: 2xx replies and 4xx errors except 408 and 429 (the answer
// to this request, replayed as is). Not stored: 408, 429 and every 5xx
// (they describe the moment, not the request: a retry may succeed, and
// replaying a 503 for a day would turn a blip into an outage). A record
// holds no request data, only a SHA-256 digest of the action, type and
// canonical data (so no secret: a fetch-file password is in the digest's
// input, never in the record), and the reply, which holds no secret by
// construction (handlers.Secret encodes as "[REDACTED]").
//
// Plain-JSON requests get a fresh id each, so they are never deduplicated;
// the guard does not touch them. Dry runs change nothing and are not
// recorded either.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

type (
	// Config is what a Guard needs.
	Config struct {
		// Store holds the requests bucket.
		Store *store.Store
		// Replica names this process in the records (who ran a request).
		Replica string
		// ActionTimeout is service.action_timeout: a running record older
		// than this is a dead replica's, and a repeat takes it over.
		ActionTimeout time.Duration
		// Log receives takeovers and failures to store an outcome.
		Log *slog.Logger
		// Observer counts replays; nil counts nothing.
		Observer Observer
	}

	// Observer is told what the guard does, for metrics. Its methods are
	// called concurrently.
	Observer interface {
		// Replayed is called for each repeat answered with a stored reply.
		Replayed(console string)
	}

	// Guard is the idempotency middleware of the mutating actions. It is
	// safe for concurrent use.
	Guard struct {
		cfg Config
		kv  jetstream.KeyValue
	}
)

// Record states.
const (
	stateRunning = "running"
	stateDone    = "done"
	stateOpen    = "open"
)

// record is the value of a request's key in the requests bucket.
type record struct {
	State string `json:"state"`
	// Digest is the hex SHA-256 of the action, the CloudEvents type and the
	// canonical data: a repeat with another digest is a 409.
	Digest  string `json:"digest"`
	Attempt int    `json:"attempt"` // 1 for the first execution
	Replica string `json:"replica"` // the replica of the last attempt
	// StartedAt is when the last attempt claimed the key; TakeoverAt is
	// StartedAt + action_timeout, when a running record becomes a dead
	// replica's.
	StartedAt  time.Time `json:"startedAt"`
	TakeoverAt time.Time `json:"takeoverAt"`
	// Code is the reply's code once known (done, or open after a
	// retryable error); Data is a 2xx reply's data, Error a stored error.
	Code  int             `json:"code,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error *storedError    `json:"error,omitempty"`
}

// storedError is a stored error reply: handlers.Data with its details as
// the bytes they were encoded to, so that the replay is the same JSON.
type storedError struct {
	Code           int             `json:"code"`
	Message        string          `json:"message"`
	Retryable      bool            `json:"retryable"`
	UpstreamStatus int             `json:"upstreamStatus,omitempty"`
	Details        json.RawMessage `json:"details,omitempty"`
}

// New returns a guard on cfg.Store's requests bucket.
func New(cfg Config) *Guard {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Guard{cfg: cfg, kv: cfg.Store.KV(subjects.BucketRequests)}
}

// Middleware serves a mutating request at most once per key. It must come
// after middleware.Parse (only valid requests are recorded) and before the
// audit's Record (which audits each execution under req.Key).
func (g *Guard) Middleware(next middleware.HandlerFunc) middleware.HandlerFunc {
	return func(ctx context.Context, req *middleware.Request) ([]byte, error) {
		if req.Event.Mode == ce.ModePlain || req.Env.DryRun {
			return next(ctx, req)
		}
		return g.serve(ctx, req, next)
	}
}

func (g *Guard) serve(ctx context.Context, req *middleware.Request, next middleware.HandlerFunc) ([]byte, error) {
	console := req.Env.Console
	hash := subjects.RequestHash(console, req.Event.Source, req.Event.ID)
	key := subjects.RequestKey(console, hash)
	digest := digestOf(req)
	var rev uint64 // 0: the key must not exist
	attempt := 1
	for range maxClaims {
		now := time.Now().UTC()
		rec := &record{State: stateRunning, Digest: digest, Attempt: attempt, Replica: g.cfg.Replica, StartedAt: now, TakeoverAt: now.Add(g.cfg.ActionTimeout)}
		c, err := g.claim(key, rec, rev)
		if err != nil {
			return nil, unavailable(err)
		}
		req.Key = subjects.AuditKey(hash, attempt)
		req.DropBefore()
		req.Before(c.wait)
		data, err := g.run(ctx, req, next, key, c, rec)
		if req.Started() {
			g.finish(req, key, c.rev, rec, data, err)
			return data, err
		}
		// The claim's ack comes within store.PublishAckTimeout even when
		// ctx has ended, and whether it was stored decides what follows.
		if claimed, cerr := c.result(context.WithoutCancel(ctx)); claimed {
			// Claimed but not run (the audit refused, the process stops):
			// leave the key open for the next try.
			g.reopen(req, key, c.rev, rec, err)
			return data, err
		} else if !store.IsConflict(cerr) {
			return nil, unavailable(cerr)
		}
		d, err := g.resolve(ctx, key, digest)
		switch {
		case err != nil:
			return nil, err
		case d.conflict:
			return nil, reused(req)
		case d.replay != nil:
			if g.cfg.Observer != nil {
				g.cfg.Observer.Replayed(console)
			}
			return d.replay.reply()
		}
		rev, attempt = d.rev, d.attempt+1
		if d.takeover {
			g.cfg.Log.Warn("running a request again: the replica that ran it stored no outcome within service.action_timeout",
				"console", console, "action", req.Action.Name, "id", req.Event.ID, "source", req.Event.Source, "replica", d.replica, "attempt", attempt)
		}
	}
	return nil, handlers.Errorf(handlers.CodeUnavailable, "the record of request %q changed %d times while this request tried to claim it (a storm of repeats?); nothing was sent to SentinelOne; retry with the same id", req.Event.ID, maxClaims)
}

// maxClaims bounds the claims of one request: each lost claim means another
// replica wrote the key meanwhile, which a handful of times in a row only a
// storm of repeats causes.
const maxClaims = 5

// run calls next; should it panic after the claim was stored, the key is
// left open (a repeat runs the request again rather than waiting for a
// takeover) before the panic goes on to middleware.Recover.
func (g *Guard) run(ctx context.Context, req *middleware.Request, next middleware.HandlerFunc, key string, c *claim, rec *record) ([]byte, error) {
	defer func() {
		if p := recover(); p != nil {
			if claimed, _ := c.result(context.WithoutCancel(ctx)); claimed {
				g.reopen(req, key, c.rev, rec, fmt.Errorf("panic: %v", p))
			}
			panic(p)
		}
	}()
	return next(ctx, req)
}

// claim is one compare-and-set write of a running record, in flight.
type claim struct {
	f    jetstream.PubAckFuture
	done bool
	rev  uint64 // the record's revision once stored
	err  error
}

// claim starts writing rec to key if the key is at rev (0: absent).
func (g *Guard) claim(key string, rec *record, rev uint64) (*claim, error) {
	v, _ := json.Marshal(rec)
	f, err := g.cfg.Store.PutAsync(subjects.BucketRequests, key, v, rev)
	if err != nil {
		return nil, err
	}
	return &claim{f: f}, nil
}

// result waits for the claim's ack: whether it was stored, else why not.
// When ctx ends first it says so, and a later call still gets the ack.
func (c *claim) result(ctx context.Context) (bool, error) {
	if !c.done {
		ack, err := store.Await(ctx, c.f)
		if err != nil && ctx.Err() != nil {
			return false, err
		}
		c.done, c.err = true, err
		if err == nil {
			c.rev = ack.Sequence
		}
	}
	return c.err == nil, c.err
}

// wait is the claim's middleware.Request.Before write.
func (c *claim) wait(ctx context.Context) error {
	_, err := c.result(ctx)
	return err
}

// final reports whether a reply with code answers the request for good,
// and so is stored and replayed.
func final(code int) bool {
	switch {
	case code < 300:
		return true
	case code == handlers.CodeExpired || code == handlers.CodeRateLimited:
		return false
	case code < 500:
		return true
	}
	return false
}

// finish stores the outcome of an attempt that ran, done or open, if the
// key is still at rev (another replica may have taken it over meanwhile),
// to be stored before the reply is sent.
func (g *Guard) finish(req *middleware.Request, key string, rev uint64, rec *record, data []byte, err error) {
	out := *rec
	out.State, out.Code = stateDone, 200
	if err != nil {
		herr := req.Answer(err) // the error the caller gets
		out.Code = herr.Code
		out.Error = &storedError{Code: herr.Code, Message: herr.Message, Retryable: herr.Retryable, UpstreamStatus: herr.UpstreamStatus}
		if herr.Details != nil {
			out.Error.Details, _ = json.Marshal(herr.Details)
		}
	} else {
		out.Data = data
	}
	if !final(out.Code) {
		out.State, out.Error = stateOpen, nil
	}
	g.write(req, key, rev, &out)
}

// reopen marks a claimed key whose attempt did not run (or broke off) as
// open, so that the next repeat runs the request at once.
func (g *Guard) reopen(req *middleware.Request, key string, rev uint64, rec *record, cause error) {
	out := *rec
	out.State = stateOpen
	if cause != nil {
		out.Code = req.Answer(cause).Code
	}
	g.write(req, key, rev, &out)
}

// write starts the compare-and-set of rec and registers its wait with req.
// A value too large for the bucket (a reply near the max payload) is
// stored as open instead: its repeats run the request again.
func (g *Guard) write(req *middleware.Request, key string, rev uint64, rec *record) {
	v, _ := json.Marshal(rec)
	f, err := g.cfg.Store.PutAsync(subjects.BucketRequests, key, v, rev)
	if err != nil {
		small := *rec
		small.State, small.Data, small.Error = stateOpen, nil, nil
		v, _ = json.Marshal(&small)
		if f, err = g.cfg.Store.PutAsync(subjects.BucketRequests, key, v, rev); err != nil {
			g.failed(req, rec, err)
			return
		}
	}
	req.After(func(ctx context.Context) error {
		_, err := store.Await(ctx, f)
		if err != nil {
			g.failed(req, rec, err)
		}
		return err
	})
}

func (g *Guard) failed(req *middleware.Request, rec *record, err error) {
	msg := "could not store the outcome of a request; its repeats wait until service.action_timeout, then run it again"
	if store.IsConflict(err) {
		msg = "the outcome of a request was not stored: another replica took the request over meanwhile"
	}
	g.cfg.Log.Warn(msg, "console", req.Env.Console, "action", req.Action.Name, "id", req.Event.ID, "state", rec.State, "error", err)
}

// decision is what a repeat does once the key exists.
type decision struct {
	replay   *record // done: answer with its reply
	conflict bool    // another request under the same key
	// Otherwise claim the key at rev as the attempt after attempt (a
	// takeover when the record was a dead replica's).
	rev      uint64
	attempt  int
	takeover bool
	replica  string
}

// resolve reads the key and decides what the repeat does; a running
// record is waited for.
func (g *Guard) resolve(ctx context.Context, key, digest string) (decision, error) {
	e, err := g.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return decision{}, nil // gone (expired) since: claim it afresh
	}
	if err != nil {
		return decision{}, unavailable(err)
	}
	d, wait, err := decide(e, digest, time.Now())
	if err != nil || !wait {
		return d, err
	}
	return g.wait(ctx, key, digest)
}

// decide is what to do about entry e; wait when it is running and not yet
// a dead replica's.
func decide(e jetstream.KeyValueEntry, digest string, now time.Time) (decision, bool, error) {
	if e.Operation() != jetstream.KeyValuePut {
		return decision{rev: e.Revision()}, false, nil
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return decision{}, false, &handlers.Error{Code: handlers.CodeInternal, Message: "unreadable idempotency record", Err: fmt.Errorf("%s: %w", e.Key(), err)}
	}
	if rec.Digest != digest {
		return decision{conflict: true}, false, nil
	}
	d := decision{rev: e.Revision(), attempt: rec.Attempt, replica: rec.Replica}
	switch rec.State {
	case stateDone:
		return decision{replay: &rec}, false, nil
	case stateRunning:
		if now.Before(rec.TakeoverAt) {
			return d, true, nil
		}
		d.takeover = true
	}
	return d, false, nil
}

// wait watches a running record until it is done or open, or becomes a
// dead replica's, or the repeat's own deadline passes (504, retryable).
func (g *Guard) wait(ctx context.Context, key, digest string) (decision, error) {
	w, err := g.kv.Watch(ctx, key)
	if err != nil {
		return decision{}, unavailable(err)
	}
	defer func() { _ = w.Stop() }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var last jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return decision{}, unavailable(errors.New("the watch of the request's record stopped"))
			}
			if e == nil {
				continue // the current value has been delivered
			}
			d, wait, err := decide(e, digest, time.Now())
			if err != nil || !wait {
				return d, err
			}
			last = e
			var rec record
			_ = json.Unmarshal(e.Value(), &rec)
			timer.Reset(time.Until(rec.TakeoverAt))
		case <-timer.C:
			if last != nil {
				d, wait, err := decide(last, digest, time.Now())
				if err != nil || !wait {
					return d, err
				}
				timer.Reset(10 * time.Millisecond)
			}
		case <-ctx.Done():
			return decision{}, &handlers.Error{Code: handlers.CodeUpstreamTimeout, Retryable: true, Err: ctx.Err(),
				Message: "a request with this source and id is still running (on this or another replica); its reply was not ready before this request's deadline; retry with the same id to get it"}
		}
	}
}

// reply is the stored reply of a done record.
func (r *record) reply() ([]byte, error) {
	if r.Error != nil {
		e := r.Error
		herr := &handlers.Error{Code: e.Code, Message: e.Message, Retryable: e.Retryable, UpstreamStatus: e.UpstreamStatus}
		if len(e.Details) > 0 {
			herr.Details = e.Details
		}
		return nil, herr
	}
	return r.Data, nil
}

// digestOf hashes what makes two requests under one key the same request:
// the action, the CloudEvents type and the data in canonical form (members
// in name order, no insignificant white space, strings and numbers as
// encoding/json reads them; empty data and null are {}).
func digestOf(req *middleware.Request) string {
	h := sha256.New()
	h.Write([]byte(req.Action.Name))
	h.Write([]byte{0})
	h.Write([]byte(req.Event.Type))
	h.Write([]byte{0})
	h.Write(canonical(req.Event.Data))
	return hex.EncodeToString(h.Sum(nil))
}

// canonical re-encodes JSON data with sorted members and compact spacing;
// numbers keep their literal form (1.0 and 1 differ). Data that does not
// decode (it cannot reach here: Parse refused it) is used as is.
func canonical(data []byte) []byte {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return data
	}
	out, err := json.Marshal(v)
	if err != nil {
		return data
	}
	return out
}

// unavailable is the 503 of a requests bucket that did not answer.
func unavailable(err error) *handlers.Error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Retryable: true, Err: err,
		Message: "the idempotency records (JetStream) did not answer; nothing was sent to SentinelOne; retry with the same id"}
}

// reused is the 409 of a key reused for another request.
func reused(req *middleware.Request) *handlers.Error {
	return handlers.Errorf(handlers.CodeConflict,
		"id: %q from source %q was already used for another %s request on console %s (different data or type); a new request needs a new id",
		req.Event.ID, req.Event.Source, req.Action.Name, req.Env.Console)
}
