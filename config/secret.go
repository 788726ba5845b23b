package config

import (
	"fmt"
	"log/slog"
)

// Redacted is what a set [Secret] prints, marshals and logs as.
const Redacted = "[REDACTED]"

// Secret holds a credential (an API token, a NATS token or password) so that
// it cannot be printed by accident: fmt with any verb, encoding/json,
// encoding.TextMarshaler users (YAML, slog's text handler) and slog's
// LogValuer all see [Redacted], or "" when the secret is unset. Only
// [Secret.Reveal] returns the value, for the one place that must send it.
//
// The value sits behind a pointer so that even reflection-based printing that
// bypasses the methods (fmt on an unexported field, which cannot call them)
// shows an address and never the text. The zero Secret is unset. A Secret is
// immutable and safe to copy and share between goroutines.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s; NewSecret("") is the unset Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the secret in clear. Call it only where the value is sent
// (an Authorization header), never to build a message.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is unset.
func (s Secret) IsZero() bool { return s.v == nil }

// String returns [Redacted], or "" when the secret is unset.
func (s Secret) String() string {
	if s.v == nil {
		return ""
	}
	return Redacted
}

// GoString returns the same as String, so %#v does not show the value.
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb print String: without it %d or %x on a
// string-like value would reach the raw bytes through fmt's error path.
func (s Secret) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON encodes the secret as the JSON string of String.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.v == nil {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// MarshalText encodes the secret as String. There is deliberately no
// UnmarshalText: a marshalled configuration read back must not turn
// "[REDACTED]" into a token.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer so that slog handlers log String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
