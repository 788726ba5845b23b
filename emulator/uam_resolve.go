package emulator

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Root fields of the Unified Alerts schema and the filters they take.

// execute runs op's root fields: a query under the read lock, a mutation
// under the write lock (its fields one after another, as GraphQL says).
// A resolver's failure is a DataFetchingException at its path; a non-null
// root field that fails makes data null.
func (e *Emulator) execute(x *gqlExec, op *ast.OperationDefinition) ([]byte, []gqlErr) {
	root := x.schema.Query
	if op.Operation == ast.Mutation {
		root = x.schema.Mutation
	}
	if root == nil || op.Operation == ast.Subscription {
		return nil, []gqlErr{{Message: "Subscriptions are not supported", Extensions: map[string]string{"classification": classValidation}}}
	}
	type result struct {
		key string
		typ *ast.Type
		sel ast.SelectionSet
		val any
	}
	var results []result
	var errs []gqlErr
	nullData := false
	run := func(now int64) {
		for _, c := range x.collect(op.SelectionSet, root.Name, nil) {
			f := c.fields[0]
			if f.Name == "__typename" {
				results = append(results, result{key: c.key, val: root.Name})
				continue
			}
			fd := root.Fields.ForName(f.Name)
			v, err := e.resolveRoot(f.Name, f.ArgumentMap(x.vars), now, op.Operation == ast.Mutation)
			if err != nil {
				var loc []gqlerror.Location
				if f.Position != nil {
					loc = append(loc, gqlerror.Location{Line: f.Position.Line, Column: f.Position.Column})
				}
				errs = append(errs, gqlErr{Message: fmt.Sprintf("Exception while fetching data (/%s) : %s", c.key, err.msg),
					Locations: loc, Path: []any{c.key}, Extensions: map[string]string{"classification": classDataFetching}})
				if fd.Type.NonNull {
					nullData = true
				}
				v = nil
			}
			results = append(results, result{key: c.key, typ: fd.Type, sel: subSelection(c.fields), val: v})
		}
	}
	e.settle()
	if op.Operation == ast.Mutation {
		e.mutate(run)
	} else {
		e.mu.RLock()
		run(e.now())
		e.mu.RUnlock()
	}
	if nullData {
		return nil, errs
	}
	b := []byte{'{'}
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, r.key)
		b = append(b, ':')
		if r.typ == nil {
			b = strconv.AppendQuote(b, r.val.(string))
			continue
		}
		b = x.writeValue(b, r.typ, r.sel, r.val)
	}
	return append(b, '}'), errs
}

// resolveRoot resolves one root field; the caller holds mu (shared for a
// query, exclusive for a mutation).
func (e *Emulator) resolveRoot(name string, args map[string]any, now int64, mutation bool) (any, *fetchError) {
	switch name {
	case "alerts":
		return e.resolveAlerts(args, now)
	case "alert":
		id, _ := args["id"].(string)
		a, ok := e.uam.byStr[id]
		if !ok || !e.uamVisible(a, now) {
			return nil, fetchErrorf("Required value was null.")
		}
		return a.value(e), nil
	case "alertNotes":
		a, err := e.noteTarget(args, now)
		if err != nil {
			return nil, err
		}
		return obj{"data": notesValue(a)}, nil
	case "addAlertNote":
		return e.resolveAddNote(args, now)
	case "alertTriggerActions":
		return e.resolveTrigger(args, now)
	}
	return nil, fetchErrorf("%s is not implemented by the emulator", name)
}

func (e *Emulator) uamVisible(a *uamAlert, now int64) bool {
	return a.hiddenUntil == 0 || a.hiddenUntil <= now
}

// uuidRe is the text form of a UUID.
var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (e *Emulator) noteTarget(args map[string]any, now int64) (*uamAlert, *fetchError) {
	id, _ := args["alertId"].(string)
	if !uuidRe.MatchString(id) {
		return nil, fetchErrorf("Value %q could not be parsed into a UUID", id)
	}
	a, ok := e.uam.byStr[id]
	if !ok || !e.uamVisible(a, now) {
		return nil, fetchErrorf("Alert with ID %s not found.", id)
	}
	return a, nil
}

