// Package audit records every execution and refusal of a mutating action
// in the audit stream (DESIGN.md §12), as binary-mode CloudEvents on
// <prefix>.<console>.audit.<action>.<phase> whose ids are deterministic and
// sent as Nats-Msg-Id:
//
//	requested  after validation, before anything is sent to SentinelOne
//	completed  after the outcome is known, before the reply is sent
//	refused    a mutating request refused before execution (400, 403,
//	           408, 409)
//
// Ids are <console>/audit/<key>/<phase>, where <key> is the hash of the
// request's idempotency key (subjects.AuditKey, numbered by the
// idempotency layer when a request runs more than once). The stream
// de-duplicates ids over the idempotency window, so a repeat of a request
// writes nothing new.
//
// Audit fails closed: the requested record is a middleware.Request.Before
// write, and when it is not stored the action answers 503 (retryable) and
// SentinelOne is not called. A completed or refused record that is not
// stored cannot undo what happened: it is logged and counted
// (Observer.AuditFailed), and the reply goes out.
//
// Records never hold a secret: the request data is the action's
// RedactData (a fetch-file password becomes "[REDACTED]"), replies hold
// none by construction, and error messages never quote one.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

type (
	// Config is what an Auditor needs.
	Config struct {
		// Store holds the audit stream (its subjects are the prefix's).
		Store *store.Store
		// Replica names this process in the records.
		Replica string
		// Idempotency says that the idempotency layer runs before Record
		// and numbers executions (middleware.Request.Key). Without it
		// every execution gets a key of its own, so that a repeated
		// request, which then runs again, is audited again.
		Idempotency bool
		// Log receives the records that could not be stored.
		Log *slog.Logger
		// Observer counts them; nil counts nothing.
		Observer Observer
	}

	// Observer is told of audit records that were not stored. Its methods
	// are called concurrently.
	Observer interface {
		// AuditFailed is called once per record that was not stored, with
		// its phase (subjects.PhaseRequested, ...).
		AuditFailed(console, phase string)
	}

	// Auditor writes the audit records of the mutating actions. It is safe
	// for concurrent use.
	Auditor struct {
		cfg  Config
		subj subjects.Subjects
	}
)

// New returns an Auditor writing to cfg.Store's audit stream.
func New(cfg Config) *Auditor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Auditor{cfg: cfg, subj: cfg.Store.Subjects()}
}

// Refusals writes the refused record of a request refused before it ran
// (400, 403, 408, 409). It must be the first middleware of a mutating
// action's chain after middleware.Decode, so that it sees every refusal
// (middleware.Admit's 403 and 408 included). A request that is not a
// readable CloudEvent is refused by Decode before it, unaudited: it has
// no id to audit it under.
func (a *Auditor) Refusals(next middleware.HandlerFunc) middleware.HandlerFunc {
	return func(ctx context.Context, req *middleware.Request) ([]byte, error) {
		data, err := next(ctx, req)
		if err == nil || req.Started() {
			return data, err
		}
		herr := handlers.AsError(err)
		switch herr.Code {
		case handlers.CodeInvalid, handlers.CodeDenied, handlers.CodeExpired, handlers.CodeConflict:
		default:
			return data, err
		}
		parsed := req.Parsed
		if parsed == nil {
			// Refused before validation (403, 408): its targets, if it
			// names valid ones.
			parsed, _ = req.Action.Decode(req.Env, req.Event.Data)
		}
		rec := a.record(req, parsed)
		rec.Outcome = outcome(nil, herr)
		a.publishAfter(req, subjects.PhaseRefused, rec)
		return data, err
	}
}

// Record writes the requested record of each execution, before the action
// runs (failing closed), and its completed record, before the reply is
// sent, with the SentinelOne calls the action made. It must come after
// middleware.Parse and the idempotency layer, right before Invoke.
func (a *Auditor) Record(next middleware.HandlerFunc) middleware.HandlerFunc {
	return func(ctx context.Context, req *middleware.Request) ([]byte, error) {
		rec := a.record(req, req.Parsed)
		f, err := a.cfg.Store.PublishAsync(a.message(req, subjects.PhaseRequested, rec))
		if err != nil {
			a.failed(req, subjects.PhaseRequested, err)
			return nil, refused(err)
		}
		req.Before(func(ctx context.Context) error {
			_, err := store.Await(ctx, f)
			if err != nil && ctx.Err() != nil {
				return err // the request's deadline passed first: it answers 504
			}
			if err != nil {
				a.failed(req, subjects.PhaseRequested, err)
				return refused(err)
			}
			return nil
		})
		var (
			mu    sync.Mutex
			calls = []events.UpstreamCall{}
		)
		ctx = sentinelone.WithRecorder(ctx, func(e sentinelone.RequestEvent) {
			mu.Lock()
			calls = append(calls, events.UpstreamCall{Method: e.Method, Path: e.Path, Status: e.Status, RequestID: e.RequestID})
			mu.Unlock()
		})
		completed := func(data []byte, herr *handlers.Error) {
			mu.Lock()
			rec.Upstream = slices.Clone(calls)
			mu.Unlock()
			rec.Outcome = outcome(data, herr)
			rec.At = now()
			a.publishAfter(req, subjects.PhaseCompleted, rec)
		}
		defer func() {
			// A panicking action is answered 500 by middleware.Recover:
			// that is its outcome.
			if p := recover(); p != nil {
				if req.Started() {
					completed(nil, &handlers.Error{Code: handlers.CodeInternal, Message: "internal error while running " + req.Action.Name})
				}
				panic(p)
			}
		}()
		data, err := next(ctx, req)
		if req.Started() {
			completed(data, req.Answer(err))
		}
		return data, err
	}
}

