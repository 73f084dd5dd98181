package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver, for the peer

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/duckdb"
)

// received is the receipt time stamped on imported events: fixed, so that
// runs are alike.
var received = time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)

// runImport times vigil's importer and DuckDB's read_json on the same
// files, alternating which goes first so that neither always meets a
// warmer machine.
func runImport(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	if err := warm(files); err != nil {
		return err
	}
	runs, err := c.alternate(m.Events,
		func(run int) (measure, error) { return c.importVigil(ctx, files, run == 0, true) },
		func(int) (measure, error) { return c.importPeer(ctx, files) })
	if err != nil {
		return err
	}
	vigil, peer := runs[0], runs[1]
	report(c.out, fmt.Sprintf("import of %d CloudTrail events (%d gzip files, %.0f MB)", m.Events, m.Files, mb(m.Bytes)), vigil, peer)
	return nil
}

// alternate runs each of two sides c.runs times, taking turns going
// first so that neither always meets a warmer machine, checks that each
// run loaded the corpus's events, and returns each side's measures.
func (c *config) alternate(events int, a, b func(run int) (measure, error)) ([2][]measure, error) {
	sides := [2]func(int) (measure, error){a, b}
	var out [2][]measure
	for i := range c.runs {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, side := range order {
			r, err := sides[side](i)
			if err != nil {
				return out, err
			}
			if r.events != int64(events) {
				return out, fmt.Errorf("%s loaded %d events, want %d", r.name, r.events, events)
			}
			c.logf("run %d: %-28s %s", i+1, r.name, r)
			out[side] = append(out[side], r)
		}
	}
	return out, nil
}

// A measure is one timed run of one side.
type measure struct {
	name    string
	events  int64
	elapsed time.Duration
	cpu     time.Duration // user+system CPU of the whole process
	ingest  time.Duration // of a vigil import: its own time, without its start
}

func (r measure) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r measure) String() string {
	return fmt.Sprintf("%8.2fs %9.0f events/s  cpu %6.1fs", r.elapsed.Seconds(), r.rate(), r.cpu.Seconds())
}

const (
	vigilName    = "vigil import"
	noLedgerName = "vigil import without ledger"
	peerName     = "duckdb read_json"
)

// importVigil runs the real import path: the importer parsing with format
// detection and full normalization, appending to the ledger (fsynced, group
// commit) and to a fresh store, both closed (so checkpointed and signed)
// before the clock stops. Without withLedger, the events go to the store
// alone, numbered as the ledger would number them: the peer of the ledger
// benchmark.
func (c *config) importVigil(ctx context.Context, files string, profile, withLedger bool) (measure, error) {
	dir := filepath.Join(c.dir, "import-vigil")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	name := vigilName
	if !withLedger {
		name = noLedgerName
	}
	var sum ingest.Summary
	start, cpu0 := time.Now(), cpuTime()
	fn := func() error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, "events.duckdb")})
		if err != nil {
			return err
		}
		var (
			sink ingest.Sink = &numbered{db: db}
			l    *ledger.Ledger
		)
		if withLedger {
			signer, _, _, err := ledger.LoadOrCreateKey(filepath.Join(dir, "ledger.key"), "bench")
			if err != nil {
				return err
			}
			if l, err = ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Signer: signer, CheckpointEvery: time.Minute}); err != nil {
				return err
			}
			sink = &ingest.Pipeline{Ledger: l, Store: db}
		}
		im := ingest.NewImporter(sink, ingest.ImportOptions{
			Format:  parse.Auto,
			Parse:   parse.Options{Tenant: "bench", Received: received, Backfill: true},
			Workers: c.workers,
		})
		sum, err = im.Import(ctx, []string{files})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if l != nil {
			if cerr := l.Close(); err == nil {
				err = cerr
			}
		}
		return err
	}
	var err error
	if profile {
		err = c.profile(fn)
	} else {
		err = fn()
	}
	r := measure{name: name, events: sum.Events, elapsed: time.Since(start), cpu: cpuTime() - cpu0}
	if err != nil {
		return r, fmt.Errorf("vigil import: %w", err)
	}
	if sum.Quarantined > 0 || len(sum.Skipped) > 0 {
		return r, fmt.Errorf("vigil import quarantined %d records and skipped %d files", sum.Quarantined, len(sum.Skipped))
	}
	return r, nil
}

// numbered gives events the seqs the ledger would, for imports without
// it: consecutive per append.
type numbered struct {
	db   *duckdb.DB
	next atomic.Uint64
}

func (n *numbered) number(evs []*event.Event) {
	first := n.next.Add(uint64(len(evs))) - uint64(len(evs))
	for i, e := range evs {
		e.Seq = first + uint64(i)
	}
}

func (n *numbered) Append(ctx context.Context, evs []*event.Event) error {
	n.number(evs)
	return n.db.Append(ctx, evs)
}

func (n *numbered) Quarantine(ctx context.Context, qs []store.Quarantined) error {
	return n.db.Quarantine(ctx, qs)
}

func (n *numbered) NewLoader(ctx context.Context) (store.Loader, error) {
	l, err := n.db.NewLoader(ctx)
	if err != nil {
		return nil, err
	}
	return numberedLoader{n, l}, nil
}

type numberedLoader struct {
	n *numbered
	store.Loader
}

func (l numberedLoader) Append(ctx context.Context, evs []*event.Event) error {
	l.n.number(evs)
	return l.Loader.Append(ctx, evs)
}

// importPeer loads the same files with DuckDB's read_json, each record
// unnested into typed columns: DuckDB's own fastest way to get these
// files into a table, so the ceiling for an importer built on it.
func (c *config) importPeer(ctx context.Context, files string) (measure, error) {
	path := filepath.Join(c.dir, "import-peer.duckdb")
	removeDB(path)
	defer removeDB(path)
	r := measure{name: peerName}
	start, cpu0 := time.Now(), cpuTime()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		return r, fmt.Errorf("opening peer database: %w", err)
	}
	defer db.Close()
	glob := sqlString(filepath.Join(files, "**", "*.json.gz"))
	if _, err := db.ExecContext(ctx, "CREATE TABLE records AS SELECT unnest(Records, recursive := true) FROM read_json("+glob+", format = 'auto')"); err != nil {
		return r, fmt.Errorf("peer read_json: %w", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM records").Scan(&r.events); err != nil {
		return r, fmt.Errorf("counting peer rows: %w", err)
	}
	if err := db.Close(); err != nil {
		return r, fmt.Errorf("closing peer database: %w", err)
	}
	r.elapsed, r.cpu = time.Since(start), cpuTime()-cpu0
	return r, nil
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func removeDB(path string) {
	os.Remove(path)
	os.Remove(path + ".wal")
}

// warm reads every file once so that the first run does not pay for the
// disk and later runs read from the page cache.
func warm(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
}
