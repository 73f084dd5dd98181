package meta

import (
	"strconv"
	"strings"
)

// A filter builds the WHERE clause of a listing query and its arguments,
// with the $1, $2, … placeholders both engines take.
type filter struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (f *filter) arg(v any) string {
	f.args = append(f.args, v)
	return "$" + strconv.Itoa(len(f.args))
}

// is adds "col op value", as "rule_id = $3".
func (f *filter) is(col, op string, v any) {
	f.where = append(f.where, col+" "+op+" "+f.arg(v))
}

// scope keeps the rows to the tenants a caller sees: every tenant's
// (and those across tenants) with all, else those listed. It reports
// false for a scope that sees nothing, whose query need not run: a
// listing without a scope is empty, never everything.
func (f *filter) scope(tenants []string, all bool) bool {
	if all {
		return true
	}
	if len(tenants) == 0 {
		return false
	}
	f.in("tenant", tenants)
	return true
}

// in adds "col IN (values)".
func (f *filter) in(col string, vs []string) {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = f.arg(v)
	}
	f.where = append(f.where, col+" IN ("+strings.Join(ph, ", ")+")")
}

// list returns the query of rows from what, selected by the filter,
// newest first by order (a column, ties broken by id), at most limit of
// them: 100 when limit is 0 or less, and 10,000 at the most.
func (f *filter) list(what, order string, limit int) string {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + what
	if len(f.where) > 0 {
		q += " WHERE " + strings.Join(f.where, " AND ")
	}
	return q + " ORDER BY " + order + " DESC, id DESC LIMIT " + f.arg(min(limit, 10_000))
}
