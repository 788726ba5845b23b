package connector

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSOptions says how to reach NATS. It mirrors the nats section of the
// configuration.
type NATSOptions struct {
	URL       string // empty: start an embedded server
	Name      string // connection name, shown by `nats server report connections`
	CredsFile string
	NkeyFile  string
	Token     string
	User      string
	Password  string
	CAFile    string
	CertFile  string
	KeyFile   string

	// EmbeddedListen and EmbeddedStoreDir configure the embedded server.
	EmbeddedListen   string
	EmbeddedStoreDir string

	// RetryOnFailedConnect keeps trying when the first connect fails instead
	// of returning the error (run does; check and call do not).
	RetryOnFailedConnect bool
}

// Embedded is a nats-server with JetStream running inside this process.
type Embedded struct {
	*server.Server
}

// ErrPortInUse is returned when the embedded server's listen address is taken.
var ErrPortInUse = errors.New("listen address in use")

// freeAddr returns a free address on the host of addr, for a hint: the
// system picks the port. fallback when it cannot say.
func freeAddr(addr, fallback string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fallback
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fallback
	}
	defer l.Close()
	return l.Addr().String()
}

// StartEmbedded starts a nats-server with JetStream listening on listen
// ("host:port"; port -1 picks a free one) with its store under storeDir. It
// returns once the server accepts connections.
func StartEmbedded(listen, storeDir string, log *slog.Logger) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: %w", err)
	}
	port := -1
	if portStr != "-1" {
		if _, err := fmt.Sscan(portStr, &port); err != nil {
			return nil, fmt.Errorf("nats.embedded.listen: bad port %q", portStr)
		}
		// Say plainly that the port is taken, and which one is free.
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is taken (another NATS server or s1bridge?); set S1BRIDGE_NATS__EMBEDDED__LISTEN=%s or stop what uses it: %v",
				ErrPortInUse, listen, freeAddr(listen, "127.0.0.1:4223"), err)
		}
		l.Close()
	}
	if storeDir == "" {
		storeDir = filepath.Join(os.TempDir(), "s1bridge-nats")
	}
	opts := &server.Options{
		ServerName: "s1bridge-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded NATS did not start within 15s")
	}
	if log != nil {
		log.Info("embedded NATS started", "url", s.ClientURL(), "store", storeDir)
	}
	return &Embedded{Server: s}, nil
}

// Close shuts the server down and waits for it.
func (e *Embedded) Close() {
	e.Shutdown()
	e.WaitForShutdown()
}

// Connect dials NATS with o, reconnecting forever with capped exponential
// backoff and jitter after the first connection. url overrides o.URL (used
// for an embedded server's address).
func Connect(o NATSOptions, url string, log *slog.Logger) (*nats.Conn, error) {
	if url == "" {
		url = o.URL
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := 100 * time.Millisecond << min(attempts, 6) // 100ms .. 6.4s
			return d
		}),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(64 << 20),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("NATS async error", "subject", subj, "error", err)
		}),
	}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NkeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_file: %w (want a file holding a user's nkey seed, starting SU)", err)
		}
		opts = append(opts, opt)
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" || o.KeyFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	// The first attempt never retries, so that a refused certificate or
	// credential fails the start at once, saying why. Only a failure that
	// waiting may cure (NATS not up yet) falls back to retrying in the
	// background, each failed attempt logged.
	nc, err := nats.Connect(url, opts...)
	if err != nil && o.RetryOnFailedConnect && !permanent(err) {
		log.Warn("NATS not reachable; retrying in the background", "url", redactURL(url), "error", err)
		nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true),
			nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS connect attempt failed", "error", err) }))...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w%s", redactURL(url), err, hint(err, o, url))
	}
	return nc, nil
}

// permanent reports whether a failed connect is a refusal that retrying
// cannot cure: TLS verification either way, TLS wanted by one side only, or
// credentials the server refused. A timeout, even in the TLS handshake, is
// not: the server may be starting or busy.
func permanent(err error) bool {
	var (
		op *net.OpError
		ne net.Error
	)
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, nats.ErrTLS) || errors.Is(err, nats.ErrSecureConnWanted) ||
		errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrAuthorization) ||
		errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.As(err, &op) && op.Op == "remote error" // a TLS alert from the server
}

// hint names the configuration keys behind a refused connect to url, or "".
func hint(err error, o NATSOptions, url string) string {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		op      *net.OpError
	)
	// The server refuses a client certificate (or its absence) with an
	// alert, or by closing the connection after the handshake, which the
	// client may see as either, depending on timing.
	refused := errors.As(err, &op) && op.Op == "remote error" ||
		errors.Is(err, nats.ErrTLS) && !errors.As(err, &verify)
	switch {
	case errors.As(err, &unknown):
		return " (the server's certificate is not trusted: nats.tls.ca_file must hold the CA that signed it)"
	case errors.As(err, &verify):
		return " (the server's certificate does not verify: check it names the host of nats.url and is in date)"
	case refused && o.CertFile == "":
		return " (the server refused the TLS connection: if it requires a client certificate, set nats.tls.cert_file and nats.tls.key_file)"
	case refused:
		return " (the server refused the TLS connection: check that its CA signed the client certificate of nats.tls.cert_file)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return " (TLS is configured, by a tls:// URL or nats.tls, but the server does not offer it)"
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		key := "none of nats.creds_file, nats.nkey_file, nats.token, nats.user is set"
		switch {
		case o.CredsFile != "":
			key = "check nats.creds_file"
		case o.NkeyFile != "":
			key = "check nats.nkey_file"
		case o.Token != "":
			key = "check nats.token"
		case o.User != "":
			key = "check nats.user and nats.password"
		case strings.Contains(url, "@"):
			key = "check the user or token in nats.url"
		}
		return " (the server refused the credentials: " + key + ")"
	}
	return ""
}

// redactURL hides the user information (a password or a token) of every
// URL of a comma-separated NATS URL list.
func redactURL(list string) string {
	urls := strings.Split(list, ",")
	for i, u := range urls {
		urls[i] = redactOneURL(u)
	}
	return strings.Join(urls, ",")
}

// redactOneURL hides the user information of one URL.
func redactOneURL(u string) string {
	for i := 0; i+2 < len(u); i++ {
		if u[i:i+3] == "://" {
			rest := u[i+3:]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '@' {
					return u[:i+3] + "[REDACTED]@" + rest[j+1:]
				}
				if rest[j] == '/' {
					break
				}
			}
			break
		}
	}
	return u
}
