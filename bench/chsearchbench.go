package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"github.com/vigilsec/vigil/store/duckdb"
)

// chBatch is the events of one ClickHouse insert: large, as ClickHouse
// wants its inserts, each one making a part per day it spans.
const chBatch = 50_000

// chDatabase is the database the events are loaded into.
const chDatabase = "search"

// chSettle bounds the wait for the merges that follow the load, so
// that they do not share the cores with the timed searches.
const chSettle = 5 * time.Minute

// runCHSearch times the search cases on the embedded store and on two
// ClickHouse shards holding the same events, with the same requests,
// and checks that both answer the same rows.
func runCHSearch(ctx context.Context, c *config) error {
	load0 := loadavg()
	path, err := c.searchStore(ctx)
	if err != nil {
		return err
	}
	m, err := readStoreManifest(path)
	if err != nil {
		return err
	}
	db, err := duckdb.Open(duckdb.Options{Path: path, ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()

	// The servers' data outlives the run, keyed by the store it was
	// loaded from, since loading 10M events takes minutes.
	h := &benchTB{dir: filepath.Join(c.dir, fmt.Sprintf("chsearch-n%d-s%d", c.events, c.seed))}
	marker := filepath.Join(h.dir, "loaded.json")
	prev, err := readCHLoad(marker)
	if err != nil || !prev.Store.Equal(m.Created) || prev.Events != m.Events {
		prev = nil
		if err := os.RemoveAll(h.dir); err != nil {
			return fmt.Errorf("removing stale ClickHouse data: %w", err)
		}
	}
	defer h.stopServers()
	shards, err := h.clickhouse()
	if err != nil {
		return err
	}
	urls := make([]string, len(shards))
	for i, s := range shards {
		urls[i] = s.URL
	}
	opts := clickhouse.Options{Shards: urls, Cluster: chtest.Cluster, Database: chDatabase}
	ch, err := clickhouse.Open(ctx, opts)
	if err != nil {
		return err
	}
	ld := prev
	if ld != nil {
		n, err := ch.Count(ctx, "")
		if err != nil {
			return err
		}
		blooms, err := chStatement(ctx, urls[0], "SELECT count() FROM "+chDatabase+".word_blooms_local")
		switch {
		case err != nil:
			return err
		case n != m.Events:
			c.logf("ClickHouse holds %d events, not %d: loading again", n, m.Events)
			ld = nil
		case strings.TrimSpace(blooms) == "0":
			c.logf("ClickHouse holds the events without their word index, loaded before it: loading again")
			ld = nil
		default:
			c.logf("using the %d events loaded into ClickHouse on %s", n, ld.Loaded.Format(time.DateTime))
		}
	}
	if ld == nil {
		for _, u := range urls {
			if _, err := chStatement(ctx, u, "DROP DATABASE IF EXISTS "+chDatabase); err != nil {
				return fmt.Errorf("emptying ClickHouse: %w", err)
			}
		}
		if ch, err = clickhouse.Open(ctx, opts); err != nil {
			return err
		}
		if ld, err = c.chLoad(ctx, db, ch, m); err != nil {
			return err
		}
		if err := writeCHLoad(marker, ld); err != nil {
			return err
		}
	}
	if parts, err := chParts(ctx, urls); err == nil {
		c.logf("active parts of the events on each shard, and their days: %v", parts)
	}
	if err := c.chSettle(ctx, urls); err != nil {
		return err
	}
	parts, err := chParts(ctx, urls)
	if err != nil {
		return err
	}
	chBytes, err := clickhouseBytes(ctx, urls, chDatabase)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("sizing the DuckDB store: %w", err)
	}

	// chtest's servers cap a query's memory at 2 GB; a search that needs
	// more runs again through a client that asks for ClickHouse's own
	// default cap, and is marked, so that the table says both.
	raisedOpts := opts
	raisedOpts.Client = &http.Client{Transport: chSetting{"max_memory_usage", strconv.FormatInt(chRaisedMemory, 10)}}
	raised, err := clickhouse.Open(ctx, raisedOpts)
	if err != nil {
		return err
	}

	var results []chSearchResult
	for _, sc := range searchCases {
		if !strings.Contains(sc.query, c.only) {
			continue
		}
		q, err := query.Parse(sc.query)
		if err != nil {
			return fmt.Errorf("parsing %q: %w", sc.query, err)
		}
		req := query.Request{Query: q, Scope: query.Scope{All: true}, Limit: limit}
		r := chSearchResult{query: sc.query, times: make([][]time.Duration, 2)}
		// One run of each side first, not timed: it loads the word index
		// and the columns into memory, and gives the answers to compare.
		untimed := func(name string, search func(context.Context, query.Request) (*store.Result, error)) (*store.Result, error) {
			start := time.Now()
			res, err := search(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", name, sc.query, err)
			}
			c.logf("%-40s %-10s untimed run %s", sc.name, name, fmtDur(time.Since(start)))
			return res, nil
		}
		duckAns, err := untimed("DuckDB", db.Search)
		if err != nil {
			return err
		}
		r.rows = len(duckAns.Rows)
		chSide := ch
		chAns, err := untimed("ClickHouse", ch.Search)
		if memoryLimit(err) {
			c.logf("%-40s ClickHouse over its %.0f GB cap: %v", sc.name, chtestMemory/1e9, err)
			r.capped, chSide = true, raised
			chAns, err = untimed("ClickHouse", raised.Search)
			if memoryLimit(err) {
				c.logf("%-40s ClickHouse over %.0f GB too: %v", sc.name, chRaisedMemory/1e9, err)
				r.failed, err = true, nil
			}
		}
		if err != nil {
			return err
		}
		sides := []func() error{
			func() error { _, err := db.Search(ctx, req); return err },
			func() error { _, err := chSide.Search(ctx, req); return err },
		}
		if r.failed {
			sides = sides[:1]
		} else if err := sameRows(duckAns, chAns); err != nil {
			return fmt.Errorf("%q: ClickHouse answers otherwise than the embedded store: %w", sc.query, err)
		}
		if i, err := c.takeTurns(sides, r.times); err != nil {
			return fmt.Errorf("%s %q: %w", []string{"DuckDB", "ClickHouse"}[i], sc.query, err)
		}
		if r.failed {
			c.logf("%-55s DuckDB %8s  ClickHouse fails", sc.name, fmtDur(median(r.times[0], cmpDur)))
		} else {
			c.logf("%-55s DuckDB %8s  ClickHouse %8s", sc.name, fmtDur(median(r.times[0], cmpDur)), fmtDur(median(r.times[1], cmpDur)))
		}
		results = append(results, r)
	}
	reportCHSearch(c, chSearchFigures{
		store: m, load: ld, reused: ld == prev, parts: parts, chBytes: chBytes, duckBytes: info.Size(),
		loadStart: load0, loadEnd: loadavg(),
	}, results)
	return nil
}

type chSearchResult struct {
	query  string
	rows   int
	times  [][]time.Duration // DuckDB, ClickHouse
	capped bool              // ClickHouse needed more than chtest's cap
	failed bool              // and more than chRaisedMemory
}

// chtestMemory is the cap on a query's memory that chtest's servers
// have (their users.xml), and chRaisedMemory ClickHouse's own default,
// which a deployment that sets none has.
const (
	chtestMemory   = 2_000_000_000
	chRaisedMemory = 10_000_000_000
)

// memoryLimit says whether err is ClickHouse's MEMORY_LIMIT_EXCEEDED.
func memoryLimit(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Code: 241,")
}

// chSetting sends a ClickHouse setting with every request, as a
// parameter of its URL.
type chSetting [2]string

func (s chSetting) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	q := r.URL.Query()
	q.Set(s[0], s[1])
	r.URL.RawQuery = q.Encode()
	return http.DefaultTransport.RoundTrip(r)
}

