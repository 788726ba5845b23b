package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Alerts filter on UPPER_SNAKE values and answer display case
// ("In progress"); the emulator stores the lower_snake form.
var (
	alertStatusFilter  = []string{"UNRESOLVED", "IN_PROGRESS", "RESOLVED"}
	alertVerdictFilter = []string{"UNDEFINED", "TRUE_POSITIVE", "FALSE_POSITIVE", "SUSPICIOUS"}
	alertSeverities    = []string{"Low", "Medium", "High", "Critical", "Info"}
)

type alertRule struct {
	id, name, description, severity string
	treatAsThreat, queryType, s1ql  string
	scopeLevel                      string
}

type alertProcess struct {
	name, pid, commandline, filePath string
	sha1, sha256, md5, storyline     string
	uniqueID, user, integrity        string
	started                          int64
}

type alert struct {
	row
	reportedAt                     int64
	agent                          *agent
	incidentStatus, analystVerdict string // lower_snake
	rule                           *alertRule
	eventType, hitType, dvEventID  string
	proc, parent                   alertProcess
}

type processJSON struct {
	Commandline        *string `json:"commandline"`
	FileHashMd5        *string `json:"fileHashMd5"`
	FileHashSha1       *string `json:"fileHashSha1"`
	FileHashSha256     *string `json:"fileHashSha256"`
	FilePath           *string `json:"filePath"`
	FileSignerIdentity *string `json:"fileSignerIdentity"`
	IntegrityLevel     string  `json:"integrityLevel"`
	Name               *string `json:"name"`
	PID                *string `json:"pid"`
	PIDStarttime       string  `json:"pidStarttime"`
	Storyline          *string `json:"storyline"`
	Subsystem          string  `json:"subsystem"`
	UniqueID           *string `json:"uniqueId"`
	User               *string `json:"user"`
}

func (p alertProcess) json() processJSON {
	integrity := p.integrity
	if integrity == "" {
		integrity = "unknown"
	}
	started := "1970-01-01T00:00:00Z"
	if p.started != 0 {
		started = formatTime(p.started)
	}
	return processJSON{
		Commandline: nullable(p.commandline), FileHashMd5: nullable(p.md5), FileHashSha1: nullable(p.sha1),
		FileHashSha256: nullable(p.sha256), FilePath: nullable(p.filePath), IntegrityLevel: integrity,
		Name: nullable(p.name), PID: nullable(p.pid), PIDStarttime: started, Storyline: nullable(p.storyline),
		Subsystem: "sys_win32", UniqueID: nullable(p.uniqueID), User: nullable(p.user),
	}
}

// alertInfoNulls are the alertInfo fields that are null for process alerts.
var alertInfoNulls = []string{
	"dnsRequest", "dnsResponse", "dstIp", "dstPort", "indicatorCategory", "indicatorDescription", "indicatorName",
	"loginAccountDomain", "loginAccountSid", "loginIsAdministratorEquivalent", "loginIsSuccessful", "loginType",
	"loginsUserName", "modulePath", "moduleSha1", "netEventDirection", "srcIp", "srcMachineIp", "srcPort",
	"tiIndicatorComparisonMethod", "tiIndicatorSource", "tiIndicatorType", "tiIndicatorValue",
}

var (
	alertContainer = json.RawMessage(`{"id":null,"image":null,"labels":null,"name":null}`)
	alertK8s       = json.RawMessage(`{"cluster":null,"controllerKind":null,"controllerLabels":null,` +
		`"controllerName":null,"namespace":null,"namespaceLabels":null,"node":null,"pod":null,"podLabels":null}`)
	alertTarget = json.RawMessage(`{"tgtFileCreatedAt":"1970-01-01T00:00:00Z","tgtFileHashSha1":null,` +
		`"tgtFileHashSha256":null,"tgtFileId":null,"tgtFileIsSigned":null,"tgtFileModifiedAt":"1970-01-01T00:00:00Z",` +
		`"tgtFileOldPath":null,"tgtFilePath":null,"tgtProcCmdLine":null,"tgtProcImagePath":null,` +
		`"tgtProcIntegrityLevel":"unknown","tgtProcName":null,"tgtProcPid":null,"tgtProcSignedStatus":null,` +
		`"tgtProcStorylineId":null,"tgtProcUid":null,"tgtProcessStartTime":"1970-01-01T00:00:00Z"}`)
)

