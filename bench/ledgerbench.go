package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store/duckdb"
)

// runLedger measures what the ledger costs: the import with it against
// the import without it (the store alone, events numbered the same way),
// in alternating runs; then vigil verify over a data directory built by
// the import, against reading and hashing the same segment files with
// SHA-256 and nothing else (the floor for any check of every byte).
func runLedger(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	if c.verifyOnly {
		return c.verifyBench(ctx, files, m.Events)
	}
	if err := warm(files); err != nil {
		return err
	}
	runs, err := c.alternate(m.Events,
		func(int) (measure, error) { return c.importVigil(ctx, files, true, true) },
		func(int) (measure, error) { return c.importVigil(ctx, files, false, false) })
	if err != nil {
		return err
	}
	with, without := runs[0], runs[1]
	report(c.out, fmt.Sprintf("import of %d CloudTrail events with and without the ledger", m.Events), with, without)
	var costs []float64
	for i := range with {
		costs = append(costs, with[i].elapsed.Seconds()/without[i].elapsed.Seconds()-1)
	}
	slices.Sort(costs)
	fmt.Fprintf(c.out, "time the ledger adds to an import: median %+.0f%% (runs: %s)\n", 100*costs[len(costs)/2], fmtPercents(costs))

	return c.verifyBench(ctx, files, m.Events)
}

func fmtPercents(rs []float64) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%+.0f%%", 100*r)
	}
	return s
}

// verifyBench builds a data directory with the import, then times vigil
// verify's two passes over it and the SHA-256 peer.
func (c *config) verifyBench(ctx context.Context, files string, events int) error {
	dir := filepath.Join(c.dir, fmt.Sprintf("verify-n%d-s%d", events, c.seed))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	signer, verifier, _, err := ledger.LoadOrCreateKey(filepath.Join(dir, "ledger.key"), "bench")
	if err != nil {
		return err
	}
	ldir, spath := filepath.Join(dir, "ledger"), filepath.Join(dir, "events.duckdb")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		os.RemoveAll(ldir)
		removeDB(spath)
		start := time.Now()
		l, err := ledger.Open(ldir, ledger.Options{Signer: signer, CheckpointEvery: 10 * time.Second})
		if err != nil {
			return err
		}
		db, err := duckdb.Open(duckdb.Options{Path: spath})
		if err != nil {
			return err
		}
		sum, err := ingest.NewImporter(&ingest.Pipeline{Ledger: l, Store: db}, ingest.ImportOptions{
			Parse: parse.Options{Tenant: "bench", Received: received, Backfill: true}, Workers: c.workers,
		}).Import(ctx, []string{files})
		if err == nil {
			err = db.Close()
		}
		if err == nil {
			err = l.Close()
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
			return err
		}
		c.logf("built %s: %d events in %s", dir, sum.Events, time.Since(start).Round(time.Second))
	}

	var segBytes int64
	segs, _ := filepath.Glob(filepath.Join(ldir, "seg-*.log"))
	for _, s := range segs {
		if fi, err := os.Stat(s); err == nil {
			segBytes += fi.Size()
		}
	}
	type side struct {
		name string
		run  func() error
	}
	sides := []side{
		{"ledger.Verify (segments, tree, checkpoints)", func() error {
			rep, err := ledger.Verify(ctx, ldir, ledger.VerifyOptions{Verifier: verifier})
			if err == nil && !rep.OK() {
				err = fmt.Errorf("verify found problems: %v", rep.Problems)
			}
			return err
		}},
		{"vigil verify (ledger and store)", func() error {
			db, err := duckdb.Open(duckdb.Options{Path: spath, ReadOnly: true})
			if err != nil {
				return err
			}
			defer db.Close()
			cmp := db.Compare(ctx)
			rep, err := ledger.Verify(ctx, ldir, ledger.VerifyOptions{Verifier: verifier, Record: cmp.Record})
			if err != nil {
				return err
			}
			ms, err := cmp.Finish(uint64(rep.Size))
			if err == nil && (!rep.OK() || len(ms) > 0) {
				err = fmt.Errorf("verify found problems: %v %v", rep.Problems, ms)
			}
			return err
		}},
		{"sha256 of the segment files (peer)", func() error {
			for _, s := range segs {
				f, err := os.Open(s)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.CopyBuffer(h, f, make([]byte, 4<<20))
				f.Close()
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	fmt.Fprintf(c.out, "\nverify over %d events (%d segments, %.0f MB of segments), %d runs each; min / median\n\n", events, len(segs), mb(segBytes), c.runs)
	fmt.Fprintln(c.out, "| side | min | median | events/s (median) | MB/s of segments (median) |")
	fmt.Fprintln(c.out, "|---|---:|---:|---:|---:|")
	for _, s := range sides {
		var times []time.Duration
		for range c.runs {
			start := time.Now()
			if err := s.run(); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		med := times[len(times)/2]
		c.logf("%-45s %s", s.name, med)
		fmt.Fprintf(c.out, "| %s | %.2f s | %.2f s | %.0f | %.0f |\n", s.name, times[0].Seconds(), med.Seconds(),
			float64(events)/med.Seconds(), mb(segBytes)/med.Seconds())
	}
	return nil
}
