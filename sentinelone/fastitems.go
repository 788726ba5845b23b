package sentinelone

import "slices"

// One-pass decoders (fastItem) of the items the connector reads by the
// hundred: threats (threats.list; ingestion reads their heads, see
// threathead.go) and agents (agents.list's ip filter; a plain list passes
// them on as Objects).
// Each reads what its UnmarshalJSON reads, the same way, and says no to
// anything it would not read identically (see fastjson.go).

var agentFields = newFields("id", "uuid", "computerName", "osType", "agentVersion", "networkStatus", "externalIp",
	"networkInterfaces", "isActive", "isDecommissioned", "infected", "isUpToDate", "firewallEnabled",
	"siteId", "groupId", "accountId", "lastActiveDate", "updatedAt")

func (*Agent) fastFields() *fields { return agentFields }

func (a *Agent) readMember(i int, v []byte, _ *itemScratch) bool {
	ok := true
	switch i {
	case 0:
		a.ID, ok = fastID(v)
	case 1:
		a.UUID, ok = fastOptString(v)
	case 2:
		a.ComputerName, ok = fastOptString(v)
	case 3:
		a.OSType, ok = fastOptString(v)
	case 4:
		a.AgentVersion, ok = fastOptString(v)
	case 5:
		a.NetworkStatus, ok = fastOptString(v)
	case 6:
		a.ExternalIP, ok = fastOptString(v)
	case 7:
		a.NetworkInterfaces, ok = fastInterfaces(v)
	case 8:
		a.IsActive, ok = fastBool(v)
	case 9:
		a.IsDecommissioned, ok = fastBool(v)
	case 10:
		a.Infected, ok = fastBool(v)
	case 11:
		a.IsUpToDate, ok = fastBool(v)
	case 12:
		a.FirewallEnabled, ok = fastBool(v)
	case 13:
		a.SiteID, ok = fastID(v)
	case 14:
		a.GroupID, ok = fastID(v)
	case 15:
		a.AccountID, ok = fastID(v)
	case 16:
		a.LastActiveDate, ok = fastTime(v)
	case 17:
		a.UpdatedAt, ok = fastTime(v)
	}
	return ok
}

func (a *Agent) finish(raw []byte, _ *itemScratch) bool {
	a.Raw = raw
	return true
}

var nicFields = newFields("id", "name", "physical", "inet", "inet6")

// fastInterfaces reads networkInterfaces.
func fastInterfaces(v []byte) ([]NetworkInterface, bool) {
	return fastArray(v, func(e []byte) (NetworkInterface, bool) {
		var n NetworkInterface
		ok := readMembers(e, nicFields, func(i int, f []byte) bool {
			var (
				s  string
				ok bool
			)
			switch i {
			case 0:
				s, ok = fastID(f)
				n.ID = ID(s)
			case 1:
				n.Name, ok = fastOptString(f)
			case 2:
				n.Physical, ok = fastOptString(f)
			case 3:
				n.Inet, ok = fastStrings(f)
			case 4:
				n.Inet6, ok = fastStrings(f)
			}
			return ok
		})
		return n, ok
	})
}

var engineFields = newFields("key", "title")

// fastEngines reads detectionEngines: strings or {key,title} objects.
func fastEngines(v []byte) ([]DetectionEngine, bool) {
	return fastArray(v, func(e []byte) (DetectionEngine, bool) {
		switch e[0] {
		case '"':
			s, ok := fastString(e)
			return DetectionEngine{Key: s, Title: s}, ok
		case '{':
			var d DetectionEngine
			ok := readMembers(e, engineFields, func(i int, f []byte) bool {
				var ok bool
				if i == 0 {
					d.Key, ok = fastOptString(f)
				} else {
					d.Title, ok = fastOptString(f)
				}
				return ok
			})
			return d, ok
		}
		return DetectionEngine{}, false
	})
}

var (
	threatFields = newFields("id", "threatInfo", "agentRealtimeInfo")
	// threatInfoFields are a head's (headInfoNames, read by headRef.readInfo),
	// then what only a Threat reads.
	threatInfoFields = newFields(append(slices.Clone(headInfoNames),
		"threatName", "sha1", "classification", "confidenceLevel", "detectionEngines", "identifiedAt")...)
	agentInfoFields = newFields("agentId", "agentComputerName", "siteId", "groupId", "accountId")
)

func (*Threat) fastFields() *fields { return threatFields }

func (t *Threat) readMember(i int, v []byte, st *itemScratch) bool {
	var ok bool
	switch i {
	case 0:
		t.ID, ok = fastID(v)
	case 1:
		// A threat without a threatInfo object is refused by
		// UnmarshalJSON, which says why.
		st.seen = true
		ok = v[0] == '{' && readMembers(v, threatInfoFields, func(j int, v []byte) bool { return t.readThreatInfo(j, v, st) })
	default:
		ok = v[0] == 'n' || v[0] == '{' && readMembers(v, agentInfoFields, t.readAgentInfo)
	}
	return ok
}

func (t *Threat) fastNested(i int, st *itemScratch) (*fields, func(j int, v []byte) bool) {
	switch i {
	case 1:
		st.seen = true
		return threatInfoFields, func(j int, v []byte) bool { return t.readThreatInfo(j, v, st) }
	case 2:
		return agentInfoFields, t.readAgentInfo
	}
	return nil, nil
}

// ref points at t's head fields, which it reads as a ThreatHead does.
func (t *Threat) ref() headRef {
	return headRef{&t.ID, &t.IncidentStatus, &t.AnalystVerdict, &t.MitigationStatus, &t.CreatedAt, &t.UpdatedAt, &t.Raw}
}

func (t *Threat) finish(raw []byte, st *itemScratch) bool {
	return t.ref().finish(raw, st)
}

// readThreatInfo reads member i of threatInfo.
func (t *Threat) readThreatInfo(i int, v []byte, st *itemScratch) bool {
	if i < len(headInfoNames) {
		return t.ref().readInfo(i, v, st)
	}
	var ok bool
	switch i - len(headInfoNames) {
	case 0:
		t.Name, ok = fastOptString(v)
	case 1:
		t.SHA1, ok = fastOptString(v)
	case 2:
		t.Classification, ok = fastOptString(v)
	case 3:
		t.ConfidenceLevel, ok = fastOptString(v)
	case 4:
		t.DetectionEngines, ok = fastEngines(v)
	case 5:
		t.IdentifiedAt, ok = fastTime(v)
	}
	return ok
}

// readAgentInfo reads member i of agentRealtimeInfo.
func (t *Threat) readAgentInfo(i int, v []byte) bool {
	var ok bool
	switch i {
	case 0:
		t.AgentID, ok = fastID(v)
	case 1:
		t.AgentComputerName, ok = fastOptString(v)
	case 2:
		t.SiteID, ok = fastID(v)
	case 3:
		t.GroupID, ok = fastID(v)
	case 4:
		t.AccountID, ok = fastID(v)
	}
	return ok
}
