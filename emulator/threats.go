package emulator

import (
	"encoding/json"
	"sync/atomic"
)

// Threat enums (lower_snake, as threats use them in filters, bodies and responses).
const (
	statusUnresolved = "unresolved"
	statusInProgress = "in_progress"
	statusResolved   = "resolved"

	verdictUndefined     = "undefined"
	verdictTruePositive  = "true_positive"
	verdictFalsePositive = "false_positive"
	verdictSuspicious    = "suspicious"

	mitigationNot    = "not_mitigated"
	mitigationDone   = "mitigated"
	mitigationBenign = "marked_as_benign"
)

var (
	incidentStatuses   = []string{statusUnresolved, statusInProgress, statusResolved}
	analystVerdicts    = []string{verdictUndefined, verdictTruePositive, verdictFalsePositive, verdictSuspicious}
	mitigationStatuses = []string{mitigationNot, mitigationDone, mitigationBenign}

	// displayNames are the *Description strings threats carry and the
	// display-case values alerts answer with.
	displayNames = map[string]string{
		statusUnresolved: "Unresolved", statusInProgress: "In progress", statusResolved: "Resolved",
		verdictUndefined: "Undefined", verdictTruePositive: "True positive",
		verdictFalsePositive: "False positive", verdictSuspicious: "Suspicious",
		mitigationNot: "Not mitigated", mitigationDone: "Mitigated", mitigationBenign: "Marked as benign",
	}
	initiatedByNames = map[string]string{
		"agent_policy": "Agent Policy", "star_active": "Custom Rule", "full_disk_scan": "Full Disk Scan",
		"console_api": "Console API", "on_demand_scan": "On Demand Scan", "cloud_detection": "Cloud Detection",
	}
	engineTitles = map[string]string{
		"sentinelone_cloud": "SentinelOne Cloud", "pre_execution": "On-Write Static AI",
		"executables": "Behavioral AI", "manual": "Manual", "reputation": "Reputation",
		"exploits": "Documents, Scripts", "lateral_movement": "Lateral Movement",
	}
)

type mitigationAction struct {
	action        string
	status        string // success, failed, pending-reboot, pending, sent
	started, done int64  // done is 0 until the agent reports
	counted       bool
	notFound      bool // the agent could not find the threat's file
}

type threat struct {
	row
	agent                                                 *agent
	name, sha1, sha256, md5                               string
	classification, classificationSource, confidenceLevel string
	incidentStatus, analystVerdict, mitigationStatus      string
	initiatedBy, detectionType                            string
	engines                                               []string // detection engine keys
	filePath, fileExt, processUser, originatorProcess     string
	commandLine, publisher                                string
	fileSize                                              int
	fileless                                              bool
	storyline, collectionID                               string
	identifiedAt                                          int64
	mitigations                                           []mitigationAction
	notes                                                 int  // threat notes added
	rebootRequired                                        bool // a mitigation waits for a reboot
	indicators                                            json.RawMessage
	// Detection-time facts of the agent (agentDetectionInfo).
	detIP, detIP6, detUser, detVersion, detDomain string
	// parts caches the JSON around the agentRealtimeInfo fragment, which is
	// spliced in from the agent at each render.
	parts atomic.Pointer[threatParts]
}

type threatParts struct{ head, tail []byte }

// invalidate drops the cached rendering (it shadows row.invalidate).
func (t *threat) invalidate() { t.parts.Store(nil) }

func (t *threat) appendJSON(b []byte) []byte {
	p := t.parts.Load()
	if p == nil {
		p = t.render()
		t.parts.Store(p)
	}
	b = append(b, p.head...)
	b = append(b, t.agent.realtime()...)
	return append(b, p.tail...)
}

type detectionJSON struct {
	AccountID         string   `json:"accountId"`
	AccountName       string   `json:"accountName"`
	DetectionState    string   `json:"agentDetectionState"`
	AgentDomain       string   `json:"agentDomain"`
	AgentIPV4         string   `json:"agentIpV4"`
	AgentIPV6         string   `json:"agentIpV6"`
	LastLoggedInUpn   *string  `json:"agentLastLoggedInUpn"`
	LastLoggedInMail  *string  `json:"agentLastLoggedInUserMail"`
	LastLoggedInUser  string   `json:"agentLastLoggedInUserName"`
	AgentMitigation   string   `json:"agentMitigationMode"`
	AgentOSName       string   `json:"agentOsName"`
	AgentOSRevision   string   `json:"agentOsRevision"`
	AgentRegisteredAt string   `json:"agentRegisteredAt"`
	AgentUUID         string   `json:"agentUuid"`
	AgentVersion      string   `json:"agentVersion"`
	CloudProviders    struct{} `json:"cloudProviders"`
	ExternalIP        string   `json:"externalIp"`
	GroupID           string   `json:"groupId"`
	GroupName         string   `json:"groupName"`
	SiteID            string   `json:"siteId"`
	SiteName          string   `json:"siteName"`
}