func notesValue(a *uamAlert) []any {
	out := make([]any, len(a.notes))
	for i, n := range a.notes {
		out[i] = n.value(a.idStr)
	}
	return out
}

// resolveAddNote creates a note and answers the alert's whole note list,
// as the console does (uam-reference.md §8).
func (e *Emulator) resolveAddNote(args map[string]any, now int64) (any, *fetchError) {
	a, err := e.noteTarget(args, now)
	if err != nil {
		return nil, err
	}
	if a.src.mobile {
		return nil, fetchErrorf("Missing UAM manage permissions")
	}
	text, _ := args["text"].(string)
	typ, _ := args["type"].(string)
	if typ == "" {
		typ = "PLAIN_TEXT"
	}
	e.addNote(a, text, typ, now)
	return obj{"data": notesValue(a)}, nil
}

func (e *Emulator) addNote(a *uamAlert, text, typ string, now int64) {
	e.uam.noteSeq++
	a.notes = append(a.notes, &uamNote{id: fmt.Sprintf("00000000-0000-7000-8000-%012x", 0xb0000+e.uam.noteSeq), text: text, typ: typ, at: ms(now), user: uamUser})
}

// resolveAlerts answers the alerts connection: filters or orFilter, sort or
// sorts, forward paging, totalCount over every match.
func (e *Emulator) resolveAlerts(args map[string]any, now int64) (any, *fetchError) {
	s := e.uam
	set := e.cfg.uam
	if args["last"] != nil || args["before"] != nil {
		return nil, fetchErrorf("Backward paging (last, before) is not supported")
	}
	first := int64(20)
	if v, ok := toInt(args["first"]); ok {
		first = v
	}
	if first < 0 || first > int64(set.MaxFirst) {
		return nil, fetchErrorf("Argument 'first' must be between 0 and %d", set.MaxFirst)
	}
	q := &listQuery[*uamAlert]{limit: int(first), now: now}
	sortName, order := "detectedAt", orderDesc // the console's inbox: newest first
	sorts, _ := args["sorts"].([]any)
	if len(sorts) == 0 && args["sort"] != nil {
		sorts = []any{args["sort"]}
	}
	if len(sorts) > 0 {
		so, _ := sorts[0].(map[string]any)
		sortName, _ = so["by"].(string)
		order = orderAsc
		if o, _ := so["order"].(string); o == "DESC" {
			order = orderDesc
		}
	}
	f, ok := s.c.sorts[sortName]
	if !ok {
		return nil, fetchErrorf("Sort by field %s is not supported", sortName)
	}
	q.sortName, q.sort, q.desc = sortName, f, order == orderDesc
	if after, _ := args["after"].(string); after != "" {
		cur, ok := s.c.decodeCursor(after)
		if !ok || cur.sort != sortName || cur.order != order {
			return nil, fetchErrorf("Invalid cursor value received")
		}
		q.after = &cur.key
	}
	filters, _ := args["filters"].([]any)
	orf, _ := args["orFilter"].(map[string]any)
	if len(filters) > 0 && orf != nil {
		return nil, fetchErrorf("'filters' and 'orFilter' cannot be used together")
	}
	namesInfo := false
	if orf != nil {
		pred, info, err := e.compileOr(orf)
		if err != nil {
			return nil, err
		}
		namesInfo = info
		q.preds = append(q.preds, pred)
	} else {
		info, err := e.compileAnd(filters, q)
		if err != nil {
			return nil, err
		}
		namesInfo = info
	}
	if set.HideInformational && !namesInfo {
		q.preds = append(q.preds, func(a *uamAlert) bool { return a.confidence != uamInformational })
	}
	if err := e.scopePreds(args, q); err != nil {
		return nil, err
	}
	p := s.c.t.query(q)
	edges := make([]any, len(p.items))
	var start, end any
	for i, a := range p.items {
		c := s.c.encodeCursor(q, q.sort.key(a))
		edges[i] = obj{"cursor": c, "node": a.value(e)}
		if i == 0 {
			start = c
		}
		end = c
	}
	return obj{
		"totalCount": int64(p.total),
		"pageInfo":   obj{"hasNextPage": p.last != nil, "hasPreviousPage": q.after != nil, "startCursor": start, "endCursor": end},
		"edges":      edges,
	}, nil
}

