// Package faults proves that s1bridge keeps its contract while the things it
// depends on fail, using the real parts only: an in-process nats-server with
// JetStream, the SentinelOne emulator over loopback HTTP with injected faults,
// and connectors built with connector.New.
//
// The tests (package faults_test) show that:
//
//   - under 429 storms (with and without Retry-After, JSON and nginx HTML),
//     5xx bursts, answers slower than the console timeout, truncated and
//     non-JSON bodies, connection resets and a console that hangs, every
//     action request is answered before its deadline with the contract's
//     code (429 after the retries, 502 for 5xx and unreadable answers, 504
//     when SentinelOne does not answer before the action's deadline);
//   - once the faults clear, the goroutines the storm started are gone;
//   - ingestion running through the storm, and through nats-server restarts
//     on the same port and store, resumes by itself and loses nothing: every
//     threat of the emulator has exactly one created event, no event id is
//     in the stream twice, and each threat's latest event shows the status,
//     verdict and mitigation the emulator has;
//   - action requests in flight across a nats-server restart are answered or
//     time out cleanly, and requests after it succeed.
//
// ReadEvents and Verify, the stream-against-emulator check, are exported for
// the soak command (e2e/soak), which runs the same check after minutes of
// live traffic.
package faults
