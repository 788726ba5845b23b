package emulator

import (
	"fmt"
	"net/http"
)

// Full disk scans (POST /agents/actions/initiate-scan and abort-scan) and
// the agent count (GET /agents/count), response-actions.md §5 and §8.

// handleInitiateScan starts a full disk scan on every agent the filter
// matches (all of them for an empty filter, as the console does; a
// decommissioned agent is not applicable): activity 71 at once, then the
// agent's 90 and scanStatus started after the action delay, then 92 and
// finished after the scan duration.
func (e *Emulator) handleInitiateScan(w http.ResponseWriter, r *http.Request) {
	e.scanAction(w, r, cmdScanStart, actScanInitiated, "initiated a full disk scan on")
}

// handleAbortScan aborts the full disk scan of every agent the filter
// matches: activity 72 at once; an agent whose scan runs then answers with
// 91 and scanStatus aborted. An idle agent is counted in affected but logs
// nothing more (response-actions.md §5.3: whether the console counts it is
// unknown).
func (e *Emulator) handleAbortScan(w http.ResponseWriter, r *http.Request) {
	e.scanAction(w, r, cmdScanAbort, actScanAbortedByUser, "aborted the full disk scan on")
}

func (e *Emulator) scanAction(w http.ResponseWriter, r *http.Request, kind cmdKind, requested int, verb string) {
	body, err := readAction(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	n := 0
	e.mutate(func(now int64) {
		var q *listQuery[*agent]
		if q, err = e.agents.filterQuery(body.filter, now); err != nil {
			return
		}
		for _, a := range e.agents.selectAll(q) {
			if a.isDecommissioned {
				continue
			}
			n++
			e.addActivity(activitySpec{
				typ: requested, at: now, agent: a,
				primary: fmt.Sprintf("The management user %s %s %s.", emulatorUser, verb, a.computerName),
				data:    map[string]any{"computerName": a.computerName},
			})
			c := e.schedule(&command{kind: kind, agent: a}, now)
			if a.isActive && c.due <= now {
				c.done = true
				e.answer(c, now)
			}
		}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, affected{Affected: n})
}

// answerScan is the agent's report on a scan command; the caller holds mu.
func (e *Emulator) answerScan(c *command, o Outcome, at int64) {
	a := c.agent
	switch {
	case c.kind == cmdScanStart && o == OutcomeSuccess:
		for _, f := range e.pendingOf(a, cmdScanFinish) {
			f.done = true // a scan started again replaces the running one
		}
		a.scanStatus, a.scanStartedAt = scanStarted, at
		e.scanActivity(a, actAgentScanStarted, "started", at)
		f := &command{kind: cmdScanFinish, agent: a}
		e.cmdSeq++
		f.seq, f.due = e.cmdSeq, at+int64(e.cfg.scanDuration)/1000*1000
		e.commands = append(e.commands, f)
		e.due(f.due)
	case c.kind == cmdScanStart:
		a.scanStatus, a.scanAbortedAt = scanAborted, at
		e.scanActivity(a, actAgentScanAborted, "aborted", at)
	case c.kind == cmdScanFinish:
		a.scanStatus, a.scanFinishedAt = scanFinished, at
		e.scanActivity(a, actAgentScanCompleted, "completed", at)
	case c.kind == cmdScanAbort && o == OutcomeSuccess && a.scanStatus == scanStarted:
		for _, f := range e.pendingOf(a, cmdScanFinish) {
			f.done = true
		}
		a.scanStatus, a.scanAbortedAt = scanAborted, at
		e.scanActivity(a, actAgentScanAborted, "aborted", at)
	default:
		return // an idle agent, or an abort that failed: nothing changes
	}
	e.agents.t.touch([]*agent{a}, at)
	a.changed()
}

func (e *Emulator) scanActivity(a *agent, typ int, verb string, at int64) {
	e.addActivity(activitySpec{
		typ: typ, at: at, agent: a,
		primary: fmt.Sprintf("Agent %s %s a full disk scan.", a.computerName, verb),
		data:    map[string]any{"computerName": a.computerName},
	})
}

// handleAgentsCount answers GET /agents/count: how many agents the query's
// filters (those of GET /agents; paging and sorting ignored) match.
func (e *Emulator) handleAgentsCount(w http.ResponseWriter, r *http.Request) {
	e.settle()
	e.mu.RLock()
	q, err := e.agents.filterQuery(r.URL.Query(), e.now())
	total := 0
	if err == nil {
		total = len(e.agents.selectAll(q))
	}
	e.mu.RUnlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, struct {
		Total int `json:"total"`
	}{total})
}
