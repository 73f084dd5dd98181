package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sshdLines returns the first n lines of a real sshd log (loghub; see
// its SOURCES.md).
func sshdLines(t *testing.T, n int) []string {
	t.Helper()
	f, err := os.Open("../../shared/testdata/loghub-openssh-linux/OpenSSH/OpenSSH_2k.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < n {
		t.Fatalf("the sshd log has %d lines, want %d", len(lines), n)
	}
	return lines
}

type dirTest struct {
	dir     string
	acc     *testAcceptor
	cursors *testCursors
	clock   *testClock
}

func newDirTest(t *testing.T) *dirTest {
	return &dirTest{
		dir:     t.TempDir(),
		acc:     &testAcceptor{},
		cursors: &testCursors{},
		clock:   &testClock{t: time.Date(2024, 7, 31, 14, 0, 0, 0, time.UTC)},
	}
}

// source starts a source on the test's directory and stores, as a
// restarted process would.
func (dt *dirTest) source(t *testing.T, edit ...func(*DirOptions)) *DirSource {
	t.Helper()
	opts := DirOptions{Dir: dt.dir, Tenant: "acme", Settle: 10 * time.Second, Now: dt.clock.Now}
	for _, e := range edit {
		e(&opts)
	}
	d, err := NewDirSource(opts, dt.acc, dt.cursors, nil, prometheus.NewPedanticRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

func (dt *dirTest) write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dt.dir, name), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (dt *dirTest) append(t *testing.T, name, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dt.dir, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, d *DirSource) {
	t.Helper()
	if err := d.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// raws returns the raw bytes of the events stored, in order.
func (dt *dirTest) raws() []string {
	dt.acc.mu.Lock()
	defer dt.acc.mu.Unlock()
	var r []string
	for _, ev := range dt.acc.events {
		r = append(r, string(ev.Raw))
	}
	return r
}

// checkRaws checks that the events stored are want, each once, in order.
func (dt *dirTest) checkRaws(t *testing.T, when string, want []string) {
	t.Helper()
	if got := dt.raws(); !slices.Equal(got, want) {
		t.Fatalf("%s: events\n%q\nwant\n%q", when, got, want)
	}
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestDirTail(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 20)
	half := len(ls[10]) / 2
	dt.write(t, "auth.log", lines(ls[:10]...)+ls[10][:half])
	d := dt.source(t)
	poll(t, d)
	dt.checkRaws(t, "a new file with a partial last line", ls[:10])
	for _, ev := range dt.acc.events {
		if ev.Tenant != "acme" || ev.Source != "syslog" || !strings.HasPrefix(ev.Origin, filepath.Join(dt.dir, "auth.log")+"@0:") {
			t.Fatalf("event: tenant %q, source %q, origin %q", ev.Tenant, ev.Source, ev.Origin)
		}
	}

	dt.append(t, "auth.log", ls[10][half:]+"\n"+lines(ls[11:15]...))
	poll(t, d)
	dt.checkRaws(t, "after appending", ls[:15])
	if ev := dt.acc.events[10]; !strings.Contains(ev.Origin, "auth.log@") || strings.Contains(ev.Origin, "@0:") {
		t.Errorf("origin of an appended line: %q", ev.Origin)
	}
	poll(t, d)
	dt.checkRaws(t, "polling again", ls[:15])

	restarted := dt.source(t)
	poll(t, restarted)
	dt.checkRaws(t, "after a restart", ls[:15])
	dt.append(t, "auth.log", lines(ls[15:20]...))
	poll(t, restarted)
	dt.checkRaws(t, "appending after a restart", ls[:20])
	if len(dt.acc.resent) > 0 {
		t.Errorf("batches sent again: %q", dt.acc.resent)
	}
	if got := testutil.ToFloat64(restarted.metrics.events); got != 5 {
		t.Errorf("events metric after the restart: %v, want 5", got)
	}
}

// TestDirRotateRename rotates as logrotate does by default: the file is
// renamed, to a name the glob does not match, and a new one created.
func TestDirRotateRename(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 30)
	dt.write(t, "auth.log", lines(ls[:10]...))
	d := dt.source(t, func(o *DirOptions) { o.Glob = "auth.log" })
	poll(t, d)
	dt.checkRaws(t, "before the rotation", ls[:10])

	// Lines written before the rotation, the last one unfinished.
	dt.append(t, "auth.log", lines(ls[10:12]...)+ls[12][:20])
	if err := os.Rename(filepath.Join(dt.dir, "auth.log"), filepath.Join(dt.dir, "auth.log.1")); err != nil {
		t.Fatal(err)
	}
	dt.write(t, "auth.log", lines(ls[20:25]...))
	poll(t, d)
	got := dt.raws()
	if want := append(slices.Clone(ls[:12]), ls[20:25]...); !slices.Equal(sortedKeys(got), sortedKeys(want)) {
		t.Fatalf("after the rotation: events\n%q\nwant\n%q", got, want)
	}

	// The old file's last line is whole once the file has settled.
	dt.clock.advance(10 * time.Second)
	poll(t, d)
	if got := dt.raws(); got[len(got)-1] != ls[12][:20] {
		t.Errorf("the rotated file's last line: %q, want %q", got[len(got)-1], ls[12][:20])
	}
	n := len(dt.raws())

	restarted := dt.source(t, func(o *DirOptions) { o.Glob = "auth.log" })
	poll(t, restarted)
	dt.append(t, "auth.log", lines(ls[25:27]...))
	poll(t, restarted)
	if got := dt.raws(); len(got) != n+2 || !slices.Equal(got[n:], ls[25:27]) {
		t.Errorf("after a restart: %q, want %d events ending %q", got, n+2, ls[25:27])
	}
}

// TestDirCopyTruncate rotates as logrotate's copytruncate does: the file
// is copied elsewhere and truncated in place.
func TestDirCopyTruncate(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 60)
	dt.write(t, "auth.log", lines(ls[:10]...))
	d := dt.source(t, func(o *DirOptions) { o.Glob = "*.log" })
	poll(t, d)

	// Truncated, and fewer bytes written since than were read.
	dt.write(t, "auth.log", lines(ls[20:22]...))
	poll(t, d)
	dt.checkRaws(t, "after a truncation", append(slices.Clone(ls[:10]), ls[20:22]...))

	// Truncated, and more bytes written since than were read: the head
	// of the file tells.
	dt.write(t, "auth.log", lines(ls[30:60]...))
	poll(t, d)
	dt.checkRaws(t, "after a truncation and more", slices.Concat(ls[:10], ls[20:22], ls[30:60]))
}

// TestDirDeleted reads a file removed while it was being read through
// the descriptor held open, and then forgets it.
func TestDirDeleted(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 10)
	dt.write(t, "app.log", lines(ls[:5]...))
	d := dt.source(t)
	poll(t, d)
	dt.append(t, "app.log", lines(ls[5:10]...))
	if err := os.Remove(filepath.Join(dt.dir, "app.log")); err != nil {
		t.Fatal(err)
	}
	poll(t, d)
	dt.checkRaws(t, "after the removal", ls)
	dt.clock.advance(10 * time.Second)
	poll(t, d)
	var c dirCursor
	if err := json.Unmarshal([]byte(dt.cursors.m[d.name]), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 0 || len(d.files) != 0 {
		t.Errorf("the removed file is remembered: %s", dt.cursors.m[d.name])
	}
}

func TestDirCompressed(t *testing.T) {
	dt := newDirTest(t)
	doc, n := cloudTrailFile(t, "aws.persistence.iam-create-admin-user")
	z := gzipBytes(t, doc)
	dt.write(t, "trail.json.gz", string(z))
	dt.write(t, "broken.json.gz", string(z[:len(z)/2]))
	d := dt.source(t)
	poll(t, d)
	if ev, q := dt.acc.counts(); ev+q > 0 {
		t.Fatalf("compressed files read before they settled: %d events, %d quarantined", ev, q)
	}
	dt.clock.advance(10 * time.Second)
	poll(t, d)
	if ev, q := dt.acc.counts(); ev != n || q != 1 {
		t.Fatalf("%d events and %d quarantined, want %d and 1", ev, q, n)
	}
	if q := dt.acc.quarantined[0]; !strings.HasSuffix(q.Origin, "broken.json.gz") || !strings.Contains(q.Reason, "unexpected EOF") {
		t.Errorf("quarantined %s: %s", q.Origin, q.Reason)
	}
	if got := testutil.ToFloat64(d.metrics.objects); got != 2 {
		t.Errorf("objects metric %v, want 2", got)
	}
	poll(t, d)
	restarted := dt.source(t)
	dt.clock.advance(10 * time.Second)
	poll(t, restarted)
	poll(t, restarted)
	if ev, q := dt.acc.counts(); ev != n || q != 1 || len(dt.acc.resent) > 0 {
		t.Errorf("read again: %d events, %d quarantined, %d batches sent again", ev, q, len(dt.acc.resent))
	}
}

// TestDirCrashBeforeCursor makes the cursor store fail after a chunk was
// accepted, as if the process had died there: after a restart the same
// chunk goes out again, though the file has grown, in the same batches
// under the same IDs.
func TestDirCrashBeforeCursor(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 40)
	dt.write(t, "auth.log", lines(ls[:25]...))
	// The first SetCursor records the chunk about to go out; the second,
	// that it went, fails.
	dt.cursors.failAt = 2
	d := dt.source(t, func(o *DirOptions) { o.Batch = 10 })
	if err := d.Poll(t.Context()); err == nil {
		t.Fatal("poll succeeded with a failing cursor store")
	}
	first := slices.Clone(dt.acc.stored)
	if len(first) != 3 {
		t.Fatalf("batches %q, want 3", first)
	}
	dt.append(t, "auth.log", lines(ls[25:40]...))

	restarted := dt.source(t, func(o *DirOptions) { o.Batch = 10 })
	poll(t, restarted)
	if !slices.Equal(dt.acc.resent, first) {
		t.Errorf("sent again %q, want %q", dt.acc.resent, first)
	}
	dt.checkRaws(t, "after the restart", ls)
}

