// Package cluster tests s1bridge against a three-node NATS cluster running
// in the test process (internal/testenv.NATSCluster), with the events stream
// and the key-value buckets replicated three times.
//
// It proves what a production cluster promises when a node goes away:
//
//   - Ingestion: the node leading S1_EVENTS, then the one leading
//     KV_S1_STATE, is shut down while ingestion publishes a backlog and the
//     console keeps changing. Every threat still has exactly one created
//     event, no event id is in the stream twice, each threat's status,
//     verdict and mitigation events chain without a gap (every change starts
//     where the previous one ended) and end at the console's current values.
//   - Actions: while sixteen callers send requests, the node the connector
//     is connected to, then the events stream's leader, is shut down. Every
//     request gets the right reply (its correlationid), a retryable error
//     (503, 504), or a clean timeout at its deadline, never later; and the
//     connector serves every action afterwards.
//
// Each stopped node is restarted on its ports and store and must rejoin the
// replicated stream and buckets as a current replica.
package cluster
