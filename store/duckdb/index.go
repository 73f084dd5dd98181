package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// The word index makes searches for words and phrases fast without an
// engine full-text index (DuckDB's fts extension cannot be installed
// offline): the design of VictoriaLogs. Each block of appended events
// gets a bloom filter of the items of their raw text (words.go), kept in
// the token_blooms tables (indexstore.go) and in memory. A search for words first asks
// every filter whether its block may hold them, then restricts the SQL to
// the seq ranges of the blocks that may (query.Request.SeqRanges), so
// DuckDB skips the raw text of the rest: seq follows the physical order
// of rows, so its zonemaps prune.
//
// The index is never trusted to say "no" about rows it does not cover:
// seq ranges that no filter covers are always searched. That keeps it
// correct for stores written before it existed, for blooms of another
// format (indexAlgo), and when storing a filter failed after its events
// were stored. Filters are stored with their events, in the same
// transaction (loaders) or just after it (Append), so a filter covers no
// seq whose events it did not see, unless rows are added to the events
// table other than by Append or a loader; loading checks that the rows of
// each filter's range are as many as it indexed, and searches in full the
// ranges where they are not.
//
// Filters are loaded into memory by the first search for words, not at
// Open, so that an import does not pay for them. On CloudTrail records
// they take about 16 bytes per event; loading them takes about 0.4 s per
// million events in a fresh process, most of it DuckDB's first read of
// the BLOBs, and 30 to 60 ms once DuckDB has them cached.

// indexAlgo identifies the word split, the hashes and the bloom layout.
// Blooms stored with another value are ignored, which makes their blocks
// searched in full: change it whenever any of those changes.
const indexAlgo = 1

// blockRows is the most events one filter covers; a filter covers the
// events of one append, cut into blocks of equal size. Smaller blocks
// rule out more rows for a rare word; larger ones take less memory, as
// words common to many events are recorded once per block. On
// CloudTrail records, blocks of 4096 events take about 14 bytes of filter
// per event; of 20000, 9; the importer appends a file at a time, which
// makes blocks of 2500 events on average and 16 bytes per event.
const blockRows = 4096

// maxRanges bounds the seq ranges a search passes to SQL; beyond it the
// closest ranges are merged, which reads some rows for nothing but keeps
// the statement small.
const maxRanges = 100

// A block is the filter of the events with seq in [lo, hi].
type block struct {
	lo, hi uint64
	rows   int
	// trusted is false when the events table has rows in [lo, hi] that
	// the filter may not have seen: the block is then always searched.
	trusted bool
	bloom   *bloom
}

// wordIndex is the word index of a DB.
type wordIndex struct {
	db     *sql.DB
	append func(ctx context.Context, table string, fn func(*duckdb.Appender) error) error
	logger *slog.Logger

	// Tests and benchmarks: search without the index; append without
	// building it.
	searchOff, buildOff bool

	mu     sync.RWMutex
	loaded bool     // blocks holds every stored filter; until then, Append only stores them
	blocks []*block // by lo

	segMu   sync.Mutex
	segNum  int // the newest segment (indexstore.go); 0 until known
	segSize int // bytes of filters in it
}

func newWordIndex(db *sql.DB, append func(context.Context, string, func(*duckdb.Appender) error) error, logger *slog.Logger) *wordIndex {
	return &wordIndex{db: db, append: append, logger: logger}
}

// An indexRow is what the index reads of an event.
type indexRow struct {
	seq uint64
	raw []byte
}

// pendingBlocks are the filters of one Append, built in the background
// while its events are stored.
type pendingBlocks struct {
	blocks []*block
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
	rows := make([]indexRow, len(evs))
	for i, e := range evs {
		rows[i] = indexRow{e.Seq, e.Raw}
	}
	// Blocks are cut in seq order, so that the ranges of the blocks of
	// one Append do not overlap even when seq does not follow time.
	if !slices.IsSortedFunc(rows, byRowSeq) {
		slices.SortFunc(rows, byRowSeq)
	}
	// Equal blocks rather than full ones and a small remainder.
	n := (len(rows) + blockRows - 1) / blockRows
	p.blocks = make([]*block, n)
	chunks := make(chan int, n)
	for i := range n {
		chunks <- i
	}
	close(chunks)
	for range min(n, runtime.GOMAXPROCS(0)) {
		p.wg.Go(func() {
			b := builders.Get().(*blockBuilder)
			defer builders.Put(b)
			for i := range chunks {
				if p.stop.Load() {
					return
				}
				part := rows[i*len(rows)/n : (i+1)*len(rows)/n]
				p.blocks[i] = &block{
					lo: part[0].seq, hi: part[len(part)-1].seq, rows: len(part),
					trusted: true, bloom: b.build(part),
				}
			}
		})
	}
	return p
}

func byRowSeq(a, b indexRow) int { return cmp.Compare(a.seq, b.seq) }

