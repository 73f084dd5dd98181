package meta

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The schema is the sum of the migrations, applied in the order of the
// numbers their names begin with (0001_init.sql, 0002_alerts.sql, …),
// each once. A migration, once released, is never edited: a change is a
// new migration.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the migrations of fsys, in order, and checks that
// they are numbered 1, 2, 3, … without gaps or repeats: a gap would mean
// a file lost in a merge, and the schema would silently lack it.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must be NNNN_what.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", base, err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d; the migrations must be numbered 1, 2, 3, …", m.name, i+1)
		}
	}
	return ms, nil
}

// ErrTooNew is returned by Open for a database whose schema a newer vigil
// wrote: this one would not know what the newer tables mean, nor keep
// them consistent.
var ErrTooNew = errors.New("the database was written by a newer vigil")

// migrate brings the schema of db up to the migrations of fsys, each in
// a transaction of its own together with its row in schema_migrations, so
// that a migration that fails leaves no trace and the schema at the version
// before it.
//
// Two processes may open a new database at the same moment; each
// transaction takes the write lock before it reads the version, so the
// second finds the first's migrations applied and skips them.
func migrate(ctx context.Context, db *DB, fsys fs.FS, logger *slog.Logger) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	var current int
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name    TEXT NOT NULL,
	applied BIGINT NOT NULL
)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		current, err = schemaVersion(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("%w: its schema is at version %d, this vigil knows up to %d; run a vigil at least as new",
			ErrTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			v, err := schemaVersion(ctx, tx)
			if err != nil || v >= m.version { // another process applied it first
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("applying migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("recording migration %s: %w", m.name, err)
			}
			logger.Info("applied a metadata schema migration", "migration", m.name)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}