func (a *alert) json() []byte {
	info := map[string]any{
		"alertId": a.idStr, "analystVerdict": displayNames[a.analystVerdict], "createdAt": formatTime(a.created),
		"dvEventId": a.dvEventID, "eventType": a.eventType, "hitType": a.hitType,
		"incidentStatus": displayNames[a.incidentStatus], "isEdr": true, "registryKeyPath": "",
		"registryOldValue": "", "registryOldValueType": "BINARY", "registryPath": "", "registryValue": "",
		"reportedAt": formatTime(a.reportedAt), "source": "STAR", "updatedAt": formatTime(a.updated),
	}
	for _, k := range alertInfoNulls {
		info[k] = nil
	}
	ag := a.agent
	b, _ := json.Marshal(map[string]any{ // a map marshals with sorted keys, as the fixture has them
		"agentDetectionInfo": map[string]any{
			"machineType": ag.machineType, "name": ag.computerName, "osFamily": ag.osType, "osName": ag.osName,
			"osRevision": ag.osRevision, "siteId": ag.site.idStr, "uuid": ag.uuid, "version": ag.agentVersion,
		},
		"agentRealtimeInfo": map[string]any{
			"id": ag.idStr, "infected": ag.activeThreats > 0, "isActive": ag.isActive,
			"isDecommissioned": ag.isDecommissioned, "machineType": ag.machineType, "name": ag.computerName,
			"os": ag.osType, "uuid": ag.uuid,
		},
		"alertInfo":      info,
		"containerInfo":  alertContainer,
		"kubernetesInfo": alertK8s,
		"ruleInfo": map[string]any{
			"description": nullable(a.rule.description), "id": a.rule.id, "name": a.rule.name,
			"queryLang": "2.0", "queryType": a.rule.queryType, "s1ql": a.rule.s1ql,
			"scopeLevel": a.rule.scopeLevel, "severity": a.rule.severity, "treatAsThreat": a.rule.treatAsThreat,
		},
		"sourceParentProcessInfo": a.parent.json(),
		"sourceProcessInfo":       a.proc.json(),
		"targetProcessInfo":       alertTarget,
	})
	return b
}

func alertCollection() *collection[*alert] {
	type A = *alert
	upper := func(f func(A) string) func(A) string { return func(a A) string { return strings.ToUpper(f(a)) } }
	return &collection[A]{
		name: "alert",
		t:    newTable[A](),
		params: absent(map[string]param[A]{
			"ids":                                   pRowID[A](),
			"siteIds":                               pIDs(func(a A) string { return a.agent.site.idStr }),
			"groupIds":                              pIDs(func(a A) string { return a.agent.group.idStr }),
			"accountIds":                            pIDs(func(a A) string { return a.agent.site.accountID }),
			"createdAt":                             pCreated[A](),
			"reportedAt":                            pTime(func(a A) int64 { return a.reportedAt }),
			"incidentStatus":                        pIn(upper(func(a A) string { return a.incidentStatus }), alertStatusFilter...),
			"analystVerdict":                        pIn(upper(func(a A) string { return a.analystVerdict }), alertVerdictFilter...),
			"severity":                              pIn(func(a A) string { return a.rule.severity }, alertSeverities...),
			"scopes":                                pIn(func(a A) string { return a.rule.scopeLevel }, "global", "group", "account", "site"),
			"osType":                                pIn(func(a A) string { return a.agent.osType }, osTypes...),
			"machineType":                           pIn(func(a A) string { return a.agent.machineType }),
			"ruleName__contains":                    pContains(func(a A) string { return a.rule.name }),
			"sourceProcessName__contains":           pContains(func(a A) string { return a.proc.name }),
			"sourceProcessFileHashSha1__contains":   pContains(func(a A) string { return a.proc.sha1 }),
			"sourceProcessFileHashSha256__contains": pContains(func(a A) string { return a.proc.sha256 }),
			"sourceProcessFileHashMd5__contains":    pContains(func(a A) string { return a.proc.md5 }),
			"sourceProcessCommandline__contains":    pContains(func(a A) string { return a.proc.commandline }),
			"sourceProcessStoryline__contains":      pContains(func(a A) string { return a.proc.storyline }),
			"sourceProcessFilePath__contains":       pContains(func(a A) string { return a.proc.filePath }),
			"origAgentName__contains":               pContains(func(a A) string { return a.agent.computerName }),
			"origAgentUuid__contains":               pContains(func(a A) string { return a.agent.uuid }),
			"origAgentVersion__contains":            pContains(func(a A) string { return a.agent.agentVersion }),
			"origAgentOsRevision__contains":         pContains(func(a A) string { return a.agent.osRevision }),
			"query": pQuery(func(a A) []string {
				return []string{a.rule.name, a.agent.computerName, a.proc.name, a.proc.commandline, a.proc.sha1, a.idStr}
			}),
		}, "containerImageName__contains", "containerName__contains", "containerLabels__contains", "k8sNode__contains",
			"k8sNamespaceLabels__contains", "k8sPodLabels__contains", "k8sNamespaceName__contains", "k8sControllerName__contains",
			"k8sCluster__contains", "k8sControllerLabels__contains", "k8sPod__contains"),
		sorts: map[string]sortField[A]{
			"id":                      {native: nativeID},
			"alertInfoAlertId":        {native: nativeID},
			"createdAt":               {native: nativeCreated},
			"alertInfoCreatedAt":      {native: nativeCreated},
			"updatedAt":               {native: nativeUpdated},
			"alertInfoReportedAt":     {num: func(a A) int64 { return a.reportedAt }},
			"severity":                {str: func(a A) string { return a.rule.severity }},
			"ruleInfoSeverity":        {str: func(a A) string { return a.rule.severity }},
			"ruleInfoName":            {str: func(a A) string { return a.rule.name }},
			"incidentStatus":          {str: func(a A) string { return a.incidentStatus }},
			"alertInfoIncidentStatus": {str: func(a A) string { return a.incidentStatus }},
			"analystVerdict":          {str: func(a A) string { return a.analystVerdict }},
			"alertInfoAnalystVerdict": {str: func(a A) string { return a.analystVerdict }},
		},
		defaultSort: "id",
		render:      func(b []byte, a A) []byte { return cached(b, &a.row, a.json) },
	}
}

