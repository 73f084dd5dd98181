package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rows change in place by mutations (ALTER TABLE … DELETE or UPDATE):
// retention's deletes, SetOrigins' updates, Downsample's claims and
// deletes, ReplaceSamples' deletes. The server runs a mutation in the
// background, on the shard whose local table it names (a Distributed
// table takes none), and the helpers here wait until it is done, so that
// a read after the call sees what it changed.
//
// On 18.16 a mutation reads the columns of its condition in every part
// of the table and makes a new version of each: it rewrites the parts
// that hold rows to change (a DELETE the whole part, an UPDATE the
// columns it sets) and hard-links the rest. A shard that holds none of
// the rows is spared that read (mutateIfAny), and callers change rows
// in large batches rather than one at a time.

// mutation is a row of system.mutations.
type mutation struct {
	done       bool
	partsToDo  int64
	failReason string
}

// mutateIfAny runs command on a shard's table, as mutate does, unless no
// row matches probe, when it makes no mutation. It says whether it made
// one (tried to, when it fails).
func (s *Store) mutateIfAny(ctx context.Context, shard int, table, probe, command string) (bool, error) {
	out, err := s.sendLong(ctx, shard, "SELECT 1 FROM "+s.opts.Database+"."+table+" WHERE "+probe+" LIMIT 1")
	if err != nil {
		return false, fmt.Errorf("looking for the rows of %s: %w", table, err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return false, nil
	}
	return true, s.mutate(ctx, shard, table, command)
}

// mutate runs an ALTER TABLE command on a shard's table (command is what
// follows the table's name: DELETE WHERE …, UPDATE … WHERE …) and waits
// until the mutation it makes is done, or ctx ends.
func (s *Store) mutate(ctx context.Context, shard int, table, command string) error {
	before, err := s.mutations(ctx, shard, table, false)
	if err != nil {
		return err
	}
	if _, err := s.sendLong(ctx, shard, "ALTER TABLE "+s.opts.Database+"."+table+" "+command); err != nil {
		return fmt.Errorf("starting the mutation of %s: %w", table, err)
	}
	// The server names the mutation it made nowhere in its answer, and
	// rewrites the command's text: the mutation is among those that
	// appeared since, and waiting for them all costs nothing more, since
	// a part takes its pending mutations in one pass, in order.
	after, err := s.mutations(ctx, shard, table, false)
	if err != nil {
		return err
	}
	var ours []string
	for id := range after {
		if _, ok := before[id]; !ok {
			ours = append(ours, id)
		}
	}
	return s.awaitMutations(ctx, shard, table, ours)
}

// settleMutations waits until the mutations of a shard's table that are
// under way are done.
func (s *Store) settleMutations(ctx context.Context, shard int, table string) error {
	ms, err := s.mutations(ctx, shard, table, false)
	if err != nil {
		return err
	}
	var pending []string
	for id, m := range ms {
		if !m.done {
			pending = append(pending, id)
		}
	}
	return s.awaitMutations(ctx, shard, table, pending)
}

// awaitMutations waits until the mutations ids of a shard's table are
// done, or gone from system.mutations (a table keeps the last hundred,
// and a mutation gone is done). It fails with the reason of one that
// failed if the server records it, and when ctx ends: 18.16 records no
// reason (see hasFailReason), and a mutation that fails there only stays
// undone, the server's log saying why.
func (s *Store) awaitMutations(ctx context.Context, shard int, table string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	// In order, so that the one an error names is the oldest pending.
	slices.Sort(ids)
	failReason, err := s.hasFailReason(ctx, shard)
	if err != nil {
		return err
	}
	wait := 50 * time.Millisecond
	for {
		now, err := s.mutations(ctx, shard, table, failReason)
		if err != nil {
			return err
		}
		pending := ""
		for _, id := range ids {
			m, ok := now[id]
			switch {
			case !ok || m.done:
			case m.failReason != "":
				return fmt.Errorf("mutation %s of %s failed: %s", id, table, m.failReason)
			case pending == "":
				pending = fmt.Sprintf("mutation %s of %s has %d parts to do", id, table, m.partsToDo)
			}
		}
		if pending == "" {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the mutation: %s: %w", pending, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// mutations returns the mutations of a shard's table by id, with the
// reason of the last failure if the server records one (failReason).
func (s *Store) mutations(ctx context.Context, shard int, table string, failReason bool) (map[string]mutation, error) {
	cols := "mutation_id, is_done, parts_to_do"
	if failReason {
		cols += ", latest_fail_reason"
	}
	stmt := "SELECT " + cols + " FROM system.mutations WHERE database = " + quote(s.opts.Database) +
		" AND table = " + quote(table) + " FORMAT JSONCompact"
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
// latest_fail_reason, which came after 18.16.
func (s *Store) hasFailReason(ctx context.Context, shard int) (bool, error) {
	out, err := s.exec(ctx, shard, "SELECT count() FROM system.columns WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'", nil)
	if err != nil {
		return false, fmt.Errorf("reading system.columns: %w", err)
	}
	return strings.TrimSpace(string(out)) == "1", nil
}

// sendLong sends a statement to a shard in the request's body, which
// takes what a URL may not, and with room for long lists of values: a
// text of maxStatement, and maxElements values (the server's default,
// 50,000, refuses a list of Delete's batch).
func (s *Store) sendLong(ctx context.Context, shard int, stmt string) ([]byte, error) {
	return s.send(ctx, shard, url.Values{"max_query_size": {strconv.Itoa(maxStatement)}, "max_ast_elements": {strconv.Itoa(maxElements)}}, strings.NewReader(stmt))
}
