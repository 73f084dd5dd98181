package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var d dataFlags
	d.register(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address the HTTP API listens on")
	loadDemo := fs.Bool("demo", false, "load the bundled demo dataset (Stratus Red Team CloudTrail logs) into an empty data directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil serve [--data DIR] [--listen ADDR] [--demo]\n\nFlags:")
		fs.PrintDefaults()
	}
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	token, err := d.adminToken()
	if err != nil {
		return err
	}
	if cfg.Store.MemoryLimit == "" {
		cfg.Store.MemoryLimit = "512MB"
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit for Go's heap, beside DuckDB's own: the collector
		// works harder near it instead of letting the heap double.
		debug.SetMemoryLimit(512 << 20)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dd, err := openData(ctx, &d, cfg, logger, reg)
	if err != nil {
		return err
	}
	defer dd.Close()
	db := dd.db

	if *loadDemo {
		if err := loadDemoData(ctx, dd, cfg, logger); err != nil {
			return err
		}
	}

	go db.LoadWordIndex(ctx)
	if cfg.Retention.configured() {
		go retentionLoop(ctx, dd, cfg, logger)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	// Tell local commands (vigil search) where to find us.
	if err := os.WriteFile(d.path(addrFile), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", addrFile, err)
	}
	defer os.Remove(d.path(addrFile))

	mdb, err := meta.Open(ctx, d.path(metaFile), logger)
	if err != nil {
		return err
	}
	defer mdb.Close()
	tokens := access.NewTokens(mdb, access.Options{Logger: logger})

	intake, err := ingest.NewIntake(dd.pipeline, ingest.IntakeOptions{Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	// The intake stops last, after every source, so that what they
	// accepted reaches the store before the data directory closes.
	intakeCtx, stopIntake := context.WithCancel(context.WithoutCancel(ctx))
	intakeDone := make(chan error, 1)
	go func() { intakeDone <- intake.Run(intakeCtx) }()
	defer func() {
		stopIntake()
		if err := <-intakeDone; err != nil {
			logger.Error("storing the last accepted events; the store catches up at the next start", "err", err)
		}
	}()

	po := cfg.parseOptions("")
	handler := web.Handler(web.Options{
		Store:      db,
		Ledger:     dd.ledger,
		LedgerKey:  dd.vkey,
		AdminToken: token,
		Tokens:     tokens,
		Gatherer:   reg,
		Logger:     logger,
		Sources:    intake.Sources,
		Ingest: ingest.HTTPHandler(intake, ingest.HTTPOptions{
			Parse:    po,
			Logger:   logger,
			Identify: ingestIdentity(po.Tenant),
		}),
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("vigil serving", "addr", "http://"+ln.Addr().String(), "data", d.dir, "token_file", d.path(tokenFile))
	fmt.Fprintf(stdout, "vigil %s listening on http://%s\n", version, ln.Addr())
	fmt.Fprintf(stdout, "API token: %s (send it as 'Authorization: Bearer …')\n", d.path(tokenFile))
	fmt.Fprintf(stdout, "try: vigil search --data %s 'eventName:StopLogging'\n", d.dir)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logger.Info("shutting down")
	return srv.Shutdown(shutdown)
}

// ingestIdentity names the tenant and sender of an ingest request from
// its token: an ingest token's own tenant, or, for an administrator, the
// tenant query parameter or def.
func ingestIdentity(def string) func(*http.Request) (string, string, error) {
	return func(r *http.Request) (string, string, error) {
		id, ok := web.IdentityFrom(r.Context())
		if !ok {
			return "", "", errors.New("not authenticated")
		}
		want := r.URL.Query().Get("tenant")
		switch {
		case id.Tenant == "" && want != "":
			if err := access.CheckTenant(want); err != nil {
				return "", "", err
			}
			return want, id.Name, nil
		case id.Tenant == "":
			return def, id.Name, nil
		case want != "" && want != id.Tenant:
			return "", "", fmt.Errorf("this token ingests into tenant %q only, not %q", id.Tenant, want)
		}
		return id.Tenant, id.Name, nil
	}
}

// loadDemoData imports the demo dataset unless the store holds events.
func loadDemoData(ctx context.Context, dd *data, cfg *config, logger *slog.Logger) error {
	st, err := dd.db.Stats(ctx)
	if err != nil {
		return err
	}
	if st.Events > 0 {
		logger.Info("demo: the store already holds events; not loading the demo dataset", "events", st.Events)
		return nil
	}
	opts := cfg.parseOptions("")
	opts.Received = time.Now()
	opts.Backfill = true
	sum, err := ingest.NewImporter(dd.pipeline, ingest.ImportOptions{Format: parse.Auto, Parse: opts, Logger: logger}).
		ImportFS(ctx, demo.Files(), "demo")
	if err != nil {
		return fmt.Errorf("loading the demo dataset: %w", err)
	}
	logger.Info("demo dataset loaded", "events", sum.Events, "quarantined", sum.Quarantined, "files", sum.Files)
	return nil
}

// retentionLoop applies the retention policy a minute after start and then
// daily.
func retentionLoop(ctx context.Context, dd *data, cfg *config, logger *slog.Logger) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = 24 * time.Hour
		res, err := dd.pipeline.ApplyRetention(ctx, cfg.Retention.policy, time.Now())
		if err != nil {
			logger.Error("retention", "err", err)
			continue
		}
		logger.Info("retention applied", "erased", res.Erased, "segments_removed", len(res.Removal.Removed), "segments_held", len(res.Removal.Held))
	}
}
