package emulator

import (
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// Fetch a threat's file (POST /threats/fetch-file), response-actions.md §6.

// minPasswordChars is the shortest fetch-file password the console takes.
const minPasswordChars = 10

// detailPassword is the console's message for a password that breaks its
// rules. The real wording is not published; the rules are those of the
// Swagger's sibling agent fetch-files and Rapid7's client.
const detailPassword = "data: password: The password must be at least 10 characters long, contain no whitespace, " +
	"and mix upper-case letters, lower-case letters, digits and symbols."

// passwordOK applies the console's rules: 10 or more characters, no
// whitespace, and at least one upper-case letter, lower-case letter, digit
// and symbol (anything else printable).
func passwordOK(p string) bool {
	var upper, lower, digit, symbol bool
	for _, r := range p {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return false
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			symbol = true
		}
	}
	return utf8.RuneCountInString(p) >= minPasswordChars && upper && lower && digit && symbol
}

// handleThreatFetchFile answers POST /threats/fetch-file: the filter must
// match exactly one threat (none gives affected 0; more is a 400, "Bulk
// operations are not supported"), data.password must follow the rules
// (400 with code 4000010 otherwise). The user's request is logged at once
// (85); the agent uploads after the action delay (86, whose data carries the
// download path /agents/<agentId>/uploads/<activityId>).
func (e *Emulator) handleThreatFetchFile(w http.ResponseWriter, r *http.Request) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	password, err := body.dataString("password")
	if err == nil {
		switch {
		case password == "":
			err = validation("data: password: Missing data for required field.")
		case !passwordOK(password):
			err = validation(detailPassword)
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
		ts := e.threats.selectAll(q)
		switch {
		case len(ts) > 1:
			err = validation("filter: Filter must match exactly one threat. Bulk operations are not supported.")
			return
		case len(ts) == 0:
			return
		}
		t := ts[0]
		n = 1
		batch := e.uuid()
		e.addActivity(activitySpec{
			typ: actFetchThreatFile, at: now, agent: t.agent, threat: t, hash: t.sha1,
			primary: fmt.Sprintf("The management user %s requested the file of threat %s from %s.", emulatorUser, t.name, t.agent.computerName),
			data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName, "commandBatchUuid": batch},
		})
		c := e.schedule(&command{kind: cmdFetchFile, agent: t.agent, threat: t, batch: batch}, now)
		if t.agent.isActive && c.due <= now {
			c.done = true
			e.answer(c, now)
		}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, affected{Affected: n})
}

// answerFetchFile is the agent's upload: activity 86 carrying where to
// download the encrypted archive. Only a success logs anything: no failure
// activity is documented for a threat file; the caller holds mu.
func (e *Emulator) answerFetchFile(c *command, o Outcome, at int64) {
	if o != OutcomeSuccess {
		return
	}
	t := c.threat
	a := e.newActivity(activitySpec{
		typ: actThreatFileUploaded, at: at, agent: t.agent, threat: t, hash: t.sha1,
		primary: fmt.Sprintf("Agent %s uploaded the file of threat %s.", t.agent.computerName, t.name),
	})
	path := "/agents/" + t.agent.idStr + "/uploads/" + a.idStr
	for k, v := range map[string]any{
		"computerName": t.agent.computerName, "threatName": t.name, "downloadUrl": path, "filePath": path,
		"filename": t.name + ".zip", "uploadedFilename": t.name + ".zip", "fileDisplayName": t.name,
		"fileContentHash": t.sha1, "fileSize": t.fileSize, "commandBatchUuid": c.batch, "sourceType": "threat",
	} {
		a.data[k] = v
	}
	e.newActs = append(e.newActs, a)
}
