package handlers

import (
	"slices"
)

// Action names: the last tokens of the request subject and the middle of
// the CloudEvents types (DESIGN.md §4).
const (
	ActionHashReputation    = "hash.reputation"
	ActionBlocklistAdd      = "blocklist.add"
	ActionBlocklistList     = "blocklist.list"
	ActionBlocklistDelete   = "blocklist.delete"
	ActionThreatsList       = "threats.list"
	ActionThreatsUpdate     = "threats.update"
	ActionGroupsList        = "groups.list"
	ActionAgentsList        = "agents.list"
	ActionAgentsConnect     = "agents.connect"
	ActionAgentsDisconnect  = "agents.disconnect"
	ActionSitesList         = "sites.list"
	ActionActivitiesList    = "activities.list"
	ActionAlertsList        = "alerts.list"
	ActionAlertsUpdate      = "alerts.update"
	ActionThreatsMonitor    = "threats.monitor"
	ActionMonitorsList      = "monitors.list"
	ActionMonitorsCancel    = "monitors.cancel"
	ActionIngestStatus      = "ingest.status"
	ActionUAMAlertsList     = "uam.alerts.list"
	ActionUAMAlertsGet      = "uam.alerts.get"
	ActionUAMAlertsUpdate   = "uam.alerts.update"
	ActionUAMAlertsNotesAdd = "uam.alerts.notes.add"

	// Response actions (DESIGN.md §11).
	ActionThreatsMitigate  = "threats.mitigate"
	ActionThreatsNotesAdd  = "threats.notes.add"
	ActionThreatsNotesList = "threats.notes.list"
	ActionThreatsTimeline  = "threats.timeline"
	ActionThreatsFetchFile = "threats.fetch_file"
	ActionAgentsScanStart  = "agents.scan.start"
	ActionAgentsScanAbort  = "agents.scan.abort"
	ActionAgentsCount      = "agents.count"
)

const (
	readOnly = false
	mutating = true
)

