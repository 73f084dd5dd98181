package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store/duckdb"
)

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", stderr)
	var d dataFlags
	d.register(fs)
	format := fs.String("format", parse.Auto, "log format, or auto to detect it per file (see 'vigil formats')")
	tenant := fs.String("tenant", "", "tenant the events belong to (default from the config, else \"default\")")
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil import [--data DIR] [--format F] [--tenant T] PATH...\n\nImports log files and directories (recursively), plain or gzip-compressed.\n\nFlags:")
		fs.PrintDefaults()
	}
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return errUsage
	}
	if _, ok := parse.Lookup(*format); !ok && *format != parse.Auto {
		return fmt.Errorf("unknown format %q (see 'vigil formats')", *format)
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	db, err := duckdb.Open(duckdb.Options{Path: d.path(storeFile)})
	if errors.Is(err, duckdb.ErrLocked) {
		return fmt.Errorf("%w: stop 'vigil serve' on %s, or send the files to its ingest API", err, d.dir)
	}
	if err != nil {
		return err
	}
	defer db.Close()

	opts := cfg.parseOptions(*tenant)
	opts.Received = time.Now()
	opts.Backfill = true
	sum, err := importPaths(ctx, db, paths, *format, opts, stderr, !*quiet && isTerminal(stderr))
	if err != nil {
		return err
	}
	for _, s := range sum.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", s.Path, s.Reason)
	}
	fmt.Fprintf(stdout, "imported %d events, %d quarantined, %d files (%d skipped) in %.1fs\n",
		sum.Events, sum.Quarantined, sum.Files, len(sum.Skipped), sum.Elapsed.Seconds())
	if sum.Quarantined > 0 {
		fmt.Fprintln(stderr, "see the quarantined records with: vigil search --quarantine '*'")
	}
	if sum.Files == 0 {
		return &exitError{1, errors.New("no file could be read")}
	}
	return nil
}

// importPaths imports into db, drawing a progress bar when asked to.
func importPaths(ctx context.Context, db *duckdb.DB, paths []string, format string, opts parse.Options, stderr io.Writer, bar bool) (ingest.Summary, error) {
	io := ingest.ImportOptions{
		Format: format,
		Parse:  opts,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	var pb *progressBar
	if bar {
		pb = newProgressBar(stderr)
		io.Progress = pb.update
	}
	sum, err := ingest.NewImporter(db, io).Import(ctx, paths)
	if pb != nil {
		pb.done()
	}
	return sum, err
}
