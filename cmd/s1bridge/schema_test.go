package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// committedDoc is the AsyncAPI document in the repository (DESIGN.md §15).
const committedDoc = "../../docs/asyncapi.yaml"

// TestSchemaCommitted fails when docs/asyncapi.yaml is not what
// `s1bridge schema` prints.
func TestSchemaCommitted(t *testing.T) {
	out, errOut, code := runCmd(t, "schema")
	if code != 0 {
		t.Fatalf("s1bridge schema: exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile(committedDoc)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("docs/asyncapi.yaml differs from `s1bridge schema`; regenerate it: go run ./cmd/s1bridge schema > docs/asyncapi.yaml")
	}
}

func TestSchemaFormats(t *testing.T) {
	y, _, code := runCmd(t, "schema", "--prefix", "acme")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	j, _, code := runCmd(t, "schema", "--format", "json", "--prefix", "acme")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The two formats hold the same document.
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal([]byte(y), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(j), &fromJSON); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromYAML)
	b, _ := json.Marshal(fromJSON)
	if string(a) != string(b) {
		t.Error("the yaml and json documents differ")
	}
	if !strings.Contains(y, "ACME_EVENTS") || !strings.Contains(y, "acme.*.audit.>") || strings.Contains(y, "S1_EVENTS") {
		t.Error("--prefix acme does not name the streams ACME_EVENTS and ACME_AUDIT")
	}
}

func TestSchemaBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schema", "--format", "xml"}, `--format "xml" is not yaml or json`},
		{[]string{"schema", "--prefix", "a.b"}, `--prefix "a.b" is not one NATS subject token`},
		{[]string{"schema", "--prefix", ""}, `--prefix "" is not one NATS subject token`},
		{[]string{"schema", "extra"}, `unexpected argument "extra"`},
		{[]string{"schema", "--colour"}, "flag provided but not defined: -colour"},
	} {
		out, errOut, code := runCmd(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, errOut, _ := runCmd(t); !strings.Contains(errOut, "s1bridge schema") {
		t.Error("usage does not list the schema command")
	}
}
