package emulator

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// The Unified Alerts GraphQL endpoint. Every request is parsed and
// validated against uam-schema.graphql (a byte-identical copy of
// SentinelOne's schema subset) with gqlparser, its variables coerced and
// checked against their declarations, and the operation executed: root
// fields resolve against the store and every selection set is walked for
// real, so the answer holds exactly the fields asked for, under their
// aliases, with __typename, inline fragments, fragment spreads and
// @skip/@include honoured. Errors follow graphql-java, the console's server:
// HTTP 200 with {"errors":[{message, locations, path, extensions:
// {classification}}], "data": ...} (uam-reference.md §9).

// PathUAMGraphQL is the Unified Alerts GraphQL endpoint below APIPrefix.
const PathUAMGraphQL = "/unifiedalerts/graphql"

//go:embed uam-schema.graphql
var uamSchemaSource string

// UAMSchema returns the Unified Alerts schema the emulator serves: a
// byte-identical copy of SentinelOne's schema subset
// (shared/sentinelone/uam-schema.graphql), the authority for Unified Alerts
// names and types. The client's tests validate its documents against it.
func UAMSchema() string { return uamSchemaSource }

// uamSchema is the parsed schema, loaded once.
var uamSchema = sync.OnceValues(func() (*ast.Schema, error) {
	return gqlparser.LoadSchema(&ast.Source{Name: "uam-schema.graphql", Input: uamSchemaSource})
})

// graphql-java's error classifications.
const (
	classValidation     = "ValidationError"
	classSyntax         = "InvalidSyntax"
	classDataFetching   = "DataFetchingException"
	classExecutionAbort = "ExecutionAborted"
)

// gqlErr is one entry of a GraphQL errors array.
type gqlErr struct {
	Message    string              `json:"message"`
	Locations  []gqlerror.Location `json:"locations,omitempty"`
	Path       []any               `json:"path,omitempty"`
	Extensions map[string]string   `json:"extensions,omitempty"`
}

// fetchError is a resolver failure: graphql-java reports it as
// "Exception while fetching data (/<path>) : <message>".
type fetchError struct{ msg string }

func (f *fetchError) Error() string { return f.msg }

func fetchErrorf(format string, args ...any) *fetchError {
	return &fetchError{msg: fmt.Sprintf(format, args...)}
}

// graphql-java's names of the validation rules gqlparser implements, so
// that messages read like the console's ("Validation error (FieldUndefined@…)").
var javaRuleNames = map[string]string{
	"FieldsOnCorrectType":          "FieldUndefined",
	"KnownArgumentNames":           "UnknownArgument",
	"KnownTypeNames":               "UnknownType",
	"ScalarLeafs":                  "SubselectionRequired",
	"ValuesOfCorrectType":          "WrongType",
	"ProvidedRequiredArguments":    "MissingFieldArgument",
	"NoUnusedVariables":            "UnusedVariable",
	"NoUndefinedVariables":         "UndefinedVariable",
	"VariablesInAllowedPosition":   "VariableTypeMismatch",
	"KnownFragmentNames":           "UndefinedFragment",
	"NoUnusedFragments":            "UnusedFragment",
	"KnownDirectives":              "UnknownDirective",
	"OverlappingFieldsCanBeMerged": "FieldsConflict",
}

// docCache keeps validated documents by their text: clients send the same
// few documents over and over, and a page read should not re-validate one.
type docCache struct {
	mu   sync.Mutex
	docs map[string]*ast.QueryDocument
}

const maxCachedDocs = 64

func (c *docCache) get(q string) *ast.QueryDocument {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs[q]
}

func (c *docCache) put(q string, d *ast.QueryDocument) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil || len(c.docs) >= maxCachedDocs {
		c.docs = make(map[string]*ast.QueryDocument) // simple and bounded
	}
	c.docs[q] = d
}

