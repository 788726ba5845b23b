package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const repoConfig = "../config.yaml"

// TestConfigYAMLIsDefault keeps config.yaml and Default from drifting apart:
// the documented file must load to exactly the defaults in code.
func TestConfigYAMLIsDefault(t *testing.T) {
	got, err := LoadWith(Options{File: repoConfig, Environ: []string{"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=tok"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	main := want.Consoles["main"]
	main.APIToken = NewSecret("tok")
	want.Consoles["main"] = main
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.yaml loads to\n%+v\nbut Default() is\n%+v", got, want)
	}
	if got.Consoles["main"].APIToken.Reveal() != "tok" {
		t.Error("token from the environment not applied")
	}
}

// TestConfigYAMLDocumentsEveryKey asserts that config.yaml spells out every
// key of the struct tree, each leaf with a comment.
func TestConfigYAMLDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				flatten(joinKey(prefix, k), sub)
			} else {
				inFile = append(inFile, joinKey(prefix, k))
			}
		}
	}
	flatten("", raw)
	slices.Sort(inFile)

	var inCode []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for k, ft := range fieldsOf(typ) {
			switch {
			case isLeaf(ft):
				inCode = append(inCode, joinKey(prefix, k))
			case ft.Kind() == reflect.Map:
				walk(joinKey(prefix, k)+".main", ft.Elem())
			default:
				walk(joinKey(prefix, k), ft)
			}
		}
	}
	walk("", configType)
	slices.Sort(inCode)
	if !slices.Equal(inFile, inCode) {
		t.Errorf("config.yaml keys differ from the Config struct:\nfile: %v\ncode: %v", inFile, inCode)
	}

	leaf := regexp.MustCompile(`^\s*[a-z_]+:\s*[^\s#]`)
	for i, line := range strings.Split(string(b), "\n") {
		if leaf.MatchString(line) && !strings.Contains(line, " # ") {
			t.Errorf("config.yaml:%d: key without a comment: %s", i+1, line)
		}
	}
}

func TestDefaultNeedsAToken(t *testing.T) {
	err := Default().Validate()
	if err == nil || !strings.Contains(err.Error(), "consoles.main.api_token: required") {
		t.Fatalf("Default().Validate() = %v, want the missing token named", err)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("Default() has problems besides the token: %v", err)
	}
}

func TestDemo(t *testing.T) {
	if err := Demo().Validate(); err != nil {
		t.Fatalf("Demo() does not validate: %v", err)
	}
	d := Demo()
	main := d.Consoles["main"]
	switch {
	case d.NATS.URL != "":
		t.Errorf("nats.url = %q, want embedded", d.NATS.URL)
	case d.NATS.Embedded.Listen != "127.0.0.1:4222":
		t.Errorf("embedded listen = %q", d.NATS.Embedded.Listen)
	case main.URL != Emulator || main.APIToken.Reveal() != DemoToken:
		t.Errorf("main console = %+v, want the emulator with the demo token", main)
	case main.Ingest.Interval != 5*time.Second || main.Monitor.PollInterval != 5*time.Second:
		t.Errorf("demo polls every %s / %s, want 5s", main.Ingest.Interval, main.Monitor.PollInterval)
	}

	base := Demo()
	got, err := LoadWith(Options{Base: base, Environ: []string{
		"S1BRIDGE_NATS__EMBEDDED__LISTEN=127.0.0.1:14222",
		"S1BRIDGE_HTTP__LISTEN=127.0.0.1:18080",
		"S1BRIDGE_CONSOLES__MAIN__INGEST__INTERVAL=1s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got.NATS.Embedded.Listen != "127.0.0.1:14222" || got.HTTP.Listen != "127.0.0.1:18080" {
		t.Errorf("overrides not applied: %+v %+v", got.NATS.Embedded, got.HTTP)
	}
	if c := got.Consoles["main"]; c.URL != Emulator || c.APIToken.Reveal() != DemoToken || c.Ingest.Interval != time.Second || c.Monitor.PollInterval != 5*time.Second {
		t.Errorf("main after override = %+v, want the demo console with interval 1s", c)
	}
	if !reflect.DeepEqual(base, Demo()) {
		t.Error("LoadWith modified its Base")
	}
}

func TestSecrets(t *testing.T) {
	c := Default()
	c.Consoles["main"] = withToken(c.Consoles["main"], "tok-main")
	c.Consoles["eu"] = withToken(c.Consoles["main"], "tok-eu")
	c.Consoles["dup"] = withToken(c.Consoles["main"], "tok-eu")
	c.NATS.Token = NewSecret("nats-token")
	c.NATS.Password = NewSecret("nats-pass")
	c.NATS.URL = "nats://u:url-pass@a:4222, nats://url-token@b:4222,nats://c:4222"
	got := c.Secrets()
	slices.Sort(got)
	want := []string{"nats-pass", "nats-token", "tok-eu", "tok-main", "url-pass", "url-token"}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets() = %v, want %v", got, want)
	}
	if s := Default().Secrets(); len(s) != 0 {
		t.Errorf("Default().Secrets() = %v, want none", s)
	}
}

func TestConsoleNamesSorted(t *testing.T) {
	c := Default()
	c.Consoles["b"], c.Consoles["A"] = DefaultConsole(), DefaultConsole()
	if got := c.ConsoleNames(); !slices.Equal(got, []string{"A", "b", "main"}) {
		t.Errorf("ConsoleNames() = %v", got)
	}
}

func withToken(c Console, tok string) Console {
	c.APIToken = NewSecret(tok)
	return c
}

// writeFile writes content to name under dir with mode and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}
