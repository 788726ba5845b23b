package connector_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

// consoleReadyz returns /readyz's status and its body's note on console main.
func consoleReadyz(t *testing.T, env *testenv.Env) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + env.Connector.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Consoles map[string]string `json:"consoles"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("/readyz body %s: %v", b, err)
	}
	return resp.StatusCode, r.Consoles["main"]
}

// metricValue returns the value of series on /metrics, NaN when absent.
func metricValue(t *testing.T, env *testenv.Env, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + env.Connector.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return math.NaN()
}

// TestTokenExpiring: with the console's token expiring in 5 days, the
// connector reads the expiry at start, shows it on /metrics, says so in
// /readyz while staying ready, and publishes one console.token_expiring
// event.
func TestTokenExpiring(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	expires := now.Add(5*24*time.Hour + time.Hour)
	env := testenv.Start(t, nil, emulator.WithTokenExpiry(now.Add(-85*24*time.Hour), expires))
	series := `s1bridge_console_token_expiry_seconds{console="main"}`
	testenv.WaitFor(t, 10*time.Second, "the expiry on /metrics", func() bool {
		return metricValue(t, env, series) == float64(expires.Unix())
	})
	code, note := consoleReadyz(t, env)
	if code != http.StatusOK || !strings.Contains(note, "API token expires at "+expires.Format(time.RFC3339)+" (5 days left)") {
		t.Errorf("/readyz %d, console main: %q", code, note)
	}
	var evs []testenv.StreamEvent
	testenv.WaitFor(t, 10*time.Second, "the token_expiring event", func() bool {
		evs = testenv.ReadStream(t, env.NC, env.Cfg.EventsStreamName())
		return len(evs) > 0
	})
	if len(evs) != 1 || evs[0].Type != subjects.TypeTokenExpiring || evs[0].Subject != "s1.main.event.console.token_expiring" ||
		evs[0].ID != "main/token/"+expires.Format(time.RFC3339)+"/"+time.Now().UTC().Format(time.DateOnly) {
		t.Errorf("events %+v", evs)
	}
}

// TestTokenExpiryUnknown: the expiry is read once during the start; a
// console that does not say (an older one) leaves the series at 0 and
// /readyz as it was, and publishes nothing.
func TestTokenExpiryUnknown(t *testing.T) {
	env := testenv.Start(t, nil, emulator.WithoutTokenDetails(), emulator.WithRequestLog(100))
	// Read once, before the connector served: not among the first requests.
	if n := env.Emu.RequestCount("/users/api-token-details"); n != 1 {
		t.Errorf("%d token reads by the end of the start, want 1", n)
	}
	if v := metricValue(t, env, `s1bridge_console_token_expiry_seconds{console="main"}`); v != 0 {
		t.Errorf("/metrics: %v, want 0 (unknown)", v)
	}
	if code, note := consoleReadyz(t, env); code != http.StatusOK || note != "ok" {
		t.Errorf("/readyz %d %q", code, note)
	}
	if n := testenv.StreamMsgs(env.NC, env.Cfg.EventsStreamName()); n != 0 {
		t.Errorf("%d events", n)
	}
}

// TestReadyMetric: s1bridge_ready{console} says what /readyz says of each
// console: 1 for a console served, 0 for one whose token SentinelOne
// refuses (its ingestion stopped).
func TestReadyMetric(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		bad := c.Consoles["main"]
		bad.APIToken = config.NewSecret("not-the-token")
		c.Consoles["refused"] = bad
		eu := c.Consoles["main"]
		eu.Ingest.Enabled = false
		c.Consoles["eu"] = eu
	})
	testenv.WaitFor(t, 15*time.Second, "the refused console to be reported", func() bool {
		return metricValue(t, env, `s1bridge_ready{console="refused"}`) == 0
	})
	for console, want := range map[string]float64{"main": 1, "eu": 1, "refused": 0} {
		if v := metricValue(t, env, `s1bridge_ready{console="`+console+`"}`); v != want {
			t.Errorf("s1bridge_ready{console=%q} = %v, want %v", console, v, want)
		}
	}
	if code, _ := consoleReadyz(t, env); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d", code)
	}
}
