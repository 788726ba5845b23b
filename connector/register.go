package connector

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// register starts the micro service and one endpoint per action and
// console, each served by its middleware chain.
func (c *Connector) register() error {
	svc, err := newService(c.nc, subjects.ServiceName, Version, subjects.ServiceDescription, map[string]string{
		"prefix": c.subj.Prefix(), "commit": Commit(),
	})
	if err != nil {
		return fmt.Errorf("register micro service: %w", err)
	}
	c.svc = svc
	c.disp = newDispatcher(c.cfg.Service.MaxInFlight)
	maxPayload := c.maxPayload()
	for _, name := range c.cfg.ConsoleNames() {
		cs := c.consoles[name]
		for _, a := range c.opts.actions {
			r := &route{action: a, env: cs.env, denied: slices.Contains(cs.cfg.Actions.Deny, a.Name), subject: c.subj.Action(name, a.Name)}
			// Every request passes outer; a request that arrives while the
			// process stops goes no further (refuse).
			outer := []middleware.Middleware{
				middleware.Logging(c.log),
				middleware.Stats(func(_ *middleware.Request, code int, took time.Duration, herr *handlers.Error) {
					errMsg := ""
					if herr != nil {
						errMsg = strconv.Itoa(herr.Code) + " " + herr.Message
					}
					r.ep.record(took, errMsg)
					c.metrics.actionDone(name, a.Name, code, took)
				}),
				middleware.Respond(c.log, maxPayload),
				middleware.Recover(c.log),
				middleware.Decode,
			}
			// Then what must hold before the action runs, and its deadline. A
			// concern of some actions only (a mutating action's idempotency
			// and audit, a priority step) is one more entry here, before
			// Invoke.
			inner := []middleware.Middleware{
				middleware.Admit,
				middleware.Deadline(c.cfg.Service.ActionTimeout),
				middleware.Parse,
			}
			if a.Mutating {
				inner = c.guarded(inner)
			}
			r.serve = middleware.Chain(middleware.Invoke(c.log), slices.Concat(outer, inner)...)
			r.refuse = middleware.Chain(middleware.Unavailable, outer...)
			meta := map[string]string{
				subjects.MetaConsole:      name,
				subjects.MetaAction:       a.Name,
				subjects.MetaRequestType:  subjects.RequestType(a.Name),
				subjects.MetaResponseType: subjects.ResponseType(a.Name),
				subjects.MetaMutating:     strconv.FormatBool(a.Mutating),
				subjects.MetaDescription:  a.Description,
			}
			ep, err := svc.addEndpoint(subjects.EndpointName(name, a.Name), r.subject, c.cfg.Service.QueueGroup, meta,
				func(_ *endpoint, m *nats.Msg) { c.disp.handle(r, m) })
			if err != nil {
				return fmt.Errorf("register %s: %w", r.subject, err)
			}
			r.ep = ep
		}
	}
	// The subscriptions exist once the server has processed them: flush, so
	// that Start returning means requests are served.
	if err := c.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("register endpoints: %w", err)
	}
	// The server answers a refused subscription before the flush's PONG: a
	// replica that may not subscribe to its subjects must not start and
	// look ready while serving nothing.
	if err := c.nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("register endpoints: %w (the NATS user needs subscribe permission on %s and the $SRV subjects: see deploy/nats/nats-server.conf)",
			err, c.subj.Action("*", ">"))
	}
	c.log.Info("serving actions", "consoles", len(c.consoles), "actions", len(c.opts.actions),
		"subjects", c.subj.Action("<console>", "<action>"), "queue_group", c.cfg.Service.QueueGroup)
	return nil
}
