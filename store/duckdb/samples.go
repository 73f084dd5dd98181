package duckdb

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/query"
)

// AppendSamples stores the samples of a tenant's series. A sample that
// is not a number (NaN, ±Inf: a target's staleness marker) is not
// stored.
func (s *DB) AppendSamples(ctx context.Context, tenant string, series []metric.Series) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.withAppender(ctx, "samples", func(a *duckdb.Appender) error {
		for i := range series {
			sr := &series[i]
			sr.Labels.Sort()
			labels, err := labelsJSON(sr.Labels)
			if err != nil {
				return err
			}
			id := sr.ID(tenant)
			for _, x := range sr.Samples {
				if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
					continue
				}
				if err := a.AppendRow(tenant, sr.Metric, id, labels, x.Time.UTC(), x.Value); err != nil {
					return fmt.Errorf("appending a sample of %s%s: %w", sr.Metric, sr.Labels, err)
				}
			}
		}
		return nil
	})
}

// labelsJSON writes labels as a JSON object, names in order.
func labelsJSON(ls metric.Labels) (string, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		for _, s := range [2]string{l.Name, l.Value} {
			q, err := json.Marshal(s)
			if err != nil {
				return "", err
			}
			b.Write(q)
			if s == l.Name {
				b.WriteByte(':')
			}
		}
	}
	b.WriteByte('}')
	return b.String(), nil
}

