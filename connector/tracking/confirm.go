package tracking

import (
	"slices"

	"github.com/s1bridge/s1bridge/events"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// What confirms each tracked action (response-actions.md §11): the
// activities an agent's report logs, by type, and for the network actions
// the agent's networkStatus. The README's table "What confirms each action"
// is this table; a test keeps them equal.

// targetKind says what a tracked action's targets are, and so which id of
// an activity names one: agentId or threatId.
type targetKind uint8

const (
	agentTargets targetKind = iota + 1
	threatTargets
)

// confirmation is how SentinelOne confirms one tracked action.
type confirmation struct {
	targets targetKind
	// succeeded and failed are the activity types of the agent's report
	// that confirm a target done or failed.
	succeeded, failed []int
	// waiting are reports that leave the target pending (a mitigation that
	// waits for a reboot): their message is kept for the outcome.
	waiting []int
	// network is the networkStatus that confirms a target too (the second
	// witness), "" when the action has none.
	network string
}

// Classes of an activity for a confirmation; "" is an activity that says
// nothing about it.
const (
	classSucceeded = events.TargetSucceeded
	classFailed    = events.TargetFailed
	classWaiting   = "waiting"
)

// class returns what an activity of type typ says of a target.
func (c *confirmation) class(typ int) string {
	switch {
	case slices.Contains(c.succeeded, typ):
		return classSucceeded
	case slices.Contains(c.failed, typ):
		return classFailed
	case slices.Contains(c.waiting, typ):
		return classWaiting
	}
	return ""
}

// types returns every activity type c reads.
func (c *confirmation) types() []int { return slices.Concat(c.succeeded, c.failed, c.waiting) }

// mitigation is the confirmation of one kind of threats.mitigate.
func mitigation(succeeded, failed, pendingReboot int) *confirmation {
	return &confirmation{targets: threatTargets, succeeded: []int{succeeded}, failed: []int{failed}, waiting: []int{pendingReboot}}
}

// confirmations holds the confirmation of every tracked action, by
// confirmKey. Only the activities the agents log count: the user's
// request (61, 62, 71, 72, 85, 2011-2015) is logged at once and proves only
// that SentinelOne accepted the action, which its reply already said.
var confirmations = map[string]*confirmation{
	handlers.ActionAgentsDisconnect: {targets: agentTargets, succeeded: []int{sentinelone.ActivityAgentDisconnected},
		failed: []int{sentinelone.ActivityIsolationFailed}, network: sentinelone.NetworkDisconnected},
	// SentinelOne documents no activity for a failed reconnection.
	handlers.ActionAgentsConnect: {targets: agentTargets, succeeded: []int{sentinelone.ActivityAgentReconnected},
		network: sentinelone.NetworkConnected},
	// 90: the scan started, which is what was asked; 92 comes when it ends.
	// An agent that cannot scan reports the scan aborted (91).
	handlers.ActionAgentsScanStart: {targets: agentTargets, succeeded: []int{sentinelone.ActivityAgentScanStarted},
		failed: []int{sentinelone.ActivityAgentScanAborted}},
	// An agent with no scan running logs nothing: its target stays pending.
	handlers.ActionAgentsScanAbort: {targets: agentTargets, succeeded: []int{sentinelone.ActivityAgentScanAborted}},
	// SentinelOne documents no activity for a failed upload.
	handlers.ActionThreatsFetchFile: {targets: threatTargets, succeeded: []int{sentinelone.ActivityThreatFileUploaded}},

	confirmKey(handlers.ActionThreatsMitigate, "kill"): mitigation(sentinelone.ActivityKillSuccess,
		sentinelone.ActivityKillFailed, sentinelone.ActivityKillPendingReboot),
	confirmKey(handlers.ActionThreatsMitigate, "remediate"): mitigation(sentinelone.ActivityRemediateSuccess,
		sentinelone.ActivityRemediateFailed, sentinelone.ActivityRemediatePendingReboot),
	confirmKey(handlers.ActionThreatsMitigate, "rollback_remediation"): mitigation(sentinelone.ActivityRollbackSuccess,
		sentinelone.ActivityRollbackFailed, sentinelone.ActivityRollbackPendingReboot),
	confirmKey(handlers.ActionThreatsMitigate, "quarantine"): mitigation(sentinelone.ActivityQuarantineSuccess,
		sentinelone.ActivityQuarantineFailed, sentinelone.ActivityQuarantinePendingReboot),
	confirmKey(handlers.ActionThreatsMitigate, "un_quarantine"): mitigation(sentinelone.ActivityUnquarantineSuccess,
		sentinelone.ActivityUnquarantineFailed, sentinelone.ActivityUnquarantinePendingReboot),
}

// confirmKey is the key of an action's confirmation: the action, and for
// threats.mitigate its kind ("threats.mitigate kill").
func confirmKey(action, variant string) string {
	if variant == "" {
		return action
	}
	return action + " " + variant
}

// confirmationOf returns the confirmation of action of kind variant, nil
// when the action is not tracked.
func confirmationOf(action, variant string) *confirmation {
	return confirmations[confirmKey(action, variant)]
}
