package query

import "slices"

// Narrow restricts s to one tenant. The result reads nothing when s does
// not include the tenant: asking for a tenant never widens a scope.
func (s Scope) Narrow(tenant string) Scope {
	if s.Includes(tenant) {
		return Scope{Tenants: []string{tenant}}
	}
	return Scope{}
}

// Includes reports whether s reads a tenant's data: for what is kept by
// tenant outside the events table (the inventory), the same rule the
// compiler applies to the events.
func (s Scope) Includes(tenant string) bool {
	return s.All || slices.Contains(s.Tenants, tenant)
}
