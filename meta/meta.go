// Package meta is the metadata database: the small, relational state
// beside the events — tenants, tokens, where pull sources resumed — as
// opposed to the events themselves, which live in the ledger and the store.
//
// It is SQLite, through the pure-Go modernc.org/sqlite, so that a laptop
// install needs no server; the schema and its queries are kept to the SQL
// that PostgreSQL also accepts, for the shared backend that comes later.
// Several processes may open the same file at once: `vigil serve` and a
// `vigil token create` run beside it.
package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"runtime"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// busyTimeoutMillis is how long a connection waits for another one,
// possibly in another process, to release the write lock before it gives
// up with SQLITE_BUSY. Writes here are a few rows each, so a long wait
// means something is stuck, not busy.
const busyTimeoutMillis = 10000

// A DB is an open metadata database. Its methods are safe for concurrent
// use.
//
// It holds two pools over the same file. Writes go through a pool of one
// connection that begins its transactions IMMEDIATE: writers in this
// process queue in Go rather than contend in SQLite, and a transaction
// holds the write lock from its first statement, so it cannot fail half
// way when another process wrote since it began reading (SQLite's
// SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out). Reads go through
// a pool of query-only connections which, under WAL, run beside the
// writer and each other.
type DB struct {
	write *sql.DB
	read  *sql.DB
	log   *slog.Logger
	// pg is set for a PostgreSQL database, where one pool serves reads
	// and writes, and writes take turns by an advisory lock.
	pg bool
}

// Open opens the metadata database at path, creating it if need be, and
// brings its schema up to date. It refuses a database whose schema is
// newer than this binary knows.
//
// A path that is a postgres:// or postgresql:// URL opens a PostgreSQL
// database instead, for several vigil nodes to share.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if IsPostgres(path) {
		return openPostgres(ctx, path, logger)
	}
	// SQLite creates the file, and its -wal and -shm files after it, with
	// the umask's permissions; created here first, they all get the
	// owner's only, since the file holds other tenants' state.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("meta: opening %s: %w", path, err)
	}
	f.Close()

	db := &DB{log: logger}
	// synchronous stays at SQLite's default, FULL: a token printed or a
	// cursor saved must survive a power cut, and metadata writes are too
	// few for the fsync to matter.
	db.write, err = sql.Open("sqlite", dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("meta: opening %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)

	if err := migrate(ctx, db, migrations, logger); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("meta: %s: %w", path, err)
	}

	db.read, err = sql.Open("sqlite", dsn(path, url.Values{"_query_only": {"1"}}))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("meta: opening %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	// Idle connections are kept: a new one costs a file open and its
	// pragmas.
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: opening %s: %w", path, err)
	}
	return db, nil
}

// dsn names the database file as an SQLite URI, so that a path holding
// '?' or '#' is not taken for parameters, with the connection settings
// every connection shares plus extra.
func dsn(path string, extra url.Values) string {
	q := url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMillis)},
		"_foreign_keys": {"1"},
	}
	maps.Copy(q, extra)
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// IsPostgres reports whether path names a PostgreSQL database.
func IsPostgres(path string) bool {
	return strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://")
}

// openPostgres opens a PostgreSQL database through pgx and brings its
// schema up to date. The schema and queries are those of SQLite: the SQL
// both accept.
func openPostgres(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	pool, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("meta: opening PostgreSQL: %w", err)
	}
	db := &DB{write: pool, read: pool, log: logger, pg: true}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("meta: opening PostgreSQL: %w", err)
	}
	if err := migrate(ctx, db, migrations, logger); err != nil {
		pool.Close()
		return nil, fmt.Errorf("meta: PostgreSQL: %w", err)
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.read == db.write {
		return db.write.Close()
	}
	return errors.Join(db.read.Close(), db.write.Close())
}

// Query runs a query that reads, on one of the reading connections.
// Queries use $1, $2, … placeholders, which SQLite and PostgreSQL both
// accept.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.read.QueryContext(ctx, query, args...)
}

// QueryRow runs a query that reads at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.read.QueryRowContext(ctx, query, args...)
}

// Write runs fn in a write transaction, which it commits if fn returns nil
// and rolls back otherwise, returning fn's error as it is. Writes take
// turns, so fn must not call Write: it would wait for itself.
func (db *DB) Write(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.inTx(ctx, fn)
}

// writeLock is the PostgreSQL advisory lock a write transaction holds:
// writes take turns there as they do in SQLite, whose single writer the
// queries' read-then-write transactions count on.
const writeLock = 0x76696769 // "vigi"

func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if db.pg {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", writeLock); err != nil {
			tx.Rollback()
			return fmt.Errorf("taking the write lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}
