package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
)

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", stderr)
	var d dataFlags
	d.registerClient(fs)
	format := fs.String("format", parse.Auto, "log format, or auto to detect it per file (see 'vigil formats')")
	tenant := fs.String("tenant", "", "tenant the events belong to (default from the config, else \"default\")")
	quiet := fs.Bool("q", false, "no progress bar")
	detectOn := fs.Bool("detect", true, "run the detection rules (the built-in pack and the config's detect.rules) on the events, and record what they find")
	enrichOn := fs.Bool("enrich", true, "enrich the events (credential origins, assets, the config's context section) before storing them")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil import [--data DIR | --server URL] [--format F] [--tenant T] PATH...\n\nImports log files and directories (recursively), plain or gzip-compressed. With a\nscale section in the data directory's config, the events go to the scale-out's bus.\n\nFlags:")
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
	var (
		sum        ingest.Summary
		detections int64
		scaled     bool // sent to a scale-out's bus
	)
	c, err := d.remote()
	if err != nil {
		return err
	}
	if c == nil {
		var cfg *config
		if cfg, err = d.loadConfig(); err != nil {
			return err
		}
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return fmt.Errorf("creating data directory: %w", err)
		}
		bar := !*quiet && isTerminal(stderr)
		switch c = d.localClient(ctx); {
		case c != nil:
		case cfg.Scale.configured():
			if !*detectOn || !*enrichOn {
				return errors.New("--detect=false and --enrich=false do not apply to a scale-out: its process nodes enrich and run the rules on every event")
			}
			if sum, err = scaleImport(ctx, cfg, paths, *format, *tenant, stderr, bar); err == nil {
				scaled = true
			}
		default:
			sum, err = localImport(ctx, &d, cfg, paths, *format, *tenant, *detectOn, *enrichOn, &detections, stderr, bar)
		}
	}
	if c != nil {
		// A server holds the database: send it the files.
		sum, err = remoteImport(ctx, c, paths, *format, *tenant)
	}
	if err != nil {
		return err
	}
	for _, s := range sum.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", s.Path, s.Reason)
	}
	fmt.Fprintf(stdout, "imported %d events, %d quarantined, %d files (%d skipped) in %.1fs\n",
		sum.Events, sum.Quarantined, sum.Files, len(sum.Skipped), sum.Elapsed.Seconds())
	if scaled {
		fmt.Fprintln(stdout, "sent to the scale-out's bus: its process nodes store them and run the rules on them")
	}
	if detections > 0 {
		noun := "detections"
		if detections == 1 {
			noun = "detection"
		}
		fmt.Fprintf(stdout, "%d %s, recorded for the API's /api/v1/detections; 'vigil hunt' shows them again\n", detections, noun)
	}
	if sum.Quarantined > 0 {
		fmt.Fprintln(stderr, "see the quarantined records with: vigil search --quarantine '*'")
	}
	if sum.Files == 0 {
		return &exitError{1, errors.New("no file could be read")}
	}
	return nil
}