type engineJSON struct {
	Key   string `json:"key"`
	Title string `json:"title"`
}

type countersJSON struct {
	Failed        int `json:"failed"`
	NotFound      int `json:"notFound"`
	PendingReboot int `json:"pendingReboot"`
	Success       int `json:"success"`
	Total         int `json:"total"`
}

type mitigationJSON struct {
	Action              string        `json:"action"`
	ActionsCounters     *countersJSON `json:"actionsCounters"`
	AgentSupportsReport bool          `json:"agentSupportsReport"`
	GroupNotFound       bool          `json:"groupNotFound"`
	LastUpdate          string        `json:"lastUpdate"`
	LatestReport        *string       `json:"latestReport"`
	MitigationEndedAt   *string       `json:"mitigationEndedAt"`
	MitigationStartedAt *string       `json:"mitigationStartedAt"`
	Status              string        `json:"status"`
}

// json renders one mitigationStatus[] entry.
func (m mitigationAction) json() mitigationJSON {
	last := m.done + 1000
	if m.done == 0 {
		last = m.started
	}
	mj := mitigationJSON{
		Action: m.action, AgentSupportsReport: true, GroupNotFound: m.notFound, LastUpdate: formatTime(last),
		MitigationEndedAt: nullTime(m.done), MitigationStartedAt: nullTime(m.started), Status: m.status,
	}
	switch {
	case m.counted:
		mj.ActionsCounters = &countersJSON{Success: 1, Total: 1}
		mj.LatestReport = ptr("")
	case m.done != 0:
		c := &countersJSON{Total: 1}
		switch {
		case m.notFound:
			c.NotFound = 1
		case m.status == "success":
			c.Success = 1
		case m.status == "failed":
			c.Failed = 1
		case m.status == "pending-reboot":
			c.PendingReboot = 1
		}
		mj.ActionsCounters = c
	}
	return mj
}

// pendingActions reports whether a mitigation waits for its agent.
func (t *threat) pendingActions() bool {
	for _, m := range t.mitigations {
		if m.status == "sent" || m.status == "pending" {
			return true
		}
	}
	return false
}

// failedActions reports whether a mitigation failed.
func (t *threat) failedActions() bool {
	for _, m := range t.mitigations {
		if m.status == "failed" {
			return true
		}
	}
	return false
}

type threatInfoJSON struct {
	AnalystVerdict            string       `json:"analystVerdict"`
	AnalystVerdictDescription string       `json:"analystVerdictDescription"`
	AutomaticallyResolved     bool         `json:"automaticallyResolved"`
	BrowserType               *string      `json:"browserType"`
	CertificateID             string       `json:"certificateId"`
	Classification            string       `json:"classification"`
	ClassificationSource      string       `json:"classificationSource"`
	CloudFilesHashVerdict     *string      `json:"cloudFilesHashVerdict"`
	CollectionID              string       `json:"collectionId"`
	ConfidenceLevel           string       `json:"confidenceLevel"`
	CreatedAt                 string       `json:"createdAt"`
	DetectionEngines          []engineJSON `json:"detectionEngines"`
	DetectionType             string       `json:"detectionType"`
	Engines                   []string     `json:"engines"`
	ExternalTicketExists      bool         `json:"externalTicketExists"`
	ExternalTicketID          *string      `json:"externalTicketId"`
	FailedActions             bool         `json:"failedActions"`
	FileExtension             string       `json:"fileExtension"`
	FileExtensionType         string       `json:"fileExtensionType"`
	FilePath                  string       `json:"filePath"`
	FileSize                  int          `json:"fileSize"`
	FileVerificationType      string       `json:"fileVerificationType"`
	IdentifiedAt              string       `json:"identifiedAt"`
	IncidentStatus            string       `json:"incidentStatus"`
	IncidentStatusDescription string       `json:"incidentStatusDescription"`
	InitiatedBy               string       `json:"initiatedBy"`
	InitiatedByDescription    string       `json:"initiatedByDescription"`
	InitiatingUserID          *string      `json:"initiatingUserId"`
	InitiatingUsername        *string      `json:"initiatingUsername"`
	IsFileless                bool         `json:"isFileless"`
	IsValidCertificate        bool         `json:"isValidCertificate"`
	MaliciousProcessArguments string       `json:"maliciousProcessArguments"`
	MD5                       *string      `json:"md5"`
	MitigatedPreemptively     bool         `json:"mitigatedPreemptively"`
	MitigationStatus          string       `json:"mitigationStatus"`
	MitigationStatusDesc      string       `json:"mitigationStatusDescription"`
	OriginatorProcess         *string      `json:"originatorProcess"`
	PendingActions            bool         `json:"pendingActions"`
	ProcessUser               string       `json:"processUser"`
	PublisherName             string       `json:"publisherName"`
	ReachedEventsLimit        bool         `json:"reachedEventsLimit"`
	RebootRequired            bool         `json:"rebootRequired"`
	SHA1                      string       `json:"sha1"`
	SHA256                    *string      `json:"sha256"`
	Storyline                 string       `json:"storyline"`
	ThreatID                  string       `json:"threatId"`
	ThreatName                string       `json:"threatName"`
	UpdatedAt                 string       `json:"updatedAt"`
}

