package duckdb

import (
	"cmp"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/store/wordindex"
)

// The filters of the word index (index.go) are stored in segment tables,
// token_blooms_1, token_blooms_2, …, of about segmentBytes each. One
// table would not do: DuckDB rewrites the last, partial row group of a
// table at every checkpoint that follows an append to it, and a table of
// a few thousand large rows is one row group, which would be rewritten
// whole, ever larger, at every checkpoint (measured: a second per
// checkpoint at 125 MB of filters, 16 ms at 4 MB). Appends go to the
// newest segment; a new one is started when it is full. A variable, so
// that tests can make segments small.
var segmentBytes = 8 << 20

const segmentPrefix = "token_blooms_"

func segmentName(n int) string { return segmentPrefix + strconv.Itoa(n) }

// segmentsQuery lists the numbers of the segments, in order.
var segmentsQuery = `SELECT CAST(substr(table_name, ` + strconv.Itoa(len(segmentPrefix)+1) + `) AS INTEGER) AS n
	FROM duckdb_tables() WHERE schema_name = 'main' AND regexp_matches(table_name, '^` + segmentPrefix + `[0-9]+$')
	ORDER BY n`

// appendBlocks appends the rows of blocks to a segment.
func appendBlocks(a *duckdb.Appender, blocks []*wordindex.Block) (int, error) {
	size := 0
	for _, b := range blocks {
		bits := b.Bloom.Marshal()
		if err := a.AppendRow(b.Lo, b.Hi, uint32(b.Rows), uint16(wordindex.Algo), uint8(b.Bloom.K()), bits); err != nil {
			return size, fmt.Errorf("appending the word filter of events %d to %d: %w", b.Lo, b.Hi, err)
		}
		size += len(bits)
	}
	return size, nil
}

// segment returns the segment to append size more bytes to, starting a
// new one when the newest is full. Loaders do not call it: it creates
// tables, which must not happen inside their transactions (two would
// conflict on the catalog).
func (ix *wordIndex) segment(ctx context.Context, size int) (string, error) {
	ix.segMu.Lock()
	defer ix.segMu.Unlock()
	if ix.segNum == 0 {
		ns, err := ix.segments(ctx)
		if err != nil {
			return "", err
		}
		if len(ns) == 0 {
			return "", errors.New("no word index segment: the store was opened read-only")
		}
		ix.segNum = ns[len(ns)-1]
		// Loaders may have appended to it since: counting once, then
		// adding what this process appends, is close enough.
		if err := ix.db.QueryRowContext(ctx, "SELECT CAST(coalesce(sum(octet_length(bits)), 0) AS BIGINT) FROM "+segmentName(ix.segNum)).Scan(&ix.segSize); err != nil {
			return "", fmt.Errorf("sizing word index segment %d: %w", ix.segNum, err)
		}
	}
	if ix.segSize > 0 && ix.segSize+size > segmentBytes {
		next := segmentName(ix.segNum + 1)
		// The first segment, made by schema.sql, gives the columns.
		if _, err := ix.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+next+" AS FROM "+segmentName(1)+" LIMIT 0"); err != nil {
			return "", fmt.Errorf("starting word index segment %s: %w", next, err)
		}
		ix.segNum++
		ix.segSize = 0
	}
	ix.segSize += size
	return segmentName(ix.segNum), nil
}

// grew records that a loader appended size bytes of filters to table,
// and starts a new segment if that filled the newest: loaders cannot.
func (ix *wordIndex) grew(table string, size int) {
	ix.segMu.Lock()
	if ix.segNum != 0 && table == segmentName(ix.segNum) {
		ix.segSize += size
	}
	ix.segMu.Unlock()
	if _, err := ix.segment(context.Background(), 0); err != nil {
		ix.logger.Warn("starting a word index segment failed", "err", err)
	}
}

// segments lists the numbers of the segments, in order.
func (ix *wordIndex) segments(ctx context.Context) ([]int, error) {
	rows, err := ix.db.QueryContext(ctx, segmentsQuery)
	if err != nil {
		return nil, fmt.Errorf("listing word index segments: %w", err)
	}
	defer rows.Close()
	var ns []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("listing word index segments: %w", err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing word index segments: %w", err)
	}
	return ns, nil
}

// finish stores the filters of p once their events are committed, in a
// transaction of their own, and adds them to the index. It logs rather
// than returns an error: the events are stored, and a block without a
// filter is only searched in full.
func (ix *wordIndex) finish(ctx context.Context, p *pendingBlocks) {
	blocks := p.wait()
	if len(blocks) == 0 {
		return
	}
	// The events are stored: a cancelled append must not leave them
	// without their filters.
	ctx = context.WithoutCancel(ctx)
	size := 0
	for _, b := range blocks {
		size += b.Bloom.Size()
	}
	table, err := ix.segment(ctx, size)
	if err == nil {
		err = ix.append(ctx, table, func(a *duckdb.Appender) error {
			_, err := appendBlocks(a, blocks)
			return err
		})
	}
	if err != nil {
		ix.warnUnstored(blocks, err)
	}
	ix.added(blocks)
}

