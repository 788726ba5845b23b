package emulator

import (
	"encoding/json"
	"sync/atomic"
)

// Network statuses of an agent.
const (
	netConnected     = "connected"
	netDisconnected  = "disconnected"
	netConnecting    = "connecting"
	netDisconnecting = "disconnecting"
)

// Full disk scan statuses of an agent.
const (
	scanNone     = "none"
	scanStarted  = "started"
	scanAborted  = "aborted"
	scanFinished = "finished"
)

var (
	networkStatuses = []string{netConnected, netDisconnected, netConnecting, netDisconnecting}
	scanStatuses    = []string{scanStarted, scanNone, scanFinished, scanAborted}
	osTypes         = []string{"windows", "windows_legacy", "macos", "linux"}
	machineTypes    = []string{"unknown", "desktop", "laptop", "server", "kubernetes node", "storage",
		"kubernetes pod", "ecs task", "kubernetes helper"}
)

type netIface struct {
	ID       string   `json:"id"`
	Inet     []string `json:"inet"`
	Inet6    []string `json:"inet6"`
	Name     string   `json:"name"`
	Physical string   `json:"physical"`
}

type agent struct {
	row
	uuid, computerName, domain         string
	site                               *site
	group                              *group
	osType, osName, osRevision, osArch string
	machineType, agentVersion          string
	modelName, cpuID                   string
	coreCount, cpuCount, totalMemory   int
	isActive, isDecommissioned         bool
	isUpToDate                         bool
	activeThreats                      int
	networkStatus                      string
	externalIP                         string
	ifaces                             []netIface
	lastActiveDate, registeredAt       int64
	osStartTime                        int64
	scanStartedAt, scanFinishedAt      int64
	scanAbortedAt                      int64
	scanStatus                         string // none, started, aborted, finished
	lastLoggedInUserName               string
	mitigationMode                     string
	rebootRequired                     bool
	alerts                             []*alert
	threats                            []*threat
	// rt caches the agentRealtimeInfo object that every threat of this agent
	// splices into its JSON, so a network change re-renders one fragment.
	rt atomic.Pointer[[]byte]
}

func (a *agent) inets() []string {
	var out []string
	for _, n := range a.ifaces {
		out = append(out, n.Inet...)
		out = append(out, n.Inet6...)
	}
	return out
}

func (a *agent) macs() []string {
	out := make([]string, len(a.ifaces))
	for i, n := range a.ifaces {
		out[i] = n.Physical
	}
	return out
}

// changed drops every rendering that shows the agent.
func (a *agent) changed() {
	a.invalidate()
	a.rt.Store(nil)
	for _, al := range a.alerts {
		al.invalidate()
	}
}

