package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// account is the one account every site belongs to.
type account struct {
	id    uint64
	idStr string
	name  string
}

type site struct {
	row
	name, description        string
	state, siteType, sku     string
	isDefault                bool
	totalLicenses            int
	activeLicenses           int
	unlimitedLicenses        bool
	externalID               string
	creator, creatorID       string
	registrationToken        string
	accountID, accountName   string
	unlimitedExpiration      bool
	groups                   []*group
	expiresAt                int64 // 0: none
	bundleName, bundleTitle  string
	bundleMajor, bundleMinor int
}

type license struct {
	Bundles  []licenseBundle  `json:"bundles"`
	Modules  []licenseModule  `json:"modules"`
	Settings []licenseSetting `json:"settings"`
}

type licenseBundle struct {
	DisplayName   string           `json:"displayName"`
	MajorVersion  int              `json:"majorVersion"`
	MinorVersion  int              `json:"minorVersion"`
	Name          string           `json:"name"`
	Surfaces      []licenseSurface `json:"surfaces"`
	TotalSurfaces int              `json:"totalSurfaces"`
}

type licenseSurface struct {
	Count int    `json:"count"`
	Name  string `json:"name"`
}

type licenseModule struct {
	DisplayName  string `json:"displayName"`
	MajorVersion int    `json:"majorVersion"`
	Name         string `json:"name"`
}

type licenseSetting struct {
	DisplayName             string `json:"displayName"`
	GroupName               string `json:"groupName"`
	Setting                 string `json:"setting"`
	SettingGroup            string `json:"settingGroup"`
	SettingGroupDisplayName string `json:"settingGroupDisplayName"`
}

