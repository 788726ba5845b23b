package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite comments.json from the source")

// commentSources are the packages (relative to this one) whose types the
// document describes, and their import paths.
var commentSources = map[string]string{
	"../handlers": "github.com/s1bridge/s1bridge/handlers",
	"../events":   "github.com/s1bridge/s1bridge/events",
	".":           "github.com/s1bridge/s1bridge/schema",
}

// extractComments reads the doc comments of the exported types and fields
// of dir's non-test files: a type's first sentence, a field's whole comment
// (the one above it, else the one beside it).
func extractComments(t *testing.T, dir, pkgPath string, out map[string]string) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, af)
	}
	pkg, err := doc.NewFromFiles(fset, parsed, pkgPath, doc.AllDecls|doc.PreserveAST)
	if err != nil {
		t.Fatal(err)
	}
	text := func(g *ast.CommentGroup) string { return strings.Join(strings.Fields(g.Text()), " ") }
	for _, af := range parsed {
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				if !ts.Name.IsExported() && pkgPath != commentSources["."] {
					continue
				}
				c := ts.Doc
				if c == nil && len(gd.Specs) == 1 {
					c = gd.Doc
				}
				if c != nil {
					out[pkgPath+"."+ts.Name.Name] = pkg.Synopsis(c.Text())
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, f := range st.Fields.List {
					c := f.Doc
					if c == nil {
						c = f.Comment
					}
					if c == nil {
						continue
					}
					for _, n := range f.Names {
						if n.IsExported() {
							out[pkgPath+"."+ts.Name.Name+"."+n.Name] = text(c)
						}
					}
				}
			}
		}
	}
}

// TestComments checks that comments.json holds the doc comments of the
// source as it is (run with -update to rewrite it).
func TestComments(t *testing.T) {
	m := map[string]string{}
	for dir, path := range commentSources {
		extractComments(t, dir, path, m)
	}
	want, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("comments.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(commentsJSON, want) {
		t.Errorf("comments.json is stale: run go test ./schema -run TestComments -update (then regenerate docs/asyncapi.yaml)")
	}
}
