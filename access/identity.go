package access

import (
	"slices"

	"github.com/vigilsec/vigil/query"
)

// A Binding holds a role in a tenant, or in every tenant (AllTenants).
type Binding struct {
	Role   Role   `json:"role"`
	Tenant string `json:"tenant"`
}

// An Identity is who a request acts as, with everything that decides
// what it may do: the roles bound to it and its groups, the grants
// shared with it, and the break-glass elevation it holds, if any.
type Identity struct {
	// Principal is the id of the user or service account, "" for a
	// token that carries its own role.
	Principal string `json:"principal,omitempty"`
	// Name names the caller in records: a user's name, a token's.
	Name string `json:"name"`
	// Credential is what authenticated the request: "token ID",
	// "session", "admin-token".
	Credential string    `json:"credential"`
	Groups     []string  `json:"groups,omitempty"`
	Bindings   []Binding `json:"bindings"`
	// Shares are the grants of other tenants' events to the caller, its
	// groups or its tenants, in force now.
	Shares []query.Share `json:"-"`
	// Elevated is the id of the break-glass elevation in force, if any:
	// its binding is among Bindings.
	Elevated string `json:"elevated,omitempty"`
}

// Can reports whether the identity holds p in some tenant. A grant is
// enough to read: a partner with no role anywhere reads what was shared
// with it.
func (id *Identity) Can(p Permission) bool {
	return p == Read && len(id.Shares) > 0 || slices.ContainsFunc(id.Bindings, func(b Binding) bool { return b.Role.Allows(p) })
}

// CanIn reports whether the identity holds p in tenant.
func (id *Identity) CanIn(p Permission, tenant string) bool {
	return id.Scope(p).Includes(tenant)
}

// Scope returns what the identity may read for an action that needs p:
// the tenants where a role allowing p is bound (every tenant for a
// binding in AllTenants), and, for reading events, the grants shared
// with it. The audit trail, kept in SystemTenant, is in the scope of
// ReadAudit: all of it for an auditor of every tenant, and the records
// of actions in its tenants for an auditor of some.
func (id *Identity) Scope(p Permission) query.Scope {
	var s query.Scope
	for _, b := range id.Bindings {
		if !b.Role.Allows(p) {
			continue
		}
		if b.Tenant == AllTenants {
			s.All = true
		} else if !slices.Contains(s.Tenants, b.Tenant) {
			s.Tenants = append(s.Tenants, b.Tenant)
		}
	}
	switch p {
	case Read, Hunt:
		s.Shares = slices.Clone(id.Shares)
	case ReadAudit:
		return auditScope(s)
	}
	return s
}

// auditScope is the part of the audit trail that auditors of s's
// tenants read: the records naming those tenants among their
// resources (see Record.Event).
func auditScope(s query.Scope) query.Scope {
	if s.All {
		return query.Scope{Tenants: []string{SystemTenant}}
	}
	var out query.Scope
	for _, t := range s.Tenants {
		f, err := query.Parse("resources:" + query.Quote(tenantResource(t)))
		if err != nil {
			continue // tenant names need no quoting; never happens
		}
		out.Shares = append(out.Shares, query.Share{Grant: "audit of " + t, Tenant: SystemTenant, Filter: f})
	}
	return out
}

// tenantResource is how an audit record names a tenant it acted in.
func tenantResource(t string) string { return "tenant:" + t }

// Tenant returns the one tenant where the identity holds p, for actions
// that need a tenant and were not told one (an ingest token's); "" when
// it holds p in several, or in every tenant.
func (id *Identity) Tenant(p Permission) string {
	s := id.Scope(p)
	if s.All || len(s.Tenants) != 1 {
		return ""
	}
	return s.Tenants[0]
}

// SearchScope is what a search reads: the events of Scope(Read) and the
// audit trail of Scope(ReadAudit), so that auditors search the trail as
// analysts search events.
func (id *Identity) SearchScope() query.Scope {
	return Union(id.Scope(Read), id.Scope(ReadAudit))
}

// Union returns a scope that reads what a or b reads.
func Union(a, b query.Scope) query.Scope {
	out := query.Scope{All: a.All || b.All}
	for _, t := range append(slices.Clone(a.Tenants), b.Tenants...) {
		if !slices.Contains(out.Tenants, t) {
			out.Tenants = append(out.Tenants, t)
		}
	}
	out.Shares = append(slices.Clone(a.Shares), b.Shares...)
	return out
}
