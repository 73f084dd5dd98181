package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/duckdb"
)

// runCost imports cost exports: `vigil cost import FILE...`.
func runCost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "Usage: vigil cost import [--data DIR] [--tenant T] FILE...\n\n" +
		"Reads cloud cost exports (AWS Cost and Usage Reports and CUR 2.0, FOCUS, Google\n" +
		"Cloud billing and Azure cost exports: CSV, gzip-compressed or not, or Parquet) and\n" +
		"keeps the daily usage cost of each account and service as the metric \"cost\", for\n" +
		"monitoring rules (docs/monitoring.md). Credits, refunds and taxes are left out.\n\nFlags:"
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	fs := newFlags("cost import", stderr)
	var d dataFlags
	d.register(fs)
	tenant := fs.String("tenant", "", "tenant the costs belong to (default from the config, else \"default\")")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	files, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	t := cfg.parseOptions(*tenant).Tenant
	if err := access.CheckTenant(t); err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	st, logger, closeStore, err := costStoreOf(ctx, &d, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	// The files' daily costs are summed before they are stored: a
	// month's report comes in several files, and each day's cost of an
	// account's service may be spread over them. What is stored replaces
	// what an earlier import stored for the same days, as a provider
	// restates the month so far each time it writes its report.
	failed := 0
	var all []metric.Series
	for _, name := range files {
		series, cs, err := readCostFile(ctx, st, name)
		if err != nil {
			fmt.Fprintf(stderr, "skipped %s: %v\n", name, err)
			failed++
			continue
		}
		all = append(all, series...)
		for _, sk := range cs.Skips {
			logger.Warn("cost row skipped", "file", name, "line", sk.Line, "reason", sk.Reason)
		}
		span := "no usage"
		if !cs.From.IsZero() {
			span = cs.From.Format("2006-01-02") + " to " + cs.To.Format("2006-01-02")
		}
		fmt.Fprintf(stdout, "%s: %d rows, %d skipped: daily cost of %d account and service pairs, %s\n", name, cs.Rows, cs.Skipped, cs.Series, span)
	}
	if failed == len(files) {
		return &exitError{1, errors.New("no file could be read")}
	}
	return st.ReplaceSamples(ctx, t, monitor.Aggregate(all, monitor.CostMetric, []string{"provider", "account", "service", "currency"}))
}

// A costStore keeps the daily costs: the embedded store, or a
// scale-out's ClickHouse. DuckDB reads the exports that are Parquet.
type costStore interface {
	ReplaceSamples(ctx context.Context, tenant string, series []metric.Series) error
	ParquetToCSV(ctx context.Context, src, dst string) error
}

// costStoreOf opens where the costs go, and what closes it.
func costStoreOf(ctx context.Context, d *dataFlags, cfg *config, stderr io.Writer) (costStore, *slog.Logger, func(), error) {
	if !cfg.Scale.configured() {
		dd, logger, err := d.offline(ctx, cfg, stderr)
		if err != nil {
			return nil, nil, nil, err
		}
		return dd.db, logger, func() { dd.Close() }, nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ch, err := cfg.Scale.openClickHouse(ctx, "")
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := duckdb.Open(duckdb.Options{Logger: logger}) // in memory, for Parquet
	if err != nil {
		return nil, nil, nil, err
	}
	return scaledCosts{ch, db}, logger, func() { db.Close() }, nil
}

// scaledCosts keeps costs in ClickHouse, and reads Parquet with an
// in-memory DuckDB.
type scaledCosts struct {
	*clickhouse.Store
	parquet *duckdb.DB
}

func (s scaledCosts) ParquetToCSV(ctx context.Context, src, dst string) error {
	return s.parquet.ParquetToCSV(ctx, src, dst)
}

// readCostFile reads one cost export.
func readCostFile(ctx context.Context, st costStore, name string) ([]metric.Series, monitor.CostStats, error) {
	if strings.HasSuffix(name, ".parquet") {
		// DuckDB reads Parquet; the export's CSV reader reads its rows.
		tmp, err := os.CreateTemp("", "vigil-cost-*.csv")
		if err != nil {
			return nil, monitor.CostStats{}, err
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := st.ParquetToCSV(ctx, name, tmp.Name()); err != nil {
			return nil, monitor.CostStats{}, err
		}
		name = tmp.Name()
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, monitor.CostStats{}, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, monitor.CostStats{}, err
		}
		r = zr
	}
	return monitor.ReadCost(r)
}