// refused is the 503 of an action whose requested record was not stored.
func refused(err error) *handlers.Error {
	return &handlers.Error{Code: handlers.CodeUnavailable, Retryable: true, Err: err,
		Message: "the audit record of this request could not be stored (audit stream unavailable); nothing was sent to SentinelOne; retry"}
}

// publishAfter publishes rec and registers the wait for its ack with req,
// to be stored before the reply is sent; a failure is logged and counted.
func (a *Auditor) publishAfter(req *middleware.Request, phase string, rec *events.AuditRecord) {
	f, err := a.cfg.Store.PublishAsync(a.message(req, phase, rec))
	if err != nil {
		a.failed(req, phase, err)
		return
	}
	req.After(func(ctx context.Context) error {
		_, err := store.Await(ctx, f)
		if err != nil {
			a.failed(req, phase, err)
		}
		return err
	})
}

func (a *Auditor) failed(req *middleware.Request, phase string, err error) {
	a.cfg.Log.Error("audit record not stored", "console", req.Env.Console, "action", req.Action.Name, "id", req.Event.ID,
		"phase", phase, "error", err)
	if a.cfg.Observer != nil {
		a.cfg.Observer.AuditFailed(req.Env.Console, phase)
	}
}

// key is the <key> of the request's audit ids.
func (a *Auditor) key(req *middleware.Request) string {
	if req.Key != "" {
		return req.Key
	}
	hash := subjects.RequestHash(req.Env.Console, req.Event.Source, req.Event.ID)
	switch {
	case req.Env.DryRun:
		return subjects.AuditKeyTagged(hash, subjects.AuditTagDryRun)
	case !a.cfg.Idempotency && req.Event.Mode != ce.ModePlain:
		// Idempotency is off: a repeat runs again and must be audited
		// again. (A plain-JSON request has a fresh id already.)
		req.Key = subjects.AuditKeyTagged(hash, strings.ToLower(nuid.Next()[:12]))
		return req.Key
	}
	return hash
}

// record is the part of an audit record every phase shares; parsed is the
// decoded request, for its targets, or nil.
func (a *Auditor) record(req *middleware.Request, parsed any) *events.AuditRecord {
	ev := &req.Event
	rec := &events.AuditRecord{
		Action:  req.Action.Name,
		Console: req.Env.Console,
		Request: events.AuditRequest{
			ID: ev.ID, Source: ev.Source, Type: ev.Type, TraceParent: ev.TraceParent(),
			Data: requestData(req.Action, ev.Data),
		},
		DryRun:   req.Env.DryRun,
		Upstream: []events.UpstreamCall{},
		Replica:  a.cfg.Replica,
		At:       now(),
	}
	if !ev.Time.IsZero() {
		t := ev.Time.UTC()
		rec.Request.Time = &t
	}
	if t, ok := parsed.(handlers.Targeted); ok {
		field, ids := t.Targets()
		if ids == nil {
			ids = []string{}
		}
		rec.Targets = &events.AuditTargets{Field: field, IDs: ids}
	}
	return rec
}

func now() time.Time { return time.Now().UTC() }

// message is rec as the binary-mode CloudEvent of phase, with its id as
// Nats-Msg-Id.
func (a *Auditor) message(req *middleware.Request, phase string, rec *events.AuditRecord) *nats.Msg {
	console, action := req.Env.Console, req.Action.Name
	data, _ := json.Marshal(rec)
	ev := ce.Event{
		SpecVersion: subjects.SpecVersion, ID: subjects.AuditID(console, a.key(req), phase),
		Source: subjects.Source(console), Type: subjects.AuditType(phase), Subject: action,
		Time: rec.At, DataContentType: subjects.ContentTypeJSON, Data: data,
	}
	if tp := req.Event.TraceParent(); tp != "" {
		ev.Extensions = map[string]string{subjects.ExtTraceParent: tp}
		if ts := req.Event.TraceState(); ts != "" {
			ev.Extensions[subjects.ExtTraceState] = ts
		}
	}
	h, body, err := ce.Encode(ev, ce.ModeBinary)
	if err != nil {
		// The attributes are ours and valid; only a traceparent the
		// request carried could be refused: drop it.
		ev.Extensions = nil
		h, body, _ = ce.Encode(ev, ce.ModeBinary)
	}
	h.Set(subjects.HeaderMsgID, ev.ID)
	return &nats.Msg{Subject: a.subj.Audit(console, action, phase), Header: h, Data: body}
}

// outcome is the outcome of a reply: its code and message, and what the
// reply data says it affected and tracks.
func outcome(data []byte, herr *handlers.Error) *events.AuditOutcome {
	out := &events.AuditOutcome{Code: 200}
	if herr != nil {
		out.Code, out.Message = herr.Code, shorten(herr.Message)
		return out
	}
	var reply struct {
		Affected   *int    `json:"affected"`
		TrackingID *string `json:"trackingId"`
	}
	if json.Unmarshal(data, &reply) == nil {
		out.Affected, out.TrackingID = reply.Affected, reply.TrackingID
	}
	return out
}

// maxMessage bounds an error message in a record, as replies bound theirs.
const maxMessage = 1024

func shorten(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// requestData is the request data as the record holds it: a JSON object
// with every secret redacted. Data that is not one (a request refused as
// unreadable) is kept as a string under "unreadable", cut at maxMessage,
// or redacted whole for an action with secrets.
func requestData(a handlers.Action, raw []byte) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}")
	}
	if red := a.RedactData(raw); len(red) > 0 && red[0] == '{' && json.Valid(red) {
		return red
	}
	text := events.Redacted
	if !a.HasSecrets() {
		text = shorten(string(raw))
	}
	out, _ := json.Marshal(map[string]string{"unreadable": text})
	return out
}
