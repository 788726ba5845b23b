package emulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Unified Alert Management: the alerts inbox of every source, stored in a
// table indexed by id, detectedAt (the row's created) and updatedAt, like
// the threats, so that a page sorted or ranged on either time is found by
// binary search. Times have the millisecond precision UAM answers with.
// Ids are UUIDs in the style of the fixtures (00000000-0000-7000-8000-…),
// numbered in creation order: the seeded ones are the same on every run
// whatever the clock, so that docs and demos can name them.

// UAMSettings tunes the Unified Alerts endpoint (uam-reference.md §7.4,
// §10 quirk 4, §11). DefaultUAMSettings gives the console the reference
// describes.
type UAMSettings struct {
	// Disabled models a console without Unified Alert Management: the
	// GraphQL path answers the router's 404.
	Disabled bool
	// HideInformational hides INFORMATIONAL alerts from an alerts query
	// whose filters do not name that level (the behaviour reported on
	// S-26.3.4).
	HideInformational bool
	// MaxFirst is the largest page (first); a larger one is a GraphQL error.
	MaxFirst int
	// ScheduleThreshold: an alertTriggerActions selection of more alerts is
	// answered TriggerActionsScheduled and carried out ScheduleDelay later.
	ScheduleThreshold int
	// LimitThreshold: a selection of more alerts is refused with a
	// TriggerActionsError carrying ActionsErrorLimitPayload.
	LimitThreshold int
	// ScheduleDelay is how long after the answer scheduled actions apply,
	// on the emulator's clock (0: before the answer is sent).
	ScheduleDelay time.Duration
}

// DefaultUAMSettings is UAM as the reference describes it: enabled,
// informational alerts hidden unless named, pages of at most 1000,
// selections over 1000 scheduled, over 10,000 refused.
func DefaultUAMSettings() UAMSettings {
	return UAMSettings{HideInformational: true, MaxFirst: 1000, ScheduleThreshold: 1000, LimitThreshold: 10000}
}

// WithUAM sets the Unified Alerts settings.
func WithUAM(s UAMSettings) Option {
	return func(c *config) error {
		if s.MaxFirst < 1 || s.ScheduleThreshold < 1 || s.LimitThreshold < s.ScheduleThreshold || s.ScheduleDelay < 0 {
			return fmt.Errorf("%w: UAM MaxFirst and ScheduleThreshold must be positive, LimitThreshold at least ScheduleThreshold, ScheduleDelay not negative", ErrInvalid)
		}
		c.uam = s
		return nil
	}
}

// UAM enum values (the schema's).
const (
	uamNew        = "NEW"
	uamInProgress = "IN_PROGRESS"
	uamResolved   = "RESOLVED"

	uamMalicious     = "MALICIOUS"
	uamSuspicious    = "SUSPICIOUS"
	uamInformational = "INFORMATIONAL"

	uamUndefined = "UNDEFINED"
)

