// Package schema describes s1bridge to other programs: an AsyncAPI 3.0
// document of every action (request/reply over NATS) and every event (the
// events and audit streams), generated from the action table
// (handlers.All) and the event catalog (events.All), with a JSON Schema
// (draft 2020-12) for every request, reply and event data, reflected from
// the Go types. `s1bridge schema` prints the document; docs/asyncapi.yaml is
// the committed copy.
//
// ValidateRequest, ValidateReply, ValidateError and ValidateEvent check a
// payload against those schemas with a real JSON Schema validator, for
// the tests of every other package.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/subjects"
)

// AsyncAPIVersion is the AsyncAPI version of the document.
const AsyncAPIVersion = "3.0.0"

// Defaults of Options.
const (
	DefaultPrefix = "s1"
	DefaultServer = "127.0.0.1:4222" // the demo's embedded NATS server
)

// Options shape the document. The zero value describes the defaults.
type Options struct {
	// Version is the s1bridge version in info.version ("" gives "0.0.0").
	Version string
	// Prefix is the default of the {prefix} channel parameter and names the
	// streams (DefaultPrefix when "").
	Prefix string
}

// Channel, message and operation keys are the action or event names,
// which AsyncAPI component keys allow (^[a-zA-Z0-9.\-_]+$).
const (
	replyChannel = "reply"
	errorMessage = "error"
	dryRunMsg    = "dry_run"
)