// chLoadFigures is what a load into ClickHouse took, kept beside the
// servers' data so that a run that reuses it can say so.
type chLoadFigures struct {
	Store   time.Time     `json:"store_created"` // the DuckDB store's, as its manifest says
	Events  int64         `json:"events"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Append  time.Duration `json:"append_ns"` // of Elapsed, waiting for ClickHouse's inserts
	CPU     time.Duration `json:"cpu_ns"`    // of this process: DuckDB's reads and encoding the rows
	Batches int           `json:"batches"`
	Loaded  time.Time     `json:"loaded"`
}

func readCHLoad(path string) (*chLoadFigures, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ld chLoadFigures
	if err := json.Unmarshal(b, &ld); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &ld, nil
}

func writeCHLoad(path string, ld *chLoadFigures) error {
	b, err := json.MarshalIndent(ld, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing the ClickHouse load's figures: %w", err)
	}
	return nil
}

// chLoad copies the store's events into ClickHouse, in seq order (the
// order the import appended them, as a process node would append the
// ledger's), keeping their seqs. The store is read while ClickHouse
// takes the previous batch.
func (c *config) chLoad(ctx context.Context, db *duckdb.DB, ch *clickhouse.Store, m *storeManifest) (*chLoadFigures, error) {
	var hi uint64
	if err := db.SQL().QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&hi); err != nil {
		return nil, fmt.Errorf("finding the store's last seq: %w", err)
	}
	c.logf("loading %d events into ClickHouse, %d a batch", m.Events, chBatch)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []*event.Event, 1)
	read := make(chan error, 1)
	go func() {
		defer close(batches)
		send := func(b []*event.Event) error {
			select {
			case batches <- b:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		}
		b := make([]*event.Event, 0, chBatch)
		err := db.Events(rctx, 0, hi+1, func(e *event.Event) error {
			b = append(b, e)
			if len(b) < chBatch {
				return nil
			}
			err := send(b)
			b = make([]*event.Event, 0, chBatch)
			return err
		})
		if err == nil && len(b) > 0 {
			err = send(b)
		}
		read <- err
	}()
	ld := &chLoadFigures{Store: m.Created}
	start, cpu0 := time.Now(), cpuTime()
	var appendErr error
	next := int64(1_000_000)
	for b := range batches {
		if appendErr != nil {
			continue // drained, so that the reader ends
		}
		t := time.Now()
		if err := ch.Append(ctx, 0, b); err != nil {
			appendErr = fmt.Errorf("loading ClickHouse: %w", err)
			cancel()
			continue
		}
		ld.Append += time.Since(t)
		ld.Events += int64(len(b))
		ld.Batches++
		if ld.Events >= next {
			c.logf("loaded %d events, %.0f events/s", ld.Events, float64(ld.Events)/time.Since(start).Seconds())
			next += 1_000_000
		}
	}
	readErr := <-read
	if appendErr != nil {
		return nil, appendErr
	}
	if readErr != nil {
		return nil, fmt.Errorf("reading the store for ClickHouse: %w", readErr)
	}
	ld.Elapsed, ld.CPU, ld.Loaded = time.Since(start), cpuTime()-cpu0, time.Now().UTC()
	if ld.Events != m.Events {
		return nil, fmt.Errorf("read %d events of the store's %d", ld.Events, m.Events)
	}
	n, err := ch.Count(ctx, "")
	if err != nil {
		return nil, err
	}
	if n != m.Events {
		return nil, fmt.Errorf("ClickHouse holds %d events after the load, want %d", n, m.Events)
	}
	c.logf("loaded %d events in %s (%.0f events/s; %s of it in ClickHouse's inserts; %s of this process's CPU)", ld.Events,
		ld.Elapsed.Round(time.Second), float64(ld.Events)/ld.Elapsed.Seconds(), ld.Append.Round(time.Second), ld.CPU.Round(time.Second))
	return ld, nil
}

// chSettle waits, up to chSettle, for the shards' merges to end.
func (c *config) chSettle(ctx context.Context, shards []string) error {
	start := time.Now()
	for {
		running := 0
		for _, u := range shards {
			out, err := chStatement(ctx, u, "SELECT count() FROM system.merges")
			if err != nil {
				return fmt.Errorf("asking for merges: %w", err)
			}
			n, err := strconv.Atoi(out)
			if err != nil {
				return fmt.Errorf("asking for merges: %w", err)
			}
			running += n
		}
		if running == 0 {
			c.logf("no merge running, after %s", time.Since(start).Round(time.Second))
			return nil
		}
		if time.Since(start) > chSettle {
			c.logf("%d merges still running after %s: timing anyway", running, chSettle)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// chParts is each shard's active parts of the events table and the
// partitions (days) they are in: how much a FINAL read has to merge.
func chParts(ctx context.Context, shards []string) ([][2]int, error) {
	var out [][2]int
	for _, u := range shards {
		s, err := chStatement(ctx, u, "SELECT count(), uniqExact(partition) FROM system.parts WHERE active AND database = '"+chDatabase+"' AND table = 'events_local'")
		if err != nil {
			return nil, fmt.Errorf("counting parts: %w", err)
		}
		var p [2]int
		if _, err := fmt.Sscan(s, &p[0], &p[1]); err != nil {
			return nil, fmt.Errorf("counting parts: %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// chStatement runs a statement on one server and returns its answer,
// trimmed.
func chStatement(ctx context.Context, shard, stmt string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, shard+"/?"+url.Values{"query": {stmt}}.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", shard, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s: %w", shard, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", shard, resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// clickhouse starts two ClickHouse shards, without the JetStream
// cluster of servers, which search does not need.
func (h *benchTB) clickhouse() (shards []*chtest.Shard, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting ClickHouse: %v", r)
		}
	}()
	shards = chtest.Start(h, 2)
	if h.failed != nil {
		return nil, h.failed
	}
	return shards, nil
}

// stopServers stops the servers and keeps their directories, unlike
// close, for the next run to start on the same data.
func (h *benchTB) stopServers() {
	for _, f := range slices.Backward(h.cleanups) {
		f()
	}
	h.cleanups = nil
}

// sameRows checks that ClickHouse gives the embedded store's rows in the
// embedded store's order: for events the same seqs, then every value,
// as the console would show it.
func sameRows(duck, ch *store.Result) error {
	if len(duck.Rows) != len(ch.Rows) {
		return fmt.Errorf("%d rows in DuckDB, %d in ClickHouse", len(duck.Rows), len(ch.Rows))
	}
	if duck.Events != ch.Events || !slices.Equal(duck.Columns, ch.Columns) {
		return fmt.Errorf("columns %q (events %v) in DuckDB, %q (events %v) in ClickHouse", duck.Columns, duck.Events, ch.Columns, ch.Events)
	}
	if duck.Events {
		seqs := func(r *store.Result) []string {
			out := make([]string, len(r.Rows))
			for i, row := range r.Rows {
				out[i] = shown(row[0])
			}
			return out
		}
		d, k := seqs(duck), seqs(ch)
		if !slices.Equal(d, k) {
			how := "in another order"
			if !slices.Equal(slices.Sorted(slices.Values(d)), slices.Sorted(slices.Values(k))) {
				how = "not the same events"
			}
			return fmt.Errorf("seqs %s: DuckDB %v, ClickHouse %v", how, d, k)
		}
	}
	for i := range duck.Rows {
		for j := range duck.Rows[i] {
			if d, k := shown(duck.Rows[i][j]), shown(ch.Rows[i][j]); d != k {
				return fmt.Errorf("row %d, %s: DuckDB %.200q, ClickHouse %.200q", i, duck.Columns[j], d, k)
			}
		}
	}
	return nil
}

// shown is a value as the console shows it, so that the two stores'
// types compare: an int64 and a uint64 of the same number are the same.
func shown(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return fmt.Sprintf("%.6g", x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = shown(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// loadavg is the machine's load over 1, 5 and 15 minutes: what else ran
// on the cores both engines share.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type chSearchFigures struct {
	store              *storeManifest
	load               *chLoadFigures
	parts              [][2]int
	reused             bool // the load was an earlier run's
	chBytes, duckBytes int64
	loadStart, loadEnd string
}

func reportCHSearch(c *config, f chSearchFigures, results []chSearchResult) {
	w := c.out
	n := f.store.Events
	fmt.Fprintf(w, "\nsearch over the same %d CloudTrail events in the embedded store (DuckDB, %s) and in 2 ClickHouse shards on this machine;\n", n, f.store.Path)
	fmt.Fprintf(w, "%d runs of each side (one if it takes over %s) after one untimed run; min / median\n\n", c.runs, slowSearch)
	fmt.Fprintln(w, "| query | rows | DuckDB (vigil, word index) | ClickHouse (2 shards, 1 machine) | ClickHouse / DuckDB (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	capped := false
	for _, r := range results {
		cell := func(ts []time.Duration) string {
			return fmtDur(slices.Min(ts)) + " / " + fmtDur(median(ts, cmpDur))
		}
		q := strings.ReplaceAll(r.query, "|", `\|`) // a pipe ends a Markdown cell, even in code
		if r.failed {
			fmt.Fprintf(w, "| `%s` | %d | %s | fails: over %.0f GB of memory | — |\n", q, r.rows, cell(r.times[0]), chRaisedMemory/1e9)
			continue
		}
		mark := ""
		if r.capped {
			mark, capped = " †", true
		}
		ratio := float64(median(r.times[1], cmpDur)) / float64(median(r.times[0], cmpDur))
		fmt.Fprintf(w, "| `%s` | %d | %s | %s%s | %.2f |\n", q, r.rows, cell(r.times[0]), cell(r.times[1]), mark, ratio)
	}
	if capped {
		fmt.Fprintf(w, "\n† over the %.0f GB a query may take on chtest's servers (MEMORY_LIMIT_EXCEEDED); run and timed with ClickHouse's default cap, %.0f GB\n", chtestMemory/1e9, chRaisedMemory/1e9)
	}
	ld := f.load
	when := "in this run"
	if f.reused {
		when = "in an earlier run, " + ld.Loaded.Format(time.DateTime) + " UTC, whose data this run reused"
	}
	fmt.Fprintf(w, "\nload into ClickHouse (%s): %d events in %s, %.0f events/s, %d inserts of up to %d events (%s of the time in them, the rest waiting for DuckDB's reads);\n",
		when, ld.Events, ld.Elapsed.Round(time.Second), float64(ld.Events)/ld.Elapsed.Seconds(), ld.Batches, chBatch, ld.Append.Round(time.Second))
	fmt.Fprintf(w, "the bench's own CPU in the load (reading DuckDB, encoding the rows as JSON, flattening the documents): %s\n", ld.CPU.Round(time.Second))
	for i, p := range f.parts {
		fmt.Fprintf(w, "ClickHouse shard %d: %d active parts of events_local in %d partitions (days)\n", i+1, p[0], p[1])
	}
	fmt.Fprintf(w, "bytes per event: ClickHouse %d (compressed columns, both shards), DuckDB %d (the file, word index included)\n",
		f.chBytes/max(n, 1), f.duckBytes/max(n, 1))
	fmt.Fprintf(w, "load average: %s at the start, %s at the end\n", f.loadStart, f.loadEnd)
}
