package middleware

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// maxErrorMessage bounds the message of an error reply. Messages quote the
// value at fault, which a hostile request can make megabytes long, and the
// message goes out twice (header and data): unbounded, it could push the
// reply past the max payload and leave the caller with no answer at all.
const maxErrorMessage = 1024

// Respond sends the reply of every request below it, in the request's mode
// (binary for plain JSON): the data as a s1bridge.<action>.response, or an
// error as the NATS micro error headers plus an s1bridge.error CloudEvent
// (DESIGN.md §5, §7). A reply over maxPayload bytes (the server's max
// payload, headers included) answers 413 instead. It first waits for the
// writes registered with Request.After. It returns what it sent: the data,
// or the *handlers.Error.
func Respond(log *slog.Logger, maxPayload int64) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, req *Request) ([]byte, error) {
			data, err := next(ctx, req)
			req.settle(ctx)
			if err == nil {
				msg, encErr := encodeReply(req, replyEvent(req, subjects.ResponseType(req.Action.Name), data))
				if encErr == nil && tooLarge(msg, maxPayload) {
					encErr = handlers.Errorf(handlers.CodeTooLarge, "reply of %d bytes is over the NATS max payload; ask for fewer items (limit) or follow nextCursor", len(msg.Data))
				}
				if encErr == nil {
					send(log, req, msg)
					return data, nil
				}
				err = encErr
			}
			herr := shorten(handlers.AsError(err))
			send(log, req, errorReply(req, herr))
			return nil, herr
		}
	}
}

// shorten cuts herr's message at maxErrorMessage bytes.
func shorten(herr *handlers.Error) *handlers.Error {
	if len(herr.Message) <= maxErrorMessage {
		return herr
	}
	short := *herr
	cut := maxErrorMessage
	for cut > 0 && !utf8.RuneStart(herr.Message[cut]) {
		cut--
	}
	short.Message = herr.Message[:cut] + "…"
	return &short
}

// errorReply is the reply of herr. A request that could not be read still
// has the mode it was sent in, when it could be told; binary is the default.
func errorReply(req *Request, herr *handlers.Error) *nats.Msg {
	data, _ := json.Marshal(herr.Data())
	msg, err := encodeReply(req, replyEvent(req, subjects.TypeError, data))
	if err != nil {
		msg = &nats.Msg{Subject: req.Msg.Reply, Header: nats.Header{}, Data: data}
	}
	msg.Header.Set(subjects.HeaderErrorCode, strconv.Itoa(herr.Code))
	msg.Header.Set(subjects.HeaderError, herr.Message)
	return msg
}

func send(log *slog.Logger, req *Request, msg *nats.Msg) {
	if req.Msg.Reply == "" {
		return
	}
	if err := req.Msg.RespondMsg(msg); err != nil {
		log.Warn("could not send reply", "console", req.Env.Console, "action", req.Action.Name, "id", req.Event.ID, "error", err)
	}
}

func replyEvent(req *Request, typ string, data []byte) ce.Event {
	ev := ce.Event{
		SpecVersion:     subjects.SpecVersion,
		ID:              ce.NewID(),
		Source:          subjects.Source(req.Env.Console),
		Type:            typ,
		Time:            time.Now().UTC(),
		DataContentType: subjects.ContentTypeJSON,
		Extensions:      map[string]string{},
		Data:            data,
	}
	if id := req.Event.ID; id != "" {
		ev.Extensions[subjects.ExtCorrelationID] = id
	}
	if tp := req.Event.TraceParent(); tp != "" {
		ev.Extensions[subjects.ExtTraceParent] = tp
		if ts := req.Event.TraceState(); ts != "" {
			ev.Extensions[subjects.ExtTraceState] = ts
		}
	}
	return ev
}

func encodeReply(req *Request, ev ce.Event) (*nats.Msg, error) {
	mode := req.Event.Mode
	if mode != ce.ModeStructured {
		mode = ce.ModeBinary
	}
	h, data, err := ce.Encode(ev, mode)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: req.Msg.Reply, Header: h, Data: data}, nil
}

// tooLarge reports whether msg would exceed maxPayload (headers count
// against it); 0 means no bound.
func tooLarge(msg *nats.Msg, maxPayload int64) bool {
	if maxPayload <= 0 {
		return false
	}
	size := int64(len(msg.Data))
	for k, vs := range msg.Header {
		for _, v := range vs {
			size += int64(len(k) + len(v) + 4)
		}
	}
	return size+64 > maxPayload
}
