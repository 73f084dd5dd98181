package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/bench/corpus"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/duckdb"
)

// A searchCase is a vigil query and the same question written by hand in
// SQL for the events table: what someone who knows DuckDB and the schema
// would write to get the same rows.
type searchCase struct {
	name  string
	query string
	sql   string
	args  func(m *corpus.Manifest) []any
}

// eventCols are the columns a search for events returns, as the compiler
// lists them.
var eventCols = strings.Join(query.EventColumns(), ", ")

const limit = 100 // rows of a result, as 'vigil search' asks by default

var searchCases = []searchCase{
	{
		name:  "needle (a rare address, as a word)",
		query: corpus.NeedleIPs[0],
		sql:   "SELECT " + eventCols + " FROM events WHERE contains(raw, ?) ORDER BY time DESC, seq DESC LIMIT 100",
		args:  func(*corpus.Manifest) []any { return []any{corpus.NeedleIPs[0]} },
	},
	{
		name:  "field filter: eventName:StopLogging (original field)",
		query: "eventName:StopLogging",
		sql:   "SELECT " + eventCols + " FROM events WHERE action = 'StopLogging' AND source = 'aws.cloudtrail' ORDER BY time DESC, seq DESC LIMIT 100",
	},
	{
		name:  "field filter: action:StopLogging (normalized field)",
		query: "action:StopLogging",
		sql:   "SELECT " + eventCols + " FROM events WHERE action = 'StopLogging' ORDER BY time DESC, seq DESC LIMIT 100",
	},
	{
		name:  "field filter: src_ip:" + corpus.NeedleCIDR,
		query: "src_ip:" + corpus.NeedleCIDR,
		sql:   "SELECT " + eventCols + " FROM events WHERE starts_with(src_ip, '203.0.113.') ORDER BY time DESC, seq DESC LIMIT 100",
	},
	{
		name:  "group-by: * | stats count() by action",
		query: "* | stats count() by action",
		sql:   "SELECT action, count(*) FROM events GROUP BY action ORDER BY action LIMIT 100",
	},
	{
		name:  "group-by: | stats count() by account, action",
		query: "| stats count() by account, action",
		sql:   "SELECT account, action, count(*) FROM events GROUP BY account, action ORDER BY account, action LIMIT 100",
	},
	{
		name:  "group-by over an original field: eventName:StopLogging | stats count() by actor",
		query: "eventName:StopLogging | stats count() by actor",
		sql:   "SELECT actor, count(*) FROM events WHERE action = 'StopLogging' AND source = 'aws.cloudtrail' GROUP BY actor ORDER BY actor LIMIT 100",
	},
}