// scopePreds applies the scope and viewType arguments.
func (e *Emulator) scopePreds(args map[string]any, q *listQuery[*uamAlert]) *fetchError {
	if view, _ := args["viewType"].(string); view != "" && view != "ALL" {
		if view == "STAR" {
			view = "CUSTOM_ALERTS"
		}
		q.preds = append(q.preds, func(a *uamAlert) bool { return a.src.view == view })
	}
	sc, _ := args["scope"].(map[string]any)
	if sc == nil {
		return nil
	}
	typ, _ := sc["scopeType"].(string)
	ids := map[string]bool{}
	list, _ := sc["scopeIds"].([]any)
	for _, id := range list {
		ids[fmt.Sprint(id)] = true
	}
	q.preds = append(q.preds, func(a *uamAlert) bool {
		switch typ {
		case "ACCOUNT":
			return ids[e.account.idStr]
		case "SITE":
			return a.agent != nil && ids[a.agent.site.idStr] || a.agent == nil && len(e.sites.t.ids) > 0 && ids[e.sites.t.ids[0].idStr]
		case "GROUP":
			return a.agent != nil && ids[a.agent.group.idStr]
		}
		return false
	})
	return nil
}

// uamField is how a filter field id reads an alert.
type uamField struct {
	kind string                   // "string", "time", "long", "bool"
	str  func(*uamAlert) []string // string values; nil entries are "" (unassigned)
	time func(*uamAlert) int64
	long func(*uamAlert) (int64, bool)
	bool func(*uamAlert) bool
	text bool // accepts match
}

func one(f func(*uamAlert) string) func(*uamAlert) []string {
	return func(a *uamAlert) []string { return []string{f(a)} }
}

// uamFields are the filter field ids the emulator implements
// (uam-reference.md §4.3); any other is the console's FILTER API error.
var uamFields = map[string]uamField{
	"id":               {kind: "string", str: one(func(a *uamAlert) string { return a.idStr })},
	"externalId":       {kind: "string", str: one(func(a *uamAlert) string { return a.externalID }), text: true},
	"status":           {kind: "string", str: one(func(a *uamAlert) string { return a.status })},
	"analystVerdict":   {kind: "string", str: one(func(a *uamAlert) string { return a.verdict })},
	"severity":         {kind: "string", str: one(func(a *uamAlert) string { return a.severity })},
	"confidenceLevel":  {kind: "string", str: one(func(a *uamAlert) string { return a.confidence })},
	"classification":   {kind: "string", str: one(func(a *uamAlert) string { return a.classification })},
	"result":           {kind: "string", str: one(func(a *uamAlert) string { return a.result })},
	"storylineId":      {kind: "string", str: one(func(a *uamAlert) string { return a.storyline }), text: true},
	"alertName":        {kind: "string", str: one(func(a *uamAlert) string { return a.name }), text: true},
	"assetName":        {kind: "string", str: one(func(a *uamAlert) string { return a.assetName }), text: true},
	"detectionProduct": {kind: "string", str: one(func(a *uamAlert) string { return a.src.product }), text: true},
	"detectionVendor":  {kind: "string", str: one(func(a *uamAlert) string { return a.src.vendor }), text: true},
	"ticketId":         {kind: "string", str: one(func(a *uamAlert) string { return a.ticket }), text: true},
	"detectedAt":       {kind: "time", time: func(a *uamAlert) int64 { return a.created }},
	"updatedAt":        {kind: "time", time: func(a *uamAlert) int64 { return a.updated }},
	"createdAt":        {kind: "time", time: func(a *uamAlert) int64 { return a.createdAt }},
	"firstSeenAt":      {kind: "time", time: func(a *uamAlert) int64 { return a.firstSeenAt }},
	"lastSeenAt":       {kind: "time", time: func(a *uamAlert) int64 { return a.lastSeenAt }},
	"assigneeUserId":   {kind: "long", long: func(a *uamAlert) (int64, bool) { return 900000000000000778, a.assigned }},
	"alertNoteExists":  {kind: "bool", bool: func(a *uamAlert) bool { return len(a.notes) > 0 }},
	"ticketIdExists":   {kind: "bool", bool: func(a *uamAlert) bool { return a.ticket != "" }},
}

