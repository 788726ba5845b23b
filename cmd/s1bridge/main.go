// Command s1bridge connects SentinelOne consoles to NATS.
//
//	s1bridge run      [--config FILE]   the connector
//	s1bridge demo                       everything on one machine, nothing installed
//	s1bridge emulator [--listen ADDR] [--token T]
//	s1bridge call     [ACTION [JSON]] [--console NAME] [--server URL] [--wait]
//	s1bridge events   [--since D] [--subject S] [--follow] [--stream events|audit]
//	s1bridge check    [--config FILE]
//	s1bridge schema   [--format yaml|json] [--prefix P]
//	s1bridge version
//
// main stays thin: it parses flags, loads configuration, builds the logger
// and runs a package function under signal.NotifyContext.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `s1bridge connects SentinelOne consoles to NATS.

Usage:
  s1bridge run      [--config FILE]      run the connector (default config.yaml)
  s1bridge demo                          embedded NATS + emulator + connector, nothing to install
  s1bridge emulator [--listen ADDR] [--token T]
                                         the SentinelOne API emulator alone
  s1bridge call     ACTION [JSON] [--console NAME] [--server URL] [--timeout D] [--wait] [--id ID]
                                         send one action request and print the reply
                                         (no ACTION: list every action)
  s1bridge events   [--since D|TIME] [--subject S] [--follow] [--stream events|audit]
                                         print the events (or audit records) in the stream
  s1bridge check    [--config FILE]      validate config, reach NATS and every console
  s1bridge schema   [--format yaml|json] [--prefix P]
                                         print the AsyncAPI 3.0 document of every action and event
  s1bridge version                       version, commit and Go version

Every configuration key can be overridden with S1BRIDGE_<KEY PATH>, levels
joined by "__": S1BRIDGE_NATS__URL, S1BRIDGE_CONSOLES__MAIN__API_TOKEN.
`

// exitError carries a process exit status.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "s1bridge:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "emulator":
		return cmdEmulator(ctx, rest, stdout, stderr)
	case "call":
		return cmdCall(ctx, rest, stdout, stderr)
	case "events":
		return cmdEvents(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "schema":
		return cmdSchema(rest, stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(stdout)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "s1bridge: unknown command %q\n\n%s", cmd, usage)
		return exitError{2}
	}
}
