package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// Coverage returns what each source of the tenants in scope sent that
// arrived in [from, to), vigil's own records left out.
func (s *DB) Coverage(ctx context.Context, scope query.Scope, from, to time.Time) ([]store.SourceCoverage, error) {
	where, args := scopeWhere(scope)
	where = append(where, "received >= ?", "received < ?", "source NOT LIKE 'vigil.%'")
	args = append(args, from.UTC(), to.UTC())
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, coalesce(environment, ''), source,
			coalesce(nullif(account, ''), host, ''), count(*), count(*) FILTER (WHERE skewed), max(received),
			quantile_cont(epoch_ms(received) - epoch_ms(time), 0.5), quantile_cont(epoch_ms(received) - epoch_ms(time), 0.95)
		FROM events WHERE `+strings.Join(where, " AND ")+`
		GROUP BY ALL ORDER BY 1, 2, 3, 4`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the coverage of %s: %w", s.opts.Path, err)
	}
	defer rows.Close()
	var out []store.SourceCoverage
	for rows.Next() {
		var (
			c          store.SourceCoverage
			delay, p95 sql.NullFloat64
		)
		if err := rows.Scan(&c.Tenant, &c.Environment, &c.Source, &c.From, &c.Events, &c.Skewed, &c.LastSeen, &delay, &p95); err != nil {
			return nil, fmt.Errorf("reading the coverage of %s: %w", s.opts.Path, err)
		}
		c.LastSeen = c.LastSeen.UTC()
		c.Delay = time.Duration(delay.Float64) * time.Millisecond
		c.DelayP95 = time.Duration(p95.Float64) * time.Millisecond
		out = append(out, c)
	}
	return out, rows.Err()
}
