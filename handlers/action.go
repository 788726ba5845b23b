// Package handlers holds one file per s1bridge action. Each handler is a
// function of (context, environment, typed request) to (typed reply, error):
// it knows SentinelOne through the client and nothing of NATS. The table
// returned by All is the single registry of actions: the connector registers
// endpoints from it, discovery metadata and the README's action table are
// generated from it, and the conformance suite walks it.
package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// Env is what a handler may use besides its request. The connector builds one
// per console; it is shared by concurrent requests and must not be modified.
type Env struct {
	// Console is the name of the console the request addressed.
	Console string
	// Client calls that console's SentinelOne API.
	Client *sentinelone.Client
	// MaxReplyBytes bounds the encoded reply data: list actions with all:true
	// stop before it, and a single page that would pass it is asked of
	// SentinelOne again with a smaller limit. Zero means no bound.
	MaxReplyBytes int
	// DryRun makes mutating actions validate and describe what they would do
	// without calling SentinelOne.
	DryRun bool
	// MaxTargets bounds how many ids a request of a mutating action may
	// name (consoles.<name>.actions.max_targets; see Targeted). Zero means
	// DefaultMaxTargets.
	MaxTargets int
	// Runtime answers the actions that need the connector's state (ingestion,
	// monitors); nil until that state is available.
	Runtime Runtime
	// Logger logs with the request's attributes (console, action, ids).
	Logger *slog.Logger
}

// Action describes one action. The zero value is not usable; the values come
// from All.
type Action struct {
	Name        string // e.g. "agents.list"; the last subject tokens
	Title       string // the seed's name, e.g. "List Agents"
	Description string // one line, shown by `nats micro info`
	Mutating    bool   // whether it changes anything in SentinelOne
	// Request and Response are zero values of the request and reply types, for
	// documentation and reflection.
	Request, Response any

	decode func(env *Env, data []byte) (any, error)
	run    func(ctx context.Context, env *Env, req any) (any, error)
}

// Handle decodes data (Decode) and runs the action with the request
// (Run). Every error it returns is an *Error or is turned into one by
// AsError.
func (a Action) Handle(ctx context.Context, env *Env, data []byte) (any, error) {
	req, err := a.Decode(env, data)
	if err != nil {
		return nil, err
	}
	return a.Run(ctx, env, req)
}

// Decode reads data strictly into a new value of the action's request type
// (unknown, duplicated or mis-cased members are refused), validates it (its
// Validate method) and, when it is Targeted, refuses more ids than
// env.MaxTargets. It calls nothing: the connector decodes a request before
// anything else about it happens (the audit's requested record is written
// after validation, before SentinelOne is called), then hands the result to
// Run. Its errors are 400s naming the field.
func (a Action) Decode(env *Env, data []byte) (any, error) { return a.decode(env, data) }

// Run runs the action with req, a request Decode returned for this action
// (a pointer to its request type; anything else is a 500): in dry-run mode
// a mutating action replies DryRunReply and calls nothing.
func (a Action) Run(ctx context.Context, env *Env, req any) (any, error) { return a.run(ctx, env, req) }

// Appender is implemented by replies that encode themselves faster than
// json.Marshal would (list replies carry SentinelOne's bytes as they are).
type Appender interface {
	AppendJSON(b []byte) []byte
}

// validator is implemented by request types that check more than their JSON
// shape.
type validator interface{ Validate() error }

// DryRunReply is the reply of a mutating action when Env.DryRun is set.
type DryRunReply struct {
	DryRun  bool   `json:"dryRun"`
	Action  string `json:"action"`
	Console string `json:"console"`
	Request any    `json:"request"`
}

