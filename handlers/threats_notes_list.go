package handlers

import (
	"context"
	"encoding/json"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// ThreatsNotesListRequest is the request of threats.notes.list: the notes
// of one threat.
type ThreatsNotesListRequest struct {
	ListParams
	ThreatID string `json:"threatId" jsonschema:"pattern=^[1-9][0-9]{17\\,19}$"`
}

// Validate checks r.
func (r *ThreatsNotesListRequest) Validate() error {
	return firstError(r.ListParams.Validate(), checkThreatID(r.ThreatID))
}

// checkThreatID checks the one threat id of a per-threat request.
func checkThreatID(id string) error {
	if id == "" {
		return Invalid("threatId", "is required")
	}
	if err := checkIDs("threatId", []string{id}, objectIDs); err != nil {
		e := AsError(err)
		e.Message = "threatId" + e.Message[len("threatId[0]"):]
		return e
	}
	return nil
}

func rawNote(n *sentinelone.Note) json.RawMessage { return n.Raw }

// threatsNotesList lists the notes, oldest first. A threat SentinelOne does
// not have has no notes: an empty list.
func threatsNotesList(ctx context.Context, env *Env, r *ThreatsNotesListRequest) (*ListReply, error) {
	f := sentinelone.NoteFilter{SortBy: "createdAt", SortOrder: sentinelone.SortAsc}
	reply, _, err := collect(ctx, env, r.ListParams, "", func(ctx context.Context, limit int, cursor string) (*rawPage, error) {
		f.Limit, f.Cursor = limit, cursor
		p, err := env.Client.ThreatNotes(ctx, r.ThreatID, f)
		if err != nil {
			return nil, err
		}
		return pageOf(p, rawNote), nil
	})
	return reply, err
}