// handleAlertVerdict answers POST /cloud-detection/alerts/analyst-verdict.
// data.analystVerdict may be lower or UPPER snake case.
func (e *Emulator) handleAlertVerdict(w http.ResponseWriter, r *http.Request) {
	e.updateAlerts(w, r, "analystVerdict", analystVerdicts, actAlertVerdict)
}

// handleAlertIncident answers POST /cloud-detection/alerts/incident.
func (e *Emulator) handleAlertIncident(w http.ResponseWriter, r *http.Request) {
	e.updateAlerts(w, r, "incidentStatus", incidentStatuses, actAlertStatus)
}

// updateAlerts sets field on the filter's matches; affected counts the
// alerts whose value changed.
func (e *Emulator) updateAlerts(w http.ResponseWriter, r *http.Request, field string, enum []string, act int) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := body.dataString(field)
	if err == nil && v == "" {
		err = validation("data: " + field + ": Missing data for required field.")
	}
	lower := strings.ToLower(v)
	if err == nil && (!slices.Contains(enum, lower) || (v != lower && v != strings.ToUpper(v))) {
		var both []string
		for _, x := range enum {
			both = append(both, x, strings.ToUpper(x))
		}
		err = validation("data: " + field + ": Must be one of: " + strings.Join(both, ", ") + ".")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	var changed []*alert
	e.mutate(func(now int64) {
		var q *listQuery[*alert]
		if q, err = e.alerts.filterQuery(body.filter, now); err != nil {
			return
		}
		for _, a := range e.alerts.selectAll(q) {
			dst := &a.incidentStatus
			if field == "analystVerdict" {
				dst = &a.analystVerdict
			}
			if *dst == lower {
				continue
			}
			*dst = lower
			a.invalidate()
			changed = append(changed, a)
			e.addActivity(activitySpec{
				typ: act, at: now, agent: a.agent, alertID: a.idStr, ruleID: a.rule.id,
				primary: fmt.Sprintf("The %s of alert %s changed to %s.", field, a.idStr, displayNames[lower]),
				data:    map[string]any{"alertId": a.idStr, "ruleName": a.rule.name, "newValue": displayNames[lower]},
			})
		}
		e.alerts.t.touch(changed, now)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, affected{Affected: len(changed)})
}
