package emulator

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// idGen makes the console's ids: 19-digit numbers that grow with creation
// time, like the snowflake ids SentinelOne hands out.
type idGen struct{ last uint64 }

func (g *idGen) next(r *rand.Rand) uint64 {
	g.last += 1 + uint64(r.IntN(1<<22))
	return g.last
}

// randMicros returns a random duration below max, in whole microseconds:
// every stored time is, as the console renders no finer.
func randMicros(r *rand.Rand, max int64) int64 {
	return r.Int64N(max/1000) * 1000
}

const hexDigits = "0123456789abcdef"

// randHex returns n random lower-case hex digits.
func randHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	var x uint64
	for i := range b {
		if i%16 == 0 {
			x = r.Uint64()
		}
		b[i] = hexDigits[x&15]
		x >>= 4
	}
	return string(b)
}

// uuid returns a random UUID from the seeded source; the caller holds mu.
func (e *Emulator) uuid() string {
	var b [16]byte
	u1, u2 := e.rnd.Uint64(), e.rnd.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(u1>>(8*i)), byte(u2>>(8*i))
	}
	return formatUUID(b)
}

func (e *Emulator) initCollections() {
	e.sites = siteCollection()
	e.groups = groupCollection()
	e.agents = agentCollection()
	e.threats = threatCollection()
	e.alerts = alertCollection()
	e.activities = activityCollection(e)
	e.restrictions = restrictionCollection()
	e.notes = noteCollection()
	e.timeline = timelineCollection(e)
}

const (
	day          = int64(24 * time.Hour)
	seedWindow   = int64(48 * time.Hour) // seeded threats and alerts happen in the last two days
	massUpdateAt = int64(30 * time.Minute)
)

var (
	siteNames   = []string{"Default site", "Europe", "Datacenter", "Remote Workers", "Labs", "APAC", "Retail", "Plants", "Finance", "Legacy"}
	siteSKUs    = []string{"Core", "Complete", "Control"}
	groupNames  = []string{"Default Group", "Servers", "Laptops", "Workstations", "Executives"}
	creators    = []string{"Jane Admin", "Travis Riley", "Sandeep Minhas"}
	userNames   = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	winPrefixes = []string{"FIN-LT", "HR-WS", "ENG-WS", "SALES-LT", "SRV-DC", "SRV-SQL"}
	macPrefixes = []string{"DEV-MBP", "DESIGN-MBA"}
	lnxPrefixes = []string{"web-prod", "db", "k8s-node"}
	versions    = []string{"23.4.2.14", "23.3.3.12", systemLatestAgentVersion}
)

// seed generates the console's data from the seeded source; it runs in New.
func (e *Emulator) seed(s Sizes) {
	r := e.rnd
	now := e.now()
	e.ids.last = 1_550_000_000_000_000_000 + uint64(r.Int64N(1e16))
	aid := e.ids.next(r)
	e.account = account{id: aid, idStr: formatID(aid), name: "Acme Corp"}
	e.seedSites(s, now)
	e.seedAgents(s.Agents, now)
	e.initSamples()
	e.seedThreats(s.Threats, now)
	e.seedAlerts(s.Alerts, now)
	e.seedActivities(s.Activities, now)
	e.seedRestrictions(s.Restrictions, now)
	e.seedUAM(s.UAMAlerts, now)
	e.flushActivities()
	e.hashes[HashMalicious] = HashInfo{Verdict: VerdictMalicious, Rank: "7"}
	e.hashes[HashClean] = HashInfo{Verdict: VerdictNonMalicious, Rank: "2"}
	e.hashes[HashLegacyOnly] = HashInfo{Verdict: VerdictMalicious, Rank: "9", NoVerdict: true}
}

