package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"
)

// ThreatHead is what ingestion reads of a v2.1 threat: its id, statuses and
// timestamps, and Raw, the object as sent. Threat reads these the same way
// (ID, the statuses normalised by LowerSnake, createdAt and updatedAt of
// threatInfo) and a dozen members more; ingestion reads thousands of
// threats a second and passes them on as Raw, so it asks for heads.
//
// Like Threat, decoding refuses a threat without a threatInfo object
// (ErrThreatNotV21). Members a head does not read are only checked to be
// JSON: an agentRealtimeInfo of an unexpected type, which Threat refuses,
// does not stop a head.
type ThreatHead struct {
	ID               string
	IncidentStatus   string
	AnalystVerdict   string
	MitigationStatus string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	Raw              json.RawMessage
}

// threatHeadWire is a v2.1 threat as far as ThreatHead needs it.
type threatHeadWire struct {
	ID         ID `json:"id"`
	ThreatInfo *struct {
		ThreatID         ID      `json:"threatId"`
		IncidentStatus   *string `json:"incidentStatus"`
		AnalystVerdict   *string `json:"analystVerdict"`
		MitigationStatus *string `json:"mitigationStatus"`
		CreatedAt        Time    `json:"createdAt"`
		UpdatedAt        Time    `json:"updatedAt"`
	} `json:"threatInfo"`
}

// UnmarshalJSON implements json.Unmarshaler: the decoder of a head the
// one-pass reader leaves alone, and of a threat read on its own.
func (h *ThreatHead) UnmarshalJSON(data []byte) error {
	var w threatHeadWire
	if err := json.Unmarshal(data, &w); err != nil || w.ThreatInfo == nil {
		// As Threat.unmarshalSlow: say whether it is the v2.0 shape.
		var shape struct {
			ID         ID              `json:"id"`
			ThreatInfo json.RawMessage `json:"threatInfo"`
		}
		if serr := json.Unmarshal(data, &shape); serr != nil {
			return serr
		}
		if ti := bytes.TrimSpace(shape.ThreatInfo); len(ti) == 0 || ti[0] != '{' {
			return fmt.Errorf("%w (threat %q)", ErrThreatNotV21, shape.ID)
		}
		return fmt.Errorf("threat %q threatInfo: %w", shape.ID, err)
	}
	id := w.ID
	if id == "" {
		id = w.ThreatInfo.ThreatID
	}
	*h = ThreatHead{
		ID:               string(id),
		IncidentStatus:   LowerSnake(deref(w.ThreatInfo.IncidentStatus)),
		AnalystVerdict:   LowerSnake(deref(w.ThreatInfo.AnalystVerdict)),
		MitigationStatus: LowerSnake(deref(w.ThreatInfo.MitigationStatus)),
		CreatedAt:        w.ThreatInfo.CreatedAt.Time,
		UpdatedAt:        w.ThreatInfo.UpdatedAt.Time,
		Raw:              bytes.Clone(data),
	}
	return nil
}

// MarshalJSON returns Raw.
func (h ThreatHead) MarshalJSON() ([]byte, error) { return rawOrNull(h.Raw), nil }

// ListThreatHeads is ListThreats reading only each threat's head.
func (c *Client) ListThreatHeads(ctx context.Context, f ThreatFilter) (*Page[ThreatHead], error) {
	return list[ThreatHead](ctx, c, PathThreats, f.Values())
}

// ThreatHeadPages is ThreatPages reading only each threat's head.
func (c *Client) ThreatHeadPages(ctx context.Context, f ThreatFilter) iter.Seq2[*Page[ThreatHead], error] {
	return paginate(ctx, c.log, PathThreats, f.Cursor, func(ctx context.Context, cursor string) (*Page[ThreatHead], error) {
		f.Cursor = cursor
		return c.ListThreatHeads(ctx, f)
	})
}

// The one-pass reader of a head (fastjson.go).

var (
	headFields = newFields("id", "threatInfo")
	// headInfoNames are the members of threatInfo a head reads, in the
	// order of headRef.readInfo's indexes; a Threat reads them first too.
	headInfoNames  = []string{"threatId", "incidentStatus", "analystVerdict", "mitigationStatus", "createdAt", "updatedAt"}
	headInfoFields = newFields(headInfoNames...)
)

func (*ThreatHead) fastFields() *fields { return headFields }

func (h *ThreatHead) readMember(i int, v []byte, st *itemScratch) bool {
	var ok bool
	switch i {
	case 0:
		h.ID, ok = fastID(v)
	case 1:
		// A threat without a threatInfo object is refused by
		// UnmarshalJSON, which says why.
		st.seen = true
		ok = v[0] == '{' && readMembers(v, headInfoFields, func(j int, v []byte) bool { return h.readInfo(j, v, st) })
	}
	return ok
}

func (h *ThreatHead) fastNested(i int, st *itemScratch) (*fields, func(j int, v []byte) bool) {
	if i == 1 {
		st.seen = true
		return headInfoFields, func(j int, v []byte) bool { return h.readInfo(j, v, st) }
	}
	return nil, nil
}

func (h *ThreatHead) finish(raw []byte, st *itemScratch) bool { return h.ref().finish(raw, st) }

// readInfo reads member i of threatInfo.
func (h *ThreatHead) readInfo(i int, v []byte, st *itemScratch) bool {
	return h.ref().readInfo(i, v, st)
}

func (h *ThreatHead) ref() headRef {
	return headRef{&h.ID, &h.IncidentStatus, &h.AnalystVerdict, &h.MitigationStatus, &h.CreatedAt, &h.UpdatedAt, &h.Raw}
}

// headRef points at a threat's head fields, in a ThreatHead or a Threat:
// both read them the same way (as their UnmarshalJSON do).
type headRef struct {
	id, status, verdict, mitigation *string
	created, updated                *time.Time
	raw                             *json.RawMessage
}

// readInfo reads member i of headInfoNames; the threatId goes to st, the
// id of a threat without one.
func (r headRef) readInfo(i int, v []byte, st *itemScratch) bool {
	var ok bool
	switch i {
	case 0:
		st.id, ok = fastID(v)
	case 1:
		*r.status, ok = fastOptString(v)
	case 2:
		*r.verdict, ok = fastOptString(v)
	case 3:
		*r.mitigation, ok = fastOptString(v)
	case 4:
		*r.created, ok = fastTime(v)
	case 5:
		*r.updated, ok = fastTime(v)
	}
	return ok
}

// finish completes a head read in one pass, as newThreat and
// ThreatHead.UnmarshalJSON do: refused without threatInfo, the id from
// threatId when there is no id, the statuses normalised.
func (r headRef) finish(raw []byte, st *itemScratch) bool {
	if !st.seen {
		return false
	}
	if *r.id == "" {
		*r.id = st.id
	}
	*r.status = LowerSnake(*r.status)
	*r.verdict = LowerSnake(*r.verdict)
	*r.mitigation = LowerSnake(*r.mitigation)
	*r.raw = raw
	return true
}