type agentJSON struct {
	AccountID            string          `json:"accountId"`
	AccountName          string          `json:"accountName"`
	ActiveDirectory      activeDirectory `json:"activeDirectory"`
	ActiveThreats        int             `json:"activeThreats"`
	AgentVersion         string          `json:"agentVersion"`
	AllowRemoteShell     bool            `json:"allowRemoteShell"`
	AppsVulnStatus       string          `json:"appsVulnerabilityStatus"`
	CloudProviders       struct{}        `json:"cloudProviders"`
	ComputerName         string          `json:"computerName"`
	ConsoleMigration     string          `json:"consoleMigrationStatus"`
	CoreCount            int             `json:"coreCount"`
	CPUCount             int             `json:"cpuCount"`
	CPUID                string          `json:"cpuId"`
	CreatedAt            string          `json:"createdAt"`
	Domain               string          `json:"domain"`
	EncryptedApps        bool            `json:"encryptedApplications"`
	ExternalID           string          `json:"externalId"`
	ExternalIP           string          `json:"externalIp"`
	FirewallEnabled      bool            `json:"firewallEnabled"`
	GroupID              string          `json:"groupId"`
	GroupIP              string          `json:"groupIp"`
	GroupName            string          `json:"groupName"`
	ID                   string          `json:"id"`
	InRemoteShell        bool            `json:"inRemoteShellSession"`
	Infected             bool            `json:"infected"`
	InstallerType        string          `json:"installerType"`
	IsActive             bool            `json:"isActive"`
	IsDecommissioned     bool            `json:"isDecommissioned"`
	IsPendingUninstall   bool            `json:"isPendingUninstall"`
	IsUninstalled        bool            `json:"isUninstalled"`
	IsUpToDate           bool            `json:"isUpToDate"`
	LastActiveDate       string          `json:"lastActiveDate"`
	LastIPToMgmt         string          `json:"lastIpToMgmt"`
	LastLoggedInUserName string          `json:"lastLoggedInUserName"`
	LicenseKey           string          `json:"licenseKey"`
	LocationEnabled      bool            `json:"locationEnabled"`
	LocationType         string          `json:"locationType"`
	Locations            []agentLocation `json:"locations"`
	MachineType          string          `json:"machineType"`
	MitigationMode       string          `json:"mitigationMode"`
	MitigationModeSusp   string          `json:"mitigationModeSuspicious"`
	ModelName            string          `json:"modelName"`
	NetworkInterfaces    []netIface      `json:"networkInterfaces"`
	NetworkQuarantine    bool            `json:"networkQuarantineEnabled"`
	NetworkStatus        string          `json:"networkStatus"`
	OperationalState     string          `json:"operationalState"`
	OperationalStateExp  *string         `json:"operationalStateExpiration"`
	OSArch               string          `json:"osArch"`
	OSName               string          `json:"osName"`
	OSRevision           string          `json:"osRevision"`
	OSStartTime          string          `json:"osStartTime"`
	OSType               string          `json:"osType"`
	OSUsername           *string         `json:"osUsername"`
	RangerStatus         string          `json:"rangerStatus"`
	RangerVersion        *string         `json:"rangerVersion"`
	RegisteredAt         string          `json:"registeredAt"`
	RemoteProfiling      string          `json:"remoteProfilingState"`
	RemoteProfilingExp   *string         `json:"remoteProfilingStateExpiration"`
	ScanAbortedAt        *string         `json:"scanAbortedAt"`
	ScanFinishedAt       *string         `json:"scanFinishedAt"`
	ScanStartedAt        *string         `json:"scanStartedAt"`
	ScanStatus           string          `json:"scanStatus"`
	SiteID               string          `json:"siteId"`
	SiteName             string          `json:"siteName"`
	ThreatRebootRequired bool            `json:"threatRebootRequired"`
	TotalMemory          int             `json:"totalMemory"`
	UpdatedAt            string          `json:"updatedAt"`
	UserActionsNeeded    []string        `json:"userActionsNeeded"`
	UUID                 string          `json:"uuid"`
}

type activeDirectory struct {
	ComputerDistinguishedName *string  `json:"computerDistinguishedName"`
	ComputerMemberOf          []string `json:"computerMemberOf"`
	LastUserDistinguishedName *string  `json:"lastUserDistinguishedName"`
	LastUserMemberOf          []string `json:"lastUserMemberOf"`
}

type agentLocation struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

func (a *agent) userActions() []string {
	if a.rebootRequired {
		return []string{"reboot_needed"}
	}
	return []string{}
}

func (a *agent) json() []byte {
	inet := ""
	if len(a.ifaces) > 0 && len(a.ifaces[0].Inet) > 0 {
		inet = a.ifaces[0].Inet[0]
	}
	b, _ := json.Marshal(agentJSON{
		AccountID: a.site.accountID, AccountName: a.site.accountName,
		ActiveDirectory: activeDirectory{LastUserMemberOf: []string{}},
		ActiveThreats:   a.activeThreats, AgentVersion: a.agentVersion, AppsVulnStatus: "up_to_date",
		ComputerName: a.computerName, ConsoleMigration: "N/A", CoreCount: a.coreCount, CPUCount: a.cpuCount,
		CPUID: a.cpuID, CreatedAt: formatTime(a.created), Domain: a.domain, ExternalIP: a.externalIP,
		FirewallEnabled: true, GroupID: a.group.idStr, GroupIP: groupIP(a.externalIP), GroupName: a.group.name,
		ID: a.idStr, Infected: a.activeThreats > 0, InstallerType: installerType(a.osType), IsActive: a.isActive,
		IsDecommissioned: a.isDecommissioned, IsUpToDate: a.isUpToDate,
		LastActiveDate: formatTime(a.lastActiveDate), LastIPToMgmt: inet,
		LastLoggedInUserName: a.lastLoggedInUserName, LocationEnabled: true, LocationType: "fallback",
		Locations:   []agentLocation{{ID: a.site.idStr, Name: "Fallback", Scope: "global"}},
		MachineType: a.machineType, MitigationMode: a.mitigationMode, MitigationModeSusp: "detect",
		ModelName: a.modelName, NetworkInterfaces: a.ifaces,
		NetworkQuarantine: a.networkStatus == netDisconnected || a.networkStatus == netDisconnecting,
		NetworkStatus:     a.networkStatus, OperationalState: "na", OSArch: a.osArch, OSName: a.osName,
		OSRevision: a.osRevision, OSStartTime: formatTime(a.osStartTime), OSType: a.osType,
		RangerStatus: "NotApplicable", RegisteredAt: formatTime(a.registeredAt), RemoteProfiling: "disabled",
		ScanAbortedAt: nullTime(a.scanAbortedAt), ScanFinishedAt: nullTime(a.scanFinishedAt), ScanStartedAt: nullTime(a.scanStartedAt),
		ScanStatus: a.scanStatus, SiteID: a.site.idStr, SiteName: a.site.name,
		ThreatRebootRequired: a.rebootRequired, TotalMemory: a.totalMemory, UpdatedAt: formatTime(a.updated),
		UserActionsNeeded: a.userActions(), UUID: a.uuid,
	})
	return b
}

