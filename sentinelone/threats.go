package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Threat and alert enum values, in the lower_snake form of threat objects
// and of s1bridge requests.
const (
	IncidentUnresolved = "unresolved"
	IncidentInProgress = "in_progress"
	IncidentResolved   = "resolved"

	VerdictUndefined     = "undefined"
	VerdictTruePositive  = "true_positive"
	VerdictFalsePositive = "false_positive"
	VerdictSuspicious    = "suspicious"

	MitigationNotMitigated   = "not_mitigated"
	MitigationMitigated      = "mitigated"
	MitigationMarkedAsBenign = "marked_as_benign"
)

var (
	incidentStatuses = []string{IncidentUnresolved, IncidentInProgress, IncidentResolved}
	analystVerdicts  = []string{VerdictUndefined, VerdictTruePositive, VerdictFalsePositive, VerdictSuspicious}
)

// Threat is a v2.1 threat. The typed fields come from threatInfo and
// agentRealtimeInfo, with statuses normalised by LowerSnake; Raw is the
// object exactly as the console sent it, and MarshalJSON writes Raw, so a
// Threat passes through unchanged.
//
// Decoding refuses a threat without a threatInfo object (ErrThreatNotV21):
// the flat v2.0 shape would otherwise decode with empty statuses and zero
// timestamps and corrupt any watermark built on them.
type Threat struct {
	ID                string
	Name              string
	SHA1              string
	Classification    string
	ConfidenceLevel   string
	IncidentStatus    string
	AnalystVerdict    string
	MitigationStatus  string
	DetectionEngines  []DetectionEngine
	CreatedAt         time.Time
	UpdatedAt         time.Time
	IdentifiedAt      time.Time
	AgentID           string
	AgentComputerName string
	SiteID            string
	GroupID           string
	AccountID         string
	Raw               json.RawMessage
}

// threatInfoWire is the threatInfo object of a v2.1 threat, as far as
// Threat needs it.
type threatInfoWire struct {
	ThreatID         ID                `json:"threatId"`
	ThreatName       *string           `json:"threatName"`
	SHA1             *string           `json:"sha1"`
	Classification   *string           `json:"classification"`
	ConfidenceLevel  *string           `json:"confidenceLevel"`
	IncidentStatus   *string           `json:"incidentStatus"`
	AnalystVerdict   *string           `json:"analystVerdict"`
	MitigationStatus *string           `json:"mitigationStatus"`
	DetectionEngines []DetectionEngine `json:"detectionEngines"`
	CreatedAt        Time              `json:"createdAt"`
	UpdatedAt        Time              `json:"updatedAt"`
	IdentifiedAt     Time              `json:"identifiedAt"`
}

// agentInfoWire is the agentRealtimeInfo object of a v2.1 threat, as far as
// Threat needs it.
type agentInfoWire struct {
	AgentID           ID     `json:"agentId"`
	AgentComputerName string `json:"agentComputerName"`
	SiteID            ID     `json:"siteId"`
	GroupID           ID     `json:"groupId"`
	AccountID         ID     `json:"accountId"`
}

// threatWire is a v2.1 threat as far as Threat needs it, decoded in one pass.
type threatWire struct {
	ID         ID              `json:"id"`
	ThreatInfo *threatInfoWire `json:"threatInfo"`
	Agent      agentInfoWire   `json:"agentRealtimeInfo"`
}

// newThreat builds a Threat from its decoded parts; data is the whole
// object, kept as Raw.
func newThreat(id ID, ti *threatInfoWire, a *agentInfoWire, data []byte) Threat {
	if id == "" {
		id = ti.ThreatID
	}
	return Threat{
		ID:                string(id),
		Name:              deref(ti.ThreatName),
		SHA1:              deref(ti.SHA1),
		Classification:    deref(ti.Classification),
		ConfidenceLevel:   deref(ti.ConfidenceLevel),
		IncidentStatus:    LowerSnake(deref(ti.IncidentStatus)),
		AnalystVerdict:    LowerSnake(deref(ti.AnalystVerdict)),
		MitigationStatus:  LowerSnake(deref(ti.MitigationStatus)),
		DetectionEngines:  ti.DetectionEngines,
		CreatedAt:         ti.CreatedAt.Time,
		UpdatedAt:         ti.UpdatedAt.Time,
		IdentifiedAt:      ti.IdentifiedAt.Time,
		AgentID:           string(a.AgentID),
		AgentComputerName: a.AgentComputerName,
		SiteID:            string(a.SiteID),
		GroupID:           string(a.GroupID),
		AccountID:         string(a.AccountID),
		Raw:               bytes.Clone(data),
	}
}

// UnmarshalJSON implements json.Unmarshaler. The common case decodes in one
// pass (ingestion reads thousands of 4 KB threats a second); a threat it
// refuses goes through the slower decoder, whose error says why.
func (t *Threat) UnmarshalJSON(data []byte) error {
	var w threatWire
	if err := json.Unmarshal(data, &w); err != nil || w.ThreatInfo == nil {
		return t.unmarshalSlow(data)
	}
	*t = newThreat(w.ID, w.ThreatInfo, &w.Agent, data)
	return nil
}

