package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/wordindex"
)

// The word index (package wordindex) makes searches for words and
// phrases fast without an engine full-text index: DuckDB's fts extension
// cannot be installed offline. The filters of the blocks of appended
// events are kept in the token_blooms tables (indexstore.go) and in
// memory. A search for words restricts the SQL to the seq ranges of the
// blocks that may hold them (query.Request.SeqRanges), so DuckDB skips
// the raw text of the rest: seq follows the physical order of rows, so
// its zonemaps prune.
//
// Filters are stored with their events, in the same transaction
// (loaders) or just after it (Append), so a filter covers no seq whose
// events it did not see, unless rows are added to the events table other
// than by Append or a loader; loading checks that the rows of each
// filter's range are as many as it indexed and, where they are not, marks
// the filter untrusted: its range is then searched in full, as are the
// seq ranges no filter covers (stores written before the index existed,
// filters that failed to store).
//
// Filters are loaded into memory by the first search for words, not at
// Open, so that an import does not pay for them. On CloudTrail records
// they take about 16 bytes per event; loading them takes about 0.4 s per
// million events in a fresh process, most of it DuckDB's first read of
// the BLOBs, and 30 to 60 ms once DuckDB has them cached.

// wordIndex is the word index of a DB.
type wordIndex struct {
	db     *sql.DB
	append func(ctx context.Context, table string, fn func(*duckdb.Appender) error) error
	logger *slog.Logger

	// Tests and benchmarks: search without the index; append without
	// building it.
	searchOff, buildOff bool

	mu     sync.RWMutex
	loaded bool               // blocks holds every stored filter; until then, Append only stores them
	blocks []*wordindex.Block // by Lo

	segMu   sync.Mutex
	segNum  int // the newest segment (indexstore.go); 0 until known
	segSize int // bytes of filters in it
}

func newWordIndex(db *sql.DB, append func(context.Context, string, func(*duckdb.Appender) error) error, logger *slog.Logger) *wordIndex {
	return &wordIndex{db: db, append: append, logger: logger}
}

// pendingBlocks are the filters of one Append, built in the background
// while its events are stored.
type pendingBlocks struct {
	blocks []*wordindex.Block
	wg     sync.WaitGroup
	stop   atomic.Bool
}

// start begins building the filters of evs, whose seq must be set. The
// events must not change until finish or cancel returns.
func (ix *wordIndex) start(evs []*event.Event) *pendingBlocks {
	p := &pendingBlocks{}
	if len(evs) == 0 || ix.buildOff {
		return p
	}
	rows := make([]wordindex.Row, len(evs))
	for i, e := range evs {
		rows[i] = wordindex.Row{Seq: e.Seq, Raw: e.Raw}
	}
	// The blocks are cut as wordindex.Blocks cuts them, but built in
	// parallel, so that an Append waits for its filters as little as
	// possible, and given up on when cancel is called.
	if !slices.IsSortedFunc(rows, byRowSeq) {
		slices.SortFunc(rows, byRowSeq)
	}
	n := (len(rows) + wordindex.BlockRows - 1) / wordindex.BlockRows
	p.blocks = make([]*wordindex.Block, n)
	chunks := make(chan int, n)
	for i := range n {
		chunks <- i
	}
	close(chunks)
	for range min(n, runtime.GOMAXPROCS(0)) {
		p.wg.Go(func() {
			for i := range chunks {
				if p.stop.Load() {
					return
				}
				part := rows[i*len(rows)/n : (i+1)*len(rows)/n]
				p.blocks[i] = &wordindex.Block{
					Lo: part[0].Seq, Hi: part[len(part)-1].Seq, Rows: len(part),
					Trusted: true, Bloom: wordindex.Build(part),
				}
			}
		})
	}
	return p
}

func byRowSeq(a, b wordindex.Row) int { return cmp.Compare(a.Seq, b.Seq) }

// cancel abandons p, when its events could not be stored.
func (p *pendingBlocks) cancel() {
	p.stop.Store(true)
	p.wg.Wait()
}

// wait waits until p's filters are built.
func (p *pendingBlocks) wait() []*wordindex.Block {
	p.wg.Wait()
	return p.blocks
}

// restrict sets req.SeqRanges to the ranges that may hold the words and
// phrases req's query requires, when the index rules some out.
func (ix *wordIndex) restrict(ctx context.Context, req query.Request) query.Request {
	if ix.searchOff || req.Query == nil {
		return req
	}
	items := wordindex.Items(req.Query.RequiredText())
	if items == nil {
		return req // no words, or only separators: nothing to look up
	}

	if !ix.load(ctx) {
		return req
	}
	ix.mu.RLock()
	ranges := wordindex.Candidates(ix.blocks, items)
	ix.mu.RUnlock()
	if ranges == nil {
		return req
	}
	if req.SeqRanges != nil {
		ranges = wordindex.Intersect(req.SeqRanges, ranges)
	}
	req.SeqRanges = ranges
	return req
}
