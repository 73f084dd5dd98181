package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/wordindex"
)

// The word index, as the embedded store keeps it (store/wordindex): 18.16
// has no data-skipping index (no INDEX clause, no tokenbf_v1), so a
// search for words read the raw text of every event in its time range.
// Append stores a bloom filter of the words of each block of the events
// it sends a shard, in the shard's word_blooms_local, before the events
// themselves; a search for words asks the filters which seq ranges may
// hold them and reads only those (the compiler puts the ranges in
// PREWHERE, so the raw text of the other granules is not read).
//
// A filter is stored before its events, in the same Append, so that no
// event is stored without the filter of a block that saw it: an Append
// that fails is retried whole, and the events are the ledger's, the same
// at each try. Blocks of two tries cut differently may overlap; each
// says "maybe" for what it saw, and a range is searched when any block
// says so (wordindex.Candidates). Seqs no filter covers are always
// searched: events stored before the index existed, below the seqs of
// their partition's filters, since a partition's seqs only grow. So are
// the blocks of another format (wordindex.Algo), rather than ignored: an
// ignored block's range may lie within another's, which did not see its
// events.
//
// Each process loads the filters of every shard at its first search for
// words (or LoadWordIndex), and before each later one the filters stored
// since: the shard's own clock (added) says which, with a margin for
// inserts still under way when the last load read. The filters of events
// that retention deleted stay, answering "maybe" for nothing.

// bloomsColumns are word_blooms_local's: a filter of the events of a
// shard with seq in [seq_lo, seq_hi] (row_count of them), of format algo,
// setting hashes bits per word.
const bloomsColumns = `added DateTime DEFAULT now(),
	seq_lo UInt64,
	seq_hi UInt64,
	row_count UInt32,
	algo UInt16,
	hashes UInt8,
	bits String`

// bloomsSchema makes the filters' table: ordered by the block, so that
// the copies a retried Append leaves are collapsed by merges.
func (s *Store) bloomsSchema() []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + s.opts.Database + ".word_blooms_local (" + bloomsColumns + ")" +
			" ENGINE = ReplacingMergeTree() ORDER BY (seq_lo, seq_hi)",
	}
}

// storeBlooms stores the filters of the blocks of evs, events bound for
// shard, on it.
func (s *Store) storeBlooms(ctx context.Context, shard int, evs []*event.Event) error {
	rows := make([]wordindex.Row, len(evs))
	for i, e := range evs {
		rows[i] = wordindex.Row{Seq: e.Seq, Raw: e.Raw}
	}
	var body rowBinary
	for _, b := range wordindex.Blocks(rows) {
		body.u64(b.Lo)
		body.u64(b.Hi)
		body.u32(uint32(b.Rows))
		body.u16(wordindex.Algo)
		body.u8(uint8(b.Bloom.K()))
		body.bytes(b.Bloom.Marshal())
	}
	stmt := "INSERT INTO " + s.opts.Database + ".word_blooms_local (seq_lo, seq_hi, row_count, algo, hashes, bits) FORMAT RowBinary"
	if _, err := s.exec(ctx, shard, stmt, bytes.NewReader(body.b)); err != nil {
		return fmt.Errorf("storing the word index of the events: %w", err)
	}
	return nil
}

// wordIndex is what a process has loaded of the shards' filters.
type wordIndex struct {
	mu sync.Mutex
	// blocks are every shard's, by Lo, looked up as one: a shard's
	// filters span only its own events, and the seqs between two of them
	// are another shard's, which that shard's filters cover. Taken shard
	// by shard, each such gap would be a range no filter covers, read in
	// full, and with a few hundred filters a shard those gaps, merged
	// into wordindex.MaxRanges ranges, covered most of the events.
	blocks []*wordindex.Block
	shards []shardLoad
}

// shardLoad is what has been loaded of a shard's filters.
type shardLoad struct {
	loaded map[[2]uint64]bool // by (Lo, Hi)
	since  uint32             // the newest added loaded, the shard's seconds
	dated  bool               // since is set
}

// bloomsMargin is how far before the newest filter loaded, in seconds of
// the shard's clock, the next load looks for filters it has not: an
// insert takes its time from its start, and is read at its end.
const bloomsMargin = 60

