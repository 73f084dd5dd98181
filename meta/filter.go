package meta

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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

// scopeParts is scope for rows that may span tenants (alerts,
// detections): those of the tenants listed, and those across tenants
// (tenant NULL) with a part in one of them, in the table of parts whose
// column of row ids idCol names (alert_parts.alert_id). The rows across
// tenants come whole: the query trims them to the tenants' parts (see
// coverage).
func (f *filter) scopeParts(tenants []string, all bool, idCol string) bool {
	if all {
		return true
	}
	if len(tenants) == 0 {
		return false
	}
	table, col, _ := strings.Cut(idCol, ".")
	f.where = append(f.where, "("+f.inList("tenant", tenants)+
		" OR tenant IS NULL AND id IN (SELECT "+col+" FROM "+table+" WHERE "+f.inList("tenant", tenants)+"))")
	return true
}

// coverage says how a scope (tenants, or every tenant with all) sees a
// row of tenant, or, for a row across tenants (tenant ""), of the
// tenants of its parts: whether it sees the row at all, and whether it
// sees the whole of it. A row across tenants without parts (recorded
// before rows had parts) is seen by a scope over every tenant only.
func coverage(tenant string, parts []string, tenants []string, all bool) (seen, whole bool) {
	if all {
		return true, true
	}
	if tenant != "" {
		in := slices.Contains(tenants, tenant)
		return in, in
	}
	whole = len(parts) > 0
	for _, p := range parts {
		if slices.Contains(tenants, p) {
			seen = true
		} else {
			whole = false
		}
	}
	return seen, whole
}

// in adds "col IN (values)".
func (f *filter) in(col string, vs []string) {
	f.where = append(f.where, f.inList(col, vs))
}

// inList returns "col IN (values)", with the values as arguments.
func (f *filter) inList(col string, vs []string) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = f.arg(v)
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
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

// A querier runs queries: a *sql.DB, or a *sql.Tx for reads inside a
// write.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanAll runs a reading query on q and scans each row with scan; what
// names the rows in its errors ("saved searches").
func scanAll[T any](ctx context.Context, q querier, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("meta: reading %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: reading %s: %w", what, err)
	}
	return out, nil
}

// execSome runs a statement in tx that must change a row: one that
// changes none is ErrNotFound.
func execSome(ctx context.Context, tx *sql.Tx, stmt string, args ...any) error {
	res, err := tx.ExecContext(ctx, stmt, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}
