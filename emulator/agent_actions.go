package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

func (e *Emulator) handleAgentsConnect(w http.ResponseWriter, r *http.Request) {
	e.agentAction(w, r, netConnected)
}

func (e *Emulator) handleAgentsDisconnect(w http.ResponseWriter, r *http.Request) {
	e.agentAction(w, r, netDisconnected)
}

// agentAction moves every matched agent towards target. Disconnect is a
// "dangerous" action: its filter must name ids, groupIds or filterId. An empty
// filter on connect applies to every agent, as on the real console.
func (e *Emulator) agentAction(w http.ResponseWriter, r *http.Request, target string) {
	body, err := readAction(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	if target == netDisconnected && len(splitList(body.filter[paramIDs])) == 0 &&
		len(splitList(body.filter[paramGroupIDs])) == 0 && len(splitList(body.filter[paramFilterID])) == 0 {
		writeError(w, validation("filter: One of these filter arguments must be supplied: ids, groupIds, filterId."))
		return
	}
	n := 0
	e.mutate(func(now int64) {
		var q *listQuery[*agent]
		if q, err = e.agents.filterQuery(body.filter, now); err != nil {
			return
		}
		for _, a := range e.agents.selectAll(q) {
			if !a.isDecommissioned {
				n++
				e.moveAgent(a, target, now)
			}
		}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeData(w, affected{Affected: n})
}

// moveAgent logs the user's request (61 or 62) and sends the agent the
// command; the caller holds mu. An agent already in target state with no
// command under way has nothing to do: only the request is logged. A newer
// command supersedes one still queued, which is then never answered.
func (e *Emulator) moveAgent(a *agent, target string, now int64) {
	typ, verb := actUserReconnect, "reconnect"
	if target == netDisconnected {
		typ, verb = actUserDisconnect, "disconnect"
	}
	e.addActivity(activitySpec{
		typ: typ, at: now, agent: a,
		primary: fmt.Sprintf("The management user %s issued a %s command to the agent %s.", emulatorUser, verb, a.computerName),
		data:    map[string]any{"computerName": a.computerName},
	})
	queued := e.pendingOf(a, cmdNetwork)
	if a.networkStatus == target && len(queued) == 0 {
		return
	}
	for _, c := range queued {
		c.done = true
	}
	c := e.schedule(&command{kind: cmdNetwork, agent: a, target: target}, now)
	if a.isActive && c.due <= now {
		c.done = true
		e.answer(c, now)
		return
	}
	// The agent has not reported yet: the console shows the transition.
	a.networkStatus = netConnecting
	if target == netDisconnected {
		a.networkStatus = netDisconnecting
	}
	e.agents.t.touch([]*agent{a}, now)
	a.changed()
}

// answerNetwork is the agent's report on a network command: the final state
// and the activity the console logs then, or the failure; the caller holds mu.
func (e *Emulator) answerNetwork(c *command, o Outcome, at int64) {
	a := c.agent
	if o != OutcomeSuccess {
		// A failed isolation leaves the agent connected; a failed
		// reconnection leaves it isolated.
		a.networkStatus = netConnected
		if c.target == netConnected {
			a.networkStatus = netDisconnected
		}
		e.agents.t.touch([]*agent{a}, at)
		a.changed()
		if c.target == netDisconnected {
			e.addActivity(activitySpec{
				typ: actAgentIsolateFailed, at: at, agent: a,
				primary: fmt.Sprintf("Agent %s was unable to disconnect from network.", a.computerName),
				data:    map[string]any{"computerName": a.computerName},
			})
		}
		return
	}
	e.finishMove(a, c.target, at)
}

// finishMove puts an agent in its final network state and logs the activity
// the console logs when the agent reports back.
func (e *Emulator) finishMove(a *agent, target string, at int64) {
	a.networkStatus = target
	e.agents.t.touch([]*agent{a}, at)
	a.changed()
	typ, verb := actAgentConnect, "connected to"
	if target == netDisconnected {
		typ, verb = actAgentDisconnect, "disconnected from"
	}
	e.addActivity(activitySpec{
		typ: typ, at: at, agent: a,
		primary: fmt.Sprintf("Agent %s was %s network.", a.computerName, verb),
		data:    map[string]any{"computerName": a.computerName},
	})
}

// Agent returns an agent's network status.
func (e *Emulator) Agent(id string) (AgentState, bool) {
	e.settle()
	e.mu.RLock()
	defer e.mu.RUnlock()
	a, ok := lookup(e.agents.t, id)
	if !ok {
		return AgentState{}, false
	}
	return AgentState{ID: a.idStr, ComputerName: a.computerName, NetworkStatus: a.networkStatus, IsActive: a.isActive, ScanStatus: a.scanStatus}, true
}

// lookup finds a row by its decimal id.
func lookup[R record](t *table[R], id string) (R, bool) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		var zero R
		return zero, false
	}
	return t.get(n)
}

func sortedIDs[R record](t *table[R]) []string {
	out := make([]string, len(t.ids))
	for i, r := range t.ids {
		out[i] = r.base().idStr
	}
	return slices.Clip(out)
}
