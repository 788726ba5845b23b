package emulator

import (
	"fmt"
	"slices"
)

// alertTriggerActions (uam-reference.md §7): the filter selects the alerts
// (a null filter selects every alert in scope, as the schema says, so that a
// test catches a client that sends one), each action runs on each selected
// alert with a per-alert success, skip or failure, and a selection past the
// settings' thresholds is scheduled for later or refused whole.

// uamPending is a scheduled alertTriggerActions request.
type uamPending struct {
	at      int64
	actions []any
	alerts  []*uamAlert
}

// resolveTrigger answers alertTriggerActions; the caller holds mu
// exclusively.
func (e *Emulator) resolveTrigger(args map[string]any, now int64) (any, *fetchError) {
	s, set := e.uam, e.cfg.uam
	actions, _ := args["actions"].([]any)
	q := &listQuery[*uamAlert]{now: now, sort: sortField[*uamAlert]{native: nativeID}}
	var named []string // ids the filter names, for ALERT_NOT_FOUND
	if f, _ := args["filter"].(map[string]any); f != nil {
		groups, _ := f["or"].([]any)
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			ands, _ := gm["and"].([]any)
			for _, raw := range ands {
				c, err := compileFilter(raw)
				if err != nil {
					return nil, err
				}
				for _, id := range c.ids {
					if !uuidRe.MatchString(id) {
						return nil, fetchErrorf("Invalid UUID: %q", id)
					}
					named = append(named, id)
				}
			}
		}
		pred, _, err := e.compileOr(f)
		if err != nil {
			return nil, err
		}
		q.preds = append(q.preds, pred)
	}
	if err := e.scopePreds(args, q); err != nil {
		return nil, err
	}
	var selected []*uamAlert
	for _, a := range s.c.t.ids {
		if q.match(a) {
			selected = append(selected, a)
		}
	}
	switch {
	case len(selected) > set.LimitThreshold:
		return obj{"__typename": "TriggerActionsError", "errors": []any{obj{
			"errorMessage": fmt.Sprintf("The request selects %d alerts; at most %d are allowed", len(selected), set.LimitThreshold),
			"errorPayload": obj{"__typename": "ActionsErrorLimitPayload", "limit": set.LimitThreshold},
		}}}, nil
	case len(selected) > set.ScheduleThreshold:
		s.execSeq++
		exec := fmt.Sprintf("00000000-0000-7000-8000-%012x", 0xe0000+s.execSeq)
		at := ms(now) + int64(set.ScheduleDelay)
		if set.ScheduleDelay == 0 {
			e.applyActions(actions, selected, ms(now))
		} else {
			s.pending = append(s.pending, uamPending{at: at, actions: actions, alerts: selected})
			e.due(at)
		}
		return obj{"__typename": "TriggerActionsScheduled", "executionId": exec, "bulkActionTriggerId": exec}, nil
	}
	results := e.applyActions(actions, selected, ms(now))
	// Ids the filter names that the console does not have: an
	// ALERT_NOT_FOUND failure under every action, as in the fixtures.
	var missing []string
	for _, id := range named {
		if a, ok := s.byStr[id]; (!ok || !e.uamVisible(a, now)) && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	for _, r := range results {
		fails := r["failure"].([]any)
		for _, id := range missing {
			fails = append(fails, obj{"id": id, "errorMessage": nil, "errorType": "ALERT_NOT_FOUND"})
		}
		r["failure"] = fails
	}
	out := make([]any, len(results))
	for i, r := range results {
		out[i] = r
	}
	return obj{"__typename": "ActionsTriggered", "actions": out}, nil
}

// applyActions runs actions on alerts at the time at and returns one
// TriggeredAction per action; the caller holds mu exclusively.
func (e *Emulator) applyActions(actions []any, alerts []*uamAlert, at int64) []obj {
	var results []obj
	var touched []*uamAlert
	for _, raw := range actions {
		act, _ := raw.(map[string]any)
		id, _ := act["id"].(string)
		payload, _ := act["payload"].(map[string]any)
		success, skip, failure := []any{}, []any{}, []any{}
		value := func(key string) (string, bool) {
			p, _ := payload[key].(map[string]any)
			v, ok := p["value"].(string)
			return v, ok
		}
		for _, a := range alerts {
			fail := func(typ, msg string) {
				failure = append(failure, obj{"id": a.idStr, "errorType": typ, "errorMessage": msg})
			}
			skipped := func(typ, msg string) { skip = append(skip, obj{"id": a.idStr, "skipType": typ, "skipMessage": msg}) }
			known := slices.Contains([]string{"S1/alert/statusUpdate", "S1/alert/analystVerdictUpdate", "S1/alert/addNote", "S1/alert/setTicketId"}, id)
			if known && a.src.mobile {
				fail("MISSING_PERMISSION", "Missing UAM manage permissions")
				continue
			}
			switch id {
			case "S1/alert/statusUpdate":
				v, ok := value("status")
				switch {
				case !ok:
					fail("ILLEGAL_ARGUMENTS", "payload.status is required")
				case a.status == v:
					skipped("NO_CHANGE", "Alert already has the requested status")
				default:
					a.status = v
					touched = append(touched, a)
					success = append(success, obj{"id": a.idStr})
				}
			case "S1/alert/analystVerdictUpdate":
				v, ok := value("analystVerdict")
				switch {
				case !ok:
					fail("ILLEGAL_ARGUMENTS", "payload.analystVerdict is required")
				case a.verdict == v:
					skipped("NO_CHANGE", "Alert already has the requested analyst verdict")
				default:
					a.verdict = v
					touched = append(touched, a)
					success = append(success, obj{"id": a.idStr})
				}
			case "S1/alert/addNote":
				text, ok := value("note")
				typ := "PLAIN_TEXT"
				if fn, _ := payload["formattedNote"].(map[string]any); fn != nil {
					text, ok = fn["text"].(string)
					if t, _ := fn["type"].(string); t != "" {
						typ = t
					}
				}
				if !ok || text == "" {
					fail("ILLEGAL_ARGUMENTS", "payload.note is required")
					continue
				}
				// Decision: a note does not move updatedAt (which edits do is
				// not documented, uam-reference.md §5); status and verdict do.
				e.addNote(a, text, typ, at)
				success = append(success, obj{"id": a.idStr})
			case "S1/alert/setTicketId":
				v, ok := value("ticketId")
				switch {
				case !ok:
					fail("ILLEGAL_ARGUMENTS", "payload.ticketId is required")
				case a.ticket == v:
					skipped("NO_CHANGE", "Alert already has the requested ticket id")
				default:
					a.ticket = v
					touched = append(touched, a)
					success = append(success, obj{"id": a.idStr})
				}
			default:
				skipped("NOT_SUPPORTED", "The action is not supported for the alert")
			}
		}
		results = append(results, obj{"actionId": id, "alertCount": len(success), "success": success, "skip": skip, "failure": failure})
	}
	if len(touched) > 0 {
		slices.SortFunc(touched, func(a, b *uamAlert) int { return int(a.seq) - int(b.seq) })
		touched = slices.Compact(touched)
		e.uam.c.t.touch(touched, at)
	}
	return results
}
