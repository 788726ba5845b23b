package emulator

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	idRE   = regexp.MustCompile(`^[1-9][0-9]{17,18}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
)

func TestAuth(t *testing.T) {
	h := newHarness(t, WithToken("s3cret"))
	cases := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "ApiToken nope", http.StatusUnauthorized},
		{"wrong scheme", "Bearer s3cret", http.StatusUnauthorized},
		{"token only", "s3cret", http.StatusUnauthorized},
		{"canonical", "ApiToken s3cret", http.StatusOK},
		{"scheme upper", "APITOKEN s3cret", http.StatusOK},
		{"scheme as Splunk sends it", "APIToken s3cret", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.doAuth(http.MethodGet, PathSystemInfo, nil, nil, c.auth)
			if r.status != c.want {
				t.Fatalf("status %d, want %d", r.status, c.want)
			}
			if c.want == http.StatusUnauthorized {
				want := `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":null}]}`
				if string(r.body) != want {
					t.Errorf("body %s, want %s", r.body, want)
				}
				if strings.Contains(string(r.body), "s3cret") {
					t.Error("the token is echoed")
				}
			}
		})
	}
}

func TestHeadersOnEveryAnswer(t *testing.T) {
	h := newHarness(t)
	seen := map[string]bool{}
	for _, r := range []response{
		h.do(http.MethodGet, PathAgents, nil, nil),
		h.doAuth(http.MethodGet, PathAgents, nil, nil, ""),
		h.do(http.MethodGet, "/nope", nil, nil),
		h.do(http.MethodGet, PathAgents, url.Values{"limit": {"0"}}, nil),
	} {
		id := r.header.Get(HeaderRequestID)
		if !uuidRE.MatchString(id) {
			t.Errorf("X-RQID %q is not a UUID", id)
		}
		if seen[id] {
			t.Errorf("X-RQID %s repeated", id)
		}
		seen[id] = true
		if got := r.header.Get("Server"); got != "nginx" {
			t.Errorf("Server %q", got)
		}
		wantCT := "application/json"
		if r.status == http.StatusNotFound {
			wantCT = "text/plain; charset=utf-8"
		}
		if got := r.header.Get("Content-Type"); got != wantCT {
			t.Errorf("status %d: Content-Type %q, want %q", r.status, got, wantCT)
		}
	}
}

func TestUnknownPathIsRouter404(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/nope", "/threats/123/unknown", "/agents/actions/reboot"} {
		r := h.do(http.MethodGet, p, nil, nil)
		if r.status != http.StatusNotFound || string(r.body) != "404 page not found\n" {
			t.Errorf("GET %s: %d %q", p, r.status, r.body)
		}
	}
}

func TestSystemInfo(t *testing.T) {
	h := newHarness(t)
	m := h.do(http.MethodGet, PathSystemInfo, nil, nil).json(t)
	for _, k := range []string{"build", "latestAgentVersion", "patch", "release", "version"} {
		if str(m, "data."+k) == "" {
			t.Errorf("data.%s missing in %v", k, m)
		}
	}
}

func TestNewOptionsValidate(t *testing.T) {
	bad := []Option{
		WithToken(""), WithToken("a b"), WithClock(nil), WithTransitionDelay(-1), WithRequestLog(-1),
		WithThreats(-1), WithSizes(Sizes{Sites: 0, GroupsPerSite: 1}), WithSizes(Sizes{Sites: 1, GroupsPerSite: 0}),
		WithSizes(Sizes{Sites: 1, GroupsPerSite: 1, Threats: 5}),
	}
	for i, o := range bad {
		if _, err := New(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("option %d: err %v, want ErrInvalid", i, err)
		}
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	clock := newManualClock(testEpoch)
	a, _ := New(WithClock(clock.Now), WithSeed(7))
	b, _ := New(WithClock(clock.Now), WithSeed(7))
	c, _ := New(WithClock(clock.Now), WithSeed(8))
	ia, ib, ic := a.IDs(), b.IDs(), c.IDs()
	if strings.Join(ia.Threats, ",") != strings.Join(ib.Threats, ",") || ia.Account != ib.Account {
		t.Error("same seed, different ids")
	}
	if strings.Join(ia.Threats, ",") == strings.Join(ic.Threats, ",") {
		t.Error("different seeds, same ids")
	}
	sa, _ := a.Threat(ia.Threats[17])
	sb, _ := b.Threat(ib.Threats[17])
	if sa != sb {
		t.Errorf("same seed, different threat: %+v vs %+v", sa, sb)
	}
	// Many threats share one updatedAt (a mass resolve), so pages of 1000
	// cut through ties once there are more than 10,000 threats.
	counts := map[time.Time]int{}
	top := 0
	for _, id := range ia.Threats {
		s, _ := a.Threat(id)
		counts[s.UpdatedAt]++
		top = max(top, counts[s.UpdatedAt])
	}
	if top < len(ia.Threats)/20 {
		t.Errorf("the most shared updatedAt has %d of %d threats", top, len(ia.Threats))
	}
	d := DefaultSizes()
	if len(ia.Sites) != d.Sites || len(ia.Groups) != d.Sites*d.GroupsPerSite || len(ia.Agents) != d.Agents ||
		len(ia.Threats) != d.Threats || len(ia.Alerts) != d.Alerts || len(ia.Restrictions) != d.Restrictions {
		t.Errorf("sizes %d/%d/%d/%d/%d/%d, want %+v", len(ia.Sites), len(ia.Groups), len(ia.Agents),
			len(ia.Threats), len(ia.Alerts), len(ia.Restrictions), d)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	emu, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- emu.Serve(ctx, "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestRequestLogAndCounts(t *testing.T) {
	h := newHarness(t, WithRequestLog(3))
	h.do(http.MethodGet, PathAgents, url.Values{"limit": {"1"}}, nil)
	h.do(http.MethodGet, PathAgents, nil, nil)
	body := map[string]any{"filter": map[string]any{"ids": []string{h.emu.IDs().Agents[0]}}, "data": map[string]any{}}
	h.do(http.MethodPost, PathAgentsConnect, nil, body)
	h.do(http.MethodGet, PathSites, nil, nil)
	if got := h.emu.RequestCount(PathAgents); got != 2 {
		t.Errorf("RequestCount(/agents) = %d, want 2", got)
	}
	if got := h.emu.RequestCount(APIPrefix + PathSites); got != 1 {
		t.Errorf("RequestCount(full /sites) = %d, want 1", got)
	}
	reqs := h.emu.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests kept, want the last 3", len(reqs))
	}
	if reqs[0].RawQuery != "" || reqs[1].Method != http.MethodPost || reqs[2].Path != APIPrefix+PathSites {
		t.Errorf("requests out of order: %+v", reqs)
	}
	if !strings.Contains(string(reqs[1].Body), `"ids"`) {
		t.Errorf("body not recorded: %q", reqs[1].Body)
	}
	if got := reqs[1].Header.Get("Authorization"); got != "ApiToken REDACTED" || reqs[1].Header.Get("Content-Type") != "application/json" {
		t.Errorf("recorded headers: Authorization %q, Content-Type %q", got, reqs[1].Header.Get("Content-Type"))
	}
	h.emu.ResetRequests()
	if len(h.emu.Requests()) != 0 || h.emu.RequestCount(PathAgents) != 0 || len(h.emu.RequestCounts()) != 0 {
		t.Error("ResetRequests left something")
	}
}

func TestHandlerServesInsideAnotherServer(t *testing.T) {
	emu, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+APIPrefix+PathActivityTypes, nil)
	req.Header.Set("Authorization", "apitoken "+DefaultToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
