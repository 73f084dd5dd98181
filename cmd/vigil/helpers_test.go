package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/meta/metatest"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// childEnv, when set, makes the test binary run as vigil itself, with its
// arguments as vigil's: the crash tests need a process they can kill, and
// re-executing the test binary costs far less than building vigil.
const childEnv = "VIGIL_TEST_RUN_AS_VIGIL"

// fsizeEnv sets the child's file size limit, in bytes.
const fsizeEnv = "VIGIL_TEST_FSIZE"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A file size limit stands in for a full disk: a write past it
		// fails with EFBIG (Go ignores SIGXFSZ), as one on a full disk
		// fails with ENOSPC.
		if v := os.Getenv(fsizeEnv); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err == nil {
				err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "setting the file size limit:", err)
				os.Exit(2)
			}
		}
		// As main does: SIGTERM shuts a server down gracefully.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(metatest.Main(m))
}

// vigilProcess returns a command that runs vigil with args in a child
// process.
func vigilProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}

// needFixtures skips the test when the shared fixtures are missing,
// unless VIGIL_REQUIRE_ALL says that nothing may be skipped.
func needFixtures(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(stratus); err != nil {
		if os.Getenv("VIGIL_REQUIRE_ALL") != "" {
			t.Fatalf("fixtures missing: %v", err)
		}
		t.Skipf("fixtures missing (set VIGIL_REQUIRE_ALL=1 to fail instead): %v", err)
	}
}

// served is a vigil serve the test runs on a data directory, on
// loopback, stopped when the test ends.
type served struct {
	t           *testing.T
	ctx         context.Context
	base, token string
	log         *syncBuffer // its standard error: the log
	// stop stops the server and waits until it has; the test's cleanup
	// calls it too.
	stop func()
}

// serve starts vigil serve on data, on a free loopback port, and waits
// until it answers.
func serve(t *testing.T, data string) *served {
	t.Helper()
	if s := scaleEngines.served(data); s != nil {
		return s
	}
	return serveWith(t, data, "--listen", "127.0.0.1:0")
}

// serveWith starts vigil serve on data with more flags, and waits until
// it answers.
func serveWith(t *testing.T, data string, flags ...string) *served {
	t.Helper()
	if scaleEngines != nil {
		flags = append(flags, "--role", roleAll)
		scaleEngines.join(t, data)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out syncBuffer
	s := &served{t: t, ctx: ctx, log: &syncBuffer{}}
	go func() {
		done <- run(ctx, append([]string{"serve", "--data", data}, flags...), &out, s.log)
	}()
	s.stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(s.stop)
	if err := waitFile(filepath.Join(data, addrFile)); err != nil {
		t.Fatal(err)
	}
	if s.base, s.token = (&dataFlags{dir: data}).server(ctx); s.base == "" {
		t.Fatalf("no server: %s", s.log.String())
	}
	return s
}

// call sends a request to the API as the administrator and returns the
// body of its answer, failing the test on an answer other than 2xx.
func (s *served) call(method, path string, body []byte) []byte {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s: %s %s", method, path, resp.Status, out)
	}
	return out
}

// page returns a console page, read with the administrator's token,
// failing the test on an answer other than 200.
func (s *served) page(path string) string {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return string(b)
}

// wait waits up to 20 seconds for ok.
func (s *served) wait(what string, ok func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: never; server log:\n%s", what, s.log.String())
		}
	}
}

// eventually polls ok until it holds, for up to 20 s. On one node what
// an import gives is there once it returns; on a scale-out, an event's
// origin whose issue another partition held comes a moment after the
// event is stored (importData shortens that moment).
func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStored waits until the server holds n events, besides the audit
// records of the test's own requests.
func (s *served) waitStored(n int) {
	s.t.Helper()
	s.wait(fmt.Sprintf("%d events stored", n), func() bool {
		_, rows, _ := s.searchAs(s.token, "NOT source:"+access.AuditSource+" | stats count()")
		return len(rows) == 1 && rows[0]["count"] == float64(n)
	})
}

// waitDemo waits until the server holds every event of the demo dataset:
// at once when it serves one data directory, which loads the demo before
// it serves; as the partitions store it on a scale-out.
func (s *served) waitDemo() {
	s.t.Helper()
	var want countingSink
	if _, err := ingest.NewImporter(&want, ingest.ImportOptions{Parse: parse.Options{Received: time.Now(), Backfill: true}}).
		ImportFS(context.Background(), demo.Files(), "demo"); err != nil {
		s.t.Fatal(err)
	}
	s.wait(fmt.Sprintf("the demo's %d events", want.n.Load()), func() bool {
		_, rows, _ := s.searchAs(s.token, "origin:demo/* | stats count()")
		return len(rows) == 1 && rows[0]["count"] == float64(want.n.Load())
	})
}

// countingSink is an importer's sink that counts the events.
type countingSink struct{ n atomic.Int64 }

func (c *countingSink) Append(_ context.Context, evs []*event.Event) error {
	c.n.Add(int64(len(evs)))
	return nil
}

func (c *countingSink) Quarantine(context.Context, []store.Quarantined) error { return nil }
