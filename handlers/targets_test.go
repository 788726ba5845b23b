package handlers

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/sentinelone"
)

// The guardrail property (DESIGN.md §11): no request, valid or not, makes
// s1bridge send a mutating call whose filter could select more than the
// ids the request named. Random requests (valid ones, and ones invalid in
// every way the generators know) go through every mutating action of All
// against the emulator, and every mutating call the emulator recorded is
// checked:
//
//   - a call with a filter, for an action that names targets: the filter's
//     only key is ids, a non-empty list, every id one the request named;
//   - a call with a filter for blocklist.add (which names a hash, not
//     targets): the filter is the request's scope (tenant, or the scope ids
//     the request named), never anything else;
//   - a call without a filter (DELETE /restrictions): data.ids non-empty,
//     each named by the request, or, for a delete by hash, an entry of that
//     hash found before the request;
//   - a GraphQL mutation (Unified Alerts' alertTriggerActions): its
//     variables' filter selects by id only (checkUAMFilter), every id one
//     the request named;
//   - a refused request makes no call at all.

// propMaxTargets is the bound of the property test: small, so that the
// generators often go past it.
const propMaxTargets = 6

// propIDs are the ids a generator draws from.
type propIDs struct {
	agents, threats, alerts, restrictions, sites, groups []string
	hashes                                               []string
	uamAlerts                                            []string // UUIDs
}

// pick returns between lo and hi ids drawn from pool, with now and then an
// id the console does not have or one given twice.
func pick(r *rand.Rand, pool []string, lo, hi int) []string {
	n := lo + r.IntN(hi-lo+1)
	out := make([]string, 0, n)
	for range n {
		switch r.IntN(12) {
		case 0:
			out = append(out, fmt.Sprint(1_000_000_000_000_000_000+r.Uint64N(1e17))) // unknown to the console
		case 1:
			if len(out) > 0 {
				out = append(out, out[r.IntN(len(out))]) // twice
				continue
			}
			fallthrough
		default:
			out = append(out, pool[r.IntN(len(pool))])
		}
	}
	return out
}

// badIDs returns an id list that is wrong in one of many ways.
func badIDs(r *rand.Rand, pool []string) any {
	switch r.IntN(8) {
	case 0:
		return []string{}
	case 1:
		return nil
	case 2:
		return []string{pool[0], "abc"}
	case 3:
		return []string{"99999999999999999"}
	case 4:
		return []any{json.Number(pool[0])}
	case 5:
		return pool[0] // a string, not a list
	case 6:
		return []string{""}
	default:
		return pick(rand.New(rand.NewPCG(r.Uint64(), 1)), pool, propMaxTargets+1, propMaxTargets+10) // over the bound
	}
}

// uamIDs is ids for Unified Alerts, whose ids are UUIDs: a valid list most
// of the time (now and then with a UUID the console does not have), a bad
// one otherwise (badIDs' numeric ids are not UUIDs; the UAM actions refuse
// an id given twice, so pick's repeats are bad ones too).
func uamIDs(r *rand.Rand, pool []string) any {
	if r.IntN(4) == 0 {
		bad := badIDs(r, pool)
		if l, ok := bad.([]any); ok {
			l[0] = json.Number("1") // a number, not a string: a UUID is not a JSON number
		}
		return bad
	}
	l := pick(r, pool, 1, propMaxTargets/2) // short lists: fewer repeats, so that enough pass
	for i, id := range l {
		if !slices.Contains(pool, id) { // pick's id unknown to the console
			l[i] = fmt.Sprintf("%08x-%04x-7000-8000-%012x", r.Uint32(), r.IntN(1<<16), r.Uint64N(1<<48))
		}
	}
	return l
}

// ids returns a valid id list most of the time, a bad one otherwise.
func ids(r *rand.Rand, pool []string) any {
	if r.IntN(4) == 0 {
		return badIDs(r, pool)
	}
	return pick(r, pool, 1, propMaxTargets)
}

// oneOf returns one of vs.
func oneOf[T any](r *rand.Rand, vs ...T) T { return vs[r.IntN(len(vs))] }

// extra adds, now and then, a member that would widen the selection if it
// were passed on, or a mistyped one.
func extra(r *rand.Rand, m map[string]any, p propIDs) {
	switch r.IntN(16) {
	case 0:
		m["filter"] = map[string]any{}
	case 1:
		m["siteIds"] = []string{p.sites[0]}
	case 2:
		m["query"] = "SRV"
	case 3:
		m["groupIds"] = []string{p.groups[0]}
	case 4:
		m["AgentIds"] = []string{p.agents[0]}
	}
}

