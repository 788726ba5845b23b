package sentinelone

// Activity types that confirm or fail the response actions SentinelOne
// carries out later on the endpoint (response-actions.md §11), with the
// names GET /activities/types gives them. The ids are the console's; they
// are stable, but a console may add types, so these are the ones known to
// answer s1bridge's actions, not a catalogue.
const (
	// The user's commands, logged when the console accepts the call.
	ActivityUserDisconnectedAgent = 61   // User Disconnected Agent From Network
	ActivityUserReconnectedAgent  = 62   // User Reconnected Agent to Network
	ActivityScanInitiated         = 71   // Scan Initiated
	ActivityScanAborted           = 72   // Scan Aborted
	ActivityUserFetchThreatFile   = 85   // User Requested Fetch Threat File
	ActivityUserKill              = 2011 // User Issued Kill Command
	ActivityUserRemediate         = 2012 // User Issued Remediate Command
	ActivityUserRollback          = 2013 // User Issued Rollback Command
	ActivityUserQuarantine        = 2014 // User Issued Quarantine Command
	ActivityUserUnquarantine      = 2015 // User Issued Unquarantine Command

	// The agents' reports.
	ActivityThreatFileUploaded        = 86   // Agent Uploaded Threat File
	ActivityAgentScanStarted          = 90   // Agent Started Full Disk Scan
	ActivityAgentScanAborted          = 91   // Agent Aborted Full Disk Scan
	ActivityAgentScanCompleted        = 92   // Agent Completed Full Disk Scan
	ActivityAgentDisconnected         = 1001 // Agent Disconnected From Network
	ActivityAgentReconnected          = 1002 // Agent Reconnected To Network
	ActivityKillSuccess               = 2001 // Threat Mitigation Report Kill Success
	ActivityRemediateSuccess          = 2002 // Threat Mitigation Report Remediate Success
	ActivityRollbackSuccess           = 2003 // Threat Mitigation Report Rollback Success
	ActivityQuarantineSuccess         = 2004 // Threat Mitigation Report Quarantine Success
	ActivityKillFailed                = 2006 // Threat Mitigation Report Kill Failed
	ActivityRemediateFailed           = 2007 // Threat Mitigation Report Remediate Failed
	ActivityRollbackFailed            = 2008 // Threat Mitigation Report Rollback Failed
	ActivityQuarantineFailed          = 2009 // Threat Mitigation Report Quarantine Failed
	ActivityIsolationFailed           = 2010 // Agent Mitigation Report Quarantine Network Failed
	ActivityUnquarantineSuccess       = 2026 // Threat Mitigation Report Unquarantine Success
	ActivityUnquarantineFailed        = 2027 // Threat Mitigation Report Unquarantine Failed
	ActivityKillPendingReboot         = 2031 // Threat Mitigation Report Kill Pending Reboot
	ActivityRemediatePendingReboot    = 2032 // Threat Mitigation Report Remediate Pending Reboot
	ActivityRollbackPendingReboot     = 2033 // Threat Mitigation Report Rollback Pending Reboot
	ActivityQuarantinePendingReboot   = 2034 // Threat Mitigation Report Quarantine Pending Reboot
	ActivityUnquarantinePendingReboot = 2035 // Threat Mitigation Report Unquarantine Pending Reboot
)

// Network states of an agent (Agent.NetworkStatus): connecting and
// disconnecting while a command waits for the agent.
const (
	NetworkConnected     = "connected"
	NetworkDisconnected  = "disconnected"
	NetworkConnecting    = "connecting"
	NetworkDisconnecting = "disconnecting"
)
