package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the response actions (response-actions.md): threat
// mitigation, notes, timeline and file fetch, full disk scans and the agent
// count. Every mutating call here sends its targets as an explicit
// filter.ids list and nothing else, and is refused without ids: SentinelOne
// applies these actions to everything in scope when the filter is empty.

// Path templates of the response actions, relative to APIPrefix. They are
// also the path label of logs and Observer events.
const (
	PathThreatMitigate     = "/threats/mitigate/{action}"
	PathThreatNotes        = "/threats/notes"
	PathThreatNotesOf      = "/threats/{threat_id}/notes"
	PathThreatTimeline     = "/threats/{threat_id}/timeline"
	PathThreatFetchFile    = "/threats/fetch-file"
	PathAgentsInitiateScan = "/agents/actions/initiate-scan"
	PathAgentsAbortScan    = "/agents/actions/abort-scan"
	PathAgentsCount        = "/agents/count"

	pathActionPlaceholder = "{action}"
	pathThreatPlaceholder = "{threat_id}"
)

// Mitigation actions, as the path of POST /threats/mitigate/{action} spells
// them. network-quarantine is left out: the Swagger enum has a null in its
// place and isolation is DisconnectAgents.
const (
	MitigateKill         = "kill"
	MitigateQuarantine   = "quarantine"
	MitigateUnquarantine = "un-quarantine"
	MitigateRemediate    = "remediate"
	MitigateRollback     = "rollback-remediation"
)

// mitigations maps the lower_snake name of each mitigation action to its
// path value.
var mitigations = map[string]string{
	"kill":                 MitigateKill,
	"quarantine":           MitigateQuarantine,
	"un_quarantine":        MitigateUnquarantine,
	"remediate":            MitigateRemediate,
	"rollback_remediation": MitigateRollback,
}

// Bounds of a threat note's text (Swagger: minLength 2, maxLength 10000,
// counted in characters).
const (
	NoteMinChars = 2
	NoteMaxChars = 10000
)

// MitigationResult is SentinelOne's answer to a mitigation. Affected counts
// the threats it accepted (not those skipped, e.g. a rollback of a threat on
// Linux); Details is its per-threat array of reports and skips as it
// returned it (null when it sent none).
type MitigationResult struct {
	Affected int
	Details  json.RawMessage
}

// MitigateThreats applies a mitigation action to the threats ids
// (POST /threats/mitigate/{action}). action is one of the Mitigate*
// constants, or the same in lower_snake (un_quarantine,
// rollback_remediation). The call is refused without ids.
func (c *Client) MitigateThreats(ctx context.Context, action string, ids []string) (*MitigationResult, error) {
	path, ok := mitigations[LowerSnake(strings.ReplaceAll(action, "-", "_"))]
	if !ok {
		return nil, fmt.Errorf("%w: mitigation action %q is not one of kill, quarantine, un-quarantine, remediate, rollback-remediation (isolation is DisconnectAgents)", ErrInvalidArgument, action)
	}
	if err := checkIDs("threat", ids); err != nil {
		return nil, err
	}
	var out struct {
		Affected int             `json:"affected"`
		Details  json.RawMessage `json:"details"`
	}
	body := actionBody{Filter: idsFilter{IDs: ids}, Data: struct{}{}}
	p := strings.Replace(PathThreatMitigate, pathActionPlaceholder, path, 1)
	if err := c.do(ctx, http.MethodPost, PathThreatMitigate, p, nil, body, func(b []byte) error { return decodeData(b, &out) }); err != nil {
		return nil, err
	}
	return &MitigationResult{Affected: out.Affected, Details: out.Details}, nil
}

// AddThreatNote adds one note with text to each of the threats ids
// (POST /threats/notes) and returns how many the console affected. text is
// NoteMinChars to NoteMaxChars characters. The call is refused without ids.
func (c *Client) AddThreatNote(ctx context.Context, ids []string, text string) (int, error) {
	if n := utf8.RuneCountInString(text); n < NoteMinChars || n > NoteMaxChars {
		return 0, fmt.Errorf("%w: a note is %d to %d characters, not %d", ErrInvalidArgument, NoteMinChars, NoteMaxChars, n)
	}
	if err := checkIDs("threat", ids); err != nil {
		return 0, err
	}
	return c.affected(ctx, http.MethodPost, PathThreatNotes, actionBody{Filter: idsFilter{IDs: ids}, Data: map[string]string{"text": text}})
}