// Samples returns the series of a metric in scope with samples in
// [from, to), each with its samples oldest first: the samples as they
// came, and for the hours Downsample rolled up, their means. match
// narrows them to the series whose labels have the values it gives; a
// series' tenant is its label "tenant".
func (s *DB) Samples(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error) {
	where, args := scopeWhere(scope)
	where = append(where, "metric = ?", "time >= CAST(? AS TIMESTAMP_NS)", "time < CAST(? AS TIMESTAMP_NS)")
	args = append(args, name, from.UTC(), to.UTC())
	for n, v := range match {
		if n == "tenant" {
			where = append(where, "tenant = ?")
			args = append(args, v)
			continue
		}
		where = append(where, "json_extract_string(labels, ?) = ?")
		args = append(args, "$."+jsonPathKey(n), v)
	}
	// Raw samples, and the hourly means of those downsampled.
	cond := strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, series, labels, time, value FROM samples WHERE `+cond+`
		UNION ALL SELECT tenant, series, labels, time, value FROM samples_hourly WHERE `+cond+`
		ORDER BY series, time`, append(args, args...)...)
	if err != nil {
		return nil, fmt.Errorf("reading samples of %s: %w", name, err)
	}
	defer rows.Close()
	var (
		out  []metric.Series
		last uint64
	)
	for rows.Next() {
		var (
			tenant, labels string
			id             uint64
			x              metric.Sample
		)
		if err := rows.Scan(&tenant, &id, &labels, &x.Time, &x.Value); err != nil {
			return nil, fmt.Errorf("reading samples of %s: %w", name, err)
		}
		x.Time = x.Time.UTC()
		if len(out) == 0 || id != last {
			var m map[string]string
			if err := json.Unmarshal([]byte(labels), &m); err != nil {
				return nil, fmt.Errorf("reading the labels of a series of %s: %w", name, err)
			}
			m["tenant"] = tenant
			out = append(out, metric.Series{Metric: name, Labels: metric.NewLabels(m)})
			last = id
		}
		sr := &out[len(out)-1]
		sr.Samples = append(sr.Samples, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading samples of %s: %w", name, err)
	}
	return out, nil
}

// jsonPathKey quotes a label name as a key of a JSON path.
func jsonPathKey(name string) string {
	q, _ := json.Marshal(name)
	return string(q)
}

// scopeWhere returns the condition that keeps a query of what is kept
// by tenant outside the events (samples, quarantine, coverage) to the
// tenants of a scope, as the query compiler keeps the events: shares do
// not reach here, and all tenants are every tenant but the system's.
func scopeWhere(scope query.Scope) ([]string, []any) {
	switch {
	case scope.All && slices.Contains(scope.Tenants, query.SystemTenant):
		return nil, nil
	case scope.All:
		return []string{"tenant <> ?"}, []any{query.SystemTenant}
	case len(scope.Tenants) == 0:
		return []string{"FALSE"}, nil
	}
	args := make([]any, len(scope.Tenants))
	for i, t := range scope.Tenants {
		args[i] = t
	}
	return []string{"tenant IN (?" + strings.Repeat(", ?", len(scope.Tenants)-1) + ")"}, args
}

// ParquetToCSV writes the rows of a Parquet file as a CSV file with a
// header, for readers of CSV exports (cost exports come as either).
func (s *DB) ParquetToCSV(ctx context.Context, src, dst string) error {
	_, err := s.db.ExecContext(ctx, "COPY (SELECT * FROM read_parquet("+quoteLiteral(src)+")) TO "+quoteLiteral(dst)+" (HEADER, DELIMITER ',')")
	if err != nil {
		return fmt.Errorf("reading %s as Parquet: %w", src, err)
	}
	return nil
}

// Downsample rolls the samples older than before up into an hour a
// series a row (their mean, least, greatest and count), and deletes
// them: what a baseline of weeks reads, in a sixtieth of the rows of
// minute samples. It returns how many samples it rolled up. Samples that
// arrive for an hour already rolled up make a second row of it.
func (s *DB) Downsample(ctx context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	b := before.UTC().Truncate(time.Hour)
	// A series' samples at one time are summed before the hour's mean,
	// as the rules' aggregation sums them: a flow rollup's bucket stored
	// in parts is one sum. (A gauge's sample sent twice counts twice,
	// here as in the rules.)
	_, err = tx.ExecContext(ctx, `INSERT INTO samples_hourly
		SELECT tenant, metric, series, any_value(labels), date_trunc('hour', time), avg(value), min(value), max(value), count(*)
		FROM (SELECT tenant, metric, series, any_value(labels) AS labels, time, sum(value) AS value
			FROM samples WHERE time < CAST(? AS TIMESTAMP_NS) GROUP BY tenant, metric, series, time)
		GROUP BY tenant, metric, series, date_trunc('hour', time)`, b)
	if err != nil {
		return 0, fmt.Errorf("downsampling samples: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM samples WHERE time < CAST(? AS TIMESTAMP_NS)`, b)
	if err != nil {
		return 0, fmt.Errorf("downsampling samples: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("downsampling samples: %w", err)
	}
	return res.RowsAffected()
}

// ReplaceSamples stores a tenant's series in place of the samples the
// store has of them at the same times: for measures restated whole, as
// a cloud's cost export is each day for the month so far.
func (s *DB) ReplaceSamples(ctx context.Context, tenant string, series []metric.Series) error {
	s.mu.Lock()
	for i := range series {
		sr := &series[i]
		sr.Labels.Sort()
		id := sr.ID(tenant)
		for rest := sr.Samples; len(rest) > 0; {
			n := min(len(rest), 500)
			// As text: database/sql takes no uint64 with its high bit set.
			args := []any{tenant, strconv.FormatUint(id, 10)}
			for _, x := range rest[:n] {
				args = append(args, x.Time.UTC())
			}
			in := strings.TrimSuffix(strings.Repeat("CAST(? AS TIMESTAMP_NS),", n), ",")
			for _, table := range []string{"samples", "samples_hourly"} {
				if _, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE tenant = ? AND series = CAST(? AS UBIGINT) AND time IN ("+in+")", args...); err != nil {
					s.mu.Unlock()
					return fmt.Errorf("replacing samples of %s%s: %w", sr.Metric, sr.Labels, err)
				}
			}
			rest = rest[n:]
		}
	}
	s.mu.Unlock()
	return s.AppendSamples(ctx, tenant, series)
}