func (e *Emulator) seedSites(s Sizes, now int64) {
	r := e.rnd
	var sites []*site
	var groups []*group
	for i := range s.Sites {
		id := e.ids.next(r)
		created := now - int64(700-i*60)*day - randMicros(r, day)
		st := &site{
			row:  row{id: id, idStr: formatID(id), created: created, updated: created + randMicros(r, 200*day)},
			name: siteNames[i], state: "active", siteType: "Paid", sku: siteSKUs[i%len(siteSKUs)],
			isDefault: i == 0, totalLicenses: 25 * (i + 1), creator: creators[i%len(creators)],
			creatorID: formatID(1170348439571106212 + uint64(i)), accountID: e.account.idStr,
			accountName: e.account.name, unlimitedExpiration: true,
			registrationToken: base64.StdEncoding.EncodeToString(fmt.Appendf(nil,
				`{"url": "https://emulator.sentinelone.net", "site_key": "%s"}`, randHex(r, 16))),
		}
		if i > 0 {
			st.description = st.name + " endpoints"
			st.siteType = "Trial"
		}
		st.bundleName, st.bundleTitle, st.bundleMajor, st.bundleMinor = "core", st.sku, 1, 4
		sites = append(sites, st)
		for j := range s.GroupsPerSite {
			gid := e.ids.next(r)
			g := &group{
				row:  row{id: gid, idStr: formatID(gid), created: created + int64(j)*day, updated: created + int64(j+1)*day},
				name: groupNames[j%len(groupNames)], site: st, typ: "static", isDefault: j == 0, inherits: true,
				creator: st.creator, creatorID: st.creatorID,
				registrationToken: base64.StdEncoding.EncodeToString(fmt.Appendf(nil,
					`{"url": "https://emulator.sentinelone.net", "site_key": "g_%s"}`, randHex(r, 16))),
			}
			if j >= len(groupNames) {
				g.name = fmt.Sprintf("%s %d", g.name, j/len(groupNames)+1)
			}
			if j > 0 {
				g.description = g.name + " of " + st.name
				g.typ = groupTypes[j%len(groupTypes)]
				if g.typ != "static" {
					g.rank = j
				}
			}
			st.groups = append(st.groups, g)
			groups = append(groups, g)
		}
	}
	e.sites.t.insert(sites...)
	e.groups.t.insert(groups...)
}

func (e *Emulator) seedAgents(n int, now int64) {
	r := e.rnd
	sites := e.sites.t.ids
	agents := make([]*agent, 0, n)
	for i := range n {
		st := sites[i%len(sites)]
		g := st.groups[r.IntN(len(st.groups))]
		id := e.ids.next(r)
		registered := now - (30+r.Int64N(400))*day
		a := &agent{
			row:  row{id: id, idStr: formatID(id), created: registered, updated: now - randMicros(r, int64(2*time.Hour))},
			site: st, group: g, isActive: true, networkStatus: netConnected, mitigationMode: "protect",
			registeredAt: registered, coreCount: 2 << r.IntN(3), totalMemory: 8192 << r.IntN(3),
			lastLoggedInUserName: userNames[r.IntN(len(userNames))], agentVersion: versions[r.IntN(len(versions))],
			domain: "ACME", externalIP: fmt.Sprintf("203.0.113.%d", 10+i%200), osArch: "64 bit",
			osStartTime: now - randMicros(r, 20*day), scanStartedAt: registered + day, scanFinishedAt: registered + day + int64(time.Hour),
			scanStatus: scanFinished,
		}
		a.cpuCount = a.coreCount
		a.lastActiveDate = a.updated
		a.isUpToDate = a.agentVersion == systemLatestAgentVersion
		switch k := r.IntN(10); {
		case k < 6:
			p := winPrefixes[r.IntN(len(winPrefixes))]
			a.computerName = fmt.Sprintf("%s-%03d", p, i+1)
			a.osType, a.osName, a.osRevision = "windows", "Windows 10 Pro", "19045"
			a.uuid, a.modelName, a.cpuID = randHex(r, 32), "Dell Inc. - Latitude 5440", "Intel(R) Core(TM) i7-1365U"
			if p[:3] == "SRV" {
				a.osName, a.osRevision, a.modelName = "Windows Server 2019 Standard", "17763", "VMware, Inc. - VMware7,1"
			}
		case k < 8:
			a.computerName = fmt.Sprintf("%s-%03d", macPrefixes[r.IntN(len(macPrefixes))], i+1)
			a.osType, a.osName, a.osRevision, a.osArch = "macos", "macOS Sonoma", "14.4.1", "ARM64"
			a.uuid, a.modelName, a.cpuID, a.domain = randHex(r, 32), "MacBookPro18,3", "Apple M1 Pro", "local"
		default:
			a.computerName = fmt.Sprintf("%s-%03d", lnxPrefixes[r.IntN(len(lnxPrefixes))], i+1)
			a.osType, a.osName, a.osRevision = "linux", "Ubuntu 22.04.4 LTS", "5.15.0-105-generic"
			a.uuid, a.modelName, a.cpuID = e.uuid(), "Amazon EC2 m5.large", "Intel(R) Xeon(R) Platinum 8259CL"
		}
		a.machineType = machineTypeOf(a.computerName, a.osType)
		a.ifaces = []netIface{{
			ID: formatID(e.ids.next(r)), Inet: []string{fmt.Sprintf("10.%d.%d.%d", 10+len(st.name), i/250, 1+i%250)},
			Inet6: []string{fmt.Sprintf("fe80::%s:%s", randHex(r, 4), randHex(r, 4))}, Name: "Ethernet0",
			Physical: fmt.Sprintf("00:50:56:%s:%s:%s", randHex(r, 2), randHex(r, 2), randHex(r, 2)),
		}}
		switch {
		case n >= 10 && i == n-1:
			a.isActive, a.isDecommissioned, a.networkStatus = false, true, netDisconnected
		case n >= 8 && i%8 == 5:
			a.networkStatus = netDisconnected // isolated earlier by an analyst
		case r.IntN(10) == 0:
			a.isActive = false
			a.lastActiveDate = now - (1+r.Int64N(20))*day
		}
		if r.IntN(6) == 0 {
			a.mitigationMode = "detect"
		}
		g.totalAgents++
		st.activeLicenses++
		agents = append(agents, a)
	}
	e.agents.t.insert(agents...)
}

