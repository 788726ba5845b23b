package connector_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/schema"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

// The alert ingestion itself is tested in package ingest; these tests see
// it through the connector: ingest.status, /readyz and /metrics, beside the
// threat ingestion.

// readyz is /readyz's status and decoded body.
type readyz struct {
	code int
	body struct {
		Ready    bool                         `json:"ready"`
		Consoles map[string]string            `json:"consoles"`
		Ingest   map[string]map[string]string `json:"ingest"`
	}
	raw string
}

func getReadyz(t testing.TB, c *connector.Connector) readyz {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := readyz{code: resp.StatusCode, raw: string(b)}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("/readyz body %s: %v", b, err)
	}
	return r
}

func ingestStatus(t testing.TB, env *testenv.Env) handlers.IngestStatusReply {
	t.Helper()
	r := env.Call(t, "ingest.status", `{}`)
	if r.Err != nil {
		t.Fatalf("ingest.status: %d %s", r.Err.Code, r.Err.Message)
	}
	if err := schema.ValidateReply("ingest.status", r.Event.Data); err != nil {
		t.Errorf("%v\n%s", err, r.Event.Data)
	}
	var s handlers.IngestStatusReply
	if err := json.Unmarshal(r.Event.Data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// countEvents counts the stream's events by CloudEvents type.
func countEvents(t testing.TB, env *testenv.Env) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range testenv.ReadStream(t, env.NC, env.Cfg.EventsStreamName()) {
		out[e.Type]++
	}
	return out
}

// TestAlertIngestionWithoutUAM: on a console whose GraphQL path answers 404
// (no Unified Alert Management) or 403 (a token without its permission),
// alert ingestion stops with the reason in ingest.status and /readyz,
// which stays 200; threat ingestion goes on; the connector asks again
// after the retry (an hour in production) and, once the path answers,
// publishes the alerts and clears the reason.
func TestAlertIngestionWithoutUAM(t *testing.T) {
	const threats, alerts = 20, 30
	for _, status := range []int{http.StatusNotFound, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env := &testenv.Env{Server: testenv.NATSServer(t)}
			env.Emu, env.EmuURL = testenv.Emulator(t, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: threats, UAMAlerts: alerts}))
			if err := env.Emu.Inject(emulator.Fault{Kind: emulator.FaultServerError, Status: status, Path: sentinelone.PathUAMGraphQL}); err != nil {
				t.Fatal(err)
			}
			env.Cfg = testenv.Config(env.Server.ClientURL(), env.EmuURL)
			testenv.IngestOn(env.Cfg)
			env.Connector = testenv.Connector(t, env.Cfg, connector.WithUAMRetry(3*time.Second))
			env.NC = testenv.Conn(t, env.Server)

			var s handlers.IngestStatusReply
			testenv.WaitFor(t, 20*time.Second, "the threats in the stream and the alerts' reason in ingest.status", func() bool {
				// The stream first: the status read after it counts them all.
				if countEvents(t, env)[subjects.TypeThreatCreated] != threats {
					return false
				}
				s = ingestStatus(t, env)
				return s.Alerts != nil && s.Alerts.LastError != "" && s.Published == threats && s.Watermark != nil
			})
			if !strings.Contains(s.Alerts.LastError, "does not serve Unified Alerts") || !strings.Contains(s.Alerts.LastError, fmt.Sprint(status)) ||
				!s.Alerts.Leader || s.Alerts.Watermark != nil || s.Alerts.Published != 0 {
				t.Errorf("alerts status %+v", *s.Alerts)
			}
			if s.LastError != "" || s.Watermark == nil || s.Published != threats {
				t.Errorf("threats status %+v: want them going on", s.IngestProgress)
			}
			r := getReadyz(t, env.Connector)
			if r.code != http.StatusOK || !r.body.Ready || r.body.Ingest["main"]["threats"] != "ok" ||
				!strings.HasPrefix(r.body.Ingest["main"]["alerts"], "stopped: ") ||
				!strings.Contains(r.body.Ingest["main"]["alerts"], "does not serve Unified Alerts") ||
				!strings.Contains(r.body.Consoles["main"], "alert ingestion stopped") {
				t.Errorf("/readyz %d %s: want 200, threats ok, the alerts' reason", r.code, r.raw)
			}
			if strings.Contains(r.raw, testenv.Token) || strings.Contains(s.Alerts.LastError, testenv.Token) {
				t.Error("the token leaked")
			}
			// Nor does a caller meeting the missing UAM make the replica
			// unready (the console's health ignores it, as a 404).
			if rep := env.Call(t, "uam.alerts.list", `{"limit":1}`); rep.Err == nil || rep.Err.UpstreamStatus != status {
				t.Fatalf("uam.alerts.list: %+v, want a %d from upstream", rep.Err, status)
			}
			if r := getReadyz(t, env.Connector); r.code != http.StatusOK {
				t.Errorf("/readyz after uam.alerts.list met a %d: %d %s", status, r.code, r.raw)
			}
			// Threats keep coming.
			added := env.Emu.AddThreats(5, time.Time{})
			testenv.WaitFor(t, 10*time.Second, "the new threats", func() bool {
				return countEvents(t, env)[subjects.TypeThreatCreated] == threats+len(added)
			})

			// The path answers again: the next retry publishes every alert.
			env.Emu.ClearFaults()
			testenv.WaitFor(t, 20*time.Second, "every alert", func() bool {
				return countEvents(t, env)[subjects.TypeAlertCreated] == alerts
			})
			testenv.WaitFor(t, 10*time.Second, "the reason to clear", func() bool {
				s = ingestStatus(t, env)
				r = getReadyz(t, env.Connector)
				return s.Alerts.LastError == "" && r.body.Ingest["main"]["alerts"] == "ok"
			})
			if s.Alerts.Watermark == nil || s.Alerts.Published != alerts || r.body.Consoles["main"] != "ok" || r.code != http.StatusOK {
				t.Errorf("after the resumption: alerts %+v, /readyz %d %s", *s.Alerts, r.code, r.raw)
			}
			testenv.CheckExactlyOnceOf(t, testenv.ReadStream(t, env.NC, env.Cfg.EventsStreamName()), subjects.EntityAlert, env.Emu.IDs().UAMAlerts)

			// Metrics by source: the alerts' failed polls and their events
			// apart from the threats'.
			metrics := getMetrics(t, env.Connector)
			for _, want := range []string{
				`s1bridge_ingest_polls_total\{console="main",result="error",source="alerts"\} [1-9]`,
				`s1bridge_ingest_polls_total\{console="main",result="ok",source="alerts"\} [1-9]`,
				`s1bridge_ingest_polls_total\{console="main",result="ok",source="threats"\} [1-9]`,
				`s1bridge_events_published_total\{console="main",source="alerts"\} ` + fmt.Sprint(alerts) + `\n`,
				`s1bridge_events_published_total\{console="main",source="threats"\} ` + fmt.Sprint(threats+len(added)) + `\n`,
				`s1bridge_ingest_watermark_age_seconds\{console="main",source="alerts"\} `,
				`s1bridge_ingest_lag_seconds\{console="main",source="alerts"\} `,
			} {
				if !regexp.MustCompile(want).MatchString(metrics) {
					t.Errorf("/metrics has no %s", want)
				}
			}
		})
	}
}

