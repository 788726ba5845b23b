package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid file.
const minimal = `
consoles:
  main:
    url: https://example.sentinelone.net
    api_token: file-token
`

// load writes yamlText (if any) to config.yaml in a temporary folder and
// loads it with exactly the environment env.
func load(t *testing.T, yamlText string, env ...string) (*Config, error) {
	t.Helper()
	o := Options{Environ: append([]string{}, env...)}
	if yamlText != "" {
		o.File = writeFile(t, t.TempDir(), "config.yaml", yamlText, 0o600)
	}
	return LoadWith(o)
}

func mustLoad(t *testing.T, yamlText string, env ...string) *Config {
	t.Helper()
	c, err := load(t, yamlText, env...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "top-level and nested keys",
			file: minimal,
			env: []string{
				"S1BRIDGE_NATS__URL=nats://10.0.0.1:4222",
				"S1BRIDGE_NATS__EMBEDDED__LISTEN=0.0.0.0:5222",
				"S1BRIDGE_HTTP__LISTEN=:9090",
				"S1BRIDGE_SERVICE__DRY_RUN=true",
				"S1BRIDGE_SERVICE__MAX_IN_FLIGHT=12",
				"S1BRIDGE_STREAMS__EVENTS__MAX_AGE=48h",
				"UNRELATED=1",
			},
			check: func(t *testing.T, c *Config) {
				if c.NATS.URL != "nats://10.0.0.1:4222" || c.NATS.Embedded.Listen != "0.0.0.0:5222" || c.HTTP.Listen != ":9090" {
					t.Errorf("nats/http = %+v %+v", c.NATS, c.HTTP)
				}
				if !c.Service.DryRun || c.Service.MaxInFlight != 12 || c.Streams.Events.MaxAge != 48*time.Hour {
					t.Errorf("service/streams = %+v %+v", c.Service, c.Streams)
				}
				if c.NATS.Embedded.StoreDir != "./data/nats" {
					t.Errorf("sibling of an overridden key lost its default: %q", c.NATS.Embedded.StoreDir)
				}
			},
		},
		{
			name: "console keys, lists and floats",
			file: minimal,
			env: []string{
				"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=env-token",
				"S1BRIDGE_CONSOLES__MAIN__RETRY__WAIT_MAX=1m",
				"S1BRIDGE_CONSOLES__MAIN__RATE_LIMIT__PER_SECOND=0.5",
				"S1BRIDGE_CONSOLES__MAIN__ACTIONS__DENY=agents.disconnect, agents.connect",
				"S1BRIDGE_CONSOLES__MAIN__INGEST__ENABLED=false",
				"S1BRIDGE_CONSOLES__MAIN__INGEST__ALERTS__PAGE_SIZE=250",
			},
			check: func(t *testing.T, c *Config) {
				m := c.Consoles["main"]
				if m.APIToken.Reveal() != "env-token" || m.Retry.WaitMax != time.Minute || m.RateLimit.PerSecond != 0.5 || m.Ingest.Enabled {
					t.Errorf("main = %+v", m)
				}
				// The alerts keys are their own: threats off leaves alerts on.
				if !m.Ingest.Alerts.Enabled || m.Ingest.Alerts.PageSize != 250 {
					t.Errorf("ingest.alerts = %+v, want enabled (default) with page_size 250 from the environment", m.Ingest.Alerts)
				}
				if !slices.Equal(m.Actions.Deny, []string{"agents.disconnect", "agents.connect"}) {
					t.Errorf("deny = %q", m.Actions.Deny)
				}
				if m.Retry.WaitMin != 500*time.Millisecond || m.URL != "https://example.sentinelone.net" {
					t.Errorf("file and default values lost: %+v", m)
				}
			},
		},
		{
			name: "idempotency and audit",
			file: minimal,
			env: []string{
				"S1BRIDGE_SERVICE__IDEMPOTENCY=false",
				"S1BRIDGE_SERVICE__IDEMPOTENCY_WINDOW=2h",
				"S1BRIDGE_STREAMS__AUDIT__ENABLED=false",
				"S1BRIDGE_STREAMS__AUDIT__NAME=WHO_DID_WHAT",
				"S1BRIDGE_STREAMS__AUDIT__MAX_AGE=17520h",
			},
			check: func(t *testing.T, c *Config) {
				if c.Service.Idempotency || c.Service.IdempotencyWindow != 2*time.Hour {
					t.Errorf("service = %+v", c.Service)
				}
				if a := c.Streams.Audit; a.Enabled || a.Name != "WHO_DID_WHAT" || a.MaxAge != 17520*time.Hour || c.AuditStreamName() != "WHO_DID_WHAT" {
					t.Errorf("streams.audit = %+v", a)
				}
				if d := Default(); !d.Service.Idempotency || !d.Streams.Audit.Enabled {
					t.Error("idempotency and audit are not on by default")
				}
			},
		},
		{
			name: "a console only in the environment joins the file's",
			file: minimal,
			env: []string{
				"S1BRIDGE_CONSOLES__EU__URL=https://euce1.sentinelone.net",
				"S1BRIDGE_CONSOLES__EU__API_TOKEN=eu-token",
				"S1BRIDGE_CONSOLES__EU__RETRY__MAX=2",
			},
			check: func(t *testing.T, c *Config) {
				if got := c.ConsoleNames(); !slices.Equal(got, []string{"eu", "main"}) {
					t.Fatalf("consoles = %v", got)
				}
				eu := c.Consoles["eu"]
				want := DefaultConsole()
				want.URL, want.APIToken, want.Retry.Max = "https://euce1.sentinelone.net", NewSecret("eu-token"), 2
				if eu.URL != want.URL || eu.APIToken.Reveal() != "eu-token" || eu.Retry != want.Retry ||
					eu.Ingest != want.Ingest || eu.Monitor != want.Monitor || eu.RateLimit != want.RateLimit || eu.Timeout != want.Timeout {
					t.Errorf("eu = %+v, want the console defaults with url, token and retry.max", eu)
				}
			},
		},
		{
			name: "no file: the environment names the only console",
			env: []string{
				"S1BRIDGE_CONSOLES__EU__URL=emulator",
				"S1BRIDGE_CONSOLES__EU__API_TOKEN=eu-token",
			},
			check: func(t *testing.T, c *Config) {
				if got := c.ConsoleNames(); !slices.Equal(got, []string{"eu"}) {
					t.Errorf("consoles = %v, want only eu (the default main is a placeholder)", got)
				}
			},
		},
		{
			name: "no file: the token of the default console",
			env:  []string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t"},
			check: func(t *testing.T, c *Config) {
				if m := c.Consoles["main"]; m.URL != "https://usea1.sentinelone.net" || m.APIToken.Reveal() != "t" {
					t.Errorf("main = %+v", m)
				}
			},
		},
		{
			name: "console names keep their case; variables match it",
			file: `
consoles:
  EU-West:
    url: https://euce1.sentinelone.net
    api_token: a
  Lab:
    url: emulator
    api_token: b
`,
			env: []string{
				"S1BRIDGE_CONSOLES__EU-WEST__TIMEOUT=5s",
				"S1BRIDGE_CONSOLES__lab__TIMEOUT=7s",
				"S1BRIDGE_CONSOLES__APAC__URL=emulator",
				"S1BRIDGE_CONSOLES__APAC__API_TOKEN=c",
			},
			check: func(t *testing.T, c *Config) {
				if got := c.ConsoleNames(); !slices.Equal(got, []string{"EU-West", "Lab", "apac"}) {
					t.Fatalf("consoles = %v", got)
				}
				if c.Consoles["EU-West"].Timeout != 5*time.Second || c.Consoles["Lab"].Timeout != 7*time.Second {
					t.Errorf("timeouts = %s %s", c.Consoles["EU-West"].Timeout, c.Consoles["Lab"].Timeout)
				}
			},
		},
		{
			name: "a token file in the environment replaces the file's token",
			file: minimal,
			env:  []string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN_FILE=" + writeFile(t, t.TempDir(), "tok", "from-file\n", 0o600)},
			check: func(t *testing.T, c *Config) {
				if got := c.Consoles["main"].APIToken.Reveal(); got != "from-file" {
					t.Errorf("token = %q", got)
				}
			},
		},
		{
			name: "an empty list from the environment",
			file: minimal + "    actions: {deny: [agents.connect]}\n",
			env:  []string{"S1BRIDGE_CONSOLES__MAIN__ACTIONS__DENY="},
			check: func(t *testing.T, c *Config) {
				if d := c.Consoles["main"].Actions.Deny; d == nil || len(d) != 0 {
					t.Errorf("deny = %#v, want empty", d)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustLoad(t, tt.file, tt.env...))
		})
	}
}

