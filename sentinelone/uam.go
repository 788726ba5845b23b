package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Unified Alert Management (UAM): SentinelOne's alerts inbox of every source,
// served by GraphQL (uam-reference.md). Enum values here are UAM's
// UPPER_SNAKE ones; the filter and update types accept any case and spelling
// LowerSnake understands ("in_progress", "In progress").

// UAM enum values the client gives meaning to.
const (
	UAMStatusNew        = "NEW"
	UAMStatusInProgress = "IN_PROGRESS"
	UAMStatusResolved   = "RESOLVED"

	UAMConfidenceMalicious     = "MALICIOUS"
	UAMConfidenceSuspicious    = "SUSPICIOUS"
	UAMConfidenceInformational = "INFORMATIONAL"

	// UAMSortDetectedAt and UAMSortUpdatedAt are the sort keys the client
	// sends (SortInput.by).
	UAMSortDetectedAt = "detectedAt"
	UAMSortUpdatedAt  = "updatedAt"

	// UAM action ids of alertTriggerActions (uam-reference.md §7.2).
	UAMActionStatus  = "S1/alert/statusUpdate"
	UAMActionVerdict = "S1/alert/analystVerdictUpdate"
	UAMActionNote    = "S1/alert/addNote"
)

// Bounds of UAM requests.
const (
	// UAMMaxFirst is the largest page the client asks for. SentinelOne
	// documents no ceiling for first; peers stay at or below 1000 and 1000
	// is known to work (uam-reference.md §11), so the client never sends more.
	UAMMaxFirst = 1000
	// UAMDefaultFirst is the page size when a filter gives none.
	UAMDefaultFirst = 100
	// UAMMaxNoteBytes bounds a note's text (DESIGN.md §10).
	UAMMaxNoteBytes = 4096
)

var (
	uamStatuses         = []string{UAMStatusNew, UAMStatusInProgress, UAMStatusResolved}
	uamSeverities       = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", "UNKNOWN"}
	uamConfidenceLevels = []string{UAMConfidenceMalicious, UAMConfidenceSuspicious, UAMConfidenceInformational}
	uamVerdicts         = []string{
		"UNDEFINED",
		"TRUE_POSITIVE_MALWARE", "TRUE_POSITIVE_RANSOMWARE", "TRUE_POSITIVE_UNAUTHORIZED_ACCESS",
		"TRUE_POSITIVE_DATA_EXFILTRATION", "TRUE_POSITIVE_INSIDER_THREAT", "TRUE_POSITIVE_PHISHING_ATTACK",
		"TRUE_POSITIVE_ADVANCED_PERSISTENT_THREAT", "TRUE_POSITIVE_DENIAL_OF_SERVICE", "TRUE_POSITIVE_POLICY_VIOLATION",
		"TRUE_POSITIVE_EXPLOITATION_TOOLS", "TRUE_POSITIVE_PUA_ADWARE", "TRUE_POSITIVE_BENIGN",
		"TRUE_POSITIVE_BENIGN_BUT_SUSPICIOUS", "TRUE_POSITIVE_UNDEFINED",
		"FALSE_POSITIVE_BENIGN", "FALSE_POSITIVE_BENIGN_BUT_SUSPICIOUS", "FALSE_POSITIVE_SYSTEM_ERROR",
		"FALSE_POSITIVE_USER_ERROR", "FALSE_POSITIVE_UNDEFINED",
	}
)

// UAMStatuses returns the UAM Status enum: NEW, IN_PROGRESS, RESOLVED.
func UAMStatuses() []string { return slices.Clone(uamStatuses) }

// UAMAnalystVerdicts returns the UAM AnalystVerdict enum (20 values).
func UAMAnalystVerdicts() []string { return slices.Clone(uamVerdicts) }

// UAMSeverities returns the UAM Severity enum, UNKNOWN included.
func UAMSeverities() []string { return slices.Clone(uamSeverities) }

// UAMConfidenceLevels returns the UAM ConfidenceLevel enum.
func UAMConfidenceLevels() []string { return slices.Clone(uamConfidenceLevels) }