// comparators of FilterInput by the kind of field they apply to.
var comparators = map[string]string{
	"stringEqual": "string", "stringIn": "string", "match": "string",
	"dateTimeRange": "time", "longEqual": "long", "longIn": "long", "longRange": "long",
	"booleanEqual": "bool", "booleanIn": "bool", "intEqual": "int", "intIn": "int", "intRange": "int",
}

// compiled is one FilterInput made into a predicate, with what the index
// can serve: an id list or a time range on detectedAt or updatedAt.
type compiled struct {
	pred      func(*uamAlert) bool
	field     string
	negated   bool
	ids       []string // stringIn/stringEqual on id
	lo, hi    int64    // dateTimeRange as inclusive ns bounds
	timeRange bool
	namesInfo bool // a positive confidenceLevel filter that names INFORMATIONAL
}

// compileFilter compiles one FilterInput.
func compileFilter(raw any) (*compiled, *fetchError) {
	m, _ := raw.(map[string]any)
	fieldID, _ := m["fieldId"].(string)
	fd, ok := uamFields[fieldID]
	if !ok {
		return nil, fetchErrorf("Field %s does not exist or not supported for FILTER API call", fieldID)
	}
	var comp string
	for k := range comparators {
		if m[k] != nil {
			if comp != "" {
				return nil, fetchErrorf("Only one filter can be defined for field %s", fieldID)
			}
			comp = k
		}
	}
	if comp == "" {
		return nil, fetchErrorf("No filter defined for field %s", fieldID)
	}
	if comparators[comp] != fd.kind || comp == "match" && !fd.text {
		return nil, fetchErrorf("Filter type %s is not supported for field %s", comp, fieldID)
	}
	neg, _ := m["isNegated"].(bool)
	c := &compiled{field: fieldID, negated: neg}
	arg, _ := m[comp].(map[string]any)
	switch comp {
	case "stringEqual":
		want := optString(arg["value"])
		c.pred = func(a *uamAlert) bool { return slices.Contains(fd.str(a), want) }
		if fieldID == "id" {
			c.ids = []string{want}
		}
		c.namesInfo = fieldID == "confidenceLevel" && want == uamInformational
	case "stringIn":
		vals, _ := arg["values"].([]any)
		set := map[string]bool{}
		for _, v := range vals {
			set[optString(v)] = true
			if fieldID == "id" {
				c.ids = append(c.ids, optString(v))
			}
		}
		c.pred = func(a *uamAlert) bool {
			for _, v := range fd.str(a) {
				if set[v] {
					return true
				}
			}
			return false
		}
		c.namesInfo = fieldID == "confidenceLevel" && set[uamInformational]
	case "match":
		op, _ := arg["operator"].(string)
		vals, _ := arg["values"].([]any)
		if len(vals) == 0 {
			vals, _ = arg["value"].([]any) // deprecated spelling
		}
		var want []string
		for _, v := range vals {
			want = append(want, strings.ToLower(optString(v)))
		}
		c.pred = func(a *uamAlert) bool {
			for _, have := range fd.str(a) {
				have = strings.ToLower(have)
				for _, w := range want {
					switch op {
					case "startsWith":
						if strings.HasPrefix(have, w) {
							return true
						}
					case "endsWith":
						if strings.HasSuffix(have, w) {
							return true
						}
					case "exactMatch":
						if have == w {
							return true
						}
					default: // contains
						if strings.Contains(have, w) {
							return true
						}
					}
				}
			}
			return false
		}
	case "dateTimeRange":
		c.lo, c.hi, c.timeRange = -1<<62, 1<<62, true
		if v, ok := toInt(arg["start"]); ok {
			c.lo = v * 1e6
			if inc, set := arg["startInclusive"].(bool); set && !inc {
				c.lo += 1e6 // times are whole milliseconds
			}
		}
		if v, ok := toInt(arg["end"]); ok {
			c.hi = v * 1e6
			if inc, set := arg["endInclusive"].(bool); set && !inc {
				c.hi -= 1e6
			}
		}
		lo, hi := c.lo, c.hi
		c.pred = func(a *uamAlert) bool { t := fd.time(a); return t >= lo && t <= hi }
	case "longEqual", "longIn":
		var want []int64
		if comp == "longEqual" {
			if v, ok := toInt(arg["value"]); ok {
				want = append(want, v)
			}
		} else {
			vals, _ := arg["values"].([]any)
			for _, v := range vals {
				if n, ok := toInt(v); ok {
					want = append(want, n)
				}
			}
		}
		c.pred = func(a *uamAlert) bool { v, ok := fd.long(a); return ok && slices.Contains(want, v) }
	case "longRange":
		lo, hi := int64(-1<<62), int64(1<<62)
		if v, ok := toInt(arg["start"]); ok {
			lo = v
		}
		if v, ok := toInt(arg["end"]); ok {
			hi = v
		}
		c.pred = func(a *uamAlert) bool { v, ok := fd.long(a); return ok && v >= lo && v <= hi }
	case "booleanEqual":
		want, _ := arg["value"].(bool)
		c.pred = func(a *uamAlert) bool { return fd.bool(a) == want }
	case "booleanIn":
		vals, _ := arg["values"].([]any)
		c.pred = func(a *uamAlert) bool { return slices.Contains(vals, any(fd.bool(a))) }
	}
	if neg {
		p := c.pred
		c.pred = func(a *uamAlert) bool { return !p(a) }
		c.namesInfo, c.ids, c.timeRange = false, nil, false
	}
	return c, nil
}

