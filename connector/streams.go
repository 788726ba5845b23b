package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/subjects"
)

// stores are the JetStream stream and key-value buckets s1bridge keeps its
// events and state in. Every replica creates or updates them at start, so a
// cluster converges on the configured settings.
type stores struct {
	js       jetstream.JetStream
	events   jetstream.Stream
	state    jetstream.KeyValue // watermarks and last known threat states
	leases   jetstream.KeyValue // one key per console and role, MaxAge leaseTTL
	monitors jetstream.KeyValue // active monitors
}

// EventsStreamConfig is the events stream of DESIGN.md §6 as configured.
func EventsStreamConfig(cfg *config.Config, subj subjects.Subjects) jetstream.StreamConfig {
	s := cfg.Streams.Events
	storage := jetstream.FileStorage
	if s.Storage == config.StorageMemory {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        s.Name,
		Description: "s1bridge: SentinelOne threat and monitor events (CloudEvents, binary mode)",
		Subjects:    []string{subj.EventsWildcard()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Duplicates:  s.Duplicates,
		Replicas:    s.Replicas,
		Storage:     storage,
		// Direct gets let any replica read the last event of a subject
		// cheaply (recovery checks and `nats stream get`).
		AllowDirect: true,
	}
}

func openStores(ctx context.Context, js jetstream.JetStream, cfg *config.Config, subj subjects.Subjects, leaseTTL time.Duration) (*stores, error) {
	st := &stores{js: js}
	var err error
	st.events, err = js.CreateOrUpdateStream(ctx, EventsStreamConfig(cfg, subj))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", cfg.Streams.Events.Name, err)
	}
	replicas := cfg.Streams.Events.Replicas
	storage := jetstream.FileStorage
	kvs := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&st.state, jetstream.KeyValueConfig{Bucket: subjects.BucketState, Description: "s1bridge: ingestion watermarks and last known threat states", History: 1, Replicas: replicas, Storage: storage}},
		{&st.leases, jetstream.KeyValueConfig{Bucket: subjects.BucketLeases, Description: "s1bridge: leader leases (expire when not renewed)", History: 1, TTL: leaseTTL, Replicas: replicas, Storage: storage}},
		{&st.monitors, jetstream.KeyValueConfig{Bucket: subjects.BucketMonitors, Description: "s1bridge: active threat monitors", History: 1, Replicas: replicas, Storage: storage}},
	}
	for _, kv := range kvs {
		b, err := js.CreateOrUpdateKeyValue(ctx, kv.cfg)
		if err != nil {
			return nil, fmt.Errorf("create or update key-value bucket %s: %w", kv.cfg.Bucket, err)
		}
		*kv.dst = b
	}
	return st, nil
}

// streamPresent reports whether the events stream exists (for /readyz).
func (st *stores) streamPresent(ctx context.Context) error {
	_, err := st.events.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("events stream is missing: %w", err)
	}
	return err
}