func TestFileLayer(t *testing.T) {
	c := mustLoad(t, `
nats:                       # a section with every key commented out keeps its defaults
subjects: {prefix: acme}
consoles:
  lab:
    url: emulator
    api_token: "  padded  "
    retry: {max: 0}
    ingest: {overlap: 0}
    actions:
      deny:
        - agents.disconnect
`)
	if c.NATS != Default().NATS {
		t.Errorf("nats = %+v, want the defaults", c.NATS)
	}
	if got := c.ConsoleNames(); !slices.Equal(got, []string{"lab"}) {
		t.Fatalf("consoles = %v, want only the file's", got)
	}
	lab := c.Consoles["lab"]
	if c.Subjects.Prefix != "acme" || lab.APIToken.Reveal() != "padded" || lab.Retry.Max != 0 || lab.Ingest.Overlap != 0 {
		t.Errorf("config = %+v / %+v", c.Subjects, lab)
	}
	if lab.Retry.WaitMax != 30*time.Second || lab.Ingest.PageSize != 1000 || !lab.Ingest.Enabled || lab.Ingest.Alerts != (IngestAlerts{Enabled: true, PageSize: 500}) {
		t.Errorf("a partial console lost its defaults: %+v", lab)
	}
	if !slices.Equal(lab.Actions.Deny, []string{"agents.disconnect"}) {
		t.Errorf("deny = %q", lab.Actions.Deny)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		want    time.Duration
		wantErr string
	}{
		{name: "go duration", file: "service: {action_timeout: 1h30m}", want: 90 * time.Minute},
		{name: "from env", env: []string{"S1BRIDGE_SERVICE__ACTION_TIMEOUT=250ms"}, want: 250 * time.Millisecond},
		{name: "bare number", file: "service: {action_timeout: 30}", wantErr: "service.action_timeout: 30 is not a Go duration"},
		{name: "float", file: "service: {action_timeout: 1.5}", wantErr: "service.action_timeout: 1.5 is not a Go duration"},
		{name: "days are not Go", file: "service: {action_timeout: 3d}", wantErr: `service.action_timeout: "3d" is not a Go duration`},
		{name: "garbage from env", env: []string{"S1BRIDGE_SERVICE__ACTION_TIMEOUT=soon"}, wantErr: `service.action_timeout (S1BRIDGE_SERVICE__ACTION_TIMEOUT): "soon" is not a Go duration`},
		{name: "a list", file: "service: {action_timeout: [1s]}", wantErr: "service.action_timeout: [1s] is not a Go duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t"}, tt.env...)
			c, err := load(t, tt.file, env...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Service.ActionTimeout != tt.want {
				t.Errorf("action_timeout = %s, want %s", c.Service.ActionTimeout, tt.want)
			}
		})
	}
	// A zero duration may be written as a bare 0.
	c := mustLoad(t, minimal+"    ingest: {overlap: 0}\n")
	if c.Consoles["main"].Ingest.Overlap != 0 {
		t.Error("overlap: 0 not read as zero")
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // substrings of the error, one per problem
	}{
		{name: "top level", file: minimal + "natz: {}\n", want: []string{`natz: unknown key (did you mean "nats"?)`}},
		{name: "transposed letters", file: minimal + "nats: {ulr: nats://x:4222}\n", want: []string{`nats.ulr: unknown key (did you mean "url"?)`}},
		{name: "in a console", file: minimal + "    timout: 5s\n", want: []string{`consoles.main.timout: unknown key (did you mean "timeout"?)`}},
		{name: "deep in a console", file: minimal + "    retry: {maximum: 3}\n", want: []string{"consoles.main.retry.maximum: unknown key"}},
		{name: "no suggestion when far", file: minimal + "zzzzzz: 1\n", want: []string{"zzzzzz: unknown key\n", "zzzzzz: unknown key"}},
		{name: "upper-case key in YAML", file: minimal + "LOG: {level: info}\n", want: []string{"LOG: unknown key"}},
		{name: "from env", env: []string{"S1BRIDGE_NATS__ULR=x"}, want: []string{`nats.ulr (S1BRIDGE_NATS__ULR): unknown key (did you mean "url"?)`}},
		{name: "env in a console", env: []string{"S1BRIDGE_CONSOLES__MAIN__TIMOUT=1s"}, want: []string{"consoles.main.timout (S1BRIDGE_CONSOLES__MAIN__TIMOUT): unknown key"}},
		{name: "env below a value", env: []string{"S1BRIDGE_LOG__LEVEL__X=1"}, want: []string{"log.level (S1BRIDGE_LOG__LEVEL__X): is a value, not a section"}},
		{name: "env with a single underscore", env: []string{"S1BRIDGE_NATS_URL=x"}, want: []string{"nats_url (S1BRIDGE_NATS_URL): unknown key"}},
		{name: "env with an empty level", env: []string{"S1BRIDGE_NATS____URL=x"}, want: []string{"(S1BRIDGE_NATS____URL): not a key path"}},
		{name: "value for a section", file: minimal + "http: 8080\n", want: []string{"http: is a section"}},
		{name: "section for a value", file: minimal + "log: {level: {x: 1}}\n", want: []string{"log.level: is a value, not a section"}},
		{name: "value for a console", env: []string{"S1BRIDGE_CONSOLES__EU=x"}, want: []string{"consoles.eu (S1BRIDGE_CONSOLES__EU): is a section"}},
		{
			name: "all at once, file and env",
			file: minimal + "nats: {ulr: x}\n",
			env:  []string{"S1BRIDGE_HTTP__LISTNE=:1", "S1BRIDGE_CONSOLES__MAIN__INGEST__INTERVALL=1s"},
			want: []string{"nats.ulr: unknown key", "http.listne (S1BRIDGE_HTTP__LISTNE): unknown key", "consoles.main.ingest.intervall (S1BRIDGE_CONSOLES__MAIN__INGEST__INTERVALL): unknown key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t"}, tt.env...)
			_, err := load(t, tt.file, env...)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error()+"\n", w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
		})
	}

	_, err := load(t, minimal+"nats: {ulr: x}\n")
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("errors.Is(err, ErrUnknownKey) = false for %v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "nats.ulr" {
		t.Errorf("errors.As FieldError = %+v", fe)
	}
}

