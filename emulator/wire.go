package emulator

import (
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Wire names of the SentinelOne Management API v2.1, as the real console uses them.
const (
	// APIPrefix is the path prefix of every endpoint the emulator serves.
	APIPrefix = "/web/api/v2.1"

	// HeaderRequestID carries a fresh UUID on every response, as the real console's nginx does.
	HeaderRequestID = "X-RQID"
	// HeaderRetryAfter is sent on injected 429 answers when the fault asks for it.
	HeaderRetryAfter = "Retry-After"
	// AuthScheme is the Authorization scheme of an API token; it is matched case-insensitively.
	AuthScheme = "ApiToken"

	headerAuthorization = "Authorization"
	headerContentType   = "Content-Type"
	headerServer        = "Server"
	contentJSON         = "application/json"
	contentHTML         = "text/html"
	contentText         = "text/plain; charset=utf-8"
	serverName          = "nginx"
)

// Endpoint paths below APIPrefix. PathHashes is followed by the SHA1 and
// /verdict or /reputation. They repeat the client's on purpose: the
// emulator stands for SentinelOne and takes its paths from the Swagger
// subset, not from the client it checks (the swagger tests in sentinelone
// and connector hold the client's requests, as the emulator recorded them,
// to that file).
const (
	PathSystemInfo           = "/system/info"
	PathHashes               = "/hashes/"
	PathRestrictions         = "/restrictions"
	PathThreats              = "/threats"
	PathThreatIncident       = "/threats/incident"
	PathThreatVerdict        = "/threats/analyst-verdict"
	PathGroups               = "/groups"
	PathAgents               = "/agents"
	PathAgentsConnect        = "/agents/actions/connect"
	PathAgentsDisconnect     = "/agents/actions/disconnect"
	PathSites                = "/sites"
	PathActivities           = "/activities"
	PathActivityTypes        = "/activities/types"
	PathAlerts               = "/cloud-detection/alerts"
	PathAlertVerdict         = "/cloud-detection/alerts/analyst-verdict"
	PathAlertIncident        = "/cloud-detection/alerts/incident"
	PathThreatMitigate       = "/threats/mitigate/"  // followed by the action
	PathThreatNotes          = "/threats/notes"      // POST; GET is /threats/{threat_id}/notes
	PathThreatFetchFile      = "/threats/fetch-file" // POST
	PathAgentsInitiateScan   = "/agents/actions/initiate-scan"
	PathAgentsAbortScan      = "/agents/actions/abort-scan"
	PathAgentsCount          = "/agents/count"
	PathAPITokenDetails      = "/users/api-token-details"
	pathNotesSuffix          = "/notes"
	pathTimelineSuffix       = "/timeline"
	pathHashVerdictSuffix    = "/verdict"
	pathHashReputationSuffix = "/reputation"
)

// Error codes of the console's error bodies (HTTP status × 10000 plus a suffix).
const (
	// CodeValidation: a bad parameter, body, id, limit or cursor (400).
	CodeValidation = 4000010
	// CodeAlreadyExists: a blocklist item that exists already (400).
	CodeAlreadyExists = 4000030
	// CodeAuthFailed: a missing or wrong API token (401).
	CodeAuthFailed = 4010010
	// CodeNotFound: an unknown resource, such as a hash with no verdict (404).
	CodeNotFound = 4040010

	titleValidation     = "Validation Error"
	titleJSONValidation = "Validation JSONError"
	titleAlreadyExists  = "Already Exists Error"
	titleAuthFailed     = "Authentication Failed"
	titleNotFound       = "Requested resource was not found"
	detailBadCursor     = "Invalid cursor value received"
)

// Paging limits of every list endpoint.
const (
	// DefaultLimit is the page size when a request gives no limit.
	DefaultLimit = 10
	// MaxLimit is the largest limit; a limit outside 1..MaxLimit is a 400.
	MaxLimit     = 1000
	maxSkip      = 1000
	minID        = 100000000000000000
	maxBodyBytes = 16 << 20
)

// TimeLayout is the console's timestamp format: UTC with microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// apiError is an error answer in the console's format.
type apiError struct {
	status int
	code   int
	title  string
	detail *string
}

func (e *apiError) Error() string {
	if e.detail != nil {
		return e.title + ": " + *e.detail
	}
	return e.title
}

func validation(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: CodeValidation, title: titleValidation, detail: &detail}
}

func badCursor() *apiError {
	d := detailBadCursor
	return &apiError{status: http.StatusBadRequest, code: CodeValidation, title: titleJSONValidation, detail: &d}
}

func alreadyExists(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: CodeAlreadyExists, title: titleAlreadyExists, detail: &detail}
}

type errorItem struct {
	Code   int     `json:"code"`
	Title  string  `json:"title"`
	Detail *string `json:"detail"`
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(errorBody{Errors: []errorItem{{Code: e.code, Title: e.title, Detail: e.detail}}})
	writeJSON(w, e.status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set(headerContentType, contentJSON)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeData answers 200 with {"data": v}.
func writeData(w http.ResponseWriter, v any) {
	b, err := json.Marshal(struct {
		Data any `json:"data"`
	}{v})
	if err != nil {
		panic(err) // every value passed here is a plain struct or map that always marshals
	}
	writeJSON(w, http.StatusOK, b)
}

type affected struct {
	Affected int `json:"affected"`
}

// formatTime renders unix nanoseconds in the console's layout.
func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(TimeLayout)
}

// micros truncates t to a whole microsecond, the console's precision, as unix nanoseconds.
func micros(t time.Time) int64 {
	return t.UnixMicro() * 1000
}

// newUUID returns a random version-4 UUID in its dashed form. It is for request
// ids, not for anything that must be unguessable.
func newUUID() string {
	var b [16]byte
	u1, u2 := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(u1 >> (8 * i))
		b[8+i] = byte(u2 >> (8 * i))
	}
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
