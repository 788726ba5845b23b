package security_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// tlsServer makes a nats-server require TLS with the server certificate of
// p and, with verify, a client certificate signed by p's CA.
func tlsServer(t *testing.T, p pki, verify bool) func(*server.Options) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: p.ServerCert, KeyFile: p.ServerKey, CaFile: p.CA, Verify: verify, Timeout: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, verify, 2
	}
}

// connectorConn returns what the server knows of the connector's
// connection (named s1bridge by nats.name).
func connectorConn(t *testing.T, s *server.Server) *server.ConnInfo {
	t.Helper()
	cz, err := s.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range cz.Conns {
		if ci.Name == "s1bridge" {
			return ci
		}
	}
	t.Fatalf("the server has no connection named s1bridge among %d", len(cz.Conns))
	return nil
}

// wantError fails the test unless err's message holds every part, ignoring
// case.
func wantError(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(p)) {
			t.Errorf("the error does not say %q: %v", p, err)
		}
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "nats")
	other := newPKI(t, t.TempDir(), "other")
	s := testenv.NATSServerWith(t, tlsServer(t, p, false))
	emu := emulatorURL(t)
	if !strings.HasPrefix(s.ClientURL(), "tls://") {
		t.Fatalf("server URL %s: TLS is not required", s.ClientURL())
	}

	// ca_file relative to the configuration file, as users write it.
	cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, tls: {ca_file: nats-ca.pem}}`, s.ClientURL()), emu)
	c := mustStart(t, cfg)
	checkServes(t, c, client(t, s, nats.RootCAs(p.CA)))
	if ci := connectorConn(t, s); ci.TLSVersion == "" {
		t.Errorf("the connector's connection is not TLS: %+v", ci)
	}

	t.Run("wrong CA", func(t *testing.T) {
		cfg := loadConfig(t, t.TempDir(), fmt.Sprintf(`{url: %q, tls: {ca_file: %q}}`, s.ClientURL(), other.CA), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, s.ClientURL(), "certificate signed by unknown authority", "nats.tls.ca_file")
	})
	t.Run("no CA", func(t *testing.T) {
		// The system roots do not hold the private CA.
		cfg := loadConfig(t, t.TempDir(), fmt.Sprintf(`{url: %q}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, "certificate signed by unknown authority", "nats.tls.ca_file")
	})
	t.Run("server without TLS", func(t *testing.T) {
		plain := testenv.NATSServerWith(t, nil)
		url := strings.Replace(plain.ClientURL(), "nats://", "tls://", 1)
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, tls: {ca_file: nats-ca.pem}}`, url), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, "secure connection not available", "the server does not offer it")
	})
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "nats")
	other := newPKI(t, t.TempDir(), "other")
	s := testenv.NATSServerWith(t, tlsServer(t, p, true))
	emu := emulatorURL(t)

	cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, tls: {ca_file: nats-ca.pem, cert_file: nats-client.pem, key_file: nats-client-key.pem}}`, s.ClientURL()), emu)
	c := mustStart(t, cfg)
	checkServes(t, c, client(t, s, nats.RootCAs(p.CA), nats.ClientCert(p.ClientCert, p.ClientKey)))
	ci := connectorConn(t, s)
	if len(ci.TLSPeerCerts) == 0 || !strings.Contains(ci.TLSPeerCerts[0].Subject, "CN=s1bridge") {
		t.Errorf("the server did not see the connector's client certificate: %+v", ci.TLSPeerCerts)
	}

	t.Run("without a client certificate", func(t *testing.T) {
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, tls: {ca_file: nats-ca.pem}}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		// The server answers with an alert ("certificate required") or by
		// closing the connection, which the client sees depending on timing:
		// the hint is what a person can rely on.
		wantError(t, err, s.ClientURL(), "tls", "the server refused the TLS connection", "set nats.tls.cert_file and nats.tls.key_file")
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, tls: {ca_file: nats-ca.pem, cert_file: %q, key_file: %q}}`,
			s.ClientURL(), other.ClientCert, other.ClientKey), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, "tls", "the server refused the TLS connection", "the client certificate of nats.tls.cert_file")
	})
}
