package connector

import (
	"context"

	"github.com/s1bridge/s1bridge/connector/audit"
	"github.com/s1bridge/s1bridge/connector/idempotency"
	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/connector/store"
)

// guards are the concerns of the mutating actions (DESIGN.md §12): each
// nil when the configuration turns it off (service.idempotency,
// streams.audit.enabled).
type guards struct {
	idem  *idempotency.Guard
	audit *audit.Auditor
}

// buildGuards builds the idempotency guard and the auditor on st.
func (c *Connector) buildGuards(st *store.Store) {
	if c.cfg.Service.Idempotency {
		c.guards.idem = idempotency.New(idempotency.Config{
			Store: st, Replica: c.holder, ActionTimeout: c.cfg.Service.ActionTimeout,
			Log: c.log.With("part", "idempotency"), Observer: c.metrics,
		})
	}
	if c.cfg.Streams.Audit.Enabled {
		c.guards.audit = audit.New(audit.Config{
			Store: st, Replica: c.holder, Idempotency: c.cfg.Service.Idempotency,
			Log: c.log.With("part", "audit"), Observer: c.metrics,
		})
	} else {
		c.log.Warn("the audit of mutating actions is off (streams.audit.enabled: false): nothing records who ran what")
	}
}

// guarded returns inner, the steps of a mutating action between
// middleware.Decode and Invoke, with its guards: the audit of refusals
// first (it sees the 403 and 408 of middleware.Admit), then inner (Admit,
// Deadline, Parse), then the idempotency guard and the audit of each
// execution, whose writes before the action (the claim, the requested
// record) travel together.
func (c *Connector) guarded(inner []middleware.Middleware) []middleware.Middleware {
	var out []middleware.Middleware
	if c.guards.audit != nil {
		out = append(out, c.guards.audit.Refusals)
	}
	out = append(out, inner...)
	if c.guards.idem != nil {
		out = append(out, c.guards.idem.Middleware)
	}
	if c.guards.audit != nil {
		out = append(out, c.guards.audit.Record)
	}
	return out
}

// auditReadiness is the audit's part of /readyz: without its stream every
// mutating action answers 503 (audit fails closed), so the replica is not
// ready.
func (c *Connector) auditReadiness(ctx context.Context, r *readiness, st *store.Store) {
	switch {
	case !c.cfg.Streams.Audit.Enabled:
		r.Audit = "off"
	case st == nil:
		r.Ready, r.Audit = false, "not opened"
	case r.NATS == "ok":
		if err := st.CheckAudit(ctx); err != nil {
			r.Ready, r.Audit = false, err.Error()
		}
	}
}