// unmarshalSlow is the two-pass decoder: it tells exactly what is wrong
// with a threat the one-pass decoder refused.
func (t *Threat) unmarshalSlow(data []byte) error {
	var w struct {
		ID         ID              `json:"id"`
		ThreatInfo json.RawMessage `json:"threatInfo"`
		Agent      agentInfoWire   `json:"agentRealtimeInfo"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if ti := bytes.TrimSpace(w.ThreatInfo); len(ti) == 0 || ti[0] != '{' {
		return fmt.Errorf("%w (threat %q)", ErrThreatNotV21, w.ID)
	}
	var ti threatInfoWire
	if err := json.Unmarshal(w.ThreatInfo, &ti); err != nil {
		return fmt.Errorf("threat %q threatInfo: %w", w.ID, err)
	}
	*t = newThreat(w.ID, &ti, &w.Agent, data)
	return nil
}

// MarshalJSON returns Raw.
func (t Threat) MarshalJSON() ([]byte, error) { return rawOrNull(t.Raw), nil }

// ListThreats returns one page of threats (GET /threats).
func (c *Client) ListThreats(ctx context.Context, f ThreatFilter) (*Page[Threat], error) {
	return list[Threat](ctx, c, PathThreats, f.Values())
}

// ThreatPages iterates the pages of threats matching f from f.Cursor on,
// sending f unchanged with each cursor.
func (c *Client) ThreatPages(ctx context.Context, f ThreatFilter) iter.Seq2[*Page[Threat], error] {
	return paginate(ctx, c.log, PathThreats, f.Cursor, func(ctx context.Context, cursor string) (*Page[Threat], error) {
		f.Cursor = cursor
		return c.ListThreats(ctx, f)
	})
}

// ThreatUpdateResult is the answer to a threat status or verdict update.
// Details is SentinelOne's per-threat array as returned (null when absent).
type ThreatUpdateResult struct {
	Affected int
	Details  json.RawMessage
}

// UpdateThreatIncident sets the incident status of the threats ids, and their
// analyst verdict too when verdict is not "" (POST /threats/incident). Values
// are normalised with LowerSnake and must be known ones. The call is refused
// without ids: an empty filter would update every threat in scope.
func (c *Client) UpdateThreatIncident(ctx context.Context, ids []string, status, verdict string) (*ThreatUpdateResult, error) {
	status, verdict = LowerSnake(status), LowerSnake(verdict)
	if err := checkEnum("incident status", status, incidentStatuses); err != nil {
		return nil, err
	}
	if verdict != "" {
		if err := checkEnum("analyst verdict", verdict, analystVerdicts); err != nil {
			return nil, err
		}
	}
	data := map[string]string{"incidentStatus": status}
	if verdict != "" {
		data["analystVerdict"] = verdict
	}
	return c.updateThreats(ctx, PathThreatIncident, ids, data)
}

// UpdateThreatVerdict sets the analyst verdict of the threats ids
// (POST /threats/analyst-verdict). It is refused without ids.
func (c *Client) UpdateThreatVerdict(ctx context.Context, ids []string, verdict string) (*ThreatUpdateResult, error) {
	verdict = LowerSnake(verdict)
	if err := checkEnum("analyst verdict", verdict, analystVerdicts); err != nil {
		return nil, err
	}
	return c.updateThreats(ctx, PathThreatVerdict, ids, map[string]string{"analystVerdict": verdict})
}

func (c *Client) updateThreats(ctx context.Context, path string, ids []string, data map[string]string) (*ThreatUpdateResult, error) {
	if err := checkIDs("threat", ids); err != nil {
		return nil, err
	}
	var out struct {
		Affected int             `json:"affected"`
		Details  json.RawMessage `json:"details"`
	}
	body := actionBody{Filter: idsFilter{IDs: ids}, Data: data}
	if err := c.do(ctx, http.MethodPost, path, path, nil, body, func(b []byte) error { return decodeData(b, &out) }); err != nil {
		return nil, err
	}
	return &ThreatUpdateResult{Affected: out.Affected, Details: out.Details}, nil
}

// actionBody is the envelope of action and mutation bodies.
type actionBody struct {
	Filter any `json:"filter"`
	Data   any `json:"data"`
}

type idsFilter struct {
	IDs []string `json:"ids"`
}

// maxIDs is the largest ids list the console accepts in a filter.
const maxIDs = 5000

// checkIDs refuses an empty ids list, an empty id and more than maxIDs.
func checkIDs(what string, ids []string) error {
	switch {
	case len(ids) == 0:
		return fmt.Errorf("%w: no %s ids (an empty filter would act on every %s in scope)", ErrInvalidArgument, what, what)
	case len(ids) > maxIDs:
		return fmt.Errorf("%w: %d %s ids, more than %d", ErrInvalidArgument, len(ids), what, maxIDs)
	case slices.Contains(ids, ""):
		return fmt.Errorf("%w: empty %s id", ErrInvalidArgument, what)
	}
	return nil
}

func checkEnum(what, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("%w: %s %q is not one of %v", ErrInvalidArgument, what, v, allowed)
	}
	return nil
}

// list fetches one page of a list whose data is an array of T.
func list[T any](ctx context.Context, c *Client, path string, q url.Values) (*Page[T], error) {
	var p *Page[T]
	err := c.do(ctx, http.MethodGet, path, path, q, nil, func(b []byte) (err error) {
		p, err = decodePage[T](b)
		return err
	})
	return p, err
}

// affected posts body to path and returns data.affected.
func (c *Client) affected(ctx context.Context, method, path string, body any) (int, error) {
	var out struct {
		Affected int `json:"affected"`
	}
	err := c.do(ctx, method, path, path, nil, body, func(b []byte) error { return decodeData(b, &out) })
	return out.Affected, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func rawOrNull(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return []byte("null")
	}
	return raw
}
