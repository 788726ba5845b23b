package subjects

import "strings"

// Keys of the shared rate budget (DESIGN.md §14) in the leases bucket
// (the leases bucket, whose MaxAge is the lease TTL): one heartbeat key per
// console and replica, which expires when the replica stops renewing it.
//
//	<console>.budget.<replica>
//
// A replica id is one key token ([A-Za-z0-9_-], see ValidToken), so the
// wildcard of BudgetKeys matches exactly the replicas of one console.
const budgetToken = ".budget."

// BudgetKey is the KV key of replica's heartbeat in console's budget.
func BudgetKey(console, replica string) string { return console + budgetToken + replica }

// BudgetKeys is the KV key pattern matching the heartbeat of every replica
// in console's budget, for a watch.
func BudgetKeys(console string) string { return console + budgetToken + "*" }

// BudgetReplica returns the replica a heartbeat key of console's budget
// belongs to; ok is false when key is not one.
func BudgetReplica(console, key string) (replica string, ok bool) {
	replica, ok = strings.CutPrefix(key, console+budgetToken)
	if !ok || !ValidToken(replica) {
		return "", false
	}
	return replica, true
}