// Document returns the AsyncAPI document as a tree of maps and slices,
// ready for JSON or YAML encoding.
func Document(o Options) (map[string]any, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Version == "" {
		o.Version = "0.0.0"
	}
	subj, err := subjects.New(o.Prefix)
	if err != nil {
		return nil, err
	}
	tpl := subjects.Template()
	channels := map[string]any{}
	operations := map[string]any{}
	messages := map[string]any{}

	// The reply channel: NATS sends a reply to the inbox the request named,
	// which no document can spell in advance (address null: dynamic).
	replyMsgs := map[string]any{
		errorMessage: ref("#/components/messages/" + errorMessage),
		dryRunMsg:    ref("#/components/messages/" + dryRunMsg),
	}
	channels[replyChannel] = map[string]any{
		"address":     nil,
		"title":       "Replies",
		"description": "The reply subject (an _INBOX.> subject) the requester's NATS client gave with its request. Every reply uses the request's CloudEvents mode, has a new id, source /s1bridge/{console}, and carries the request's id as the correlationid extension.",
		"messages":    replyMsgs,
	}
	errSchema := ErrorSchema()
	messages[errorMessage] = map[string]any{
		"name":          subjects.TypeError,
		"title":         "Error reply",
		"summary":       "The action failed; the NATS micro error headers carry the code and message too.",
		"contentType":   subjects.ContentTypeJSON,
		"headers":       replyHeaders(subjects.TypeError, true),
		"payload":       errSchema,
		"correlationId": ref("#/components/correlationIds/reply"),
	}
	messages[dryRunMsg] = map[string]any{
		"name":          "s1bridge.<action>.response (dry run)",
		"title":         "Dry-run reply",
		"summary":       "The reply of a mutating action when service.dry_run is set: what it would have done; SentinelOne is not called.",
		"contentType":   subjects.ContentTypeJSON,
		"headers":       replyHeaders("", false),
		"payload":       DryRunSchema(),
		"correlationId": ref("#/components/correlationIds/reply"),
	}

	for _, a := range Actions() {
		req, err := RequestSchema(a.Name)
		if err != nil {
			return nil, err
		}
		resp, err := ReplySchema(a.Name)
		if err != nil {
			return nil, err
		}
		reqKey, respKey := a.Name+".request", a.Name+".response"
		messages[reqKey] = map[string]any{
			"name":          subjects.RequestType(a.Name),
			"title":         a.Title + " request",
			"summary":       a.Description,
			"contentType":   subjects.ContentTypeJSON,
			"headers":       requestHeaders(a.Name),
			"payload":       req,
			"correlationId": ref("#/components/correlationIds/request"),
		}
		messages[respKey] = map[string]any{
			"name":          subjects.ResponseType(a.Name),
			"title":         a.Title + " reply",
			"contentType":   subjects.ContentTypeJSON,
			"headers":       replyHeaders(subjects.ResponseType(a.Name), false),
			"payload":       resp,
			"correlationId": ref("#/components/correlationIds/reply"),
		}
		replyMsgs[respKey] = ref("#/components/messages/" + respKey)
		mut := "Read-only"
		if a.Mutating {
			mut = "Mutating: changes SentinelOne"
		}
		channels[a.Name] = map[string]any{
			"address":     tpl.Action(subjects.ParamConsole, a.Name),
			"title":       a.Title,
			"description": fmt.Sprintf("%s %s. Requests are served by the queue group service.queue_group (default s1bridge); the NATS micro endpoint is {console}_%s.", a.Description, mut, strings.ReplaceAll(a.Name, ".", "_")),
			"parameters":  commonParams(),
			"messages":    map[string]any{"request": ref("#/components/messages/" + reqKey)},
		}
		replies := []any{ref("#/channels/" + replyChannel + "/messages/" + respKey), ref("#/channels/" + replyChannel + "/messages/" + errorMessage)}
		if a.Mutating {
			replies = append(replies, ref("#/channels/"+replyChannel+"/messages/"+dryRunMsg))
		}
		operations[a.Name] = map[string]any{
			"action":      "receive",
			"title":       a.Title,
			"summary":     a.Description,
			"channel":     ref("#/channels/" + a.Name),
			"messages":    []any{ref("#/channels/" + a.Name + "/messages/request")},
			"reply":       map[string]any{"channel": ref("#/channels/" + replyChannel), "messages": replies},
			"bindings":    map[string]any{"nats": map[string]any{"queue": "s1bridge", "bindingVersion": "0.1.0"}},
			"tags":        []any{map[string]any{"name": "actions"}},
			"x-mutating":  a.Mutating,
			"description": "Send a request (a CloudEvent in binary or structured mode, or plain JSON data) and wait for one reply.",
		}
	}

	for _, k := range events.All() {
		data, err := EventSchema(k.Types[0])
		if err != nil {
			return nil, err
		}
		key := k.Name
		params := commonParams()
		for _, p := range k.Params {
			pm := map[string]any{"description": p.Description}
			if len(p.Enum) > 0 {
				pm["enum"] = toAny(p.Enum)
			}
			params[p.Name] = pm
		}
		stream, tag := subj.EventsStream(), "events"
		if k.Stream == events.StreamAudit {
			stream, tag = subj.AuditStream(), "audit"
		}
		messages[key] = map[string]any{
			"name":        strings.Join(k.Types, " | "),
			"title":       k.Name,
			"summary":     k.Description,
			"description": fmt.Sprintf("CloudEvents id: %s (also the Nats-Msg-Id, so the stream drops a repeat). subject: %s time: %s", k.ID, k.SubjectAttr, k.Time),
			"contentType": subjects.ContentTypeJSON,
			"headers":     eventHeaders(k),
			"payload":     data,
		}
		channels[key] = map[string]any{
			"address":     k.Subject,
			"title":       k.Name,
			"description": fmt.Sprintf("%s Stored in the JetStream stream %s (streams.%s.name), which holds %s.", k.Description, stream, k.Stream, streamSubjects(subj, k.Stream)),
			"parameters":  params,
			"messages":    map[string]any{key: ref("#/components/messages/" + key)},
			"x-stream":    stream,
		}
		operations[key] = map[string]any{
			"action":   "send",
			"title":    k.Name,
			"summary":  k.Description,
			"channel":  ref("#/channels/" + key),
			"messages": []any{ref("#/channels/" + key + "/messages/" + key)},
			"tags":     []any{map[string]any{"name": tag}},
		}
	}

	return map[string]any{
		"asyncapi": AsyncAPIVersion,
		"info": map[string]any{
			"title":       "s1bridge",
			"version":     o.Version,
			"description": describe(subj),
			"tags": []any{
				map[string]any{"name": "actions", "description": "Request/reply actions on SentinelOne (DESIGN.md §4, §10, §11)."},
				map[string]any{"name": "events", "description": "Events in the events stream (§6, §10, §13, §14)."},
				map[string]any{"name": "audit", "description": "Audit records of mutating actions in the audit stream (§12)."},
			},
		},
		"defaultContentType": subjects.ContentTypeJSON,
		"servers": map[string]any{
			"demo": map[string]any{
				"host":        DefaultServer,
				"protocol":    "nats",
				"description": "The embedded NATS server of `s1bridge demo` (JetStream on, no authentication). In production, the NATS URL of nats.url.",
			},
		},
		"channels":   channels,
		"operations": operations,
		"components": map[string]any{
			"messages": messages,
			"parameters": map[string]any{
				"prefix": map[string]any{
					"description": "subjects.prefix: the first token of every subject of one deployment.",
					"default":     o.Prefix,
					"examples":    []any{o.Prefix},
				},
				"console": map[string]any{
					"description": "A console name: a key of consoles in the configuration (a token of [A-Za-z0-9_-]).",
					"examples":    []any{"main"},
				},
			},
			"correlationIds": map[string]any{
				"request": map[string]any{"description": "The request's CloudEvents id; a plain-JSON request is given one by s1bridge.", "location": "$message.header#/ce-id"},
				"reply":   map[string]any{"description": "The correlationid extension: the id of the request this replies to.", "location": "$message.header#/ce-correlationid"},
			},
		},
	}, nil
}

