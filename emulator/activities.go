package emulator

import (
	"encoding/json"
	"strconv"
)

type activity struct {
	row
	uuid             string
	typ              int
	primary          string
	secondary        string
	agent            *agent
	threat           *threat
	alertID, ruleID  string
	site             *site // scope when there is no agent
	userID, username string
	hash             string
	data             map[string]any
}

// activitySpec is what a new activity is made from.
type activitySpec struct {
	typ       int
	at        int64
	agent     *agent
	threat    *threat
	alertID   string
	ruleID    string
	site      *site
	hash      string
	primary   string
	secondary string
	data      map[string]any
}

type activityJSON struct {
	AccountID            string         `json:"accountId"`
	AccountName          string         `json:"accountName"`
	ActivityType         int            `json:"activityType"`
	ActivityUUID         string         `json:"activityUuid"`
	AgentID              *string        `json:"agentId"`
	AgentUpdatedVersion  *string        `json:"agentUpdatedVersion"`
	Comments             *string        `json:"comments"`
	CreatedAt            string         `json:"createdAt"`
	Data                 map[string]any `json:"data"`
	Description          *string        `json:"description"`
	GroupID              *string        `json:"groupId"`
	GroupName            *string        `json:"groupName"`
	Hash                 *string        `json:"hash"`
	ID                   string         `json:"id"`
	OSFamily             *string        `json:"osFamily"`
	PrimaryDescription   string         `json:"primaryDescription"`
	SecondaryDescription *string        `json:"secondaryDescription"`
	SiteID               *string        `json:"siteId"`
	SiteName             *string        `json:"siteName"`
	ThreatID             *string        `json:"threatId"`
	UpdatedAt            string         `json:"updatedAt"`
	UserID               *string        `json:"userId"`
}

func (a *activity) siteOf() *site {
	if a.agent != nil {
		return a.agent.site
	}
	return a.site
}

func (a *activity) agentID() string {
	if a.agent == nil {
		return ""
	}
	return a.agent.idStr
}

func (a *activity) threatID() string {
	if a.threat == nil {
		return ""
	}
	return a.threat.idStr
}

func (a *activity) siteID() string {
	if s := a.siteOf(); s != nil {
		return s.idStr
	}
	return ""
}

func (a *activity) groupID() string {
	if a.agent == nil {
		return ""
	}
	return a.agent.group.idStr
}

func (a *activity) json(acc account) []byte {
	j := activityJSON{
		AccountID: acc.idStr, AccountName: acc.name, ActivityType: a.typ, ActivityUUID: a.uuid,
		AgentID: nullable(a.agentID()), CreatedAt: formatTime(a.created), Data: a.data, Hash: nullable(a.hash),
		ID: a.idStr, PrimaryDescription: a.primary, SecondaryDescription: nullable(a.secondary), ThreatID: nullable(a.threatID()),
		UpdatedAt: formatTime(a.updated), UserID: nullable(a.userID),
	}
	if s := a.siteOf(); s != nil {
		j.SiteID, j.SiteName = &s.idStr, &s.name
	}
	if a.agent != nil {
		j.GroupID, j.GroupName = &a.agent.group.idStr, &a.agent.group.name
		j.OSFamily = &a.agent.osType
	}
	b, _ := json.Marshal(j)
	return b
}

// addActivity records an activity. It is buffered and inserted by
// flushActivities in one batch, so a bulk update of many threats stays
// O(n log n); the caller holds mu and calls flushActivities before unlocking.
func (e *Emulator) addActivity(s activitySpec) {
	e.newActs = append(e.newActs, e.newActivity(s))
}

// flushActivities inserts the buffered activities; the caller holds mu.
func (e *Emulator) flushActivities() {
	e.activities.t.insert(e.newActs...)
	clear(e.newActs)
	e.newActs = e.newActs[:0]
}

func (e *Emulator) newActivity(s activitySpec) *activity {
	id := e.ids.next(e.rnd)
	a := &activity{
		row:  row{id: id, idStr: formatID(id), created: s.at, updated: s.at},
		uuid: e.uuid(), typ: s.typ, primary: s.primary, secondary: s.secondary, agent: s.agent, threat: s.threat,
		alertID: s.alertID, ruleID: s.ruleID, site: s.site, hash: s.hash, userID: emulatorUserID, username: emulatorUser,
	}
	data := map[string]any{
		// The console sends this id as a JSON number inside data, unlike
		// everywhere else; clients must cope.
		"accountId":   json.Number(e.account.idStr),
		"accountName": e.account.name,
		"username":    emulatorUser,
	}
	scope := "Account " + e.account.name
	if st := a.siteOf(); st != nil {
		data["siteName"] = st.name
		scope = "Site " + st.name
	}
	data["fullScopeDetails"] = scope
	for k, v := range s.data {
		data[k] = v
	}
	a.data = data
	return a
}

// The management user every emulated change is attributed to.
const (
	emulatorUser      = "SOAR API"
	emulatorUserID    = "1503807937830229037"
	emulatorUserEmail = "soar-api@acme.example"
)

func activityCollection(e *Emulator) *collection[*activity] {
	type A = *activity
	return &collection[A]{
		name: "activity",
		t:    newTable[A](),
		params: map[string]param[A]{
			"ids":           pRowID[A](),
			"siteIds":       pIDs(A.siteID),
			"groupIds":      pIDs(A.groupID),
			"accountIds":    pIDs(func(A) string { return e.account.idStr }),
			"agentIds":      pIDs(A.agentID),
			"threatIds":     pIDs(A.threatID),
			"alertIds":      pIDs(func(a A) string { return a.alertID }),
			"userIds":       pIDs(func(a A) string { return a.userID }),
			"activityUuids": pIn(func(a A) string { return a.uuid }),
			"activityTypes": {kind: kindIn, numeric: true, str: func(a A) string { return strconv.Itoa(a.typ) }},
			"userEmails":    pIn(func(A) string { return emulatorUserEmail }),
			"ruleIds":       pIDs(func(a A) string { return a.ruleID }),
			"createdAt":     pCreated[A](),
		},
		sorts: map[string]sortField[A]{
			"id":           {native: nativeID},
			"createdAt":    {native: nativeCreated},
			"activityType": {num: func(a A) int64 { return int64(a.typ) }},
		},
		defaultSort: "id",
		render: func(b []byte, a A) []byte {
			return cached(b, &a.row, func() []byte { return a.json(e.account) })
		},
	}
}
