package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmittmann/tint"

	"github.com/s1bridge/s1bridge/config"
)

const token = "tok-3f9a1c_SECRET" // a console API token

// stringer prints the token through fmt.Stringer.
type stringer struct{}

func (stringer) String() string { return "stringer " + token }

// valuer resolves to the token through slog.LogValuer.
type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("valuer " + token) }

// jsonOnly shows the token only in its JSON form.
type jsonOnly struct{}

func (jsonOnly) MarshalJSON() ([]byte, error) { return []byte(`{"t":"` + token + `"}`), nil }

type request struct {
	URL     string
	Headers map[string]string
}

// logEverything logs token every way a program might.
func logEverything(l *slog.Logger) {
	err := fmt.Errorf("GET /threats: 401 for token %s: %w", token, errors.New("unauthorized"))
	l.Debug("debug line with " + token)
	l.Info("message holds "+token, "keep", "keep-me")
	l.Info("attrs", "plain", token, "prefixed", "Bearer "+token, token, "as a key")
	l.Error("errors", "err", err, tint.Err(err), slog.Any("wrapped", fmt.Errorf("outer: %w", err)))
	l.Info("groups", slog.Group("upstream", slog.String("auth", "ApiToken "+token), slog.Group("deeper", "t", token)))
	l.Info("any", "struct", request{URL: "https://x/?token=" + token, Headers: map[string]string{"Authorization": "ApiToken " + token}},
		"ptr", &request{URL: token}, "bytes", []byte(token), "slice", []string{"a", token}, "stringer", stringer{},
		"valuer", valuer{}, "json", jsonOnly{}, "map", map[string]any{"k": token})
	l.With("with", token).WithGroup("group-"+token).Info("derived", "inner", token)
	l.Info("printf " + fmt.Sprintf("%v %q %s", token, token, []string{token}))
}

func TestRedaction(t *testing.T) {
	for _, format := range []string{config.FormatText, config.FormatJSON} {
		for _, color := range []bool{false, true} {
			if format == config.FormatJSON && color {
				continue
			}
			t.Run(fmt.Sprintf("%s color=%v", format, color), func(t *testing.T) {
				var buf bytes.Buffer
				h, err := NewHandler(&buf, config.Log{Level: config.LevelDebug, Format: format}, color)
				if err != nil {
					t.Fatal(err)
				}
				logEverything(slog.New(Redact(h, []string{"", token, "other-secret"})))
				out := buf.String()
				if strings.Contains(out, token) || strings.Contains(out, token[4:]) {
					t.Errorf("the token shows in the log:\n%s", out)
				}
				for _, want := range []string{"debug line with " + config.Redacted, "keep-me", "Bearer " + config.Redacted, "unauthorized", "derived"} {
					if !strings.Contains(out, want) {
						t.Errorf("log lacks %q:\n%s", want, out)
					}
				}
				if n := strings.Count(out, "\n"); n != 8 {
					t.Errorf("%d lines, want 8:\n%s", n, out)
				}
				if format == config.FormatJSON {
					for line := range strings.Lines(out) {
						if !json.Valid([]byte(line)) {
							t.Errorf("not JSON: %s", line)
						}
					}
				}
			})
		}
	}
}

// TestRedactionControl checks that the logging above would leak without
// Redact, so TestRedaction cannot pass by accident.
func TestRedactionControl(t *testing.T) {
	var buf bytes.Buffer
	h, err := NewHandler(&buf, config.Log{Level: config.LevelDebug, Format: config.FormatJSON}, false)
	if err != nil {
		t.Fatal(err)
	}
	logEverything(slog.New(h))
	if n := strings.Count(buf.String(), token); n < 20 {
		t.Errorf("the token shows %d times without redaction, the test logs too little", n)
	}
}

func TestRedactSpecialCharacters(t *testing.T) {
	secret := `p"a\ss<w>&rd`
	var buf bytes.Buffer
	l := slog.New(Redact(slog.NewJSONHandler(&buf, nil), []string{secret}))
	l.Info(secret, "v", secret, "s", struct{ P string }{secret}, "q", fmt.Sprintf("%q", secret))
	out := buf.String()
	for _, form := range []string{secret, `p\"a\\ss`, `\u003cw\u003e`} {
		if strings.Contains(out, form) {
			t.Errorf("%q shows in %s", form, out)
		}
	}
}

