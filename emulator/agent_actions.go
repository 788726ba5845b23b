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

// moveAgent starts a network transition; the caller holds mu.
func (e *Emulator) moveAgent(a *agent, target string, now int64) {
	if a.networkStatus == target && a.pendingStatus == "" {
		return
	}
	if e.cfg.transition <= 0 {
		a.pendingStatus = ""
		e.finishMove(a, target, now)
		return
	}
	a.networkStatus = netConnecting
	if target == netDisconnected {
		a.networkStatus = netDisconnecting
	}
	if a.pendingStatus == "" {
		e.moving = append(e.moving, a)
	}
	a.pendingStatus = target
	a.pendingAt = now + int64(e.cfg.transition)/1000*1000
	e.agents.t.touch([]*agent{a}, now)
	a.changed()
	e.due(a.pendingAt)
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

// settleAgents completes due transitions and returns the agents still
// moving; the caller holds mu.
func (e *Emulator) settleAgents(now int64, next *int64) []*agent {
	kept := e.moving[:0]
	for _, a := range e.moving {
		if a.pendingStatus == "" {
			continue
		}
		if a.pendingAt <= now {
			target := a.pendingStatus
			a.pendingStatus = ""
			e.finishMove(a, target, a.pendingAt)
			continue
		}
		*next = min(*next, a.pendingAt)
		kept = append(kept, a)
	}
	return kept
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
	return AgentState{ID: a.idStr, ComputerName: a.computerName, NetworkStatus: a.networkStatus, IsActive: a.isActive}, true
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
