package clickhouse

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Retention in a scale-out runs on the process node that holds a
// partition: it lists the partition's expired events (Expired), erases
// their content in the partition's ledger, and only then deletes them
// here (DeleteExpired), so that nothing leaves ClickHouse that the
// ledger still shows.

// LedgerTenants returns the tenants that have events in ledger (a
// partition), sorted.
func (s *Store) LedgerTenants(ctx context.Context, ledger uint16) ([]string, error) {
	// In hex, the tenant's bytes come back as they are, whatever they
	// hold.
	out, err := s.query(ctx, 0, fmt.Sprintf("SELECT DISTINCT hex(tenant) FROM events WHERE ledger = %d FORMAT TabSeparated", ledger))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: listing the tenants of ledger %d: %w", ledger, err)
	}
	var tenants []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: listing the tenants of ledger %d: %q: %w", ledger, line, err)
		}
		tenants = append(tenants, string(b))
	}
	// Go's order, bytewise, whatever the server's collation.
	slices.Sort(tenants)
	return tenants, nil
}

// Expired returns up to limit seqs, ascending and each once, of the
// events of tenant in ledger whose time is before `before` and outside
// every keep range ([from, to); a zero bound is open): the legal holds.
// limit <= 0 means no limit. A zero before selects nothing, and a bound
// beyond the years Int64 nanoseconds hold (1678 to 2262) bounds nothing.
func (s *Store) Expired(ctx context.Context, ledger uint16, tenant string, before time.Time, keep [][2]time.Time, limit int) ([]uint64, error) {
	where, err := expiredWhere(ledger, tenant, before, keep)
	if err != nil {
		return nil, err
	}
	// DISTINCT: a retried insert leaves two copies of an event until a
	// merge collapses them, and FINAL would cost a merge of every part it
	// reads to say the same.
	stmt := "SELECT DISTINCT seq FROM events WHERE " + where + " ORDER BY seq"
	if limit > 0 {
		stmt += fmt.Sprintf(" LIMIT %d", limit)
	}
	out, err := s.query(ctx, 0, stmt+" FORMAT TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: finding the expired events of %q in ledger %d: %w", tenant, ledger, err)
	}
	var seqs []uint64
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		n, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: finding the expired events of %q in ledger %d: %q: %w", tenant, ledger, line, err)
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

// DeleteExpired deletes from every shard the events Expired selects
// (the same ledger, tenant, before and keep) whose seq is at most
// through, and returns once every shard has done so: a search or a count
// after it sees them gone.
//
// through is the highest seq Expired returned, whose events the ledger
// has erased. Rows of the partition stored since Expired ran are not:
// an event that arrives late with an old time is expired too, but its
// seq is higher, and a delete bounded by time alone would take it from
// ClickHouse while the ledger still holds its content. Bounded by
// through, the delete is exactly what was erased.
//
// The delete is a mutation of each shard's events_local (a Distributed
// table takes none), which the server runs in the background; DeleteExpired
// waits for it, until ctx ends. A server that records why a mutation
// failed (latest_fail_reason, after 18.16) fails the wait with the reason;
// on 18.16 a failed mutation only stays undone, and ctx ends the wait with
// the shard and the mutation named (the server's log says why). On 18.16
// a mutation reads the columns of its condition in every part of the
// table, rewriting the parts that hold rows to delete and hard-linking
// the rest, so a shard that holds none of the rows is left alone, and the
// caller deletes in batches rather than event by event. A failure may
// leave some shards done: calling again with the same arguments finishes
// the rest.
func (s *Store) DeleteExpired(ctx context.Context, ledger uint16, tenant string, before time.Time, keep [][2]time.Time, through uint64) error {
	where, err := expiredWhere(ledger, tenant, before, keep)
	if err != nil {
		return err
	}
	where += fmt.Sprintf(" AND seq <= %d", through)
	errs := make([]error, len(s.opts.Shards))
	var wg sync.WaitGroup
	for i := range s.opts.Shards {
		wg.Go(func() {
			if _, err := s.mutateIfAny(ctx, i, "events_local", where, "DELETE WHERE "+where); err != nil {
				errs[i] = fmt.Errorf("clickhouse: deleting the expired events of %q in ledger %d on shard %d: %w", tenant, ledger, i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Delete deletes the events of seqs from every shard (all their copies),
// and returns once every shard has done so. It serves a redaction on a
// scale-out: the process node holding a partition erases the events
// from the partition's ledger first, then deletes them here. The seqs go
// in mutations of deleteBatch each; a shard that holds none of a batch is
// spared its mutation. A failure may leave some batches or shards done:
// calling again with the same seqs finishes the rest.
func (s *Store) Delete(ctx context.Context, seqs []uint64) error {
	seqs = slices.Compact(slices.Sorted(slices.Values(seqs)))
	for len(seqs) > 0 {
		n := min(len(seqs), deleteBatch)
		in := "seq IN (" + seqList(seqs[:n]) + ")"
		errs := make([]error, len(s.opts.Shards))
		var wg sync.WaitGroup
		for i := range s.opts.Shards {
			wg.Go(func() {
				if _, err := s.mutateIfAny(ctx, i, "events_local", in, "DELETE WHERE "+in); err != nil {
					errs[i] = fmt.Errorf("clickhouse: deleting %d events (seqs %d to %d) on shard %d: %w", n, seqs[0], seqs[n-1], i+1, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

// deleteBatch bounds the seqs of one mutation of Delete: some 1.6 MB of
// text, which the server keeps with the mutation in system.mutations
// (the last hundred of a table), and one pass over the seq column of
// every part of a shard.
var deleteBatch = 100_000

// expiredWhere is the condition of the events Expired selects, which
// DeleteExpired deletes: one builder, so that the two cannot drift apart.
func expiredWhere(ledger uint16, tenant string, before time.Time, keep [][2]time.Time) (string, error) {
	if tenant == "" {
		// No event has none; Count reads "" as every tenant, and a delete
		// must not be one typo from that.
		return "", errors.New("clickhouse: retention needs a tenant")
	}
	where := []string{fmt.Sprintf("ledger = %d", ledger), "tenant = " + quote(tenant)}
	switch n := nanos(before); {
	case before.IsZero() || n == math.MinInt64:
		where = append(where, "0")
	case n != math.MaxInt64:
		where = append(where, fmt.Sprintf("time < %d", n))
	}
	for _, k := range keep {
		// A bound beyond what nanos holds bounds nothing, as in
		// SearchQuarantine: what it would leave out is clamped to the same
		// end.
		var in []string
		if n := nanos(k[0]); !k[0].IsZero() && n != math.MinInt64 {
			in = append(in, fmt.Sprintf("time >= %d", n))
		}
		if n := nanos(k[1]); !k[1].IsZero() && n != math.MaxInt64 {
			in = append(in, fmt.Sprintf("time < %d", n))
		}
		if len(in) == 0 {
			// A hold open at both ends holds everything.
			in = []string{"1"}
		}
		where = append(where, "NOT ("+strings.Join(in, " AND ")+")")
	}
	return strings.Join(where, " AND "), nil
}