// handleGraphQL answers POST /unifiedalerts/graphql.
func (e *Emulator) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	schema, err := uamSchema()
	if err != nil {
		panic(err) // the embedded schema is tested to load
	}
	var req struct {
		Query         string          `json:"query"`
		Variables     json.RawMessage `json:"variables"`
		OperationName string          `json:"operationName"`
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	if err := json.Unmarshal(body.Bytes(), &req); err != nil || strings.TrimSpace(req.Query) == "" {
		// Spring GraphQL answers a body it cannot read with HTTP 400.
		writeGraphQL(w, http.StatusBadRequest, nil, []gqlErr{{Message: "Invalid request body: expected a JSON object with a query",
			Extensions: map[string]string{"classification": classSyntax}}})
		return
	}
	doc := e.uamDocs.get(req.Query)
	if doc == nil {
		d, perr := parser.ParseQuery(&ast.Source{Name: "query", Input: req.Query})
		if perr != nil {
			var ge *gqlerror.Error
			errors.As(perr, &ge)
			writeGraphQL(w, http.StatusOK, nil, []gqlErr{{Message: "Invalid Syntax : " + gqlMessage(perr, ge), Locations: locations(ge),
				Extensions: map[string]string{"classification": classSyntax}}})
			return
		}
		if errs := validator.ValidateWithRules(schema, d, rules.NewDefaultRules()); len(errs) > 0 {
			out := make([]gqlErr, len(errs))
			for i, ve := range errs {
				name := javaRuleNames[ve.Rule]
				if name == "" {
					name = ve.Rule
				}
				out[i] = gqlErr{Message: fmt.Sprintf("Validation error (%s) : %s", name, ve.Message), Locations: ve.Locations,
					Extensions: map[string]string{"classification": classValidation}}
			}
			writeGraphQL(w, http.StatusOK, nil, out)
			return
		}
		doc = d
		e.uamDocs.put(req.Query, d)
	}
	op, gerr := pickOperation(doc, req.OperationName)
	if gerr != nil {
		writeGraphQL(w, http.StatusOK, nil, []gqlErr{*gerr})
		return
	}
	vars := map[string]any{}
	if v := bytes.TrimSpace(req.Variables); len(v) > 0 && string(v) != "null" {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&vars); err != nil {
			writeGraphQL(w, http.StatusOK, nil, []gqlErr{{Message: "Variables must be a JSON object",
				Extensions: map[string]string{"classification": classValidation}}})
			return
		}
	}
	coerced, verr := validator.VariableValues(schema, op, vars)
	if verr != nil {
		writeGraphQL(w, http.StatusOK, nil, []gqlErr{variableError(verr)})
		return
	}
	x := &gqlExec{schema: schema, doc: doc, vars: coerced}
	data, errs := e.execute(x, op)
	writeGraphQL(w, http.StatusOK, data, errs)
}

func gqlMessage(err error, ge *gqlerror.Error) string {
	if ge != nil {
		return ge.Message
	}
	return err.Error()
}

func locations(ge *gqlerror.Error) []gqlerror.Location {
	if ge == nil {
		return nil
	}
	return ge.Locations
}

// variableError renders a variable coercion failure as graphql-java does:
// "Variable 'x' has an invalid value: …".
func variableError(err error) gqlErr {
	var ge *gqlerror.Error
	msg := err.Error()
	name := "?"
	if errors.As(err, &ge) {
		msg = ge.Message
		var rest []string
		for i, p := range ge.Path {
			s := fmt.Sprint(p)
			switch {
			case i == 0 && s == "variable":
			case name == "?":
				name = s
			default:
				rest = append(rest, s)
			}
		}
		if len(rest) > 0 {
			msg = strings.Join(rest, ".") + ": " + msg
		}
	}
	return gqlErr{Message: fmt.Sprintf("Variable '%s' has an invalid value: %s", name, msg),
		Extensions: map[string]string{"classification": classValidation}}
}

func pickOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *gqlErr) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, &gqlErr{Message: fmt.Sprintf("Unknown operation named '%s'.", name), Extensions: map[string]string{"classification": classValidation}}
	}
	if len(doc.Operations) != 1 {
		return nil, &gqlErr{Message: "Must provide operation name if query contains multiple operations.",
			Extensions: map[string]string{"classification": classValidation}}
	}
	return doc.Operations[0], nil
}

// writeGraphQL writes {"errors":[…],"data":…}: errors only when there are
// some, data always (null when nil).
func writeGraphQL(w http.ResponseWriter, status int, data []byte, errs []gqlErr) {
	b := make([]byte, 0, len(data)+256)
	b = append(b, '{')
	if len(errs) > 0 {
		eb, _ := json.Marshal(errs)
		b = append(b, `"errors":`...)
		b = append(b, eb...)
		b = append(b, ',')
	}
	b = append(b, `"data":`...)
	if data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, data...)
	}
	b = append(b, '}')
	writeJSON(w, status, b)
}

