package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"time"

	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// threatFields are the fields threat ingestion compares (DESIGN.md §6),
// with the state keys release 1 stored them under.
var threatFields = []Field{
	{Name: subjects.FieldIncidentStatus, Kind: subjects.KindStatus, Key: "s", Resolved: sentinelone.IncidentResolved},
	{Name: subjects.FieldAnalystVerdict, Kind: subjects.KindVerdict, Key: "v"},
	{Name: subjects.FieldMitigationStatus, Kind: subjects.KindMitigation, Key: "m"},
}

// Threats is the threat source: GET /threats by updatedAt through client.
func Threats(client *sentinelone.Client) Source { return threats{client} }

type threats struct{ client *sentinelone.Client }

func (threats) Entity() subjects.Entity { return subjects.EntityThreat }

func (threats) Fields() []Field { return threatFields }

func (s threats) Pages(ctx context.Context, since time.Time, pageSize int) iter.Seq2[[]Item, error] {
	f := sentinelone.ThreatFilter{UpdatedAtGte: since, SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: pageSize}
	return func(yield func([]Item, error) bool) {
		for page, err := range s.client.ThreatHeadPages(ctx, f) {
			if err != nil {
				yield(nil, err)
				return
			}
			items := make([]Item, len(page.Items))
			for i := range page.Items {
				items[i] = threatItem(&page.Items[i])
			}
			if !yield(items, nil) {
				return
			}
		}
	}
}

func (threats) Decode(raw json.RawMessage) (Item, error) {
	var t sentinelone.ThreatHead
	if err := json.Unmarshal(raw, &t); err != nil {
		return Item{}, err
	}
	return threatItem(&t), nil
}

func (threats) Halt(err error) *Halt {
	if errors.Is(err, sentinelone.ErrUnauthorized) || errors.Is(err, sentinelone.ErrForbidden) {
		return &Halt{Err: err, Advice: "SentinelOne refused the API token (401/403); polling of this console stopped until s1bridge restarts with a valid token and permission Threats.view"}
	}
	return nil
}

// threatItem is what ingestion reads of a threat: its head, not the dozen
// members more a Threat has (most of the decoding of a 4 MB page).
func threatItem(t *sentinelone.ThreatHead) Item {
	return Item{
		ID: t.ID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Raw: t.Raw,
		Values: [MaxFields]string{t.IncidentStatus, t.AnalystVerdict, t.MitigationStatus},
	}
}
