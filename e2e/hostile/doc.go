// Package hostile proves, against a real connector (an in-process
// nats-server, the SentinelOne emulator over loopback HTTP, and s1bridge
// wired to both by internal/testenv), that malformed and hostile action
// requests are answered with the contract's exact error code, in the
// request's content mode, and that every request refused for its own
// content is refused before SentinelOne is called: wrong JSON types,
// oversized and deeply nested documents, duplicate and unknown members,
// bad ids, limits and cursors, broken CloudEvents headers (missing
// attributes, invalid UTF-8, bad percent-encoding, a type naming another
// action, a past expirytime), wrong content types and structured events
// whose data is not JSON. Shell and SQL text in filters reaches SentinelOne
// as data, byte for byte, and never as URL syntax. After all of it the
// process still serves and has not leaked goroutines.
//
// The package holds tests only.
package hostile