// UAMAlert is a Unified Alerts alert node. The typed fields are lenient
// views for the connector's own decisions: enums normalised to UPPER_SNAKE
// by UpperSnake, timestamps by the rules of Time, absent values empty.
// AssetNames are the names of assets[] in order. Raw is the node exactly as
// the console sent it (the fields the client's selection asked for), and
// MarshalJSON writes Raw, so an alert passes through unchanged.
type UAMAlert struct {
	ID              string
	ExternalID      string
	Name            string
	Status          string
	AnalystVerdict  string
	Severity        string
	ConfidenceLevel string // "" when the alert has none
	Classification  string
	DetectedAt      time.Time
	UpdatedAt       time.Time
	Product         string // detectionSource.product, e.g. EDR, Identity, STAR
	AssetNames      []string
	Raw             json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler. An alert without an id is
// refused: nothing can be done with it and an ingester would key on "".
func (a *UAMAlert) UnmarshalJSON(data []byte) error {
	var w struct {
		ID              ID      `json:"id"`
		ExternalID      ID      `json:"externalId"`
		Name            *string `json:"name"`
		Status          *string `json:"status"`
		AnalystVerdict  *string `json:"analystVerdict"`
		Severity        *string `json:"severity"`
		ConfidenceLevel *string `json:"confidenceLevel"`
		Classification  *string `json:"classification"`
		DetectedAt      Time    `json:"detectedAt"`
		UpdatedAt       Time    `json:"updatedAt"`
		DetectionSource *struct {
			Product *string `json:"product"`
		} `json:"detectionSource"`
		Assets []struct {
			Name *string `json:"name"`
		} `json:"assets"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if w.ID == "" {
		return errors.New("sentinelone: unified alert without an id")
	}
	*a = UAMAlert{
		ID: string(w.ID), ExternalID: string(w.ExternalID), Name: deref(w.Name), Status: UpperSnake(deref(w.Status)),
		AnalystVerdict: UpperSnake(deref(w.AnalystVerdict)), Severity: UpperSnake(deref(w.Severity)),
		ConfidenceLevel: UpperSnake(deref(w.ConfidenceLevel)), Classification: UpperSnake(deref(w.Classification)),
		DetectedAt: w.DetectedAt.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	if w.DetectionSource != nil {
		a.Product = deref(w.DetectionSource.Product)
	}
	for _, as := range w.Assets {
		a.AssetNames = append(a.AssetNames, deref(as.Name))
	}
	return nil
}

// MarshalJSON returns Raw.
func (a UAMAlert) MarshalJSON() ([]byte, error) { return rawOrNull(a.Raw), nil }

// UAMAlertFilter selects Unified Alerts. Enum values may be given in any
// case; they are checked against the UAM enums before anything is sent
// (an unknown value in a string filter silently matches nothing,
// uam-reference.md §10). Time bounds are exclusive, except UpdatedSince,
// which is inclusive (the ingester's watermark minus overlap). Every filter
// given is ANDed.
//
// ConfidenceLevels nil asks for every level by name, and for alerts with no
// level: SentinelOne hides INFORMATIONAL alerts from a query that does not
// name that level (uam-reference.md §10 quirk 4), and s1bridge hides nothing
// by default. A non-empty list asks for exactly those levels; an empty
// non-nil one sends no level filter (SentinelOne's own default, which hides
// INFORMATIONAL).
type UAMAlertFilter struct {
	IDs               []string
	Statuses          []string
	AnalystVerdicts   []string
	Severities        []string
	ConfidenceLevels  []string
	DetectedAfter     time.Time
	DetectedBefore    time.Time
	UpdatedAfter      time.Time
	UpdatedBefore     time.Time
	UpdatedSince      time.Time
	NameContains      string // alertName, case-insensitive substring
	AssetNameContains string // assetName, case-insensitive substring
	SortBy            string // UAMSortDetectedAt (default) or UAMSortUpdatedAt
	SortOrder         string // SortAsc or SortDesc (default)
	First             int    // page size, 1 to UAMMaxFirst; 0 means UAMDefaultFirst
	After             string // the endCursor of the previous page
}

// UAMIngestFilter is the filter alert ingestion reads with: every alert
// updated at or after since, by updatedAt ascending (ties broken by the
// console's own order, which its cursor keeps), every confidence level
// named, pages of pageSize.
func UAMIngestFilter(since time.Time, pageSize int) UAMAlertFilter {
	return UAMAlertFilter{UpdatedSince: since, SortBy: UAMSortUpdatedAt, SortOrder: SortAsc, First: pageSize}
}

// Wire shapes of UAM filters (FilterInput and friends in the schema).
type (
	uamFilter struct {
		FieldID       string       `json:"fieldId"`
		StringIn      *uamStringIn `json:"stringIn,omitempty"`
		DateTimeRange *uamRange    `json:"dateTimeRange,omitempty"`
		Match         *uamMatch    `json:"match,omitempty"`
	}
	uamStringIn struct {
		Values []*string `json:"values"`
	}
	// uamRange is RangeFilter_LongInput: epoch milliseconds; an absent bound
	// is unbounded. The inclusive flags are always sent: their schema
	// default (true) is the opposite of what DESIGN's exclusive bounds need.
	uamRange struct {
		Start          *int64 `json:"start,omitempty"`
		StartInclusive bool   `json:"startInclusive"`
		End            *int64 `json:"end,omitempty"`
		EndInclusive   bool   `json:"endInclusive"`
	}
	uamMatch struct {
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	}
	uamSort struct {
		By    string `json:"by"`
		Order string `json:"order"`
	}
)

// Filter field ids of the alerts query (uam-reference.md §4.3).
const (
	uamFieldID              = "id"
	uamFieldStatus          = "status"
	uamFieldVerdict         = "analystVerdict"
	uamFieldSeverity        = "severity"
	uamFieldConfidenceLevel = "confidenceLevel"
	uamFieldDetectedAt      = "detectedAt"
	uamFieldUpdatedAt       = "updatedAt"
	uamFieldAlertName       = "alertName" // not "name": the field id differs from the node field
	uamFieldAssetName       = "assetName"
)

// stringIn builds a stringIn filter of UPPER_SNAKE values checked against
// allowed.
func stringIn(field, what string, vs []string, allowed []string) (*uamFilter, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	f := &uamFilter{FieldID: field, StringIn: &uamStringIn{}}
	for _, v := range vs {
		u := UpperSnake(v)
		if err := checkEnum(what, u, allowed); err != nil {
			return nil, err
		}
		f.StringIn.Values = append(f.StringIn.Values, &u)
	}
	return f, nil
}

// msRange builds a dateTimeRange filter. UAM times have millisecond
// precision: an exclusive start rounds down and an exclusive end rounds up
// to a whole millisecond, so no alert strictly inside the window is lost.
func msRange(field string, after, before, since time.Time) *uamFilter {
	if after.IsZero() && before.IsZero() && since.IsZero() {
		return nil
	}
	r := &uamRange{}
	switch {
	case !since.IsZero() && (after.IsZero() || !after.After(since)):
		s := since.UnixMilli() // inclusive: round down keeps the whole first millisecond
		r.Start, r.StartInclusive = &s, true
	case !after.IsZero():
		s := after.UnixMilli()
		r.Start = &s
	}
	if !before.IsZero() {
		e := before.UnixMilli()
		if before.Sub(time.UnixMilli(e)) > 0 {
			e++
		}
		r.End = &e
	}
	return &uamFilter{FieldID: field, DateTimeRange: r}
}

// wire validates f and builds the variables of the alerts query.
func (f UAMAlertFilter) wire() (map[string]any, error) {
	first := f.First
	switch {
	case first == 0:
		first = UAMDefaultFirst
	case first < 0 || first > UAMMaxFirst:
		return nil, fmt.Errorf("%w: first %d is not between 1 and %d", ErrInvalidArgument, f.First, UAMMaxFirst)
	}
	var filters []*uamFilter
	add := func(x *uamFilter, err error) error {
		if x != nil {
			filters = append(filters, x)
		}
		return err
	}
	if len(f.IDs) > 0 {
		if len(f.IDs) > maxIDs {
			return nil, fmt.Errorf("%w: %d alert ids, more than %d", ErrInvalidArgument, len(f.IDs), maxIDs)
		}
		in := &uamStringIn{}
		for _, id := range f.IDs {
			in.Values = append(in.Values, &id)
		}
		filters = append(filters, &uamFilter{FieldID: uamFieldID, StringIn: in})
	}
	levels := f.ConfidenceLevels
	if levels == nil {
		levels = uamConfidenceLevels
	}
	if err := firstErr(
		add(stringIn(uamFieldStatus, "status", f.Statuses, uamStatuses)),
		add(stringIn(uamFieldVerdict, "analyst verdict", f.AnalystVerdicts, uamVerdicts)),
		add(stringIn(uamFieldSeverity, "severity", f.Severities, uamSeverities)),
		add(stringIn(uamFieldConfidenceLevel, "confidence level", levels, uamConfidenceLevels)),
	); err != nil {
		return nil, err
	}
	if f.ConfidenceLevels == nil {
		// A null entry keeps the alerts that have no confidence level
		// (uam-reference.md §10 quirk 4): nothing is hidden by default.
		c := filters[len(filters)-1]
		c.StringIn.Values = append(c.StringIn.Values, nil)
	}
	if x := msRange(uamFieldDetectedAt, f.DetectedAfter, f.DetectedBefore, time.Time{}); x != nil {
		filters = append(filters, x)
	}
	if x := msRange(uamFieldUpdatedAt, f.UpdatedAfter, f.UpdatedBefore, f.UpdatedSince); x != nil {
		filters = append(filters, x)
	}
	if f.NameContains != "" {
		filters = append(filters, &uamFilter{FieldID: uamFieldAlertName, Match: &uamMatch{Operator: "contains", Values: []string{f.NameContains}}})
	}
	if f.AssetNameContains != "" {
		filters = append(filters, &uamFilter{FieldID: uamFieldAssetName, Match: &uamMatch{Operator: "contains", Values: []string{f.AssetNameContains}}})
	}
	by := f.SortBy
	switch by {
	case "":
		by = UAMSortDetectedAt
	case UAMSortDetectedAt, UAMSortUpdatedAt:
	default:
		return nil, fmt.Errorf("%w: sort by %q is not %s or %s", ErrInvalidArgument, f.SortBy, UAMSortDetectedAt, UAMSortUpdatedAt)
	}
	order := "DESC"
	switch strings.ToLower(f.SortOrder) {
	case "", SortDesc:
	case SortAsc:
		order = "ASC"
	default:
		return nil, fmt.Errorf("%w: sort order %q is not asc or desc", ErrInvalidArgument, f.SortOrder)
	}
	vars := map[string]any{
		"first":   first,
		"filters": filters,
		// sorts, not the deprecated sort (the schema says sorts wins).
		"sorts": []uamSort{{By: by, Order: order}},
	}
	if f.After != "" {
		vars["after"] = f.After
	}
	return vars, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// uamConnection is the alerts answer.
type uamConnection struct {
	Alerts *struct {
		TotalCount flexInt `json:"totalCount"`
		PageInfo   struct {
			HasNextPage Bool    `json:"hasNextPage"`
			EndCursor   *string `json:"endCursor"`
		} `json:"pageInfo"`
		Edges []struct {
			Node *UAMAlert `json:"node"`
		} `json:"edges"`
	} `json:"alerts"`
}

// ListUAMAlerts returns one page of Unified Alerts. NextCursor is the
// page's endCursor while hasNextPage is true, else "" (also when the console
// gives no endCursor); TotalItems is totalCount, every match and not the
// page size. An edge whose node is null is skipped.
func (c *Client) ListUAMAlerts(ctx context.Context, f UAMAlertFilter) (*Page[UAMAlert], error) {
	vars, err := f.wire()
	if err != nil {
		return nil, err
	}
	var out uamConnection
	if err := c.graphql(ctx, opListAlerts, queryListAlerts, vars, true, &out); err != nil {
		return nil, err
	}
	if out.Alerts == nil {
		return nil, &MalformedResponseError{Method: "POST", Path: PathUAMGraphQL, StatusCode: 200, Err: errors.New("data.alerts is null")}
	}
	a := out.Alerts
	p := &Page[UAMAlert]{TotalItems: a.TotalCount.V, Items: make([]UAMAlert, 0, len(a.Edges))}
	for _, e := range a.Edges {
		if e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	if a.PageInfo.HasNextPage && a.PageInfo.EndCursor != nil {
		p.NextCursor = *a.PageInfo.EndCursor
	}
	return p, nil
}

// UAMAlertPages iterates the pages of Unified Alerts matching f from
// f.After on, sending f unchanged with each cursor, so a caller can commit
// per page. Alert ingestion (phase 2 of issue 11) calls it with
// UAMIngestFilter.
func (c *Client) UAMAlertPages(ctx context.Context, f UAMAlertFilter) iter.Seq2[*Page[UAMAlert], error] {
	return paginate(ctx, c.log, PathUAMGraphQL, f.After, func(ctx context.Context, cursor string) (*Page[UAMAlert], error) {
		f.After = cursor
		return c.ListUAMAlerts(ctx, f)
	})
}

// GetUAMAlert returns one alert with its detail fields (indicators,
// observables, the process owner). An id the console does not know, or
// that the token may not see, is an error matching ErrNotFound.
func (c *Client) GetUAMAlert(ctx context.Context, id string) (*UAMAlert, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%w: empty alert id", ErrInvalidArgument)
	}
	var out struct {
		Alert *UAMAlert `json:"alert"`
	}
	if err := c.graphql(ctx, opGetAlert, queryGetAlert, map[string]any{"id": id}, true, &out); err != nil {
		return nil, err
	}
	if out.Alert == nil {
		// Not what a schema-true console sends (alert is non-null), but a
		// null is still no alert.
		return nil, &GraphQLError{Operation: opGetAlert, Errors: []GraphQLErrorItem{{Message: "alert is null"}}, kind: ErrNotFound}
	}
	return out.Alert, nil
}

// UAMNote is a note of an alert. Raw is the note as the console sent it.
type UAMNote struct {
	ID        string
	AlertID   string
	Text      string
	CreatedAt time.Time
	Raw       json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *UAMNote) UnmarshalJSON(data []byte) error {
	var w struct {
		ID        ID     `json:"id"`
		AlertID   ID     `json:"alertId"`
		Text      string `json:"text"`
		CreatedAt Time   `json:"createdAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*n = UAMNote{ID: string(w.ID), AlertID: string(w.AlertID), Text: w.Text, CreatedAt: w.CreatedAt.Time, Raw: bytes.Clone(data)}
	return nil
}

// MarshalJSON returns Raw.
func (n UAMNote) MarshalJSON() ([]byte, error) { return rawOrNull(n.Raw), nil }

// UAMAlertNotes returns every note of one alert, in the console's order
// (which is not guaranteed to be by time, uam-reference.md §8).
func (c *Client) UAMAlertNotes(ctx context.Context, alertID string) ([]UAMNote, error) {
	if strings.TrimSpace(alertID) == "" {
		return nil, fmt.Errorf("%w: empty alert id", ErrInvalidArgument)
	}
	var out struct {
		AlertNotes struct {
			Data []UAMNote `json:"data"`
		} `json:"alertNotes"`
	}
	if err := c.graphql(ctx, opAlertNotes, queryAlertNotes, map[string]any{"alertId": alertID}, true, &out); err != nil {
		return nil, err
	}
	return out.AlertNotes.Data, nil
}

// UAMAlertUpdate is what UpdateUAMAlerts sets: a status, an analyst
// verdict, or both (UAM enum values, any case).
type UAMAlertUpdate struct {
	Status         string
	AnalystVerdict string
}

// Wire shapes of alertTriggerActions.
type (
	uamAction struct {
		ID      string         `json:"id"`
		Payload map[string]any `json:"payload"`
	}
	uamValue struct {
		Value string `json:"value"`
	}
	uamOrFilter struct {
		Or []uamAndFilter `json:"or"`
	}
	uamAndFilter struct {
		And []*uamFilter `json:"and"`
	}
)

// UpdateUAMAlerts sets the status and/or analyst verdict of the alerts ids
// in one alertTriggerActions call (one action per field). Values are
// checked against the UAM enums first. The call is refused without ids: a
// mutation without a filter acts on every alert in scope. It is never
// retried after it may have reached the console.
func (c *Client) UpdateUAMAlerts(ctx context.Context, ids []string, u UAMAlertUpdate) (*UAMTriggerResult, error) {
	var actions []uamAction
	if u.Status != "" {
		s := UpperSnake(u.Status)
		if err := checkEnum("status", s, uamStatuses); err != nil {
			return nil, err
		}
		actions = append(actions, uamAction{ID: UAMActionStatus, Payload: map[string]any{"status": uamValue{s}}})
	}
	if u.AnalystVerdict != "" {
		v := UpperSnake(u.AnalystVerdict)
		if err := checkEnum("analyst verdict", v, uamVerdicts); err != nil {
			return nil, err
		}
		actions = append(actions, uamAction{ID: UAMActionVerdict, Payload: map[string]any{"analystVerdict": uamValue{v}}})
	}
	if len(actions) == 0 {
		return nil, fmt.Errorf("%w: nothing to update: give a status, an analyst verdict or both", ErrInvalidArgument)
	}
	return c.triggerActions(ctx, ids, actions)
}

// AddUAMAlertNote adds the note text to every alert of ids, in one
// alertTriggerActions call (S1/alert/addNote), so that many alerts get the
// same note at once with a per-alert outcome. text is 1 to UAMMaxNoteBytes
// bytes.
func (c *Client) AddUAMAlertNote(ctx context.Context, ids []string, text string) (*UAMTriggerResult, error) {
	if text == "" || len(text) > UAMMaxNoteBytes {
		return nil, fmt.Errorf("%w: a note is 1 to %d bytes, not %d", ErrInvalidArgument, UAMMaxNoteBytes, len(text))
	}
	return c.triggerActions(ctx, ids, []uamAction{{ID: UAMActionNote, Payload: map[string]any{"note": uamValue{text}}}})
}

func (c *Client) triggerActions(ctx context.Context, ids []string, actions []uamAction) (*UAMTriggerResult, error) {
	if err := checkIDs("alert", ids); err != nil {
		return nil, err
	}
	idVals := make([]*string, len(ids))
	for i := range ids {
		idVals[i] = &ids[i]
	}
	vars := map[string]any{
		"filter":  uamOrFilter{Or: []uamAndFilter{{And: []*uamFilter{{FieldID: uamFieldID, StringIn: &uamStringIn{Values: idVals}}}}}},
		"actions": actions,
	}
	var out struct {
		Result *UAMTriggerResult `json:"alertTriggerActions"`
	}
	if err := c.graphql(ctx, opTriggerActions, mutationTriggerActions, vars, false, &out); err != nil {
		return nil, err
	}
	r := out.Result
	if r == nil {
		return nil, &MalformedResponseError{Method: "POST", Path: PathUAMGraphQL, StatusCode: 200, Err: errors.New("data.alertTriggerActions is null")}
	}
	r.requested = slices.Clone(ids)
	r.nActions = len(actions)
	switch r.Typename {
	case "ActionsTriggered", "TriggerActionsScheduled":
		return r, nil
	case "TriggerActionsError":
		if r.notFound() == nil {
			return nil, &UAMTriggerError{Errors: r.Errors}
		}
		return r, nil
	}
	return nil, &MalformedResponseError{Method: "POST", Path: PathUAMGraphQL, StatusCode: 200,
		Err: fmt.Errorf("alertTriggerActions has unknown __typename %q", r.Typename)}
}

type (
	// UAMTriggerResult is SentinelOne's answer to alertTriggerActions as
	// it was given; Outcome reads it per alert. Typename says which member
	// of the TriggerActionsResult union it is: ActionsTriggered (Actions
	// set), TriggerActionsScheduled (ExecutionID set) or, only when every
	// error named an alert it did not find, TriggerActionsError (Errors set).
	UAMTriggerResult struct {
		Typename    string               `json:"__typename"`
		Actions     []UAMTriggeredAction `json:"actions"`
		ExecutionID string               `json:"executionId"`
		BulkID      string               `json:"bulkActionTriggerId"`
		Errors      []UAMActionsError    `json:"errors"`
		requested   []string
		nActions    int
	}

	// UAMTriggeredAction is one action's per-alert result.
	UAMTriggeredAction struct {
		ActionID string `json:"actionId"`
		Success  []struct {
			ID string `json:"id"`
		} `json:"success"`
		Skip    []UAMSkip    `json:"skip"`
		Failure []UAMFailure `json:"failure"`
	}

	// UAMSkip is an alert an action skipped: Type is SkipReasonType
	// (NO_CHANGE when the value was already set).
	UAMSkip struct {
		ID      string `json:"id"`
		Message string `json:"skipMessage"`
		Type    string `json:"skipType"`
	}

	// UAMFailure is an alert an action failed on: Type is ErrorType
	// (MISSING_PERMISSION, ALERT_NOT_FOUND, ...).
	UAMFailure struct {
		ID      string `json:"id"`
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}

	// UAMActionsError is one entry of a TriggerActionsError. Limit is the
	// payload's limit; PayloadType is its __typename
	// (ActionsErrorLimitPayload or ActionsErrorConcurrentUserLimitPayload),
	// "" when there is no payload.
	UAMActionsError struct {
		Message     string
		PayloadType string
		Limit       int
	}

	// UAMTriggerError is a TriggerActionsError answer: SentinelOne refused
	// the whole request and applied nothing. It matches ErrUAMTriggerRefused.
	UAMTriggerError struct {
		Errors []UAMActionsError
	}

	// UAMOutcome is a trigger result per alert (see Outcome).
	UAMOutcome struct {
		Succeeded []string
		Failed    []UAMAlertFailure
		Skipped   []string
		// Scheduled is SentinelOne's execution id (or, lacking one, its
		// deprecated bulkActionTriggerId) when it answered that the work was
		// scheduled for later, and the word "scheduled" when it gave
		// neither; the other fields are then empty.
		Scheduled string
	}

	// UAMAlertFailure is one alert an action failed on, with a reason for
	// people: "<ErrorType>: <message>".
	UAMAlertFailure struct {
		ID     string
		Reason string
	}
)

// UnmarshalJSON implements json.Unmarshaler.
func (e *UAMActionsError) UnmarshalJSON(data []byte) error {
	var w struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorPayload *struct {
			Typename string  `json:"__typename"`
			Limit    flexInt `json:"limit"`
		} `json:"errorPayload"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = UAMActionsError{Message: w.ErrorMessage}
	if w.ErrorPayload != nil {
		e.PayloadType, e.Limit = w.ErrorPayload.Typename, w.ErrorPayload.Limit.V
	}
	return nil
}

// Error implements error.
func (e *UAMTriggerError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, it := range e.Errors {
		msgs[i] = it.Message
		if it.PayloadType != "" {
			msgs[i] += fmt.Sprintf(" (%s limit %d)", it.PayloadType, it.Limit)
		}
	}
	return "sentinelone: alertTriggerActions refused: " + strings.Join(msgs, "; ")
}

// Is matches ErrUAMTriggerRefused.
func (e *UAMTriggerError) Is(target error) bool { return target == ErrUAMTriggerRefused }

// notFoundRe is the TriggerActionsError text for an unknown alert id seen
// in a peer's test double (uam-reference.md §7.4).
var notFoundRe = regexp.MustCompile(`Alert with ID (\S+?)\.? not found`)

// notFound returns the ids of r's errors when every one of them is an
// "Alert with ID … not found", else nil.
func (r *UAMTriggerResult) notFound() []string {
	var ids []string
	for _, e := range r.Errors {
		m := notFoundRe.FindStringSubmatch(e.Message)
		if m == nil {
			return nil
		}
		ids = append(ids, strings.Trim(m[1], `"'`))
	}
	return ids
}

// Reason codes Outcome uses beside SentinelOne's ErrorType values.
const (
	// UAMNotReported: SentinelOne's answer did not mention the alert (an
	// unknown id, or one outside the token's scope, matches nothing).
	UAMNotReported = "NOT_REPORTED"
	// UAMNotApplied: SentinelOne refused the whole request because of
	// other alerts, so nothing was done to this one.
	UAMNotApplied = "NOT_APPLIED"
)

// Outcome reads r per requested alert.
//
// Decisions (DESIGN.md §10 leaves the merge of several actions open): an
// alert on which any action failed is Failed, with each failure's reason
// (prefixed by the action id when the request had more than one action);
// an alert that every action skipped is Skipped; any other alert (at least
// one success, the rest successes or skips, e.g. the status changed and the
// verdict was already set) Succeeded. A requested alert SentinelOne did not
// mention is Failed with NOT_REPORTED: SentinelOne stays silent on ids its
// filter did not match, and a caller must not read silence as success.
//
// The two shapes an unknown id takes (uam-reference.md §13, uncertainty 4)
// both end as a per-alert failure: an ALERT_NOT_FOUND entry in failure[], or
// a TriggerActionsError "Alert with ID … not found", which refuses the whole
// request: its alerts fail with ALERT_NOT_FOUND and the others with
// NOT_APPLIED.
func (r *UAMTriggerResult) Outcome() UAMOutcome {
	var out UAMOutcome
	switch r.Typename {
	case "TriggerActionsScheduled":
		out.Scheduled = r.ExecutionID
		if out.Scheduled == "" {
			out.Scheduled = r.BulkID
		}
		if out.Scheduled == "" {
			out.Scheduled = "scheduled" // accepted for later without an id: still not nothing
		}
		return out
	case "TriggerActionsError":
		missing := r.notFound()
		for _, id := range r.requested {
			if slices.Contains(missing, id) {
				out.Failed = append(out.Failed, UAMAlertFailure{ID: id, Reason: "ALERT_NOT_FOUND: SentinelOne has no alert with this id"})
			} else {
				out.Failed = append(out.Failed, UAMAlertFailure{ID: id, Reason: UAMNotApplied + ": SentinelOne refused the whole request because of other alerts"})
			}
		}
		return out
	}
	type state struct {
		success, skip int
		reasons       []string
	}
	states := map[string]*state{}
	var order []string
	get := func(id string) *state {
		s, ok := states[id]
		if !ok {
			s = &state{}
			states[id] = s
			order = append(order, id)
		}
		return s
	}
	for _, id := range r.requested {
		get(id)
	}
	for _, a := range r.Actions {
		for _, s := range a.Success {
			get(s.ID).success++
		}
		for _, s := range a.Skip {
			get(s.ID).skip++
		}
		for _, f := range a.Failure {
			reason := f.Type
			switch {
			case reason == "" && f.Message == "":
				reason = "failed"
			case reason == "":
				reason = f.Message
			case f.Message != "":
				reason += ": " + f.Message
			}
			if r.nActions > 1 || len(r.Actions) > 1 {
				reason = a.ActionID + ": " + reason
			}
			st := get(f.ID)
			st.reasons = append(st.reasons, reason)
		}
	}
	for _, id := range order {
		s := states[id]
		switch {
		case len(s.reasons) > 0:
			out.Failed = append(out.Failed, UAMAlertFailure{ID: id, Reason: strings.Join(s.reasons, "; ")})
		case s.success > 0:
			out.Succeeded = append(out.Succeeded, id)
		case s.skip > 0:
			out.Skipped = append(out.Skipped, id)
		default:
			out.Failed = append(out.Failed, UAMAlertFailure{ID: id, Reason: UAMNotReported + ": SentinelOne did not report this alert (unknown id, or outside the token's scope)"})
		}
	}
	return out
}
