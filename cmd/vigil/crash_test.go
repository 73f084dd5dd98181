package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/store/duckdb"
)

// These tests kill vigil with SIGKILL at random points, over and over, and
// check after each restart that nothing it acknowledged was lost or stored
// twice, and that vigil verify finds the data directory intact. They run
// vigil in a child process (this test binary, re-executed: see TestMain),
// since only a process can be killed mid-write.

// newCrashData returns a data directory whose ledger has 1 MiB segments,
// so that imports cross from one segment to the next: one more place to
// be killed at.
func newCrashData(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte("ledger:\n  segment_bytes: 1048576\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// crashInput writes copies of the Stratus fixtures, one JSON-lines file
// per copy with event IDs of its own, and returns their directory and how
// many events they hold.
func crashInput(t *testing.T, copies int) (string, int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(stratus, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", stratus, err)
	}
	var records []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rs []map[string]any
		if err := json.Unmarshal(b, &rs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		records = append(records, rs...)
	}
	dir := t.TempDir()
	for c := range copies {
		var buf bytes.Buffer
		for _, r := range records {
			r["eventID"] = fmt.Sprintf("%v-copy%d", r["eventID"], c)
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("copy%03d.json", c)), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, int64(copies * len(records))
}

// A vigilChild is vigil running in a child process.
type vigilChild struct {
	cmd    *exec.Cmd
	out    bytes.Buffer // what it printed; read only once it has exited
	exited chan struct{}
	err    error // how it exited, once it has
}

// startVigil starts vigil with args in a child process, which the test's
// end kills if it still runs.
func startVigil(t *testing.T, args ...string) *vigilChild {
	t.Helper()
	return startVigilEnv(t, nil, args...)
}

// startVigilEnv is startVigil with variables added to the environment.
func startVigilEnv(t *testing.T, env []string, args ...string) *vigilChild {
	t.Helper()
	c := &vigilChild{cmd: vigilProcess(t, args...), exited: make(chan struct{})}
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// wait waits for the child to exit and returns how it did.
func (c *vigilChild) wait() error {
	<-c.exited
	return c.err
}

// waitLedgerGrowth waits until the ledger in dir has grown by n bytes, or
// the child has exited.
func (c *vigilChild) waitLedgerGrowth(t *testing.T, dir string, n int64) {
	t.Helper()
	target := ledgerBytes(t, dir) + n
	for ledgerBytes(t, dir) < target {
		select {
		case <-c.exited:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// kill kills the child with SIGKILL, which it cannot catch, and waits
// for it to be gone.
func (c *vigilChild) kill() {
	c.cmd.Process.Kill()
	c.wait()
}

// checkCrashed checks what verify says of a data directory vigil was
// killed in before anything reopened it: at most what a crash leaves
// behind, a torn frame at the end of the ledger and events the store had
// not committed yet (both repaired when the directory is next opened),
// and nothing that looks like tampering.
func checkCrashed(t *testing.T, dir string) {
	t.Helper()
	_, out := verifyData(t, dir)
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		fs := verifyFindings(line)
		switch {
		case strings.HasPrefix(line, "intact: ") || strings.HasPrefix(line, "NOT INTACT: "):
		case len(fs) == 1 && (fs[0].kind == "torn" || fs[0].kind == "store missing"):
		default:
			t.Errorf("after a crash, verify reports more than a crash can cause: %s", line)
		}
	}
}

func TestCrashImport(t *testing.T) {
	needFixtures(t)
	copies, kills := 8, 8
	if testing.Short() {
		copies, kills = 4, 3
	}
	input, perImport := crashInput(t, copies)
	tiny := filepath.Join(t.TempDir(), "tiny.json")
	writeCloudTrail(t, tiny, "tiny", 1)
	dir := newCrashData(t)
	importArgs := []string{"import", "-q", "--data", dir, "--format", "aws.cloudtrail", input}

	// A first import, run to the end, measures how long one takes on
	// this machine and how much it writes to the ledger, so that the
	// kills land all over the next ones.
	start := time.Now()
	if c := startVigil(t, importArgs...); c.wait() != nil {
		t.Fatalf("import: %v\n%s", c.err, c.out.String())
	}
	full, written := time.Since(start), ledgerBytes(t, dir)
	code, out := verifyData(t, dir)
	if size := ledgerSize(t, out); code != 0 || size != perImport {
		t.Fatalf("after an import of %d events: exit %d\n%s", perImport, code, out)
	}
	size := perImport

	for i := range kills {
		c := startVigil(t, importArgs...)
		// Half the kills come at a random time, from start-up to exit;
		// the others once the ledger has grown by a random part of
		// what the import writes, among the writes to the ledger and
		// the store, which start-up would otherwise crowd out.
		var when string
		if i%2 == 0 {
			delay := time.Duration(rand.Int64N(int64(full) * 6 / 5))
			when = fmt.Sprintf("after %v", delay.Round(time.Millisecond))
			select {
			case <-c.exited:
			case <-time.After(delay):
			}
		} else {
			grown := rand.Int64N(written)
			when = fmt.Sprintf("once the ledger grew by %d bytes", grown)
			c.waitLedgerGrowth(t, dir, grown)
		}
		killed := false
		select {
		case <-c.exited:
			if c.err != nil {
				t.Fatalf("import %d: %v\n%s", i, c.err, c.out.String())
			}
		default:
			c.kill()
			killed = true
		}
		checkCrashed(t, dir)

		// Any command that opens the data directory repairs it: the
		// ledger cuts a torn end, the store catches up from the ledger.
		mustVigil(t, "import", "-q", "--data", dir, "--format", "aws.cloudtrail", tiny)
		code, out := verifyData(t, dir)
		if code != 0 {
			t.Fatalf("import %d killed %s: after a restart, verify exits %d:\n%s", i, when, code, out)
		}
		// Each import adds what it got through, and the tiny one its
		// event: never less than before; all of its events if it
		// finished; and never one twice.
		n := ledgerSize(t, out)
		lo, hi := size+1, size+perImport+1
		if !killed {
			lo = hi
		}
		if n < lo || n > hi {
			t.Fatalf("import %d (killed %v %s): the ledger holds %d records, want %d..%d", i, killed, when, n, lo, hi)
		}
		if events, distinct := storedEvents(t, dir, size, n-1); events != n-1-size || distinct != events {
			t.Errorf("import %d stored %d events, %d distinct, with seq in %d..%d", i, events, distinct, size, n-2)
		}
		t.Logf("import %d: killed %v %s; %d of its %d events kept", i, killed, when, n-size-1, perImport)
		size = n
	}
	if n := searchCount(t, dir); int64(n) != size {
		t.Errorf("search counts %d events, the ledger holds %d", n, size)
	}
}

// A vigilServer is vigil serve running in a child process.
type vigilServer struct {
	*vigilChild
	base  string
	token string
}

// startVigilServer starts vigil serve on dir and waits until it answers.
func startVigilServer(t *testing.T, dir string, env ...string) *vigilServer {
	t.Helper()
	// A killed server leaves its address behind; wait for the new one.
	if err := os.Remove(filepath.Join(dir, addrFile)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	s := &vigilServer{vigilChild: startVigilEnv(t, env, "serve", "--data", dir, "--listen", "127.0.0.1:0")}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("vigil serve exited: %v\n%s", s.err, s.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("vigil serve did not start in 30s")
		}
		addr, err := os.ReadFile(filepath.Join(dir, addrFile))
		if err != nil {
			continue
		}
		resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			s.base = "http://" + strings.TrimSpace(string(addr))
			break
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

// ingest posts CloudTrail records to the server and reports whether it
// acknowledged all of them. An error means no answer came: the records
// may or may not have been stored.
func (s *vigilServer) ingest(ctx context.Context, client *http.Client, batchID string, ids []string) (bool, error) {
	var body bytes.Buffer
	for i, id := range ids {
		body.Write(cloudTrailRecord(id, i))
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/v1/ingest?format=aws.cloudtrail", &body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if batchID != "" {
		req.Header.Set(ingest.BatchHeader, batchID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var ir ingest.IngestResponse
	if err := json.NewDecoder(resp.Body).Decode(&ir); err != nil {
		return false, err // cut off in the middle of the answer
	}
	return resp.StatusCode == http.StatusOK && ir.Accepted == len(ids), nil
}

func TestCrashServe(t *testing.T) {
	rounds, clients, batch := 5, 3, 100
	if testing.Short() {
		rounds = 2
	}
	dir := newCrashData(t)
	type sendBatch struct {
		id  string
		ids []string
	}
	var (
		mu    sync.Mutex
		sent  = map[string]bool{}
		acked = map[string]bool{}
		retry []sendBatch // sent, never acknowledged: sent again, with the same batch id
	)
	// next is the batch a client sends: one to retry, or a new one.
	next := func(r, g, b int) sendBatch {
		mu.Lock()
		defer mu.Unlock()
		if n := len(retry); n > 0 {
			sb := retry[n-1]
			retry = retry[:n-1]
			return sb
		}
		sb := sendBatch{id: fmt.Sprintf("r%d-g%d-b%d", r, g, b), ids: make([]string, batch)}
		for i := range sb.ids {
			sb.ids[i] = fmt.Sprintf("crash-r%d-g%d-b%d-i%d", r, g, b, i)
			sent[sb.ids[i]] = true
		}
		return sb
	}
	for r := range rounds {
		s := startVigilServer(t, dir)
		// A client of its own per round, so that no connection to a
		// killed server is reused. A batch without an answer is sent
		// again in a later round, as a client that retries does.
		client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range clients {
			wg.Go(func() {
				for b := 0; ctx.Err() == nil; b++ {
					sb := next(r, g, b)
					ok, err := s.ingest(ctx, client, sb.id, sb.ids)
					if err != nil {
						mu.Lock()
						retry = append(retry, sb)
						mu.Unlock()
						return // the server is gone
					}
					if !ok {
						t.Errorf("round %d: the server refused a batch while running", r)
						return
					}
					mu.Lock()
					for _, id := range sb.ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(100+rand.IntN(1000)) * time.Millisecond)
		s.kill()
		cancel()
		wg.Wait()
		client.CloseIdleConnections()
		mu.Lock()
		t.Logf("round %d: %d events sent, %d acknowledged so far, %d batches to send again", r, len(sent), len(acked), len(retry))
		mu.Unlock()
	}
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged: the test tested nothing")
	}

	// A last start catches the store up with the ledger; the batches
	// never answered are sent again; a graceful stop then frees the store
	// for reading.
	s := startVigilServer(t, dir)
	client := &http.Client{Timeout: 30 * time.Second}
	for _, sb := range retry {
		if ok, err := s.ingest(context.Background(), client, sb.id, sb.ids); err != nil || !ok {
			t.Fatalf("sending batch %s again: %v", sb.id, err)
		}
		for _, id := range sb.ids {
			acked[id] = true
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("vigil serve did not stop cleanly on SIGTERM: %v\n%s", err, s.out.String())
	}

	// Every event was sent until acknowledged, some of them twice or more
	// with the same batch id: each is stored exactly once.
	if len(acked) != len(sent) {
		t.Fatalf("%d events sent, %d acknowledged after the retries", len(sent), len(acked))
	}
	stored := storedEventIDs(t, dir)
	for id := range acked {
		if n := stored[id]; n != 1 {
			t.Errorf("acknowledged event %s is stored %d times", id, n)
		}
	}
	for id, n := range stored {
		switch {
		case !sent[id]:
			t.Errorf("event %s is stored but was never sent", id)
		case n > 1:
			t.Errorf("event %s is stored %d times", id, n)
		}
	}
	code, out := verifyData(t, dir)
	if code != 0 || !strings.Contains(out, "store in sync") {
		t.Fatalf("verify after the crashes: exit %d\n%s", code, out)
	}

	// The word index must have survived the crashes too: a search for
	// events' IDs, which reads the index before the events, finds them.
	ids := slices.Sorted(maps.Keys(acked))
	var sample []string
	for i := 0; i < len(ids); i += max(1, len(ids)/20) {
		sample = append(sample, ids[i])
	}
	found := map[string]int{}
	for _, row := range ndjson(t, mustVigil(t, "search", "--data", dir, "--format", "ndjson", "--limit", "0", strings.Join(sample, " OR "))) {
		found[fmt.Sprint(row["event_id"])]++
	}
	for _, id := range sample {
		if found[id] != 1 {
			t.Errorf("search %s: found %d times, want once", id, found[id])
		}
	}
	if len(found) != len(sample) {
		t.Errorf("searching %d IDs found %d distinct events", len(sample), len(found))
	}
	t.Logf("%d events sent, %d acknowledged, %d stored", len(sent), len(acked), len(stored))
}

// ledgerBytes returns the size of the ledger's segments in dir.
func ledgerBytes(t *testing.T, dir string) int64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, ledgerDir, "seg-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

// storedEvents returns how many events the store of dir holds with seq in
// [from, to), and how many distinct event IDs they have.
func storedEvents(t *testing.T, dir string, from, to int64) (events, distinct int64) {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, storeFile), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.SQL().QueryRow("SELECT count(*), count(DISTINCT event_id) FROM events WHERE seq >= ? AND seq < ?", from, to).Scan(&events, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	return events, distinct
}

// storedEventIDs returns how many times the store of dir holds each
// event ID.
func storedEventIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, storeFile), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query("SELECT event_id, count(*) FROM events GROUP BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var (
			id string
			n  int
		)
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		m[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDiskFull runs vigil serve with a file size limit standing in for a
// full disk and sends batches until it refuses them: it must answer with
// errors, not die, and lose nothing it acknowledged. After a restart with
// room, the batches it refused are sent again with their batch ids, and
// every event is stored exactly once with the ledger and store intact.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	const limit = 4 << 20
	s := startVigilServer(t, dir, fmt.Sprintf("%s=%d", fsizeEnv, limit))
	client := &http.Client{Timeout: 30 * time.Second}
	type sendBatch struct {
		id  string
		ids []string
	}
	var (
		sent, acked = map[string]bool{}, map[string]bool{}
		refused     []sendBatch
	)
	for b := 0; len(refused) < 3; b++ {
		if b == 200 {
			t.Fatalf("200 batches of 100 events fit under a %d-byte file size limit", limit)
		}
		sb := sendBatch{id: fmt.Sprintf("full-b%d", b), ids: make([]string, 100)}
		for i := range sb.ids {
			sb.ids[i] = fmt.Sprintf("full-b%d-i%d", b, i)
			sent[sb.ids[i]] = true
		}
		ok, err := s.ingest(context.Background(), client, sb.id, sb.ids)
		if err != nil {
			t.Fatalf("batch %d: no answer (did the server die?): %v\n%s", b, err, s.out.String())
		}
		if !ok {
			refused = append(refused, sb)
			continue
		}
		for _, id := range sb.ids {
			acked[id] = true
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the disk was full")
	}
	// Still serving: it refuses what it cannot store, nothing else.
	resp, err := client.Get(s.base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with a full disk: %v %v", resp, err)
	}
	resp.Body.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait() // it may report the failed writes on its way out

	s = startVigilServer(t, dir)
	for _, sb := range refused {
		if ok, err := s.ingest(context.Background(), client, sb.id, sb.ids); err != nil || !ok {
			t.Fatalf("sending batch %s again with room: %v", sb.id, err)
		}
		for _, id := range sb.ids {
			acked[id] = true
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("vigil serve did not stop cleanly: %v\n%s", err, s.out.String())
	}
	stored := storedEventIDs(t, dir)
	for id := range sent {
		if stored[id] != 1 {
			t.Errorf("event %s is stored %d times, want once", id, stored[id])
		}
	}
	if len(stored) != len(sent) {
		t.Errorf("%d events stored, %d sent", len(stored), len(sent))
	}
	if code, out := verifyData(t, dir); code != 0 || !strings.Contains(out, "store in sync") {
		t.Fatalf("verify after the disk was full: exit %d\n%s", code, out)
	}
	t.Logf("%d events acknowledged before the disk was full, %d batches refused and sent again", len(sent)-100*len(refused), len(refused))
}
