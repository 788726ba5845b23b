package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/s1bridge/s1bridge/cli"
)

const eventsUsage = `usage: s1bridge events [--since D|TIME] [--subject S] [--follow] [--stream events|audit] [--server URL]

Prints the events of the deployment's events stream (or its audit stream), one
CloudEvent in JSON per line, oldest first, then exits; --follow goes on with new
ones until Ctrl-C. --since is how far back to start (24h) or an RFC 3339 time;
--subject is a NATS subject filter within the stream (s1.main.event.threat.>).
`

func cmdEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events", stderr)
	nf := addNATSFlags(fs)
	since := fs.String("since", "", "start this far back (a Go duration: 90m, 24h) or at this RFC 3339 time; default: the oldest event")
	filter := fs.String("subject", "", "NATS subject filter within the stream, e.g. s1.main.event.threat.> or s1.main.event.monitor.<id>.*")
	follow := fs.Bool("follow", false, "after the stored events, print new ones as they come, until Ctrl-C")
	stream := fs.String("stream", cli.StreamEvents, "which stream: events or audit")
	fs.Usage = func() { fmt.Fprint(stderr, eventsUsage+"\nflags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	o, err := eventsOptions(fs.Args(), *since, *filter, *stream, *follow, time.Now())
	if err != nil {
		return exitFor(err, stderr)
	}
	sub, err := nf.check("events")
	if err != nil {
		return exitFor(err, stderr)
	}
	nc, err := nf.connect("s1bridge-events")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	name, wildcard, err := cli.FindStream(lctx, js, sub, *stream)
	cancel()
	if err != nil {
		return err
	}
	if o.Filter != "" && !cli.Within(o.Filter, wildcard) {
		return exitFor(usageErr("events", "--subject %s is outside stream %s, which holds %s", o.Filter, name, wildcard), stderr)
	}
	o.Stream = name
	n, err := cli.ReadEvents(ctx, js, o, func(m jetstream.Msg) error {
		b, err := cli.FormatEvent(m, false)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if !o.Follow {
		fmt.Fprintf(stderr, "s1bridge events: %d event(s) from %s\n", n, name)
	}
	return nil
}

// eventsOptions checks the arguments of `s1bridge events`, naming the flag
// at fault.
func eventsOptions(pos []string, since, filter, stream string, follow bool, now time.Time) (cli.ReadOptions, error) {
	o := cli.ReadOptions{Filter: filter, Follow: follow}
	if len(pos) > 0 {
		return o, usageErr("events", "unexpected argument %q (flags: --since, --subject, --follow, --stream)", pos[0])
	}
	if stream != cli.StreamEvents && stream != cli.StreamAudit {
		return o, usageErr("events", "--stream %q: want %s or %s", stream, cli.StreamEvents, cli.StreamAudit)
	}
	if since != "" {
		t, err := cli.ParseSince(since, now)
		if err != nil {
			return o, usageErr("events", "--since %v", err)
		}
		o.Since = t
	}
	if filter != "" && !cli.ValidFilter(filter) {
		return o, usageErr("events", "--subject %q is not a NATS subject filter (dot-separated tokens; * one token, > the rest)", filter)
	}
	return o, nil
}
