package ingest

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/s1bridge/s1bridge/subjects"
)

// MaxFields is the most fields a Source may compare.
const MaxFields = 4

// Source is one kind of SentinelOne object ingestion publishes the changes
// of: threats now, UAM alerts next (DESIGN.md §10). It says how to read the
// objects and which of their fields to compare; the Ingester does the rest
// (lease, watermark, overlap, diff, commit, recovery, status), the same way
// for every source. A Source is used by one goroutine at a time.
type Source interface {
	// Entity names the objects: their event subjects, the keys of their
	// states and their progress, their event ids and types, and the member
	// of an event's data that holds the object.
	Entity() subjects.Entity
	// Fields are the compared fields, at most MaxFields; a change of one is
	// an event. Their order is the order of Item.Values.
	Fields() []Field
	// Pages reads the objects updated at or after since, by updatedAt
	// ascending, pageSize a page, following the console's cursor with the
	// same filters, and stops after yielding an error.
	Pages(ctx context.Context, since time.Time, pageSize int) iter.Seq2[[]Item, error]
	// Decode reads one object as an event's data holds it (the bytes Item.Raw
	// had): how a new leader recovers a state published before a failure.
	Decode(raw json.RawMessage) (Item, error)
	// Halt says whether a poll error stops the ingestion of this source
	// rather than being retried with backoff, and how; nil means retry.
	Halt(err error) *Halt
}

// Field is one field ingestion compares.
type Field struct {
	// Name is the field's name in change.field and in the event id
	// (subjects.FieldIncidentStatus).
	Name string
	// Kind is the subject token of its change (subjects.KindStatus); its
	// event type is subjects.ChangedType(entity, Kind).
	Kind string
	// Key is its key in the stored state, short since there is one state per
	// object: {"s":"resolved","v":"undefined","m":"mitigated","u":"…"} for
	// a threat. It must not be "u", the key of updatedAt.
	Key string
	// Resolved, when not empty, is the value whose change has the type
	// subjects.ResolvedType(entity) instead.
	Resolved string
}

// Item is what ingestion reads of one object.
type Item struct {
	ID string
	// CreatedAt is the time of the created event (a threat's createdAt).
	CreatedAt time.Time
	// UpdatedAt orders the object's versions; it is the time of its change
	// events and part of their ids.
	UpdatedAt time.Time
	// Values are the compared fields, in the order of Source.Fields.
	Values [MaxFields]string
	// Raw is the object as SentinelOne sent it, already checked to be JSON:
	// it goes into the events as it is. The ingester sets it to nil once the
	// object's events are made: it may hold the whole page's answer.
	Raw json.RawMessage
}

// Halt is a poll error that stops the ingestion of a source instead of
// being retried with backoff: a refused token, a console without the API.
// The replica keeps the lease meanwhile, so that no other replica tries the
// same in a loop.
type Halt struct {
	// Err is what stopped it; ingest.status (lastError) and /readyz say it.
	Err error
	// Advice is logged with it: what an operator should do.
	Advice string
	// RetryIn is when to poll again; 0 means not before s1bridge restarts.
	RetryIn time.Duration
	// Ready keeps /readyz at 200 meanwhile: nothing is broken (a console
	// that has no alerts to give), as opposed to a token SentinelOne refuses.
	Ready bool
}
