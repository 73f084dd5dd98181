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

	_ "modernc.org/sqlite" // registers the "sqlite" driver
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
}

// Open opens the metadata database at path, creating it if need be, and
// brings its schema up to date. It refuses a database whose schema is
// newer than this binary knows.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
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

	if err := migrate(ctx, db.write, migrations, logger); err != nil {
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

// Close closes the database.
func (db *DB) Close() error {
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
	return inTx(ctx, db.write, fn)
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
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
