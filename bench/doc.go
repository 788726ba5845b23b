// Package bench holds the s1bridge benchmarks. Every benchmark measures
// s1bridge against a baseline taken in the same run on the same machine
// (raw NATS request-reply, a direct HTTP call, raw JetStream publishing) and
// prints a markdown table of both with their ratio, because a number without
// what it is compared with says little on a shared two-CPU machine.
//
// Run them all (about a minute and a half on 2 CPUs):
//
//	go test -run '^$' -bench . -benchtime 1x ./bench
//
// One iteration is one whole measurement (thousands of calls, or a 100,000
// threat backlog), so -benchtime 1x is the way to run them; -count n prints
// n tables, which is how to see the spread. Each table names the machine and
// how much CPU other processes took meanwhile: numbers taken while the
// machine was busy with something else are worth less. Without -bench,
// `go test ./bench` runs only quick checks of the arithmetic and parsing the
// tables rely on.
//
// # BenchmarkActions
//
// agents.list {"limit":10} (a) through s1bridge: a binary CloudEvent request
// on NATS, the connector, its SentinelOne client, the emulator over loopback
// HTTP, the reply; (b) the same upstream call made directly with
// sentinelone.Client.ListAgents, configured as the connector configures its
// own; (c) raw NATS request-reply to a micro endpoint on the same server that
// echoes the request s1bridge receives. Latency: 2,000 sequential calls per
// path after a warm-up, interleaved in rounds so that noise falls on every
// path alike; throughput: 16 concurrent callers for 3 s per path. The table
// gives p50, p99 and req/s of each, and a / (b + c).
// Target: p50(a) ≤ 1.3 × (p50(b) + p50(c)).
// Metrics: p50-µs, p99-µs and req/s of s1bridge, ratio.
//
// # BenchmarkActionsSlowConsole
//
// The same action with the emulator adding 50 ms to every /agents answer
// (emulator.FaultLatency) and 64 concurrent callers for 4 s: the ideal is
// 64 / 50 ms = 1,280 req/s, which s1bridge reaches only by running the calls
// concurrently and adding little CPU to each. The direct client under the
// same load is printed beside it. Target: at least 80% of the ideal.
// Metrics: req/s, %-of-ideal, p50-ms.
//
// Both action benchmarks raise consoles.main.rate_limit to 100,000/s (the
// default of 10/s with burst 20 would measure the limiter) and set
// service.max_in_flight to 256 (at least the 64 callers); the tables say so.
//
// # BenchmarkMutatingGuards
//
// What idempotency and audit (DESIGN.md §12) add to a mutating action:
// agents.connect of an already connected agent (one activity in the
// emulator, no state change) through two deployments on one NATS server
// and one emulator, (a) with both on, the defaults, and (b) with
// service.idempotency false and streams.audit.enabled false (another
// prefix). Every call is a new request (a fresh id), so (a) pays the claim
// in the requests bucket and the requested record (stored together, before
// SentinelOne is called) and the completed record and the stored outcome
// (together, before the reply). Latency: 2,000 sequential calls per path,
// interleaved in rounds. Target: p50(a) − p50(b) ≤ 2 ms. Metrics:
// p50-on-µs, p50-off-µs, added-p50-µs.
//
// # BenchmarkIngestBacklog
//
// A 100,000-threat backlog (emulator.WithSizes) ingested by a connector with
// ingest.page_size 1000, a 200 ms interval and a first_fetch reaching every
// threat: the time from starting the connector process until the events
// stream holds the 100,000 created events, beside the time a process
// publishing 100,000 messages of the same stored size (the events' headers,
// a unique Nats-Msg-Id each) with PublishMsgAsync takes to fill a stream of
// the same configuration on the same server. The NATS server and the emulator
// run in the benchmark's process; the connector and the raw publisher run as
// child processes (the test binary re-executed with S1BRIDGE_BENCH_CHILD set),
// so that the peak RSS read from /proc/<pid>/status (VmHWM) and the CPU time
// are theirs alone. The emulator renders every threat once before the runs
// (its own cost is printed) and the table also gives the time to read the
// backlog with the SentinelOne client alone. Targets: at least 50% of the raw
// rate; peak RSS at most 150 MiB. Metrics: threats/s, raw-msgs/s, ratio,
// peak-RSS-MiB.
//
// # Profiling
//
// -cpuprofile profiles the benchmark's own process: for the action
// benchmarks that is everything (callers, NATS server, connector, emulator);
// for the ingestion it is the NATS server and the emulator. Set
// S1BRIDGE_BENCH_CHILD_CPUPROFILE to a directory to have the child processes
// write connector.pprof and publisher.pprof there:
//
//	S1BRIDGE_BENCH_CHILD_CPUPROFILE=/tmp/prof go test -run '^$' -bench IngestBacklog -benchtime 1x -o /tmp/prof/bench.test ./bench
//	go tool pprof -top /tmp/prof/bench.test /tmp/prof/connector.pprof
//
// # The emulator alone
//
// The emulator's own benchmarks (GET /agents and 1000-threat pages over
// loopback HTTP, seeding and querying 100,000 threats) are in
// emulator/emulator_bench_test.go:
//
//	go test -run '^$' -bench . ./emulator
package bench