func machineTypeOf(name, os string) string {
	switch {
	case os == "linux" || len(name) > 3 && name[:3] == "SRV":
		return "server"
	case os == "macos" || len(name) > 6 && name[len(name)-6:len(name)-4] == "LT":
		return "laptop"
	}
	return "desktop"
}

// seedThreats spreads n threats over the last two days in timestamp buckets
// of about eight, and gives every tenth one the same updatedAt (a mass
// resolve half an hour ago): many items share one timestamp, so paging
// across ties is exercised at every size.
func (e *Emulator) seedThreats(n int, now int64) {
	if n == 0 {
		return
	}
	r := e.rnd
	agents := e.agents.t.ids
	buckets := make([]int64, max(1, n/8))
	for i := range buckets {
		buckets[i] = now - seedWindow + randMicros(r, seedWindow-int64(10*time.Minute))
	}
	slices.Sort(buckets)
	mass := now - massUpdateAt
	ts := make([]*threat, n)
	for i := range ts {
		bi := i * len(buckets) / n
		created := buckets[bi]
		t := e.genThreat(agents[r.IntN(len(agents))], created, created)
		switch p := r.IntN(100); {
		case i%10 == 3 && created < mass:
			t.updated = mass
			t.incidentStatus, t.analystVerdict = statusResolved, verdictTruePositive
			t.mitigationStatus = mitigationDone
		case p < 35:
			t.updated = buckets[bi+r.IntN(len(buckets)-bi)]
			t.incidentStatus = []string{statusInProgress, statusResolved}[r.IntN(2)]
			t.analystVerdict = analystVerdicts[1+r.IntN(3)]
		}
		if t.mitigationStatus == mitigationDone && len(t.mitigations) == 0 {
			t.mitigations = autoMitigations(t.created)
		}
		if t.incidentStatus == statusResolved {
			t.agent.activeThreats--
		}
		ts[i] = t
	}
	e.threats.t.insert(ts...)
}

