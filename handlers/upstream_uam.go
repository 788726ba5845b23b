package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// UAMUpstreamDetails is the Details of an error from the Unified Alerts
// GraphQL API: the operation and request id, and SentinelOne's GraphQL
// errors (message, path, extensions as given) or, for a refused
// alertTriggerActions, its errors.
type UAMUpstreamDetails struct {
	UpstreamDetails
	GraphQLErrors []GraphQLErrorDetail `json:"graphqlErrors,omitempty"`
	TriggerErrors []TriggerErrorDetail `json:"triggerErrors,omitempty"`
}

// GraphQLErrorDetail is one GraphQL error as SentinelOne sent it.
type GraphQLErrorDetail struct {
	Message    string `json:"message"`
	Path       []any  `json:"path,omitempty"`
	Extensions any    `json:"extensions,omitempty"`
}

// TriggerErrorDetail is one entry of a TriggerActionsError.
type TriggerErrorDetail struct {
	Message string `json:"message"`
	Payload string `json:"payload,omitempty"` // ActionsErrorLimitPayload, ActionsErrorConcurrentUserLimitPayload
	Limit   int    `json:"limit,omitempty"`
}

// fromUAM translates the Unified Alerts errors of the client, or returns
// nil when err is not one of them.
//
//	GraphQL error on the caller's input    400 with SentinelOne's message
//	other GraphQL error                    502, details.graphqlErrors
//	404 or 403 on the GraphQL path         502: the console has no UAM, or the token may not use it
//	TriggerActionsError, alert limit       400: fewer alerts per request
//	TriggerActionsError, concurrency limit 429, retryable
//	other TriggerActionsError              502, details.triggerErrors
func fromUAM(err error) *Error {
	var (
		ge *sentinelone.GraphQLError
		te *sentinelone.UAMTriggerError
		ae *sentinelone.APIError
	)
	op := http.MethodPost + " " + sentinelone.PathUAMGraphQL
	switch {
	case errors.As(err, &ge):
		d := &UAMUpstreamDetails{UpstreamDetails: UpstreamDetails{Operation: op + " " + ge.Operation, RequestID: ge.RequestID}}
		for _, it := range ge.Errors {
			gd := GraphQLErrorDetail{Message: it.Message, Path: it.Path}
			if len(it.Extensions) > 0 {
				gd.Extensions = it.Extensions
			}
			d.GraphQLErrors = append(d.GraphQLErrors, gd)
		}
		msgs := strings.Join(ge.Messages(), "; ")
		if errors.Is(err, sentinelone.ErrGraphQLInput) {
			return &Error{Code: CodeInvalid, Message: "SentinelOne refused the request: " + msgs, Details: d, Err: err}
		}
		return &Error{Code: CodeUpstream, Message: "SentinelOne's Unified Alerts API answered with an error: " + msgs, Details: d, Err: err}
	case errors.As(err, &te):
		d := &UAMUpstreamDetails{UpstreamDetails: UpstreamDetails{Operation: op + " AlertTriggerActions"}}
		code, retry := CodeUpstream, false
		for _, it := range te.Errors {
			d.TriggerErrors = append(d.TriggerErrors, TriggerErrorDetail{Message: it.Message, Payload: it.PayloadType, Limit: it.Limit})
			switch it.PayloadType {
			case "ActionsErrorLimitPayload":
				code = CodeInvalid
			case "ActionsErrorConcurrentUserLimitPayload":
				if code != CodeInvalid {
					code, retry = CodeRateLimited, true
				}
			}
		}
		msg := "SentinelOne refused the alert actions: " + strings.TrimPrefix(te.Error(), "sentinelone: alertTriggerActions refused: ")
		if code == CodeInvalid {
			msg = "alertIds: " + msg + "; send fewer alerts per request"
		}
		return &Error{Code: code, Retryable: retry, Message: msg, Details: d, Err: err}
	case errors.Is(err, sentinelone.ErrUAMUnavailable) && errors.As(err, &ae):
		e := fromAPIError(ae, err)
		e.Code, e.Retryable = CodeUpstream, false
		e.Message = fmt.Sprintf("this console does not serve Unified Alerts, or the API token may not use them (HTTP %d on %s)", ae.StatusCode, op)
		return e
	}
	return nil
}
