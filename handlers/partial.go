package handlers

// PartialDetails is the Details of an error that struck after part of a
// mutating request had been applied, so that the caller knows the state it
// left: Applied says what was done (its shape is the action's:
// AlertsUpdateApplied, BlocklistAddApplied, or for blocklist.delete a
// BlocklistDeleteReply of the batches deleted), Failed names the step that
// failed, and Upstream carries SentinelOne's details of that failure.
type PartialDetails struct {
	Applied  any              `json:"applied"`
	Failed   string           `json:"failed"`
	Upstream *UpstreamDetails `json:"upstream,omitempty"`
}

// partialFailure turns err, which struck at step failed after applied was
// done, into an error whose Details say so. Code and retryability stay
// those of err: repeating the whole request is safe, since every step sets
// a state rather than adding to one.
func partialFailure(err error, applied any, failed, summary string) *Error {
	cause := AsError(err)
	e := *cause
	e.Message = summary + ", then " + failed + " failed: " + cause.Message
	up, _ := cause.Details.(*UpstreamDetails)
	e.Details = &PartialDetails{Applied: applied, Failed: failed, Upstream: up}
	e.Err = err
	return &e
}