// TestEventsMode loads streams.events.mode, a key of the events stream
// beside those it shares with every stream, from the file and the
// environment.
func TestEventsMode(t *testing.T) {
	if c := mustLoad(t, minimal); c.Streams.Events.Mode != ModeBinary {
		t.Errorf("default mode %q", c.Streams.Events.Mode)
	}
	c := mustLoad(t, minimal+"streams: {events: {mode: structured, max_age: 1h}}\n")
	if c.Streams.Events.Mode != ModeStructured || c.Streams.Events.MaxAge != time.Hour || c.Streams.Events.Storage != StorageFile {
		t.Errorf("file: %+v", c.Streams.Events)
	}
	if c := mustLoad(t, minimal, "S1BRIDGE_STREAMS__EVENTS__MODE=structured"); c.Streams.Events.Mode != ModeStructured {
		t.Errorf("env: %+v", c.Streams.Events)
	}
	for _, tc := range []struct{ file, env, want string }{
		{file: "streams: {events: {mode: cloudevents}}\n", want: `streams.events.mode: "cloudevents" is not one of binary, structured`},
		{env: "S1BRIDGE_STREAMS__EVENTS__MODE=Structured", want: `streams.events.mode (S1BRIDGE_STREAMS__EVENTS__MODE): "Structured" is not one of binary, structured`},
		{file: "streams: {events: {mdoe: binary}}\n", want: `streams.events.mdoe: unknown key (did you mean "mode"?)`},
	} {
		var env []string
		if tc.env != "" {
			env = append(env, tc.env)
		}
		if _, err := load(t, minimal+tc.file, env...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%s: error %v, want %q", tc.file, tc.env, err, tc.want)
		}
	}
}

