// Package testenv starts the real parts tests run against: an in-process
// nats-server with JetStream storing under t.TempDir(), the SentinelOne
// emulator over loopback HTTP, and a connector wired to both. Everything is
// stopped by t.Cleanup. The parts short of the connector are package
// testparts; they are repeated here so that a test needs one import.
package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testparts"
)

// Token is the API token the test emulators accept.
const Token = testparts.Token

// The parts short of the connector (see package testparts).
var (
	// NATSServer starts a nats-server with JetStream on a random loopback port.
	NATSServer = testparts.NATSServer
	// NATSServerAt starts a nats-server on port with its store in dir.
	NATSServerAt = testparts.NATSServerAt
	// NATSServerWith starts a nats-server with edited options.
	NATSServerWith = testparts.NATSServerWith
	// NATSCluster starts an n-node cluster.
	NATSCluster = testparts.NATSCluster
	// Conn connects to a server; the connection is closed at cleanup.
	Conn = testparts.Conn
	// Emulator starts an emulator accepting Token over loopback HTTP.
	Emulator = testparts.Emulator
	// Config returns a valid configuration for console main.
	Config = testparts.Config
	// Logger logs to the test's output when S1BRIDGE_TEST_LOG is set.
	Logger = testparts.Logger
	// WaitFor polls a condition until it holds or the test fails.
	WaitFor = testparts.WaitFor
	// IngestOn turns on the ingestion of console main.
	IngestOn = testparts.IngestOn
	// StreamMsgs is the number of messages in a stream.
	StreamMsgs = testparts.StreamMsgs
	// StreamMessages reads every message of a stream.
	StreamMessages = testparts.StreamMessages
	// ReadStream reads every event of a stream.
	ReadStream = testparts.ReadStream
	// CheckExactlyOnce checks events against the threats that must be in them.
	CheckExactlyOnce = testparts.CheckExactlyOnce
	// CheckExactlyOnceOf checks events against the objects of an entity
	// (alerts) that must be in them.
	CheckExactlyOnceOf = testparts.CheckExactlyOnceOf
	// CheckEvent decodes an event and validates it against its schema.
	CheckEvent = testparts.CheckEvent
)

type (
	// Cluster is a NATS cluster running in the test process.
	Cluster = testparts.Cluster
	// SyncBuffer is a bytes.Buffer safe for concurrent use.
	SyncBuffer = testparts.SyncBuffer
	// StreamEvent is one event read back from a stream.
	StreamEvent = testparts.StreamEvent
)

// Connector starts a connector for cfg and stops it at cleanup.
func Connector(t testing.TB, cfg *config.Config, opts ...connector.Option) *connector.Connector {
	t.Helper()
	c, err := connector.New(cfg, Logger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		c.Stop(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	return c
}

// Env is a whole running system: NATS, an emulator, a connector and a client
// connection.
type Env struct {
	Server    *server.Server
	NC        *nats.Conn
	Emu       *emulator.Emulator
	EmuURL    string
	Cfg       *config.Config
	Connector *connector.Connector
}

// Start runs NATS, an emulator (with emuOpts) and a connector whose
// configuration edit may adjust.
func Start(t testing.TB, edit func(*config.Config), emuOpts ...emulator.Option) *Env {
	t.Helper()
	e := &Env{}
	e.Server = NATSServer(t)
	e.Emu, e.EmuURL = Emulator(t, emuOpts...)
	e.Cfg = Config(e.Server.ClientURL(), e.EmuURL)
	if edit != nil {
		edit(e.Cfg)
	}
	e.Connector = Connector(t, e.Cfg)
	e.NC = Conn(t, e.Server)
	return e
}

// Call sends one action request to console main and returns the reply.
func (e *Env) Call(t testing.TB, action, data string) *connector.Reply {
	t.Helper()
	return e.CallConsole(t, "main", action, data)
}

// CallConsole sends one action request to console and returns the reply.
func (e *Env) CallConsole(t testing.TB, console, action, data string) *connector.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := connector.Call(ctx, e.NC, e.Connector.Subjects().Action(console, action), action, "/test", []byte(data))
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}
