package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/cli"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// Time bounds of `s1bridge call`: the reply, and the reply and the outcome
// together with --wait (a monitor or a tracked action may take minutes).
const (
	defaultCallTimeout = 35 * time.Second
	defaultWaitTimeout = 10 * time.Minute
)

const callUsage = `usage: s1bridge call ACTION [JSON] [--console NAME] [--server URL] [--timeout D] [--wait] [--id ID]

Sends one action request as a CloudEvent and prints the reply's data (exit 1 on
an error reply). JSON is the request, "-" reads it from stdin. --wait waits for
the outcome event of the actions marked [--wait] and prints it too.
`

// natsFlags are the flags of the commands that talk to a running s1bridge.
type natsFlags struct{ server, creds, prefix *string }

// defaultServer is where call and events look for NATS, as the demo's
// embedded server listens there by default.
const defaultServer = "nats://127.0.0.1:4222"

func addNATSFlags(fs *flag.FlagSet) natsFlags {
	return natsFlags{
		server: fs.String("server", envOr("NATS_URL", defaultServer), "NATS server URL (default $NATS_URL or "+defaultServer+")"),
		creds:  fs.String("creds", os.Getenv("NATS_CREDS"), "NATS credentials file (default $NATS_CREDS)"),
		prefix: fs.String("prefix", "s1", "subjects.prefix of the deployment"),
	}
}

// check validates the flags, naming the one at fault.
func (n natsFlags) check(cmd string) (subjects.Subjects, error) {
	if strings.TrimSpace(*n.server) == "" {
		return subjects.Subjects{}, usageErr(cmd, "--server is empty: give a NATS URL such as nats://127.0.0.1:4222")
	}
	sub, err := subjects.New(*n.prefix)
	if err != nil {
		return subjects.Subjects{}, usageErr(cmd, "--prefix %q is not one NATS subject token of [A-Za-z0-9_-]", *n.prefix)
	}
	return sub, nil
}

func (n natsFlags) connect(name string) (*nats.Conn, error) {
	return connector.Connect(connector.NATSOptions{URL: *n.server, Name: name, CredsFile: *n.creds}, "", slog.New(slog.DiscardHandler))
}

// usageError is a command line s1bridge refuses: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErr(cmd, format string, args ...any) error {
	return usageError{"s1bridge " + cmd + ": " + fmt.Sprintf(format, args...)}
}

// exitFor prints err and returns exit status 2 when it is a usageError;
// any other error is returned as it is.
func exitFor(err error, stderr io.Writer) error {
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, ue.msg)
		return exitError{2}
	}
	return err
}

func cmdCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("call", stderr)
	nf := addNATSFlags(fs)
	console := fs.String("console", "main", "console name")
	timeout := fs.Duration("timeout", defaultCallTimeout, "how long to wait for the reply, and with --wait for the outcome too (default 35s, with --wait 10m); the request's expirytime")
	wait := fs.Bool("wait", false, "after the reply, wait for the outcome event (threats.monitor, tracked actions) and print it")
	id := fs.String("id", "", "the request's CloudEvents id (default: a new one); the same id again is the same request")
	fs.Usage = func() { fmt.Fprint(stderr, callUsage+"\nflags:\n"); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitError{2}
	}
	if len(pos) == 0 {
		fmt.Fprint(stdout, callUsage+"\nactions:\n")
		return cli.ListActions(stdout, handlers.All())
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if *wait && !timeoutSet {
		*timeout = defaultWaitTimeout
	}
	req, err := callRequest(pos, *console, *timeout, *id, *wait)
	if err != nil {
		return exitFor(err, stderr)
	}
	sub, err := nf.check("call")
	if err != nil {
		return exitFor(err, stderr)
	}
	nc, err := nf.connect("s1bridge-call")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if req.id == "" {
		req.id = ce.NewID()
	}
	reply, err := connector.CallWithID(ctx, nc, sub.Action(*console, req.action.Name), req.action.Name, cliSource, req.id, req.data)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, reply.Event.Data, "", "  ") != nil {
		out.Write(reply.Event.Data)
	}
	out.WriteByte('\n')
	if reply.Err != nil {
		stderr.Write(out.Bytes())
		fmt.Fprintf(stderr, "s1bridge: %s failed: %d %s\n", req.action.Name, reply.Err.Code, reply.Err.Message)
		return exitError{1}
	}
	if _, err := stdout.Write(out.Bytes()); err != nil || !*wait {
		return err
	}
	return waitOutcome(ctx, nc, sub, reply.Event.Data, *timeout, stdout, stderr)
}

