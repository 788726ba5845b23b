// Package cluster tests s1bridge against a three-node NATS cluster running
// in the test process (internal/testenv.NATSCluster), the events stream and
// the key-value buckets replicated on every node, the connector given every
// node's URL.
//
// It proves what a production cluster promises when a node goes away (a
// node is shut down as on SIGTERM: its Raft leaders step down first):
//
//   - Ingestion: while two replicas run and the console keeps changing, the
//     node leading S1_EVENTS is shut down in the middle of the backlog, then
//     (once it is back) the node leading KV_S1_STATE. Ingestion resumes
//     within seconds; then the leading replica stops and the other takes
//     over from KV, and every threat changes once more. In the stream, every
//     threat has exactly one created event, no id appears twice, and each
//     threat's status, verdict and mitigation changes chain without a gap
//     (each starts where the previous one ended) up to the console's
//     current values.
//   - Actions: while sixteen callers send requests (console reads and
//     writes, ingest.status, threats.monitor) with a 5 s deadline, the node
//     the connector is connected to is shut down, then the events stream's
//     leader. Every request ends by its deadline with the right reply (its
//     correlationid), a retryable 503 or 504, a timeout, or "no responders"
//     (the connector, a single replica, reconnecting); the connector serves
//     every action afterwards and /readyz answers 200.
//
// Every node shut down is restarted on its ports and store and must become a
// current replica of the stream and the buckets again.
package cluster