var (
	uamSeverities  = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", "UNKNOWN"}
	uamConfidences = []string{uamMalicious, uamSuspicious, uamInformational, ""} // "": no level
	uamVerdicts    = []string{
		"UNDEFINED", "TRUE_POSITIVE_MALWARE", "TRUE_POSITIVE_RANSOMWARE", "TRUE_POSITIVE_UNAUTHORIZED_ACCESS",
		"TRUE_POSITIVE_DATA_EXFILTRATION", "TRUE_POSITIVE_INSIDER_THREAT", "TRUE_POSITIVE_PHISHING_ATTACK",
		"TRUE_POSITIVE_ADVANCED_PERSISTENT_THREAT", "TRUE_POSITIVE_DENIAL_OF_SERVICE", "TRUE_POSITIVE_POLICY_VIOLATION",
		"TRUE_POSITIVE_EXPLOITATION_TOOLS", "TRUE_POSITIVE_PUA_ADWARE", "TRUE_POSITIVE_BENIGN",
		"TRUE_POSITIVE_BENIGN_BUT_SUSPICIOUS", "TRUE_POSITIVE_UNDEFINED", "FALSE_POSITIVE_BENIGN",
		"FALSE_POSITIVE_BENIGN_BUT_SUSPICIOUS", "FALSE_POSITIVE_SYSTEM_ERROR", "FALSE_POSITIVE_USER_ERROR", "FALSE_POSITIVE_UNDEFINED",
	}
	uamSeverityRank = map[string]int64{"UNKNOWN": 0, "INFO": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
)

// uamSource is a detection source and what alerts from it look like.
type uamSource struct {
	product, vendor, surface, view string
	classifications                []string
	names                          []string
	agentless                      bool // identity, cloud and third-party alerts have no agent asset
	// mobile alerts belong to the "Mobile Alerts" RBAC group, which the
	// emulator's token may view but not manage: writes fail per alert with
	// MISSING_PERMISSION (uam-reference.md §1, §7.3).
	mobile bool
}

var uamSources = []uamSource{
	{product: "EDR", vendor: "SentinelOne", surface: "ENDPOINT", view: "ENDPOINT", classifications: []string{"MALWARE", "RANSOMWARE", "TROJAN", "PUA", "HACKTOOL", "INFO_STEALER"},
		names: []string{"invoice-tool.exe detected as Malware", "Credential dumping with mimikatz", "Ransomware note dropped", "Suspicious PowerShell download cradle"}},
	{product: "STAR", vendor: "SentinelOne", surface: "ENDPOINT", view: "CUSTOM_ALERTS", classifications: []string{"MANUAL", "LATERAL_MOVEMENT"},
		names: []string{"Custom rule: encoded PowerShell", "Custom rule: new local admin", "Custom rule: RDP from the internet"}},
	{product: "Identity", vendor: "SentinelOne", surface: "IDENTITY", view: "IDENTITY", classifications: []string{"ENUMERATION", "LATERAL_MOVEMENT"}, agentless: true,
		names: []string{"Suspicious LDAP enumeration", "Kerberoasting attempt", "Password spraying"}},
	{product: "CWS", vendor: "SentinelOne", surface: "ENDPOINT", view: "CLOUD", classifications: []string{"CRYPTOMINER", "MALWARE"}, agentless: true,
		names: []string{"Cryptominer in container", "Reverse shell in pod"}},
	{product: "Mobile", vendor: "SentinelOne", surface: "ENDPOINT", view: "ENDPOINT", classifications: []string{"PUA", "PHISHING"}, agentless: true, mobile: true,
		names: []string{"Sideloaded app detected", "Phishing link opened on a phone"}},
	{product: "Okta Workforce Identity", vendor: "Okta", surface: "IDENTITY", view: "THIRD_PARTY", classifications: []string{"UNKNOWN"}, agentless: true,
		names: []string{"Impossible travel", "MFA fatigue"}},
	{product: "DLP", vendor: "SentinelOne", surface: "EMAIL", view: "DLP", classifications: []string{"UNKNOWN"}, agentless: true,
		names: []string{"Sensitive data sent to a personal mailbox"}},
}

// uamUser is the API token's user: the assignee of some alerts and the
// author of notes it adds (values of the fixtures).
var uamUser = obj{"userId": "900000000000000777", "fullName": "Example Service User", "email": "svc-bridge@example.invalid"}

type uamNote struct {
	id, text, typ string
	at            int64
	user          obj
}

type uamAlert struct {
	row                                       // created = detectedAt, updated = updatedAt; ns at whole milliseconds
	seq                                       uint64
	externalID, name, description             string
	severity, status, verdict, confidence     string
	classification, result                    string
	src                                       *uamSource
	agent                                     *agent // nil: no agent asset
	assetName                                 string
	createdAt, firstSeenAt, lastSeenAt        int64
	storyline, ticket                         string
	assigned                                  bool
	analyticsName, analyticsCat               string
	attackerHost, attackerIP, targetUser      string
	notes                                     []*uamNote
	cmdLine, fileName, filePath, sha1, sha256 string
}

// uamStore holds the Unified Alerts; guarded by the emulator's mu.
type uamStore struct {
	c       *collection[*uamAlert] // table, sort fields and cursor codec
	byStr   map[string]*uamAlert
	seq     uint64
	noteSeq uint64
	execSeq uint64
	late    []*uamAlert
	pending []uamPending // scheduled trigger actions not applied yet
	rnd     *rand.Rand   // seeding and added alerts
	live    *rand.Rand   // live mode
}

// uamIDBase numbers UAM ids so that the first seeded alert is the fixtures'
// 00000000-0000-7000-8000-00000000a001.
const uamIDBase = 0xa000

func uamID(seq uint64) string { return fmt.Sprintf("00000000-0000-7000-8000-%012x", uamIDBase+seq) }

func newUAMStore(seed uint64) *uamStore {
	type A = *uamAlert
	return &uamStore{
		byStr: map[string]*uamAlert{},
		rnd:   rand.New(rand.NewPCG(seed, 0x0a1e47)),
		live:  rand.New(rand.NewPCG(seed, 0x11fe0a)),
		c: &collection[A]{
			name: "uam",
			t:    newTable[A](),
			sorts: map[string]sortField[A]{
				"detectedAt":  {native: nativeCreated},
				"updatedAt":   {native: nativeUpdated},
				"createdAt":   {num: func(a A) int64 { return a.createdAt }},
				"firstSeenAt": {num: func(a A) int64 { return a.firstSeenAt }},
				"lastSeenAt":  {num: func(a A) int64 { return a.lastSeenAt }},
				"severity":    {num: func(a A) int64 { return uamSeverityRank[a.severity] }},
				"status":      {str: func(a A) string { return a.status }},
				"alertName":   {str: func(a A) string { return a.name }},
			},
		},
	}
}

// ms truncates unix nanoseconds to a whole millisecond.
func ms(ns int64) int64 { return ns / 1e6 * 1e6 }

func formatMillis(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z") }

// newAlert builds an alert of src detected at ns; the caller holds mu.
func (e *Emulator) newUAMAlert(r *rand.Rand, src *uamSource, ns int64) *uamAlert {
	s := e.uam
	s.seq++
	a := &uamAlert{
		row: row{id: s.seq, idStr: uamID(s.seq), created: ms(ns), updated: ms(ns) + int64(r.IntN(5000))*1e6},
		seq: s.seq, src: src, status: uamNew, verdict: uamUndefined,
		name: src.names[r.IntN(len(src.names))], classification: src.classifications[r.IntN(len(src.classifications))],
		severity: uamSeverities[r.IntN(5)], confidence: uamConfidences[r.IntN(len(uamConfidences))],
		result: []string{"MITIGATED", "UNMITIGATED", "BENIGN"}[r.IntN(3)], analyticsCat: "Behavioral", analyticsName: src.product + " analytics",
	}
	if a.confidence == "" && src.vendor == "SentinelOne" && r.IntN(2) == 0 {
		a.confidence = uamSuspicious // most first-party alerts have a level; third-party ones often none
	}
	a.createdAt = a.created + int64(1+r.IntN(4000))*1e6
	a.firstSeenAt, a.lastSeenAt = a.created-int64(r.IntN(60000))*1e6, a.created
	a.externalID = fmt.Sprintf("fake-external-%06d", s.seq)
	if !src.agentless {
		agents := e.agents.t.ids
		if len(agents) > 0 {
			a.agent = agents[r.IntN(len(agents))]
			a.assetName = a.agent.computerName
		}
		a.externalID = fmt.Sprintf("19%017d", 100+s.seq) // EDR external ids are 19-digit numbers
		a.storyline = strings.ToUpper(randHex(r, 16))
		a.fileName = "tool" + randHex(r, 4) + ".exe"
		a.filePath = `C:\Users\example-user\Downloads\` + a.fileName
		a.cmdLine = `"` + a.filePath + `"`
		a.sha1, a.sha256 = randHex(r, 40), randHex(r, 64)
		a.analyticsCat, a.analyticsName = "Reputation", "Agent Policy"
	} else {
		a.attackerHost, a.attackerIP = fmt.Sprintf("host-example-%02d", 1+r.IntN(40)), fmt.Sprintf("192.0.2.%d", 1+r.IntN(250))
		a.targetUser = userNames[r.IntN(len(userNames))]
	}
	if a.agent == nil && src.product == "CWS" {
		a.assetName = fmt.Sprintf("k8s-node-%02d", 1+r.IntN(9))
	}
	if src.mobile {
		a.assetName = fmt.Sprintf("phone-%s-%02d", userNames[r.IntN(len(userNames))], 1+r.IntN(9))
	}
	a.description = fmt.Sprintf("%s reported %q.", src.product, a.name)
	return a
}

// seedUAM generates n alerts over the last two days: bursts sharing one
// detectedAt, a mass triage sharing one updatedAt, every source, severity
// and confidence level. The first eight are written out (the fixtures'
// alerts and one of each other kind) so that their ids and content are
// known: see UAMSeedIDs.
func (e *Emulator) seedUAM(n int, now int64) {
	if n <= 0 {
		return
	}
	s := e.uam
	r := s.rnd
	now = ms(now)
	var as []*uamAlert
	src := func(product string) *uamSource {
		for i := range uamSources {
			if uamSources[i].product == product {
				return &uamSources[i]
			}
		}
		panic("no source " + product)
	}
	type fixed struct {
		product, name, severity, confidence, status, verdict, classification string
		ago                                                                  time.Duration
	}
	fixedOnes := []fixed{
		{"EDR", "invoice-tool.exe detected as Malware", "CRITICAL", uamMalicious, uamNew, uamUndefined, "MALWARE", 3 * time.Hour},
		{"Identity", "Suspicious LDAP enumeration", "MEDIUM", uamInformational, uamInProgress, "TRUE_POSITIVE_BENIGN", "ENUMERATION", 170 * time.Minute},
		{"STAR", "Custom rule: encoded PowerShell", "HIGH", uamSuspicious, uamNew, uamUndefined, "MANUAL", 150 * time.Minute},
		{"Mobile", "Sideloaded app detected", "LOW", uamSuspicious, uamNew, uamUndefined, "PUA", 140 * time.Minute},
		{"CWS", "Cryptominer in container", "HIGH", uamMalicious, uamResolved, "TRUE_POSITIVE_MALWARE", "CRYPTOMINER", 130 * time.Minute},
		{"Okta Workforce Identity", "Impossible travel", "LOW", "", uamNew, uamUndefined, "UNKNOWN", 120 * time.Minute},
		{"EDR", "Process hollowing blocked", "INFO", uamInformational, uamNew, uamUndefined, "TROJAN", 110 * time.Minute},
		{"DLP", "Sensitive data sent to a personal mailbox", "UNKNOWN", uamSuspicious, uamNew, uamUndefined, "UNKNOWN", 100 * time.Minute},
	}
	for i, f := range fixedOnes[:min(n, len(fixedOnes))] {
		a := e.newUAMAlert(r, src(f.product), now-int64(f.ago))
		a.name, a.severity, a.confidence, a.status, a.verdict, a.classification = f.name, f.severity, f.confidence, f.status, f.verdict, f.classification
		a.updated = a.created + int64(6331+i)*1e6
		if f.status != uamNew {
			a.updated = a.created + int64(50*time.Minute)
		}
		if i == 1 {
			a.assigned, a.ticket = true, "TICKET-0001"
		}
		as = append(as, a)
	}
	mass := now - int64(30*time.Minute)
	var prev int64
	for i := len(as); i < n; i++ {
		src := &uamSources[r.IntN(len(uamSources))]
		at := now - seedWindow + randMicros(r, seedWindow-int64(4*time.Hour))
		if i > len(fixedOnes) && r.IntN(4) == 0 {
			at = prev // a burst: alerts sharing one detectedAt
		}
		a := e.newUAMAlert(r, src, at)
		prev = a.created
		switch k := r.IntN(10); {
		case k == 0 && a.created < mass:
			a.status, a.verdict, a.updated = uamResolved, "FALSE_POSITIVE_BENIGN", ms(mass) // a mass triage: one updatedAt
		case k < 4:
			a.status = []string{uamInProgress, uamResolved}[r.IntN(2)]
			a.verdict = uamVerdicts[1+r.IntN(len(uamVerdicts)-1)]
			a.updated = min(now, a.created+randMicros(r, int64(6*time.Hour))/1e6*1e6)
		}
		if r.IntN(5) == 0 {
			a.assigned = true
		}
		as = append(as, a)
	}
	s.c.t.insert(as...)
	for _, a := range as {
		s.byStr[a.idStr] = a
	}
}

// UAMSeedIDs are the ids of the first eight seeded Unified Alerts, which
// are the same on every run (given at least eight are seeded):
//
//	…a001 EDR, CRITICAL, MALICIOUS, NEW ("invoice-tool.exe detected as Malware")
//	…a002 Identity, MEDIUM, INFORMATIONAL, IN_PROGRESS, assigned, ticket TICKET-0001
//	…a003 STAR custom rule, HIGH, SUSPICIOUS, NEW
//	…a004 Mobile, LOW, SUSPICIOUS, NEW: writes fail with MISSING_PERMISSION
//	…a005 CWS, HIGH, MALICIOUS, RESOLVED, TRUE_POSITIVE_MALWARE
//	…a006 Okta (third party), LOW, no confidence level, NEW
//	…a007 EDR, INFO, INFORMATIONAL, NEW
//	…a008 DLP, UNKNOWN severity, SUSPICIOUS, NEW
func UAMSeedIDs() []string {
	out := make([]string, 8)
	for i := range out {
		out[i] = uamID(uint64(i + 1))
	}
	return out
}

// value is the alert as the schema's UnifiedAlert and UnifiedAlertDetail
// see it (a superset of both: validation keeps a query to its type's
// fields). Every non-null field of the schema has a value.
func (a *uamAlert) value(e *Emulator) obj {
	scope := obj{"accountId": e.account.idStr, "accountName": e.account.name, "siteId": "", "siteName": "", "groupId": "", "groupName": ""}
	rt := obj{"account": obj{"id": e.account.idStr, "name": e.account.name}, "site": obj{"id": nil, "name": ""}, "group": obj{"id": nil, "name": ""}}
	if sites := e.sites.t.ids; len(sites) > 0 {
		st, g := sites[0], sites[0].groups[0]
		if a.agent != nil {
			st, g = a.agent.site, a.agent.group
		}
		scope["siteId"], scope["siteName"], scope["groupId"], scope["groupName"] = st.idStr, st.name, g.idStr, g.name
		rt["site"], rt["group"] = obj{"id": st.idStr, "name": st.name}, obj{"id": g.idStr, "name": g.name}
	}
	var assets []any
	asset := obj{"id": "unknown", "name": nil, "category": "Unknown", "subcategory": "Unknown", "accessible": false, "deleted": false,
		"primary": false, "paths": []any{}, "tags": []any{}, "type": "UNKNOWN"}
	if a.assetName != "" {
		asset = obj{"id": "asset" + randHexOf(a.seq), "name": a.assetName, "accessible": true, "deleted": false, "primary": true,
			"paths": []any{}, "tags": []any{}, "role": "TARGET", "origin": "RESOURCES", "status": "ACTIVE", "type": "UNKNOWN",
			"category": "Workstation", "subcategory": "Laptop", "assetTypeClassifier": nil, "osType": "UNKNOWN", "osVersion": nil,
			"agentUuid": nil, "agentVersion": nil, "connectivityToConsole": nil, "decommissioned": false, "lastLoggedInUser": nil,
			"pendingReboot": false, "policy": nil}
		if ag := a.agent; ag != nil {
			asset["type"], asset["osType"], asset["osVersion"] = strings.ToUpper(ag.machineType), strings.ToUpper(ag.osType), ag.osName+" "+ag.osRevision
			asset["agentUuid"], asset["agentVersion"], asset["lastLoggedInUser"] = ag.uuid, ag.agentVersion, ag.lastLoggedInUserName
			asset["connectivityToConsole"], asset["policy"] = "ONLINE", strings.ToUpper(ag.mitigationMode)
			asset["assetTypeClassifier"] = ag.osType + " " + ag.machineType
			if ag.networkStatus != netConnected {
				asset["connectivityToConsole"] = "OFFLINE"
			}
			if ag.machineType == "server" {
				asset["subcategory"] = "Server"
			}
		}
		if a.src.mobile {
			asset["category"], asset["subcategory"], asset["osType"] = "Mobile", "Phone", "ANDROID"
		}
		assets = []any{asset}
	} else {
		assets = []any{}
	}
	var process any
	if a.fileName != "" {
		process = obj{"cmdLine": a.cmdLine, "parentName": "explorer.exe", "username": `ACME\example-user`, "userDomain": "ACME", "userDisplayName": "example-user",
			"file": obj{"name": a.fileName, "path": a.filePath, "sha1": a.sha1, "sha256": a.sha256, "md5": nil, "size": int64(422912),
				"certSubject": nil, "certSerialNumber": nil, "certExpiresAt": nil, "signatureVerification": "Not Signed"}}
	}
	var assignee any
	if a.assigned {
		assignee = obj{"userId": "900000000000000778", "fullName": "Example Analyst", "email": "analyst@example.invalid"}
	}
	var attacker, targetUser any
	if a.attackerHost != "" {
		attacker = obj{"host": a.attackerHost, "ip": a.attackerIP}
		targetUser = obj{"name": a.targetUser, "domain": "example.invalid", "emailAddress": nil, "displayName": a.targetUser}
	}
	var conf any
	if a.confidence != "" {
		conf = a.confidence
	}
	observables := []any{}
	if a.fileName != "" {
		observables = append(observables, obj{"name": "file.hashes.sha1", "type": "FILE_HASH", "typeName": nil, "value": a.sha1})
	}
	indicators := []any{obj{"uid": fmt.Sprint(100 + a.seq), "id": fmt.Sprint(100 + a.seq), "type": a.src.product + ": Detection", "title": a.name,
		"message": a.description, "description": nil, "eventTime": formatMillis(a.created), "severity": a.severity, "primary": true,
		"observables": observables, "attacks": []any{}}}
	var ticket any
	if a.ticket != "" {
		ticket = a.ticket
	}
	return obj{
		"id": a.idStr, "externalId": a.externalID, "name": a.name, "description": a.description, "severity": a.severity,
		"status": a.status, "analystVerdict": a.verdict, "confidenceLevel": conf, "classification": a.classification, "result": a.result,
		"attackSurfaces": []any{a.src.surface}, "detectedAt": formatMillis(a.created), "createdAt": formatMillis(a.createdAt),
		"firstSeenAt": formatMillis(a.firstSeenAt), "lastSeenAt": formatMillis(a.lastSeenAt), "updatedAt": formatMillis(a.updated),
		"noteExists": len(a.notes) > 0, "dataSources": []any{}, "labels": []any{}, "storylineId": nilIfEmpty(a.storyline), "ticketId": ticket,
		"ticketIdExists": a.ticket != "", "assignee": assignee, "incident": nil, "availableActionIds": nil, "aiInvestigation": nil,
		"aiInvestigationStatus": nil, "attackPathExists": false, "attackPaths": nil, "primaryIndicatorType": nil, "exclusionHash": nil,
		"exclusionHashes": nil, "fileHash": nil, "fileName": nil, "mitigationDetails": nil, "sloDetails": nil, "preemptiveMitigationType": nil,
		"analytics":       obj{"category": a.analyticsCat, "name": a.analyticsName, "typeValue": "STATIC", "uid": nil, "type": nil},
		"detectionSource": obj{"product": a.src.product, "vendor": a.src.vendor, "engine": nil},
		"assets":          assets, "asset": asset, "process": process,
		"detectionTime": obj{"attacker": attacker, "targetUser": targetUser, "scope": scope, "assets": []any{}, "asset": nil, "cloud": nil, "kubernetes": nil},
		"realTime":      obj{"scope": rt},
		"selfLink":      "https://console.example.invalid/incidents/unified-alerts?alertId=" + a.idStr,
		"indicators":    indicators, "observables": observables, "counters": []any{}, "enrichments": nil, "relatedAlerts": nil, "rawData": nil,
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// randHexOf is a stable 24-hex-digit id derived from n, for asset ids.
func randHexOf(n uint64) string { return fmt.Sprintf("%024x", n*0x9e3779b97f4a7c15) }

func (n *uamNote) value(alertID string) obj {
	return obj{"id": n.id, "alertId": alertID, "text": n.text, "type": n.typ, "createdAt": formatMillis(n.at), "updatedAt": formatMillis(n.at),
		"author": n.user, "createdBy": obj{"__typename": "UserNoteAuthor", "userId": n.user["userId"], "fullName": n.user["fullName"], "email": n.user["email"]}}
}

// UAMAlertState is a Unified Alert's triage state as a test sees it.
type UAMAlertState struct {
	ID              string
	Name            string
	Status          string // NEW, IN_PROGRESS, RESOLVED
	AnalystVerdict  string
	Severity        string
	ConfidenceLevel string // "" when none
	Product         string
	DetectedAt      time.Time
	UpdatedAt       time.Time
	Notes           []string // note texts, oldest first
}

// UAMAlert returns the state of the alert id.
func (e *Emulator) UAMAlert(id string) (UAMAlertState, bool) {
	e.settle()
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := e.uam.byStr[id]
	if !ok {
		return UAMAlertState{}, false
	}
	st := UAMAlertState{ID: a.idStr, Name: a.name, Status: a.status, AnalystVerdict: a.verdict, Severity: a.severity,
		ConfidenceLevel: a.confidence, Product: a.src.product, DetectedAt: time.Unix(0, a.created).UTC(), UpdatedAt: time.Unix(0, a.updated).UTC()}
	for _, n := range a.notes {
		st.Notes = append(st.Notes, n.text)
	}
	return st, true
}

// AddUAMAlerts adds n alerts detected (and updated) at at (zero: the
// clock), of random sources, severities and levels, and returns their ids.
func (e *Emulator) AddUAMAlerts(n int, at time.Time) []string {
	return e.AddLateUAMAlerts(n, at, time.Time{})
}

// AddLateUAMAlerts is AddUAMAlerts for alerts indexed late: every query
// misses them until the clock reaches visibleAt, although their detectedAt
// and updatedAt are at.
func (e *Emulator) AddLateUAMAlerts(n int, at, visibleAt time.Time) []string {
	var ids []string
	e.mutate(func(now int64) {
		ns := now
		if !at.IsZero() {
			ns = micros(at)
		}
		hide := int64(0)
		if !visibleAt.IsZero() && micros(visibleAt) > now {
			hide = micros(visibleAt)
		}
		for _, a := range e.addUAMAlerts(e.uam.rnd, n, ns, hide) {
			ids = append(ids, a.idStr)
		}
	})
	return ids
}

// addUAMAlerts creates n alerts at ns, hidden until hide when non-zero;
// the caller holds mu.
func (e *Emulator) addUAMAlerts(r *rand.Rand, n int, ns, hide int64) []*uamAlert {
	if n <= 0 {
		return nil
	}
	as := make([]*uamAlert, n)
	for i := range as {
		a := e.newUAMAlert(r, &uamSources[r.IntN(len(uamSources))], ns)
		a.updated = a.created
		a.hiddenUntil = hide
		as[i] = a
		e.uam.byStr[a.idStr] = a
		if hide != 0 {
			e.uam.late = append(e.uam.late, a)
			e.due(hide)
		}
	}
	e.uam.c.t.insert(as...)
	return as
}

// UAMAlertUpdate changes one Unified Alert through a test hook. Empty
// fields are kept. At is the new updatedAt (zero: the clock); VisibleAt,
// when after the clock, hides the alert from every query until then.
type UAMAlertUpdate struct {
	Status         string
	AnalystVerdict string
	At             time.Time
	VisibleAt      time.Time
}

// UpdateUAMAlert changes the alert id as an analyst in the console would.
func (e *Emulator) UpdateUAMAlert(id string, u UAMAlertUpdate) error {
	if u.Status != "" && !slices.Contains([]string{uamNew, uamInProgress, uamResolved}, u.Status) {
		return fmt.Errorf("%w: status %q", ErrInvalid, u.Status)
	}
	if u.AnalystVerdict != "" && !slices.Contains(uamVerdicts, u.AnalystVerdict) {
		return fmt.Errorf("%w: analyst verdict %q", ErrInvalid, u.AnalystVerdict)
	}
	var err error
	e.mutate(func(now int64) {
		a, ok := e.uam.byStr[id]
		if !ok {
			err = fmt.Errorf("%w: unified alert %s", ErrNotFound, id)
			return
		}
		at := ms(now)
		if !u.At.IsZero() {
			at = ms(micros(u.At))
		}
		if u.Status != "" {
			a.status = u.Status
		}
		if u.AnalystVerdict != "" {
			a.verdict = u.AnalystVerdict
		}
		if !u.VisibleAt.IsZero() && micros(u.VisibleAt) > now {
			if a.hiddenUntil == 0 {
				e.uam.c.t.hidden++
				e.uam.late = append(e.uam.late, a)
			}
			a.hiddenUntil = micros(u.VisibleAt)
			e.due(a.hiddenUntil)
		}
		e.uam.c.t.touch([]*uamAlert{a}, at)
	})
	return err
}

// settleUAM reveals late-indexed alerts and applies scheduled actions that
// are due; the caller holds mu. next is lowered to the next due time.
func (e *Emulator) settleUAM(now int64, next *int64) {
	s := e.uam
	kept := s.late[:0]
	for _, a := range s.late {
		if a.hiddenUntil <= now {
			a.hiddenUntil = 0
			s.c.t.hidden--
			continue
		}
		*next = min(*next, a.hiddenUntil)
		kept = append(kept, a)
	}
	clear(s.late[len(kept):])
	s.late = kept
	var waiting []uamPending
	for _, p := range s.pending {
		if p.at <= now {
			e.applyActions(p.actions, p.alerts, p.at)
			continue
		}
		*next = min(*next, p.at)
		waiting = append(waiting, p)
	}
	s.pending = waiting
}

// liveUAM is live mode's Unified Alerts step: now and then new alerts, and
// one open alert moved along (NEW, IN_PROGRESS with a verdict, RESOLVED);
// the caller holds mu.
func (e *Emulator) liveUAM(now int64) {
	s := e.uam
	r := s.live
	e.addUAMAlerts(r, r.IntN(3), now, 0)
	all := s.c.t.ids
	if len(all) == 0 {
		return
	}
	for try := 0; try < 8; try++ {
		a := all[r.IntN(len(all))]
		if a.hiddenUntil != 0 || a.src.mobile || e.pinnedUAM[a] {
			continue
		}
		switch a.status {
		case uamNew:
			a.status, a.verdict = uamInProgress, []string{"TRUE_POSITIVE_MALWARE", "TRUE_POSITIVE_BENIGN", "FALSE_POSITIVE_BENIGN"}[r.IntN(3)]
		case uamInProgress:
			a.status = uamResolved
		default:
			continue
		}
		s.c.t.touch([]*uamAlert{a}, ms(now))
		return
	}
}
