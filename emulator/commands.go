package emulator

import (
	"cmp"
	"fmt"
	"net/http"
)

// Response actions are asynchronous on a real console (response-actions.md
// §1 and §11): the console accepts the call, logs a "user requested"
// activity at once, and the agent carries the command out later, logging
// its confirmation or failure, or never when it is offline. The emulator
// models that with a queue of commands: each is answered when the clock
// reaches its due time and its agent is active (isActive, "connected to the
// management console"); a command of an inactive agent waits until
// SetAgentActive brings the agent back, then the action delay runs again.
//
// How each command ends is decided when it is answered, by the Outcome set
// with SetOutcome for its threat or, failing that, its agent.

// Outcome is how an agent answers a response action; see SetOutcome.
type Outcome int

// Outcomes. What each means for each action is in the documentation of
// SetOutcome.
const (
	// OutcomeSuccess: the agent carries the action out (the default).
	OutcomeSuccess Outcome = iota
	// OutcomeFailure: the agent reports that the action failed.
	OutcomeFailure
	// OutcomePendingReboot: a mitigation waits for a reboot.
	OutcomePendingReboot
	// OutcomeNotFound: the agent cannot find the threat's file to mitigate.
	OutcomeNotFound
	// OutcomeNever: the agent never answers, as if it were offline.
	OutcomeNever
)

var outcomeNames = [...]string{"success", "failure", "pending-reboot", "not-found", "never"}

// String returns the outcome's name.
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// cmdKind is what a queued command does when the agent answers.
type cmdKind uint8

const (
	cmdNetwork    cmdKind = iota + 1 // connect or disconnect: target is the final networkStatus
	cmdMitigate                      // a threat mitigation: action is the report action name
	cmdScanStart                     // start a full disk scan
	cmdScanFinish                    // a running scan completes
	cmdScanAbort                     // abort a running scan
	cmdFetchFile                     // upload a threat's file
)

// command is one queued agent command.
type command struct {
	kind   cmdKind
	seq    uint64 // order of creation, the tie-break of equal due times
	agent  *agent
	threat *threat // mitigations and file fetches
	target string  // cmdNetwork: connected or disconnected; cmdMitigate: the report action
	batch  string  // cmdFetchFile: the commandBatchUuid of its activities
	due    int64   // when the agent answers, unix ns; reset when an inactive agent comes back
	done   bool    // answered or superseded
}

// schedule queues a command answered after the action delay; the caller
// holds mu.
func (e *Emulator) schedule(c *command, now int64) *command {
	e.cmdSeq++
	c.seq = e.cmdSeq
	c.due = now + int64(e.cfg.transition)/1000*1000
	e.commands = append(e.commands, c)
	if c.agent.isActive {
		e.due(c.due)
	}
	return c
}

// settleCommands answers every command that is due and whose agent is
// active, one at a time in (due, creation) order, so that a command an
// answer queues (a scan's completion) or supersedes is taken into account
// exactly as if the clock had run through each due time; then it drops the
// answered commands and lowers *next to the earliest one still waiting for
// the clock. The caller holds mu.
func (e *Emulator) settleCommands(now int64, next *int64) {
	for {
		var first *command
		for _, c := range e.commands {
			if c.done || !c.agent.isActive || c.due > now {
				continue
			}
			if first == nil || cmp.Or(cmp.Compare(c.due, first.due), cmp.Compare(c.seq, first.seq)) < 0 {
				first = c
			}
		}
		if first == nil {
			break
		}
		first.done = true
		e.answer(first, first.due)
	}
	kept := e.commands[:0]
	for _, c := range e.commands {
		if c.done {
			continue
		}
		if c.agent.isActive {
			*next = min(*next, c.due)
		}
		kept = append(kept, c)
	}
	clear(e.commands[len(kept):])
	e.commands = kept
}

// answer carries out c as its agent reports it at at; the caller holds mu.
func (e *Emulator) answer(c *command, at int64) {
	o := e.outcomeOf(c)
	if o == OutcomeNever {
		return
	}
	switch c.kind {
	case cmdNetwork:
		e.answerNetwork(c, o, at)
	case cmdMitigate:
		e.answerMitigation(c, o, at)
	case cmdScanStart, cmdScanFinish, cmdScanAbort:
		e.answerScan(c, o, at)
	case cmdFetchFile:
		e.answerFetchFile(c, o, at)
	}
}