func (ix *wordIndex) warnUnstored(blocks []*wordindex.Block, err error) {
	ix.logger.Warn("storing the word index of appended events failed; after a restart, searches read them in full",
		"first", blocks[0].Lo, "last", blocks[len(blocks)-1].Hi, "err", err)
}

// added adds the filters of committed events to the index in memory.
// Until the index is loaded, the stored filters are all there is, and
// loading may already have read these.
func (ix *wordIndex) added(blocks []*wordindex.Block) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.loaded {
		return
	}
	for _, b := range blocks {
		i, found := slices.BinarySearchFunc(ix.blocks, b, byLo)
		if found && ix.blocks[i].Hi == b.Hi && ix.blocks[i].Rows == b.Rows {
			continue // loaded from the table after the commit
		}
		ix.blocks = slices.Insert(ix.blocks, i, b)
	}
}

func byLo(a, b *wordindex.Block) int { return cmp.Compare(a.Lo, b.Lo) }

// A wordTx stores the filters of the events of a loader's transaction
// in that transaction, so that they commit, or roll back, with the
// events, and hands them to the index once committed.
type wordTx struct {
	ix     *wordIndex
	app    *duckdb.Appender   // on the transaction's connection, opened on first use
	table  string             // the segment app appends to
	size   int                // bytes of filters appended
	blocks []*wordindex.Block // appended, not yet committed
}

// add appends the filters of p through conn, once they are built. A
// failure is logged, not returned: the events can still be committed,
// and are then searched in full.
func (t *wordTx) add(conn driver.Conn, p *pendingBlocks) {
	blocks := p.wait()
	if len(blocks) == 0 {
		return
	}
	err := func() error {
		if t.app == nil {
			table, err := newestSegment(conn)
			if err != nil {
				return err
			}
			a, err := duckdb.NewAppenderFromConn(conn, "", table)
			if err != nil {
				return fmt.Errorf("appending to %s: %w", table, err)
			}
			t.app, t.table = a, table
		}
		size, err := appendBlocks(t.app, blocks)
		t.size += size
		return err
	}()
	if err != nil {
		t.ix.warnUnstored(blocks, err)
		return
	}
	t.blocks = append(t.blocks, blocks...)
}

// newestSegment returns the newest segment the transaction on conn sees:
// one started after the transaction began is not there for it.
func newestSegment(conn driver.Conn) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", errors.New("listing word index segments: the connection cannot query")
	}
	rows, err := q.QueryContext(context.Background(), segmentsQuery, nil)
	if err != nil {
		return "", fmt.Errorf("listing word index segments: %w", err)
	}
	defer rows.Close()
	n := int64(0)
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("listing word index segments: %w", err)
		}
		switch v := dest[0].(type) {
		case int32:
			n = int64(v)
		case int64:
			n = v
		}
	}
	if n == 0 {
		return "", errors.New("no word index segment")
	}
	return segmentName(int(n)), nil
}

// flush hands the appended filters to the transaction; call it before
// COMMIT. A failure is logged, as in add.
func (t *wordTx) flush() {
	if t.app == nil {
		return
	}
	err := t.app.Close()
	t.app = nil
	if err != nil && len(t.blocks) > 0 {
		t.ix.warnUnstored(t.blocks, fmt.Errorf("flushing word filters: %w", err))
		t.blocks, t.size = nil, 0
	}
}

// committed adds the filters of the committed transaction to the index,
// and starts a new segment if this one filled the newest.
func (t *wordTx) committed() {
	if len(t.blocks) == 0 {
		return
	}
	t.ix.added(t.blocks)
	t.ix.grew(t.table, t.size)
	t.blocks, t.size = nil, 0
}

// rolledBack forgets the filters of a transaction rolled back.
func (t *wordTx) rolledBack() {
	if t.app != nil {
		t.app.Clear()
		t.app.Close()
		t.app = nil
	}
	t.blocks, t.size = nil, 0
}

