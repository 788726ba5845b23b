// Package store is what a deployment keeps in JetStream: the events stream
// and the key-value buckets, all named from the prefix (DESIGN.md §9), with
// the two operations every loop built on them needs: pipelined
// compare-and-set publishing (Batch) and one test for a compare-and-set
// refusal (IsConflict).
//
// Every replica opens the store at start, creating or updating the stream
// and the buckets, so a cluster converges on the configured settings. A
// deployment never takes over another's stream: Open refuses an events
// stream that holds another prefix's subjects.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/subjects"
)

// Options says what Open opens.
type Options struct {
	// Config supplies the prefix, the events stream's settings and the
	// settings of the buckets that have any.
	Config *config.Config
	// LeaseTTL is the leases bucket's MaxAge: a lease not renewed within it
	// expires. Every replica of a deployment must use the same.
	LeaseTTL time.Duration
}

// buckets lists the KV buckets a deployment owns, in the order Open
// creates them. Adding a bucket is a line here (and its name in package
// subjects); a ttl, when not nil, gives its MaxAge.
var buckets = []struct {
	bucket      subjects.Bucket
	description string
	ttl         func(Options) time.Duration
}{
	{subjects.BucketState, "s1bridge: ingestion watermarks and last known states", nil},
	{subjects.BucketLeases, "s1bridge: leader leases (expire when not renewed)", func(o Options) time.Duration { return o.LeaseTTL }},
	{subjects.BucketMonitors, "s1bridge: active threat monitors", nil},
	{subjects.BucketRequests, "s1bridge: mutating requests and their outcomes, answered to their repeats", func(o Options) time.Duration { return o.Config.Service.IdempotencyWindow }},
	{subjects.BucketTracking, "s1bridge: tracked actions awaiting SentinelOne's confirmation", nil},
}

// PublishAckTimeout bounds the wait for the ack of one asynchronous publish
// (events, states, monitor records). In a cluster, a message the stream's
// leader took as it stepped down (its node shutting down) may never be
// acknowledged: without a bound, the ingestion and monitor loops would wait
// for that ack forever while their leases, in another stream, kept being
// renewed. A timed-out publish fails its batch, which is retried: the
// events' ids and the states' compare-and-set make a retry safe.
const PublishAckTimeout = 5 * time.Second

// maxPending is how many asynchronous publishes may await their acks at
// once; a Batch larger than this waits for room as it publishes.
const maxPending = 4096

// Store is the opened stream and buckets of one deployment. It is safe for
// concurrent use.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subj    subjects.Subjects
	events  jetstream.Stream
	audit   jetstream.Stream // nil when streams.audit.enabled is false
	buckets map[subjects.Bucket]jetstream.KeyValue
}

// EventsStreamConfig is the events stream of DESIGN.md §6 and §9 as cfg
// configures it: <prefix>.*.event.>, named streams.events.name or after the
// prefix.
func EventsStreamConfig(cfg *config.Config, subj subjects.Subjects) jetstream.StreamConfig {
	s := cfg.Streams.Events.Stream
	return jetstream.StreamConfig{
		Name:        cfg.EventsStreamName(),
		Description: "s1bridge: SentinelOne threat and monitor events (CloudEvents, binary mode)",
		Subjects:    []string{subj.EventsWildcard()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Duplicates:  s.Duplicates,
		Replicas:    s.Replicas,
		Storage:     storage(s),
		// Direct gets let any replica read the last event of a subject
		// cheaply (recovery checks and `nats stream get`).
		AllowDirect: true,
	}
}

// AuditStreamConfig is the audit stream of DESIGN.md §12 as cfg configures
// it: <prefix>.*.audit.>, named streams.audit.name or after the prefix,
// with the events stream's replicas and storage. Its de-duplication window
// is the idempotency window (config.AuditDuplicates), so that a record id
// is stored once however often a request is repeated. Records can be
// neither deleted nor purged through the JetStream API: an audit trail
// that an s1bridge credential could edit would prove little (they leave
// by max_age, or with the whole stream).
func AuditStreamConfig(cfg *config.Config, subj subjects.Subjects) jetstream.StreamConfig {
	e := cfg.Streams.Events.Stream
	return jetstream.StreamConfig{
		Name:        cfg.AuditStreamName(),
		Description: "s1bridge: audit records of mutating actions (CloudEvents, binary mode)",
		Subjects:    []string{subj.AuditWildcard()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Streams.Audit.MaxAge,
		Duplicates:  cfg.AuditDuplicates(),
		Replicas:    e.Replicas,
		Storage:     storage(e),
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

func storage(s config.Stream) jetstream.StorageType {
	if s.Storage == config.StorageMemory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Open creates or updates the events stream and every bucket of the
// deployment o.Config describes, on nc. It refuses, naming both prefixes,
// an events stream that exists with another deployment's subjects.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	cfg := o.Config
	subj, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending), jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		return nil, err
	}
	st := &Store{nc: nc, js: js, subj: subj, buckets: map[subjects.Bucket]jetstream.KeyValue{}}
	sc := EventsStreamConfig(cfg, subj)
	if err := checkOwner(ctx, js, sc, subj, eventsOwner); err != nil {
		return nil, err
	}
	if st.events, err = js.CreateOrUpdateStream(ctx, sc); err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", sc.Name, err)
	}
	if cfg.Streams.Audit.Enabled {
		ac := AuditStreamConfig(cfg, subj)
		if err := checkOwner(ctx, js, ac, subj, auditOwner); err != nil {
			return nil, err
		}
		if st.audit, err = js.CreateOrUpdateStream(ctx, ac); err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", ac.Name, err)
		}
	}
	for _, b := range buckets {
		kc := jetstream.KeyValueConfig{
			Bucket: subj.BucketName(b.bucket), Description: b.description, History: 1,
			Replicas: cfg.Streams.Events.Replicas, Storage: jetstream.FileStorage,
		}
		if b.ttl != nil {
			kc.TTL = b.ttl(o)
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, kc)
		if err != nil {
			return nil, fmt.Errorf("create or update key-value bucket %s: %w", kc.Bucket, err)
		}
		st.buckets[b.bucket] = kv
	}
	return st, nil
}

