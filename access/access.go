// Package access decides who may do what in vigil: the principals
// (people and workloads), the groups they are in, the roles bound to them
// per tenant, the grants that share a tenant's events with others, the
// tokens and sessions that carry them, and the audit record of what they
// did. Its state lives in the metadata database.
//
// What a caller may read is worked out here, as an Identity, and turned
// into a query.Scope that the query compiler applies to every statement:
// handlers ask the Identity for the scope of the permission they need and
// never build one themselves.
package access

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/query"
)

// A Role is what its holder may do within a tenant.
type Role string

// The roles.
const (
	Admin     Role = "admin"     // everything, access included
	Analyst   Role = "analyst"   // search, hunt, work alerts and cases
	Responder Role = "responder" // an analyst who may also run playbooks
	Viewer    Role = "viewer"    // read only
	Ingest    Role = "ingest"    // send events, and nothing else
	Auditor   Role = "auditor"   // read the audit trail, verify the ledger
)

var roles = []Role{Admin, Analyst, Responder, Viewer, Ingest, Auditor}

// Roles returns every role.
func Roles() []Role { return slices.Clone(roles) }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(roles, r) {
		return r, nil
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown role %q; the roles are %s", s, strings.Join(names, ", "))
}

// A Permission is one thing a role allows, in the tenants it is bound in.
type Permission int

// The permissions.
const (
	// Read is reading events (search, identities, inventory, proofs,
	// metrics, coverage), alerts, cases and playbook runs.
	Read Permission = iota
	// Hunt is running rules over history and exporting evidence.
	Hunt
	// Work is changing alerts, suppressions and cases.
	Work
	// Respond is starting playbooks and approving their steps.
	Respond
	// IngestEvents is sending events and metrics.
	IngestEvents
	// ReadAudit is reading the audit trail of actions in the tenant.
	ReadAudit
	// Manage is managing access: principals, groups, bindings, grants
	// and tokens, and sharing the tenant's events.
	Manage
)

var permNames = [...]string{Read: "read", Hunt: "hunt", Work: "work", Respond: "respond", IngestEvents: "ingest", ReadAudit: "read-audit", Manage: "manage"}

func (p Permission) String() string {
	if int(p) < len(permNames) {
		return permNames[p]
	}
	return fmt.Sprintf("Permission(%d)", int(p))
}

// allows says what each role may do.
var allows = map[Role][]Permission{
	Admin:     {Read, Hunt, Work, Respond, IngestEvents, ReadAudit, Manage},
	Analyst:   {Read, Hunt, Work},
	Responder: {Read, Hunt, Work, Respond},
	Viewer:    {Read},
	Ingest:    {IngestEvents},
	Auditor:   {ReadAudit},
}

// Allows reports whether r grants p.
func (r Role) Allows(p Permission) bool { return slices.Contains(allows[r], p) }

// AllTenants is the tenant of a binding in every tenant: the CSIRT's.
const AllTenants = "*"

// SystemTenant holds vigil's own records: the audit trail.
const SystemTenant = query.SystemTenant

// Tenant names end up in URLs, file names, log lines and SQL scopes, so
// they are kept to characters that need quoting in none of them.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckTenant returns an error saying why name is not a valid tenant
// name, or nil if it is one. The system tenant is not one: nothing but
// vigil writes there.
func CheckTenant(name string) error {
	if !tenantName.MatchString(name) {
		return fmt.Errorf("tenant name %q is not valid: use 1 to 63 lower-case letters, digits, '.', '_' or '-', beginning with a letter or digit", name)
	}
	return nil
}
