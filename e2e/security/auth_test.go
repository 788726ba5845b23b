package security_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// newUser returns a new user key pair and its seed.
func newUser(t *testing.T) (nkeys.KeyPair, []byte) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return kp, seed
}

func publicKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// writeSecret writes a credential file the way an operator should: 0600.
func writeSecret(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNKey(t *testing.T) {
	dir := t.TempDir()
	user, seed := newUser(t)
	writeSecret(t, filepath.Join(dir, "s1bridge.nk"), seed)
	s := testenv.NATSServerWith(t, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: publicKey(t, user)}}
	})
	emu := emulatorURL(t)

	cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, nkey_file: s1bridge.nk}`, s.ClientURL()), emu)
	c := mustStart(t, cfg)
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(dir, "s1bridge.nk"))
	if err != nil {
		t.Fatal(err)
	}
	checkServes(t, c, client(t, s, opt))
	if ci := connectorConn(t, s); ci.AuthorizedUser != publicKey(t, user) {
		t.Errorf("the connector is authenticated as %q, want its nkey %s", ci.AuthorizedUser, publicKey(t, user))
	}

	t.Run("wrong seed", func(t *testing.T) {
		dir := t.TempDir()
		_, other := newUser(t)
		writeSecret(t, filepath.Join(dir, "s1bridge.nk"), other)
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, nkey_file: s1bridge.nk}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, s.ClientURL(), "authorization violation", "check nats.nkey_file")
		if strings.Contains(err.Error(), string(other)) {
			t.Errorf("the error shows the seed: %v", err)
		}
	})
	t.Run("not a seed", func(t *testing.T) {
		dir := t.TempDir()
		const junk = "SUAJUNKJUNKJUNK-not-a-seed-but-private"
		writeSecret(t, filepath.Join(dir, "s1bridge.nk"), []byte(junk))
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, nkey_file: s1bridge.nk}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, "nats.nkey_file", "nkey seed")
		if strings.Contains(err.Error(), junk) {
			t.Errorf("the error shows the file's content: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		cfg := loadConfig(t, t.TempDir(), fmt.Sprintf(`{url: %q}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, "authorization violation", "none of nats.creds_file, nats.nkey_file, nats.token, nats.user is set")
	})
}

// operator is an operator-mode NATS deployment: the server trusts the
// operator and resolves its accounts from memory. JetStream needs the
// system account.
type operator struct {
	kp       nkeys.KeyPair
	claims   *jwt.OperatorClaims
	resolver *server.MemAccResolver
	system   string // the system account's public key
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	kp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	oc := jwt.NewOperatorClaims(publicKey(t, kp))
	oc.Name = "security-test"
	token, err := oc.Encode(kp)
	if err != nil {
		t.Fatal(err)
	}
	// Decoded back, so the claims carry the issuer the server checks.
	claims, err := jwt.DecodeOperatorClaims(token)
	if err != nil {
		t.Fatal(err)
	}
	o := &operator{kp: kp, claims: claims, resolver: &server.MemAccResolver{}}
	o.system = publicKey(t, o.account(t, "SYS", true))
	return o
}

// server makes a nats-server trust o.
func (o *operator) server(opts *server.Options) {
	opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
	opts.AccountResolver = o.resolver
	opts.SystemAccount = o.system
}

// account creates an account, with unlimited JetStream unless it is the
// system account SYS, known to the server when register is set.
func (o *operator) account(t *testing.T, name string, register bool) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	ac := jwt.NewAccountClaims(publicKey(t, kp))
	ac.Name = name
	if name != "SYS" {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	}
	token, err := ac.Encode(o.kp)
	if err != nil {
		t.Fatal(err)
	}
	if register {
		if err := o.resolver.Store(ac.Subject, token); err != nil {
			t.Fatal(err)
		}
	}
	return kp
}

// creds writes dir/name.creds for a new user of account, with edit applied
// to its claims, and returns the file's path.
func creds(t *testing.T, dir, name string, account nkeys.KeyPair, edit func(*jwt.UserClaims)) string {
	t.Helper()
	user, seed := newUser(t)
	uc := jwt.NewUserClaims(publicKey(t, user))
	uc.Name = name
	if edit != nil {
		edit(uc)
	}
	token, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".creds")
	writeSecret(t, path, b)
	return path
}

func TestCreds(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	acct := op.account(t, "SOAR", true)
	s := testenv.NATSServerWith(t, op.server)
	emu := emulatorURL(t)
	creds(t, dir, "s1bridge", acct, nil)
	soar := creds(t, dir, "soar", acct, nil)

	cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, creds_file: s1bridge.creds}`, s.ClientURL()), emu)
	c := mustStart(t, cfg)
	checkServes(t, c, client(t, s, nats.UserCredentials(soar)))
	if ci := connectorConn(t, s); ci.Account != publicKey(t, acct) {
		t.Errorf("the connector is in account %q, want %s", ci.Account, publicKey(t, acct))
	}

	t.Run("unknown account", func(t *testing.T) {
		dir := t.TempDir()
		creds(t, dir, "s1bridge", op.account(t, "ROGUE", false), nil)
		cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, creds_file: s1bridge.creds}`, s.ClientURL()), emu)
		err := refusedQuickly(t, cfg)
		wantError(t, err, s.ClientURL(), "authorization violation", "check nats.creds_file")
	})
}

// TestCredsPermissionDenied runs the connector as a NATS user that may not
// subscribe to the action subjects of console main. The server's refusal
// arrives before the flush that ends registration, so the start fails and
// names the subject, and a caller sees no responders.
func TestCredsPermissionDenied(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	acct := op.account(t, "SOAR", true)
	s := testenv.NATSServerWith(t, op.server)
	creds(t, dir, "s1bridge", acct, func(uc *jwt.UserClaims) { uc.Sub.Deny.Add("s1.main.action.>") })
	soar := creds(t, dir, "soar", acct, nil)
	cfg := loadConfig(t, dir, fmt.Sprintf(`{url: %q, creds_file: s1bridge.creds}`, s.ClientURL()), emulatorURL(t))

	_, _, err := startConnector(t, cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("the connector started without permission to subscribe to its action subjects")
	}
	wantError(t, err, `Permissions Violation for Subscription to "s1.main.action.`, "needs subscribe permission")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = connector.Call(ctx, client(t, s, nats.UserCredentials(soar)), "s1.main.action.agents.list", "agents.list", "/security-test", nil)
	if !errors.Is(err, connector.ErrNoResponders) {
		t.Errorf("a caller got %v, want no responders", err)
	}
}
