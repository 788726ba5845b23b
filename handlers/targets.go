package handlers

// Targeted is implemented by the request types of mutating actions that
// name their targets (agents, threats, alerts). Targets returns the JSON
// name of the field that holds the ids and the ids as the request gave
// them. Guardrails (consoles.<name>.actions.max_targets), audit records and
// idempotency read targets through it, so no layer needs to know each
// request type.
type Targeted interface {
	Targets() (field string, ids []string)
}
