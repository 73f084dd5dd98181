package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a server's goroutines may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeSources runs vigil serve with a syslog listener and a watched
// directory from its config file, sends to both, and finds the events.
func TestServeSources(t *testing.T) {
	needFixtures(t)
	data, drop := t.TempDir(), t.TempDir()
	cfg := fmt.Sprintf(`
tenant: acme
ingest:
  syslog:
    tcp: 127.0.0.1:0
    udp: 127.0.0.1:0
    tenant: hosts
  dirs:
    - path: %s
      tenant: team-b
      poll: 100ms
      settle: 200ms
`, drop)
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	var serveOut, serveErr syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, &serveOut, &serveErr)
	}()
	tcpAddr := regexp.MustCompile(`msg="syslog listening" network=tcp addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := tcpAddr.FindStringSubmatch(serveErr.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no syslog listener: %s", serveErr.String())
		}
	}
	if err := waitFile(filepath.Join(data, addrFile)); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Octet-counted, then newline-framed (RFC 6587).
	msg := "<38>1 2026-01-01T00:00:00Z web-01 sshd 4242 - - Failed password for root from 203.0.113.9 port 22 ssh2"
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	fmt.Fprintf(c, "<38>Jan  1 00:00:01 web-01 sshd[4242]: Accepted password for deploy from 203.0.113.10 port 22 ssh2\n")
	c.Close()

	dropTrail(t, drop)

	wait := func(what string, args ...string) []map[string]any {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			rows := ndjson(t, mustVigil(t, append([]string{"search", "--data", data, "--format", "ndjson"}, args...)...))
			if len(rows) > 0 {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: nothing found; server log:\n%s", what, serveErr.String())
			}
		}
	}
	rows := wait("syslog", "--tenant", "hosts", "203.0.113.9 OR 203.0.113.10")
	if len(rows) != 2 {
		t.Errorf("syslog: %d events, want 2: %v", len(rows), rows)
	}
	rows = wait("dir", "--tenant", "team-b", "eventName:StopLogging")
	if len(rows) != 1 {
		t.Errorf("dir: %d StopLogging events, want 1", len(rows))
	}
	srcs := mustVigil(t, "sources", "--data", data)
	for _, want := range []string{"syslog/tcp", "dir/"} {
		if !strings.Contains(srcs, want) {
			t.Errorf("vigil sources lacks %s:\n%s", want, srcs)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, serveErr.String())
	}
}

// dropTrail writes a real CloudTrail delivery file, holding one
// StopLogging event, into dir as CloudTrail would: gzip'd.
func dropTrail(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "trail.json.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFile(path string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", path)
		}
	}
}

// TestReloadSources starts vigil serve without sources, adds a watched
// directory to its config and sends SIGHUP: the directory's files are
// read without a restart. A broken config then keeps the running one.
func TestReloadSources(t *testing.T) {
	needFixtures(t)
	data, drop := t.TempDir(), t.TempDir()
	s := startVigilServer(t, data)
	cfg := fmt.Sprintf("ingest:\n  dirs:\n    - {path: %s, tenant: team-c, poll: 100ms, settle: 200ms}\n", drop)
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dropTrail(t, drop)
	found := func() int {
		return len(ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "--tenant", "team-c", "eventName:StopLogging")))
	}
	for deadline := time.Now().Add(20 * time.Second); found() != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the directory added by the reload was not read")
		}
	}
	// A config that does not load is refused, and the server goes on.
	if err := os.WriteFile(filepath.Join(data, configFile), []byte("ingest:\n  dirs:\n    - {tenant: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	if resp, err := http.Get(s.base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a bad reload: %v %v", resp, err)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("vigil serve: %v\n%s", err, s.out.String())
	}
	if out := s.out.String(); !strings.Contains(out, "reloaded sources") || !strings.Contains(out, "ingest.dirs[0].path: missing") {
		t.Errorf("the server's log does not tell of both reloads:\n%s", out)
	}
}
