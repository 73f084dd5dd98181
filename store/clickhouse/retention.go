package clickhouse

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
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
// a mutation rewrites every part
// of the table, matching or not, so a shard that holds none of the rows
// is left alone, and the caller deletes in batches rather than event by
// event. A failure may leave some shards done: calling again with the
// same arguments finishes the rest.
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
			if err := s.deleteOn(ctx, i, where); err != nil {
				errs[i] = fmt.Errorf("clickhouse: deleting the expired events of %q in ledger %d on shard %d: %w", tenant, ledger, i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

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

// deleteOn deletes the rows of events_local that match where on a shard
// and waits until the mutation that does it is done.
func (s *Store) deleteOn(ctx context.Context, shard int, where string) error {
	table := s.opts.Database + ".events_local"
	out, err := s.exec(ctx, shard, "SELECT 1 FROM "+table+" WHERE "+where+" LIMIT 1", nil)
	if err != nil {
		return fmt.Errorf("looking for the rows: %w", err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	before, err := s.mutations(ctx, shard, false)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, shard, "ALTER TABLE "+table+" DELETE WHERE "+where, nil); err != nil {
		return fmt.Errorf("starting the delete: %w", err)
	}
	// The server names the mutation it made nowhere in its answer, and
	// rewrites the command's text: the mutation is among those that
	// appeared since, and waiting for them all costs nothing more, since
	// a part takes its pending mutations in one pass, in order.
	after, err := s.mutations(ctx, shard, false)
	if err != nil {
		return err
	}
	var ours []string
	for id := range after {
		if _, ok := before[id]; !ok {
			ours = append(ours, id)
		}
	}
	slices.Sort(ours)
	// A mutation that is done may already be gone from system.mutations
	// (a table keeps the last hundred), and so is no longer waited for.
	failReason, err := s.hasFailReason(ctx, shard)
	if err != nil {
		return err
	}
	wait := 50 * time.Millisecond
	for {
		now, err := s.mutations(ctx, shard, failReason)
		if err != nil {
			return err
		}
		pending := ""
		for _, id := range ours {
			m, ok := now[id]
			switch {
			case !ok || m.done:
			case m.failReason != "":
				return fmt.Errorf("mutation %s failed: %s", id, m.failReason)
			case pending == "":
				pending = fmt.Sprintf("mutation %s has %d parts to do", id, m.partsToDo)
			}
		}
		if pending == "" {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			// 18.16 records no reason for a mutation that fails: it only
			// stays undone, and the server's log says why.
			return fmt.Errorf("waiting for the delete: %s: %w", pending, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// mutation is a row of system.mutations.
type mutation struct {
	done       bool
	partsToDo  int64
	failReason string
}

// mutations returns the mutations of a shard's events_local by id, with
// the reason of the last failure if the server records one (failReason).
func (s *Store) mutations(ctx context.Context, shard int, failReason bool) (map[string]mutation, error) {
	cols := "mutation_id, is_done, parts_to_do"
	if failReason {
		cols += ", latest_fail_reason"
	}
	stmt := "SELECT " + cols + " FROM system.mutations WHERE database = " + quote(s.opts.Database) +
		" AND table = 'events_local' FORMAT JSONCompact"
	out, err := s.exec(ctx, shard, stmt, nil)
	if err != nil {
		return nil, fmt.Errorf("reading system.mutations: %w", err)
	}
	var ans struct{ Data [][]json.RawMessage }
	if err := json.Unmarshal(out, &ans); err != nil {
		return nil, fmt.Errorf("reading system.mutations: %w", err)
	}
	ms := make(map[string]mutation, len(ans.Data))
	for _, row := range ans.Data {
		if len(row) < 3 {
			return nil, fmt.Errorf("reading system.mutations: a row of %d columns", len(row))
		}
		var id string
		if err := json.Unmarshal(row[0], &id); err != nil {
			return nil, fmt.Errorf("reading system.mutations: mutation_id: %w", err)
		}
		var m mutation
		done, err := strconv.ParseUint(unquote(row[1]), 10, 8)
		if err != nil {
			return nil, fmt.Errorf("reading system.mutations: is_done of %s: %w", id, err)
		}
		m.done = done != 0
		if m.partsToDo, err = strconv.ParseInt(unquote(row[2]), 10, 64); err != nil {
			return nil, fmt.Errorf("reading system.mutations: parts_to_do of %s: %w", id, err)
		}
		if failReason && len(row) > 3 {
			if err := json.Unmarshal(row[3], &m.failReason); err != nil {
				return nil, fmt.Errorf("reading system.mutations: latest_fail_reason of %s: %w", id, err)
			}
		}
		ms[id] = m
	}
	return ms, nil
}

// hasFailReason says whether a shard's system.mutations has
// latest_fail_reason, which came after 18.16: without it, a wait for a
// mutation that fails ends with ctx alone.
func (s *Store) hasFailReason(ctx context.Context, shard int) (bool, error) {
	out, err := s.exec(ctx, shard, "SELECT count() FROM system.columns WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'", nil)
	if err != nil {
		return false, fmt.Errorf("reading system.columns: %w", err)
	}
	return strings.TrimSpace(string(out)) == "1", nil
}