// propGenerators make one random request per mutating action.
var propGenerators = map[string]func(r *rand.Rand, p propIDs) map[string]any{
	ActionAgentsConnect:    func(r *rand.Rand, p propIDs) map[string]any { return map[string]any{"agentIds": ids(r, p.agents)} },
	ActionAgentsDisconnect: func(r *rand.Rand, p propIDs) map[string]any { return map[string]any{"agentIds": ids(r, p.agents)} },
	ActionAgentsScanStart:  func(r *rand.Rand, p propIDs) map[string]any { return map[string]any{"agentIds": ids(r, p.agents)} },
	ActionAgentsScanAbort:  func(r *rand.Rand, p propIDs) map[string]any { return map[string]any{"agentIds": ids(r, p.agents)} },
	ActionThreatsUpdate: func(r *rand.Rand, p propIDs) map[string]any {
		m := map[string]any{"threatIds": ids(r, p.threats)}
		if r.IntN(3) > 0 {
			m["incidentStatus"] = oneOf(r, "unresolved", "in_progress", "resolved", "closed")
		}
		if r.IntN(2) == 0 {
			m["analystVerdict"] = oneOf(r, "true_positive", "false_positive", "suspicious", "undefined", "benign")
		}
		return m
	},
	ActionAlertsUpdate: func(r *rand.Rand, p propIDs) map[string]any {
		m := map[string]any{"alertIds": ids(r, p.alerts)}
		if r.IntN(3) > 0 {
			m["analystVerdict"] = oneOf(r, "true_positive", "false_positive", "suspicious", "TRUE_POSITIVE")
		}
		if r.IntN(2) == 0 {
			m["incidentStatus"] = oneOf(r, "unresolved", "in_progress", "resolved", "done")
		}
		return m
	},
	ActionThreatsMitigate: func(r *rand.Rand, p propIDs) map[string]any {
		return map[string]any{"threatIds": ids(r, p.threats),
			"action": oneOf(r, "kill", "quarantine", "remediate", "rollback_remediation", "un_quarantine", "network_quarantine", "un-quarantine", "")}
	},
	ActionThreatsNotesAdd: func(r *rand.Rand, p propIDs) map[string]any {
		return map[string]any{"threatIds": ids(r, p.threats), "text": oneOf(r, "contained by SOAR", "line one\nline two", "ok", "x", strings.Repeat("n", 4097))}
	},
	ActionThreatsFetchFile: func(r *rand.Rand, p propIDs) map[string]any {
		return map[string]any{"threatIds": ids(r, p.threats), "password": oneOf(r, testPassword, testPassword, "An0ther-Secret", "short1!A", "no-upper-case-1", "NoSymbols1234")}
	},
	ActionUAMAlertsUpdate: func(r *rand.Rand, p propIDs) map[string]any {
		m := map[string]any{"alertIds": uamIDs(r, p.uamAlerts)}
		if r.IntN(3) > 0 {
			m["status"] = oneOf(r, "new", "in_progress", "resolved", "in_progress", "resolved", "closed", "IN_PROGRESS")
		}
		if r.IntN(2) == 0 {
			m["analystVerdict"] = oneOf(r, "true_positive_malware", "false_positive_benign", "undefined", "true_positive_phishing_attack", "true_positive", "")
		}
		return m
	},
	ActionUAMAlertsNotesAdd: func(r *rand.Rand, p propIDs) map[string]any {
		return map[string]any{"alertIds": uamIDs(r, p.uamAlerts), "text": oneOf(r, "triaged by SOAR", "line one\nline two", "x", "ok", "", strings.Repeat("n", 4097))}
	},
	ActionBlocklistDelete: func(r *rand.Rand, p propIDs) map[string]any {
		switch r.IntN(5) {
		case 0:
			return map[string]any{"hash": oneOf(r, p.hashes...)}
		case 1:
			return map[string]any{"hash": oneOf(r, p.hashes...), "scope": oneOf[any](r, map[string]any{"tenant": true},
				map[string]any{"siteIds": []string{p.sites[0]}}, map[string]any{"groupIds": []string{}}, map[string]any{})}
		case 2:
			return map[string]any{"ids": ids(r, p.restrictions), "hash": p.hashes[0]}
		}
		return map[string]any{"ids": ids(r, p.restrictions)}
	},
	ActionBlocklistAdd: func(r *rand.Rand, p propIDs) map[string]any {
		m := map[string]any{"hash": oneOf(r, append(p.hashes, "xyz", strings.Repeat("a", 64))...)}
		switch r.IntN(6) {
		case 0:
			m["scope"] = map[string]any{"siteIds": pick(r, p.sites, 1, 2)}
		case 1:
			m["scope"] = map[string]any{"groupIds": pick(r, p.groups, 1, 2)}
		case 2:
			m["scope"] = map[string]any{"tenant": true}
		case 3:
			m["scope"] = oneOf[any](r, map[string]any{}, map[string]any{"tenant": false}, map[string]any{"tenant": true, "siteIds": []string{p.sites[0]}})
		}
		if r.IntN(2) == 0 {
			m["osTypes"] = oneOf[any](r, []string{"windows"}, []string{"linux", "macos"}, []string{}, []string{"solaris"})
		}
		return m
	},
}