// cliSource is the CloudEvents source of the requests s1bridge call sends.
const cliSource = "/s1bridge/cli"

// callReq is a request the command line describes, checked.
type callReq struct {
	action handlers.Action
	data   []byte
	id     string
}

// callRequest checks the positional arguments and the flags of a call:
// a known action (or the nearest name), a JSON object (or where it goes
// wrong), a console and an id that can be sent, a positive timeout, and
// --wait only for an action that has an outcome to wait for.
func callRequest(pos []string, console string, timeout time.Duration, id string, wait bool) (callReq, error) {
	if len(pos) > 2 {
		return callReq{}, usageErr("call", "too many arguments (%d): ACTION [JSON]; quote the JSON as one argument: '{\"limit\":2}'", len(pos))
	}
	a, ok := handlers.Lookup(pos[0])
	if !ok {
		msg := fmt.Sprintf("unknown action %q", pos[0])
		if near := cli.Nearest(pos[0], handlers.Names()); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		return callReq{}, usageErr("call", "%s (s1bridge call with no action lists them all)", msg)
	}
	r := callReq{action: a, data: []byte("{}"), id: id}
	if len(pos) == 2 {
		r.data = []byte(pos[1])
		if pos[1] == "-" {
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return callReq{}, err
			}
			r.data = b
		}
		if err := cli.CheckJSON(r.data); err != nil {
			return callReq{}, usageErr("call", "the JSON request is malformed at %v", err)
		}
	}
	switch {
	case !subjects.ValidToken(console):
		return callReq{}, usageErr("call", "--console %q is not a console name (one NATS subject token of [A-Za-z0-9_-])", console)
	case timeout <= 0:
		return callReq{}, usageErr("call", "--timeout %s: give a positive duration such as 30s or 5m", timeout)
	case id != "" && strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return callReq{}, usageErr("call", "--id %q: a CloudEvents id here is printable, without spaces", id)
	case wait && !cli.HasOutcome(a):
		var with []string
		for _, x := range handlers.All() {
			if cli.HasOutcome(x) {
				with = append(with, x.Name)
			}
		}
		return callReq{}, usageErr("call", "--wait: %s publishes no outcome event to wait for (these do: %s)", a.Name, strings.Join(with, ", "))
	}
	return r, nil
}

// waitOutcome waits, until ctx ends, for the outcome event on the subject
// a reply names, and prints it. A failed or timed-out outcome exits 1.
func waitOutcome(ctx context.Context, nc *nats.Conn, sub subjects.Subjects, data []byte, timeout time.Duration, stdout, stderr io.Writer) error {
	subject := cli.OutcomeSubject(data)
	if subject == "" {
		fmt.Fprintln(stderr, "s1bridge call: --wait: the reply names no outcome subject (a dry run changes nothing): nothing to wait for")
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, _, err := cli.FindStream(ctx, js, sub, cli.StreamEvents)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "s1bridge call: waiting for the outcome on %s (up to %s; Ctrl-C stops waiting, not the work)\n", subject, timeout)
	m, err := cli.WaitEvent(ctx, js, stream, subject)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "s1bridge call: no outcome on %s within %s; it will be in the stream when it comes: s1bridge events --subject '%s' --follow\n", subject, timeout, subject)
		return exitError{1}
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "s1bridge call: stopped waiting; the outcome will be in the stream when it comes: s1bridge events --subject '%s' --follow\n", subject)
		return exitError{1}
	case err != nil:
		return err
	}
	b, err := cli.FormatEvent(m, true)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(b); err != nil {
		return err
	}
	if ev, err := ce.Decode(nats.Header(m.Headers()), m.Data()); err == nil && cli.IsFailure(ev.Type) {
		fmt.Fprintf(stderr, "s1bridge call: outcome %s\n", ev.Type)
		return exitError{1}
	}
	return nil
}
