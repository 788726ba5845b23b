package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"
)

// Threat notes (POST /threats/notes, GET /threats/{threat_id}/notes) and the
// threat timeline (GET /threats/{threat_id}/timeline), response-actions.md
// §3 and §4.

// Bounds of a note's text (Swagger: minLength 2, maxLength 10000).
const (
	noteMinChars = 2
	noteMaxChars = 10000
)

// paramThreat is the internal filter of the per-threat lists: the threat id
// of the path. Client query parameters of another name are dropped first.
const paramThreat = "threatIds"

type note struct {
	row
	threat *threat
	text   string
}

type noteJSON struct {
	CreatedAt string `json:"createdAt"`
	Creator   string `json:"creator"`
	CreatorID string `json:"creatorId"`
	Edited    bool   `json:"edited"`
	ID        string `json:"id"`
	Text      string `json:"text"`
	UpdatedAt string `json:"updatedAt"`
}

func (n *note) json() []byte {
	b, _ := json.Marshal(noteJSON{
		CreatedAt: formatTime(n.created), Creator: emulatorUser, CreatorID: emulatorUserID,
		ID: n.idStr, Text: n.text, UpdatedAt: formatTime(n.updated),
	})
	return b
}

func noteCollection() *collection[*note] {
	type N = *note
	return &collection[N]{
		name: "note",
		t:    newTable[N](),
		params: map[string]param[N]{
			paramThreat:     pIDs(func(n N) string { return n.threat.idStr }),
			"creator__like": pLike(func(N) string { return emulatorUser }),
			"creatorId":     pEq(func(N) string { return emulatorUserID }),
		},
		sorts: map[string]sortField[N]{
			"createdAt": {native: nativeCreated},
			"updatedAt": {native: nativeUpdated},
		},
		defaultSort: "createdAt",
		render:      func(b []byte, n N) []byte { return cached(b, &n.row, n.json) },
	}
}

// timelineCollection is a view of the activity table: the timeline of a
// threat is its activities, rendered as GET /activities renders them.
func timelineCollection(e *Emulator) *collection[*activity] {
	type A = *activity
	acts := e.activities
	return &collection[A]{
		name: "timeline",
		t:    acts.t,
		params: map[string]param[A]{
			paramThreat:     acts.params["threatIds"],
			"activityTypes": acts.params["activityTypes"],
			"siteIds":       acts.params["siteIds"],
			"groupIds":      acts.params["groupIds"],
			"accountIds":    acts.params["accountIds"],
			"query":         pQuery(func(a A) []string { return []string{a.hash, a.primary, a.secondary} }),
		},
		sorts: map[string]sortField[A]{
			"createdAt":            {native: nativeCreated},
			"activityType":         {num: func(a A) int64 { return int64(a.typ) }},
			"hash":                 {str: func(a A) string { return a.hash }},
			"primaryDescription":   {str: func(a A) string { return a.primary }},
			"secondaryDescription": {str: func(a A) string { return a.secondary }},
		},
		defaultSort: "createdAt",
		render:      acts.render,
	}
}

// handleThreatNotesAdd answers POST /threats/notes: data.text (2 to 10000
// characters) added as one note to every threat the filter matches (all of
// them for an empty filter), each logged as activity 4020.
func (e *Emulator) handleThreatNotesAdd(w http.ResponseWriter, r *http.Request) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	text, err := body.dataString("text")
	if err == nil {
		switch n := utf8.RuneCountInString(text); {
		case text == "":
			err = validation("data: text: Missing data for required field.")
		case n < noteMinChars || n > noteMaxChars:
			err = validation(fmt.Sprintf("data: text: Length must be between %d and %d.", noteMinChars, noteMaxChars))
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	n := 0
	e.mutate(func(now int64) {
		var q *listQuery[*threat]
		if q, err = e.threats.filterQuery(body.filter, now); err != nil {
			return
		}
		var notes []*note
		for _, t := range e.threats.selectAll(q) {
			id := e.ids.next(e.rnd)
			notes = append(notes, &note{row: row{id: id, idStr: formatID(id), created: now, updated: now}, threat: t, text: text})
			t.notes++
			e.addActivity(activitySpec{
				typ: actThreatNoteAdded, at: now, agent: t.agent, threat: t,
				primary: fmt.Sprintf("The management user %s added a note to threat %s.", emulatorUser, t.name),
				data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName},
			})
		}
		e.notes.t.insert(notes...)
		n = len(notes)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, affected{Affected: n})
}

// handleThreatNotesList answers GET /threats/{threat_id}/notes. A threat
// that does not exist has no notes: an empty page, as lists answer.
func (e *Emulator) handleThreatNotesList(w http.ResponseWriter, r *http.Request) {
	vals, err := perThreat(r, paramLimit, paramSkip, paramCursor, paramCountOnly, paramSkipCount, paramSortBy, paramSortOrder,
		"creator__like", "creatorId")
	if err != nil {
		writeError(w, err)
		return
	}
	serveListOf(e, w, vals, e.notes)
}

// handleThreatTimeline answers GET /threats/{threat_id}/timeline.
func (e *Emulator) handleThreatTimeline(w http.ResponseWriter, r *http.Request) {
	vals, err := perThreat(r, paramLimit, paramSkip, paramCursor, paramCountOnly, paramSkipCount, paramSortBy, paramSortOrder,
		"activityTypes", "query", "siteIds", "groupIds", "accountIds")
	if err != nil {
		writeError(w, err)
		return
	}
	serveListOf(e, w, vals, e.timeline)
}

// perThreat checks the path's threat_id as the console checks ids and
// returns the request's query cut to the declared parameters, with the
// threat as the internal filter.
func perThreat(r *http.Request, declared ...string) (url.Values, *apiError) {
	id := r.PathValue("threat_id")
	n, err := strconv.ParseUint(id, 10, 64)
	switch {
	case err != nil:
		return nil, validation("threat_id: Not a valid integer.")
	case n < minID:
		return nil, validation(fmt.Sprintf("threat_id: Must be greater than or equal to %d.", uint64(minID)))
	}
	all := r.URL.Query()
	vals := url.Values{}
	for _, name := range declared {
		if v, ok := all[name]; ok {
			vals[name] = v
		}
	}
	vals.Set(paramThreat, id)
	return vals, nil
}