func getMetrics(t testing.TB, c *connector.Connector) string {
	t.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAlertIngestionOff: with ingest.alerts.enabled false the console has
// no alert ingestion: no GraphQL call, no alerts member in ingest.status,
// no alert series; with ingest.enabled false, /readyz says both are off.
func TestAlertIngestionOff(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		testenv.IngestOn(c)
		m := c.Consoles["main"]
		m.Ingest.Alerts.Enabled = false
		c.Consoles["main"] = m
	}, emulator.WithRequestLog(1000))
	waitPolls(t, env, 2)
	if s := ingestStatus(t, env); s.Alerts != nil {
		t.Errorf("ingest.status has alerts: %+v", *s.Alerts)
	}
	if n := env.Emu.RequestCount(sentinelone.PathUAMGraphQL); n != 0 {
		t.Errorf("%d GraphQL calls with alert ingestion off", n)
	}
	if r := getReadyz(t, env.Connector); len(r.body.Ingest["main"]) != 1 || r.body.Ingest["main"]["threats"] != "ok" {
		t.Errorf("/readyz %s", r.raw)
	}
	if m := getMetrics(t, env.Connector); strings.Contains(m, `source="alerts"`) {
		t.Error("/metrics has alert series with alert ingestion off")
	}

	off := testenv.Start(t, nil)
	r := getReadyz(t, off.Connector)
	if r.code != http.StatusOK || r.body.Ingest["main"]["threats"] != "off" || r.body.Ingest["main"]["alerts"] != "off" {
		t.Errorf("/readyz with ingestion off: %d %s", r.code, r.raw)
	}
	if s := ingestStatus(t, off); s.Alerts == nil || s.Alerts.Leader || s.Alerts.Watermark != nil {
		t.Errorf("ingest.status with ingestion off: %+v", s)
	}
}
