package connector

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
)

// startInternal runs a connector for console main (ingestion loop off: the
// test drives it) on a new JetStream server and an emulator seeded with
// threats, for tests that reach inside the package. edit, when not nil,
// adjusts the configuration. internal/testenv cannot serve here: it imports
// this package.
func startInternal(t *testing.T, threats int, edit func(*config.Config), opts ...Option) (*Connector, *emulator.Emulator) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	emu, err := emulator.New(emulator.WithToken("tok"), emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 2, Threats: threats}))
	if err != nil {
		t.Fatal(err)
	}
	es, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	cfg := config.Default()
	cfg.NATS.URL = srv.ClientURL()
	cfg.HTTP.Listen = "127.0.0.1:0"
	mc := config.DefaultConsole()
	mc.URL, mc.APIToken, mc.Ingest.Enabled = es.URL(), config.NewSecret("tok"), false
	cfg.Consoles = map[string]config.Console{"main": mc}
	if edit != nil {
		edit(cfg)
	}
	c, err := New(cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c, emu
}
