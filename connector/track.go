package connector

import (
	"context"
	"log/slog"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/connector/tracking"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// newTracking builds the tracked actions of console name (DESIGN.md §13).
// Outcome events are encoded in binary mode until streams.events.mode
// exists (tracking.Config.Mode takes it).
func (c *Connector) newTracking(name string, cc config.Console, client *sentinelone.Client, st *store.Store, log *slog.Logger) *tracking.Set {
	return tracking.New(tracking.Config{
		Console: name, Client: client, Tracking: cc.Tracking, Overlap: cc.Ingest.Overlap, PageSize: cc.Ingest.PageSize,
		Store: st, Holder: c.holder, LeaseTTL: c.opts.leaseTTL, MaxPayload: int(c.maxPayload()),
		Log: log.With("loop", "tracking"), Observer: c.metrics, Mode: c.eventsMode(),
	})
}

// Track implements handlers.Runtime. A failure is counted: the action it
// concerns happened, untracked.
func (c *Connector) Track(ctx context.Context, console string, spec handlers.TrackSpec) (*handlers.TrackReply, error) {
	cs, err := c.runtimeOf(console)
	if err == nil {
		var r *handlers.TrackReply
		if r, err = cs.tracking.Track(ctx, spec); err == nil {
			return r, nil
		}
	}
	c.metrics.untracked.WithLabelValues(console).Inc()
	return nil, err
}

// TrackingLeader reports whether this replica polls the tracked actions of
// console.
func (c *Connector) TrackingLeader(console string) bool {
	cs, ok := c.consoles[console]
	return ok && cs.tracking.Leading()
}
