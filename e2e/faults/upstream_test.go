package faults_test

import (
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// small is a console small enough to start in a few milliseconds.
var small = emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: 5, Threats: 20, Alerts: 5, Activities: 5, Restrictions: 2}

// quickConsole makes one HTTP attempt time out after 1 s, with two
// retries 10–200 ms apart, and a generous action timeout, so that a
// request's own expirytime is what bounds it.
func quickConsole(c *config.Config) {
	m := c.Consoles["main"]
	m.Timeout = time.Second
	m.Retry.Max = 2
	m.Retry.WaitMin, m.Retry.WaitMax = 10*time.Millisecond, 200*time.Millisecond
	c.Consoles["main"] = m
	c.Service.ActionTimeout = 10 * time.Second
}

// TestUpstreamFaultCodes sends one request per kind of upstream failure
// through NATS and checks the contract's code, retryable flag and upstream
// status, that the reply comes before the request's deadline, and how many
// attempts reached the console.
func TestUpstreamFaultCodes(t *testing.T) {
	srv := testenv.NATSServer(t)
	emu, url := testenv.Emulator(t, emulator.WithSizes(small))
	nc := testenv.Conn(t, srv)
	threat := emu.IDs().Threats[0]
	update := `{"threatIds":["` + threat + `"],"incidentStatus":"in_progress"}`
	cases := []struct {
		name      string
		fault     emulator.Fault
		edit      func(*config.Console)
		timeout   time.Duration // service.action_timeout, when not 10 s
		action    string
		data      string
		deadline  time.Duration
		code      int
		retryable bool
		upstream  int
		attempts  int // upstream requests, 0: not checked
	}{
		{name: "429 storm, JSON, no Retry-After", fault: emulator.Fault{Kind: emulator.FaultRateLimit},
			action: "agents.list", code: 429, retryable: true, upstream: 429, attempts: 3},
		{name: "429 storm, Retry-After", fault: emulator.Fault{Kind: emulator.FaultRateLimit, RetryAfter: "1"},
			action: "agents.list", code: 429, retryable: true, upstream: 429, attempts: 3},
		{name: "429 storm, nginx HTML", fault: emulator.Fault{Kind: emulator.FaultRateLimit, HTML: true, RetryAfter: "1"},
			action: "agents.list", code: 429, retryable: true, upstream: 429, attempts: 3},
		{name: "429 on a mutation is retried", fault: emulator.Fault{Kind: emulator.FaultRateLimit, Method: "POST"},
			action: "threats.update", data: update, code: 429, retryable: true, upstream: 429, attempts: 3},
		{name: "5xx burst shorter than the retries", fault: emulator.Fault{Kind: emulator.FaultServerError, Status: 503, Count: 2},
			action: "agents.list", code: 200, attempts: 3},
		{name: "5xx storm, JSON", fault: emulator.Fault{Kind: emulator.FaultServerError, Status: 503},
			action: "agents.list", code: 502, retryable: true, upstream: 503, attempts: 3},
		{name: "5xx storm, text", fault: emulator.Fault{Kind: emulator.FaultServerError, Status: 500, HTML: true},
			action: "groups.list", code: 502, retryable: true, upstream: 500, attempts: 3},
		{name: "5xx on a mutation is not retried", fault: emulator.Fault{Kind: emulator.FaultServerError, Status: 502, Method: "POST"},
			action: "threats.update", data: update, code: 502, retryable: true, upstream: 502, attempts: 1},
		{name: "non-JSON body", fault: emulator.Fault{Kind: emulator.FaultMalformed},
			action: "sites.list", code: 502, retryable: false, attempts: 1},
		{name: "truncated body", fault: emulator.Fault{Kind: emulator.FaultTruncated},
			action: "alerts.list", code: 502, retryable: true, attempts: 3},
		{name: "connection reset", fault: emulator.Fault{Kind: emulator.FaultReset},
			action: "activities.list", code: 502, retryable: true, attempts: 3},
		{name: "slower than the console timeout", fault: emulator.Fault{Kind: emulator.FaultLatency, Latency: 3 * time.Second},
			edit: func(m *config.Console) { m.Timeout = 300 * time.Millisecond }, action: "agents.list", code: 504, retryable: true, attempts: 3},
		{name: "hangs past the request's expirytime", fault: emulator.Fault{Kind: emulator.FaultHang},
			action: "agents.list", deadline: 700 * time.Millisecond, code: 504, retryable: true},
		{name: "hangs past the action timeout", fault: emulator.Fault{Kind: emulator.FaultHang},
			edit: func(m *config.Console) { m.Timeout = time.Minute }, timeout: time.Second, action: "agents.list", code: 504, retryable: true, attempts: 1},
		{name: "Retry-After beyond the deadline", fault: emulator.Fault{Kind: emulator.FaultRateLimit, RetryAfter: "20"},
			edit: func(m *config.Console) { m.Retry.WaitMax = 30 * time.Second }, deadline: 1500 * time.Millisecond,
			action: "agents.list", code: 429, retryable: true, upstream: 429, attempts: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.Config(srv.ClientURL(), url)
			quickConsole(cfg)
			if tc.timeout > 0 {
				cfg.Service.ActionTimeout = tc.timeout
			}
			if tc.edit != nil {
				m := cfg.Consoles["main"]
				tc.edit(&m)
				cfg.Consoles["main"] = m
			}
			c := testenv.Connector(t, cfg)
			emu.ClearFaults()
			emu.ResetRequests()
			t.Cleanup(emu.ClearFaults)
			if err := emu.Inject(tc.fault); err != nil {
				t.Fatal(err)
			}
			deadline := tc.deadline
			if deadline == 0 {
				deadline = 3 * time.Second
			}
			data := tc.data
			if data == "" {
				data = `{"limit":5}`
			}
			o := call(nc, c.Subjects().Action("main", tc.action), tc.action, data, deadline)
			t.Logf("%s", o)
			if o.err != nil {
				t.Fatalf("no reply before the %s deadline: %v", deadline, o.err)
			}
			if o.code != tc.code {
				t.Fatalf("code %d, want %d: %s", o.code, tc.code, o)
			}
			if o.margin <= 0 {
				t.Errorf("reply %s after the deadline", -o.margin)
			}
			if e := o.reply.Err; e != nil && (e.Retryable != tc.retryable || e.UpstreamStatus != tc.upstream) {
				t.Errorf("retryable %t upstreamStatus %d, want %t %d", e.Retryable, e.UpstreamStatus, tc.retryable, tc.upstream)
			}
			if tc.attempts > 0 {
				n := 0
				for _, r := range emu.Requests() {
					if r.Path != emulator.APIPrefix+emulator.PathSystemInfo {
						n++
					}
				}
				want := tc.attempts
				if tc.fault.Kind == emulator.FaultReset {
					// Go's HTTP transport sends a GET once more, unseen by the
					// client's retry policy, when the kept-alive connection it
					// reused is reset before any answer; the connector's start
					// (the token expiry read) leaves one in the pool.
					want++
				}
				if n != want {
					t.Errorf("%d requests reached the console, want %d", n, want)
				}
			}
		})
	}
}