// checker checks the mutating calls one request made.
type checker struct {
	t *testing.T
	e *emulator.Emulator
	// entries maps a hash to the blocklist entries it had before the
	// request (every scope the token sees).
	entries func(t testing.TB, hash string) []string
}

// run sends data to action a and checks every mutating call it made.
func (c checker) run(a Action, env *Env, data []byte) {
	t := c.t
	t.Helper()
	req, refused := decodeRequest(a, data)
	if refused == nil {
		if err := checkTargets(env, req); err != nil {
			refused = err
		}
	}
	var allowed []string // the ids the request named, or the entries of its hash
	var scope map[string]any
	var hash string
	if req != nil {
		if tg, ok := req.(Targeted); ok {
			_, allowed = tg.Targets()
		}
		switch r := req.(type) {
		case *BlocklistDeleteRequest:
			if r.Hash != "" {
				hash, allowed = r.Hash, c.entries(t, r.Hash)
			}
		case *BlocklistAddRequest:
			b, _ := json.Marshal(r.Scope)
			_ = json.Unmarshal(b, &scope)
		}
	}
	c.e.ResetRequests()
	_, herr := run(t, env, a.Name, string(data))
	if refused != nil && herr == nil {
		t.Fatalf("%s %s: accepted by Handle, refused by decoding: %v", a.Name, data, refused)
	}
	calls := recorded(t, c.e)
	if refused != nil && len(calls) != 0 {
		t.Fatalf("%s %s: refused (%v) but made %d calls", a.Name, data, refused, len(calls))
	}
	for _, call := range calls {
		if call.Method == http.MethodGet {
			continue
		}
		where := fmt.Sprintf("%s %s: %s %s %s", a.Name, data, call.Method, call.Path, call.Raw)
		if call.Path == sentinelone.PathUAMGraphQL {
			if err := checkUAMFilter(call.Raw, allowed); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			continue
		}
		switch {
		case call.Filter != nil && a.Name == ActionBlocklistAdd:
			want := scope
			if len(want) == 0 {
				want = map[string]any{"tenant": true}
			}
			if fmt.Sprint(call.Filter) != fmt.Sprint(want) {
				t.Fatalf("%s: filter %v is not the request's scope %v", where, call.Filter, want)
			}
		case call.Filter != nil:
			got, only := filterIDs(call.Filter)
			if !only || len(got) == 0 {
				t.Fatalf("%s: filter %v is not a non-empty ids list alone", where, call.Filter)
			}
			for _, id := range got {
				if !slices.Contains(allowed, id) {
					t.Fatalf("%s: filter id %s not named by the request (%v)", where, id, allowed)
				}
			}
		case call.Method == http.MethodDelete:
			raw, _ := call.Data["ids"].([]any)
			if len(raw) == 0 {
				t.Fatalf("%s: a delete with no ids", where)
			}
			for _, v := range raw {
				if id, _ := v.(string); !slices.Contains(allowed, id) {
					t.Fatalf("%s: deletes %v, not named by the request nor an entry of hash %q (%v)", where, v, hash, allowed)
				}
			}
		default:
			t.Fatalf("%s: a mutating call with neither filter nor data.ids", where)
		}
	}
}

