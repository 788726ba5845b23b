package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The validation API. Each function checks a data payload (the CloudEvent's
// data, JSON) against the schema the document publishes for it, with a JSON
// Schema draft 2020-12 validator that asserts formats (date-time). They are
// safe for concurrent use; each schema is compiled once.
//
// A nil error means the payload validates. Otherwise the error names the
// action or type and holds the validator's explanation (which keyword
// failed at which location).

// ValidateRequest checks data as the request of action. Empty data is the
// empty object, as the connector reads it.
func ValidateRequest(action string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	return validate("request/"+action, data, func() (Schema, error) { return RequestSchema(action) })
}

// ValidateReply checks data as the reply of action (a success; see
// ValidateError for error replies). The reply of a mutating action in
// dry-run mode ({"dryRun":true,...}) is checked against the dry-run reply.
func ValidateReply(action string, data []byte) error {
	a, ok := lookup(action)
	if !ok {
		return fmt.Errorf("schema: unknown action %q", action)
	}
	if a.Mutating && isDryRun(data) {
		return validate("dryrun", data, func() (Schema, error) { return DryRunSchema(), nil })
	}
	return validate("reply/"+action, data, func() (Schema, error) { return ReplySchema(action) })
}

// ValidateError checks data as the data of an s1bridge.error reply.
func ValidateError(data []byte) error {
	return validate("error", data, func() (Schema, error) { return ErrorSchema(), nil })
}

// ValidateEvent checks data as the data of an event of CloudEvents type
// ceType (e.g. s1bridge.threat.created).
func ValidateEvent(ceType string, data []byte) error {
	return validate("event/"+ceType, data, func() (Schema, error) { return EventSchema(ceType) })
}

func isDryRun(data []byte) bool {
	var d struct {
		DryRun bool `json:"dryRun"`
	}
	return json.Unmarshal(data, &d) == nil && d.DryRun
}

// compiled caches a compiled schema (or the error compiling it) by name.
var compiled sync.Map // name → *compiledSchema

type compiledSchema struct {
	once sync.Once
	s    *jsonschema.Schema
	err  error
}

func validate(name string, data []byte, build func() (Schema, error)) error {
	v, _ := compiled.LoadOrStore(name, &compiledSchema{})
	cs := v.(*compiledSchema)
	cs.once.Do(func() { cs.s, cs.err = compile(name, build) })
	if cs.err != nil {
		return cs.err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("schema: %s: data is not JSON: %w", name, err)
	}
	if err := cs.s.Validate(inst); err != nil {
		return fmt.Errorf("schema: %s: %w", name, err)
	}
	return nil
}

func compile(name string, build func() (Schema, error)) (*jsonschema.Schema, error) {
	s, err := build()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	url := "urn:s1bridge:schema:" + name
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %s: %w", name, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema: %s: %w", name, err)
	}
	return sch, nil
}
