package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"time"
)

// Alert is a cloud-detection (STAR / custom rule) alert. Its statuses arrive
// in display case ("In progress", "True positive") and are normalised by
// LowerSnake so they compare with the threat constants; Severity is
// lower-cased ("high"). Raw is the object as the console sent it, and
// MarshalJSON writes Raw.
type Alert struct {
	ID             string
	IncidentStatus string
	AnalystVerdict string
	Severity       string
	RuleID         string
	RuleName       string
	CreatedAt      time.Time
	ReportedAt     time.Time
	UpdatedAt      time.Time
	Raw            json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Alert) UnmarshalJSON(data []byte) error {
	var w struct {
		AlertInfo struct {
			AlertID        ID      `json:"alertId"`
			IncidentStatus *string `json:"incidentStatus"`
			AnalystVerdict *string `json:"analystVerdict"`
			CreatedAt      Time    `json:"createdAt"`
			ReportedAt     Time    `json:"reportedAt"`
			UpdatedAt      Time    `json:"updatedAt"`
		} `json:"alertInfo"`
		RuleInfo struct {
			ID       ID      `json:"id"`
			Name     *string `json:"name"`
			Severity *string `json:"severity"`
		} `json:"ruleInfo"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	ai := w.AlertInfo
	*a = Alert{
		ID: string(ai.AlertID), IncidentStatus: LowerSnake(deref(ai.IncidentStatus)), AnalystVerdict: LowerSnake(deref(ai.AnalystVerdict)),
		Severity: LowerSnake(deref(w.RuleInfo.Severity)), RuleID: string(w.RuleInfo.ID), RuleName: deref(w.RuleInfo.Name),
		CreatedAt: ai.CreatedAt.Time, ReportedAt: ai.ReportedAt.Time, UpdatedAt: ai.UpdatedAt.Time, Raw: bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (a Alert) MarshalJSON() ([]byte, error) { return rawOrNull(a.Raw), nil }

// ListAlerts returns one page of alerts (GET /cloud-detection/alerts).
func (c *Client) ListAlerts(ctx context.Context, f AlertFilter) (*Page[Alert], error) {
	return list[Alert](ctx, c, PathAlerts, f.Values())
}

// AlertPages iterates the pages of alerts matching f.
func (c *Client) AlertPages(ctx context.Context, f AlertFilter) iter.Seq2[*Page[Alert], error] {
	return paginate(ctx, c.log, PathAlerts, f.Cursor, func(ctx context.Context, cursor string) (*Page[Alert], error) {
		f.Cursor = cursor
		return c.ListAlerts(ctx, f)
	})
}

// UpdateAlertVerdict sets the analyst verdict of the alerts ids
// (POST /cloud-detection/alerts/analyst-verdict); verdict may be in any case.
// It returns how many the console affected and is refused without ids.
func (c *Client) UpdateAlertVerdict(ctx context.Context, ids []string, verdict string) (int, error) {
	verdict = LowerSnake(verdict)
	if err := checkEnum("analyst verdict", verdict, analystVerdicts); err != nil {
		return 0, err
	}
	return c.alertAction(ctx, PathAlertVerdict, ids, map[string]string{"analystVerdict": verdict})
}

// UpdateAlertIncident sets the incident status of the alerts ids
// (POST /cloud-detection/alerts/incident); status may be in any case. It
// returns how many the console affected and is refused without ids.
func (c *Client) UpdateAlertIncident(ctx context.Context, ids []string, status string) (int, error) {
	status = LowerSnake(status)
	if err := checkEnum("incident status", status, incidentStatuses); err != nil {
		return 0, err
	}
	return c.alertAction(ctx, PathAlertIncident, ids, map[string]string{"incidentStatus": status})
}

func (c *Client) alertAction(ctx context.Context, path string, ids []string, data map[string]string) (int, error) {
	if err := checkIDs("alert", ids); err != nil {
		return 0, err
	}
	return c.affected(ctx, http.MethodPost, path, actionBody{Filter: idsFilter{IDs: ids}, Data: data})
}