// gqlExec executes one operation's selection sets over resolved values.
// Values are what resolvers return: nil, bool, string, int, int64, float64,
// json.RawMessage (the JSON scalar), []any, or obj (an object; for an
// abstract type its "__typename" member names the concrete type).
type gqlExec struct {
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
}

// obj is a resolved object value.
type obj = map[string]any

// collected is one response key and the fields that produce it.
type collected struct {
	key    string
	fields []*ast.Field
}

// skipped reports whether @skip or @include leave a selection out.
func (x *gqlExec) skipped(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil {
		if v, _ := d.ArgumentMap(x.vars)["if"].(bool); v {
			return true
		}
	}
	if d := dirs.ForName("include"); d != nil {
		if v, _ := d.ArgumentMap(x.vars)["if"].(bool); !v {
			return true
		}
	}
	return false
}

// applies reports whether a fragment on cond applies to an object of
// concrete type typ.
func (x *gqlExec) applies(cond, typ string) bool {
	if cond == "" || cond == typ {
		return true
	}
	def := x.schema.Types[cond]
	if def == nil {
		return false
	}
	for _, p := range x.schema.GetPossibleTypes(def) {
		if p.Name == typ {
			return true
		}
	}
	return false
}

// collect gathers the fields of sel that apply to typ, merged by response
// key in first-seen order (GraphQL's CollectFields).
func (x *gqlExec) collect(sel ast.SelectionSet, typ string, out []collected) []collected {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if x.skipped(s.Directives) {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			found := false
			for i := range out {
				if out[i].key == key {
					out[i].fields = append(out[i].fields, s)
					found = true
					break
				}
			}
			if !found {
				out = append(out, collected{key: key, fields: []*ast.Field{s}})
			}
		case *ast.InlineFragment:
			if !x.skipped(s.Directives) && x.applies(s.TypeCondition, typ) {
				out = x.collect(s.SelectionSet, typ, out)
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !x.skipped(s.Directives) && x.applies(s.Definition.TypeCondition, typ) {
				out = x.collect(s.Definition.SelectionSet, typ, out)
			}
		}
	}
	return out
}

// subSelection merges the selection sets of fields sharing a response key.
func subSelection(fields []*ast.Field) ast.SelectionSet {
	if len(fields) == 1 {
		return fields[0].SelectionSet
	}
	var sel ast.SelectionSet
	for _, f := range fields {
		sel = append(sel, f.SelectionSet...)
	}
	return sel
}

// writeObject appends v as an object of named type typ, keeping the keys
// the selection asks for.
func (x *gqlExec) writeObject(b []byte, typ string, sel ast.SelectionSet, v obj) []byte {
	def := x.schema.Types[typ]
	concrete := typ
	if def != nil && def.Kind != ast.Object {
		concrete, _ = v["__typename"].(string)
	}
	cdef := x.schema.Types[concrete]
	b = append(b, '{')
	for i, c := range x.collect(sel, concrete, nil) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c.key)
		b = append(b, ':')
		name := c.fields[0].Name
		if name == "__typename" {
			b = strconv.AppendQuote(b, concrete)
			continue
		}
		var ft *ast.Type
		if cdef != nil {
			if fd := cdef.Fields.ForName(name); fd != nil {
				ft = fd.Type
			}
		}
		b = x.writeValue(b, ft, subSelection(c.fields), v[name])
	}
	return append(b, '}')
}

// writeValue appends v as a value of type t.
func (x *gqlExec) writeValue(b []byte, t *ast.Type, sel ast.SelectionSet, v any) []byte {
	if v == nil || t == nil {
		return append(b, "null"...)
	}
	if t.Elem != nil {
		list, _ := v.([]any)
		b = append(b, '[')
		for i, it := range list {
			if i > 0 {
				b = append(b, ',')
			}
			b = x.writeValue(b, t.Elem, sel, it)
		}
		return append(b, ']')
	}
	if o, ok := v.(obj); ok {
		return x.writeObject(b, t.NamedType, sel, o)
	}
	switch v := v.(type) {
	case string:
		return strconv.AppendQuote(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case json.RawMessage:
		return append(b, v...)
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}