// nullContainer and nullKubernetes are the all-null containerInfo and
// kubernetesInfo of a threat on a host that is neither.
var (
	nullContainer  = json.RawMessage(`{"id":null,"image":null,"isContainerQuarantine":null,"labels":null,"name":null}`)
	nullKubernetes = json.RawMessage(`{"cluster":null,"controllerKind":null,"controllerLabels":null,` +
		`"controllerName":null,"isContainerQuarantine":null,"namespace":null,"namespaceLabels":null,` +
		`"node":null,"pod":null,"podLabels":null}`)
)

func (t *threat) render() *threatParts {
	a := t.agent
	head, _ := json.Marshal(struct {
		D detectionJSON `json:"agentDetectionInfo"`
	}{detectionJSON{
		AccountID: a.site.accountID, AccountName: a.site.accountName, DetectionState: "full_mode",
		AgentDomain: t.detDomain, AgentIPV4: t.detIP, AgentIPV6: t.detIP6, LastLoggedInUser: t.detUser,
		AgentMitigation: a.mitigationMode, AgentOSName: a.osName, AgentOSRevision: a.osRevision,
		AgentRegisteredAt: formatTime(a.registeredAt), AgentUUID: a.uuid, AgentVersion: t.detVersion,
		ExternalIP: a.externalIP, GroupID: a.group.idStr, GroupName: a.group.name,
		SiteID: a.site.idStr, SiteName: a.site.name,
	}})
	engines := make([]engineJSON, len(t.engines))
	titles := make([]string, len(t.engines))
	for i, k := range t.engines {
		engines[i] = engineJSON{Key: k, Title: engineTitles[k]}
		titles[i] = engineTitles[k]
	}
	mits := make([]mitigationJSON, len(t.mitigations))
	for i, m := range t.mitigations {
		mits[i] = m.json()
	}
	fileExtType := "Executable"
	if t.fileless {
		fileExtType = "None"
	}
	verification := "SignedVerified"
	if t.publisher == "" {
		verification = "NotSigned"
	}
	tail, _ := json.Marshal(struct {
		ContainerInfo    json.RawMessage  `json:"containerInfo"`
		ID               string           `json:"id"`
		Indicators       json.RawMessage  `json:"indicators"`
		KubernetesInfo   json.RawMessage  `json:"kubernetesInfo"`
		MitigationStatus []mitigationJSON `json:"mitigationStatus"`
		ThreatInfo       threatInfoJSON   `json:"threatInfo"`
		WhiteningOptions []string         `json:"whiteningOptions"`
	}{
		ContainerInfo: nullContainer, ID: t.idStr, Indicators: t.indicators, KubernetesInfo: nullKubernetes,
		MitigationStatus: mits,
		ThreatInfo: threatInfoJSON{
			AnalystVerdict: t.analystVerdict, AnalystVerdictDescription: displayNames[t.analystVerdict],
			CertificateID: "", Classification: t.classification, ClassificationSource: t.classificationSource,
			CollectionID: t.collectionID, ConfidenceLevel: t.confidenceLevel, CreatedAt: formatTime(t.created),
			DetectionEngines: engines, DetectionType: t.detectionType, Engines: titles,
			FileExtension: t.fileExt, FileExtensionType: fileExtType, FilePath: t.filePath, FileSize: t.fileSize,
			FileVerificationType: verification, IdentifiedAt: formatTime(t.identifiedAt),
			IncidentStatus: t.incidentStatus, IncidentStatusDescription: displayNames[t.incidentStatus],
			InitiatedBy: t.initiatedBy, InitiatedByDescription: initiatedByNames[t.initiatedBy],
			IsFileless: t.fileless, IsValidCertificate: t.publisher != "", MaliciousProcessArguments: t.commandLine,
			FailedActions: t.failedActions(), PendingActions: t.pendingActions(), RebootRequired: t.rebootRequired,
			MD5: nullable(t.md5), MitigationStatus: t.mitigationStatus,
			MitigationStatusDesc: displayNames[t.mitigationStatus], OriginatorProcess: nullable(t.originatorProcess),
			ProcessUser: t.processUser, PublisherName: t.publisher, SHA1: t.sha1, SHA256: nullable(t.sha256),
			Storyline: t.storyline, ThreatID: t.idStr, ThreatName: t.name, UpdatedAt: formatTime(t.updated),
		},
		WhiteningOptions: whitening(t),
	})
	h := append(head[:len(head)-1:len(head)-1], `,"agentRealtimeInfo":`...)
	tl := append([]byte{','}, tail[1:]...)
	return &threatParts{head: h, tail: tl}
}