func (e *Emulator) seedAlerts(n int, now int64) {
	if n == 0 {
		return
	}
	r := e.rnd
	agents := e.agents.t.ids
	as := make([]*alert, n)
	for i := range as {
		created := now - seedWindow + randMicros(r, seedWindow-int64(time.Minute))
		if i > 0 && r.IntN(4) == 0 {
			created = as[i-1].created // a burst of alerts in one instant
		}
		a := e.genAlert(agents[r.IntN(len(agents))], created)
		if r.IntN(3) == 0 {
			a.incidentStatus = []string{statusInProgress, statusResolved}[r.IntN(2)]
			a.analystVerdict = analystVerdicts[1+r.IntN(3)]
			a.updated = min(now, a.reportedAt+randMicros(r, int64(6*time.Hour)))
		}
		as[i] = a
	}
	e.alerts.t.insert(as...)
}

func (e *Emulator) seedActivities(n int, now int64) {
	r := e.rnd
	threats := e.threats.t.ids
	acts := make([]*activity, 0, n)
	for i := range n {
		var s activitySpec
		switch k := i % 4; {
		case i == 0:
			s = activitySpec{typ: actAccountCreated, at: now - 800*day,
				primary: fmt.Sprintf("The management user %s created %s account.", creators[0], e.account.name)}
		case k == 1 && len(threats) > 0, k == 2 && len(threats) > 0:
			t := threats[r.IntN(len(threats))]
			s = activitySpec{typ: actThreatMalicious, at: t.created, agent: t.agent, threat: t, hash: t.sha1,
				primary: fmt.Sprintf("Threat %s was detected on %s.", t.name, t.agent.computerName),
				data:    map[string]any{"threatName": t.name, "computerName": t.agent.computerName}}
			if t.confidenceLevel == "suspicious" {
				s.typ = actThreatSuspect
			}
		default:
			user := userNames[r.IntN(len(userNames))]
			s = activitySpec{typ: actUserLogin, at: now - randMicros(r, seedWindow),
				primary: fmt.Sprintf("The management user %s logged in to the management console with IP Address 198.51.100.%d.", user, 1+r.IntN(250)),
				data:    map[string]any{"ipAddress": "198.51.100.7", "role": "Admin", "scopeLevel": "Account"}}
		}
		acts = append(acts, e.newActivity(s))
	}
	e.activities.t.insert(acts...)
}

func (e *Emulator) seedRestrictions(n int, now int64) {
	r := e.rnd
	st := e.sites.t.ids[0]
	type spec struct {
		hash, os string
		scope    scopeRequest
	}
	pool := e.samplePool()
	specs := []spec{
		{HashMalicious, "windows", scopeRequest{tenant: true}},
		{HashMalicious, "macos", scopeRequest{tenant: true}},
		{HashMalicious, "linux", scopeRequest{tenant: true}},
		{pool[0], "windows", scopeRequest{sites: []string{st.idStr}}},
		{pool[1], "linux", scopeRequest{accounts: []string{e.account.idStr}}},
		{pool[2], "macos", scopeRequest{groups: []string{st.groups[0].idStr}}},
	}
	for i := len(specs); i < n; i++ {
		specs = append(specs, spec{pool[r.IntN(len(pool))], osTypes[r.IntN(len(osTypes))], scopeRequest{tenant: true}})
	}
	for i, sp := range specs[:min(n, len(specs))] {
		at := now - int64(n-i)*day
		item := restrictionData{value: sp.hash, osType: sp.os, source: "user", description: "Blocked by the SOC"}
		if _, err := e.createRestrictions(item, sp.scope, at); err != nil {
			continue // a random pick duplicated an earlier item
		}
	}
}

// IDs returns the ids of the console's objects, in id order.
func (e *Emulator) IDs() IDs {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return IDs{
		Account:      e.account.idStr,
		Sites:        sortedIDs(e.sites.t),
		Groups:       sortedIDs(e.groups.t),
		Agents:       sortedIDs(e.agents.t),
		Threats:      sortedIDs(e.threats.t),
		Alerts:       sortedIDs(e.alerts.t),
		Restrictions: sortedIDs(e.restrictions.t),
		UAMAlerts:    sortedIDs(e.uam.c.t),
	}
}
