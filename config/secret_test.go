package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecret(t *testing.T) {
	s := NewSecret("tok")
	if s.Reveal() != "tok" || s.IsZero() {
		t.Errorf("Reveal = %q, IsZero = %v", s.Reveal(), s.IsZero())
	}
	if z := NewSecret(""); !z.IsZero() || z != (Secret{}) || z.String() != "" || z.Reveal() != "" {
		t.Errorf("NewSecret(\"\") = %v, want the unset Secret", z)
	}
	for verb, want := range map[string]string{"%v": Redacted, "%s": Redacted, "%q": Redacted, "%#v": Redacted, "%d": Redacted, "%x": Redacted} {
		if got := fmt.Sprintf(verb, s); got != want {
			t.Errorf("Sprintf(%s) = %q, want %q", verb, got, want)
		}
	}
	if got := fmt.Sprint(Secret{}); got != "" {
		t.Errorf("unset secret prints %q", got)
	}
	if b, _ := json.Marshal(Secret{}); string(b) != `""` {
		t.Errorf("unset secret marshals to %s", b)
	}
}

// TestConfigNeverShowsTokens prints a whole Config every way a program
// might and checks that no secret, nor its hex form, appears.
func TestConfigNeverShowsTokens(t *testing.T) {
	c := valid()
	secrets := []string{"console-token-1", "console-token-2", "nats-token-3", "nats-password-4"}
	c.Consoles["main"] = withToken(c.Consoles["main"], secrets[0])
	c.Consoles["eu"] = withToken(c.Consoles["main"], secrets[1])
	c.NATS.Token = NewSecret(secrets[2])
	c.NATS.Password = NewSecret(secrets[3])

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c), fmt.Sprintf(verb, c.Consoles))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j), string(y))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c, "console", c.Consoles["main"], "token", c.NATS.Token)
		l.Info("value", slog.Any("config", *c))
	}
	out = append(out, logs.String())

	all := strings.Join(out, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) || strings.Contains(strings.ToLower(all), hex.EncodeToString([]byte(s))) {
			t.Errorf("%q shows in the output:\n%s", s, all)
		}
	}
	if !strings.Contains(string(j), Redacted) || !strings.Contains(logs.String(), Redacted) {
		t.Errorf("expected %s in the JSON and the logs:\n%s\n%s", Redacted, j, logs.String())
	}
}
