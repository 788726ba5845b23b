package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// The operator files under test.
const (
	dashboardFile = "grafana/s1bridge.json"
	rulesFile     = "prometheus/s1bridge-rules.yaml"
)

// externalMetrics are the series the rules read from Prometheus itself or
// from the blackbox exporter, not from s1bridge.
var externalMetrics = map[string]string{
	"up": "Prometheus' own scrape health",
}

// otherBranches names where a metric the operator files read comes from
// while it is not in this branch yet, for the message of the test that
// fails until it is merged. It excuses nothing: every name the files read
// must be on /metrics.
var otherBranches = map[string]string{
	"s1bridge_upstream_budget_share": "the shared rate budget (branch perf, issue 14)",
}

// query is one PromQL expression of the operator files, and where it is.
type query struct{ where, expr string }

// grafanaVars replaces the dashboard's variables with what Grafana would
// put there, so that the expression is plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$console", "main")

// dashboardQueries decodes the dashboard and checks what Grafana needs of
// it: a data source variable every panel uses, a console variable.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type, UID string
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: uid %q, title %q", dashboardFile, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["console"] != "query" {
		t.Errorf("%s: variables %v; want a datasource variable and a console query variable", dashboardFile, vars)
	}
	var out []query
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `console=~"$console"`) {
				t.Errorf("panel %q: %s ignores the console variable", p.Title, tg.Expr)
			}
			out = append(out, query{fmt.Sprintf("panel %q %s", p.Title, tg.RefID), grafanaVars.Replace(tg.Expr)})
		}
	}
	return out
}

// ruleQueries decodes the alert rules and checks their shape.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []query
	alerts := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || alerts[r.Alert] {
				t.Errorf("rule %q: missing or repeated alert name", r.Alert)
			}
			alerts[r.Alert] = true
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description are required", r.Alert)
			}
			out = append(out, query{"alert " + r.Alert, r.Expr})
		}
	}
	for _, want := range []string{"S1bridgeNotReady", "S1bridgeIngestionLag", "S1bridgeSentinelOneRateLimited", "S1bridgeTokenExpiring"} {
		if !alerts[want] {
			t.Errorf("%s: no %s rule", rulesFile, want)
		}
	}
	return out
}

// selector is a metric a query reads and the labels it matches or groups on.
type selector struct {
	where, metric string
	labels        []string
}

// selectors parses every query as PromQL and returns the metrics it reads.
func selectors(t *testing.T, qs []query) []selector {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	var out []selector
	for _, q := range qs {
		expr, err := p.ParseExpr(q.expr)
		if err != nil {
			t.Errorf("%s: not PromQL: %v\n%s", q.where, err, q.expr)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				s := selector{where: q.where, metric: vs.Name}
				for _, m := range vs.LabelMatchers {
					if m.Name != model.MetricNameLabel {
						s.labels = append(s.labels, m.Name)
					}
				}
				// The labels an enclosing sum/max/min by (...) groups on
				// must be the series' too, or the grouping silently merges
				// what it meant to keep apart.
				for _, p := range path {
					if a, ok := p.(*parser.AggregateExpr); ok && !a.Without {
						s.labels = append(s.labels, a.Grouping...)
					}
				}
				out = append(out, s)
			}
			return nil
		})
	}
	return out
}

// scrape reads a connector's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// series returns the label sets of name, a family or one of a histogram's
// _bucket/_sum/_count series.
func series(fams map[string]*dto.MetricFamily, name string) (labels [][]*dto.LabelPair, labelNames []string, ok bool) {
	f, found := fams[name]
	if !found {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, cut := strings.CutSuffix(name, suffix); cut {
				if f, found = fams[base]; found && f.GetType() == dto.MetricType_HISTOGRAM {
					break
				}
				found = false
			}
		}
	}
	if !found {
		return nil, nil, false
	}
	for _, m := range f.Metric {
		labels = append(labels, m.Label)
		for _, l := range m.Label {
			if !slices.Contains(labelNames, l.GetName()) {
				labelNames = append(labelNames, l.GetName())
			}
		}
	}
	if name != f.GetName() && strings.HasSuffix(name, "_bucket") {
		labelNames = append(labelNames, "le")
	}
	return labels, labelNames, true
}

func hasSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) bool {
	ls, _, ok := series(fams, name)
	if !ok {
		return false
	}
	for _, l := range ls {
		match := 0
		for _, p := range l {
			if v, ok := want[p.GetName()]; ok && v == p.GetValue() {
				match++
			}
		}
		if match == len(want) {
			return true
		}
	}
	return false
}

