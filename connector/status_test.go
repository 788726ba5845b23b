package connector_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// The ingestion itself is tested in package ingest; these tests see it
// through the connector: ingest.status and /readyz.

// TestIngestStopsOnRefusedToken: a refused token stops the console's
// ingestion until restart, and ingest.status and /readyz say why, without
// the token.
func TestIngestStopsOnRefusedToken(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		m := c.Consoles["main"]
		m.APIToken = config.NewSecret("not-the-token")
		c.Consoles["main"] = m
	})
	var s handlers.IngestStatusReply
	testenv.WaitFor(t, 10*time.Second, "ingest.status to report the refused token", func() bool {
		r := env.Call(t, "ingest.status", `{}`)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		_ = json.Unmarshal(r.Event.Data, &s)
		return s.LastError != ""
	})
	if !strings.Contains(s.LastError, "401") || s.Watermark != nil {
		t.Errorf("status %+v: want a 401 and no watermark", s)
	}
	calls := env.Emu.RequestCount("/web/api/v2.1/threats")
	time.Sleep(5 * env.Cfg.Consoles["main"].Ingest.Interval)
	if n := env.Emu.RequestCount("/web/api/v2.1/threats"); n != calls {
		t.Errorf("ingestion kept calling SentinelOne with a refused token: %d more calls", n-calls)
	}
	resp, err := http.Get("http://" + env.Connector.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "ingestion stopped") {
		t.Errorf("/readyz %d %s", resp.StatusCode, body)
	}
	if strings.Contains(s.LastError, "not-the-token") || strings.Contains(string(body), "not-the-token") {
		t.Error("the token leaked into the status")
	}
}

// waitPolls waits until the leader has completed k more polls, as
// ingest.status tells.
func waitPolls(t testing.TB, env *testenv.Env, k int) {
	t.Helper()
	seen, prev := 0, lastPoll(t, env)
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more polls", k), func() bool {
		if lp := lastPoll(t, env); lp.After(prev) {
			seen, prev = seen+1, lp
		}
		return seen >= k
	})
}

func lastPoll(t testing.TB, env *testenv.Env) time.Time {
	r := env.Call(t, "ingest.status", `{}`)
	if r.Err != nil {
		t.Fatalf("ingest.status: %d %s", r.Err.Code, r.Err.Message)
	}
	var s handlers.IngestStatusReply
	if err := json.Unmarshal(r.Event.Data, &s); err != nil {
		t.Fatal(err)
	}
	if s.LastPollAt == nil {
		return time.Time{}
	}
	return *s.LastPollAt
}