// realtimeJSON is the agentRealtimeInfo object of a threat (keys as in the fixture).
type realtimeJSON struct {
	AccountID          string     `json:"accountId"`
	AccountName        string     `json:"accountName"`
	ActiveThreats      int        `json:"activeThreats"`
	AgentComputerName  string     `json:"agentComputerName"`
	AgentDecommAt      *string    `json:"agentDecommissionedAt"`
	AgentDomain        string     `json:"agentDomain"`
	AgentID            string     `json:"agentId"`
	AgentInfected      bool       `json:"agentInfected"`
	AgentIsActive      bool       `json:"agentIsActive"`
	AgentIsDecomm      bool       `json:"agentIsDecommissioned"`
	AgentMachineType   string     `json:"agentMachineType"`
	AgentMitigation    string     `json:"agentMitigationMode"`
	AgentNetworkStatus string     `json:"agentNetworkStatus"`
	AgentOSName        string     `json:"agentOsName"`
	AgentOSRevision    string     `json:"agentOsRevision"`
	AgentOSType        string     `json:"agentOsType"`
	AgentUUID          string     `json:"agentUuid"`
	AgentVersion       string     `json:"agentVersion"`
	GroupID            string     `json:"groupId"`
	GroupName          string     `json:"groupName"`
	NetworkInterfaces  []netIface `json:"networkInterfaces"`
	OperationalState   string     `json:"operationalState"`
	RebootRequired     bool       `json:"rebootRequired"`
	ScanAbortedAt      *string    `json:"scanAbortedAt"`
	ScanFinishedAt     *string    `json:"scanFinishedAt"`
	ScanStartedAt      *string    `json:"scanStartedAt"`
	ScanStatus         string     `json:"scanStatus"`
	SiteID             string     `json:"siteId"`
	SiteName           string     `json:"siteName"`
	StorageName        *string    `json:"storageName"`
	StorageType        *string    `json:"storageType"`
	UserActionsNeeded  []string   `json:"userActionsNeeded"`
}

// realtime returns the cached agentRealtimeInfo fragment.
func (a *agent) realtime() []byte {
	if p := a.rt.Load(); p != nil {
		return *p
	}
	b, _ := json.Marshal(realtimeJSON{
		AccountID: a.site.accountID, AccountName: a.site.accountName, ActiveThreats: a.activeThreats,
		AgentComputerName: a.computerName, AgentDomain: a.domain, AgentID: a.idStr,
		AgentInfected: a.activeThreats > 0, AgentIsActive: a.isActive, AgentIsDecomm: a.isDecommissioned,
		AgentMachineType: a.machineType, AgentMitigation: a.mitigationMode, AgentNetworkStatus: a.networkStatus,
		AgentOSName: a.osName, AgentOSRevision: a.osRevision, AgentOSType: a.osType, AgentUUID: a.uuid,
		AgentVersion: a.agentVersion, GroupID: a.group.idStr, GroupName: a.group.name,
		NetworkInterfaces: a.ifaces, OperationalState: "na", RebootRequired: a.rebootRequired,
		ScanAbortedAt: nullTime(a.scanAbortedAt), ScanFinishedAt: nullTime(a.scanFinishedAt), ScanStartedAt: nullTime(a.scanStartedAt),
		ScanStatus: a.scanStatus, SiteID: a.site.idStr, SiteName: a.site.name, UserActionsNeeded: a.userActions(),
	})
	a.rt.Store(&b)
	return b
}

func groupIP(ip string) string {
	for i := len(ip) - 1; i >= 0; i-- {
		if ip[i] == '.' {
			return ip[:i] + ".x"
		}
	}
	return ip
}

