// Package budget shares one console's rate budget among all the replicas of
// a deployment (DESIGN.md §14): consoles.<name>.rate_limit is what all of
// them together may send, because SentinelOne counts per token, not per
// process. It depends on NATS and package sentinelone, never on the
// connector.
//
// # How
//
// Each replica runs one Budget per console. It writes a heartbeat into a
// key of its own, subjects.BudgetKey(console, replica), in a KV bucket whose
// MaxAge is the TTL (the leases bucket: 9 s), every TTL/3 and at once when
// its demand moves; it watches the console's other keys; and it sets the
// rate and burst of its own sentinelone.LaneLimiter, which its client waits
// on before every attempt, to its share. A heartbeat says what the replica
// would send per lane (calls let through or refused over the last second,
// plus those queued now), and the latest 429 decrease it knows.
//
// Every replica splits the budget from the same heartbeats the same way
// (allocate), so the shares add up to the budget with no further exchange
// and no leader: each replica keeps a floor (a quarter of an equal share),
// so an idle one can serve a call at once; the rest goes max-min fair, lane
// by lane in priority order across the deployment (mutating, read,
// background), so reads on one replica come before ingestion on another;
// what nobody wants is split equally. A replica uses its own heartbeat as
// it came back through the watch, never a fresher local number, because
// the others compute from that one.
//
// # Joins, leaves, failures
//
// A share that goes down applies at once; one that goes up waits one Tick,
// so that the heartbeat behind it has reached every replica and they have
// made room. A newcomer writes its heartbeat, reads the others', and starts
// from nothing; the others shrink as soon as they see it. A clean stop sets
// the rate to 0, then deletes the key, and the others grow at once. A dead
// replica's key is counted out one TTL after its last heartbeat arrived. A
// replica that has not had a heartbeat acknowledged, or seen its own come
// back through the watch, for 2/3 of the TTL sends nothing until it has,
// because the others will count it out at the TTL: it is isolated (a NATS
// outage stops all calls to SentinelOne, which cannot be asked for or
// answered without NATS anyway). A watch that stops bringing back
// acknowledged heartbeats (its consumer lost in a server restart) is
// replaced within a second instead of nats.go's ten or more.
//
// # 429
//
// A 429 seen by any replica multiplies the deployment's rate by Decrease
// (unless one was decided within Cooldown: the answers to calls already
// sent), down to MinFactor; the rate then climbs back linearly, to the
// whole budget in Recovery. The decrease travels in every heartbeat with a
// sequence number (the highest wins; two decided at once, the lower factor),
// so every replica, and one that joins later, applies the same one.
//
// # Bounds
//
// With the shares adding up to 1 and each replica's bucket holding at most
// max(1, share × burst) tokens, the console sees at most per_second × W +
// burst calls over any window W, plus one token per replica whose part of
// the burst is under one (the floor with a small burst). The bound can be
// exceeded only while a heartbeat takes longer than a Tick to reach the
// other replicas (an increase applied before the matching decrease), by at
// most the increase for the excess of that delay, and by a replica whose
// clock is off only in when throttling recovers, never in the shares.
package budget