// siteJSON is a site as GET /sites renders it (keys as in the captured fixture).
type siteJSON struct {
	AccountID           string  `json:"accountId"`
	AccountName         string  `json:"accountName"`
	ActiveLicenses      int     `json:"activeLicenses"`
	CreatedAt           string  `json:"createdAt"`
	Creator             string  `json:"creator"`
	CreatorID           string  `json:"creatorId"`
	Description         *string `json:"description"`
	Expiration          *string `json:"expiration"`
	ExternalID          *string `json:"externalId"`
	HealthStatus        bool    `json:"healthStatus"`
	ID                  string  `json:"id"`
	IsDefault           bool    `json:"isDefault"`
	Licenses            license `json:"licenses"`
	Name                string  `json:"name"`
	RegistrationToken   string  `json:"registrationToken"`
	SiteType            string  `json:"siteType"`
	SKU                 string  `json:"sku"`
	State               string  `json:"state"`
	Suite               string  `json:"suite"`
	TotalLicenses       int     `json:"totalLicenses"`
	UnlimitedExpiration bool    `json:"unlimitedExpiration"`
	UnlimitedLicenses   bool    `json:"unlimitedLicenses"`
	UpdatedAt           string  `json:"updatedAt"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullTime(ns int64) *string {
	if ns == 0 {
		return nil
	}
	s := formatTime(ns)
	return &s
}

func (s *site) json() []byte {
	b, _ := json.Marshal(siteJSON{
		AccountID: s.accountID, AccountName: s.accountName, ActiveLicenses: s.activeLicenses,
		CreatedAt: formatTime(s.created), Creator: s.creator, CreatorID: s.creatorID,
		Description: nullable(s.description), Expiration: nullTime(s.expiresAt), ExternalID: nullable(s.externalID),
		HealthStatus: true, ID: s.idStr, IsDefault: s.isDefault,
		Licenses: license{
			Bundles: []licenseBundle{{
				DisplayName: s.bundleTitle, MajorVersion: s.bundleMajor, MinorVersion: s.bundleMinor, Name: s.bundleName,
				Surfaces: []licenseSurface{{Count: s.totalLicenses, Name: "Total Agents"}}, TotalSurfaces: s.totalLicenses,
			}},
			Modules: []licenseModule{{DisplayName: "STAR", MajorVersion: 1, Name: "star"}},
			Settings: []licenseSetting{{
				DisplayName: "365 Days", GroupName: "malicious_data_retention", Setting: "365 Days",
				SettingGroup: "malicious_data_retention", SettingGroupDisplayName: "Malicious Data Retention",
			}},
		},
		Name: s.name, RegistrationToken: s.registrationToken, SiteType: s.siteType, SKU: s.sku, State: s.state,
		Suite: s.sku, TotalLicenses: s.totalLicenses, UnlimitedExpiration: s.unlimitedExpiration,
		UnlimitedLicenses: s.unlimitedLicenses, UpdatedAt: formatTime(s.updated),
	})
	return b
}

func siteCollection() *collection[*site] {
	return &collection[*site]{
		name: "site",
		t:    newTable[*site](),
		params: map[string]param[*site]{
			"siteIds":               pRowID[*site](),
			"accountIds":            pIDs(func(s *site) string { return s.accountID }),
			"accountId":             pEq(func(s *site) string { return s.accountID }),
			"name":                  pEq(func(s *site) string { return s.name }),
			"name__contains":        pContains(func(s *site) string { return s.name }),
			"accountName__contains": pContains(func(s *site) string { return s.accountName }),
			"description__contains": pContains(func(s *site) string { return s.description }),
			"description":           pEq(func(s *site) string { return s.description }),
			"query": pQuery(func(s *site) []string {
				return []string{s.name, s.accountName, s.description}
			}),
			"state":             pEnumEq(func(s *site) string { return s.state }, "active", "expired", "deleted"),
			"states":            pIn(func(s *site) string { return s.state }, "active", "expired", "deleted"),
			"siteType":          pEnumEq(func(s *site) string { return s.siteType }, "Trial", "Paid"),
			"suite":             pEnumEq(func(s *site) string { return s.sku }, "Core", "Control", "Complete"),
			"sku":               pEq(func(s *site) string { return s.sku }),
			"isDefault":         pBool(func(s *site) bool { return s.isDefault }),
			"healthStatus":      pBool(func(*site) bool { return true }),
			"externalId":        pEq(func(s *site) string { return s.externalID }),
			"registrationToken": pEq(func(s *site) string { return s.registrationToken }),
			"totalLicenses":     pInt(func(s *site) int64 { return int64(s.totalLicenses) }),
			"activeLicenses":    pInt(func(s *site) int64 { return int64(s.activeLicenses) }),
			"expiration":        pEq(func(s *site) string { return formatTime(s.expiresAt) }),
			"createdAt":         pCreated[*site](),
			"updatedAt":         pUpdated[*site](),
		},
		sorts: map[string]sortField[*site]{
			"id":             {native: nativeID},
			"createdAt":      {native: nativeCreated},
			"updatedAt":      {native: nativeUpdated},
			"name":           {str: func(s *site) string { return s.name }},
			"state":          {str: func(s *site) string { return s.state }},
			"siteType":       {str: func(s *site) string { return s.siteType }},
			"sku":            {str: func(s *site) string { return s.sku }},
			"suite":          {str: func(s *site) string { return s.sku }},
			"accountName":    {str: func(s *site) string { return s.accountName }},
			"description":    {str: func(s *site) string { return s.description }},
			"totalLicenses":  {num: func(s *site) int64 { return int64(s.totalLicenses) }},
			"activeLicenses": {num: func(s *site) int64 { return int64(s.activeLicenses) }},
			"expiration":     {num: func(s *site) int64 { return s.expiresAt }},
		},
		defaultSort: "id",
		render:      func(b []byte, s *site) []byte { return cached(b, &s.row, s.json) },
	}
}

// handleSites answers GET /sites in its own envelope:
// {"data":{"allSites":{...},"sites":[...]},"pagination":{...}}. allSites
// sums the licenses of every site the token sees, whatever the filters.
func (e *Emulator) handleSites(w http.ResponseWriter, r *http.Request) {
	buf := getBuf()
	defer putBuf(buf)
	e.mu.RLock()
	q, err := e.sites.parseList(r.URL.Query(), e.now())
	if err == nil {
		var active, total int
		for _, s := range e.sites.t.ids {
			active += s.activeLicenses
			total += s.totalLicenses
		}
		b := append(*buf, `{"data":{"allSites":{"activeLicenses":`...)
		b = appendInt(b, active)
		b = append(b, `,"totalLicenses":`...)
		b = appendInt(b, total)
		b = append(b, `},"sites":`...)
		p := e.sites.t.query(q)
		b = e.sites.appendItems(b, p.items)
		b = append(b, '}')
		*buf = e.sites.appendPagination(b, q, p)
	}
	e.mu.RUnlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, *buf)
}

type group struct {
	row
	name, description  string
	site               *site
	typ                string
	isDefault          bool
	rank               int // 0: null (static groups)
	inherits           bool
	creator, creatorID string
	registrationToken  string
	totalAgents        int
}

type groupJSON struct {
	CreatedAt         string  `json:"createdAt"`
	Creator           string  `json:"creator"`
	CreatorID         string  `json:"creatorId"`
	Description       *string `json:"description"`
	FilterID          *string `json:"filterId"`
	FilterName        *string `json:"filterName"`
	ID                string  `json:"id"`
	Inherits          bool    `json:"inherits"`
	IsDefault         bool    `json:"isDefault"`
	Name              string  `json:"name"`
	Rank              *int    `json:"rank"`
	RegistrationToken string  `json:"registrationToken"`
	SiteID            string  `json:"siteId"`
	TotalAgents       int     `json:"totalAgents"`
	Type              string  `json:"type"`
	UpdatedAt         string  `json:"updatedAt"`
}

func (g *group) json() []byte {
	var rank *int
	if g.rank != 0 {
		rank = &g.rank
	}
	b, _ := json.Marshal(groupJSON{
		CreatedAt: formatTime(g.created), Creator: g.creator, CreatorID: g.creatorID,
		Description: nullable(g.description), ID: g.idStr, Inherits: g.inherits, IsDefault: g.isDefault,
		Name: g.name, Rank: rank, RegistrationToken: g.registrationToken, SiteID: g.site.idStr,
		TotalAgents: g.totalAgents, Type: g.typ, UpdatedAt: formatTime(g.updated),
	})
	return b
}

var groupTypes = []string{"static", "dynamic", "pinned"}

func groupCollection() *collection[*group] {
	return &collection[*group]{
		name: "group",
		t:    newTable[*group](),
		params: map[string]param[*group]{
			"groupIds":          pRowID[*group](),
			"id":                pEq(func(g *group) string { return g.idStr }),
			"siteIds":           pIDs(func(g *group) string { return g.site.idStr }),
			"accountIds":        pIDs(func(g *group) string { return g.site.accountID }),
			"type":              pEnumEq(func(g *group) string { return g.typ }, groupTypes...),
			"types":             pIn(func(g *group) string { return g.typ }, groupTypes...),
			"name":              pEq(func(g *group) string { return g.name }),
			"description":       pEq(func(g *group) string { return g.description }),
			"query":             pQuery(func(g *group) []string { return []string{g.name, g.description} }),
			"rank":              pInt(func(g *group) int64 { return int64(g.rank) }),
			"isDefault":         pBool(func(g *group) bool { return g.isDefault }),
			"registrationToken": pEq(func(g *group) string { return g.registrationToken }),
			"updatedAt":         pUpdated[*group](),
		},
		sorts: map[string]sortField[*group]{
			"id":          {native: nativeID},
			"createdAt":   {native: nativeCreated},
			"updatedAt":   {native: nativeUpdated},
			"name":        {str: func(g *group) string { return g.name }},
			"type":        {str: func(g *group) string { return g.typ }},
			"rank":        {num: func(g *group) int64 { return int64(g.rank) }},
			"siteId":      {num: func(g *group) int64 { return int64(g.site.id) }},
			"description": {str: func(g *group) string { return g.description }},
		},
		defaultSort: "id",
		render:      func(b []byte, g *group) []byte { return cached(b, &g.row, g.json) },
	}
}

// System facts the emulator reports on GET /system/info.
const (
	systemBuild              = "s1bridge-emulator"
	systemRelease            = "24.1.2"
	systemVersion            = "24.1.2.6"
	systemPatch              = "2"
	systemLatestAgentVersion = "24.1.4.257"
)

func (e *Emulator) handleSystemInfo(w http.ResponseWriter, _ *http.Request) {
	writeData(w, map[string]string{
		"build": systemBuild, "latestAgentVersion": systemLatestAgentVersion,
		"patch": systemPatch, "release": systemRelease, "version": systemVersion,
	})
}

// activityType is one entry of GET /activities/types.
type activityType struct {
	Action              string `json:"action"`
	DescriptionTemplate string `json:"descriptionTemplate"`
	ID                  int    `json:"id"`
}

// Activity types the emulator records. 19, 27, 1001, 1002 and 5040 are the
// console's own numbers as seen in public captures; the others are ids of
// the Swagger enum given the meaning the emulator needs.
const (
	actThreatMalicious = 19
	actUserLogin       = 27
	actAgentDisconnect = 1001
	actAgentConnect    = 1002
	actRestriction     = 3008
	actThreatVerdict   = 4007
	actThreatStatus    = 4008
	actThreatMitigated = 4009
	actAlertVerdict    = 4110
	actAlertStatus     = 4111
	actThreatSuspect   = 4108
	actAccountCreated  = 5040
)

// Activity types of the response actions, with the console's numbers and
// names (response-actions.md §11): the user's request, logged when the
// console accepts the call, and the agent's report, logged when it answers.
const (
	actUserDisconnect     = 61   // User Disconnected Agent From Network
	actUserReconnect      = 62   // User Reconnected Agent to Network
	actScanInitiated      = 71   // Scan Initiated (by a user)
	actScanAbortedByUser  = 72   // Scan Aborted (by a user)
	actFetchThreatFile    = 85   // User Requested Fetch Threat File
	actThreatFileUploaded = 86   // Agent Uploaded Threat File
	actAgentScanStarted   = 90   // Agent Started Full Disk Scan
	actAgentScanAborted   = 91   // Agent Aborted Full Disk Scan
	actAgentScanCompleted = 92   // Agent Completed Full Disk Scan
	actAgentIsolateFailed = 2010 // Agent Mitigation Report Quarantine Network Failed
	actThreatNoteAdded    = 4020 // New Threat Note Added
)

// mitigationActivities are the activity types of each mitigation, by the
// report action name: the user's command, and the agent's success, failure
// and pending-reboot reports. Macro actions have none documented.
var mitigationActivities = map[string]struct{ requested, succeeded, failed, pendingReboot int }{
	"kill":         {2011, 2001, 2006, 2031},
	"remediate":    {2012, 2002, 2007, 2032},
	"rollback":     {2013, 2003, 2008, 2033},
	"quarantine":   {2014, 2004, 2009, 2034},
	"unquarantine": {2015, 2026, 2027, 2035},
}

var activityTypes = []activityType{
	{"New Malicious Threat Not Mitigated", "Threat {{ threat_name }} was detected on {{ computer_name }}.", actThreatMalicious},
	{"User Logged In", "The management user {{ username }} logged in to the management console.", actUserLogin},
	{"Agent Disconnected From Network", "Agent {{ computer_name }} was disconnected from network.", actAgentDisconnect},
	{"Agent Reconnected To Network", "Agent {{ computer_name }} was connected to network.", actAgentConnect},
	{"Blocklist Hash Added", "The management user {{ username }} added hash {{ value }} to the blocklist.", actRestriction},
	{"Threat Analyst Verdict Changed", "The management user {{ username }} changed the analyst verdict of threat {{ threat_name }} to {{ analyst_verdict }}.", actThreatVerdict},
	{"Threat Incident Status Changed", "The management user {{ username }} changed the incident status of threat {{ threat_name }} to {{ incident_status }}.", actThreatStatus},
	{"Threat Mitigation Status Changed", "Threat {{ threat_name }} on {{ computer_name }} is now {{ mitigation_status }}.", actThreatMitigated},
	{"New Suspicious Threat Not Mitigated", "Suspicious threat {{ threat_name }} was detected on {{ computer_name }}.", actThreatSuspect},
	{"Alert Analyst Verdict Changed", "The management user {{ username }} changed the analyst verdict of alert {{ alert_id }} to {{ analyst_verdict }}.", actAlertVerdict},
	{"Alert Incident Status Changed", "The management user {{ username }} changed the incident status of alert {{ alert_id }} to {{ incident_status }}.", actAlertStatus},
	{"Account Created", "The management user {{ username }} created {{ account_name }} account.", actAccountCreated},
	{"User Disconnected Agent From Network", "The management user {{ username }} issued a disconnect command to the agent {{ computer_name }}.", actUserDisconnect},
	{"User Reconnected Agent to Network", "The management user {{ username }} issued a reconnect command to the agent {{ computer_name }}.", actUserReconnect},
	{"Scan Initiated", "The management user {{ username }} initiated a full disk scan on {{ computer_name }}.", actScanInitiated},
	{"Scan Aborted", "The management user {{ username }} aborted the full disk scan on {{ computer_name }}.", actScanAbortedByUser},
	{"User Requested Fetch Threat File", "The management user {{ username }} requested the file of threat {{ threat_name }} from {{ computer_name }}.", actFetchThreatFile},
	{"Agent Uploaded Threat File", "Agent {{ computer_name }} uploaded the file of threat {{ threat_name }}.", actThreatFileUploaded},
	{"Agent Started Full Disk Scan", "Agent {{ computer_name }} started a full disk scan.", actAgentScanStarted},
	{"Agent Aborted Full Disk Scan", "Agent {{ computer_name }} aborted a full disk scan.", actAgentScanAborted},
	{"Agent Completed Full Disk Scan", "Agent {{ computer_name }} completed a full disk scan.", actAgentScanCompleted},
	{"Agent Mitigation Report Quarantine Network Failed", "Agent {{ computer_name }} was unable to disconnect from network.", actAgentIsolateFailed},
	{"New Threat Note Added", "The management user {{ username }} added a note to threat {{ threat_name }}.", actThreatNoteAdded},
	{"Threat Mitigation Report Kill Success", "The agent {{ computer_name }} successfully killed the threat: {{ threat_name }}.", 2001},
	{"Threat Mitigation Report Remediate Success", "The agent {{ computer_name }} successfully remediated the threat: {{ threat_name }}.", 2002},
	{"Threat Mitigation Report Rollback Success", "The agent {{ computer_name }} successfully rolled back the threat: {{ threat_name }}.", 2003},
	{"Threat Mitigation Report Quarantine Success", "The agent {{ computer_name }} successfully quarantined the threat: {{ threat_name }}.", 2004},
	{"Threat Mitigation Report Kill Failed", "The agent {{ computer_name }} failed to kill the threat: {{ threat_name }}.", 2006},
	{"Threat Mitigation Report Remediate Failed", "The agent {{ computer_name }} failed to remediate the threat: {{ threat_name }}.", 2007},
	{"Threat Mitigation Report Rollback Failed", "The agent {{ computer_name }} failed to roll back the threat: {{ threat_name }}.", 2008},
	{"Threat Mitigation Report Quarantine Failed", "The agent {{ computer_name }} failed to quarantine the threat: {{ threat_name }}.", 2009},
	{"User Issued Kill Command", "The management user {{ username }} issued a kill command to the threat {{ threat_name }}.", 2011},
	{"User Issued Remediate Command", "The management user {{ username }} issued a remediate command to the threat {{ threat_name }}.", 2012},
	{"User Issued Rollback Command", "The management user {{ username }} issued a rollback command to the threat {{ threat_name }}.", 2013},
	{"User Issued Quarantine Command", "The management user {{ username }} issued a quarantine command to the threat {{ threat_name }}.", 2014},
	{"User Issued Unquarantine Command", "The management user {{ username }} issued an unquarantine command to the threat {{ threat_name }}.", 2015},
	{"Threat Mitigation Report Unquarantine Success", "The agent {{ computer_name }} successfully unquarantined the threat: {{ threat_name }}.", 2026},
	{"Threat Mitigation Report Unquarantine Failed", "The agent {{ computer_name }} failed to unquarantine the threat: {{ threat_name }}.", 2027},
	{"Threat Mitigation Report Kill Pending Reboot", "Killing the threat {{ threat_name }} on {{ computer_name }} waits for a reboot.", 2031},
	{"Threat Mitigation Report Remediate Pending Reboot", "Remediating the threat {{ threat_name }} on {{ computer_name }} waits for a reboot.", 2032},
	{"Threat Mitigation Report Rollback Pending Reboot", "Rolling back the threat {{ threat_name }} on {{ computer_name }} waits for a reboot.", 2033},
	{"Threat Mitigation Report Quarantine Pending Reboot", "Quarantining the threat {{ threat_name }} on {{ computer_name }} waits for a reboot.", 2034},
	{"Threat Mitigation Report Unquarantine Pending Reboot", "Unquarantining the threat {{ threat_name }} on {{ computer_name }} waits for a reboot.", 2035},
}

func (e *Emulator) handleActivityTypes(w http.ResponseWriter, _ *http.Request) {
	writeData(w, activityTypes)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }
