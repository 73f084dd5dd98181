package query

import "slices"

// Narrow restricts s to one tenant. The result reads nothing when s does
// not include the tenant: asking for a tenant never widens a scope.
func (s Scope) Narrow(tenant string) Scope {
	if s.All || slices.Contains(s.Tenants, tenant) {
		return Scope{Tenants: []string{tenant}}
	}
	return Scope{}
}