func localImport(ctx context.Context, d *dataFlags, cfg *config, paths []string, format, tenant string, detectOn, enrichOn bool, detections *int64, stderr io.Writer, bar bool) (ingest.Summary, error) {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var (
		detectFn func([]*event.Event)
		sink     *detectionSink
	)
	if detectOn {
		mdb, err := meta.Open(ctx, d.metaLocation(cfg), logger)
		if err != nil {
			return ingest.Summary{}, err
		}
		defer mdb.Close()
		e, errs := loadEngine(ctx, cfg.Detect, nil, mdb)
		for _, err := range errs {
			fmt.Fprintf(stderr, "rule not loaded: %v\n", err)
		}
		// Detections are recorded, not logged one by one: an import of
		// an old archive may find thousands.
		sink = &detectionSink{db: mdb, log: slog.New(slog.DiscardHandler)}
		alerts, err := newAlertManager(ctx, mdb, cfg.alerts, slog.New(slog.DiscardHandler))
		if err != nil {
			return ingest.Summary{}, err
		}
		detectFn = detect.NewRunner(e, detect.RunnerOptions{Sink: detectionSinks{sink, alerts}, Logger: logger}).Process
	}
	// Flow logs are summed into network use as they pass, as vigil serve
	// does.
	var flows monitor.FlowRollup
	dd, err := openData(ctx, d, cfg, logger, nil, func(evs []*event.Event) {
		flows.Observe(evs)
		if detectFn != nil {
			detectFn(evs)
		}
	})
	if err != nil {
		return ingest.Summary{}, err
	}
	var enr *enrichment
	if enrichOn {
		if enr, err = startEnrichment(ctx, dd, &cfg.Context, logger); err != nil {
			dd.Close()
			return ingest.Summary{}, err
		}
		defer enr.Close()
	}
	opts := cfg.parseOptions(tenant)
	opts.Received = time.Now()
	opts.Backfill = true
	since := dd.pipeline.Ledger.Size()
	sum, err := importPaths(ctx, dd.pipeline, paths, format, opts, stderr, bar)
	if enr != nil && err == nil {
		// The events are stored whatever this finds: a failure is said,
		// not made the import's.
		start := time.Now()
		n, berr := enr.backfillImported(ctx, finder{dd.db, query.Scope{All: true}}, since)
		sum.Elapsed += time.Since(start)
		switch {
		case berr != nil:
			logger.Warn("the origins of credentials issued after their use were not given to their events", "err", berr)
		case n > 0:
			fmt.Fprintf(stderr, "gave %d events the origin of their credential, issued after them\n", n)
		}
	}
	for tenant, series := range flows.Flush(true) {
		if serr := dd.db.AppendSamples(ctx, tenant, series); serr != nil {
			logger.Warn("the network use the flow logs gave was not stored", "err", serr)
		}
	}
	if cerr := dd.Close(); err == nil {
		err = cerr
	}
	if sink != nil {
		*detections = sink.count.Load()
	}
	return sum, err
}

// remoteImport posts each file to a server's ingest API. A file the
// server refuses is skipped; a token it refuses stops the import, as
// every other file would be refused too.
func remoteImport(ctx context.Context, c *client, paths []string, format, tenant string) (ingest.Summary, error) {
	start := time.Now()
	var sum ingest.Summary
	names, _, err := ingest.Files(paths)
	if err != nil {
		return sum, err
	}
	for _, name := range names {
		resp, err := postFile(ctx, c, name, format, tenant)
		sum.Events += int64(resp.Accepted)
		sum.Quarantined += int64(resp.Quarantined)
		switch {
		case err != nil && ctx.Err() != nil:
			return sum, ctx.Err()
		case isStatus(err, http.StatusUnauthorized):
			return sum, err
		case err != nil:
			sum.Skipped = append(sum.Skipped, ingest.Skipped{Path: name, Reason: err.Error()})
		default:
			sum.Files++
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

func postFile(ctx context.Context, c *client, path, format, tenant string) (ingest.IngestResponse, error) {
	var ir ingest.IngestResponse
	f, err := os.Open(path)
	if err != nil {
		return ir, err
	}
	defer f.Close()
	v := url.Values{"format": {format}, "origin": {path}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/ingest?"+v.Encode(), f)
	if err != nil {
		return ir, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return ir, fmt.Errorf("sending to the server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return ir, c.answerError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ir); err != nil {
		return ir, fmt.Errorf("reading the server's answer: %s", resp.Status)
	}
	if ir.Error != "" {
		return ir, errors.New(ir.Error)
	}
	return ir, nil
}

// importPaths imports into db, drawing a progress bar when asked to.
func importPaths(ctx context.Context, sink ingest.Sink, paths []string, format string, opts parse.Options, stderr io.Writer, bar bool) (ingest.Summary, error) {
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
	sum, err := ingest.NewImporter(sink, io).Import(ctx, paths)
	if pb != nil {
		pb.done()
	}
	return sum, err
}
