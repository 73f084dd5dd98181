package query

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SystemTenant holds vigil's own records, the audit trail. A scope of
// all tenants does not read it: it is read only by naming it, as the
// auditors' scopes do, so that seeing every team's events does not mean
// seeing what every analyst searched for.
const SystemTenant = "_system"

// Scope is the set of events a query may read. It comes from the
// caller's identity, never from the query. The zero Scope reads nothing,
// so that a caller that forgets to set it fails closed.
type Scope struct {
	All     bool     // every tenant but SystemTenant (the CSIRT, the operators)
	Tenants []string // these tenants' events (SystemTenant too, if named)
	// Shares are parts of other tenants' events, read through grants.
	// They widen what a search, a hunt or an export reads, and nothing
	// else: what is kept by tenant outside the events (alerts, cases,
	// the inventory, metrics, quarantine) follows Tenants alone.
	Shares []Share
}

// A Share is read access to part of a tenant's events, granted by that
// tenant: the events its filter matches, in a window of event time, with
// some fields hidden.
type Share struct {
	Grant  string // the grant's id, named in errors
	Tenant string
	// Filter selects the events shared; nil shares them all. It must
	// have no commands (Parse's result for a filter such as
	// `environment:prod AND src_ip:203.0.113.0/24`).
	Filter   *Query
	From, To time.Time // event time [From, To); a zero bound is open
	// Redact names the fields the grantee does not see: document paths
	// (requestParameters hides the object and everything under it) and
	// normalized fields (src_ip). A query may not name them, and events
	// read through the share come without them.
	Redact []string
}

// Narrow restricts s to one tenant: its own events if s includes them,
// else what its shares of that tenant allow, else nothing. Asking for a
// tenant never widens a scope.
func (s Scope) Narrow(tenant string) Scope {
	if s.Includes(tenant) {
		return Scope{Tenants: []string{tenant}}
	}
	var out Scope
	for _, sh := range s.Shares {
		if sh.Tenant == tenant {
			out.Shares = append(out.Shares, sh)
		}
	}
	return out
}

// Includes reports whether s reads all of a tenant's data: for what is
// kept by tenant outside the events table (alerts, the inventory), the
// same rule the compiler applies to the events. A share is not enough.
func (s Scope) Includes(tenant string) bool {
	return s.All && tenant != SystemTenant || slices.Contains(s.Tenants, tenant)
}

// Redaction returns the fields hidden from s in a tenant's events: none
// when s includes the tenant, else every field any of its shares of the
// tenant redacts. Two shares of one tenant that hide different fields
// hide the union from every event of the tenant: an event that both
// select shows no more than either allows.
func (s Scope) Redaction(tenant string) Redaction {
	if s.Includes(tenant) {
		return Redaction{}
	}
	var r Redaction
	for _, sh := range s.Shares {
		if sh.Tenant == tenant {
			r.add(sh.Redact)
		}
	}
	return r
}

// Redacts reports whether any share of s hides a field.
func (s Scope) Redacts() bool {
	for _, sh := range s.Shares {
		if len(sh.Redact) > 0 && !s.Includes(sh.Tenant) {
			return true
		}
	}
	return false
}

// A Redaction is what is hidden from an event: columns of the events
// table, set to NULL, and paths of the original document, removed from
// it.
type Redaction struct {
	Columns []string
	Paths   [][]string
}

// Empty reports whether r hides nothing.
func (r Redaction) Empty() bool { return len(r.Columns) == 0 && len(r.Paths) == 0 }

func (r *Redaction) add(names []string) {
	for _, n := range names {
		if f, ok := fieldsByName[n]; ok {
			if !slices.Contains(r.Columns, f.Column) {
				r.Columns = append(r.Columns, f.Column)
				if f.BinColumn != "" {
					r.Columns = append(r.Columns, f.BinColumn)
				}
			}
			continue
		}
		p := strings.Split(n, ".")
		if !slices.ContainsFunc(r.Paths, func(q []string) bool { return slices.Equal(p, q) }) {
			r.Paths = append(r.Paths, p)
		}
	}
}

// Hides reports whether a query naming name would read something r
// hides: a redacted field, a path under a redacted one, or one above it
// (whose text holds the redacted value). Paths compare without regard to
// case, as parsers that read keys spelled in another case do.
func (r Redaction) Hides(name string) bool {
	if f, ok := fieldsByName[name]; ok {
		return slices.Contains(r.Columns, f.Column)
	}
	if len(r.Columns) > 0 {
		// A hidden normalized field hides the whole document (see
		// store.RedactDocument), so that no path of it leaks the value.
		return true
	}
	for _, dc := range docColumns[name] {
		if slices.Contains(r.Columns, dc.column) {
			return true // read from the hidden column for some sources
		}
	}
	p := strings.Split(name, ".")
	for _, q := range r.Paths {
		n := min(len(p), len(q))
		if slices.EqualFunc(p[:n], q[:n], strings.EqualFold) {
			return true
		}
	}
	return false
}

// CheckShare reports whether a share's filter is one a grant may hold:
// a filter with no commands, naming no field it redacts (a grant whose
// filter names what it hides would tell the grantee its values).
func CheckShare(sh Share) error {
	if sh.Filter != nil && len(sh.Filter.Pipes) > 0 {
		return fmt.Errorf("a grant's filter selects events; it cannot have commands (%s)", sh.Filter.Pipes[0])
	}
	for _, n := range sh.Redact {
		if n == "" || strings.Contains(n, "..") || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") {
			return fmt.Errorf("redacted field %q is not a field name or document path", n)
		}
		if n == "tenant" || n == "time" || n == "seq" {
			return fmt.Errorf("field %s cannot be redacted: every event is read and proved by it", n)
		}
	}
	if sh.Filter == nil {
		return nil
	}
	var r Redaction
	r.add(sh.Redact)
	var err error
	names(sh.Filter.Filter, func(name string, _ int) {
		if err == nil && r.Hides(name) {
			err = fmt.Errorf("the grant's filter names %s, which it redacts", name)
		}
	})
	if err == nil && !r.Empty() && hasText(sh.Filter.Filter) {
		// Free text searches the hidden fields too.
		err = errors.New("a grant that redacts fields cannot select events by free text; name the fields")
	}
	return err
}

// names calls fn with each field a filter names, and its position.
func names(e Expr, fn func(name string, at int)) {
	switch e := e.(type) {
	case *And:
		for _, a := range e.Args {
			names(a, fn)
		}
	case *Or:
		for _, a := range e.Args {
			names(a, fn)
		}
	case *Not:
		names(e.X, fn)
	case *Compare:
		fn(e.Field, e.At)
	}
}

// hasText reports whether a filter has a free-text term other than *.
func hasText(e Expr) bool {
	switch e := e.(type) {
	case *And:
		return slices.ContainsFunc(e.Args, hasText)
	case *Or:
		return slices.ContainsFunc(e.Args, hasText)
	case *Not:
		return hasText(e.X)
	case *Text:
		return !e.Value.matchesAll()
	}
	return false
}

// hidden is what a query over s may not name: the union of what its
// shares of tenants it does not include redact.
func (s Scope) hidden() Redaction {
	var r Redaction
	for _, sh := range s.Shares {
		if !s.Includes(sh.Tenant) {
			r.add(sh.Redact)
		}
	}
	return r
}
