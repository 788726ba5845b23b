package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// Why not micro.AddService: a micro endpoint is one subscription whose
// callback runs one message at a time, and micro measures processing time and
// errors around that callback. Handing each request to a worker pool (so one
// slow SentinelOne call does not block every caller behind it) would leave
// micro's STATS counting microseconds and no errors. So the service below
// speaks the same protocol (io.nats.micro.v1: PING, INFO and STATS on the
// $SRV subjects, with micro's own response types) and records each request
// when its reply is sent, not when it is handed off. `nats micro ls|info|stats`
// cannot tell the difference.

// endpoint is one action of one console as micro sees it.
type endpoint struct {
	info micro.EndpointInfo
	sub  *nats.Subscription

	mu             sync.Mutex
	numRequests    int
	numErrors      int
	lastError      string
	processingTime time.Duration
}

// record accounts one finished request; errMsg is empty on success.
func (e *endpoint) record(took time.Duration, errMsg string) {
	e.mu.Lock()
	e.numRequests++
	e.processingTime += took
	if errMsg != "" {
		e.numErrors++
		e.lastError = errMsg
	}
	e.mu.Unlock()
}

func (e *endpoint) stats() *micro.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &micro.EndpointStats{
		Name:           e.info.Name,
		Subject:        e.info.Subject,
		QueueGroup:     e.info.QueueGroup,
		NumRequests:    e.numRequests,
		NumErrors:      e.numErrors,
		LastError:      e.lastError,
		ProcessingTime: e.processingTime,
	}
	if e.numRequests > 0 {
		s.AverageProcessingTime = e.processingTime / time.Duration(e.numRequests)
	}
	return s
}

// service is a NATS micro service whose endpoints hand their messages to a
// caller-supplied function that may run them concurrently. It is safe for
// concurrent use.
type service struct {
	nc          *nats.Conn
	identity    micro.ServiceIdentity
	description string
	started     time.Time

	mu        sync.Mutex
	endpoints []*endpoint
	verbSubs  []*nats.Subscription
}

// newService registers the monitoring verbs of a service called name on nc.
// version must be semantic (micro's rule, checked by `nats micro`).
func newService(nc *nats.Conn, name, version, description string, metadata map[string]string) (*service, error) {
	s := &service{
		nc: nc,
		identity: micro.ServiceIdentity{
			Name: name, ID: nuid.Next(), Version: version, Metadata: metadata,
		},
		description: description,
		started:     time.Now().UTC(),
	}
	if s.identity.Metadata == nil {
		s.identity.Metadata = map[string]string{}
	}
	verbs := map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: s.identity, Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return s.Info() },
		micro.StatsVerb: func() any { return s.Stats() },
	}
	for verb, value := range verbs {
		// Each verb answers on $SRV.VERB, $SRV.VERB.name and $SRV.VERB.name.id.
		for _, pair := range [][2]string{{"", ""}, {name, ""}, {name, s.identity.ID}} {
			subj, err := micro.ControlSubject(verb, pair[0], pair[1])
			if err != nil {
				return nil, errors.Join(err, s.stop(context.Background()))
			}
			sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
				b, _ := json.Marshal(value())
				_ = m.Respond(b)
			})
			if err != nil {
				return nil, errors.Join(fmt.Errorf("subscribe %s: %w", subj, err), s.stop(context.Background()))
			}
			s.verbSubs = append(s.verbSubs, sub)
		}
	}
	return s, nil
}

// addEndpoint subscribes subject in queue group queue and passes every message
// to handle, which must not block for long (it may block to apply
// backpressure). The returned endpoint records the outcome of each request.
func (s *service) addEndpoint(name, subject, queue string, metadata map[string]string, handle func(*endpoint, *nats.Msg)) (*endpoint, error) {
	ep := &endpoint{info: micro.EndpointInfo{Name: name, Subject: subject, QueueGroup: queue, Metadata: metadata}}
	sub, err := s.nc.QueueSubscribe(subject, queue, func(m *nats.Msg) { handle(ep, m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	// Requests wait in the client while the worker pool is full; the default
	// pending limits (65536 messages, 64 MiB) would drop a burst of large
	// requests as a slow consumer. -1 lifts the message limit; bytes stay bounded.
	if err := sub.SetPendingLimits(-1, 256<<20); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	ep.sub = sub
	s.mu.Lock()
	s.endpoints = append(s.endpoints, ep)
	s.mu.Unlock()
	return ep, nil
}

// Info is the INFO verb's answer.
func (s *service) Info() micro.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]micro.EndpointInfo, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		eps = append(eps, e.info)
	}
	return micro.Info{ServiceIdentity: s.identity, Type: micro.InfoResponseType, Description: s.description, Endpoints: eps}
}

// Stats is the STATS verb's answer.
func (s *service) Stats() micro.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]*micro.EndpointStats, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		eps = append(eps, e.stats())
	}
	return micro.Stats{ServiceIdentity: s.identity, Type: micro.StatsResponseType, Started: s.started, Endpoints: eps}
}

// drainEndpoints stops taking new requests: every endpoint subscription is
// drained (messages already delivered are still handed to handle) and
// interest is removed, so the queue group sends new requests to other
// replicas. It returns when the subscriptions are closed or ctx ends.
func (s *service) drainEndpoints(ctx context.Context) error {
	s.mu.Lock()
	eps := append([]*endpoint(nil), s.endpoints...)
	s.mu.Unlock()
	var errs []error
	for _, e := range eps {
		if err := e.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, err)
		}
	}
	for _, e := range eps {
		for e.sub.IsValid() {
			select {
			case <-ctx.Done():
				return errors.Join(append(errs, ctx.Err())...)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return errors.Join(errs...)
}

// stop removes every subscription of the service, monitoring verbs included.
func (s *service) stop(ctx context.Context) error {
	err := s.drainEndpoints(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.verbSubs {
		_ = sub.Unsubscribe()
	}
	s.verbSubs = nil
	return err
}