// compileAnd adds filters (ANDed) to q, using the indexes where it can. It
// reports whether a filter names the INFORMATIONAL level.
func (e *Emulator) compileAnd(filters []any, q *listQuery[*uamAlert]) (bool, *fetchError) {
	info := false
	for _, raw := range filters {
		c, err := compileFilter(raw)
		if err != nil {
			return false, err
		}
		info = info || c.namesInfo
		switch {
		case c.timeRange && c.field == "detectedAt":
			q.created.narrow(c.lo, c.hi)
		case c.timeRange && c.field == "updatedAt":
			q.updated.narrow(c.lo, c.hi)
		case c.ids != nil && q.ids == nil:
			for _, id := range c.ids {
				if a, ok := e.uam.byStr[id]; ok {
					q.ids = append(q.ids, a.id)
				}
			}
			if q.ids == nil {
				q.ids = []uint64{} // nothing matches, but the filter is set
			}
		default:
			q.preds = append(q.preds, c.pred)
		}
	}
	return info, nil
}

// compileOr compiles an OrFilterSelectionInput into one predicate. It
// reports whether every AND group names the INFORMATIONAL level (only then
// is nothing hidden).
func (e *Emulator) compileOr(or map[string]any) (func(*uamAlert) bool, bool, *fetchError) {
	groups, _ := or["or"].([]any)
	var preds [][]func(*uamAlert) bool
	allInfo := len(groups) > 0
	for _, g := range groups {
		gm, _ := g.(map[string]any)
		ands, _ := gm["and"].([]any)
		var ps []func(*uamAlert) bool
		info := false
		for _, raw := range ands {
			c, err := compileFilter(raw)
			if err != nil {
				return nil, false, err
			}
			info = info || c.namesInfo
			ps = append(ps, c.pred)
		}
		allInfo = allInfo && info
		preds = append(preds, ps)
	}
	return func(a *uamAlert) bool {
		for _, ps := range preds {
			ok := true
			for _, p := range ps {
				if !p(a) {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		return false
	}, allInfo, nil
}

// optString reads a string filter value; null is "" (unassigned).
func optString(v any) string {
	s, _ := v.(string)
	return s
}

// toInt reads an Int or Long value from variables (json.Number) or a
// literal (int64).
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}
