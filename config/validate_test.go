package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// valid returns a configuration that passes Validate.
func valid() *Config {
	c := Default()
	c.Consoles["main"] = withToken(c.Consoles["main"], "tok")
	return c
}

func TestValidateOK(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
	edges := []func(c *Config){
		func(c *Config) { c.NATS.URL = "nats://a:4222, tls://b:4443,ws://c,wss://d/x" },
		func(c *Config) { c.NATS.URL = "" }, // embedded, with the default listen and store
		func(c *Config) { c.NATS.User, c.NATS.Password = "u", NewSecret("p") },
		func(c *Config) { c.NATS.TLS.CertFile, c.NATS.TLS.KeyFile = "c", "k" },
		func(c *Config) { c.HTTP.Listen = ":0" },
		func(c *Config) { c.Service.MaxInFlight = MaxInFlightMax },
		func(c *Config) { c.Streams.Events.MaxAge = 0 }, // forever
		func(c *Config) { c.Streams.Events.Name = "MY-EVENTS_2" },
		func(c *Config) { c.Streams.Events.Storage, c.Streams.Events.Replicas = StorageMemory, ReplicasMax },
		func(c *Config) {
			c.Log.Level, c.Log.Format, c.Log.Output = LevelDebug, FormatJSON, "/var/log/s1bridge.log"
		},
		func(c *Config) {
			m := c.Consoles["main"]
			m.URL = Emulator
			m.APIToken, m.APITokenFile = Secret{}, "token"
			m.Retry = Retry{Max: 0, WaitMin: time.Second, WaitMax: time.Second}
			m.Ingest.Overlap, m.Ingest.PageSize = 0, 1
			m.Monitor.PollInterval = time.Second
			m.Actions.Deny = []string{"agents.disconnect", "threats.update"}
			c.Consoles["main"] = m
			c.Consoles["eu_2-b"] = m
		},
		func(c *Config) {
			m := c.Consoles["main"]
			m.URL = "http://127.0.0.1:8080/proxy/"
			c.Consoles["main"] = m
		},
	}
	for i, edit := range edges {
		c := valid()
		edit(c)
		if err := c.Validate(); err != nil {
			t.Errorf("edge %d: %v", i, err)
		}
	}
}

// TestEventsStreamName: the events stream is named after the prefix unless
// streams.events.name says otherwise (DESIGN.md §9).
func TestEventsStreamName(t *testing.T) {
	c := Default()
	if got := c.EventsStreamName(); got != "S1_EVENTS" {
		t.Errorf("default stream %q, want S1_EVENTS", got)
	}
	c.Subjects.Prefix = "nc"
	if got := c.EventsStreamName(); got != "NC_EVENTS" {
		t.Errorf("stream of prefix nc %q, want NC_EVENTS", got)
	}
	c.Streams.Events.Name = "SHARED"
	if got := c.EventsStreamName(); got != "SHARED" {
		t.Errorf("stream %q, want the configured SHARED", got)
	}
}

// TestAuditStreamName: the audit stream is named after the prefix unless
// streams.audit.name says otherwise, and de-duplicates over the
// idempotency window, cut to its max_age.
func TestAuditStreamName(t *testing.T) {
	c := Default()
	if got := c.AuditStreamName(); got != "S1_AUDIT" {
		t.Errorf("default stream %q, want S1_AUDIT", got)
	}
	c.Subjects.Prefix = "nc"
	if got := c.AuditStreamName(); got != "NC_AUDIT" {
		t.Errorf("stream of prefix nc %q, want NC_AUDIT", got)
	}
	c.Streams.Audit.Name = "WHO_DID_WHAT"
	if got := c.AuditStreamName(); got != "WHO_DID_WHAT" {
		t.Errorf("stream %q, want the configured WHO_DID_WHAT", got)
	}
	if got := c.AuditDuplicates(); got != 24*time.Hour {
		t.Errorf("duplicates window %s, want the idempotency window 24h", got)
	}
	c.Streams.Audit.MaxAge = time.Hour
	if got := c.AuditDuplicates(); got != time.Hour {
		t.Errorf("duplicates window %s, want max_age 1h", got)
	}
	c.Streams.Audit.MaxAge = 0
	if got := c.AuditDuplicates(); got != 24*time.Hour {
		t.Errorf("duplicates window %s with records kept forever, want 24h", got)
	}
}

