package clickhouse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// quarantineColumns are the quarantine table's, in the order of
// quarantineRow's fields: the DuckDB store's, but for the time
// (nanoseconds, beside a Date for the partitions, as the events keep
// theirs), the format under its own name (the DuckDB store's source),
// an unknown line or offset as 0 rather than NULL, and the raw bytes
// that are not UTF-8 in base64 (raw_bin), since JSON carries text.
// offset is quoted: newer servers know OFFSET as a keyword.
const quarantineColumns = `day Date,
	received Int64,
	tenant String,
	format String,
	origin String,
	line Int64,
	"offset" Int64,
	reason String,
	raw String,
	raw_bin Nullable(String)`

// quarantineRow is one quarantined record as the quarantine table's
// JSONEachRow.
type quarantineRow struct {
	Day      string  `json:"day"`
	Received int64   `json:"received"`
	Tenant   string  `json:"tenant"`
	Format   string  `json:"format"`
	Origin   string  `json:"origin"`
	Line     int64   `json:"line"`
	Offset   int64   `json:"offset"`
	Reason   string  `json:"reason"`
	Raw      string  `json:"raw"`
	RawBin   *string `json:"raw_bin"`
}

func quarantineRowOf(q *store.Quarantined) quarantineRow {
	ns := nanos(q.Received)
	r := quarantineRow{
		Day: dayOf(q.Received), Received: ns,
		Tenant: q.Tenant, Format: q.Format, Origin: q.Origin, Line: q.Line, Offset: q.Offset, Reason: q.Reason,
		Raw: string(q.Raw),
	}
	if !utf8.Valid(q.Raw) {
		// As rowOf does: searchable text, and the exact bytes beside it.
		r.Raw = strings.ToValidUTF8(r.Raw, "\uFFFD")
		r.RawBin = str(base64.StdEncoding.EncodeToString(q.Raw))
	}
	return r
}

// nanos is t as the received column holds it. UnixNano is undefined
// outside the years 1678 to 2262; clamped, such a time still sorts and
// bounds a range as it should.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// quarantineNext turns the shard a batch of quarantined records tries
// first; one counter for the process is enough to spread them.
var quarantineNext atomic.Uint64

