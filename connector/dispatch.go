package connector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/middleware"
	"github.com/s1bridge/s1bridge/handlers"
)

// route is one registered endpoint: an action of a console, with the
// middleware chains that serve its requests.
type route struct {
	action  handlers.Action
	env     *handlers.Env
	denied  bool // the console's actions.deny lists the action
	subject string
	ep      *endpoint
	// serve runs a request to its reply; refuse answers one that arrives
	// while the process stops (503).
	serve, refuse middleware.HandlerFunc
}

// dispatcher runs action requests on a bounded pool of goroutines. One
// dispatcher serves every endpoint of a process, so max_in_flight bounds the
// whole process, not one action.
type dispatcher struct {
	slots    chan struct{}
	inflight sync.WaitGroup
	stopping chan struct{} // closed when the process begins to stop
	// workCtx is cancelled when the drain timeout passes: requests still
	// running then give up and answer 503.
	workCtx    context.Context
	cancelWork context.CancelFunc
	stopOnce   sync.Once
}

func newDispatcher(maxInFlight int) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &dispatcher{
		slots: make(chan struct{}, maxInFlight), stopping: make(chan struct{}),
		workCtx: ctx, cancelWork: cancel,
	}
}

// handle is the subscription callback. It waits for a free slot (that wait is
// the backpressure: messages queue in the client meanwhile) and serves the
// request on its own goroutine. Time spent waiting counts against the
// request's deadline: a request whose deadline passed in the queue gets 408.
func (d *dispatcher) handle(r *route, m *nats.Msg) {
	req := &middleware.Request{Action: r.action, Env: r.env, Denied: r.denied, Msg: m, Received: time.Now()}
	select {
	case d.slots <- struct{}{}:
	case <-d.stopping:
		_, _ = r.refuse(d.workCtx, req)
		return
	}
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		defer func() { <-d.slots }()
		_, _ = r.serve(d.workCtx, req)
	}()
}

// beginStop stops taking work from the queue: callers waiting for a slot are
// answered 503.
func (d *dispatcher) beginStop() { d.stopOnce.Do(func() { close(d.stopping) }) }

// wait waits for the requests in flight, at most until ctx ends; then the
// ones still running are cancelled (they answer 503) and wait returns once
// they have replied.
func (d *dispatcher) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.cancelWork()
		<-done
		return fmt.Errorf("drain timeout: requests still running were cancelled: %w", ctx.Err())
	}
}
