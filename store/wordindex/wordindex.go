// Package wordindex is the word index both stores keep: bloom filters of
// the words of events' raw text, one per block of seqs, which narrow a
// search for words and phrases to the seq ranges that may hold them. It
// makes such searches fast without an engine full-text index: the design
// of VictoriaLogs.
//
// Each block of appended events gets a bloom filter (Bloom) of the items
// of their raw text: their words, and pairs of adjacent short words
// (AppendItems). A search for words looks up the items of its needles
// (Items) in every filter, and Candidates returns the seq ranges of the
// blocks whose filter may hold them all; the store restricts its query to
// those ranges (query.Request.SeqRanges), so that its engine skips the
// raw text of the rest.
//
// The index is never trusted to say "no" about rows it does not cover:
// Candidates always keeps the seqs no block covers, and the blocks whose
// range holds rows their filter may not have seen (Block.Trusted). That
// keeps searches correct for rows stored before the index existed, for
// filters of another format (Algo), and when storing a filter failed
// after its events were stored.
//
// The package keeps no filters and knows no engine. Each store keeps, for
// each block, its range and row count, the filter's Bloom.Marshal and
// Bloom.K, and Algo; it reads the filter back with Unmarshal, and decides
// which of its blocks to trust.
package wordindex

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// Algo identifies the word split, the hashes and the bloom layout.
// Blooms stored with another value must not rule anything out: a store
// ignores them (their seqs are then covered by no block) or keeps their
// blocks untrusted. Change it whenever any of those changes.
const Algo = 1

// BlockRows is the most events one filter covers; a filter covers the
// events of one append, cut into blocks of equal size. Smaller blocks
// rule out more rows for a rare word; larger ones take less memory, as
// words common to many events are recorded once per block. On
// CloudTrail records, blocks of 4096 events take about 14 bytes of filter
// per event; of 20000, 9; the importer appends a file at a time, which
// makes blocks of 2500 events on average and 16 bytes per event.
const BlockRows = 4096

// MaxRanges bounds the seq ranges Candidates returns, which a search
// passes to its query; beyond it the closest ranges are merged, which
// reads some rows for nothing but keeps the statement small.
const MaxRanges = 100

// A Block is the filter of the events with seq in [Lo, Hi].
type Block struct {
	Lo, Hi uint64
	Rows   int // events the filter was built from
	// Trusted is false when the store has rows in [Lo, Hi] that the
	// filter may not have seen: the block is then always searched.
	Trusted bool
	Bloom   *Bloom
}

// Candidates returns the seq ranges that may hold rows with every one of
// items: the blocks whose filter has them all or is not trusted, and
// every seq no block covers. blocks must be sorted by Lo; they may
// overlap. It returns nil when the ranges are every seq, at most
// MaxRanges ranges otherwise.
func Candidates(blocks []*Block, items []uint64) [][2]uint64 {
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
		if b.Lo > next {
			add(next, b.Lo-1)
		}
		if !b.Trusted || b.Bloom.HasAll(items) {
			add(b.Lo, b.Hi)
		}
		if b.Hi == math.MaxUint64 {
			return coarsen(out, MaxRanges)
		}
		next = max(next, b.Hi+1)
	}
	add(next, math.MaxUint64)
	if len(out) == 1 && out[0] == [2]uint64{0, math.MaxUint64} {
		return nil
	}
	return coarsen(out, MaxRanges)
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

// Intersect returns the seqs in both a and b, as ranges; b is sorted and
// disjoint. The result is empty, not nil, when they have none in common:
// a nil query.Request.SeqRanges would mean every seq.
func Intersect(a, b [][2]uint64) [][2]uint64 {
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

// A Row is what the index reads of an event.
type Row struct {
	Seq uint64
	Raw []byte
}

// Blocks returns the filters of rows, all trusted, or nil when there are
// none. It sorts rows by seq if they are not: blocks are cut in seq
// order, so that the ranges of the blocks of one append do not overlap
// even when seq does not follow time. The blocks are of equal size
// rather than full ones and a small remainder, BlockRows at most, and
// are built one after another; a store that builds them in parallel cuts
// them the same way and calls Build on each.
func Blocks(rows []Row) []*Block {
	if len(rows) == 0 {
		return nil
	}
	if !slices.IsSortedFunc(rows, bySeq) {
		slices.SortFunc(rows, bySeq)
	}
	n := (len(rows) + BlockRows - 1) / BlockRows
	blocks := make([]*Block, n)
	for i := range blocks {
		part := rows[i*len(rows)/n : (i+1)*len(rows)/n]
		blocks[i] = &Block{
			Lo: part[0].Seq, Hi: part[len(part)-1].Seq, Rows: len(part),
			Trusted: true, Bloom: Build(part),
		}
	}
	return blocks
}

func bySeq(a, b Row) int { return cmp.Compare(a.Seq, b.Seq) }

// Build returns the filter of rows. It may be called concurrently.
func Build(rows []Row) *Bloom {
	bb := builders.Get().(*blockBuilder)
	defer builders.Put(bb)
	return bb.build(rows)
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

// builders keeps blockBuilders between calls of Build: a builder's
// buffers grow to the size of a block, and its cache is 32 KB, which
// allocating anew for every block would cost.
var builders = sync.Pool{New: func() any { return new(blockBuilder) }}

// build returns the filter of rows.
func (bb *blockBuilder) build(rows []Row) *Bloom {
	clear(bb.recent[:])
	bb.hashes = bb.hashes[:0]
	for _, r := range rows {
		bb.items = AppendItems(bb.items[:0], r.Raw)
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
