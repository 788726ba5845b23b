package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector/budget"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/subjects"
)

// The console's rate_limit is the budget of the whole deployment
// (DESIGN.md §14): every replica runs one budget.Budget per console, whose
// limiter the console's SentinelOne client waits on before every attempt.
// The budgets keep their heartbeats in the leases bucket, whose MaxAge is
// the lease TTL, which is also the budgets' TTL.

// budgetReplica is this replica's id in the budgets' heartbeats: the lease
// holder id (host name plus a random suffix, so unique) made a key token,
// since host names may have dots.
func (c *Connector) budgetReplica() string { return subjects.SafeToken(c.holder) }

// newBudget returns this replica's part of console name's budget, not yet
// started, and exports its share as s1bridge_upstream_budget_share.
func (c *Connector) newBudget(name string, cc config.Console, st *store.Store, log *slog.Logger) (*budget.Budget, error) {
	b, err := budget.New(budget.Config{
		Console:   name,
		Replica:   c.budgetReplica(),
		PerSecond: cc.RateLimit.PerSecond,
		Burst:     cc.RateLimit.Burst,
		KV:        st.KV(subjects.BucketLeases),
		TTL:       c.opts.leaseTTL,
		Logger:    log.With("loop", "budget"),
	})
	if err != nil {
		return nil, fmt.Errorf("consoles.%s.rate_limit: %w", name, err)
	}
	c.metrics.budgetShare(name, b.Share)
	return b, nil
}

// startBudgets joins every console's budget, all at once since each join
// takes about one budget tick. The budgets run until stopBudgets: their
// context is not the caller's, which may end as soon as Start returns.
// Until a console's budget has joined, its client sends nothing.
func (c *Connector) startBudgets() error {
	ctx, cancel := context.WithCancel(context.Background())
	c.budgetCancel = cancel
	var wg sync.WaitGroup
	names := c.cfg.ConsoleNames()
	errs := make([]error, len(names))
	for i, name := range names {
		b := c.consoles[name].budget
		wg.Go(func() { errs[i] = b.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopBudgets leaves every console's budget (rate 0, heartbeat key deleted,
// so the other replicas take over the share at once). Stop calls it once
// nothing can call SentinelOne any more: the requests have drained and the
// background loops have ended.
func (c *Connector) stopBudgets(ctx context.Context) error {
	var errs []error
	for _, cs := range c.consoles {
		if cs.budget != nil {
			if err := cs.budget.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("budget of console %s: %w", cs.name, err))
			}
		}
	}
	if c.budgetCancel != nil {
		c.budgetCancel()
	}
	return errors.Join(errs...)
}