func TestValidateErrors(t *testing.T) {
	console := func(edit func(m *Console)) func(c *Config) {
		return func(c *Config) {
			m := c.Consoles["main"]
			edit(&m)
			c.Consoles["main"] = m
		}
	}
	tests := []struct {
		name string
		edit func(c *Config)
		want string // the whole problem line, or its start
	}{
		{"nats url scheme", func(c *Config) { c.NATS.URL = "http://a:4222" }, "nats.url: entry 1 is not"},
		{"nats url second entry", func(c *Config) { c.NATS.URL = "nats://a:4222,b:4222" }, "nats.url: entry 2 is not"},
		{"embedded listen", func(c *Config) { c.NATS.URL, c.NATS.Embedded.Listen = "", "4222" }, `nats.embedded.listen: not host:port: "4222"`},
		{"embedded port", func(c *Config) { c.NATS.URL, c.NATS.Embedded.Listen = "", "a:99999" }, "nats.embedded.listen: port"},
		{"embedded store", func(c *Config) { c.NATS.URL, c.NATS.Embedded.StoreDir = "", "" }, "nats.embedded.store_dir: required"},
		{"two auth methods", func(c *Config) { c.NATS.CredsFile, c.NATS.Token = "x", NewSecret("t") }, "nats.token: conflicts with nats.creds_file"},
		{"user without password", func(c *Config) { c.NATS.User = "u" }, "nats.password: required with nats.user"},
		{"password without user", func(c *Config) { c.NATS.Password = NewSecret("p") }, "nats.user: required with nats.password"},
		{"cert without key", func(c *Config) { c.NATS.TLS.CertFile = "c" }, "nats.tls.key_file: required with nats.tls.cert_file"},
		{"key without cert", func(c *Config) { c.NATS.TLS.KeyFile = "k" }, "nats.tls.cert_file: required with nats.tls.key_file"},
		{"prefix with a dot", func(c *Config) { c.Subjects.Prefix = "s1.x" }, "subjects.prefix: must be a non-empty NATS subject token"},
		{"empty prefix", func(c *Config) { c.Subjects.Prefix = "" }, "subjects.prefix: must be"},
		{"queue group wildcard", func(c *Config) { c.Service.QueueGroup = "q*" }, "service.queue_group: must be"},
		{"max in flight 0", func(c *Config) { c.Service.MaxInFlight = 0 }, "service.max_in_flight: 0 is out of range 1 to 100000"},
		{"max in flight high", func(c *Config) { c.Service.MaxInFlight = MaxInFlightMax + 1 }, "service.max_in_flight: 100001 is out of range"},
		{"action timeout", func(c *Config) { c.Service.ActionTimeout = 0 }, "service.action_timeout: must be more than 0"},
		{"no consoles", func(c *Config) { c.Consoles = nil }, "consoles: at least one console is required"},
		{"console name", func(c *Config) { c.Consoles["a b"] = c.Consoles["main"] }, "consoles.a b: console name must be"},
		{"console names by case", func(c *Config) { c.Consoles["MAIN"] = c.Consoles["main"] }, "consoles.main: same name as consoles.MAIN apart from case"},
		{"url missing", console(func(m *Console) { m.URL = "" }), "consoles.main.url: required"},
		{"url relative", console(func(m *Console) { m.URL = "usea1.sentinelone.net" }), "consoles.main.url: not an absolute http(s) URL"},
		{"url scheme", console(func(m *Console) { m.URL = "ftp://x" }), "consoles.main.url: not an absolute http(s) URL"},
		{"url credentials", console(func(m *Console) { m.URL = "https://u:p@x" }), "consoles.main.url: must not carry credentials"},
		{"url query", console(func(m *Console) { m.URL = "https://x/?a=1" }), "consoles.main.url: must not have a query"},
		{"no token", console(func(m *Console) { m.APIToken = Secret{} }), "consoles.main.api_token: required (or api_token_file)"},
		{"timeout", console(func(m *Console) { m.Timeout = -time.Second }), "consoles.main.timeout: must be more than 0"},
		{"retry max", console(func(m *Console) { m.Retry.Max = 21 }), "consoles.main.retry.max: 21 is out of range 0 to 20"},
		{"retry negative", console(func(m *Console) { m.Retry.Max = -1 }), "consoles.main.retry.max: -1 is out of range"},
		{"wait min over max", console(func(m *Console) { m.Retry.WaitMin = time.Minute }), "consoles.main.retry.wait_min: 1m0s is more than retry.wait_max 30s"},
		{"wait min zero", console(func(m *Console) { m.Retry.WaitMin = 0 }), "consoles.main.retry.wait_min: must be more than 0"},
		{"wait max zero", console(func(m *Console) { m.Retry.WaitMin, m.Retry.WaitMax = 0, 0 }), "consoles.main.retry.wait_max: must be more than 0"},
		{"rate zero", console(func(m *Console) { m.RateLimit.PerSecond = 0 }), "consoles.main.rate_limit.per_second: must be more than 0"},
		{"rate NaN", console(func(m *Console) { m.RateLimit.PerSecond = math.NaN() }), "consoles.main.rate_limit.per_second: must be more than 0"},
		{"burst", console(func(m *Console) { m.RateLimit.Burst = 0 }), "consoles.main.rate_limit.burst: must be at least 1"},
		{"deny syntax", console(func(m *Console) { m.Actions.Deny = []string{"agents.list", "Agents.Disconnect"} }), `consoles.main.actions.deny[1]: "Agents.Disconnect" is not an action name`},
		{"deny one word", console(func(m *Console) { m.Actions.Deny = []string{"agents"} }), `consoles.main.actions.deny[0]: "agents" is not an action name`},
		{"max targets 0", console(func(m *Console) { m.Actions.MaxTargets = 0 }), "consoles.main.actions.max_targets: 0 is out of range 1 to 5000"},
		{"max targets high", console(func(m *Console) { m.Actions.MaxTargets = 5001 }), "consoles.main.actions.max_targets: 5001 is out of range 1 to 5000"},
		{"max targets negative", console(func(m *Console) { m.Actions.MaxTargets = -1 }), "consoles.main.actions.max_targets: -1 is out of range"},
		{"interval", console(func(m *Console) { m.Ingest.Interval = 0 }), "consoles.main.ingest.interval: must be more than 0"},
		{"first fetch", console(func(m *Console) { m.Ingest.FirstFetch = 0 }), "consoles.main.ingest.first_fetch: must be more than 0"},
		{"page size 0", console(func(m *Console) { m.Ingest.PageSize = 0 }), "consoles.main.ingest.page_size: 0 is out of range 1 to 1000"},
		{"page size high", console(func(m *Console) { m.Ingest.PageSize = 1001 }), "consoles.main.ingest.page_size: 1001 is out of range"},
		{"overlap", console(func(m *Console) { m.Ingest.Overlap = -time.Second }), "consoles.main.ingest.overlap: must not be negative"},
		{"alerts page size 0", console(func(m *Console) { m.Ingest.Alerts.PageSize = 0 }), "consoles.main.ingest.alerts.page_size: 0 is out of range 1 to 1000"},
		{"alerts page size high", console(func(m *Console) { m.Ingest.Alerts.PageSize = 1001 }), "consoles.main.ingest.alerts.page_size: 1001 is out of range"},
		{"poll interval", console(func(m *Console) { m.Monitor.PollInterval = 999 * time.Millisecond }), "consoles.main.monitor.poll_interval: must be at least 1s"},
		{"default timeout", console(func(m *Console) { m.Monitor.DefaultTimeout = 0 }), "consoles.main.monitor.default_timeout: must be more than 0"},
		{"tracking poll interval", console(func(m *Console) { m.Tracking.PollInterval = 999 * time.Millisecond }), "consoles.main.tracking.poll_interval: must be at least 1s"},
		{"tracking timeout short", console(func(m *Console) { m.Tracking.Timeout = 999 * time.Millisecond }), "consoles.main.tracking.timeout: 999ms is out of range 1s to 24h0m0s"},
		{"tracking timeout long", console(func(m *Console) { m.Tracking.Timeout = 25 * time.Hour }), "consoles.main.tracking.timeout: 25h0m0s is out of range 1s to 24h0m0s"},
		{"stream name", func(c *Config) { c.Streams.Events.Name = "S1.EVENTS" }, "streams.events.name: must be"},
		{"replicas 0", func(c *Config) { c.Streams.Events.Replicas = 0 }, "streams.events.replicas: 0 is out of range 1 to 5"},
		{"replicas 6", func(c *Config) { c.Streams.Events.Replicas = 6 }, "streams.events.replicas: 6 is out of range"},
		{"max age", func(c *Config) { c.Streams.Events.MaxAge = -1 }, "streams.events.max_age: must not be negative"},
		{"duplicates", func(c *Config) { c.Streams.Events.Duplicates = 0 }, "streams.events.duplicates: must be more than 0"},
		{"duplicates over max age", func(c *Config) { c.Streams.Events.MaxAge = time.Minute }, "streams.events.duplicates: 10m0s is more than max_age 1m0s"},
		{"storage", func(c *Config) { c.Streams.Events.Storage = "disk" }, `streams.events.storage: "disk" is not one of file, memory`},
		{"events mode", func(c *Config) { c.Streams.Events.Mode = "json" }, `streams.events.mode: "json" is not one of binary, structured`},
		{"events mode empty", func(c *Config) { c.Streams.Events.Mode = "" }, `streams.events.mode: "" is not one of binary, structured`},
		{"idempotency window", func(c *Config) { c.Service.IdempotencyWindow = 30 * time.Second }, "service.idempotency_window: 30s must be more than service.action_timeout 30s"},
		{"audit stream name", func(c *Config) { c.Streams.Audit.Name = "S1.AUDIT" }, "streams.audit.name: must be"},
		{"audit stream is the events stream", func(c *Config) { c.Streams.Audit.Name = "S1_EVENTS" }, "streams.audit.name: S1_EVENTS is also the events stream"},
		{"audit max age", func(c *Config) { c.Streams.Audit.MaxAge = -1 }, "streams.audit.max_age: must not be negative"},
		{"http listen", func(c *Config) { c.HTTP.Listen = "localhost" }, "http.listen: not host:port"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, `log.level: "trace" is not one of debug, info, warn, error`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, `log.format: "logfmt" is not one of text, json`},
		{"log output", func(c *Config) { c.Log.Output = "" }, "log.output: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("valid, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to start with %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("not ErrInvalid")
			}
		})
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	c := valid()
	c.NATS.URL = "http://user:hunter2@a:4222"
	c.NATS.CredsFile, c.NATS.Token = "x", NewSecret("hunter3")
	m := c.Consoles["main"]
	m.URL = "https://u:hunter4@x"
	c.Consoles["main"] = m
	err := c.Validate()
	if err == nil {
		t.Fatal("valid")
	}
	for _, s := range []string{"hunter2", "hunter3", "hunter4"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %s: %v", s, err)
		}
	}
}

func TestKnownActions(t *testing.T) {
	known := []string{"agents.connect", "agents.disconnect"}
	_, err := LoadWith(Options{Actions: known, Environ: []string{
		"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t",
		"S1BRIDGE_CONSOLES__MAIN__ACTIONS__DENY=agents.disconnect,agents.disconect",
	}})
	if err == nil || err.Error() != `consoles.main.actions.deny[1]: "agents.disconect" is not a known action` {
		t.Fatalf("err = %v", err)
	}
	if _, err := LoadWith(Options{Environ: []string{
		"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t",
		"S1BRIDGE_CONSOLES__MAIN__ACTIONS__DENY=agents.disconect",
	}}); err != nil {
		t.Errorf("without Actions only the syntax is checked: %v", err)
	}
}
