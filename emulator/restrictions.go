package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Scope kinds of a blocklist item.
const (
	scopeTenant  = "tenant"
	scopeAccount = "account"
	scopeSite    = "site"
	scopeGroup   = "group"

	typeBlackHash = "black_hash"
)

var restrictionSources = []string{"user", "cloud", "action_from_threat", "catalog"}

// restrictionData is what a POST /restrictions body says of a new item.
type restrictionData struct {
	value, sha256Value  string
	osType, description string
	source              string
}

type restriction struct {
	row
	restrictionData
	scopeKind, scopeID string
	scopeName          string
	scopePath          string
}

func (r *restriction) scopeKey() string { return r.scopeKind + ":" + r.scopeID }

type restrictionJSON struct {
	CreatedAt       string         `json:"createdAt"`
	Description     *string        `json:"description"`
	ID              string         `json:"id"`
	Imported        bool           `json:"imported"`
	IncludeChildren bool           `json:"includeChildren"`
	IncludeParents  bool           `json:"includeParents"`
	NotRecommended  string         `json:"notRecommended"`
	OSType          string         `json:"osType"`
	Scope           map[string]any `json:"scope"`
	ScopeName       string         `json:"scopeName"`
	ScopePath       string         `json:"scopePath"`
	SHA256Value     *string        `json:"sha256Value"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	UpdatedAt       string         `json:"updatedAt"`
	UserID          string         `json:"userId"`
	UserName        string         `json:"userName"`
	Value           string         `json:"value"`
}

func (r *restriction) json() []byte {
	scope := map[string]any{}
	switch r.scopeKind {
	case scopeTenant:
		scope["tenant"] = true
	default:
		scope[r.scopeKind+"Ids"] = []string{r.scopeID}
	}
	b, _ := json.Marshal(restrictionJSON{
		CreatedAt: formatTime(r.created), Description: nullable(r.description), ID: r.idStr,
		NotRecommended: "NONE", OSType: r.osType, Scope: scope, ScopeName: r.scopeName, ScopePath: r.scopePath,
		SHA256Value: nullable(r.sha256Value), Source: r.source, Type: typeBlackHash,
		UpdatedAt: formatTime(r.updated), UserID: emulatorUserID, UserName: emulatorUser, Value: r.value,
	})
	return b
}

func restrictionCollection() *collection[*restriction] {
	type R = *restriction
	return &collection[R]{
		name: "restriction",
		t:    newTable[R](),
		params: map[string]param[R]{
			"ids":                   pRowID[R](),
			"value":                 pEq(func(r R) string { return r.value }),
			"value__contains":       pContainsAny(func(r R) []string { return []string{r.value, r.sha256Value} }),
			"type":                  pEnumEq(func(R) string { return typeBlackHash }, typeBlackHash),
			"types":                 pIn(func(R) string { return typeBlackHash }, typeBlackHash),
			"osTypes":               pIn(func(r R) string { return r.osType }, osTypes...),
			"source":                pIn(func(r R) string { return r.source }, restrictionSources...),
			"userIds":               pIDs(func(R) string { return emulatorUserID }),
			"description__contains": pContains(func(r R) string { return r.description }),
			"user__contains":        pContains(func(R) string { return emulatorUser }),
			"imported":              pBools(func(R) bool { return false }),
			"recommendations": pIn(func(R) string { return "NONE" }, "Not recommended", "Not allowed", "NONE",
				"duplicated_value_sha1", "duplicated_value_sha256", "duplicated_value_sha1_sha256", "Duplication"),
			"query": pQuery(func(r R) []string {
				return []string{r.value, r.sha256Value, r.description, r.scopeName, emulatorUser}
			}),
			"createdAt": pCreated[R](),
			"updatedAt": pUpdated[R](),
		},
		sorts: map[string]sortField[R]{
			"id":          {native: nativeID},
			"createdAt":   {native: nativeCreated},
			"updatedAt":   {native: nativeUpdated},
			"osType":      {str: func(r R) string { return r.osType }},
			"description": {str: func(r R) string { return r.description }},
			"scope":       {str: func(r R) string { return r.scopeKind }},
			"value":       {str: func(r R) string { return r.value }},
			"userName":    {str: func(R) string { return emulatorUser }},
			"source":      {str: func(r R) string { return r.source }},
			"scopePath":   {str: func(r R) string { return r.scopePath }},
			"imported":    {num: func(R) int64 { return 0 }},
		},
		defaultSort: "id",
		render:      func(b []byte, r R) []byte { return cached(b, &r.row, r.json) },
	}
}

// scopeRequest is the scope part of a restrictions request.
type scopeRequest struct {
	tenant                     bool
	accounts, sites, groups    []string
	includeParents, inChildren bool
}

func parseScope(vals url.Values) (scopeRequest, *apiError) {
	var s scopeRequest
	for name, dst := range map[string]*bool{"tenant": &s.tenant, "includeParents": &s.includeParents, "includeChildren": &s.inChildren} {
		if v := single(vals[name]); v != "" {
			b, ok := parseBool(v)
			if !ok {
				return s, validation(name + ": Not a valid boolean.")
			}
			*dst = b
		}
	}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"accountIds", &s.accounts}, {"groupIds", &s.groups}, {"siteIds", &s.sites}} {
		items := splitList(vals[l.name])
		ids, err := parseIDs(l.name, items)
		if err != nil {
			return s, err
		}
		for _, id := range ids {
			*l.dst = append(*l.dst, formatID(id))
		}
	}
	return s, nil
}

func (s scopeRequest) empty() bool {
	return !s.tenant && len(s.accounts) == 0 && len(s.sites) == 0 && len(s.groups) == 0
}

// visibleScopes applies the console's scope rule: tenant=true is the Global
// list, accountIds/siteIds/groupIds their own lists; includeParents adds the
// scopes above, includeChildren those below. A request naming no scope sees
// the token's own scope, Global. The caller holds mu.
func (e *Emulator) visibleScopes(s scopeRequest) map[string]bool {
	v := map[string]bool{}
	if s.empty() {
		s.tenant = true
	}
	addSite := func(st *site, children bool) {
		v[scopeSite+":"+st.idStr] = true
		if children {
			for _, g := range st.groups {
				v[scopeGroup+":"+g.idStr] = true
			}
		}
	}
	parents := func() {
		v[scopeTenant+":"] = true
		v[scopeAccount+":"+e.account.idStr] = true
	}
	if s.tenant {
		v[scopeTenant+":"] = true
		if s.inChildren {
			v[scopeAccount+":"+e.account.idStr] = true
			for _, st := range e.sites.t.ids {
				addSite(st, true)
			}
		}
	}
	for _, id := range s.accounts {
		v[scopeAccount+":"+id] = true
		if id != e.account.idStr {
			continue
		}
		if s.includeParents {
			v[scopeTenant+":"] = true
		}
		if s.inChildren {
			for _, st := range e.sites.t.ids {
				addSite(st, true)
			}
		}
	}
	for _, id := range s.sites {
		v[scopeSite+":"+id] = true
		if st, ok := lookup(e.sites.t, id); ok {
			addSite(st, s.inChildren)
			if s.includeParents {
				parents()
			}
		}
	}
	for _, id := range s.groups {
		v[scopeGroup+":"+id] = true
		if g, ok := lookup(e.groups.t, id); ok && s.includeParents {
			v[scopeSite+":"+g.site.idStr] = true
			parents()
		}
	}
	return v
}

func (e *Emulator) handleRestrictionsList(w http.ResponseWriter, r *http.Request) {
	buf := getBuf()
	defer putBuf(buf)
	vals := r.URL.Query()
	scope, err := parseScope(vals)
	if err != nil {
		writeError(w, err)
		return
	}
	e.mu.RLock()
	q, err := e.restrictions.parseList(vals, e.now())
	if err == nil {
		visible := e.visibleScopes(scope)
		q.preds = append(q.preds, func(r *restriction) bool { return visible[r.scopeKey()] })
		*buf = e.restrictions.appendListBody(*buf, q, e.restrictions.t.query(q))
	}
	e.mu.RUnlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, *buf)
}

// handleRestrictionsCreate answers POST /restrictions: one black_hash item
// per scope named in the filter. A hash already blocked for the same OS in
// the same scope is refused with 4000030, and nothing is created.
func (e *Emulator) handleRestrictionsCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readAction(r, true)
	if err != nil {
		writeError(w, err)
		return
	}
	item, err := parseRestriction(body)
	if err != nil {
		writeError(w, err)
		return
	}
	scope, err := parseScope(body.filter)
	if err != nil {
		writeError(w, err)
		return
	}
	if scope.empty() {
		writeError(w, validation("filter: One of these filter arguments must be supplied: tenant, accountIds, siteIds, groupIds."))
		return
	}
	var out []byte
	e.mutate(func(now int64) {
		var created []*restriction
		if created, err = e.createRestrictions(item, scope, now); err != nil {
			return
		}
		out = append(out, `{"data":`...)
		out = e.restrictions.appendItems(out, created)
		out = append(out, `,"errors":null}`...)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func parseRestriction(body *actionBody) (restrictionData, *apiError) {
	var item restrictionData
	fields := map[string]*string{
		"value": &item.value, "sha256Value": &item.sha256Value, "osType": &item.osType,
		"description": &item.description, "source": &item.source,
	}
	for name, dst := range fields {
		v, err := body.dataString(name)
		if err != nil {
			return item, err
		}
		*dst = v
	}
	if _, err := requiredEnum(body, "type", []string{typeBlackHash}); err != nil {
		return item, err
	}
	if _, err := requiredEnum(body, "osType", osTypes); err != nil {
		return item, err
	}
	switch {
	case item.value == "":
		return item, validation("data: value: Missing data for required field.")
	case !isHex(item.value, 40):
		return item, validation("data: value: Not a valid SHA1 hash.")
	case item.sha256Value != "" && !isHex(item.sha256Value, 64):
		return item, validation("data: sha256Value: Not a valid SHA256 hash.")
	}
	if item.source == "" {
		item.source = "user"
	}
	return item, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// createRestrictions adds item once per scope; the caller holds mu.
func (e *Emulator) createRestrictions(item restrictionData, s scopeRequest, now int64) ([]*restriction, *apiError) {
	type target struct{ kind, id, name, path string }
	var targets []target
	if s.tenant {
		targets = append(targets, target{scopeTenant, "", "Global", "Global"})
	}
	accPath := "Global\\" + e.account.name
	for _, id := range s.accounts {
		if id != e.account.idStr {
			return nil, unknownScope(id)
		}
		targets = append(targets, target{scopeAccount, id, e.account.name, accPath})
	}
	for _, id := range s.sites {
		st, ok := lookup(e.sites.t, id)
		if !ok {
			return nil, unknownScope(id)
		}
		targets = append(targets, target{scopeSite, id, st.name, accPath + "\\" + st.name})
	}
	for _, id := range s.groups {
		g, ok := lookup(e.groups.t, id)
		if !ok {
			return nil, unknownScope(id)
		}
		targets = append(targets, target{scopeGroup, id, g.name, accPath + "\\" + g.site.name + "\\" + g.name})
	}
	for _, t := range targets {
		for _, r := range e.restrictions.t.ids {
			if r.scopeKind == t.kind && r.scopeID == t.id && r.osType == item.osType && strings.EqualFold(r.value, item.value) {
				return nil, alreadyExists(fmt.Sprintf("Hash %s is already blocked for %s in scope %s.", item.value, item.osType, t.name))
			}
		}
	}
	created := make([]*restriction, 0, len(targets))
	for _, t := range targets {
		id := e.ids.next(e.rnd)
		r := &restriction{
			row:             row{id: id, idStr: formatID(id), created: now, updated: now},
			restrictionData: item, scopeKind: t.kind, scopeID: t.id, scopeName: t.name, scopePath: t.path,
		}
		created = append(created, r)
		e.addActivity(activitySpec{
			typ: actRestriction, at: now, hash: r.value,
			primary: fmt.Sprintf("The management user %s added hash %s (%s) to the blocklist of %s.", emulatorUser, r.value, r.osType, t.name),
			data:    map[string]any{"value": r.value, "osType": r.osType, "scopeName": t.name},
		})
	}
	e.restrictions.t.insert(created...)
	return created, nil
}

func unknownScope(id string) *apiError {
	return validation("Cannot find blocklist or exclusion for the requested scope [" + id + "]")
}

// handleRestrictionsDelete answers DELETE /restrictions with
// {"data":{"ids":[...],"type":"black_hash"}}; affected counts the items removed.
func (e *Emulator) handleRestrictionsDelete(w http.ResponseWriter, r *http.Request) {
	var raw struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || raw.Data == nil {
		writeError(w, validation("data: Missing data for required field."))
		return
	}
	body := &actionBody{data: raw.Data}
	idsRaw, ok := raw.Data[paramIDs]
	if !ok {
		writeError(w, validation("data: ids: Missing data for required field."))
		return
	}
	vals, err := bodyFilter(json.RawMessage(`{"ids":` + string(idsRaw) + `}`))
	if err != nil {
		writeError(w, err)
		return
	}
	ids, err := parseIDs("data: ids", splitList(vals[paramIDs]))
	if err != nil {
		writeError(w, err)
		return
	}
	if typ, err := body.dataString("type"); err != nil || (typ != "" && typ != typeBlackHash) {
		writeError(w, validation("data: type: Must be one of: black_hash."))
		return
	}
	var gone []*restriction
	e.mutate(func(int64) {
		for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
			if r, ok := e.restrictions.t.get(id); ok {
				gone = append(gone, r)
			}
		}
		e.restrictions.t.remove(gone...)
	})
	writeData(w, affected{Affected: len(gone)})
}