func ref(to string) map[string]any { return map[string]any{"$ref": to} }

func commonParams() map[string]any {
	return map[string]any{
		"prefix":  ref("#/components/parameters/prefix"),
		"console": ref("#/components/parameters/console"),
	}
}

func streamSubjects(s subjects.Subjects, stream string) string {
	if stream == events.StreamAudit {
		return s.AuditWildcard()
	}
	return s.EventsWildcard()
}

// describe is info.description: what the schemas of the messages do not say.
func describe(s subjects.Subjects) string {
	return strings.Join([]string{
		"s1bridge connects SentinelOne consoles to NATS. SOAR programs send CloudEvents requests on action subjects and get one reply each; s1bridge publishes threat, alert, monitor, action-outcome and credential events to a JetStream stream, and audit records of mutating actions to another.",
		"",
		"Requests may come as binary-mode CloudEvents (data in the payload, attributes in ce-* headers, percent-encoded as the CloudEvents NATS binding says), structured mode (Content-Type: application/cloudevents+json, the whole event as JSON), or plain JSON data without attributes. Replies use the request's mode (binary for plain JSON). Enum values in requests are lower_snake. The standard extension expirytime bounds the work; traceparent/tracestate are carried into logs, upstream calls and events.",
		"",
		"Errors: the reply carries the NATS micro headers Nats-Service-Error-Code and Nats-Service-Error, and an s1bridge.error CloudEvent whose data is {code, message, retryable, upstreamStatus?, details?}.",
		"",
		fmt.Sprintf("Streams: events in %s (streams.events.name; subjects %s), audit records in %s (streams.audit.name; subjects %s). Every event is a CloudEvent with a deterministic id sent as Nats-Msg-Id, so a repeat is dropped; each fact is published once, in order per object. Events are in binary mode (the ce-* headers below) unless streams.events.mode is structured: then the whole event is JSON with Content-Type: application/cloudevents+json, as the CloudEvents NATS binding (sdk-go's included) reads it; ids, Nats-Msg-Id and subjects are the same in both.",
			s.EventsStream(), s.EventsWildcard(), s.AuditStream(), s.AuditWildcard()),
		"",
		"Every payload schema is a JSON Schema draft 2020-12 document that uses only keywords which mean the same in draft-07, so AsyncAPI tools read it as an AsyncAPI Schema Object.",
		"",
		"Section references (§4, DESIGN.md §8) are to the contract, docs/contract.md in the s1bridge repository.",
	}, "\n")
}