// Define builds an Action from a typed handler: requests are decoded strictly
// into Req, validated (Req's Validate method, when it has one) and, when Req
// is Targeted, refused if they name more ids than Env.MaxTargets, before fn
// runs (Action.Decode); a mutating action in dry-run mode stops after these
// checks (Action.Run).
func Define[Req, Resp any](name, title, description string, mutating bool, fn func(context.Context, *Env, *Req) (*Resp, error)) Action {
	var req Req
	var resp Resp
	return Action{
		Name: name, Title: title, Description: description, Mutating: mutating,
		Request: req, Response: resp,
		decode: func(env *Env, data []byte) (any, error) {
			req := new(Req)
			if err := decodeStrict(data, req); err != nil {
				return nil, err
			}
			if v, ok := any(req).(validator); ok {
				if err := v.Validate(); err != nil {
					return nil, err
				}
			}
			if err := checkTargets(env, req); err != nil {
				return nil, err
			}
			return req, nil
		},
		run: func(ctx context.Context, env *Env, r any) (any, error) {
			req, ok := r.(*Req)
			if !ok || req == nil {
				return nil, &Error{Code: CodeInternal, Message: "internal error: " + name + " was run with a request it did not decode", Err: fmt.Errorf("handlers: %s run with %T", name, r)}
			}
			if mutating && env.DryRun {
				env.log().LogAttrs(ctx, slog.LevelInfo, "dry run: not calling SentinelOne", slog.Any("request", req))
				return &DryRunReply{DryRun: true, Action: name, Console: env.Console, Request: req}, nil
			}
			return fn(ctx, env, req)
		},
	}
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and anything that is not an object. Empty data is {}.
func decodeStrict(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return Invalid("data", "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The decoder names an unknown field without its path; checkNames
		// finds it with the path.
		if e := checkNames(data, reflect.TypeOf(v), ""); e != nil {
			return e
		}
		return decodeError(err, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid("data", "unexpected data after the JSON object")
	}
	// encoding/json keeps the last of two members with the same name, so
	// a check in front of s1bridge that read the first would approve a
	// request s1bridge then runs with the other value.
	if err := checkDuplicates(json.NewDecoder(bytes.NewReader(data)), ""); err != nil {
		return err
	}
	// encoding/json matches names without regard to case, so "Limit" would
	// pass for "limit" and, given both, the last would silently win.
	return checkNames(data, reflect.TypeOf(v), "")
}

// checkDuplicates reads one JSON value from dec and refuses an object in it
// that names a member twice. The value has already decoded into a request
// type without unknown members, so its nesting is as shallow as that type.
func checkDuplicates(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // cannot happen: the data has decoded
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return nil
			}
			name, _ := t.(string)
			if seen[name] {
				return Invalid(path+name, "given more than once")
			}
			seen[name] = true
			if err := checkDuplicates(dec, path+name+"."); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkDuplicates(dec, fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // ']'
	}
	return nil
}

// checkNames refuses an object member whose name matches a field of t only
// when case is ignored. data has already decoded into t without error.
func checkNames(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return nil // null
		}
		fields := jsonFields(t)
		// In name order, so that a request with several faults always
		// gets the same message.
		for _, name := range slices.Sorted(maps.Keys(members)) {
			raw := members[name]
			f, ok := fields[name]
			if !ok {
				for known := range fields {
					if strings.EqualFold(known, name) {
						return Invalid(path+name, "unknown field (names are case-sensitive: did you mean %s?)", known)
					}
				}
				return Invalid(path+name, "unknown field")
			}
			if err := checkNames(raw, f, path+name+"."); err != nil {
				return err
			}
		}
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, raw := range items {
			if err := checkNames(raw, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonPath rewrites encoding/json's path of a field ("ListParams.limit") as
// the caller wrote it ("limit"): embedded structs' Go names are left out.
func jsonPath(t reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	var out []string
	for _, seg := range strings.Split(field, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct {
			if sf, ok := t.FieldByName(seg); ok && sf.Anonymous {
				continue // promoted fields are named without it
			}
			if ft, ok := jsonFields(t)[seg]; ok {
				t = ft
			}
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

// jsonFields maps the JSON names of t's fields, embedded structs' fields
// included, to their types. The map is made once per type (every request
// is checked against its type's fields) and must not be changed.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := visibleJSONFields(t)
	fieldsCache.Store(t, m)
	return m
}

// fieldsCache holds jsonFields' maps by type.
var fieldsCache sync.Map // reflect.Type → map[string]reflect.Type

func visibleJSONFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// decodeError turns encoding/json's errors into a 400 naming the field; t
// is the type decoded into.
func decodeError(err error, t reflect.Type) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := jsonPath(t, typeErr.Field)
		if field == "" {
			field = "data"
		}
		return Invalid(field, "must be %s, not JSON %s", jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return Invalid("data", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(field, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("data", "truncated JSON")
	default:
		return Invalid("data", "%v", err)
	}
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return fmt.Sprintf("a %s", t)
}

// WithLogger returns a copy of env that logs to l.
func (env *Env) WithLogger(l *slog.Logger) *Env {
	c := *env
	c.Logger = l
	return &c
}