// load reads the stored filters, once. It reports whether the index is
// loaded: after a failure, which it logs, searches read every row until
// a later search loads it.
func (ix *wordIndex) load(ctx context.Context) bool {
	ix.mu.RLock()
	loaded := ix.loaded
	ix.mu.RUnlock()
	if loaded {
		return true
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.loaded {
		return true
	}
	// The index is loaded for every search to come, not only for the one
	// that asked: its cancellation must not fail the load.
	blocks, err := ix.read(context.WithoutCancel(ctx))
	if err != nil {
		ix.logger.Warn("loading the word index failed; this search reads every event", "err", err)
		return false
	}
	ix.blocks, ix.loaded = blocks, true
	return true
}

func (ix *wordIndex) read(ctx context.Context) ([]*wordindex.Block, error) {
	// A store opened read-only may have no segment.
	segs, err := ix.segments(ctx)
	if err != nil {
		return nil, err
	}
	var blocks []*wordindex.Block
	indexed := int64(0)
	for _, n := range segs {
		rows, err := ix.db.QueryContext(ctx, "SELECT seq_lo, seq_hi, row_count, hashes, bits FROM "+segmentName(n)+" WHERE algo = ?", wordindex.Algo)
		if err != nil {
			return nil, fmt.Errorf("reading word index segment %d: %w", n, err)
		}
		for rows.Next() {
			b := &wordindex.Block{Trusted: true}
			var k uint8
			var data []byte
			if err := rows.Scan(&b.Lo, &b.Hi, &b.Rows, &k, &data); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading word index segment %d: %w", n, err)
			}
			if b.Bloom, err = wordindex.Unmarshal(int(k), data); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading the word filter of events %d to %d: %w", b.Lo, b.Hi, err)
			}
			blocks = append(blocks, b)
			indexed += int64(b.Rows)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reading word index segment %d: %w", n, err)
		}
	}
	slices.SortFunc(blocks, byLo)

	// Every filter saw every row of its range unless rows were added
	// another way (or the tables were changed by hand). Counting all rows
	// is cheap; only when the counts differ, count each range.
	var events int64
	if err := ix.db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&events); err != nil {
		return nil, fmt.Errorf("counting events: %w", err)
	}
	if events != indexed && len(blocks) > 0 {
		if err := ix.verify(ctx, segs, blocks); err != nil {
			return nil, err
		}
	}
	return blocks, nil
}

// verify marks untrusted the blocks whose range holds another number of
// rows than they indexed.
func (ix *wordIndex) verify(ctx context.Context, segs []int, blocks []*wordindex.Block) error {
	parts := make([]string, len(segs))
	for i, n := range segs {
		parts[i] = "SELECT seq_lo, seq_hi FROM " + segmentName(n) + " WHERE algo = " + strconv.Itoa(wordindex.Algo)
	}
	rows, err := ix.db.QueryContext(ctx, `SELECT b.seq_lo, b.seq_hi, count(e.seq)
		FROM (`+strings.Join(parts, " UNION ALL ")+`) b LEFT JOIN events e ON e.seq BETWEEN b.seq_lo AND b.seq_hi
		GROUP BY b.seq_lo, b.seq_hi`)
	if err != nil {
		return fmt.Errorf("checking the word index against the events: %w", err)
	}
	defer rows.Close()
	type span struct{ lo, hi uint64 }
	counts := make(map[span]int)
	for rows.Next() {
		var s span
		var n int
		if err := rows.Scan(&s.lo, &s.hi, &n); err != nil {
			return fmt.Errorf("checking the word index against the events: %w", err)
		}
		counts[s] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checking the word index against the events: %w", err)
	}
	untrusted := 0
	for _, b := range blocks {
		// Two filters of one range (a range appended twice) are counted
		// together: neither saw all its rows.
		if counts[span{b.Lo, b.Hi}] != b.Rows {
			b.Trusted = false
			untrusted++
		}
	}
	if untrusted > 0 {
		ix.logger.Info("some events were not indexed for word search; searches read them in full", "blocks", untrusted)
	}
	return nil
}

// forget drops the filters of the blocks that hold any of seqs, from the
// tables and from memory: after a redaction, the filter of an erased
// event's block still holds its words, which would tell whoever reads
// the store that the event contained them. The blocks are then searched
// in full, as any range without a filter is.
func (ix *wordIndex) forget(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	seqs = slices.Sorted(slices.Values(seqs))
	holds := func(lo, hi uint64) bool {
		i, _ := slices.BinarySearch(seqs, lo)
		return i < len(seqs) && seqs[i] <= hi
	}
	segs, err := ix.segments(ctx)
	if err != nil {
		return err
	}
	for _, n := range segs {
		// A segment has a few thousand filters: read their ranges and
		// delete those that hold an erased event, one by one.
		rows, err := ix.db.QueryContext(ctx, "SELECT seq_lo, seq_hi FROM "+segmentName(n))
		if err != nil {
			return fmt.Errorf("reading word filters: %w", err)
		}
		var drop [][2]uint64
		for rows.Next() {
			var r [2]uint64
			if err := rows.Scan(&r[0], &r[1]); err != nil {
				rows.Close()
				return err
			}
			if holds(r[0], r[1]) {
				drop = append(drop, r)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading word filters: %w", err)
		}
		for _, r := range drop {
			if _, err := ix.db.ExecContext(ctx, "DELETE FROM "+segmentName(n)+" WHERE seq_lo = ? AND seq_hi = ?", r[0], r[1]); err != nil {
				return fmt.Errorf("dropping the word filters of erased events: %w", err)
			}
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	kept := ix.blocks[:0]
	for _, b := range ix.blocks {
		if !holds(b.Lo, b.Hi) {
			kept = append(kept, b)
		}
	}
	clear(ix.blocks[len(kept):])
	ix.blocks = kept
	return nil
}