func TestDirSkips(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 3)
	dt.write(t, ".auth.log.tmp", lines(ls...))
	dt.write(t, "notes.txt", lines(ls...))
	if err := os.Mkdir(filepath.Join(dt.dir, "sub.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := dt.source(t, func(o *DirOptions) { o.Glob = "*.log" })
	poll(t, d)
	if ev, q := dt.acc.counts(); ev+q > 0 {
		t.Fatalf("read %d events and %d quarantined from files it should skip", ev, q)
	}
	// Written under a hidden name and renamed into place, as a tool
	// delivering whole files does.
	if err := os.Rename(filepath.Join(dt.dir, ".auth.log.tmp"), filepath.Join(dt.dir, "auth.log")); err != nil {
		t.Fatal(err)
	}
	poll(t, d)
	dt.checkRaws(t, "after the rename into place", ls)

	if _, err := NewDirSource(DirOptions{Dir: dt.dir, Glob: "["}, dt.acc, dt.cursors, nil, nil); err == nil {
		t.Error("NewDirSource took a malformed glob")
	}
	if _, err := NewDirSource(DirOptions{Dir: filepath.Join(dt.dir, "auth.log")}, dt.acc, dt.cursors, nil, nil); err == nil {
		t.Error("NewDirSource took a file for a directory")
	}
}

func TestDirRun(t *testing.T) {
	dt := newDirTest(t)
	ls := sshdLines(t, 3)
	d := dt.source(t, func(o *DirOptions) { o.Poll = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	dt.write(t, "auth.log", lines(ls...))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ev, _ := dt.acc.counts(); ev == len(ls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run read nothing")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
