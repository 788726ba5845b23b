package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
)

// POST /users/api-token-details (response-actions.md §10.1): the token to
// describe is in the body, {"data":{"apiToken":"..."}}, which is what the
// console checks (the operation documents no 401), so the route answers
// without the Authorization check and still answers once the token has
// expired, while every other route then answers 401.

// handleAPITokenDetails answers the token's createdAt and expiresAt, or 400
// (code 4000010) for a token the console does not know.
func (e *Emulator) handleAPITokenDetails(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data *struct {
			APIToken *string `json:"apiToken"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		writeError(w, &apiError{status: http.StatusBadRequest, code: CodeValidation, title: titleJSONValidation, detail: ptr("Invalid JSON body.")})
		return
	}
	if body.Data == nil || body.Data.APIToken == nil || *body.Data.APIToken == "" {
		writeError(w, validation("data: apiToken: Missing data for required field."))
		return
	}
	if subtle.ConstantTimeCompare([]byte(*body.Data.APIToken), e.token) != 1 {
		writeError(w, validation("data: apiToken: API token not found."))
		return
	}
	writeData(w, map[string]string{"createdAt": formatTime(e.cfg.tokenCreated), "expiresAt": formatTime(e.cfg.tokenExpires)})
}

// tokenExpired reports whether the token's expiry has passed on the
// emulator's clock.
func (e *Emulator) tokenExpired() bool { return e.now() >= e.cfg.tokenExpires }

// redactToken replaces the token wherever a recorded body holds it (the
// api-token-details body does): the request log never stores it.
func (e *Emulator) redactToken(body []byte) []byte {
	if !bytes.Contains(body, e.token) {
		return body
	}
	return bytes.ReplaceAll(body, e.token, []byte("REDACTED"))
}