func TestEnvSameKeyTwice(t *testing.T) {
	_, err := load(t, minimal, "S1BRIDGE_LOG__LEVEL=debug", "S1BRIDGE_log__level=warn")
	if err == nil || !strings.Contains(err.Error(), "log.level (S1BRIDGE_log__level): also set by S1BRIDGE_LOG__LEVEL") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want string
	}{
		{name: "int from env", env: []string{"S1BRIDGE_SERVICE__MAX_IN_FLIGHT=many"}, want: "service.max_in_flight (S1BRIDGE_SERVICE__MAX_IN_FLIGHT): want a whole number"},
		{name: "bool from env", env: []string{"S1BRIDGE_SERVICE__DRY_RUN=perhaps"}, want: "service.dry_run (S1BRIDGE_SERVICE__DRY_RUN): want true or false"},
		{name: "float in a console", env: []string{"S1BRIDGE_CONSOLES__MAIN__RATE_LIMIT__PER_SECOND=fast"}, want: "consoles.main.rate_limit.per_second (S1BRIDGE_CONSOLES__MAIN__RATE_LIMIT__PER_SECOND): want a number"},
		{name: "map for a string", file: minimal + "http: {listen: [a, b]}\n", want: "http.listen: want a string, got a list"},
		{name: "token not a string", file: "consoles: {main: {url: emulator, api_token: 12345}}", want: "consoles.main.api_token: must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=t"}, tt.env...)
			if tt.file != "" && strings.Contains(tt.file, "api_token") {
				env = tt.env
			}
			_, err := load(t, tt.file, env...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "12345") {
				t.Errorf("the error echoes a token: %v", err)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/main.token", "  file-token\n\n", 0o600)
	writeFile(t, dir, "secrets/open.token", "open-token\n", 0o644)
	writeFile(t, dir, "secrets/empty.token", " \n", 0o600)
	if err := os.Mkdir(filepath.Join(dir, "secrets", "dir.token"), 0o700); err != nil {
		t.Fatal(err)
	}
	loadIn := func(t *testing.T, file string, env ...string) (*Config, error) {
		t.Helper()
		path := writeFile(t, dir, "conf/config.yaml", file, 0o600)
		return LoadWith(Options{File: path, Environ: append([]string{}, env...)})
	}
	console := func(tokenFile string) string {
		return "consoles:\n  main:\n    url: emulator\n    api_token_file: " + tokenFile + "\n"
	}

	t.Run("relative to the config file's folder", func(t *testing.T) {
		c, err := loadIn(t, console("../secrets/main.token"))
		if err != nil {
			t.Fatal(err)
		}
		m := c.Consoles["main"]
		if m.APIToken.Reveal() != "file-token" {
			t.Errorf("token = %q, want it read and trimmed", m.APIToken.Reveal())
		}
		if want := filepath.Join(dir, "secrets", "main.token"); m.APITokenFile != want {
			t.Errorf("api_token_file = %q, want %q", m.APITokenFile, want)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("warnings = %q, want none for mode 0600", w)
		}
	})
	t.Run("readable by others warns", func(t *testing.T) {
		c, err := loadIn(t, console("../secrets/open.token"))
		if err != nil {
			t.Fatal(err)
		}
		w := c.Warnings()
		if len(w) != 1 || !strings.HasPrefix(w[0], "consoles.main.api_token_file: ") || !strings.Contains(w[0], "mode 0644") {
			t.Errorf("warnings = %q", w)
		}
		if strings.Contains(strings.Join(w, ""), "open-token") {
			t.Error("a warning shows the token")
		}
	})
	t.Run("absolute from env, no file", func(t *testing.T) {
		c, err := LoadWith(Options{Environ: []string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN_FILE=" + filepath.Join(dir, "secrets", "main.token")}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Consoles["main"].APIToken.Reveal() != "file-token" {
			t.Error("token not read")
		}
	})

	errs := []struct {
		name string
		file string
		env  []string
		want string
	}{
		{name: "missing", file: console("../secrets/none.token"), want: "consoles.main.api_token_file: open " + filepath.Join(dir, "secrets", "none.token") + ": no such file"},
		{name: "a directory", file: console("../secrets/dir.token"), want: "consoles.main.api_token_file: " + filepath.Join(dir, "secrets", "dir.token") + " is not a regular file"},
		{name: "empty", file: console("../secrets/empty.token"), want: "consoles.main.api_token_file: " + filepath.Join(dir, "secrets", "empty.token") + " is empty"},
		{name: "both in the file", file: console("../secrets/main.token") + "    api_token: inline\n", want: "consoles.main.api_token_file: set either api_token or api_token_file, not both"},
		{
			name: "both in the environment",
			file: minimal,
			env:  []string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=x", "S1BRIDGE_CONSOLES__MAIN__API_TOKEN_FILE=/t"},
			want: "consoles.main.api_token_file (S1BRIDGE_CONSOLES__MAIN__API_TOKEN, S1BRIDGE_CONSOLES__MAIN__API_TOKEN_FILE): set either",
		},
		{name: "neither", file: "consoles: {main: {url: emulator}}", want: "consoles.main.api_token: required (or api_token_file)"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIn(t, tt.file, tt.env...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNATSFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nats.creds", "creds", 0o640)
	writeFile(t, dir, "ca.pem", "ca", 0o644)
	path := writeFile(t, dir, "config.yaml", minimal+`
nats:
  creds_file: nats.creds
  tls: {ca_file: ca.pem, cert_file: missing.pem, key_file: nats.creds}
`, 0o600)
	_, err := LoadWith(Options{File: path, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "nats.tls.cert_file: open "+filepath.Join(dir, "missing.pem")) {
		t.Fatalf("err = %v, want the missing cert named", err)
	}
	if strings.Contains(err.Error(), "ca_file") || strings.Contains(err.Error(), "creds_file") {
		t.Errorf("readable files reported: %v", err)
	}

	writeFile(t, dir, "cert.pem", "cert", 0o644)
	path = writeFile(t, dir, "config.yaml", minimal+`
nats:
  creds_file: nats.creds
  tls: {ca_file: ca.pem, cert_file: cert.pem, key_file: nats.creds}
`, 0o600)
	c, err := LoadWith(Options{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.CredsFile != filepath.Join(dir, "nats.creds") || c.NATS.TLS.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("paths not resolved against the config folder: %+v", c.NATS)
	}
	if w := c.Warnings(); len(w) != 2 || !strings.HasPrefix(w[0], "nats.creds_file: ") || !strings.HasPrefix(w[1], "nats.tls.key_file: ") {
		t.Errorf("warnings = %q, want the group-readable creds and key", w)
	}
}

func TestFileErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: err = %v", err)
	}
	path := writeFile(t, t.TempDir(), "bad.yaml", "nats: [unclosed\n", 0o600)
	_, err = LoadWith(Options{File: path, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("bad YAML: err = %v, want the file named", err)
	}
	path = writeFile(t, t.TempDir(), "dup.yaml", "log: {level: info}\nlog: {level: debug}\n", 0o600)
	if _, err = LoadWith(Options{File: path, Environ: []string{}}); err == nil {
		t.Error("a duplicated key loaded")
	}
}

// TestAllProblemsAtOnce checks that Load reports every problem, sorted by key,
// one per line, rather than stopping at the first.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := load(t, `
nats: {ulr: x}
service: {max_in_flight: 0, action_timeout: soon}
consoles:
  main: {url: "ftp://x", api_token: t, ingest: {page_size: 5000}}
log: {level: loud}
`, "S1BRIDGE_HTTP__LISTEN=nowhere")
	if err == nil {
		t.Fatal("loaded")
	}
	var keys []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		key, _, _ := strings.Cut(line, ":")
		key, _, _ = strings.Cut(key, " (")
		keys = append(keys, key)
	}
	want := []string{"consoles.main.ingest.page_size", "consoles.main.url", "http.listen", "log.level", "nats.ulr", "service.action_timeout", "service.max_in_flight"}
	if !slices.Equal(keys, want) {
		t.Errorf("problems for %q, want %q:\n%v", keys, want, err)
	}
}

// TestMaxTargets: consoles.<name>.actions.max_targets defaults to 100 for a
// console the file names without it, is set from the file or the
// environment, and a value out of 1..5000 is refused naming the key.
func TestMaxTargets(t *testing.T) {
	if c := mustLoad(t, minimal); c.Consoles["main"].Actions.MaxTargets != DefaultMaxTargets {
		t.Errorf("default %d, want %d", c.Consoles["main"].Actions.MaxTargets, DefaultMaxTargets)
	}
	file := minimal + "    actions: {max_targets: 2500}\n"
	if c := mustLoad(t, file); c.Consoles["main"].Actions.MaxTargets != 2500 {
		t.Errorf("from the file: %d", c.Consoles["main"].Actions.MaxTargets)
	}
	if c := mustLoad(t, file, "S1BRIDGE_CONSOLES__MAIN__ACTIONS__MAX_TARGETS=7"); c.Consoles["main"].Actions.MaxTargets != 7 {
		t.Errorf("from the environment: %d", c.Consoles["main"].Actions.MaxTargets)
	}
	for _, bad := range []string{"0", "5001", "-3"} {
		_, err := load(t, minimal+"    actions: {max_targets: "+bad+"}\n")
		if err == nil || !strings.Contains(err.Error(), "consoles.main.actions.max_targets: "+bad+" is out of range 1 to 5000") {
			t.Errorf("max_targets %s: %v", bad, err)
		}
	}
	if _, err := load(t, minimal+"    actions: {max_targets: many}\n"); err == nil || !strings.Contains(err.Error(), "consoles.main.actions.max_targets") {
		t.Errorf("max_targets many: %v", err)
	}
}
