// Package duckdb is the embedded store: events in a DuckDB database file
// in the data directory, appended in batches and searched with the SQL
// the query compiler writes for DuckDB's dialect.
package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

//go:embed schema.sql
var schema string

// ErrLocked is returned when another process holds the database for
// writing; DuckDB allows one writer per file.
var ErrLocked = errors.New("database is locked by another vigil process")

// Options configure a DB.
type Options struct {
	Path     string // the database file; "" for an in-memory database
	ReadOnly bool
	// MemoryLimit bounds DuckDB's buffer memory ("512MB"); beyond it,
	// queries spill to disk. Empty means DuckDB's default, 80% of RAM,
	// which suits a one-off import but not a server beside other work.
	MemoryLimit string
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// DB is a store in one DuckDB database file.
type DB struct {
	opts      Options
	connector *duckdb.Connector
	db        *sql.DB
	logger    *slog.Logger
	metrics   *metrics

	mu sync.Mutex // serializes appends

	words *wordIndex // index.go

	// Open loaders, and DuckDB's threads setting before the first
	// (load.go); guarded by mu.
	loaders     int
	loadThreads int64
}

var _ store.Store = (*DB)(nil)

// ErrOldSchema is returned by a read-only Open of a store made by an
// earlier vigil, which an Open that may write brings up to date.
var ErrOldSchema = errors.New("the store was made by an earlier vigil: run 'vigil serve' or 'vigil import' on it once to add the columns and tables this one reads")

// Open opens or creates the database.
func Open(opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dsn := opts.Path
	if opts.ReadOnly {
		if _, err := os.Stat(opts.Path); err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		dsn += "?access_mode=read_only"
	}
	if opts.MemoryLimit != "" {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "memory_limit=" + url.QueryEscape(opts.MemoryLimit)
	}
	c, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("opening %s: %w", opts.Path, ErrLocked)
		}
		return nil, fmt.Errorf("opening %s: %w", opts.Path, err)
	}
	s := &DB{opts: opts, connector: c, db: sql.OpenDB(c), logger: opts.Logger, metrics: newMetrics(opts.Registerer)}
	s.words = newWordIndex(s.db, s.withAppender, s.logger)
	if !opts.ReadOnly {
		if _, err := s.db.Exec(schema); err != nil {
			s.Close()
			return nil, fmt.Errorf("creating schema in %s: %w", opts.Path, err)
		}
		return s, nil
	}
	// A read-only store cannot be given the columns added since it was
	// made; say so, rather than fail each search on a missing column.
	var n int
	err = s.db.QueryRow(`SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'intel_type') +
		(SELECT count(*) FROM information_schema.tables WHERE table_name IN ('origin_backfills', 'samples', 'samples_hourly'))`).Scan(&n)
	if err == nil && n < 4 {
		err = ErrOldSchema
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("opening %s: %w", opts.Path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error {
	err := s.db.Close()
	if cerr := s.connector.Close(); err == nil {
		err = cerr
	}
	return err
}

// bySeq returns evs in seq order: evs itself when it is already.
func bySeq(evs []*event.Event) []*event.Event {
	cmpSeq := func(a, b *event.Event) int { return cmp.Compare(a.Seq, b.Seq) }
	if slices.IsSortedFunc(evs, cmpSeq) {
		return evs
	}
	sorted := slices.Clone(evs)
	slices.SortFunc(sorted, cmpSeq)
	return sorted
}

// SQL gives tests and tools the database itself.
func (s *DB) SQL() *sql.DB { return s.db }

// Append stores events, which must be numbered: their Seq is their index
// in the ledger, which the store is derived from. They are stored in seq
// order, which the ledger's numbering makes time order within a batch
// (ingest sorts a batch by time before it appends it to the ledger), so
// that each row group covers a narrow time range and time-bounded queries
// skip the rest.
func (s *DB) Append(ctx context.Context, evs []*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	sorted := bySeq(evs)
	s.mu.Lock()
	defer s.mu.Unlock()
	words := s.words.start(sorted) // built while DuckDB appends
	err := s.withAppender(ctx, "events", func(a *duckdb.Appender) error {
		for _, e := range sorted {
			if err := a.AppendRow(eventRow(e)...); err != nil {
				return fmt.Errorf("appending event %d: %w", e.Seq, err)
			}
		}
		return nil
	})
	if err != nil {
		words.cancel()
		return err
	}
	s.words.finish(ctx, words)
	s.metrics.appended.Add(float64(len(evs)))
	return nil
}

// Quarantine stores records that could not be parsed.
func (s *DB) Quarantine(ctx context.Context, qs []store.Quarantined) error {
	if len(qs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.withAppender(ctx, "quarantine", func(a *duckdb.Appender) error {
		for _, q := range qs {
			raw, rawBin := text(q.Raw)
			if err := a.AppendRow(q.Received.UTC(), q.Tenant, q.Format, q.Origin, nullUint(q.Line), nullUint(q.Offset), q.Reason, raw, rawBin); err != nil {
				return fmt.Errorf("appending quarantined record from %s: %w", q.Origin, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.metrics.quarantined.Add(float64(len(qs)))
	return nil
}

func (s *DB) withAppender(ctx context.Context, table string, fn func(*duckdb.Appender) error) error {
	conn, err := s.connector.Connect(ctx)
	if err != nil {
		return fmt.Errorf("connecting to store: %w", err)
	}
	defer conn.Close()
	a, err := duckdb.NewAppenderFromConn(conn, "", table)
	if err != nil {
		return fmt.Errorf("appending to %s: %w", table, err)
	}
	if err := fn(a); err != nil {
		a.Close()
		return err
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("flushing %s: %w", table, err)
	}
	return nil
}

// eventRow lists an event's values in the column order of schema.sql.
func eventRow(e *event.Event) []driver.Value {
	raw, rawBin := text(e.Raw)
	var doc any
	if e.Doc != nil {
		d, _ := text(e.Doc)
		doc = d
	}
	var resources any
	if len(e.Resources) > 0 {
		resources = e.Resources
	}
	// 35 columns of the first release, then 18 of enrichment.
	row := append(make([]driver.Value, 0, 35+18),
		e.Seq, e.Time.UTC(), e.Received.UTC(), e.Skewed,
		e.Tenant, e.Source, e.Class, null(e.ID),
		null(e.Cloud.Provider), null(e.Cloud.Account), null(e.Cloud.Region), null(e.Environment),
		null(e.Actor.Name), null(e.Actor.ID), null(e.Actor.Type),
		null(e.Session.ID), null(e.Session.Origin),
		ipText(e.SrcIP), ipBin(e.SrcIP), ipText(e.DstIP), ipBin(e.DstIP),
		nullPort(e.SrcPort), nullPort(e.DstPort),
		null(e.Host), null(e.UserAgent), null(e.Service), null(e.Action),
		resources, null(e.Outcome.Result), null(e.Outcome.Code), null(e.Message), null(e.Origin),
		raw, rawBin, doc,
	)
	c := &e.Context
	for _, p := range []*event.Place{&c.Src, &c.Dst} {
		var asn driver.Value
		if p.ASN != 0 {
			asn = p.ASN
		}
		row = append(row, null(p.Asset), null(p.Owner), null(p.Country), null(p.City), asn, null(p.ASOrg), null(p.Cloud))
	}
	row = append(row, null(c.Team))
	var lists [3]driver.Value
	if len(c.Intel) > 0 {
		l, ind, typ := make([]string, len(c.Intel)), make([]string, len(c.Intel)), make([]string, len(c.Intel))
		for i, h := range c.Intel {
			l[i], ind[i], typ[i] = h.List, h.Indicator, h.Type
		}
		lists = [3]driver.Value{l, ind, typ}
	}
	return append(row, lists[:]...)
}

// text returns the value of b for a VARCHAR column, and b itself for the
// BLOB beside it when b is not valid UTF-8: DuckDB stores only valid
// UTF-8 in VARCHAR, and the exact bytes must survive. Valid text is
// passed as the []byte it is, which the appender copies, rather than
// copied into a string first: raw documents are most of what an import
// writes.
func text(b []byte) (txt, bin any) {
	if utf8.Valid(b) {
		return b, nil
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), b
}

func null(s string) any {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

func nullPort(p uint16) any {
	if p == 0 {
		return nil
	}
	return p
}

func nullUint(n int64) any {
	if n <= 0 {
		return nil
	}
	return uint64(n)
}

func ipText(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.Unmap().String()
}

// ipBin is the 16-byte form CIDR ranges are compared against.
func ipBin(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	b := a.Unmap().As16()
	return b[:]
}

// LoadWordIndex reads the word index into memory, which the first search
// for words does otherwise (about 0.25 s per million events in a fresh
// process). A server calls it in the background at start, so that no
// analyst's search waits for it; an import never needs it.
func (s *DB) LoadWordIndex(ctx context.Context) {
	s.words.load(ctx)
}

// Search compiles the query for DuckDB and runs it. A search for words
// reads only the blocks of events the word index (index.go) says may
// hold them.
func (s *DB) Search(ctx context.Context, req query.Request) (*store.Result, error) {
	start := time.Now()
	req = s.words.restrict(ctx, req)
	q, err := query.Compile(req, query.DuckDB)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, q.Text, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("running search: %w", err)
	}
	defer rows.Close()
	cols := q.Columns
	if q.Kind == query.Events {
		cols = query.EventColumns()
	}
	res := &store.Result{Columns: cols, Events: q.Kind == query.Events}
	if res.Rows, err = scanRows(rows, len(cols)); err != nil {
		return nil, fmt.Errorf("reading search results: %w", err)
	}
	store.RedactResult(res, req.Scope)
	s.metrics.searchSeconds.Observe(time.Since(start).Seconds())
	return res, nil
}

// scanRows reads every row of n columns, converting each value to one of
// the types store.Result promises.
func scanRows(rows *sql.Rows, n int) ([][]any, error) {
	var out [][]any
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = plain(v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// plain converts a value scanned from DuckDB to one of the types
// store.Result promises.
func plain(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, float64:
		return x
	case time.Time:
		return x.UTC()
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint8:
		return uint64(x)
	case float32:
		return float64(x)
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
		return x.String()
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case duckdb.Interval:
		return time.Duration(x.Micros)*time.Microsecond + time.Duration(x.Days)*24*time.Hour
	}
	return fmt.Sprint(v)
}

// Stats summarizes what the store holds, for the import summary and the
// console.
type Stats struct {
	Events      int64
	Quarantined int64
	First, Last time.Time
}

// Stats counts events and quarantined records.
func (s *DB) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var first, last sql.NullTime
	if err := s.db.QueryRowContext(ctx, "SELECT count(*), min(time), max(time) FROM events").Scan(&st.Events, &first, &last); err != nil {
		return st, fmt.Errorf("counting events: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM quarantine").Scan(&st.Quarantined); err != nil {
		return st, fmt.Errorf("counting quarantine: %w", err)
	}
	st.First, st.Last = first.Time, last.Time
	return st, nil
}

type metrics struct {
	appended      prometheus.Counter
	quarantined   prometheus.Counter
	searchSeconds prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_store_events_appended_total", Help: "Events appended to the store.",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_store_quarantined_total", Help: "Records stored in quarantine.",
		}),
		searchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_store_search_seconds", Help: "Time to run a search.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	if r != nil {
		r.MustRegister(m.appended, m.quarantined, m.searchSeconds)
	}
	return m
}

// quarantineColumns are the columns a quarantine search returns.
var quarantineColumns = []string{"received", "tenant", "source", "origin", "line", "offset", "reason", "raw"}

// SearchQuarantine lists quarantined records received in [from, to) whose
// reason, origin or raw bytes contain every word of text (case
// insensitive); "" or "*" lists them all. Records of tenants outside
// scope are never returned.
func (s *DB) SearchQuarantine(ctx context.Context, text string, scope query.Scope, from, to time.Time, limit int) (*store.Result, error) {
	where, args := scopeWhere(scope)
	if !from.IsZero() {
		where = append(where, "received >= ?")
		args = append(args, from.UTC())
	}
	if !to.IsZero() {
		where = append(where, "received < ?")
		args = append(args, to.UTC())
	}
	for _, w := range strings.Fields(text) {
		if w == "*" {
			continue
		}
		where = append(where, `(contains(lower(reason), ?) OR contains(lower(origin), ?) OR contains(lower(raw), ?))`)
		w = strings.ToLower(w)
		args = append(args, w, w, w)
	}
	q := `SELECT received, tenant, source, origin, line, "offset", reason, raw FROM quarantine`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY received DESC, origin, line"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("searching quarantine: %w", err)
	}
	defer rows.Close()
	res := &store.Result{Columns: quarantineColumns}
	if res.Rows, err = scanRows(rows, len(quarantineColumns)); err != nil {
		return nil, fmt.Errorf("reading quarantine: %w", err)
	}
	return res, nil
}