func installerType(os string) string {
	switch os {
	case "macos":
		return ".pkg"
	case "linux":
		return ".deb"
	}
	return ".msi"
}

func agentCollection() *collection[*agent] {
	type A = *agent
	return &collection[A]{
		name: "agent",
		t:    newTable[A](),
		params: absent(map[string]param[A]{
			"ids":                                pRowID[A](),
			"siteIds":                            pIDs(func(a A) string { return a.site.idStr }),
			"filteredSiteIds":                    pIDs(func(a A) string { return a.site.idStr }),
			"groupIds":                           pIDs(func(a A) string { return a.group.idStr }),
			"filteredGroupIds":                   pIDs(func(a A) string { return a.group.idStr }),
			"accountIds":                         pIDs(func(a A) string { return a.site.accountID }),
			"computerName":                       pEq(func(a A) string { return a.computerName }),
			"computerName__contains":             pContains(func(a A) string { return a.computerName }),
			"computerName__like":                 pLike(func(a A) string { return a.computerName }),
			"computerNameOrUuid__contains":       pContainsAny(func(a A) []string { return []string{a.computerName, a.uuid} }),
			"networkInterfaceInet__contains":     pContainsAny(A.inets),
			"networkInterfacePhysical__contains": pContainsAny(A.macs),
			"externalIp__contains":               pContains(func(a A) string { return a.externalIP }),
			"lastLoggedInUserName__contains":     pContains(func(a A) string { return a.lastLoggedInUserName }),
			"osVersion__contains":                pContains(func(a A) string { return a.osName }),
			"uuid":                               pEq(func(a A) string { return a.uuid }),
			"uuids":                              pIn(func(a A) string { return a.uuid }),
			"uuid__contains":                     pContains(func(a A) string { return a.uuid }),
			"query": pQuery(func(a A) []string {
				return append([]string{a.computerName, a.uuid, a.externalIP, a.domain, a.osName,
					a.lastLoggedInUserName, a.agentVersion}, append(a.inets(), a.macs()...)...)
			}),
			"isActive":             pBools(func(a A) bool { return a.isActive }),
			"isDecommissioned":     pBools(func(a A) bool { return a.isDecommissioned }),
			"isUninstalled":        pBools(func(A) bool { return false }),
			"isPendingUninstall":   pBools(func(A) bool { return false }),
			"isUpToDate":           pBools(func(a A) bool { return a.isUpToDate }),
			"threatRebootRequired": pBools(func(a A) bool { return a.rebootRequired }),
			"networkQuarantineEnabled": pBools(func(a A) bool {
				return a.networkStatus == netDisconnected || a.networkStatus == netDisconnecting
			}),
			"firewallEnabled":       pBools(func(A) bool { return true }),
			"locationEnabled":       pBools(func(A) bool { return true }),
			"encryptedApplications": pBools(func(A) bool { return false }),
			"infected":              pBool(func(a A) bool { return a.activeThreats > 0 }),
			"networkStatuses":       pIn(func(a A) string { return a.networkStatus }, networkStatuses...),
			"osTypes":               pIn(func(a A) string { return a.osType }, osTypes...),
			"osArches":              pIn(func(a A) string { return a.osArch }, "32 bit", "64 bit", "ARM64"),
			"osArch":                pEnumEq(func(a A) string { return a.osArch }, "32 bit", "64 bit", "ARM64"),
			"machineTypes":          pIn(func(a A) string { return a.machineType }, machineTypes...),
			"agentVersions":         pIn(func(a A) string { return a.agentVersion }),
			"domains":               pIn(func(a A) string { return a.domain }),
			"scanStatuses":          pIn(func(a A) string { return a.scanStatus }, scanStatuses...),
			"scanStatus":            pEnumEq(func(a A) string { return a.scanStatus }, scanStatuses...),
			"mitigationMode":        pEnumEq(func(a A) string { return a.mitigationMode }, "detect", "protect"),
			"operationalStates":     pIn(func(A) string { return "na" }),
			"installerTypes":        pIn(func(a A) string { return installerType(a.osType) }),
			"userActionsNeeded":     pInAny(A.userActions),
			"activeThreats":         pInt(func(a A) int64 { return int64(a.activeThreats) }),
			"coreCount":             pInt(func(a A) int64 { return int64(a.coreCount) }),
			"cpuCount":              pInt(func(a A) int64 { return int64(a.cpuCount) }),
			"totalMemory":           pInt(func(a A) int64 { return int64(a.totalMemory) }),
			"createdAt":             pCreated[A](),
			"updatedAt":             pUpdated[A](),
			"registeredAt":          pTime(func(a A) int64 { return a.registeredAt }),
			"lastActiveDate":        pTime(func(a A) int64 { return a.lastActiveDate }),
			// The emulator keeps no saved filters: a filterId matches no agent.
			"filterId":                  pEq(func(A) string { return "" }),
			"cpuId__contains":           pContains(func(a A) string { return a.cpuID }),
			"lastSuccessfulScanDate":    pTime(func(a A) int64 { return a.scanFinishedAt }),
			"mitigationModeSuspicious":  pEnumEq(func(A) string { return "detect" }, "detect", "protect"),
			"consoleMigrationStatuses":  pIn(func(A) string { return "N/A" }),
			"appsVulnerabilityStatuses": pIn(func(A) string { return "up_to_date" }),
			"remoteProfilingStates":     pIn(func(A) string { return "disabled" }),
			"rangerStatuses":            pIn(func(A) string { return "NotApplicable" }),
			"rangerStatus":              pEq(func(A) string { return "NotApplicable" }),
			"locationIds":               pIn(func(a A) string { return a.site.idStr }),
			"isAdConnector":             pBools(func(A) bool { return false }),
			"isHyperAutomate":           pBools(func(A) bool { return false }),
			"hasContainerizedWorkload":  pBools(func(A) bool { return false }),
			"hasTags":                   pBool(func(A) bool { return false }),
			"hasLocalConfiguration":     pBool(func(A) bool { return false }),
			"threatContentHash": pInAny(func(a A) []string {
				out := make([]string, 0, len(a.threats))
				for _, t := range a.threats {
					out = append(out, t.sha1)
				}
				return out
			}),
		}, "networkInterfaceGatewayMacAddress__contains", "externalId__contains", "serialNumber__contains",
			"adQuery", "adQuery__contains", "adUserName__contains", "adUserMember__contains", "adUserQuery__contains",
			"adComputerName__contains", "adComputerMember__contains", "adComputerQuery__contains", "storageTypes",
			"missingPermissions", "rangerVersions", "cloudProvider", "awsRole__contains", "awsSecurityGroups__contains",
			"awsSubnetIds__contains", "agentNamespace__contains", "agentPodName__contains", "azureResourceGroup__contains",
			"cloudAccount__contains", "cloudImage__contains", "cloudInstanceId__contains", "cloudInstanceSize__contains",
			"cloudLocation__contains", "cloudNetwork__contains", "cloudTags__contains", "clusterName__contains",
			"gcpServiceAccount__contains", "k8sNodeLabels__contains", "k8sNodeName__contains", "k8sType__contains",
			"k8sVersion__contains", "liveUpdateId__contains", "ecsType__contains", "ecsVersion__contains",
			"ecsClusterName__contains", "ecsTaskArn__contains", "ecsTaskAvailabilityZone__contains",
			"ecsServiceName__contains", "ecsServiceArn__contains", "ecsTaskDefinitionFamily__contains",
			"ecsTaskDefinitionRevision__contains", "ecsTaskDefinitionArn__contains"),
		sorts: map[string]sortField[A]{
			"id":                   {native: nativeID},
			"createdAt":            {native: nativeCreated},
			"updatedAt":            {native: nativeUpdated},
			"computerName":         {str: func(a A) string { return a.computerName }},
			"lastActiveDate":       {num: func(a A) int64 { return a.lastActiveDate }},
			"registeredAt":         {num: func(a A) int64 { return a.registeredAt }},
			"networkStatus":        {str: func(a A) string { return a.networkStatus }},
			"osType":               {str: func(a A) string { return a.osType }},
			"osName":               {str: func(a A) string { return a.osName }},
			"agentVersion":         {str: func(a A) string { return a.agentVersion }},
			"siteName":             {str: func(a A) string { return a.site.name }},
			"groupName":            {str: func(a A) string { return a.group.name }},
			"activeThreats":        {num: func(a A) int64 { return int64(a.activeThreats) }},
			"externalIp":           {str: func(a A) string { return a.externalIP }},
			"uuid":                 {str: func(a A) string { return a.uuid }},
			"domain":               {str: func(a A) string { return a.domain }},
			"machineType":          {str: func(a A) string { return a.machineType }},
			"lastLoggedInUserName": {str: func(a A) string { return a.lastLoggedInUserName }},
		},
		defaultSort: "id",
		render:      func(b []byte, a A) []byte { return cached(b, &a.row, a.json) },
	}
}
