package subjects

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// Idempotency of mutating actions (DESIGN.md §12): one record per request
// in the requests bucket, under the hash of the request's identity:
//
//	<console>.req.<hash>    a mutating request and its outcome    REQUESTS
//
// and the audit records of its execution carry the same hash in their ids
// (AuditID with AuditKey), so that a repeat of a request, which runs
// nothing, also writes nothing new.

// BucketRequests holds the idempotency records of mutating requests; its
// MaxAge is service.idempotency_window.
const BucketRequests Bucket = "REQUESTS"

const keyRequest = "req" // <console>.req.<hash>

// RequestHash is the hash of a request's idempotency key (console,
// CloudEvents source, id): 24 lower-case base32 characters (120 bits of
// SHA-256), one subject token and one KV key token, the same construction
// as the monitor ids.
func RequestHash(console, source, id string) string {
	h := sha256.Sum256([]byte(console + "\x00" + source + "\x00" + id))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:15]))
}

// RequestKey is the KV key of the idempotency record of the request whose
// RequestHash is hash, on console.
func RequestKey(console, hash string) string { return console + "." + keyRequest + "." + hash }

// AuditKey is the <key> of the audit ids of one execution of a request:
// the request's hash for its first execution, and "<hash>-<attempt>" for a
// later one (a takeover after the replica running it died, or a new run
// after a retryable failure), so that every execution is audited while a
// repeat that runs nothing writes nothing.
func AuditKey(hash string, attempt int) string {
	if attempt <= 1 {
		return hash
	}
	return hash + "-" + strconv.Itoa(attempt)
}

// Tags of an AuditKeyTagged key.
const (
	// AuditTagDryRun marks the audit records of a dry run, which are kept
	// apart from those of a real run of the same request.
	AuditTagDryRun = "dry"
)

// AuditKeyTagged is the <key> of the audit ids of an execution that the
// idempotency layer does not number: "<hash>-<tag>", with AuditTagDryRun
// for a dry run, or a tag unique to the execution when idempotency is off
// (every execution of a repeated request then runs, and is audited).
func AuditKeyTagged(hash, tag string) string { return hash + "-" + tag }

// PrefixOfAudit returns the prefix whose AuditWildcard subject is, and
// whether it is one: how a stream's subjects tell whose audit it holds.
func PrefixOfAudit(subject string) (string, bool) {
	prefix, ok := strings.CutSuffix(subject, ".*.audit.>")
	if !ok || !ValidToken(prefix) {
		return "", false
	}
	return prefix, true
}