// bloomsChunk bounds the bytes of the filters one statement reads (a
// filter of 4,096 events is about 64 KB), well within what a statement's
// answer may be (maxAnswer).
const bloomsChunk = 16 << 20

// bloomsChunkKeys bounds the filters one statement names, in its URL. A
// variable, for tests to read in several chunks.
var bloomsChunkKeys = 1000

// LoadWordIndex loads the shards' word filters, which the first search
// for words does otherwise (seconds, for tens of millions of events): a
// node that serves searches calls it in the background at start, so
// that no analyst's search waits for it.
func (s *Store) LoadWordIndex(ctx context.Context) error {
	s.words.mu.Lock()
	defer s.words.mu.Unlock()
	return s.loadWords(ctx)
}

// loadWords adds to the index the filters stored since it last loaded;
// s.words.mu must be held.
func (s *Store) loadWords(ctx context.Context) error {
	ix := s.words
	for i := range ix.shards {
		fresh, err := s.loadBlooms(ctx, i, &ix.shards[i])
		if err != nil {
			return fmt.Errorf("clickhouse: loading the word index of shard %d: %w", i+1, err)
		}
		ix.blocks = mergeBlocks(ix.blocks, fresh)
	}
	return nil
}

// restrict sets req.SeqRanges to the ranges that may hold the words and
// phrases req's query requires, when the index rules some out.
func (s *Store) restrict(ctx context.Context, req query.Request) (query.Request, error) {
	if req.Query == nil {
		return req, nil
	}
	items := wordindex.Items(req.Query.RequiredText())
	if items == nil {
		return req, nil
	}
	ix := s.words
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := s.loadWords(ctx); err != nil {
		return req, err
	}
	ranges := wordindex.Candidates(ix.blocks, items)
	if ranges == nil {
		return req, nil
	}
	if req.SeqRanges != nil {
		ranges = wordindex.Intersect(req.SeqRanges, ranges)
	}
	req.SeqRanges = ranges
	return req, nil
}

// mergeBlocks returns the blocks of loaded, which are in order, and
// fresh, in order.
func mergeBlocks(loaded, fresh []*wordindex.Block) []*wordindex.Block {
	if len(fresh) == 0 {
		return loaded
	}
	byLo := func(a, b *wordindex.Block) int { return cmp.Compare(a.Lo, b.Lo) }
	slices.SortFunc(fresh, byLo)
	merged := make([]*wordindex.Block, 0, len(loaded)+len(fresh))
	i, j := 0, 0
	for i < len(loaded) || j < len(fresh) {
		if j == len(fresh) || i < len(loaded) && loaded[i].Lo <= fresh[j].Lo {
			merged = append(merged, loaded[i])
			i++
		} else {
			merged = append(merged, fresh[j])
			j++
		}
	}
	return merged
}

