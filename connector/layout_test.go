package connector_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/s1bridge/s1bridge/"

// moduleImports returns, for every package of the module (its directory
// below the module root), the module packages its non-test files import.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root := ".."
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg, _ := filepath.Rel(root, filepath.Dir(path))
		pkg = filepath.ToSlash(pkg)
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok && !slices.Contains(out[pkg], rest) {
				out[pkg] = append(out[pkg], rest)
			}
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackageRules keeps the runtime's layout (README "Layout"): the loops
// meet only through NATS subjects, never through each other's code; the
// parts below the connector shell never import it; the handlers know
// SentinelOne, not the runtime.
func TestPackageRules(t *testing.T) {
	imports := moduleImports(t)
	for _, must := range []string{"connector", "connector/ingest", "connector/monitor", "connector/tracking", "connector/store", "connector/lease", "handlers"} {
		if _, ok := imports[must]; !ok {
			t.Fatalf("package %s not found: the test reads the wrong tree", must)
		}
	}
	loops := []string{"connector/ingest", "connector/monitor", "connector/tracking"}
	for pkg, deps := range imports {
		for _, dep := range deps {
			switch {
			case strings.HasPrefix(pkg, "connector/") && dep == "connector":
				t.Errorf("%s imports the connector shell", pkg)
			case pkg == "handlers" && (dep == "connector" || strings.HasPrefix(dep, "connector/")):
				t.Errorf("handlers imports %s: handlers know SentinelOne, not the runtime", dep)
			case slices.Contains(loops, pkg) && slices.Contains(loops, dep):
				t.Errorf("%s imports %s: the loops meet only through NATS subjects", pkg, dep)
			}
		}
	}
}
