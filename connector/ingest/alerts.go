package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// UAMRetry is how long alert ingestion waits before asking a console
// without Unified Alerts again (DESIGN.md §10).
const UAMRetry = time.Hour

// alertFields are the fields alert ingestion compares (DESIGN.md §10). The
// values are stored and published in lower_snake ("in_progress",
// "true_positive_malware"), the form of the subjects' <to> token, although
// the alert in the event keeps UAM's UPPER_SNAKE.
var alertFields = []Field{
	{Name: events.FieldStatus, Kind: subjects.KindStatus, Key: "s", Resolved: sentinelone.LowerSnake(sentinelone.UAMStatusResolved)},
	{Name: events.FieldAnalystVerdict, Kind: subjects.KindVerdict, Key: "v"},
}

// Alerts is the source of Unified Alerts (UAM): the GraphQL alerts query
// by updatedAt ascending, every confidence level named
// (sentinelone.UAMIngestFilter), through client. A console without Unified
// Alerts (404 or 403 on the GraphQL path) halts it without making the
// replica unready, and it asks again every retry (UAMRetry when 0).
func Alerts(client *sentinelone.Client, retry time.Duration) Source {
	if retry <= 0 {
		retry = UAMRetry
	}
	return alerts{client, retry}
}

type alerts struct {
	client *sentinelone.Client
	retry  time.Duration
}

func (alerts) Entity() subjects.Entity { return subjects.EntityAlert }

func (alerts) Fields() []Field { return alertFields }

func (s alerts) Pages(ctx context.Context, since time.Time, pageSize int) iter.Seq2[[]Item, error] {
	// Background work: behind mutating and read actions in the console's
	// rate budget (DESIGN.md §14), whatever the ingest core's context says.
	ctx = sentinelone.WithLane(ctx, sentinelone.LaneBackground)
	return func(yield func([]Item, error) bool) {
		for page, err := range s.client.UAMAlertPages(ctx, sentinelone.UAMIngestFilter(since, pageSize)) {
			if err != nil {
				yield(nil, err)
				return
			}
			items := make([]Item, len(page.Items))
			for i := range page.Items {
				items[i] = alertItem(&page.Items[i])
			}
			if !yield(items, nil) {
				return
			}
		}
	}
}

func (alerts) Decode(raw json.RawMessage) (Item, error) {
	var a sentinelone.UAMAlert
	if err := json.Unmarshal(raw, &a); err != nil {
		return Item{}, err
	}
	return alertItem(&a), nil
}

func (s alerts) Halt(err error) *Halt {
	switch {
	case errors.Is(err, sentinelone.ErrUAMUnavailable):
		// Checked first: a 403 here is the console's answer on the GraphQL
		// path, not a refused token (threats would say so).
		return &Halt{
			Err:     fmt.Errorf("this console does not serve Unified Alerts, or the API token may not read them; asking again every %s: %w", s.retry, err),
			Advice:  "alert ingestion stopped: no Unified Alerts on this console (404/403 on the GraphQL path); threat ingestion goes on",
			RetryIn: s.retry, Ready: true,
		}
	case errors.Is(err, sentinelone.ErrUnauthorized):
		return &Halt{Err: err, Advice: "SentinelOne refused the API token (401); alert ingestion of this console stopped until s1bridge restarts with a valid token"}
	}
	return nil
}

func alertItem(a *sentinelone.UAMAlert) Item {
	return Item{
		ID: a.ID, CreatedAt: a.DetectedAt, UpdatedAt: a.UpdatedAt, Raw: a.Raw,
		Values: [MaxFields]string{sentinelone.LowerSnake(a.Status), sentinelone.LowerSnake(a.AnalystVerdict)},
	}
}
