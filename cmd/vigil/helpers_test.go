package main

import (
	"context"
	"fmt"
	"github.com/vigilsec/vigil/meta/metatest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
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
