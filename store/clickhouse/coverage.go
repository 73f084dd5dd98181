package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// coverageColumns name the columns of a coverage answer, for readRows.
var coverageColumns = []string{"tenant", "environment", "source", "from", "events", "skewed", "last_seen", "delay", "delay_p95"}

// Coverage returns what each source of the tenants in scope sent that
// arrived in [from, to), vigil's own records left out, each event
// counted once: the DuckDB store's report (see its Coverage), grouped by
// tenant, environment, source and account (or host), in that order.
// The tenants are those of scope.Tenants, as for the quarantine: grants
// show no other tenant's coverage.
//
// The delays are interpolated between the two nearest values, as
// DuckDB's quantile_cont does, in the same float arithmetic, and
// truncated to the millisecond as there, so that both stores report the
// same delays for the same events (18.16 has no quantile that
// interpolates exactly: quantileExact picks a value, which for an even
// count would be half a step from DuckDB's median; see quantileCont).
func (s *Store) Coverage(ctx context.Context, scope query.Scope, from, to time.Time) ([]store.SourceCoverage, error) {
	where := append(tenantScope(scope), "source NOT LIKE 'vigil.%'")
	// No bound on the day: the partitions are by the events' time, which
	// a window of receipt does not bound (a late or skewed event is
	// received any day). A bound beyond what nanos holds bounds nothing,
	// as in SearchQuarantine.
	if n := nanos(from); n != math.MinInt64 {
		where = append(where, fmt.Sprintf("received >= %d", n))
	}
	if n := nanos(to); n != math.MaxInt64 {
		where = append(where, fmt.Sprintf("received < %d", n))
	}
	// The delays are in whole milliseconds of each time, as DuckDB's
	// epoch_ms gives them, before they are subtracted. The aliases are
	// not the columns' names: 18.16 would read sum(skewed) AS skewed as a
	// cyclic alias.
	stmt := `SELECT tenant, env, source, sender, n, n_skewed, last,
		` + quantileCont("delays", 0.5) + `, ` + quantileCont("delays", 0.95) + `
	FROM (
		SELECT tenant, ifNull(environment, '') AS env, source,
			if(ifNull(account, '') != '', ifNull(account, ''), ifNull(host, '')) AS sender,
			count() AS n, sum(skewed) AS n_skewed, max(received) AS last,
			arraySort(groupArray(intDiv(received, 1000000) - intDiv(time, 1000000))) AS delays
		FROM events FINAL
		WHERE ` + strings.Join(where, " AND ") + `
		GROUP BY tenant, env, source, sender
	)
	ORDER BY tenant, env, source, sender
	FORMAT JSONCompact`
	out, err := s.query(ctx, 0, stmt)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: reading the coverage: %w", err)
	}
	times := make([]bool, len(coverageColumns))
	times[6] = true // last_seen
	rows, err := readRows(out, coverageColumns, times, false)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: reading the coverage: %w", err)
	}
	cov := make([]store.SourceCoverage, 0, len(rows))
	for _, r := range rows {
		var c store.SourceCoverage
		var ok [9]bool
		c.Tenant, ok[0] = r[0].(string)
		c.Environment, ok[1] = r[1].(string)
		c.Source, ok[2] = r[2].(string)
		c.From, ok[3] = r[3].(string)
		var events, skewed uint64
		events, ok[4] = r[4].(uint64)
		skewed, ok[5] = r[5].(uint64)
		c.LastSeen, ok[6] = r[6].(time.Time)
		var delay, p95 float64
		delay, ok[7] = r[7].(float64)
		p95, ok[8] = r[8].(float64)
		for i, ok := range ok {
			if !ok {
				return nil, fmt.Errorf("clickhouse: reading the coverage: column %s is a %T", coverageColumns[i], r[i])
			}
		}
		c.Events, c.Skewed = int64(events), int64(skewed)
		c.Delay = time.Duration(delay) * time.Millisecond
		c.DelayP95 = time.Duration(p95) * time.Millisecond
		cov = append(cov, c)
	}
	if len(cov) == 0 {
		// As the DuckDB store answers no source: nil, which JSON writes
		// as null.
		return nil, nil
	}
	return cov, nil
}

// quantileCont is the q-quantile of a sorted, non-empty array of Int64,
// as DuckDB's quantile_cont computes it: at position (n-1)·q, the value
// below plus the fraction of the step to the value above, in Float64.
// It costs what quantileExact would: both hold every value of a group.
func quantileCont(sorted string, q float64) string {
	pos := fmt.Sprintf("((length(%s) - 1) * %v)", sorted, q)
	lo := fmt.Sprintf("toFloat64(%s[toUInt64(floor(%s)) + 1])", sorted, pos)
	hi := fmt.Sprintf("toFloat64(%s[toUInt64(ceil(%s)) + 1])", sorted, pos)
	return fmt.Sprintf("%s + (%s - floor(%s)) * (%s - %s)", lo, pos, pos, hi, lo)
}