// Note is a threat note. Raw is the object as the console sent it, and
// MarshalJSON writes Raw.
type Note struct {
	ID        string
	Text      string
	Creator   string
	CreatorID string
	Edited    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	Raw       json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Note) UnmarshalJSON(data []byte) error {
	var w struct {
		ID        ID      `json:"id"`
		Text      *string `json:"text"`
		Creator   *string `json:"creator"`
		CreatorID ID      `json:"creatorId"`
		Edited    Bool    `json:"edited"`
		CreatedAt Time    `json:"createdAt"`
		UpdatedAt Time    `json:"updatedAt"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*n = Note{
		ID: string(w.ID), Text: deref(w.Text), Creator: deref(w.Creator), CreatorID: string(w.CreatorID), Edited: bool(w.Edited),
		CreatedAt: w.CreatedAt.Time, UpdatedAt: w.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (n Note) MarshalJSON() ([]byte, error) { return rawOrNull(n.Raw), nil }

// NoteFilter selects the notes of one threat (GET /threats/{threat_id}/notes).
type NoteFilter struct {
	CreatorLike string // part of the creator's name
	CreatorID   string
	SortBy      string // createdAt or updatedAt
	SortOrder   string
	Limit       int
	Cursor      string
}

// Values encodes f as query parameters.
func (f NoteFilter) Values() url.Values {
	q := query{}
	q.str("creator__like", f.CreatorLike)
	q.str("creatorId", f.CreatorID)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// ThreatNotes returns one page of the notes of threat threatID
// (GET /threats/{threat_id}/notes). An unknown threat has no notes.
func (c *Client) ThreatNotes(ctx context.Context, threatID string, f NoteFilter) (*Page[Note], error) {
	if err := checkPathID("threat", threatID); err != nil {
		return nil, err
	}
	return listAt[Note](ctx, c, PathThreatNotesOf, strings.Replace(PathThreatNotesOf, pathThreatPlaceholder, threatID, 1), f.Values())
}

// TimelineFilter selects the timeline entries of one threat
// (GET /threats/{threat_id}/timeline).
type TimelineFilter struct {
	ActivityTypes []int
	Query         string // full text over hash and descriptions
	SiteIDs       []string
	GroupIDs      []string
	AccountIDs    []string
	SortBy        string // createdAt, activityType, hash, primaryDescription, secondaryDescription
	SortOrder     string
	Limit         int
	Cursor        string
}

// Values encodes f as query parameters.
func (f TimelineFilter) Values() url.Values {
	q := query{}
	q.ints("activityTypes", f.ActivityTypes)
	q.str(paramQuery, f.Query)
	q.csv(paramSiteIDs, f.SiteIDs)
	q.csv(paramGroupIDs, f.GroupIDs)
	q.csv(paramAcctIDs, f.AccountIDs)
	q.page(f.Limit, f.Cursor, f.SortBy, f.SortOrder)
	return url.Values(q)
}

// ThreatTimeline returns one page of the timeline of threat threatID
// (GET /threats/{threat_id}/timeline): activity-shaped entries.
func (c *Client) ThreatTimeline(ctx context.Context, threatID string, f TimelineFilter) (*Page[Activity], error) {
	if err := checkPathID("threat", threatID); err != nil {
		return nil, err
	}
	return listAt[Activity](ctx, c, PathThreatTimeline, strings.Replace(PathThreatTimeline, pathThreatPlaceholder, threatID, 1), f.Values())
}

// FetchThreatFile asks the agent of threat threatID to upload the threat's
// file as a ZIP archive encrypted with password (POST /threats/fetch-file)
// and returns how many threats the console affected (0 or 1). The console
// takes exactly one threat per call. password is a per-call secret: it is
// sent in the body only and redacted, like the token, from every log line,
// error and Observer event of the call. The console's password rules are
// not published; the client refuses only an empty one.
func (c *Client) FetchThreatFile(ctx context.Context, threatID, password string) (int, error) {
	if err := checkPathID("threat", threatID); err != nil {
		return 0, err
	}
	if password == "" {
		return 0, fmt.Errorf("%w: empty fetch-file password", ErrInvalidArgument)
	}
	var out struct {
		Affected int `json:"affected"`
	}
	body := actionBody{Filter: idsFilter{IDs: []string{threatID}}, Data: map[string]string{"password": password}}
	err := c.doSecret(ctx, http.MethodPost, PathThreatFetchFile, PathThreatFetchFile, nil, body,
		func(b []byte) error { return decodeData(b, &out) }, []string{password})
	return out.Affected, err
}

// InitiateScan starts a full disk scan on the agents ids
// (POST /agents/actions/initiate-scan) and returns how many the console
// affected. It is refused without ids.
func (c *Client) InitiateScan(ctx context.Context, ids []string) (int, error) {
	return c.agentAction(ctx, PathAgentsInitiateScan, ids)
}

// AbortScan stops the full disk scan of the agents ids
// (POST /agents/actions/abort-scan) and returns how many the console
// affected. It is refused without ids.
func (c *Client) AbortScan(ctx context.Context, ids []string) (int, error) {
	return c.agentAction(ctx, PathAgentsAbortScan, ids)
}

// CountAgents returns how many agents match f (GET /agents/count). The
// paging and sorting fields of f are not sent: the count takes none.
func (c *Client) CountAgents(ctx context.Context, f AgentFilter) (int, error) {
	f.Limit, f.Cursor, f.SortBy, f.SortOrder = 0, "", "", ""
	var out struct {
		Total *int `json:"total"`
	}
	err := c.do(ctx, http.MethodGet, PathAgentsCount, PathAgentsCount, f.Values(), nil, func(b []byte) error {
		if err := decodeData(b, &out); err != nil {
			return err
		}
		if out.Total == nil {
			return fmt.Errorf("answer has no data.total")
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return *out.Total, nil
}

// checkPathID refuses an id that is not a string of digits: it goes into a
// URL path, where anything else could name another resource.
func checkPathID(what, id string) error {
	if id == "" || strings.Trim(id, "0123456789") != "" {
		return fmt.Errorf("%w: %s id %q is not a string of digits", ErrInvalidArgument, what, id)
	}
	return nil
}

// listAt fetches one page of a list whose data is an array of T, at path
// (tmpl expanded).
func listAt[T any](ctx context.Context, c *Client, tmpl, path string, q url.Values) (*Page[T], error) {
	var p *Page[T]
	err := c.do(ctx, http.MethodGet, tmpl, path, q, nil, func(b []byte) (err error) {
		p, err = decodePage[T](b)
		return err
	})
	return p, err
}
