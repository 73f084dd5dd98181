// Command bench measures vigil against a peer in the same run, so that the
// figures in BENCHMARKS.md are ratios that hold on a noisy, shared machine.
//
//	go run ./bench import [-events 1000000] [-dir /tmp/vigil-bench]
//	go run ./bench search [-events 10000000] [-dir /tmp/vigil-bench]
//	go run ./bench chsearch [-events 10000000] [-runs 5]
//	go run ./bench ingest [-events 1000000] [-runs 1]
//	go run ./bench detect [-events 1000000] [-runs 3] [-rules DIR]
//	go run ./bench detect-import [-events 1000000] [-runs 3] [-rules DIR]
//	go run ./bench alert [-rate 20000] [-needles 100] [-runs 1] [-playbook]
//	go run ./bench monitor [-series 100000] [-events 1000000] [-runs 3]
//	go run ./bench console [-runs 20]
//	go run ./bench scale [-events 200000] [-runs 3]
//	go run ./bench corpus [-events N]
//
// import times vigil's file importer (parse, normalize, append to a fresh
// DuckDB store) against DuckDB's own read_json loading the same files into
// a table. search times store.Search against the same query written by
// hand in SQL on the same table. detect times the detection engine, every
// rule loaded, against github.com/bradleyjkemp/sigma-go on the same
// events. detect-import times `vigil import` with detection on against
// the same import with it off. alert times an alert from its event's
// acknowledgement to a webhook, under an ingest load and idle. Corpora
// and stores are built under -dir on first use and reused,
// keyed by size and seed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/bench/corpus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `Usage: go run ./bench COMMAND [flags]

Commands:
  import   vigil's importer against DuckDB's read_json on the same files
  search   vigil's search against hand-written SQL on the same store
  chsearch the same searches on the embedded store and on two ClickHouse shards run on
           this machine, holding the same events (needs clickhouse-server)
  ledger   the import with the ledger against without it; vigil verify against sha256
  ingest   HTTP ingest into vigil serve under load against vigil import of the same files
  detect   the detection engine, every rule loaded, against sigma-go on the same events
  detect-import
           vigil import with detection on against with it off: what detection adds to ingest
  enrich   vigil import with enrichment (1M inventory facts, 1M indicators, GeoIP, ranges)
           against --enrich=false: what enrichment adds to ingest
  alert    event acknowledged to webhook received, under an ingest load against idle
  monitor  an evaluation pass over 100k series against a static mean ± 6σ; samples stored
           through remote write against appended to the store directly
  console  the console's pages on the demo data, each against the API read it shows
  scale    the scale-out's process nodes, two against one, on a JetStream cluster and two
           ClickHouse shards run on this machine (needs clickhouse-server)
  corpus   build (or find) a corpus and print its manifest