// TestOperatorFilesMetrics starts a connector and checks that every metric
// the dashboard and the alert rules read is on its /metrics, with the
// labels they match on; and that the series of each configured console
// whose labels are known in advance exist from the start, before anything
// happened.
func TestOperatorFilesMetrics(t *testing.T) {
	qs := append(dashboardQueries(t), ruleQueries(t)...)
	sels := selectors(t, qs)
	e := testenv.Start(t, testenv.IngestOn)

	// At start: every console's known series, at zero.
	fams := scrape(t, e.Connector.HTTPAddr())
	for _, s := range []struct {
		name   string
		labels map[string]string
	}{
		{"s1bridge_ingest_polls_total", map[string]string{"console": "main", "source": "threats", "result": "ok"}},
		{"s1bridge_ingest_polls_total", map[string]string{"console": "main", "source": "threats", "result": "error"}},
		{"s1bridge_ingest_polls_total", map[string]string{"console": "main", "source": "alerts", "result": "ok"}},
		{"s1bridge_ingest_polls_total", map[string]string{"console": "main", "source": "alerts", "result": "error"}},
		{"s1bridge_ingest_lag_seconds", map[string]string{"console": "main", "source": "threats"}},
		{"s1bridge_ingest_lag_seconds", map[string]string{"console": "main", "source": "alerts"}},
		{"s1bridge_events_published_total", map[string]string{"console": "main", "source": "threats"}},
		{"s1bridge_events_published_total", map[string]string{"console": "main", "source": "alerts"}},
		{"s1bridge_events_duplicates_total", map[string]string{"console": "main", "source": "threats"}},
		{"s1bridge_events_duplicates_total", map[string]string{"console": "main", "source": "alerts"}},
		{"s1bridge_monitors_active", map[string]string{"console": "main"}},
		{"s1bridge_upstream_rate_limit_wait_seconds_total", map[string]string{"console": "main"}},
		{"s1bridge_console_token_expiry_seconds", map[string]string{"console": "main"}},
		{"s1bridge_ready", map[string]string{"console": "main"}},
	} {
		if !hasSeries(fams, s.name, s.labels) {
			t.Errorf("at start, /metrics has no %s%v", s.name, s.labels)
		}
	}

	// Series labelled by what happens appear with it: one action, one
	// SentinelOne call, one complete poll (the watermark age needs a
	// watermark), one retry (a 503 the emulator injects once).
	if r := e.Call(t, "agents.list", `{"limit":1}`); r.Err != nil {
		t.Fatal(r.Err)
	}
	testenv.WaitFor(t, 20*time.Second, "a complete poll", func() bool {
		fams = scrape(t, e.Connector.HTTPAddr())
		_, _, ok := series(fams, "s1bridge_ingest_watermark_age_seconds")
		return ok
	})
	if err := e.Emu.Inject(emulatorFault503Once()); err != nil {
		t.Fatal(err)
	}
	if r := e.Call(t, "groups.list", `{"limit":1}`); r.Err != nil {
		t.Fatal(r.Err)
	}
	fams = scrape(t, e.Connector.HTTPAddr())

	checked := map[string]bool{}
	for _, s := range sels {
		if why, ok := externalMetrics[s.metric]; ok {
			t.Logf("%s reads %s (%s)", s.where, s.metric, why)
			continue
		}
		if !strings.HasPrefix(s.metric, "s1bridge_") {
			t.Errorf("%s reads %s, which s1bridge does not export", s.where, s.metric)
			continue
		}
		_, names, ok := series(fams, s.metric)
		if !ok {
			from := ""
			if b, known := otherBranches[s.metric]; known {
				from = " (it comes with " + b + ": merge that first)"
			}
			t.Errorf("%s reads %s, which is not on /metrics%s", s.where, s.metric, from)
			continue
		}
		for _, l := range s.labels {
			if l == "instance" || l == "job" {
				continue // target labels: Prometheus adds them at scrape time
			}
			if !slices.Contains(names, l) {
				t.Errorf("%s matches or groups %s on label %q; it has %v", s.where, s.metric, l, names)
			}
		}
		checked[s.metric] = true
	}
	if len(checked) < 10 {
		t.Errorf("only %d metrics checked: %v", len(checked), checked)
	}
	t.Logf("%d queries, %d s1bridge metrics found on /metrics", len(qs), len(checked))
}

// emulatorFault503Once makes the emulator answer the next groups call 503,
// which the client retries.
func emulatorFault503Once() emulator.Fault {
	return emulator.Fault{Path: "/groups", Method: http.MethodGet, Kind: emulator.FaultServerError, Status: http.StatusServiceUnavailable, Count: 1}
}