// loadBlooms returns the filters of a shard sl has not loaded: all of
// them the first time, then those added since a little before the
// newest it has.
func (s *Store) loadBlooms(ctx context.Context, shard int, sl *shardLoad) ([]*wordindex.Block, error) {
	where := "1"
	if sl.dated {
		where = fmt.Sprintf("added >= toDateTime(%d)", max(int64(sl.since)-bloomsMargin, 0))
	}
	// The list streams: it grows with the filters, a line each.
	type listedBlock struct {
		lo, hi, size uint64
	}
	var missing []listedBlock
	listed := map[[2]uint64]bool{} // a block's copies are listed once each
	newest, dated := sl.since, sl.dated
	stmt := "SELECT toUInt32(added), seq_lo, seq_hi, length(bits) FROM " + s.opts.Database + ".word_blooms_local WHERE " + where + " FORMAT TabSeparated"
	err := s.streamOn(ctx, shard, "listing the word filters", stmt, func(line []byte) error {
		var added uint32
		var b listedBlock
		if n, err := fmt.Sscanf(string(line), "%d\t%d\t%d\t%d", &added, &b.lo, &b.hi, &b.size); n != 4 || err != nil {
			return fmt.Errorf("clickhouse: listing the word filters: %.200q", line)
		}
		if !dated || added > newest {
			newest, dated = added, true
		}
		if k := [2]uint64{b.lo, b.hi}; !sl.loaded[k] && !listed[k] {
			listed[k] = true
			missing = append(missing, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(missing, func(a, b listedBlock) int { return cmp.Or(cmp.Compare(a.lo, b.lo), cmp.Compare(a.hi, b.hi)) })
	var fresh []*wordindex.Block
	for len(missing) > 0 {
		// A chunk of the filters, at least one, within bloomsChunk bytes
		// and bloomsChunkKeys filters.
		n, size := 1, missing[0].size
		for n < len(missing) && n < bloomsChunkKeys && size+missing[n].size <= bloomsChunk {
			size += missing[n].size
			n++
		}
		keys := make([][2]uint64, n)
		for i, b := range missing[:n] {
			keys[i] = [2]uint64{b.lo, b.hi}
		}
		missing = missing[n:]
		bs, err := s.readBlooms(ctx, shard, keys)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, bs...)
	}
	if sl.loaded == nil {
		sl.loaded = map[[2]uint64]bool{}
	}
	for _, b := range fresh {
		sl.loaded[[2]uint64{b.Lo, b.Hi}] = true
	}
	sl.since, sl.dated = newest, dated
	return fresh, nil
}

// readBlooms reads the filters of keys (seq_lo, seq_hi) from a shard,
// each once. The whole answer is read before it is decoded
// (wait_end_of_query), so that an error the server meets midway is an
// error status, not text among the rows.
func (s *Store) readBlooms(ctx context.Context, shard int, keys [][2]uint64) ([]*wordindex.Block, error) {
	los := make([]string, len(keys))
	for i, k := range keys {
		los[i] = strconv.FormatUint(k[0], 10)
	}
	stmt := "SELECT seq_lo, seq_hi, row_count, algo, hashes, bits FROM " + s.opts.Database + ".word_blooms_local" +
		" WHERE seq_lo IN (" + strings.Join(slices.Compact(los), ", ") + ") FORMAT RowBinary"
	out, err := s.send(ctx, shard, url.Values{"query": {stmt}, "wait_end_of_query": {"1"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the filters: %w", err)
	}
	want := make(map[[2]uint64]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	var blocks []*wordindex.Block
	for len(out) > 0 {
		var (
			b    *wordindex.Block
			algo uint16
		)
		b, algo, out, err = bloomRow(out)
		if err != nil {
			return nil, fmt.Errorf("reading the filters: %w", err)
		}
		k := [2]uint64{b.Lo, b.Hi}
		if !want[k] {
			continue // another block starting there, or a copy
		}
		want[k] = false
		if algo != wordindex.Algo {
			b.Trusted, b.Bloom = false, nil
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// bloomRow reads the first row of readBlooms' answer and returns the
// rest. A filter of another format is returned without its bits.
func bloomRow(out []byte) (*wordindex.Block, uint16, []byte, error) {
	const headSize = 8 + 8 + 4 + 2 + 1
	if len(out) < headSize {
		return nil, 0, nil, fmt.Errorf("a row cut short")
	}
	b := &wordindex.Block{
		Lo:      binary.LittleEndian.Uint64(out[0:]),
		Hi:      binary.LittleEndian.Uint64(out[8:]),
		Rows:    int(binary.LittleEndian.Uint32(out[16:])),
		Trusted: true,
	}
	algo, k := binary.LittleEndian.Uint16(out[20:]), int(out[22])
	out = out[headSize:]
	n, size := binary.Uvarint(out)
	if size <= 0 || n > uint64(len(out)-size) {
		return nil, 0, nil, fmt.Errorf("the filter of %d to %d: cut short", b.Lo, b.Hi)
	}
	bits, out := out[size:size+int(n)], out[size+int(n):]
	if algo != wordindex.Algo {
		return b, algo, out, nil
	}
	var err error
	if b.Bloom, err = wordindex.Unmarshal(k, bits); err != nil {
		return nil, 0, nil, fmt.Errorf("the filter of %d to %d: %w", b.Lo, b.Hi, err)
	}
	return b, algo, out, nil
}