// cancel abandons p, when its events could not be stored.
func (p *pendingBlocks) cancel() {
	p.stop.Store(true)
	p.wg.Wait()
}

// wait waits until p's filters are built.
func (p *pendingBlocks) wait() []*block {
	p.wg.Wait()
	return p.blocks
}

// restrict sets req.SeqRanges to the ranges that may hold the words and
// phrases req's query requires, when the index rules some out.
func (ix *wordIndex) restrict(ctx context.Context, req query.Request) query.Request {
	if ix.searchOff || req.Query == nil {
		return req
	}
	needles := req.Query.RequiredText()
	if len(needles) == 0 {
		return req
	}
	var items []uint64
	for _, s := range needles {
		items = appendItems(items, []byte(s))
	}
	if len(items) == 0 {
		return req // only separators: nothing to look up
	}
	slices.Sort(items)
	items = slices.Compact(items)

	if !ix.load(ctx) {
		return req
	}
	ix.mu.RLock()
	ranges := candidates(ix.blocks, items)
	ix.mu.RUnlock()
	if ranges == nil {
		return req
	}
	if req.SeqRanges != nil {
		ranges = intersect(req.SeqRanges, ranges)
	}
	req.SeqRanges = ranges
	return req
}

// candidates returns the seq ranges that may hold rows with every one of
// items: the blocks whose filter has them all or is not trusted, and
// every seq no block covers. It returns nil when that is every seq.
func candidates(blocks []*block, items []uint64) [][2]uint64 {
	var out [][2]uint64
	add := func(lo, hi uint64) {
		if n := len(out); n > 0 && lo <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], hi)
			return
		}
		out = append(out, [2]uint64{lo, hi})
	}
	next := uint64(0) // the least seq above every block seen
	for _, b := range blocks {
		if b.lo > next {
			add(next, b.lo-1)
		}
		if !b.trusted || b.bloom.hasAll(items) {
			add(b.lo, b.hi)
		}
		if b.hi == math.MaxUint64 {
			return coarsen(out, maxRanges)
		}
		next = max(next, b.hi+1)
	}
	add(next, math.MaxUint64)
	if len(out) == 1 && out[0] == [2]uint64{0, math.MaxUint64} {
		return nil
	}
	return coarsen(out, maxRanges)
}

// coarsen merges the ranges of rs (sorted, disjoint) across the smallest
// gaps until at most n remain.
func coarsen(rs [][2]uint64, n int) [][2]uint64 {
	if len(rs) <= n {
		return rs
	}
	gaps := make([]uint64, len(rs)-1)
	for i := range gaps {
		gaps[i] = rs[i+1][0] - rs[i][1]
	}
	sorted := slices.Clone(gaps)
	slices.Sort(sorted)
	// Merging every gap below the cut, and as many at the cut as needed,
	// leaves n ranges.
	merges := len(rs) - n
	cut := sorted[merges-1]
	atCut := merges - slices.Index(sorted, cut)
	out := make([][2]uint64, 1, n)
	out[0] = rs[0]
	for i, g := range gaps {
		merge := g < cut
		if g == cut && atCut > 0 {
			merge = true
			atCut--
		}
		if merge {
			out[len(out)-1][1] = rs[i+1][1]
		} else {
			out = append(out, rs[i+1])
		}
	}
	return out
}

// intersect returns the seqs in both a and b, as ranges; b is sorted and
// disjoint.
func intersect(a, b [][2]uint64) [][2]uint64 {
	out := [][2]uint64{}
	for _, r := range a {
		for _, s := range b {
			lo, hi := max(r[0], s[0]), min(r[1], s[1])
			if lo <= hi {
				out = append(out, [2]uint64{lo, hi})
			}
		}
	}
	return out
}

// A blockBuilder builds filters, reusing its buffers from block to block.
type blockBuilder struct {
	items  []uint64 // the items of one event
	hashes []uint64 // the items of the block, mostly without repeats
	bitmap []uint64 // for countDistinct
	// recent is a direct-mapped cache of items seen in the block: words
	// such as JSON keys repeat in every event, and skipping them here
	// spares the distinct count and the filter most of their work.
	recent [1 << 12]uint64
}

var builders = sync.Pool{New: func() any { return new(blockBuilder) }}

// build returns the filter of rows.
func (bb *blockBuilder) build(rows []indexRow) *bloom {
	clear(bb.recent[:])
	bb.hashes = bb.hashes[:0]
	for _, r := range rows {
		bb.items = appendItems(bb.items[:0], r.raw)
		for _, h := range bb.items {
			if slot := &bb.recent[h%uint64(len(bb.recent))]; *slot != h {
				*slot = h
				bb.hashes = append(bb.hashes, h)
			}
		}
	}
	var n int
	n, bb.bitmap = countDistinct(bb.hashes, bb.bitmap)
	b := newBloom(n)
	for _, h := range bb.hashes {
		b.add(h)
	}
	return b
}