// TestRedactLongestFirst: a secret containing another is replaced whole.
func TestRedactLongestFirst(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(Redact(slog.NewTextHandler(&buf, nil), []string{"abc", "abcdef"}))
	l.Info("x abcdef y")
	if !strings.Contains(buf.String(), `msg="x [REDACTED] y"`) {
		t.Errorf("got %s", buf.String())
	}
}

func TestRedactWithoutSecretsIsFree(t *testing.T) {
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	for _, secrets := range [][]string{nil, {}, {""}} {
		if got := Redact(h, secrets); got != h {
			t.Errorf("Redact(h, %q) wrapped the handler", secrets)
		}
	}
}

func TestCleanRecordsPassUnchanged(t *testing.T) {
	var buf bytes.Buffer
	h := Redact(tint.NewTextHandler(&buf, &tint.Options{NoColor: false}), []string{token})
	slog.New(h).Info("clean", tint.Err(errors.New("boom")))
	// tint.Err colours the attribute red (SGR 91); the redactor must not
	// resolve that away when there is nothing to hide.
	if !strings.Contains(buf.String(), "\x1b[2;91merr=\x1b[22mboom") {
		t.Errorf("got %q", buf.String())
	}
}

func TestLevels(t *testing.T) {
	for _, tt := range []struct {
		level string
		want  []string
	}{
		{config.LevelDebug, []string{"d", "i", "w", "e"}},
		{config.LevelInfo, []string{"i", "w", "e"}},
		{config.LevelWarn, []string{"w", "e"}},
		{config.LevelError, []string{"e"}},
	} {
		var buf bytes.Buffer
		h, err := NewHandler(&buf, config.Log{Level: tt.level, Format: config.FormatJSON}, false)
		if err != nil {
			t.Fatal(err)
		}
		l := slog.New(h)
		l.Debug("d")
		l.Info("i")
		l.Warn("w")
		l.Error("e")
		var got []string
		for line := range strings.Lines(buf.String()) {
			var rec struct{ Msg string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			got = append(got, rec.Msg)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("level %s logged %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := NewHandler(&bytes.Buffer{}, config.Log{Level: "loud", Format: config.FormatText}, false); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("bad level: %v", err)
	}
	if _, err := NewHandler(&bytes.Buffer{}, config.Log{Level: "info", Format: "xml"}, false); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("bad format: %v", err)
	}
	_, _, err := New(config.Log{Level: "info", Format: "text", Output: filepath.Join(t.TempDir(), "no", "such", "dir.log")}, nil)
	if err == nil || !strings.Contains(err.Error(), "log.output") {
		t.Errorf("bad output: %v", err)
	}
}

func TestFileOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s1bridge.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{config.FormatJSON, config.FormatText} {
		l, closer, err := New(config.Log{Level: config.LevelInfo, Format: format, Output: path}, []string{token})
		if err != nil {
			t.Fatal(err)
		}
		l.Info("to a file", "format", format, "token", token)
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "earlier line" {
		t.Fatalf("file holds %q, want the earlier line and two more", lines)
	}
	if !json.Valid([]byte(lines[1])) || !strings.Contains(lines[1], `"format":"json"`) {
		t.Errorf("json line = %s", lines[1])
	}
	if strings.Contains(lines[2], "\x1b[") || !strings.Contains(lines[2], "format=text") {
		t.Errorf("text line to a file must not be coloured: %q", lines[2])
	}
	if strings.Contains(string(b), token) {
		t.Error("the token reached the file")
	}

	fresh := filepath.Join(t.TempDir(), "new.log")
	_, closer, err := New(config.Log{Level: config.LevelInfo, Format: config.FormatJSON, Output: fresh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new log file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestStderrOutput(t *testing.T) {
	l, closer, err := New(config.Log{Level: config.LevelInfo, Format: config.FormatText, Output: config.OutputStderr}, nil)
	if err != nil || l == nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the logger of stderr must leave stderr open.
	if _, err := os.Stderr.Stat(); err != nil {
		t.Errorf("stderr closed: %v", err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is a terminal")
	}
}

func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		secrets []string
	}{
		{"no secrets", nil},
		{"3 secrets", []string{token, "nats-password", "another-console-token"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := slog.NewJSONHandler(discard{}, nil)
			l := slog.New(Redact(h, bc.secrets))
			err := errors.New("upstream said no")
			b.ReportAllocs()
			for b.Loop() {
				l.Info("action done", "console", "main", "action", "agents.list", "items", 100, "err", err)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
