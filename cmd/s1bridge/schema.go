package main

import (
	"fmt"
	"io"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/subjects"
)

// cmdSchema prints the AsyncAPI document of every action and event.
func cmdSchema(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schema", stderr)
	format := fs.String("format", "yaml", "output format: yaml or json")
	prefix := fs.String("prefix", schema.DefaultPrefix, "subjects.prefix the document describes (the default of its {prefix} parameter)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "s1bridge schema: unexpected argument %q (flags: --format yaml|json, --prefix P)\n", fs.Arg(0))
		return exitError{2}
	}
	if !subjects.ValidToken(*prefix) {
		fmt.Fprintf(stderr, "s1bridge schema: --prefix %q is not one NATS subject token of [A-Za-z0-9_-]\n", *prefix)
		return exitError{2}
	}
	o := schema.Options{Version: connector.Version, Prefix: *prefix}
	var out []byte
	var err error
	switch *format {
	case "yaml":
		out, err = schema.YAML(o)
	case "json":
		out, err = schema.JSON(o)
	default:
		fmt.Fprintf(stderr, "s1bridge schema: --format %q is not yaml or json\n", *format)
		return exitError{2}
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