// ceHeader returns the schema of a ce-* header.
func ceHeader(desc string, extra map[string]any) map[string]any {
	h := map[string]any{"type": "string", "description": desc}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// requestHeaders is the schema of a binary-mode request's headers.
func requestHeaders(action string) map[string]any {
	p := subjects.HeaderCEPrefix
	return map[string]any{
		"type":        "object",
		"description": "Binary mode. A structured-mode request has only Content-Type: application/cloudevents+json; a plain-JSON request has no ce-* headers.",
		"required":    []any{p + subjects.AttrSpecVersion, p + subjects.AttrID, p + subjects.AttrSource, p + subjects.AttrType},
		"properties": map[string]any{
			p + subjects.AttrSpecVersion:     ceHeader("CloudEvents version.", map[string]any{"const": subjects.SpecVersion}),
			p + subjects.AttrID:              ceHeader("Unique per request from this source; the correlationid of the reply.", map[string]any{"minLength": 1}),
			p + subjects.AttrSource:          ceHeader("Who sends the request, e.g. /soar/playbook-7.", map[string]any{"minLength": 1}),
			p + subjects.AttrType:            ceHeader("The request type; another s1bridge. type answers 400.", map[string]any{"const": subjects.RequestType(action)}),
			p + subjects.AttrTime:            ceHeader("When the request was made (RFC 3339).", map[string]any{"format": "date-time"}),
			p + subjects.AttrDataContentType: ceHeader("The data's media type.", map[string]any{"const": subjects.ContentTypeJSON}),
			p + subjects.ExtExpiryTime:       ceHeader("Deadline of the request (RFC 3339): work that cannot start before it answers 408.", map[string]any{"format": "date-time"}),
			p + subjects.ExtTraceParent:      ceHeader("W3C trace context, carried into logs, SentinelOne calls and events.", nil),
			p + subjects.ExtTraceState:       ceHeader("W3C trace state.", nil),
		},
	}
}

// replyHeaders is the schema of a binary-mode reply's headers; ceType ""
// leaves the type open.
func replyHeaders(ceType string, isError bool) map[string]any {
	p := subjects.HeaderCEPrefix
	typ := ceHeader("The reply type.", nil)
	if ceType != "" {
		typ["const"] = ceType
	}
	props := map[string]any{
		p + subjects.AttrSpecVersion:     ceHeader("CloudEvents version.", map[string]any{"const": subjects.SpecVersion}),
		p + subjects.AttrID:              ceHeader("A new id.", nil),
		p + subjects.AttrSource:          ceHeader("/s1bridge/{console}.", nil),
		p + subjects.AttrType:            typ,
		p + subjects.AttrTime:            ceHeader("When the reply was made.", map[string]any{"format": "date-time"}),
		p + subjects.AttrDataContentType: ceHeader("The data's media type.", map[string]any{"const": subjects.ContentTypeJSON}),
		p + subjects.ExtCorrelationID:    ceHeader("The id of the request this replies to.", nil),
	}
	required := []any{p + subjects.AttrSpecVersion, p + subjects.AttrID, p + subjects.AttrSource, p + subjects.AttrType, p + subjects.ExtCorrelationID}
	if isError {
		codes := make([]any, len(errorCodes))
		for i, c := range errorCodes {
			codes[i] = fmt.Sprint(c)
		}
		props[subjects.HeaderErrorCode] = map[string]any{"type": "string", "description": "The error code, as the NATS micro framework sends it.", "enum": codes}
		props[subjects.HeaderError] = map[string]any{"type": "string", "description": "The error message."}
		required = append(required, subjects.HeaderErrorCode, subjects.HeaderError)
	}
	return map[string]any{"type": "object", "required": required, "properties": props}
}

// eventHeaders is the schema of an event's headers.
func eventHeaders(k events.Kind) map[string]any {
	p := subjects.HeaderCEPrefix
	return map[string]any{
		"type":     "object",
		"required": []any{p + subjects.AttrSpecVersion, p + subjects.AttrID, p + subjects.AttrSource, p + subjects.AttrType, p + subjects.AttrSubject, p + subjects.AttrTime, subjects.HeaderMsgID},
		"properties": map[string]any{
			p + subjects.AttrSpecVersion:     ceHeader("CloudEvents version.", map[string]any{"const": subjects.SpecVersion}),
			p + subjects.AttrID:              ceHeader("Deterministic: "+k.ID+".", nil),
			p + subjects.AttrSource:          ceHeader("/s1bridge/{console}.", nil),
			p + subjects.AttrType:            ceHeader("The event type.", map[string]any{"enum": toAny(k.Types)}),
			p + subjects.AttrSubject:         ceHeader(k.SubjectAttr, nil),
			p + subjects.AttrTime:            ceHeader(k.Time, map[string]any{"format": "date-time"}),
			p + subjects.AttrDataContentType: ceHeader("The data's media type.", map[string]any{"const": subjects.ContentTypeJSON}),
			p + subjects.ExtTraceParent:      ceHeader("The trace context of the request that caused the event, when there was one.", nil),
			subjects.HeaderMsgID:             ceHeader("JetStream de-duplication id: the CloudEvents id.", nil),
		},
	}
}

// YAML encodes the document as YAML.
func YAML(o Options) ([]byte, error) {
	d, err := Document(o)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by `s1bridge schema` from the action table and the event catalog. Do not edit.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// JSON encodes the document as indented JSON.
func JSON(o Options) ([]byte, error) {
	d, err := Document(o)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