// checkUAMFilter checks one request to the Unified Alerts GraphQL path: a
// query reads and passes; a mutation's variables must hold a filter of
// the form {"or":[{"and":[{"fieldId":"id","stringIn":{"values":[ids]}}]}]}
// (any number of such groups), with every id non-null and in allowed, and
// nothing else: no other field, comparator, negation or group that could
// select an alert the request did not name. A null filter selects every
// alert.
func checkUAMFilter(body []byte, allowed []string) error {
	var req struct {
		Query     string                     `json:"query"`
		Variables map[string]json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("GraphQL body: %w", err)
	}
	doc, gerr := parser.ParseQuery(&ast.Source{Input: req.Query})
	if gerr != nil {
		return fmt.Errorf("GraphQL document: %w", gerr)
	}
	mutation := false
	for _, op := range doc.Operations {
		mutation = mutation || op.Operation == ast.Mutation
	}
	if !mutation {
		return nil
	}
	var f struct {
		Or []struct {
			And []map[string]json.RawMessage `json:"and"`
		} `json:"or"`
	}
	raw := req.Variables["filter"]
	if err := decodeStrict(raw, &f); err != nil || len(f.Or) == 0 {
		return fmt.Errorf("mutation filter %s is not a non-empty or of ands (%v)", raw, err)
	}
	for _, g := range f.Or {
		if len(g.And) != 1 {
			return fmt.Errorf("mutation filter %s: a group of %d comparisons, want the ids alone", raw, len(g.And))
		}
		c := g.And[0]
		var in struct {
			Values []*string `json:"values"`
		}
		if len(c) != 2 || string(c["fieldId"]) != `"id"` || decodeStrict(c["stringIn"], &in) != nil || len(in.Values) == 0 {
			return fmt.Errorf("mutation filter %s: want {fieldId:id, stringIn:{values:[ids]}} and nothing else", raw)
		}
		for _, v := range in.Values {
			if v == nil || !slices.Contains(allowed, *v) {
				return fmt.Errorf("mutation filter %s: id %v not named by the request (%v)", raw, v, allowed)
			}
		}
	}
	return nil
}

// newChecker starts an emulator for the property and returns the checker,
// an Env bounded by propMaxTargets and the ids to draw from.
func newChecker(t testing.TB) (checker, *Env, propIDs) {
	e, u := emuServer(t, emulator.WithRequestLog(100000))
	env := envFor(t, u)
	env.MaxTargets = propMaxTargets
	all := e.IDs()
	p := propIDs{
		agents: all.Agents, threats: all.Threats, alerts: all.Alerts, restrictions: all.Restrictions,
		sites: all.Sites, groups: all.Groups, uamAlerts: all.UAMAlerts,
		hashes: []string{emulator.HashMalicious, emulator.HashClean, "0123456789abcdef0123456789abcdef01234567"},
	}
	entries := func(t testing.TB, hash string) []string {
		var l listResult
		mustRun(t, env, ActionBlocklistList, `{"hash":"`+hash+`","limit":1000,"all":true}`, &l)
		return l.ids(t)
	}
	return checker{e: e, entries: entries}, env, p
}

func TestMutatingFiltersNeverWiden(t *testing.T) {
	c, env, p := newChecker(t)
	c.t = t
	const perAction = 80
	for _, a := range All() {
		if !a.Mutating {
			continue
		}
		gen, ok := propGenerators[a.Name]
		if !ok {
			t.Errorf("mutating action %s has no generator in this test", a.Name)
			continue
		}
		// A sequence of its own per action, so that adding an action to
		// the table does not change the requests the others get.
		h := fnv.New64a()
		h.Write([]byte(a.Name))
		r := rand.New(rand.NewPCG(12, h.Sum64()))
		accepted := 0
		for range perAction {
			m := gen(r, p)
			extra(r, m, p)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			c.run(a, env, data)
			if req, err := decodeRequest(a, data); err == nil && checkTargets(env, req) == nil {
				accepted++
			}
		}
		// The generators must exercise both sides.
		if accepted < perAction/5 || accepted == perAction {
			t.Errorf("%s: %d of %d random requests accepted", a.Name, accepted, perAction)
		}
	}
}

// FuzzMutatingFilters is the property under the fuzzer: any body, any
// mutating action. The seeds are the generators' requests.
func FuzzMutatingFilters(f *testing.F) {
	var mutating []Action
	for _, a := range All() {
		if a.Mutating {
			mutating = append(mutating, a)
		}
	}
	// One emulator for the whole run: the fuzzer calls the target many
	// times, and a fresh console each time would dominate.
	c, env, p := newChecker(f)
	r := rand.New(rand.NewPCG(7, 7))
	for _, a := range mutating {
		for range 6 {
			data, _ := json.Marshal(propGenerators[a.Name](r, p))
			f.Add(a.Name, data)
		}
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		a, ok := pickAction(mutating, name)
		if !ok {
			return
		}
		c := c
		c.t = t
		c.run(a, env, data)
	})
}
