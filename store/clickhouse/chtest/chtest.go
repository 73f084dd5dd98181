// Package chtest runs ClickHouse servers for tests: Debian's
// clickhouse-server (package clickhouse-server, an old release, 18.16),
// started on free loopback ports with a data directory of the test's
// own, as the shards of one cluster, and stopped when the test ends.
package chtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TB is what the servers need of their caller: a test's testing.TB, or
// a benchmark command's stand-in for one.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

// Server is where the servers are looked for.
var Server = []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"}

// Cluster is the name of the cluster the shards form, in each server's
// remote_servers.
const Cluster = "vigil"

// A Shard is one running server.
type Shard struct {
	// URL is its HTTP interface (http://127.0.0.1:PORT).
	URL string
	// TCP is the port of its native protocol, which the other shards'
	// Distributed tables use.
	TCP int
	exe string
	cmd *exec.Cmd
	dir string
}

// Start starts n servers as the shards of one cluster and waits until
// each answers. Without clickhouse-server the test is skipped, unless
// VIGIL_REQUIRE_ALL is set, when it fails: CI installs it.
func Start(t TB, n int) []*Shard {
	t.Helper()
	exe := ""
	for _, p := range Server {
		if _, err := os.Stat(p); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv("VIGIL_REQUIRE_ALL") != "" {
			t.Fatal("no clickhouse-server installed (apt-get install clickhouse-server)")
		}
		t.Skip("no clickhouse-server installed (apt-get install clickhouse-server; set VIGIL_REQUIRE_ALL=1 to fail instead)")
	}
	shards := make([]*Shard, n)
	ports := make([][3]int, n)
	// The ports are held until all are chosen, so that no two are the
	// same.
	var held []net.Listener
	for i := range shards {
		for j := range ports[i] {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, l)
			ports[i][j] = l.Addr().(*net.TCPAddr).Port
		}
		shards[i] = &Shard{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[i][0]), TCP: ports[i][1], exe: exe, dir: t.TempDir()}
	}
	for _, l := range held {
		l.Close()
	}
	var remote strings.Builder
	for _, s := range shards {
		fmt.Fprintf(&remote, "<shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>", s.TCP)
	}
	for i, s := range shards {
		if err := writeConfig(s.dir, ports[i], remote.String()); err != nil {
			t.Fatal(err)
		}
		s.start(t)
		t.Cleanup(s.stop)
	}
	for _, s := range shards {
		s.waitUp(t)
	}
	return shards
}

// start starts the server on its data directory.
func (s *Shard) start(t TB) {
	t.Helper()
	s.cmd = exec.Command(s.exe, "--config-file="+filepath.Join(s.dir, "config.xml"))
	s.cmd.Dir = s.dir
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s.exe, err)
	}
}

func (s *Shard) waitUp(t TB) {
	t.Helper()
	if err := s.wait(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
		t.Fatalf("clickhouse-server at %s: %v\n%s", s.URL, err, log)
	}
}

// Restart starts a stopped server again, on what it had stored, and
// waits until it answers.
func (s *Shard) Restart(t TB) {
	t.Helper()
	s.start(t)
	s.waitUp(t)
}

// Stop stops the server and waits for it, as a crash would end it: the
// rest of the cluster goes on without it.
func (s *Shard) Stop() { s.stop() }

func (s *Shard) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// wait waits until the server answers a query.
func (s *Shard) wait(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/?query=SELECT%201", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer after %s: %v", timeout, last)
}

// writeConfig writes a server's config.xml and users.xml into dir: HTTP,
// native and interserver ports on loopback, everything kept in dir, and
// the cluster's shards. The server is 18.16, whose root element is
// <yandex>.
func writeConfig(dir string, ports [3]int, shards string) error {
	config := fmt.Sprintf(`<yandex>
  <logger><level>warning</level><log>%[1]s/server.log</log><errorlog>%[1]s/error.log</errorlog><console>0</console></logger>
  <http_port>%[2]d</http_port>
  <tcp_port>%[3]d</tcp_port>
  <interserver_http_port>%[4]d</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <remote_servers><%[5]s>%[6]s</%[5]s></remote_servers>
</yandex>
`, dir, ports[0], ports[1], ports[2], Cluster, shards)
	users := `<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o644)
}
