package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// Reply is the answer to one action request.
type Reply struct {
	Event ce.Event        // the reply CloudEvent
	Err   *handlers.Error // non-nil for an error reply
	// RequestID is the id Call gave the request: a reply's correlationid
	// must equal it. ParseReply leaves it empty.
	RequestID string
}

// ErrNoResponders is returned by Call when nothing serves the subject: an
// unknown console, or no s1bridge running.
var ErrNoResponders = errors.New("no s1bridge serves this console and action (unknown console, or s1bridge not running)")

// Call sends one action request as a binary-mode CloudEvent on subject and
// waits for the reply until ctx ends. data is the request's JSON (empty means
// {}). The request carries expirytime = ctx's deadline, so s1bridge does not
// work on a request its caller gave up on.
func Call(ctx context.Context, nc *nats.Conn, subject, action, source string, data []byte) (*Reply, error) {
	return CallWithID(ctx, nc, subject, action, source, ce.NewID(), data)
}

// CallWithID is Call with the request's CloudEvents id chosen by the
// caller: the same source and id again is the same request (a monitor or a
// mutating action is not started twice; DESIGN.md §12).
func CallWithID(ctx context.Context, nc *nats.Conn, subject, action, source, id string, data []byte) (*Reply, error) {
	if len(data) == 0 {
		data = []byte("{}")
	}
	ev := ce.Event{
		SpecVersion:     subjects.SpecVersion,
		ID:              id,
		Source:          source,
		Type:            subjects.RequestType(action),
		Time:            time.Now().UTC(),
		DataContentType: subjects.ContentTypeJSON,
		Extensions:      map[string]string{},
		Data:            data,
	}
	if dl, ok := ctx.Deadline(); ok {
		ev.Extensions[subjects.ExtExpiryTime] = dl.UTC().Format(time.RFC3339Nano)
	}
	h, body, err := ce.Encode(ev, ce.ModeBinary)
	if err != nil {
		return nil, err
	}
	msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Header: h, Data: body})
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%s: %w", subject, ErrNoResponders)
	}
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", subject, err)
	}
	r, err := ParseReply(msg)
	if err != nil {
		return nil, err
	}
	r.RequestID = ev.ID
	return r, nil
}

// ParseReply reads a reply message: the CloudEvent, and the error when the
// micro error headers are present. The reply's data is not checked to be
// JSON here (ce.DecodeReply): whoever reads it unmarshals it anyway, and a
// list reply is tens of kilobytes to scan twice.
func ParseReply(msg *nats.Msg) (*Reply, error) {
	ev, err := ce.DecodeReply(msg.Header, msg.Data)
	if err != nil {
		return nil, fmt.Errorf("unreadable reply: %w", err)
	}
	r := &Reply{Event: ev}
	if code := msg.Header.Get(subjects.HeaderErrorCode); code != "" {
		n, _ := strconv.Atoi(code)
		var d handlers.Data
		_ = json.Unmarshal(ev.Data, &d)
		r.Err = &handlers.Error{Code: n, Message: msg.Header.Get(subjects.HeaderError), Retryable: d.Retryable, UpstreamStatus: d.UpstreamStatus, Details: d.Details}
	}
	return r, nil
}
