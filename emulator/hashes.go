package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Hash verdicts of GET /hashes/{hash}/verdict.
const (
	VerdictMalicious    = "malicious"
	VerdictNonMalicious = "non-malicious"
	VerdictUnknown      = "unknown"
)

// Hashes the seeded console always knows, whatever the seed.
const (
	// HashMalicious is malicious (legacy rank "7") and on the Global blocklist
	// for windows, macos and linux when Sizes.Restrictions >= 3.
	HashMalicious = "3395856ce81f2b7382dee72602f798b642f14140"
	// HashClean is non-malicious (rank "2").
	HashClean = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	// HashLegacyOnly answers 404 on /verdict and rank "9" on the legacy
	// /reputation endpoint, to exercise a client's fallback.
	HashLegacyOnly = "ddd5030a3d029f3845fc1052419829f08f312240"
)

var hashVerdicts = []string{VerdictMalicious, VerdictNonMalicious, VerdictUnknown}

// SetHash sets what the console knows of a SHA1 (stored lower-case).
func (e *Emulator) SetHash(sha1 string, h HashInfo) error {
	if !isHex(sha1, 40) {
		return fmt.Errorf("%w: %q is not a SHA1", ErrInvalid, sha1)
	}
	if !slices.Contains(hashVerdicts, h.Verdict) {
		return fmt.Errorf("%w: verdict %q", ErrInvalid, h.Verdict)
	}
	if h.Rank != "" && !slices.Contains(ranks, h.Rank) {
		return fmt.Errorf("%w: rank %q must be \"0\"..\"10\"", ErrInvalid, h.Rank)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hashes[strings.ToLower(sha1)] = h
	return nil
}

var ranks = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}

func (e *Emulator) hashInfo(h string) (HashInfo, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	info, ok := e.hashes[strings.ToLower(h)]
	return info, ok
}

// handleHashVerdict answers {"data":{"verdict":...}}; a hash the console
// does not know is "unknown".
func (e *Emulator) handleHashVerdict(w http.ResponseWriter, r *http.Request) {
	info, ok := e.hashInfo(r.PathValue("hash"))
	if ok && info.NoVerdict {
		writeError(w, &apiError{status: http.StatusNotFound, code: CodeNotFound, title: titleNotFound, detail: ptr("")})
		return
	}
	if !ok {
		info.Verdict = VerdictUnknown
	}
	writeData(w, map[string]string{"verdict": info.Verdict})
}

// handleHashReputation answers the legacy {"data":{"rank":"7"}}, or
// {"data":{}} for a hash the legacy endpoint does not know.
func (e *Emulator) handleHashReputation(w http.ResponseWriter, r *http.Request) {
	info, ok := e.hashInfo(r.PathValue("hash"))
	if !ok || info.Rank == "" {
		writeData(w, struct{}{})
		return
	}
	writeData(w, map[string]string{"rank": info.Rank})
}
