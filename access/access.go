// Package access decides who may do what in vigil: the roles, the tenants
// they act within, and the API tokens that carry them (users, groups and
// sharing come later). Its state lives in the metadata database.
package access

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// A Role is what its holder may do within its tenant.
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

// Tenant names end up in URLs, file names, log lines and SQL scopes, so
// they are kept to characters that need quoting in none of them.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckTenant returns an error saying why name is not a valid tenant
// name, or nil if it is one.
func CheckTenant(name string) error {
	if !tenantName.MatchString(name) {
		return fmt.Errorf("tenant name %q is not valid: use 1 to 63 lower-case letters, digits, '.', '_' or '-', beginning with a letter or digit", name)
	}
	return nil
}
