package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

type applied struct {
	version int
	name    string
	at      int64
}

func appliedMigrations(t *testing.T, db *DB) []applied {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT version, name, applied FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var as []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.version, &a.name, &a.at); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return as
}

func TestOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	ms, err := loadMigrations(migrations)
	if err != nil {
		t.Fatal(err)
	}
	first := appliedMigrations(t, db)
	if len(first) != len(ms) {
		t.Fatalf("%d migrations recorded, want %d: %v", len(first), len(ms), first)
	}
	for i, a := range first {
		if a.version != ms[i].version || a.name != ms[i].name {
			t.Errorf("recorded %d %s, want %d %s", a.version, a.name, ms[i].version, ms[i].name)
		}
	}
	for _, table := range []string{"tenants", "tokens", "source_cursors"} {
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	db.Close()

	// Reopened, nothing is applied again: the same rows, with the times
	// they were first applied.
	for range 2 {
		db, err := Open(ctx, path, nil)
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		again := appliedMigrations(t, db)
		db.Close()
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Errorf("after reopening, schema_migrations = %v, want %v", again, first)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (1000, '1000_future', 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path, nil)
	if err == nil {
		db.Close()
		t.Fatal("opened a database with a newer schema")
	}
	if !errors.Is(err, ErrTooNew) || !strings.Contains(err.Error(), "1000") {
		t.Errorf("error = %v; want ErrTooNew naming the version", err)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	raw, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "m.db"), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x TEXT);")},
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (x TEXT);\nINSERT INTO nosuchtable VALUES (1);")},
	}
	if err := migrate(ctx, &DB{write: raw}, fsys, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "0002_b") {
		t.Fatalf("migrating with a broken migration: %v; want an error naming it", err)
	}
	var v int
	raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != 1 {
		t.Errorf("schema version %d after the failure, want 1", v)
	}
	if _, err := raw.Exec(`SELECT * FROM b`); err == nil {
		t.Error("the failed migration's first statement was kept")
	}

	fsys["migrations/0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (x TEXT);")}
	if err := migrate(ctx, &DB{write: raw}, fsys, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrating after the fix: %v", err)
	}
	raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if v != 2 {
		t.Errorf("schema version %d after the fix, want 2", v)
	}
}

func TestLoadMigrations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  string // the versions in order, or the error's text
	}{
		{"in order", []string{"0002_b.sql", "0001_a.sql", "0003_c.sql"}, "[1 2 3]"},
		{"wide numbers", []string{"1_a.sql", "00002_b.sql"}, "[1 2]"},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, "expected number 2"},
		{"repeat", []string{"0001_a.sql", "0001_b.sql"}, "expected number 2"},
		{"not from 1", []string{"0002_b.sql"}, "expected number 1"},
		{"no number", []string{"init.sql"}, "NNNN_what.sql"},
		{"zero", []string{"0000_a.sql"}, "NNNN_what.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys["migrations/"+f] = &fstest.MapFile{}
			}
			ms, err := loadMigrations(fsys)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				var vs []int
				for _, m := range ms {
					vs = append(vs, m.version)
				}
				got = fmt.Sprint(vs)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO tokens (id, name, tenant, role, hash, created) VALUES ('t1', 'n', 'nosuchtenant', 'ingest', 'h', 0)`)
		return err
	})
	if err == nil {
		t.Error("a token was stored for a tenant that does not exist")
	}
}

func TestReadersAreReadOnly(t *testing.T) {
	db, _ := openTemp(t)
	rows, err := db.Query(context.Background(), `INSERT INTO tenants (name, created) VALUES ('a', 0) RETURNING name`)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Error("Query wrote to the database")
	}
}

func TestWAL(t *testing.T) {
	db, _ := openTemp(t)
	var mode string
	if err := db.QueryRow(context.Background(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenOddPath(t *testing.T) {
	// '?' and '#' would begin an SQLite URI's parameters or fragment.
	dir := filepath.Join(t.TempDir(), "a?b#c d%20")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "meta.db")
	db, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SetCursor(context.Background(), "s", "c"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the database is not where it was asked to be: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the database's permissions are %v, want 0600", fi.Mode().Perm())
	}
}

func TestCursor(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	for i, step := range []struct {
		set          string // source=cursor to set first, if any
		source, want string
	}{
		{"", "s3/bucket/a", ""},
		{"s3/bucket/a=2024/01/01/x.gz", "s3/bucket/a", "2024/01/01/x.gz"},
		{"", "s3/bucket/b", ""},
		{"s3/bucket/a=2024/01/02/y.gz", "s3/bucket/a", "2024/01/02/y.gz"},
		{"s3/bucket/b=", "s3/bucket/b", ""},
		{"", "s3/bucket/a", "2024/01/02/y.gz"},
	} {
		if source, cursor, ok := strings.Cut(step.set, "="); ok {
			if err := db.SetCursor(ctx, source, cursor); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		got, err := db.Cursor(ctx, step.source)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != step.want {
			t.Errorf("step %d: Cursor(%q) = %q, want %q", i, step.source, got, step.want)
		}
	}
}

// Two handles on one file stand for two processes, `vigil serve` and a
// command beside it: each sees what the other wrote, and their writers
// wait for each other rather than fail.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if err := a.SetCursor(ctx, "src", "from-a"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Cursor(ctx, "src"); err != nil || got != "from-a" {
		t.Errorf("b sees %q, %v; want a's cursor", got, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for _, db := range []*DB{a, b} {
		for g := range 2 {
			wg.Go(func() {
				for i := range 50 {
					errs <- db.SetCursor(ctx, fmt.Sprintf("src%d", g), fmt.Sprint(i))
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent writers: %v", err)
		}
	}
	for g := range 2 {
		if got, _ := a.Cursor(ctx, fmt.Sprintf("src%d", g)); got != "49" {
			t.Errorf("src%d cursor = %q, want 49", g, got)
		}
	}
}
