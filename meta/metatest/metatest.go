// Package metatest runs tests of the metadata database against both of
// its engines: SQLite, and a real PostgreSQL server that it starts on
// loopback (Debian's postgresql package), once per test binary.
package metatest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create databases

	"github.com/vigilsec/vigil/meta"
)

// Each runs fn as a subtest against a fresh SQLite database and a fresh
// PostgreSQL database. Without PostgreSQL's programs the second is
// skipped, unless VIGIL_REQUIRE_ALL is set, when it fails.
func Each(t *testing.T, fn func(t *testing.T, db *meta.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, open(t, filepath.Join(t.TempDir(), "meta.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, open(t, Postgres(t)))
	})
}

func open(t *testing.T, path string) *meta.DB {
	t.Helper()
	db, err := meta.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var (
	server struct {
		once sync.Once
		url  string // of the server's postgres database
		err  error
		cmd  *exec.Cmd
		dir  string
	}
	databases atomic.Int64
)

// Main runs a test binary's tests (call it from TestMain), then stops
// the PostgreSQL server if they started one, and removes its files.
func Main(m *testing.M) int {
	code := m.Run()
	if server.cmd != nil {
		server.cmd.Process.Signal(syscall.SIGTERM)
		server.cmd.Wait()
	}
	if server.dir != "" {
		os.RemoveAll(server.dir)
	}
	return code
}

// Postgres returns the URL of a new, empty database on the test
// binary's PostgreSQL server, starting it the first time.
func Postgres(t testing.TB) string {
	t.Helper()
	server.once.Do(func() { server.url, server.err = start() })
	if server.err != nil {
		if os.Getenv("VIGIL_REQUIRE_ALL") != "" {
			t.Fatalf("PostgreSQL: %v", server.err)
		}
		t.Skipf("PostgreSQL: %v", server.err)
	}
	name := fmt.Sprintf("vigil_test_%d_%d", os.Getpid(), databases.Add(1))
	db, err := sql.Open("pgx", server.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return server.url[:len(server.url)-len("postgres")] + name
}

// start runs initdb and postgres in a temporary directory, as the
// postgres user when the tests run as root (PostgreSQL refuses root),
// listening on a free loopback port. The server is killed when the test
// binary exits: it is started from an OS thread that lives as long as
// the binary, with a parent-death signal (which Linux sends when the
// thread that started a process ends).
func start() (string, error) {
	type result struct {
		url string
		err error
	}
	ready := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives on
		url, err := startServer()
		ready <- result{url, err}
		select {}
	}()
	r := <-ready
	return r.url, r.err
}

func startServer() (string, error) {
	bin, err := binDir()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "vigil-postgres-")
	if err != nil {
		return "", err
	}
	server.dir = dir
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root, and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		cmd.Dir = dir
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	srv := run("postgres", "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-c", "fsync=off")
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	server.cmd, server.dir = srv, dir
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		db, err := sql.Open("pgx", url)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return url, nil
		}
		if time.Now().After(deadline) {
			srv.Process.Kill()
			return "", fmt.Errorf("postgres did not start in 30s: %w", err)
		}
	}
}

// binDir finds PostgreSQL's programs: on the PATH, or where Debian puts
// them.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no initdb on the PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