// runSearch times each search case three ways on the same open store:
// vigil's Search (the word index, then the compiled SQL), the compiled
// SQL alone (what the compiler costs without the index), and the
// hand-written SQL, the peer.
func runSearch(ctx context.Context, c *config) error {
	path, err := c.searchStore(ctx)
	if err != nil {
		return err
	}
	db, err := duckdb.Open(duckdb.Options{Path: path, ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := readStoreManifest(path)
	if err != nil {
		return err
	}

	var results []searchResult
	for _, sc := range searchCases {
		if !strings.Contains(sc.query, c.only) {
			continue
		}
		q, err := query.Parse(sc.query)
		if err != nil {
			return fmt.Errorf("parsing %q: %w", sc.query, err)
		}
		req := query.Request{Query: q, Scope: query.Scope{All: true}, Limit: limit}
		compiled, err := query.Compile(req, query.DuckDB)
		if err != nil {
			return fmt.Errorf("compiling %q: %w", sc.query, err)
		}
		var args []any
		if sc.args != nil {
			args = sc.args(m.Corpus)
		}
		sides := []struct {
			name string
			run  func() (*store.Result, error)
		}{
			{"vigil", func() (*store.Result, error) { return db.Search(ctx, req) }},
			{"compiled SQL", func() (*store.Result, error) { return rawQuery(ctx, db, compiled.Text, compiled.Args) }},
			{"hand-written SQL", func() (*store.Result, error) { return rawQuery(ctx, db, sc.sql, args) }},
		}
		r := searchResult{name: sc.name, query: sc.query, sql: sc.sql, times: make([][]time.Duration, len(sides))}
		var answers []*store.Result
		// One run of each side first, not timed: it loads the word
		// index and the columns into memory, and gives the answers to
		// compare.
		for _, s := range sides {
			res, err := s.run()
			if err != nil {
				return fmt.Errorf("%s %q: %w", s.name, sc.query, err)
			}
			answers = append(answers, res)
		}
		if err := sameAnswer(answers[0], answers[1]); err != nil {
			return fmt.Errorf("%q: the compiled SQL answers otherwise than vigil: %w", sc.query, err)
		}
		if err := sameAnswer(answers[0], answers[2]); err != nil {
			return fmt.Errorf("%q: the hand-written SQL answers otherwise than vigil: %w", sc.query, err)
		}
		r.rows = len(answers[0].Rows)
		runs := make([]func() error, len(sides))
		for i, s := range sides {
			runs[i] = func() error { _, err := s.run(); return err }
		}
		if i, err := c.takeTurns(runs, r.times); err != nil {
			return fmt.Errorf("%s %q: %w", sides[i].name, sc.query, err)
		}
		c.logf("%-55s vigil %8s  compiled %8s  hand-written %8s", sc.name,
			fmtDur(median(r.times[0], cmpDur)), fmtDur(median(r.times[1], cmpDur)), fmtDur(median(r.times[2], cmpDur)))
		results = append(results, r)
	}
	reportSearch(c, m, results)
	return nil
}

// takeTurns times each side c.runs times into times[i], the sides
// taking turns going first, so that none always finds the caches as
// another left them; a side slower than slowSearch in its first run runs
// once. Each side has run once untimed before. On a failure it returns
// the side that failed.
func (c *config) takeTurns(sides []func() error, times [][]time.Duration) (int, error) {
	for run := range c.runs {
		for k := range sides {
			i := (k + run) % len(sides)
			if run > 0 && times[i][0] > slowSearch {
				continue // a side this slow tells its story in one run
			}
			start := time.Now()
			if err := sides[i](); err != nil {
				return i, err
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	return 0, nil
}

// slowSearch is the time beyond which a side of a search case is timed
// once.
const slowSearch = 5 * time.Second

type searchResult struct {
	name, query, sql string
	rows             int
	times            [][]time.Duration // vigil, compiled SQL, hand-written SQL
}

func cmpDur(a, b time.Duration) int { return int(a - b) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func reportSearch(c *config, m *storeManifest, results []searchResult) {
	w := c.out
	fmt.Fprintf(w, "\nsearch over %d CloudTrail events (%s), %d runs of each side (one if it takes over %s) after one untimed run; min / median\n\n", m.Events, m.Path, c.runs, slowSearch)
	fmt.Fprintln(w, "| query | rows | vigil | compiled SQL alone | hand-written SQL | vigil / hand-written (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range results {
		cell := func(ts []time.Duration) string {
			return fmtDur(slices.Min(ts)) + " / " + fmtDur(median(ts, cmpDur))
		}
		ratio := float64(median(r.times[0], cmpDur)) / float64(median(r.times[2], cmpDur))
		q := strings.ReplaceAll(r.query, "|", `\|`) // a pipe ends a Markdown cell, even in code
		fmt.Fprintf(w, "| `%s` | %d | %s | %s | %s | %.2f |\n", q, r.rows, cell(r.times[0]), cell(r.times[1]), cell(r.times[2]), ratio)
	}
	fmt.Fprintln(w, "\nhand-written SQL:")
	for _, r := range results {
		fmt.Fprintf(w, "  %s\n    %s\n", r.query, strings.Replace(r.sql, eventCols, "<event columns>", 1))
	}
}

// rawQuery runs SQL on the store's database and reads every row, as
// Search does, so that both sides pay for the same results.
func rawQuery(ctx context.Context, db *duckdb.DB, text string, args []any) (*store.Result, error) {
	rows, err := db.SQL().QueryContext(ctx, text, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &store.Result{Columns: cols}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, vals)
	}
	return res, rows.Err()
}

// sameAnswer checks that two results have the same rows, comparing their
// first columns (seq for events; the group and count for stats).
func sameAnswer(a, b *store.Result) error {
	if len(a.Rows) != len(b.Rows) {
		return fmt.Errorf("%d rows against %d", len(a.Rows), len(b.Rows))
	}
	for i := range a.Rows {
		n := min(len(a.Rows[i]), len(b.Rows[i]), 3)
		for j := range n {
			if fmt.Sprint(a.Rows[i][j]) != fmt.Sprint(b.Rows[i][j]) {
				return fmt.Errorf("row %d: %v against %v", i, a.Rows[i][:n], b.Rows[i][:n])
			}
		}
	}
	return nil
}

// storeManifest says what a benchmark store holds; it is written when the
// store is complete.
type storeManifest struct {
	Path    string           `json:"-"`
	Events  int64            `json:"events"`
	Seed    uint64           `json:"seed"`
	Import  time.Duration    `json:"import_ns"`
	Corpus  *corpus.Manifest `json:"corpus"`
	Created time.Time        `json:"created"`
}

func readStoreManifest(dbPath string) (*storeManifest, error) {
	b, err := os.ReadFile(dbPath + ".json")
	if err != nil {
		return nil, fmt.Errorf("reading store manifest: %w", err)
	}
	var m storeManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading store manifest: %w", err)
	}
	m.Path = dbPath
	return &m, nil
}

// searchStore returns the path of a store holding the corpus of c's size
// and seed, imported through the real import path, building it if need
// be. The corpus is removed afterwards unless -keep-corpus is set: at 10
// million events it takes gigabytes.
func (c *config) searchStore(ctx context.Context) (string, error) {
	path := filepath.Join(c.dir, fmt.Sprintf("store-n%d-s%d.duckdb", c.events, c.seed))
	if m, err := readStoreManifest(path); err == nil && m.Events == int64(c.events) {
		if _, err := os.Stat(path); err == nil {
			c.logf("using store %s: %d events", path, m.Events)
			return path, nil
		}
	}
	removeDB(path)
	os.Remove(path + ".json")
	cm, err := c.corpus()
	if err != nil {
		return "", err
	}
	c.logf("importing the corpus into %s", path)
	db, err := duckdb.Open(duckdb.Options{Path: path})
	if err != nil {
		return "", err
	}
	start := time.Now()
	// The store alone: what is measured is search, which the ledger
	// does not take part in.
	sum, err := ingest.NewImporter(&numbered{db: db}, ingest.ImportOptions{
		Format: parse.Auto,
		Parse:  parse.Options{Tenant: "bench", Received: received, Backfill: true},
	}).Import(ctx, []string{filepath.Join(c.corpusDir(), "AWSLogs")})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("building the search store: %w", err)
	}
	if sum.Events != int64(cm.Events) || sum.Quarantined != 0 {
		return "", fmt.Errorf("building the search store: imported %d events and quarantined %d of %d", sum.Events, sum.Quarantined, cm.Events)
	}
	elapsed := time.Since(start)
	c.logf("imported %d events in %s (%.0f events/s)", sum.Events, elapsed.Round(time.Second), float64(sum.Events)/elapsed.Seconds())
	b, err := json.MarshalIndent(storeManifest{Events: sum.Events, Seed: c.seed, Import: elapsed, Corpus: cm, Created: time.Now().UTC()}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".json", b, 0o644); err != nil {
		return "", fmt.Errorf("writing store manifest: %w", err)
	}
	if !c.keepCorpus {
		if err := os.RemoveAll(c.corpusDir()); err != nil {
			return "", fmt.Errorf("removing the corpus: %w", err)
		}
	}
	return path, nil
}