func whitening(t *threat) []string {
	if t.sha1 == "" {
		return []string{}
	}
	if t.publisher != "" {
		return []string{"hash", "path", "certificate"}
	}
	return []string{"hash", "path"}
}

func (t *threat) engineKeys() []string { return t.engines }

func threatCollection() *collection[*threat] {
	type T = *threat
	osOf := func(t T) string { return t.agent.osType }
	return &collection[T]{
		name: "threat",
		t:    newTable[T](),
		params: absent(map[string]param[T]{
			"ids":                             pRowID[T](),
			"siteIds":                         pIDs(func(t T) string { return t.agent.site.idStr }),
			"groupIds":                        pIDs(func(t T) string { return t.agent.group.idStr }),
			"accountIds":                      pIDs(func(t T) string { return t.agent.site.accountID }),
			"agentIds":                        pIDs(func(t T) string { return t.agent.idStr }),
			"contentHashes":                   pIn(func(t T) string { return t.sha1 }),
			"contentHash__contains":           pContainsAny(func(t T) []string { return []string{t.sha1, t.sha256, t.md5} }),
			"displayName":                     pEq(func(t T) string { return t.name }),
			"incidentStatuses":                pIn(func(t T) string { return t.incidentStatus }, incidentStatuses...),
			"analystVerdicts":                 pIn(func(t T) string { return t.analystVerdict }, analystVerdicts...),
			"mitigationStatuses":              pIn(func(t T) string { return t.mitigationStatus }, mitigationStatuses...),
			"classifications":                 pIn(func(t T) string { return t.classification }),
			"classificationSources":           pIn(func(t T) string { return t.classificationSource }, "Cloud", "Behavioral", "Static", "Engine"),
			"confidenceLevels":                pIn(func(t T) string { return t.confidenceLevel }, "malicious", "suspicious", "n/a"),
			"initiatedBy":                     pIn(func(t T) string { return t.initiatedBy }),
			"engines":                         pInAny(T.engineKeys),
			"detectionEngines":                pInAny(T.engineKeys),
			"storylines":                      pIn(func(t T) string { return t.storyline }),
			"collectionIds":                   pIn(func(t T) string { return t.collectionID }),
			"osTypes":                         pIn(osOf, osTypes...),
			"osNames":                         pIn(func(t T) string { return t.agent.osName }),
			"osArchs":                         pIn(func(t T) string { return t.agent.osArch }, "32 bit", "64 bit", "ARM64"),
			"agentVersions":                   pIn(func(t T) string { return t.agent.agentVersion }),
			"agentMachineTypes":               pIn(func(t T) string { return t.agent.machineType }, machineTypes...),
			"agentIsActive":                   pBool(func(t T) bool { return t.agent.isActive }),
			"resolved":                        pBool(func(t T) bool { return t.incidentStatus == statusResolved }),
			"noteExists":                      pBool(func(t T) bool { return t.notes > 0 }),
			"externalTicketExists":            pBool(func(T) bool { return false }),
			"failedActions":                   pBool(T.failedActions),
			"pendingActions":                  pBool(T.pendingActions),
			"rebootRequired":                  pBool(func(t T) bool { return t.rebootRequired }),
			"mitigatedPreemptively":           pBool(func(T) bool { return false }),
			"computerName__contains":          pContains(func(t T) string { return t.agent.computerName }),
			"filePath__contains":              pContains(func(t T) string { return t.filePath }),
			"uuid__contains":                  pContains(func(t T) string { return t.agent.uuid }),
			"storyline__contains":             pContains(func(t T) string { return t.storyline }),
			"threatDetails__contains":         pContainsAny(func(t T) []string { return []string{t.name, t.filePath, t.classification} }),
			"commandLineArguments__contains":  pContains(func(t T) string { return t.commandLine }),
			"originatedProcess__contains":     pContains(func(t T) string { return t.originatorProcess }),
			"publisherName__contains":         pContains(func(t T) string { return t.publisher }),
			"detectionAgentVersion__contains": pContains(func(t T) string { return t.detVersion }),
			"realtimeAgentVersion__contains":  pContains(func(t T) string { return t.agent.agentVersion }),
			"detectionAgentDomain__contains":  pContains(func(t T) string { return t.detDomain }),
			"query": pQuery(func(t T) []string {
				return []string{t.name, t.sha1, t.sha256, t.agent.computerName, t.filePath, t.agent.uuid,
					t.storyline, t.commandLine, t.classification, t.idStr}
			}),
			"createdAt":                pCreated[T](),
			"updatedAt":                pUpdated[T](),
			"signerIdentity__contains": pContains(func(t T) string { return t.publisher }),
			"hasAgentTags":             pBool(func(T) bool { return false }),
		}, "externalTicketIds", "externalTicketId__contains", "initiatedByUsername__contains", "cloudProvider",
			"k8sClusterName__contains", "k8sNodeName__contains", "k8sNodeLabels__contains", "k8sNamespaceName__contains",
			"k8sNamespaceLabels__contains", "k8sControllerName__contains", "k8sControllerLabels__contains",
			"k8sPodName__contains", "k8sPodLabels__contains", "containerName__contains", "containerImageName__contains",
			"containerLabels__contains", "awsSecurityGroups__contains", "cloudAccount__contains", "cloudImage__contains",
			"cloudInstanceId__contains", "cloudInstanceSize__contains", "cloudLocation__contains", "cloudNetwork__contains",
			"awsRole__contains", "awsSubnetIds__contains", "azureResourceGroup__contains", "gcpServiceAccount__contains"),
		sorts: map[string]sortField[T]{
			"id":                {native: nativeID},
			"createdAt":         {native: nativeCreated},
			"createdDate":       {native: nativeCreated},
			"updatedAt":         {native: nativeUpdated},
			"mitigationStatus":  {str: func(t T) string { return t.mitigationStatus }},
			"fileDisplayName":   {str: func(t T) string { return t.name }},
			"agentVersion":      {str: func(t T) string { return t.agent.agentVersion }},
			"agentMachineType":  {str: func(t T) string { return t.agent.machineType }},
			"siteId":            {num: func(t T) int64 { return int64(t.agent.site.id) }},
			"siteName":          {str: func(t T) string { return t.agent.site.name }},
			"agentComputerName": {str: func(t T) string { return t.agent.computerName }},
			"filePath":          {str: func(t T) string { return t.filePath }},
			"contentHash":       {str: func(t T) string { return t.sha1 }},
			"collectionId":      {str: func(t T) string { return t.collectionID }},
			"classification":    {str: func(t T) string { return t.classification }},
			// The Swagger subset lists the cloud fields too; the seeded
			// agents are not cloud instances, so every threat has none.
			"cloudAccount":      {str: noCloud},
			"cloudImage":        {str: noCloud},
			"cloudInstanceId":   {str: noCloud},
			"cloudInstanceSize": {str: noCloud},
			"cloudLocation":     {str: noCloud},
			"cloudNetwork":      {str: noCloud},
		},
		defaultSort: "id",
		render:      func(b []byte, t T) []byte { return t.appendJSON(b) },
	}
}

// noCloud is a threat's cloud metadata (account, image, instance, ...):
// none, since no seeded agent is a cloud instance.
func noCloud(*threat) string { return "" }