// owner tells a stream of s1bridge's kind apart: what its subjects hold,
// how they name their prefix, and the key that names the stream.
type owner struct {
	what   string // "events", "audit records"
	prefix func(subject string) (string, bool)
	key    string // the configuration key of the stream's name
	name   func(subjects.Subjects) string
}

var (
	eventsOwner = owner{"events", subjects.PrefixOfEvents, "streams.events.name", subjects.Subjects.EventsStream}
	auditOwner  = owner{"audit records", subjects.PrefixOfAudit, "streams.audit.name", subjects.Subjects.AuditStream}
)

// checkOwner refuses an existing stream named as sc whose subjects are not
// sc's: another deployment's events or audit records (DESIGN.md §9), or a
// stream that is not s1bridge's at all. CreateOrUpdateStream would
// silently take it over.
func checkOwner(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, subj subjects.Subjects, o owner) error {
	s, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config.Subjects
	if slices.Equal(have, sc.Subjects) {
		return nil
	}
	whose := "not s1bridge's"
	if len(have) == 1 {
		if p, ok := o.prefix(have[0]); ok {
			whose = fmt.Sprintf("the %s of prefix %q", o.what, p)
		}
	}
	return fmt.Errorf("stream %s holds %v, %s; this deployment's prefix is %q (%s): "+
		"two deployments must not share a stream; leave %s empty for %s, or name a stream of its own",
		sc.Name, have, whose, subj.Prefix(), sc.Subjects[0], o.key, o.name(subj))
}

// Subjects returns the subject builder of the deployment's prefix.
func (s *Store) Subjects() subjects.Subjects { return s.subj }

// Events returns the events stream.
func (s *Store) Events() jetstream.Stream { return s.events }

// KV returns bucket b; Open has opened every bucket.
func (s *Store) KV(b subjects.Bucket) jetstream.KeyValue { return s.buckets[b] }

// Audit returns the audit stream, or nil when streams.audit.enabled is
// false.
func (s *Store) Audit() jetstream.Stream { return s.audit }

// Publish publishes m and waits for its ack.
func (s *Store) Publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	return s.js.PublishMsg(ctx, m)
}

// CheckEvents returns why the events stream cannot be used now (for
// /readyz), or nil.
func (s *Store) CheckEvents(ctx context.Context) error {
	_, err := s.events.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("events stream is missing: %w", err)
	}
	return err
}

// CheckAudit returns why the audit stream cannot be used now (for /readyz),
// or nil; nil too when the audit is off.
func (s *Store) CheckAudit(ctx context.Context) error {
	if s.audit == nil {
		return nil
	}
	_, err := s.audit.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("audit stream is missing (mutating actions answer 503): %w", err)
	}
	return err
}

// IsConflict reports whether err is a compare-and-set refusal: somebody
// else wrote the key (or the subject) since the revision the write expected.
// JetStream answers 10071 (wrong last sequence), or on a replicated stream
// 10164 when another write to the same subject is still being proposed; the
// key-value API wraps both as jetstream.ErrKeyExists (Create) or
// jetstream.ErrKeyRevisionMismatch (Update, Delete). Every compare-and-set
// in s1bridge is checked with this one function.
func IsConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
