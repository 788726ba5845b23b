package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// The mutating action the guards benchmark measures: agents.connect of an
// agent that is connected already, which the emulator answers with one
// activity and no state change, so that thousands of calls keep it as it
// was.
const (
	guardAction       = handlers.ActionAgentsConnect
	targetGuardsAdded = 2 * time.Millisecond // guards on, p50, at most this more than off
)

// guardPath sends guardAction requests, each a new request (a fresh
// CloudEvents id: nothing is replayed), to the console main of the
// deployment c serves, and checks each reply.
func guardPath(name string, env *testenv.Env, c *connector.Connector, agent string) path {
	subject := c.Subjects().Action("main", guardAction)
	data := []byte(`{"agentIds":["` + agent + `"]}`)
	return path{name: name, call: func(ctx context.Context) error {
		r, err := connector.Call(ctx, env.NC, subject, guardAction, benchSource, data)
		if err != nil {
			return err
		}
		if r.Err != nil {
			return r.Err
		}
		var rep struct{ Affected int }
		if err := json.Unmarshal(r.Event.Data, &rep); err != nil || rep.Affected != 1 {
			return fmt.Errorf("%s answered %s", guardAction, r.Event.Data)
		}
		return nil
	}}
}

// BenchmarkMutatingGuards measures what idempotency and audit (DESIGN.md
// §12) add to a mutating action: agents.connect through two deployments on
// one NATS server and one emulator, one with both on (the defaults: the
// claim in the requests bucket and the requested record stored before
// SentinelOne is called, the completed record and the outcome before the
// reply), one with both off (service.idempotency: false,
// streams.audit.enabled: false, another prefix). Latency: sequential calls
// interleaved in rounds. Target: p50(on) - p50(off) ≤ 2 ms. Each iteration
// is one whole measurement; run it with -benchtime 1x.
func BenchmarkMutatingGuards(b *testing.B) {
	const rounds, perRound, warmCalls = 8, 250, 200
	env := &testenv.Env{Server: testenv.NATSServer(b)}
	env.Emu, env.EmuURL = testenv.Emulator(b, emulator.WithRequestLog(0))
	env.NC = testenv.Conn(b, env.Server)
	on := testenv.Config(env.Server.ClientURL(), env.EmuURL)
	actionsConfig(on)
	off := testenv.Config(env.Server.ClientURL(), env.EmuURL)
	actionsConfig(off)
	off.Subjects.Prefix = "off"
	off.Service.Idempotency = false
	off.Streams.Audit.Enabled = false
	if !on.Service.Idempotency || !on.Streams.Audit.Enabled {
		b.Fatal("the guards are not on by default")
	}
	cOn, cOff := testenv.Connector(b, on), testenv.Connector(b, off)
	agent := connectedAgent(b, env.Emu)
	paths := []path{guardPath("guards on", env, cOn, agent), guardPath("guards off", env, cOff, agent)}
	ctx := b.Context()
	if err := warm(ctx, paths, warmCalls); err != nil {
		b.Fatal(err)
	}
	seq := make([]stats, len(paths))
	var busy, mine float64
	for b.Loop() {
		oth := startOthers()
		lat, err := sequential(ctx, paths, rounds, perRound)
		if err != nil {
			b.Fatal(err)
		}
		for i := range paths {
			seq[i] = summarize(lat[i])
		}
		busy, mine = oth.cpus(), oth.own()
	}
	added, added99 := seq[0].p50-seq[1].p50, seq[0].p99-seq[1].p99

	var t strings.Builder
	fmt.Fprintf(&t, "\n\n#### BenchmarkMutatingGuards: %s with idempotency and audit on, against both off\n\n", guardAction)
	fmt.Fprintf(&t, "- machine: %s; the NATS server (file storage), the emulator, both connectors and the caller share this process and its CPUs\n", machine())
	fmt.Fprintf(&t, "- CPUs used during the measurement, on average: %.2f by this process, %.2f by other processes on the machine\n", mine, busy)
	fmt.Fprintf(&t, "- config: %s; off: service.idempotency false, streams.audit.enabled false (prefix off)\n", actionsConfigNote)
	fmt.Fprintf(&t, "- %s sequential calls per path (%d interleaved rounds of %d, after %d warm-up calls each), every call a new request\n\n",
		fmtCount(rounds*perRound), rounds, perRound, warmCalls)
	fmt.Fprintf(&t, "| path | p50 | p99 |\n|---|---:|---:|\n")
	fmt.Fprintf(&t, "| (a) on: claim + requested record, SentinelOne, completed record + outcome | %s | %s |\n", fmtDur(seq[0].p50), fmtDur(seq[0].p99))
	fmt.Fprintf(&t, "| (b) off | %s | %s |\n", fmtDur(seq[1].p50), fmtDur(seq[1].p99))
	fmt.Fprintf(&t, "| **a − b** (target p50 ≤ %s: %s) | **%s** | %s |\n", targetGuardsAdded, verdict(added <= targetGuardsAdded), fmtDur(added), fmtDur(added99))
	fmt.Print(t.String())

	b.ReportMetric(float64(seq[0].p50)/float64(time.Microsecond), "p50-on-µs")
	b.ReportMetric(float64(seq[1].p50)/float64(time.Microsecond), "p50-off-µs")
	b.ReportMetric(float64(added)/float64(time.Microsecond), "added-p50-µs")
}

// connectedAgent returns an agent the emulator has connected to the
// network, so that connecting it again changes nothing.
func connectedAgent(b *testing.B, emu *emulator.Emulator) string {
	b.Helper()
	for _, id := range emu.IDs().Agents {
		if a, ok := emu.Agent(id); ok && a.NetworkStatus == "connected" && a.IsActive {
			return id
		}
	}
	b.Fatal("the emulator has no connected agent")
	return ""
}
