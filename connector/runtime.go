package connector

import (
	"context"

	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// The connector is the handlers' Runtime: it hands each call to the
// console's ingesters and monitors.
var _ handlers.Runtime = (*Connector)(nil)

// runtimeOf returns the console's runtime, or a 503 when it has none.
func (c *Connector) runtimeOf(name string) (*console, error) {
	cs, ok := c.consoles[name]
	if !ok {
		return nil, handlers.Errorf(handlers.CodeUnavailable, "console %s is not running on this replica", name)
	}
	return cs, nil
}

// IngestStatus implements handlers.Runtime.
func (c *Connector) IngestStatus(ctx context.Context, console string) (*handlers.IngestStatusReply, error) {
	cs, err := c.runtimeOf(console)
	if err != nil {
		return nil, err
	}
	p, err := cs.ingester(subjects.EntityThreat).Status(ctx)
	if err != nil {
		return nil, handlers.Errorf(handlers.CodeUnavailable, "ingestion state unreadable: %v", err)
	}
	reply := &handlers.IngestStatusReply{Console: console, IngestProgress: p}
	if in := cs.ingester(subjects.EntityAlert); in != nil {
		a, err := in.Status(ctx)
		if err != nil {
			return nil, handlers.Errorf(handlers.CodeUnavailable, "alert ingestion state unreadable: %v", err)
		}
		reply.Alerts = &a
	}
	return reply, nil
}

// StartMonitor implements handlers.Runtime.
func (c *Connector) StartMonitor(ctx context.Context, console string, spec handlers.MonitorSpec) (*handlers.MonitorReply, error) {
	cs, err := c.runtimeOf(console)
	if err != nil {
		return nil, err
	}
	return cs.monitors.Start(ctx, spec)
}

// ListMonitors implements handlers.Runtime.
func (c *Connector) ListMonitors(ctx context.Context, console string) ([]handlers.MonitorItem, error) {
	cs, err := c.runtimeOf(console)
	if err != nil {
		return nil, err
	}
	return cs.monitors.List(ctx)
}

// CancelMonitor implements handlers.Runtime.
func (c *Connector) CancelMonitor(ctx context.Context, console, id string) error {
	cs, err := c.runtimeOf(console)
	if err != nil {
		return err
	}
	return cs.monitors.Cancel(ctx, id)
}
