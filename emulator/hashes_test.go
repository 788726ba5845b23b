package emulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestHashVerdictAndReputation(t *testing.T) {
	h := newHarness(t)
	unknown := strings.Repeat("ab", 20)
	if err := h.emu.SetHash(strings.Repeat("CD", 20), HashInfo{Verdict: VerdictNonMalicious, Rank: "3"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		hash, verdict string
		verdictStatus int
		reputation    string
	}{
		{HashMalicious, `{"data":{"verdict":"malicious"}}`, 200, `{"data":{"rank":"7"}}`},
		{strings.ToUpper(HashMalicious), `{"data":{"verdict":"malicious"}}`, 200, `{"data":{"rank":"7"}}`},
		{HashClean, `{"data":{"verdict":"non-malicious"}}`, 200, `{"data":{"rank":"2"}}`},
		{unknown, `{"data":{"verdict":"unknown"}}`, 200, `{"data":{}}`},
		{strings.Repeat("cd", 20), `{"data":{"verdict":"non-malicious"}}`, 200, `{"data":{"rank":"3"}}`},
		{HashLegacyOnly, "", 404, `{"data":{"rank":"9"}}`},
	}
	for _, c := range cases {
		r := h.do(http.MethodGet, PathHashes+c.hash+pathHashVerdictSuffix, nil, nil)
		if r.status != c.verdictStatus || (c.verdict != "" && string(r.body) != c.verdict) {
			t.Errorf("verdict of %s: %d %s", c.hash, r.status, r.body)
		}
		if c.verdictStatus == 404 {
			wantAPIError(t, r, http.StatusNotFound, CodeNotFound, "")
		}
		r = h.do(http.MethodGet, PathHashes+c.hash+pathHashReputationSuffix, nil, nil)
		if r.status != 200 || string(r.body) != c.reputation {
			t.Errorf("reputation of %s: %d %s, want %s", c.hash, r.status, r.body, c.reputation)
		}
	}
	for _, bad := range []struct {
		sha1 string
		info HashInfo
	}{{"xyz", HashInfo{Verdict: VerdictUnknown}}, {unknown, HashInfo{Verdict: "evil"}}, {unknown, HashInfo{Verdict: VerdictUnknown, Rank: "11"}}} {
		if err := h.emu.SetHash(bad.sha1, bad.info); err == nil {
			t.Errorf("SetHash(%q, %+v) accepted", bad.sha1, bad.info)
		}
	}
	// Every seeded threat's hash is known to the console.
	st, _ := h.emu.Threat(h.emu.IDs().Threats[0])
	if st.SHA1 != "" {
		if r := h.do(http.MethodGet, PathHashes+st.SHA1+pathHashVerdictSuffix, nil, nil); strings.Contains(string(r.body), VerdictNonMalicious) {
			t.Errorf("seeded threat hash is %s", r.body)
		}
	}
}

func TestOlderConsoleWithoutVerdictEndpoint(t *testing.T) {
	h := newHarness(t, WithoutVerdictEndpoint())
	r := h.do(http.MethodGet, PathHashes+HashMalicious+pathHashVerdictSuffix, nil, nil)
	if r.status != http.StatusNotFound || string(r.body) != "404 page not found\n" {
		t.Errorf("verdict on an older console: %d %q", r.status, r.body)
	}
	if r := h.do(http.MethodGet, PathHashes+HashMalicious+pathHashReputationSuffix, nil, nil); string(r.body) != `{"data":{"rank":"7"}}` {
		t.Errorf("reputation: %s", r.body)
	}
}
