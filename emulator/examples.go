package emulator

import (
	"time"
)

// The ids the README's examples name. WithExamples makes sure a console has
// every one of them, whatever its seed and sizes, and keeps live mode away
// from them, so that each example line works on the demo every time.
const (
	// ExampleAgentID is a Windows laptop, FIN-LT-042, active and connected,
	// whose one interface is ExampleAgentIP.
	ExampleAgentID = "1559342436290084702"
	// ExampleAgentIP is the local address of ExampleAgentID.
	ExampleAgentIP = "10.1.2.3"
	// ExampleThreatID is an unresolved, unmitigated malicious threat on
	// ExampleAgentID.
	ExampleThreatID = "1938475610293847561"
	// ExampleAlertID is an unresolved STAR (cloud-detection) alert on
	// ExampleAgentID.
	ExampleAlertID = "1928374650192837465"
	// SeedAgentID and SeedThreatID are objects of the default seeded
	// console (seed 1, default sizes): FIN-LT-004, and LockBit3.exe on an
	// active, connected Windows agent, in progress and not mitigated.
	// WithExamples creates them on a console that lacks them.
	SeedAgentID  = "1555480684406604929"
	SeedThreatID = "1555480684529553998"
)

// WithExamples adds the README's example objects (ExampleAgentID,
// ExampleThreatID, ExampleAlertID, and SeedAgentID and SeedThreatID when
// the seed did not make them) and keeps RunLive from changing those threats,
// that alert and the seeded Unified Alerts (UAMSeedIDs): the demo runs
// with it.
func WithExamples() Option {
	return func(c *config) error {
		c.examples = true
		return nil
	}
}

// seedExamples adds what WithExamples promises; it runs in New, after seed.
func (e *Emulator) seedExamples() {
	now := e.now()
	e.pinned, e.pinnedUAM = map[uint64]bool{}, map[*uamAlert]bool{}
	example := e.exampleAgent(ExampleAgentID, "FIN-LT-042", ExampleAgentIP, now)
	seedAgent := e.exampleAgent(SeedAgentID, "FIN-LT-004", "10.22.0.4", now)
	for _, x := range []struct {
		id string
		on *agent
	}{{ExampleThreatID, example}, {SeedThreatID, seedAgent}} {
		id := parseID(x.id)
		e.pinned[id] = true
		if _, ok := e.threats.t.get(id); ok {
			continue
		}
		created := now - int64(3*time.Hour)
		t := e.genThreat(x.on, created, created)
		t.id, t.idStr = id, x.id
		// Unresolved and not mitigated, whatever the sample: every response
		// action of the examples applies to it.
		t.incidentStatus, t.analystVerdict, t.mitigationStatus, t.mitigations = statusUnresolved, verdictUndefined, mitigationNot, nil
		t.confidenceLevel = "malicious"
		e.threats.t.insert(t)
	}
	// The seeded Unified Alerts the examples name (…a001, …a004, …).
	for _, uid := range UAMSeedIDs() {
		if a, ok := e.uam.byStr[uid]; ok {
			e.pinnedUAM[a] = true
		}
	}
	id := parseID(ExampleAlertID)
	e.pinned[id] = true
	if _, ok := e.alerts.t.get(id); !ok {
		a := e.genAlert(example, now-int64(2*time.Hour))
		a.id, a.idStr = id, ExampleAlertID
		e.alerts.t.insert(a)
	}
}

// exampleAgent returns the agent idStr, creating an active, connected
// Windows laptop named name with one interface at ip when there is none.
func (e *Emulator) exampleAgent(idStr, name, ip string, now int64) *agent {
	id := parseID(idStr)
	if a, ok := e.agents.t.get(id); ok {
		return a
	}
	st := e.sites.t.ids[0]
	g := st.groups[0]
	registered := now - 200*day
	a := &agent{
		row:  row{id: id, idStr: idStr, created: registered, updated: now - int64(10*time.Minute)},
		site: st, group: g, isActive: true, networkStatus: netConnected, mitigationMode: "protect",
		registeredAt: registered, coreCount: 8, cpuCount: 8, totalMemory: 16384,
		lastLoggedInUserName: "alice", agentVersion: systemLatestAgentVersion, isUpToDate: true,
		domain: "ACME", externalIP: "203.0.113.42", osArch: "64 bit", osStartTime: now - 3*day,
		scanStartedAt: registered + day, scanFinishedAt: registered + day + int64(time.Hour), scanStatus: scanFinished,
		computerName: name, osType: "windows", osName: "Windows 10 Pro", osRevision: "19045",
		uuid: "5f1c0e6a9b2d4c7e8a3f1b0c9d8e7a6b", modelName: "Dell Inc. - Latitude 5440", cpuID: "Intel(R) Core(TM) i7-1365U",
		ifaces: []netIface{{ID: formatID(id + 1), Inet: []string{ip}, Inet6: []string{"fe80::1:2:3"}, Name: "Ethernet0", Physical: "00:50:56:01:02:03"}},
	}
	a.lastActiveDate = a.updated
	a.machineType = machineTypeOf(a.computerName, a.osType)
	g.totalAgents++
	st.activeLicenses++
	e.agents.t.insert(a)
	return a
}

// parseID reads one of the ids above, which are valid by construction.
func parseID(s string) uint64 {
	var n uint64
	for _, c := range s {
		n = n*10 + uint64(c-'0')
	}
	return n
}
