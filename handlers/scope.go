package handlers

import (
	"github.com/s1bridge/s1bridge/sentinelone"
)

// Scope is where blocklist entries live: the whole tenant (the global list)
// or the given sites, accounts or groups. Exactly one kind is set: tenant
// true, or one non-empty id list.
type Scope struct {
	Tenant     bool     `json:"tenant,omitempty" jsonschema:"oneof_required=tenant" jsonschema_extras:"const=true"`
	SiteIDs    []string `json:"siteIds,omitempty" jsonschema:"oneof_required=siteIds,minItems=1,maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	AccountIDs []string `json:"accountIds,omitempty" jsonschema:"oneof_required=accountIds,minItems=1,maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
	GroupIDs   []string `json:"groupIds,omitempty" jsonschema:"oneof_required=groupIds,minItems=1,maxItems=500,pattern=^[1-9][0-9]{17\\,19}$"`
}

// validate checks that s names exactly one kind of scope with valid ids.
func (s *Scope) validate(field string) error {
	kinds := 0
	for _, l := range []struct {
		name string
		ids  []string
	}{{"siteIds", s.SiteIDs}, {"accountIds", s.AccountIDs}, {"groupIds", s.GroupIDs}} {
		if l.ids == nil {
			continue
		}
		if len(l.ids) == 0 {
			return Invalid(field+"."+l.name, "must hold at least one id when given")
		}
		if err := checkIDs(field+"."+l.name, l.ids, scopeIDs); err != nil {
			return err
		}
		kinds++
	}
	switch {
	case s.Tenant && kinds > 0:
		return Invalid(field, "is either tenant:true or one list of siteIds, accountIds or groupIds, not both")
	case kinds > 1:
		return Invalid(field, "takes one list of siteIds, accountIds or groupIds, not several")
	case !s.Tenant && kinds == 0:
		return Invalid(field, "must be {\"tenant\":true} or hold siteIds, accountIds or groupIds")
	}
	return nil
}

// client returns s as the SentinelOne client's scope.
func (s *Scope) client() sentinelone.Scope {
	return sentinelone.Scope{Tenant: s.Tenant, SiteIDs: s.SiteIDs, AccountIDs: s.AccountIDs, GroupIDs: s.GroupIDs}
}

// filter narrows f to s; a nil s widens f to every scope the token sees
// (the tenant plus its children and parents, DESIGN.md §8).
func (s *Scope) filter(f *sentinelone.RestrictionFilter) {
	yes, no := true, false
	if s == nil {
		f.Tenant, f.IncludeChildren, f.IncludeParents = &yes, &yes, &yes
		return
	}
	if s.Tenant {
		f.Tenant = &yes
		return
	}
	f.Tenant = &no
	f.SiteIDs, f.AccountIDs, f.GroupIDs = s.SiteIDs, s.AccountIDs, s.GroupIDs
}
