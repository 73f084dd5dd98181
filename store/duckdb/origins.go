package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// Sessions calls fn with each event req selects, holding only what
// identity reassembly reads of it: its seq, time, tenant, actor id and
// type, and session. It reads no raw text, so that a pass over the
// temporary credentials used in days of events stays cheap, and it does
// not hold the rows: fn sees each as it is read.
func (s *DB) Sessions(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	q := query.Query{}
	if req.Query != nil {
		q = *req.Query
	}
	var fields []query.FieldRef
	for _, f := range []string{"seq", "time", "tenant", "actor_id", "actor_type", "session_id", "session_origin"} {
		fields = append(fields, query.FieldRef{Name: f})
	}
	q.Pipes = append(slices.Clip(q.Pipes), &query.Project{Fields: fields})
	req.Query = &q
	req.Limit = 0
	compiled, err := query.Compile(req, query.DuckDB)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, compiled.Text, compiled.Args...)
	if err != nil {
		return fmt.Errorf("reading the sessions of events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e                              event.Event
			actorID, actorType, id, origin sql.NullString
		)
		if err := rows.Scan(&e.Seq, &e.Time, &e.Tenant, &actorID, &actorType, &id, &origin); err != nil {
			return fmt.Errorf("reading the sessions of events: %w", err)
		}
		e.Time = e.Time.UTC()
		e.Actor.ID, e.Actor.Type = actorID.String, actorType.String
		e.Session.ID, e.Session.Origin = id.String, origin.String
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the sessions of events: %w", err)
	}
	return nil
}

// SetOrigins sets the session origin of the events with the seqs given:
// identity reassembly learns some only after the events are stored,
// when the call that issued their credential arrives after them. The
// ledger keeps the origin known at ingest, as it keeps every event
// unchanged; origin_backfills records what it holds beside the new
// origin, so that Compare tells a backfill from a store gone wrong.
func (s *DB) SetOrigins(ctx context.Context, origins map[uint64]string) error {
	if len(origins) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("setting origins in %s: %w", s.opts.Path, err)
	}
	defer tx.Rollback()
	seqs := slices.Sorted(maps.Keys(origins))
	for len(seqs) > 0 {
		n := min(len(seqs), 1000)
		args := make([]any, 0, 2*n)
		for _, seq := range seqs[:n] {
			args = append(args, seq, origins[seq])
		}
		values := strings.TrimSuffix(strings.Repeat("(CAST(? AS UBIGINT), CAST(? AS VARCHAR)),", n), ",")
		seqs = seqs[n:]
		// The ledger's origin is what the store held before its first
		// backfill; a later one keeps it.
		_, err := tx.ExecContext(ctx, `INSERT INTO origin_backfills
			SELECT f.seq, f.origin, e.session_origin FROM (VALUES `+values+`) f(seq, origin) JOIN events e ON e.seq = f.seq
			ON CONFLICT (seq) DO UPDATE SET origin = excluded.origin`, args...)
		if err != nil {
			return fmt.Errorf("recording the origins set in %s: %w", s.opts.Path, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE events SET session_origin = f.origin
			FROM (VALUES `+values+`) f(seq, origin) WHERE events.seq = f.seq`, args...)
		if err != nil {
			return fmt.Errorf("setting origins in %s: %w", s.opts.Path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("setting origins in %s: %w", s.opts.Path, err)
	}
	return nil
}

// CopyOrigins applies the origins backfilled in the store file at path,
// which must not be open, to s, rebuilt from the ledger: the ledger does
// not hold them. An event whose origin in s is no longer the one the
// old store recorded as the ledger's keeps its own.
func (s *DB) CopyOrigins(ctx context.Context, path string) (int64, error) {
	return s.fromOldStore(ctx, path, func(conn *sql.Conn) (int64, error) {
		var n int
		err := conn.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE database_name = 'old_store' AND table_name = 'origin_backfills'`).Scan(&n)
		if err != nil || n == 0 {
			return 0, err // a store made before backfills has none
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback()
		const applicable = `FROM old_store.origin_backfills b JOIN events e ON e.seq = b.seq
			WHERE e.session_origin IS NOT DISTINCT FROM b.ledger_origin`
		if _, err := tx.ExecContext(ctx, `INSERT INTO origin_backfills SELECT b.seq, b.origin, b.ledger_origin `+applicable+` ON CONFLICT (seq) DO NOTHING`); err != nil {
			return 0, fmt.Errorf("copying the origins of %s: %w", path, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE events SET session_origin = b.origin FROM origin_backfills b WHERE events.seq = b.seq`)
		if err != nil {
			return 0, fmt.Errorf("copying the origins of %s: %w", path, err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("copying the origins of %s: %w", path, err)
		}
		return res.RowsAffected()
	})
}

// backfilled returns the backfills of the events with seqs in [lo, hi):
// the origin the store holds, and the ledger's.
func (s *DB) backfilled(ctx context.Context, lo, hi uint64) (map[uint64][2]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, origin, ledger_origin FROM origin_backfills
		WHERE seq >= CAST(? AS UBIGINT) AND seq < CAST(? AS UBIGINT)`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("reading the origins backfilled in %s: %w", s.opts.Path, err)
	}
	defer rows.Close()
	var out map[uint64][2]string
	for rows.Next() {
		var (
			seq            uint64
			origin, ledger sql.NullString
		)
		if err := rows.Scan(&seq, &origin, &ledger); err != nil {
			return nil, fmt.Errorf("reading the origins backfilled in %s: %w", s.opts.Path, err)
		}
		if out == nil {
			out = map[uint64][2]string{}
		}
		out[seq] = [2]string{origin.String, ledger.String}
	}
	return out, rows.Err()
}