// All returns the table of every action s1bridge serves, in the order of
// DESIGN.md §4, §10 and §11: the connector registers an endpoint per action and console
// from it, configuration checks consoles.<name>.actions.deny against it,
// `s1bridge call` lists it, and tests keep the README's table equal to it.
// The actions that need the connector's runtime state (threats.monitor,
// monitors.list, monitors.cancel, ingest.status) reach it through
// Env.Runtime. Each call builds a new slice, which the caller may change.
func All() []Action {
	return []Action{
		Define(ActionHashReputation, "Hash Reputation",
			"Looks up a SHA1's verdict (and the legacy rank on older consoles).", readOnly, hashReputation),
		Define(ActionBlocklistAdd, "Add Blacklist Items",
			"Blocks a SHA1 on each OS type in a scope; entries already there are reported, not failed.", mutating, blocklistAdd),
		Define(ActionBlocklistList, "Get Blacklist Items",
			"Lists blocklist entries by hash, OS type and scope (every scope the token sees by default).", readOnly, blocklistList),
		Define(ActionBlocklistDelete, "Delete Blacklist Items",
			"Deletes blocklist entries by id, or every entry of a SHA1 in a scope.", mutating, blocklistDelete),
		Define(ActionThreatsList, "Get Threats",
			"Lists threats by id, computer name, status, verdict, classification, scope and time.", readOnly, threatsList),
		Define(ActionGroupsList, "List Group IDs",
			"Lists agent groups by site, name, type or free text.", readOnly, groupsList),
		Define(ActionAgentsList, "List Agents",
			"Lists agents by id, computer name, exact IP, scope, state or OS.", readOnly, agentsList),
		Define(ActionSitesList, "Get Sites",
			"Lists sites by id, name, state or free text, with the licence summary.", readOnly, sitesList),
		Define(ActionActivitiesList, "Get Activities",
			"Lists activity-log entries by type, threat, agent and time, newest first by default.", readOnly, activitiesList),
		Define(ActionAgentsConnect, "Connect to Network",
			"Reconnects agents to the network.", mutating, agentsConnect),
		Define(ActionAgentsDisconnect, "Disconnect from Network",
			"Isolates agents from the network; they keep talking to the console.", mutating, agentsDisconnect),
		Define(ActionAlertsList, "Get Alerts",
			"Lists STAR and custom-rule alerts by id, status, verdict, severity, rule name, site and time.", readOnly, alertsList),
		Define(ActionAlertsUpdate, "Update Alert SentinelOne",
			"Sets the analyst verdict and/or incident status of alerts.", mutating, alertsUpdate),
		Define(ActionThreatsUpdate, "Update Threat",
			"Sets the incident status and/or analyst verdict of threats in one call.", mutating, threatsUpdate),
		// The monitor actions change nothing in SentinelOne, so none is
		// mutating and dry-run mode runs them.
		Define(ActionThreatsMonitor, "Monitor Threat Status",
			"Watches a threat until it is resolved, the timeout passes or the monitor is cancelled, and publishes the outcome as an event.", readOnly, threatsMonitor),
		Define(ActionMonitorsList, "List Monitors",
			"Lists the active threat monitors of this console, oldest first.", readOnly, monitorsList),
		Define(ActionMonitorsCancel, "Cancel Monitor",
			"Ends an active threat monitor with the cancelled outcome.", readOnly, monitorsCancel),
		Define(ActionIngestStatus, "SentinelOne Threats Daemon",
			"Ingestion progress of this console: leader, watermark, last poll, lag, events published.", readOnly, ingestStatus),
		Define(ActionUAMAlertsList, "List Unified Alerts",
			"Lists Unified Alerts of every source by id, status, verdict, severity, confidence (informational included), name, asset and time.", readOnly, uamAlertsList),
		Define(ActionUAMAlertsGet, "Get Unified Alert",
			"Returns one Unified Alert with its indicators and observables.", readOnly, uamAlertsGet),
		Define(ActionUAMAlertsUpdate, "Update Unified Alerts",
			"Sets the status and/or analyst verdict of Unified Alerts, with a per-alert outcome.", mutating, uamAlertsUpdate),
		Define(ActionUAMAlertsNotesAdd, "Add Unified Alert Note",
			"Adds one note to Unified Alerts, with a per-alert outcome.", mutating, uamAlertsNotesAdd),
		Define(ActionThreatsMitigate, "Mitigate threat",
			"Kills, quarantines, remediates, rolls back or unquarantines threats; the agents act later.", mutating, threatsMitigate),
		Define(ActionThreatsNotesAdd, "Add threat note",
			"Adds one note to each of the threats.", mutating, threatsNotesAdd),
		Define(ActionThreatsNotesList, "List threat notes",
			"Lists the notes of a threat, oldest first.", readOnly, threatsNotesList),
		Define(ActionThreatsTimeline, "Threat timeline",
			"Lists the timeline of a threat by activity type, newest first by default.", readOnly, threatsTimeline),
		Define(ActionThreatsFetchFile, "Fetch threat file",
			"Asks the agents to upload each threat's file in a ZIP archive encrypted with the given password.", mutating, threatsFetchFile),
		Define(ActionAgentsScanStart, "Start a full disk scan",
			"Starts a full disk scan on agents.", mutating, agentsScanStart),
		Define(ActionAgentsScanAbort, "Abort a full disk scan",
			"Stops the full disk scan of agents.", mutating, agentsScanAbort),
		Define(ActionAgentsCount, "Count agents",
			"Counts the agents matching the filters of agents.list.", readOnly, agentsCount),
	}
}

// Names returns the names of All's actions, sorted.
func Names() []string {
	all := All()
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = a.Name
	}
	slices.Sort(names)
	return names
}

// Lookup returns the action called name.
func Lookup(name string) (Action, bool) {
	for _, a := range All() {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}
