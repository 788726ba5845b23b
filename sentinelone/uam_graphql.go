package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The Unified Alerts API is GraphQL over one POST path. Every call goes
// through do's pipeline (rate limiter, token, retries, X-RQID, trace
// context, Observer events) like a REST call; what differs is the envelope:
// a GraphQL failure is an HTTP 200 whose body carries "errors"
// (uam-reference.md §9), which graphql turns into a *GraphQLError.

// PathUAMGraphQL is the Unified Alert Management GraphQL endpoint, relative
// to APIPrefix (uam-reference.md §1): every UAM query and mutation is a POST
// to it, and it is the path label of their logs and Observer events.
const PathUAMGraphQL = "/unifiedalerts/graphql"

// Limits on what a *GraphQLError keeps of the console's errors.
const (
	maxGraphQLErrors = 10 // errors kept, in order
)

type (
	// GraphQLError is a Unified Alerts answer whose body carried GraphQL
	// errors. It matches ErrGraphQL, and also ErrGraphQLInput when the
	// console refused a value the caller chose, or ErrNotFound when alert(id)
	// found no alert. Messages are SentinelOne's, with the token redacted,
	// each cut to 512 bytes, at most 10 of them.
	GraphQLError struct {
		Operation string // the operation name, e.g. "ListAlerts"
		RequestID string // the answer's X-RQID header
		Errors    []GraphQLErrorItem
		kind      error // ErrGraphQLInput, ErrNotFound or nil
	}

	// GraphQLErrorItem is one entry of a GraphQL errors array. Extensions
	// is kept raw: SentinelOne's server is graphql-java, whose
	// extensions.classification ("ValidationError", "DataFetchingException")
	// is a convention, not a contract.
	GraphQLErrorItem struct {
		Message    string          `json:"message"`
		Path       []any           `json:"path,omitempty"`
		Locations  []GraphQLPos    `json:"locations,omitempty"`
		Extensions json.RawMessage `json:"extensions,omitempty"`
	}

	// GraphQLPos is a position in the GraphQL document an error points at.
	GraphQLPos struct {
		Line   int `json:"line"`
		Column int `json:"column"`
	}
)

// Error implements error.
func (e *GraphQLError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, it := range e.Errors {
		msgs[i] = it.Message
	}
	s := fmt.Sprintf("sentinelone: POST %s %s: GraphQL error: %s", PathUAMGraphQL, e.Operation, strings.Join(msgs, "; "))
	if e.RequestID != "" {
		s += " [rqid " + e.RequestID + "]"
	}
	return s
}

// Is matches ErrGraphQL, and ErrGraphQLInput or ErrNotFound by kind.
func (e *GraphQLError) Is(target error) bool {
	return target == ErrGraphQL || (e.kind != nil && target == e.kind)
}

// Messages returns the error messages in order.
func (e *GraphQLError) Messages() []string {
	out := make([]string, len(e.Errors))
	for i, it := range e.Errors {
		out[i] = it.Message
	}
	return out
}

// classification returns extensions.classification, or "".
func (it *GraphQLErrorItem) classification() string {
	var ext struct {
		Classification string `json:"classification"`
	}
	_ = json.Unmarshal(it.Extensions, &ext) // absent or odd extensions: no classification
	return ext.Classification
}

// inputErrorMarkers are texts of console answers that refuse a value the
// caller chose, seen in public captures (uam-reference.md §9): an alert id
// that is not a UUID, a filter field the console does not support. A cursor
// the console cannot read is the caller's too (an after value it was never
// given); decision: it is recognised by the text SentinelOne's REST API uses
// for the same fault ("Invalid cursor value received"), as the GraphQL text
// is not published.
var inputErrorMarkers = []string{
	"Invalid UUID",
	"could not be parsed into a UUID",
	"does not exist or not supported for FILTER API call",
	"Invalid cursor",
}

// classifyGraphQL decides what kind of failure errs is, for op.
//
// Decision (uam-reference.md §9 and §13): the client keys on message and
// path and keeps extensions raw. An error is the caller's input when
// graphql-java says a variable's value was refused (classification
// ValidationError and a message about a variable: "Variable 'x' has an
// invalid value"), or when the message is one of the known refusals of a
// value (inputErrorMarkers). A document validation error ("Validation error
// (FieldUndefined…)") is not: the documents are constants validated against
// the schema, so such an error means the console's schema differs from the
// one s1bridge was built for, which the caller cannot fix. alert(id) on an
// unknown or invisible id is graphql-java's null for a non-null field:
// "Required value was null" at path ["alert"].
func classifyGraphQL(op string, errs []GraphQLErrorItem) error {
	for _, it := range errs {
		if op == opGetAlert && len(it.Path) > 0 && it.Path[0] == "alert" && strings.Contains(it.Message, "Required value was null") {
			return ErrNotFound
		}
	}
	for _, it := range errs {
		if it.classification() == "ValidationError" && strings.HasPrefix(it.Message, "Variable '") {
			return ErrGraphQLInput
		}
		for _, m := range inputErrorMarkers {
			if strings.Contains(it.Message, m) {
				return ErrGraphQLInput
			}
		}
	}
	return nil
}

// graphqlRequest is the body of a GraphQL call.
type graphqlRequest struct {
	Query         string `json:"query"`
	Variables     any    `json:"variables"`
	OperationName string `json:"operationName"`
}

// graphqlAnswer is the envelope of a GraphQL answer.
type graphqlAnswer struct {
	Data   json.RawMessage    `json:"data"`
	Errors []GraphQLErrorItem `json:"errors"`
}

// graphql sends one operation and decodes its data into out. A query
// (readOnly) is retried like a GET; a mutation like any POST, never after
// it may have landed (uam-reference.md §7.5). GraphQL errors become a
// *GraphQLError; an answer with neither data nor errors is malformed.
func (c *Client) graphql(ctx context.Context, op, document string, vars any, readOnly bool, out any) error {
	cs := &call{method: http.MethodPost, path: PathUAMGraphQL, readOnly: readOnly}
	var gqlErrs []GraphQLErrorItem
	q := url.Values{"opname": {op}}
	err := c.doCall(ctx, cs, PathUAMGraphQL, q, graphqlRequest{Query: document, Variables: vars, OperationName: op}, func(body []byte) error {
		var ans graphqlAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			return err
		}
		if len(ans.Errors) > 0 {
			gqlErrs = ans.Errors
			return nil
		}
		if d := bytes.TrimSpace(ans.Data); len(d) == 0 || isNull(d) {
			return errors.New("GraphQL answer has neither data nor errors")
		}
		return json.Unmarshal(ans.Data, out)
	})
	if err != nil {
		return err
	}
	if gqlErrs == nil {
		return nil
	}
	if len(gqlErrs) > maxGraphQLErrors {
		gqlErrs = gqlErrs[:maxGraphQLErrors]
	}
	for i := range gqlErrs {
		gqlErrs[i].Message = summarize(c.redact(gqlErrs[i].Message))
		if len(gqlErrs[i].Extensions) > errorTextLimit || bytes.Contains(gqlErrs[i].Extensions, []byte(c.token)) {
			gqlErrs[i].Extensions = nil
		}
	}
	cs.mu.Lock()
	rqid := cs.rqid
	cs.mu.Unlock()
	return &GraphQLError{Operation: op, RequestID: rqid, Errors: gqlErrs, kind: classifyGraphQL(op, gqlErrs)}
}