// Quarantine stores records that could not be parsed, all on one shard.
//
// The shard goes round-robin rather than by a hash of the tenant: a
// feed that breaks floods the quarantine with one tenant's records,
// which a hash would pile on one shard, and nothing is gained by keeping
// a tenant's records together, since a search reads every shard. And a
// record has no identity to hash for a retry to land where its first
// try did (as Append's events do): the ingest does not retry a failed
// quarantine, and these records have no other copy. So a shard that
// fails passes the batch to the next, and the batch is lost only when
// every shard fails; the price is a duplicate when a shard stored the
// batch but its answer was lost, which, for a diagnostic record, is the
// lesser harm.
func (s *Store) Quarantine(ctx context.Context, qs []store.Quarantined) error {
	if len(qs) == 0 {
		return nil
	}
	// Encoded once, for every shard it may be sent to; a batch of
	// quarantined records is small beside the events it came with.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i := range qs {
		if err := enc.Encode(quarantineRowOf(&qs[i])); err != nil {
			return fmt.Errorf("clickhouse: encoding the quarantined record from %s: %w", qs[i].Origin, err)
		}
	}
	n := len(s.opts.Shards)
	first := int(quarantineNext.Add(1) % uint64(n))
	stmt := "INSERT INTO " + s.opts.Database + ".quarantine_local FORMAT JSONEachRow"
	var errs []error
	for k := range n {
		i := (first + k) % n
		_, err := s.exec(ctx, i, stmt, bytes.NewReader(body.Bytes()))
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("shard %d: %w", i+1, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("clickhouse: storing %d quarantined records: %w", len(qs), errors.Join(errs...))
}

// quarantineResultColumns are the columns a quarantine search returns,
// the DuckDB store's.
var quarantineResultColumns = []string{"received", "tenant", "source", "origin", "line", "offset", "reason", "raw"}

// SearchQuarantine lists quarantined records received in [from, to) (a
// zero bound is open) whose reason, origin or raw text contain every
// word of text, without regard to case; "" or "*" lists them all. It
// answers as the DuckDB store does: newest first, then by origin and
// line, an unknown line or offset as nil, the raw text with the bytes
// that are not UTF-8 replaced. Records of tenants outside scope are
// never returned.
func (s *Store) SearchQuarantine(ctx context.Context, text string, scope query.Scope, from, to time.Time, limit int) (*store.Result, error) {
	where := tenantScope(scope)
	// A bound beyond what nanos holds bounds nothing: the records it
	// would leave out are clamped to the same end.
	if !from.IsZero() && nanos(from) != math.MinInt64 {
		where = append(where, fmt.Sprintf("received >= %d", nanos(from)), "day >= "+quote(dayOf(from)))
	}
	if !to.IsZero() && nanos(to) != math.MaxInt64 {
		where = append(where, fmt.Sprintf("received < %d", nanos(to)), "day <= "+quote(dayOf(to)))
	}
	for _, w := range strings.Fields(text) {
		if w == "*" {
			continue
		}
		// lowerUTF8, not lower, which folds ASCII only: DuckDB's lower
		// folds every letter, as strings.ToLower does the word.
		lit := quote(strings.ToLower(w))
		where = append(where, fmt.Sprintf("(position(lowerUTF8(reason), %[1]s) > 0 OR position(lowerUTF8(origin), %[1]s) > 0 OR position(lowerUTF8(raw), %[1]s) > 0)", lit))
	}
	stmt := `SELECT received, tenant, format, origin, line, "offset", reason, raw FROM quarantine`
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	// DuckDB keeps an unknown line as NULL, which it sorts last.
	stmt += " ORDER BY received DESC, origin, line < 1, line"
	if limit > 0 {
		stmt += fmt.Sprintf(" LIMIT %d", limit)
	}
	out, err := s.query(ctx, 0, stmt+" FORMAT JSONCompact")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: searching quarantine: %w", err)
	}
	times := make([]bool, len(quarantineResultColumns))
	times[0] = true
	res := &store.Result{Columns: quarantineResultColumns}
	if res.Rows, err = readRows(out, quarantineResultColumns, times, false); err != nil {
		return nil, fmt.Errorf("clickhouse: reading quarantine: %w", err)
	}
	for _, row := range res.Rows {
		for _, j := range []int{4, 5} { // line, offset
			if n, ok := row[j].(int64); ok && n <= 0 {
				row[j] = nil
			}
		}
	}
	return res, nil
}

// tenantScope is the condition that keeps a read of what is kept by
// tenant beside the events (the quarantine, coverage, metric samples) to
// the tenants scope includes (query.Scope.Includes). The events' scope
// is the query compiler's, which grants widen; the rest follows Tenants
// alone, as the DuckDB store's quarantine does, so no grant shows
// another tenant's quarantine.
func tenantScope(scope query.Scope) []string {
	switch {
	case scope.All && slices.Contains(scope.Tenants, query.SystemTenant):
		return nil
	case scope.All:
		return []string{"tenant <> " + quote(query.SystemTenant)}
	case len(scope.Tenants) == 0:
		return []string{"0"}
	}
	lits := make([]string, len(scope.Tenants))
	for i, t := range scope.Tenants {
		lits[i] = quote(t)
	}
	return []string{"tenant IN (" + strings.Join(lits, ", ") + ")"}
}

// dayOf is the partition of a record received at t: its day (UTC), or
// the first or last a Date holds safely (it ends in 2105) for a time
// outside them, which a bound on the day column turns the same way.
// The bounds spare a search the partitions outside its range.
func dayOf(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Year() < 1970:
		return "1970-01-01"
	case t.Year() > 2100:
		return "2100-12-31"
	}
	return t.Format(time.DateOnly)
}
