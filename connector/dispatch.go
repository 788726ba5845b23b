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
//
// The goroutines are workers that stay for the next request (until idle for
// workerIdle, or the process stops) rather than one new goroutine per
// request: a request's call chain (middlewares, handler, HTTP client, JSON)
// grows a new goroutine's stack several times over, and each growth copies
// the stack, which cost more than all of s1bridge's own work on a request.
// Each worker also derives its requests' contexts from a context of its own,
// so that concurrent requests do not all take the lock of one parent
// context to register and remove their children.
type dispatcher struct {
	slots    chan struct{}
	work     chan job // hands a request to an idle worker
	inflight sync.WaitGroup
	stopping chan struct{} // closed when the process begins to stop
	// workCtx is cancelled when the drain timeout passes: requests still
	// running then give up and answer 503.
	workCtx    context.Context
	cancelWork context.CancelFunc
	stopOnce   sync.Once
	workers    sync.WaitGroup
}

// job is one request for a worker.
type job struct {
	r   *route
	req *middleware.Request
}

// workerIdle is how long a worker waits for another request before it ends.
const workerIdle = 10 * time.Second

func newDispatcher(maxInFlight int) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &dispatcher{
		slots: make(chan struct{}, maxInFlight), work: make(chan job), stopping: make(chan struct{}),
		workCtx: ctx, cancelWork: cancel,
	}
}

// handle is the subscription callback. It waits for a free slot (that wait is
// the backpressure: messages queue in the client meanwhile) and hands the
// request to an idle worker, or to a new one. Time spent waiting counts
// against the request's deadline: a request whose deadline passed in the
// queue gets 408.
func (d *dispatcher) handle(r *route, m *nats.Msg) {
	req := &middleware.Request{Action: r.action, Env: r.env, Denied: r.denied, Msg: m, Received: time.Now()}
	select {
	case d.slots <- struct{}{}:
	case <-d.stopping:
		_, _ = r.refuse(d.workCtx, req)
		return
	}
	d.inflight.Add(1)
	j := job{r, req}
	select {
	case d.work <- j:
	default:
		d.workers.Add(1)
		go d.worker(j)
	}
}

// worker serves j, then the requests handed to it, until it has been idle
// for workerIdle or the process stops.
func (d *dispatcher) worker(j job) {
	defer d.workers.Done()
	ctx, cancel := context.WithCancel(d.workCtx)
	defer cancel()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		d.serve(ctx, j)
		idle.Reset(workerIdle)
		select {
		case j = <-d.work:
		case <-idle.C:
			return
		case <-d.stopping:
			return
		}
	}
}

func (d *dispatcher) serve(ctx context.Context, j job) {
	defer d.inflight.Done()
	defer func() { <-d.slots }()
	_, _ = j.r.serve(ctx, j.req)
	// The reply has been sent: its buffer can serve the next one.
	j.req.Release()
}

// beginStop stops taking work from the queue: callers waiting for a slot are
// answered 503.
func (d *dispatcher) beginStop() { d.stopOnce.Do(func() { close(d.stopping) }) }

// wait waits for the requests in flight, at most until ctx ends; then the
// ones still running are cancelled (they answer 503) and wait returns once
// they have replied. The workers have ended when it returns.
func (d *dispatcher) wait(ctx context.Context) error {
	defer d.workers.Wait()
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
