package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// A loader appends the events of an import in few transactions.
//
// DB.Append commits every call: right for live ingest, which must not
// acknowledge what is not stored, but slow for an import of thousands of
// files. Each small commit goes through the write-ahead log, and the
// checkpoints that follow rewrite the table's last, partial row group
// again and again, so that an import slows down as the table grows. A
// loader keeps one transaction open across appends, and DuckDB writes
// the rows of a large transaction straight to the database file as whole
// row groups, once.
type loader struct {
	db        *DB
	conn      driver.Conn
	app       *duckdb.Appender
	inTx      bool
	failed    error // the first failure; the transaction is rolled back
	pending   int   // events appended since the last commit
	unflushed int   // events appended since the last flush
	sorted    []*event.Event
	words     wordTx // the word index of the transaction's events (index.go)
}

// Tuning of loaders, variables so that tests can make them small.
var (
	// commitEvery bounds the events a loader holds uncommitted: what a
	// crash makes the store catch up from the ledger when it reopens.
	// Eight of DuckDB's row groups.
	commitEvery = 8 * 122_880
	// flushEvery is how many rows the appender gathers before it hands
	// them to the transaction. Each flush has a fixed cost of tens of
	// milliseconds, so flushes must be large, but the appender's own
	// threshold, 204,800 rows, holds too much in memory.
	flushEvery = 20_000
)

var _ store.BulkLoader = (*DB)(nil)

// NewLoader returns a Loader for an import. Events appended through it
// become visible, and durable, when it commits: every million events and
// at Close.
func (s *DB) NewLoader(ctx context.Context) (store.Loader, error) {
	conn, err := s.connector.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to store: %w", err)
	}
	l := &loader{db: s, conn: conn, words: wordTx{ix: s.words}}
	if err := l.oneThread(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	// DuckDB holds five row groups of a large transaction before it
	// writes them, by default: a gigabyte of raw documents for each
	// loader, and the writing bunched up. One at a time takes less
	// memory and spreads the writing over the import, which then goes
	// as fast or faster.
	if err := l.exec(ctx, "SET write_buffer_row_group_count = 1"); err != nil {
		l.close()
		return nil, fmt.Errorf("configuring store for a load: %w", err)
	}
	return l, nil
}

// oneThread makes DuckDB run on one thread while loaders are open. An
// append runs as a query, and with more threads the appending goroutine
// busy-waits on DuckDB's task queue while another thread does the work:
// on two cores that cost a tenth of an import's CPU. Loaders bring their
// own parallelism, one per import worker. Searches run meanwhile get one
// thread too; the setting is restored when the last loader closes.
func (l *loader) oneThread(ctx context.Context) error {
	s := l.db
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaders == 0 {
		rows, err := l.conn.(driver.QueryerContext).QueryContext(ctx, "SELECT current_setting('threads')", nil)
		if err != nil {
			return fmt.Errorf("reading the store's threads: %w", err)
		}
		v := make([]driver.Value, 1)
		err = rows.Next(v)
		rows.Close()
		n, ok := v[0].(int64)
		if err != nil || !ok {
			return fmt.Errorf("reading the store's threads: %v (%v)", err, v[0])
		}
		if err := l.exec(ctx, "SET threads = 1"); err != nil {
			return fmt.Errorf("configuring store for a load: %w", err)
		}
		s.loadThreads = n
	}
	s.loaders++
	return nil
}

// close releases the loader's connection, and the last loader gives
// DuckDB back its threads.
func (l *loader) close() error {
	s := l.db
	s.mu.Lock()
	s.loaders--
	var err error
	if s.loaders == 0 {
		if err = l.exec(context.Background(), fmt.Sprintf("SET threads = %d", s.loadThreads)); err != nil {
			err = fmt.Errorf("restoring the store's threads: %w", err)
		}
	}
	s.mu.Unlock()
	if cerr := l.conn.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing store connection: %w", cerr))
	}
	return err
}

func (l *loader) exec(ctx context.Context, query string) error {
	_, err := l.conn.(driver.ExecerContext).ExecContext(ctx, query, nil)
	return err
}

// begin opens the transaction and its appender.
func (l *loader) begin(ctx context.Context) error {
	if err := l.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("starting a load: %w", err)
	}
	l.inTx = true
	a, err := duckdb.NewAppenderFromConn(l.conn, "", "events")
	if err != nil {
		return fmt.Errorf("appending to events: %w", err)
	}
	l.app = a
	return nil
}

// Append appends events, which must be numbered (DB.Append says why), in
// seq order.
func (l *loader) Append(ctx context.Context, evs []*event.Event) error {
	if l.failed != nil {
		return l.failed
	}
	if err := l.append(ctx, evs); err != nil {
		l.failed = err
		l.rollback()
		return err
	}
	return nil
}

func (l *loader) append(ctx context.Context, evs []*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if !l.inTx {
		if err := l.begin(ctx); err != nil {
			return err
		}
	}
	// Loaders append in parallel, each on its own connection, and each
	// transaction fills row groups of its own.
	s := l.db
	l.sorted = append(l.sorted[:0], bySeq(evs)...)
	words := s.words.start(l.sorted) // built while DuckDB appends
	for _, e := range l.sorted {
		if err := l.app.AppendRow(eventRow(e)...); err != nil {
			words.cancel()
			return fmt.Errorf("appending event %d: %w", e.Seq, err)
		}
	}
	l.words.add(l.conn, words)
	clear(l.sorted) // let the events go once stored
	s.metrics.appended.Add(float64(len(evs)))
	l.pending += len(evs)
	l.unflushed += len(evs)
	if l.pending >= commitEvery {
		return l.commit(ctx)
	}
	if l.unflushed >= flushEvery {
		l.unflushed = 0
		if err := l.app.FlushWithCancel(ctx); err != nil {
			return fmt.Errorf("appending events: %w", err)
		}
	}
	return nil
}

// commit closes the appender and commits what it appended.
func (l *loader) commit(ctx context.Context) error {
	if !l.inTx {
		return nil
	}
	l.pending, l.unflushed = 0, 0
	err := l.app.CloseWithCancel(ctx)
	l.app = nil
	if err != nil {
		return fmt.Errorf("flushing events: %w", err)
	}
	l.words.flush()
	if err := l.exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("committing events: %w", err)
	}
	l.words.committed()
	l.inTx = false
	return nil
}

// rollback discards what was not committed.
func (l *loader) rollback() {
	l.words.rolledBack()
	if l.app != nil {
		l.app.Clear()
		l.app.Close()
		l.app = nil
	}
	if l.inTx {
		l.exec(context.Background(), "ROLLBACK")
		l.inTx = false
	}
}

// Close commits what was appended, unless an Append failed, and releases
// the loader.
func (l *loader) Close(ctx context.Context) error {
	// The commit is not cut short by ctx: DuckDB's appender, interrupted
	// while it flushes, may commit what it held anyway, and a caller
	// told the load failed would store those events again.
	ctx = context.WithoutCancel(ctx)
	err := l.failed
	if err == nil {
		if err = l.commit(ctx); err != nil {
			l.rollback()
		}
	}
	if cerr := l.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}
