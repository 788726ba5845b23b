package connector_test

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/s1bridge/s1bridge/connector"
)

func TestEmbeddedSaysWhenThePortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = connector.StartEmbedded(l.Addr().String(), t.TempDir(), slog.New(slog.DiscardHandler))
	if !errors.Is(err, connector.ErrPortInUse) {
		t.Fatalf("got %v, want ErrPortInUse", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, l.Addr().String()) || !strings.Contains(msg, "S1BRIDGE_NATS__EMBEDDED__LISTEN=127.0.0.1:") {
		t.Errorf("the message should name the taken address and a free one: %s", msg)
	}
}

func TestEmbeddedStartsWithJetStream(t *testing.T) {
	emb, err := connector.StartEmbedded("127.0.0.1:-1", t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if !emb.JetStreamEnabled() {
		t.Error("embedded server without JetStream")
	}
}
