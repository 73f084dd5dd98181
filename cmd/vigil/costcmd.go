package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
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
	dd, logger, err := d.offline(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer dd.Close()
	// The files' daily costs are summed before they are stored: a
	// month's report comes in several files, and each day's cost of an
	// account's service may be spread over them. What is stored replaces
	// what an earlier import stored for the same days, as a provider
	// restates the month so far each time it writes its report.
	failed := 0
	var all []metric.Series
	for _, name := range files {
		series, st, err := readCostFile(ctx, dd, name)
		if err != nil {
			fmt.Fprintf(stderr, "skipped %s: %v\n", name, err)
			failed++
			continue
		}
		all = append(all, series...)
		for _, sk := range st.Skips {
			logger.Warn("cost row skipped", "file", name, "line", sk.Line, "reason", sk.Reason)
		}
		span := "no usage"
		if !st.From.IsZero() {
			span = st.From.Format("2006-01-02") + " to " + st.To.Format("2006-01-02")
		}
		fmt.Fprintf(stdout, "%s: %d rows, %d skipped: daily cost of %d account and service pairs, %s\n", name, st.Rows, st.Skipped, st.Series, span)
	}
	if failed == len(files) {
		return &exitError{1, errors.New("no file could be read")}
	}
	return dd.db.ReplaceSamples(ctx, t, monitor.Aggregate(all, monitor.CostMetric, []string{"provider", "account", "service", "currency"}))
}

// readCostFile reads one cost export.
func readCostFile(ctx context.Context, dd *data, name string) ([]metric.Series, monitor.CostStats, error) {
	if strings.HasSuffix(name, ".parquet") {
		// DuckDB reads Parquet; the export's CSV reader reads its rows.
		tmp, err := os.CreateTemp("", "vigil-cost-*.csv")
		if err != nil {
			return nil, monitor.CostStats{}, err
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := dd.db.ParquetToCSV(ctx, name, tmp.Name()); err != nil {
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
