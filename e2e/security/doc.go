// Package security proves, against a real in-process nats-server and the
// SentinelOne emulator over loopback HTTP, that s1bridge reaches NATS over
// TLS, mutual TLS, nkey and creds (JWT) authentication, that each
// misconfiguration fails at start with an error naming the problem, and
// that the SentinelOne API token never leaves the process: not in logs at
// debug level, replies, reply headers, /metrics, /readyz, /healthz or
// errors, whether calls succeed, are refused (401), fail (500 with retries)
// or the handler panics.
//
// The package holds tests only.
package security
