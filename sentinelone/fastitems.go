package sentinelone

// One-pass decoders (fastItem) of the items the connector reads by the
// thousand: threats (ingestion, threats.list) and agents (agents.list).
// Each reads what its UnmarshalJSON reads, the same way, and says no to
// anything it would not read identically (see fastjson.go).

var agentFields = newFields("id", "uuid", "computerName", "osType", "agentVersion", "networkStatus", "externalIp",
	"networkInterfaces", "isActive", "isDecommissioned", "infected", "isUpToDate", "firewallEnabled",
	"siteId", "groupId", "accountId", "lastActiveDate", "updatedAt")

func (a *Agent) decodeFast(b []byte) bool {
	var out Agent
	if !readMembers(b, agentFields, func(i int, v []byte) bool {
		ok := true
		switch i {
		case 0:
			out.ID, ok = fastID(v)
		case 1:
			out.UUID, ok = fastOptString(v)
		case 2:
			out.ComputerName, ok = fastOptString(v)
		case 3:
			out.OSType, ok = fastOptString(v)
		case 4:
			out.AgentVersion, ok = fastOptString(v)
		case 5:
			out.NetworkStatus, ok = fastOptString(v)
		case 6:
			out.ExternalIP, ok = fastOptString(v)
		case 7:
			out.NetworkInterfaces, ok = fastInterfaces(v)
		case 8:
			out.IsActive, ok = fastBool(v)
		case 9:
			out.IsDecommissioned, ok = fastBool(v)
		case 10:
			out.Infected, ok = fastBool(v)
		case 11:
			out.IsUpToDate, ok = fastBool(v)
		case 12:
			out.FirewallEnabled, ok = fastBool(v)
		case 13:
			out.SiteID, ok = fastID(v)
		case 14:
			out.GroupID, ok = fastID(v)
		case 15:
			out.AccountID, ok = fastID(v)
		case 16:
			out.LastActiveDate, ok = fastTime(v)
		case 17:
			out.UpdatedAt, ok = fastTime(v)
		}
		return ok
	}) {
		return false
	}
	out.Raw = b
	*a = out
	return true
}

var nicFields = newFields("id", "name", "physical", "inet", "inet6")

// fastInterfaces reads networkInterfaces.
func fastInterfaces(v []byte) ([]NetworkInterface, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '[':
	default:
		return nil, false
	}
	out := []NetworkInterface{}
	ok := eachElement(v, func(e []byte) bool {
		var n NetworkInterface
		if !readMembers(e, nicFields, func(i int, f []byte) bool {
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
		}) {
			return false
		}
		out = append(out, n)
		return true
	})
	return out, ok
}

var engineFields = newFields("key", "title")

// fastEngines reads detectionEngines: strings or {key,title} objects.
func fastEngines(v []byte) ([]DetectionEngine, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '[':
	default:
		return nil, false
	}
	out := []DetectionEngine{}
	ok := eachElement(v, func(e []byte) bool {
		var d DetectionEngine
		switch e[0] {
		case '"':
			s, ok := fastString(e)
			d = DetectionEngine{Key: s, Title: s}
			if !ok {
				return false
			}
		case '{':
			if !readMembers(e, engineFields, func(i int, f []byte) bool {
				var ok bool
				if i == 0 {
					d.Key, ok = fastOptString(f)
				} else {
					d.Title, ok = fastOptString(f)
				}
				return ok
			}) {
				return false
			}
		default:
			return false
		}
		out = append(out, d)
		return true
	})
	return out, ok
}

var (
	threatFields     = newFields("id", "threatInfo", "agentRealtimeInfo")
	threatInfoFields = newFields("threatId", "threatName", "sha1", "classification", "confidenceLevel",
		"incidentStatus", "analystVerdict", "mitigationStatus", "detectionEngines", "createdAt", "updatedAt", "identifiedAt")
	agentInfoFields = newFields("agentId", "agentComputerName", "siteId", "groupId", "accountId")
)

func (t *Threat) decodeFast(b []byte) bool {
	var (
		out      Threat
		threatID string
		haveInfo bool
	)
	if !readMembers(b, threatFields, func(i int, v []byte) bool {
		var ok bool
		switch i {
		case 0:
			out.ID, ok = fastID(v)
		case 1:
			// A threat without a threatInfo object is refused by
			// UnmarshalJSON, which says why.
			haveInfo = true
			ok = readThreatInfo(v, &out, &threatID)
		default:
			ok = v[0] == 'n' || readAgentInfo(v, &out)
		}
		return ok
	}) || !haveInfo {
		return false
	}
	// As newThreat does.
	if out.ID == "" {
		out.ID = threatID
	}
	out.IncidentStatus = LowerSnake(out.IncidentStatus)
	out.AnalystVerdict = LowerSnake(out.AnalystVerdict)
	out.MitigationStatus = LowerSnake(out.MitigationStatus)
	out.Raw = b
	*t = out
	return true
}

func readThreatInfo(b []byte, t *Threat, threatID *string) bool {
	return readMembers(b, threatInfoFields, func(i int, v []byte) bool {
		var ok bool
		switch i {
		case 0:
			*threatID, ok = fastID(v)
		case 1:
			t.Name, ok = fastOptString(v)
		case 2:
			t.SHA1, ok = fastOptString(v)
		case 3:
			t.Classification, ok = fastOptString(v)
		case 4:
			t.ConfidenceLevel, ok = fastOptString(v)
		case 5:
			t.IncidentStatus, ok = fastOptString(v)
		case 6:
			t.AnalystVerdict, ok = fastOptString(v)
		case 7:
			t.MitigationStatus, ok = fastOptString(v)
		case 8:
			t.DetectionEngines, ok = fastEngines(v)
		case 9:
			t.CreatedAt, ok = fastTime(v)
		case 10:
			t.UpdatedAt, ok = fastTime(v)
		case 11:
			t.IdentifiedAt, ok = fastTime(v)
		}
		return ok
	})
}

func readAgentInfo(b []byte, t *Threat) bool {
	return readMembers(b, agentInfoFields, func(i int, v []byte) bool {
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
	})
}