// outcomeOf is the outcome set for c's threat, else for its agent; the
// caller holds mu.
func (e *Emulator) outcomeOf(c *command) Outcome {
	if c.threat != nil {
		if o, ok := e.outcomes[c.threat.idStr]; ok {
			return o
		}
	}
	return e.outcomes[c.agent.idStr]
}

// pendingOf returns the agent's queued commands of kind, not yet answered;
// the caller holds mu.
func (e *Emulator) pendingOf(a *agent, kind cmdKind) []*command {
	var out []*command
	for _, c := range e.commands {
		if !c.done && c.agent == a && c.kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// SetOutcome decides how the agent answers the response actions on id, a
// threat or an agent id, from now on (commands already queued included).
// An outcome set for a threat wins over its agent's. The default is
// OutcomeSuccess; OutcomeNever makes the agent keep silent, as an offline
// one does. Per action (the activity types are those of
// response-actions.md §11):
//
//	threats.mitigate  success 2001-2004/2026; failure 2006-2009/2027; not-found the
//	                  failure type with the report's groupNotFound set; pending-reboot
//	                  2031-2035; mitigationStatus[] moves sent → success/failed/pending-reboot
//	agents.disconnect success 1001 and networkStatus disconnected; any other outcome
//	                  2010 and networkStatus back to connected
//	agents.connect    success 1002 and connected; any other outcome: back to
//	                  disconnected, no activity (none is documented for it)
//	scan start        success 90 and scanStatus started, 92 when the scan ends; any
//	                  other outcome 91 and scanStatus aborted
//	scan abort        success 91 and scanStatus aborted when a scan runs (an idle
//	                  agent logs nothing); any other outcome: the scan goes on
//	fetch-file        success 86 with the download path; any other outcome: nothing
//	                  (no failure activity is documented)
//
// It returns ErrNotFound for an id that is neither a threat nor an agent.
func (e *Emulator) SetOutcome(id string, o Outcome) error {
	if o < OutcomeSuccess || o > OutcomeNever {
		return fmt.Errorf("%w: outcome %d", ErrInvalid, int(o))
	}
	var err error
	e.mutate(func(int64) {
		_, isThreat := lookup(e.threats.t, id)
		_, isAgent := lookup(e.agents.t, id)
		if !isThreat && !isAgent {
			err = fmt.Errorf("%w: no threat or agent %s", ErrNotFound, id)
			return
		}
		e.outcomes[id] = o
	})
	return err
}

// SetAgentActive marks an agent online (active) or offline. An offline
// agent answers no command: its commands wait, and when it comes back each
// is answered after the action delay from then. The agent's isActive,
// lastActiveDate (when it comes back) and updatedAt change. It returns
// ErrNotFound for an unknown id.
func (e *Emulator) SetAgentActive(id string, active bool) error {
	err := fmt.Errorf("%w: agent %s", ErrNotFound, id)
	e.mutate(func(now int64) {
		a, ok := lookup(e.agents.t, id)
		if !ok {
			return
		}
		err = nil
		if a.isActive == active {
			return
		}
		a.isActive = active
		if active {
			a.lastActiveDate = now
			for _, c := range e.commands {
				if !c.done && c.agent == a {
					c.due = max(c.due, now+int64(e.cfg.transition)/1000*1000)
					e.due(c.due)
				}
			}
		}
		e.agents.t.touch([]*agent{a}, now)
		a.changed()
	})
	return err
}

// responseRoutes adds the response-action endpoints to m; handle registers
// an authenticated route as routes does.
func (e *Emulator) responseRoutes(m *http.ServeMux, handle func(pattern string, h func(http.ResponseWriter, *http.Request))) {
	handle("POST "+PathThreatMitigate+"{action}", e.handleThreatMitigate)
	handle("POST "+PathThreatNotes, e.handleThreatNotesAdd)
	handle("GET "+PathThreats+"/{threat_id}"+pathNotesSuffix, e.handleThreatNotesList)
	handle("GET "+PathThreats+"/{threat_id}"+pathTimelineSuffix, e.handleThreatTimeline)
	handle("POST "+PathThreatFetchFile, e.handleThreatFetchFile)
	handle("POST "+PathAgentsInitiateScan, e.handleInitiateScan)
	handle("POST "+PathAgentsAbortScan, e.handleAbortScan)
	handle("GET "+PathAgentsCount, e.handleAgentsCount)
	if !e.cfg.noTokenDetails {
		// Not behind the token check: the token is in the body.
		m.HandleFunc("POST "+APIPrefix+PathAPITokenDetails, e.handleAPITokenDetails)
	}
}