Run 'go run ./bench COMMAND -h' for the flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	var cmd func(context.Context, *config) error
	defEvents, defRuns := 1_000_000, 3
	switch args[0] {
	case "import":
		cmd = runImport
	case "search":
		cmd, defEvents, defRuns = runSearch, 10_000_000, 5
	case "chsearch":
		cmd, defEvents, defRuns = runCHSearch, 10_000_000, 5
	case "ledger":
		cmd = runLedger
	case "ingest":
		cmd, defRuns = runIngest, 1
	case "detect":
		cmd = runDetect
	case "detect-import":
		cmd = runDetectImport
	case "enrich":
		cmd = runEnrich
	case "alert":
		cmd, defRuns = runAlert, 1
	case "monitor":
		cmd = runMonitor
	case "console":
		cmd, defRuns = runConsole, 20
	case "scale":
		cmd, defEvents = runScale, 200_000
	case "corpus":
		cmd = runCorpus
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	c := &config{out: stdout, log: stderr}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.events, "events", defEvents, "events in the corpus")
	fs.Uint64Var(&c.seed, "seed", 1, "corpus seed")
	fs.StringVar(&c.dir, "dir", filepath.Join(os.TempDir(), "vigil-bench"), "directory for corpora and stores (never the repository)")
	fs.StringVar(&c.fixtures, "fixtures", "../shared/testdata/stratus-red-team-detonation-logs/detonation-logs", "directory of CloudTrail fixtures the corpus is built from")
	fs.IntVar(&c.runs, "runs", defRuns, "measured runs of each side")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of vigil's side to this file")
	fs.IntVar(&c.workers, "workers", 0, "vigil's import workers (0: the importer's default, GOMAXPROCS)")
	fs.BoolVar(&c.quiet, "q", false, "print only the results")
	if args[0] == "search" || args[0] == "chsearch" {
		fs.BoolVar(&c.keepCorpus, "keep-corpus", false, "keep the corpus files after the store is built")
		fs.StringVar(&c.only, "only", "", "run only the search cases whose query contains this text")
	}
	if args[0] == "ingest" || args[0] == "alert" {
		fs.IntVar(&c.batch, "batch", 500, "records per HTTP request")
	}
	if args[0] == "alert" {
		fs.IntVar(&c.rate, "rate", 20000, "background events a second")
		fs.IntVar(&c.needles, "needles", 100, "needle events a run")
		fs.BoolVar(&c.playbook, "playbook", false, "also run a playbook on each needle's alert, and time its call")
	}
	if args[0] == "ledger" {
		fs.BoolVar(&c.verifyOnly, "verify-only", false, "time only vigil verify (the import with the ledger builds its data directory once)")
	}
	if args[0] == "monitor" {
		fs.IntVar(&c.series, "series", 100_000, "series of the evaluation pass (-events is the samples written)")
	}
	if args[0] == "enrich" {
		fs.IntVar(&c.facts, "facts", 1_000_000, "inventory address intervals loaded (a snapshot)")
		fs.IntVar(&c.indicators, "indicators", 1_000_000, "threat-intel indicators loaded")
	}
	if args[0] == "detect" || args[0] == "detect-import" {
		fs.StringVar(&c.rules, "rules", "../shared/testdata/sigmahq-cloud-rules", "directory of Sigma rules loaded beside the built-in pack")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.events <= 0 || c.runs <= 0 {
		return errors.New("-events and -runs must be positive")
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("creating bench directory: %w", err)
	}
	c.logf("%s: %d events, seed %d, GOMAXPROCS %d, %s", args[0], c.events, c.seed, runtime.GOMAXPROCS(0), runtime.Version())
	return cmd(ctx, c)
}

// config is what every command is given.
type config struct {
	events     int
	series     int // monitor
	seed       uint64
	dir        string
	fixtures   string
	runs       int
	cpuprofile string
	workers    int
	quiet      bool
	keepCorpus bool
	only       string
	verifyOnly bool
	batch      int
	rules      string
	rate       int  // alert: background events a second
	needles    int  // alert: needle events a run
	playbook   bool // alert: time a playbook's call too
	facts      int  // enrich: inventory address intervals
	indicators int  // enrich: threat-intel indicators
	out, log   io.Writer
}

// logf reports progress on stderr.
func (c *config) logf(format string, args ...any) {
	if !c.quiet {
		fmt.Fprintf(c.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

func (c *config) corpusDir() string {
	return filepath.Join(c.dir, fmt.Sprintf("corpus-n%d-s%d", c.events, c.seed))
}

// corpus returns the corpus, building it when it is not there yet.
func (c *config) corpus() (*corpus.Manifest, error) {
	dir := c.corpusDir()
	start := time.Now()
	m, built, err := corpus.Ensure(dir, corpus.Options{Fixtures: c.fixtures, Events: c.events, Seed: c.seed})
	if err != nil {
		return nil, err
	}
	if built {
		c.logf("built corpus %s: %d files, %.0f MB gzip, %.0f MB JSON, in %s", dir, m.Files, mb(m.Bytes), mb(m.JSONBytes), time.Since(start).Round(time.Millisecond))
	} else {
		c.logf("using corpus %s: %d files, %.0f MB gzip", dir, m.Files, mb(m.Bytes))
	}
	return m, nil
}

func runCorpus(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s\n%d events in %d files, %.0f MB gzip, %.0f MB JSON, %s to %s\nneedles: %v\n",
		c.corpusDir(), m.Events, m.Files, mb(m.Bytes), mb(m.JSONBytes), m.Start.Format(time.DateOnly), m.End.Format(time.DateOnly), m.Needles)
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// profile runs fn under the CPU profiler when one was asked for.
func (c *config) profile(fn func() error) error {
	if c.cpuprofile == "" {
		return fn()
	}
	f, err := os.Create(c.cpuprofile)
	if err != nil {
		return fmt.Errorf("creating CPU profile: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("starting CPU profile: %w", err)
	}
	err = fn()
	pprof.StopCPUProfile()
	return err
}
