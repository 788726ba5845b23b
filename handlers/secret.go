package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
)

// Redacted is what a Secret shows instead of its value.
const Redacted = "[REDACTED]"

// Secret is a request field whose value must never be shown: a fetch-file
// password. It decodes from a JSON string like a string, but every way of
// showing it gives Redacted: JSON encoding (so a dry-run reply, an audit
// record or a log in JSON format never holds it), fmt with any verb
// (%v, %+v and %#v of a request struct included), and slog. The handler
// takes the value with Reveal, only to hand it to the SentinelOne client,
// which redacts it from its own logs and errors (sentinelone.Client).
//
// A request that could not be decoded has no Secret yet: Action.RedactData
// redacts the raw data of such a request (for a refused-request audit
// record or log).
type Secret string

// Reveal returns the value. Call it only to pass the value on to SentinelOne.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether no value was given.
func (s Secret) IsZero() bool { return s == "" }

// String returns Redacted.
func (Secret) String() string { return Redacted }

// GoString returns Redacted.
func (Secret) GoString() string { return Redacted }

// Format writes Redacted whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// LogValue returns Redacted.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON returns Redacted as a JSON string.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText returns Redacted.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a JSON string.
func (s *Secret) UnmarshalJSON(data []byte) error {
	var v string
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = Secret(v)
	return nil
}

var secretType = reflect.TypeFor[Secret]()

// secretTree maps the JSON names of a request's members that hold secrets:
// nil for a Secret, the nested tree for an object with Secrets inside.
type secretTree map[string]secretTree

// secretsOf returns the secret tree of t, embedded structs' fields included.
func secretsOf(t reflect.Type) secretTree {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	out := secretTree{}
	for name, ft := range jsonFields(t) {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == secretType:
			out[name] = nil
		case ft.Kind() == reflect.Struct:
			if sub := secretsOf(ft); len(sub) > 0 {
				out[name] = sub
			}
		}
	}
	return out
}

// HasSecrets reports whether the action's request has Secret fields.
func (a Action) HasSecrets() bool { return len(secretsOf(reflect.TypeOf(a.Request))) > 0 }

// RedactData returns data, a request's raw JSON, with the value of every
// member that names a Secret field of the action's request (in any letter
// case, since a refused request may have spelled it so) replaced by
// Redacted, for logging or auditing a request that may not have decoded.
// Data of an action without secrets is returned as is; data that is not a
// JSON object, for an action with secrets, gives the JSON string Redacted
// whole, since its secret cannot be told apart.
func (a Action) RedactData(data []byte) []byte {
	secrets := secretsOf(reflect.TypeOf(a.Request))
	if len(secrets) == 0 {
		return data
	}
	if out, ok := redactObject(data, secrets); ok {
		return out
	}
	return redactedJSON
}

var redactedJSON, _ = json.Marshal(Redacted)

// redactObject redacts the secrets of one JSON object; false when data is
// not one.
func redactObject(data []byte, secrets secretTree) ([]byte, bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return data, true
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, false
	}
	for name, raw := range members {
		for secret, sub := range secrets {
			if !strings.EqualFold(name, secret) {
				continue
			}
			members[name] = redactedJSON
			if sub != nil {
				if r, ok := redactObject(raw, sub); ok {
					members[name] = r
				}
			}
		}
	}
	// Keys come out sorted; a member given twice keeps one (redacted) value.
	b, err := json.Marshal(members)
	return b, err == nil
}
