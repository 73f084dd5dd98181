package ledger

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Verifier checks checkpoint signatures. Without one, checkpoints
	// are compared with the tree but their signatures are not checked
	// (Report.SignaturesChecked says so).
	Verifier note.Verifier
	// Trusted are checkpoints kept outside the ledger directory, such
	// as a witness's copies (SplitCheckpoints reads a FileWitness file).
	// The ledger must still contain each of their trees.
	Trusted [][]byte
	// Progress, if set, is called as segments are read, with the bytes
	// read so far and the total; calls are never concurrent.
	Progress func(done, total int64)
	// Record, if set, is called with every intact record, segment after
	// segment and in each in file order (index order unless frames were
	// moved), so a caller can check what it derived from the ledger in
	// the same pass. Content is valid only during the call; an error
	// stops Verify. Setting Record makes Verify read one segment at a
	// time.
	Record func(Record) error
}

// A ProblemKind names what Verify found wrong.
type ProblemKind string

const (
	Modified       ProblemKind = "modified"        // a record's bytes changed
	Deleted        ProblemKind = "deleted"         // records gone from inside or the end of a segment
	Inserted       ProblemKind = "inserted"        // a frame or bytes that belong to no record
	Reordered      ProblemKind = "reordered"       // intact records out of order
	SegmentMissing ProblemKind = "segment-missing" // records gone between segments, with no retention record
	RolledBack     ProblemKind = "rolled-back"     // the ledger is behind, or not an extension of, a trusted checkpoint
	BadCheckpoint  ProblemKind = "bad-checkpoint"  // a checkpoint that is unreadable, badly signed or contradicts another
	Torn           ProblemKind = "torn"            // an incomplete frame at the end, as a crash leaves (Open cuts it)
	HashesMismatch ProblemKind = "hashes-mismatch" // the hashes file disagrees with intact, signed segments
)

// A Problem is one finding of Verify. First and Last are the inclusive
// range of record indexes concerned, or -1 when none applies.
type Problem struct {
	Kind        ProblemKind
	First, Last int64
	Detail      string
}

func (p Problem) String() string {
	if p.First < 0 {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	if p.First == p.Last {
		return fmt.Sprintf("%s at %d: %s", p.Kind, p.First, p.Detail)
	}
	return fmt.Sprintf("%s at %d..%d: %s", p.Kind, p.First, p.Last, p.Detail)
}

// A RedactedRange is a run of records redacted with one reason.
type RedactedRange struct {
	First, Last int64
	Reason      string
	Time        time.Time
}

// A RemovedRange is a run of records whose segments were deleted by
// retention, as the meta record at index Record says.
type RemovedRange struct {
	First, Last int64
	Reason      string
	Time        time.Time
	Record      int64
	// Signed says whether a verified checkpoint covers the meta record.
	// A removal record no checkpoint covers could have been written by
	// whoever deleted the segments.
	Signed bool
}

// A CheckpointResult is the outcome of checking one checkpoint.
type CheckpointResult struct {
	Source string // file name under checkpoints/, or "trusted #i"
	Checkpoint
	Trusted bool
	OK      bool
	Detail  string
}

// A Report is what Verify found.
type Report struct {
	Size     int64     // records in the tree the segments give
	Root     tlog.Hash // its root hash, recomputed from the records
	Records  int64     // intact records read
	Bytes    int64     // segment bytes read
	Segments int

	SignaturesChecked bool
	Checkpoints       []CheckpointResult

	Problems []Problem
	Redacted []RedactedRange
	Removed  []RemovedRange
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify checks the ledger in dir, which must not be written to
// meanwhile, against itself and its signed checkpoints. It trusts
// nothing derived: every frame is read and checked (magic, CRC, content
// hash, index continuity within and across segments), every leaf hash
// and the tree are recomputed from the segments, and the recomputed
// tree is compared with every checkpoint (signatures checked with
// opts.Verifier) and with the trusted ones, and each stored hash with
// the hashes file, which names the records a consistent rewrite of
// frames changed.
//
// Segments are checked in parallel (one per core) and merged in order;
// BenchmarkVerify: about 550 MB/s on a 2-core VM for records of ~550
// bytes (SHA-256 bound; larger records go faster), so 15 GB takes well
// under a minute per GB/s of disk.
//
// Tampering is reported in the Report; the error is for what stopped
// the check (an unreadable directory, ctx, opts.Record).
func Verify(ctx context.Context, dir string, opts VerifyOptions) (*Report, error) {
	v := &verifier{
		dir:   dir,
		opts:  opts,
		rep:   &Report{SignaturesChecked: opts.Verifier != nil},
		roots: map[int64]tlog.Hash{},
	}
	if err := v.run(ctx); err != nil {
		return nil, err
	}
	return v.rep, nil
}

type verifier struct {
	dir  string
	opts VerifyOptions
	rep  *Report

	cps   []*CheckpointResult // correctly signed (or unsigned-checked) checkpoints
	roots map[int64]tlog.Hash // wanted tree sizes → recomputed roots

	hf      *os.File
	hfCount int64 // hashes in the hashes file
	hseq    *bufio.Reader
	hpos    int64

	tree     frontier
	next     int64 // index the next segment should start at
	brokenAt int64 // the tree could not be computed from here on; -1 if it could
	leafDiff []int64
	nodeDiff int64 // first record whose interior stored hash differs; -1 if none

	gaps  []Range
	metas []metaAt
}

type metaAt struct {
	index int64
	meta  metaRecord
}

func (v *verifier) problem(kind ProblemKind, first, last int64, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, Problem{Kind: kind, First: first, Last: last, Detail: fmt.Sprintf(format, args...)})
}

func (v *verifier) run(ctx context.Context) error {
	v.brokenAt, v.nodeDiff = -1, -1
	if _, err := os.Stat(v.dir); err != nil {
		return fmt.Errorf("ledger: verify: %w", err)
	}
	if err := v.loadCheckpoints(); err != nil {
		return err
	}
	if err := v.openHashes(); err != nil {
		return err
	}
	if v.hf != nil {
		defer v.hf.Close()
	}
	firsts, err := listSegments(v.dir)
	if err != nil {
		return fmt.Errorf("ledger: verify: %w", err)
	}
	v.rep.Segments = len(firsts)
	v.roots[0] = v.tree.root()
	if err := v.segments(ctx, firsts); err != nil {
		return err
	}
	v.finish()
	return nil
}

func (v *verifier) loadCheckpoints() error {
	type source struct {
		name    string
		data    []byte
		trusted bool
	}
	var srcs []source
	cdir := filepath.Join(v.dir, checkpointDir)
	ents, err := os.ReadDir(cdir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledger: verify: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".note") && e.Name() != latestName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cdir, e.Name()))
		if err != nil {
			return fmt.Errorf("ledger: verify: %w", err)
		}
		srcs = append(srcs, source{name: e.Name(), data: b})
	}
	// latest is a copy of one of the others; check it only if it is not.
	for _, s := range srcs {
		if s.name != latestName {
			seen[string(s.data)] = true
		}
	}
	srcs = slices.DeleteFunc(srcs, func(s source) bool { return s.name == latestName && seen[string(s.data)] })
	for i, b := range v.opts.Trusted {
		srcs = append(srcs, source{name: fmt.Sprintf("trusted #%d", i), data: b, trusted: true})
	}
	name := ""
	for _, s := range srcs {
		var (
			c   Checkpoint
			err error
		)
		if v.opts.Verifier != nil {
			c, err = ParseCheckpoint(s.data, v.opts.Verifier)
		} else {
			c, err = parseUnverified(s.data)
		}
		res := &CheckpointResult{Source: s.name, Checkpoint: c, Trusted: s.trusted}
		if err == nil && name != "" && c.Name != name {
			err = fmt.Errorf("it is for ledger %q, the others for %q", c.Name, name)
		}
		if err != nil {
			res.Detail = err.Error()
			v.rep.Checkpoints = append(v.rep.Checkpoints, *res)
			first, last := int64(-1), int64(-1)
			if u, uerr := parseUnverified(s.data); uerr == nil && u.Size > 0 {
				first, last = 0, u.Size-1
			}
			v.problem(BadCheckpoint, first, last, "checkpoint %s: %v", s.name, err)
			continue
		}
		name = c.Name
		v.cps = append(v.cps, res)
		v.roots[c.Size] = tlog.Hash{}
	}
	slices.SortStableFunc(v.cps, func(a, b *CheckpointResult) int {
		return cmp.Or(cmp.Compare(a.Size, b.Size), a.Time.Compare(b.Time))
	})
	return nil
}

func (v *verifier) openHashes() error {
	f, err := os.Open(filepath.Join(v.dir, hashesName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: verify: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("ledger: verify: %w", err)
	}
	v.hf, v.hfCount = f, st.Size()/tlog.HashSize
	v.hseq = bufio.NewReaderSize(f, 1<<20)
	return nil
}

// storedHash returns stored hash i from the hashes file, reading
// sequentially when it can.
func (v *verifier) storedHash(i int64) (tlog.Hash, bool) {
	var h tlog.Hash
	if v.hf == nil || i >= v.hfCount {
		return h, false
	}
	if i != v.hpos {
		if _, err := v.hf.Seek(i*tlog.HashSize, io.SeekStart); err != nil {
			return h, false
		}
		v.hseq.Reset(v.hf)
	}
	if _, err := io.ReadFull(v.hseq, h[:]); err != nil {
		v.hpos = -1
		return h, false
	}
	v.hpos = i + 1
	return h, true
}

// A segScan is what a worker found in one segment.
type segScan struct {
	first int64
	path  string
	size  int64
	last  bool
	recs  []segRec
	bad   []badRegion
	err   error
}

type segRec struct {
	index     int64
	kind      Kind
	leaf      tlog.Hash // computed by the worker, which has a core to spare
	off       int64
	hashOK    bool
	redaction *Redaction
	meta      *metaRecord
}

// A badRegion is a run of bytes that are not a valid frame.
type badRegion struct {
	off, end int64
	after    int  // valid frames before it in the file
	whole    bool // one complete frame with a bad checksum, not a torn write
}

// segments scans the segments in parallel and merges the results in
// order.
func (v *verifier) segments(ctx context.Context, firsts []int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var total int64
	for _, f := range firsts {
		if st, err := os.Stat(filepath.Join(v.dir, segName(f))); err == nil {
			total += st.Size()
		}
	}
	var (
		done   atomic.Int64
		progMu sync.Mutex
	)
	progress := func(n int64) {
		d := done.Add(n)
		if v.opts.Progress != nil {
			progMu.Lock()
			v.opts.Progress(d, total)
			progMu.Unlock()
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(firsts))
	if v.opts.Record != nil {
		workers = 1
	}
	results := make([]chan segScan, len(firsts))
	for i := range results {
		results[i] = make(chan segScan, 1)
	}
	// A worker takes a slot before it takes the next segment, and the
	// merge frees it, so at most workers+1 scans wait in memory.
	slots := make(chan struct{}, workers+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(firsts) {
					return
				}
				results[i] <- v.scan(ctx, firsts[i], i == len(firsts)-1, progress)
			}
		})
	}
	defer wg.Wait()
	for i := range firsts {
		var s segScan
		select {
		case s = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if s.err != nil {
			return s.err
		}
		hi := int64(-1)
		if i+1 < len(firsts) {
			hi = firsts[i+1]
		}
		v.merge(&s, hi)
	}
	return ctx.Err()
}

// scan reads one segment and checks each frame on its own.
func (v *verifier) scan(ctx context.Context, first int64, last bool, progress func(int64)) segScan {
	s := segScan{first: first, path: filepath.Join(v.dir, segName(first)), last: last}
	f, err := os.Open(s.path)
	if err != nil {
		s.err = fmt.Errorf("ledger: verify: %w", err)
		return s
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.err = fmt.Errorf("ledger: verify: %w", err)
		return s
	}
	s.size = st.Size()
	r := newSegReader(f, s.size)
	defer r.release()
	reported := int64(0)
	for off := int64(0); off < s.size; {
		if off-reported >= readWindow {
			if err := ctx.Err(); err != nil {
				s.err = err
				return s
			}
			progress(off - reported)
			reported = off
		}
		rec, end, err := r.frame(off, false)
		if err != nil {
			var fe *frameError
			if !errors.As(err, &fe) && !errors.Is(err, errFrameTorn) {
				s.err = fmt.Errorf("ledger: verify: read %s: %w", s.path, err)
				return s
			}
			b := badRegion{off: off, after: len(s.recs)}
			b.end = r.resync(off, false)
			if b.end < 0 {
				b.end = s.size
			}
			if h, err := r.view(off, frameHeader); err == nil && h[0] == frameMagic[0] && h[1] == frameMagic[1] {
				n := int64(uint32(h[43])<<24 | uint32(h[44])<<16 | uint32(h[45])<<8 | uint32(h[46]))
				b.whole = off+frameOverhead+n == b.end
			}
			s.bad = append(s.bad, b)
			off = b.end
			continue
		}
		sr := segRec{index: rec.Index, kind: rec.Kind, leaf: rec.LeafHash(), off: off, hashOK: true}
		switch rec.Kind {
		case KindRedacted:
			if red, err := rec.Redaction(); err == nil {
				sr.redaction = &red
			}
		default:
			sr.hashOK = sha256.Sum256(rec.Content) == rec.ContentHash
			if rec.Kind == KindMeta && sr.hashOK {
				var m metaRecord
				if json.Unmarshal(rec.Content, &m) == nil {
					sr.meta = &m
				}
			}
		}
		if v.opts.Record != nil && sr.hashOK {
			if err := v.opts.Record(rec); err != nil {
				s.err = err
				return s
			}
		}
		s.recs = append(s.recs, sr)
		off = end
	}
	progress(s.size - reported)
	return s
}

// merge places one segment's frames in the tree, in index order, and
// names what is missing, extra, damaged or out of place. hi is the next
// segment's first index, or -1 for the last segment.
func (v *verifier) merge(s *segScan, hi int64) {
	v.rep.Bytes += s.size
	lo := s.first
	name := filepath.Base(s.path)
	if lo > v.next {
		v.gaps = append(v.gaps, Range{v.next, lo - 1})
		v.fill(v.next, lo)
	}
	if lo < v.next {
		v.problem(Inserted, lo, v.next-1, "%s starts at %d, inside the records before it", name, lo)
		lo = v.next
	}
	if hi < 0 {
		// The last segment ends at its highest plausible index: far-off
		// indexes are frames from elsewhere, not a reason to expect
		// millions of missing records.
		bound := lo + 2*int64(len(s.recs)) + 1
		for _, c := range v.cps {
			bound = max(bound, c.Size+1)
		}
		bound = max(bound, recordsCovered(v.hfCount)+1)
		hi = lo
		for _, r := range s.recs {
			if r.index >= lo && r.index < bound {
				hi = max(hi, r.index+1)
			}
		}
		// A whole frame with a bad checksum at the very end is the
		// last record, damaged.
		if n := len(s.bad); n > 0 && s.bad[n-1].whole && s.bad[n-1].end == s.size && s.bad[n-1].after == len(s.recs) {
			hi++
		}
	}

	// Choose the frame for each index; what is left over was inserted.
	chosen := make([]int32, hi-lo)
	for i := range chosen {
		chosen[i] = -1
	}
	for k, r := range s.recs {
		if r.index < lo || r.index >= hi {
			v.problem(Inserted, r.index, r.index, "frame at offset %d of %s claims index %d, outside its range %d..%d", r.off, name, r.index, lo, hi-1)
			continue
		}
		j := r.index - lo
		if chosen[j] < 0 {
			chosen[j] = int32(k)
			continue
		}
		keep, drop := int(chosen[j]), k
		if v.genuine(s.recs[drop]) && !v.genuine(s.recs[keep]) {
			keep, drop = drop, keep
		}
		chosen[j] = int32(keep)
		v.problem(Inserted, r.index, r.index, "a second frame for record %d at offset %d of %s (the other is at offset %d)", r.index, s.recs[drop].off, name, s.recs[keep].off)
	}

	// Records out of place: the chosen frames, in file order, should
	// have increasing indexes.
	var order []int64
	for k, r := range s.recs {
		if r.index >= lo && r.index < hi && chosen[r.index-lo] == int32(k) {
			order = append(order, r.index)
		}
	}
	sorted := slices.Clone(order)
	slices.Sort(sorted)
	var moved []int64
	for i := range order {
		if order[i] != sorted[i] {
			moved = append(moved, order[i])
		}
	}
	if len(moved) > 0 {
		lst := moved
		if len(lst) > 10 {
			lst = lst[:10]
		}
		v.problem(Reordered, slices.Min(moved), slices.Max(moved), "in %s, records %v are out of order", name, lst)
	}

	// Bad regions: the records they hide are damaged; a region that
	// hides none is inserted bytes, or a torn write at the very end.
	damaged := make([]bool, hi-lo)
	for _, b := range s.bad {
		before, after := lo-1, hi
		if b.after > 0 {
			before = s.recs[b.after-1].index
		}
		if b.after < len(s.recs) {
			after = s.recs[b.after].index
		}
		hides := false
		for i := max(before+1, lo); i < min(after, hi); i++ {
			if chosen[i-lo] < 0 {
				damaged[i-lo], hides = true, true
			}
		}
		switch {
		case hides:
		case s.last && b.end == s.size:
			v.problem(Torn, hi, hi, "the last %d bytes of %s are an incomplete frame, as a crash during a write leaves; opening the ledger cuts them", b.end-b.off, name)
		default:
			v.problem(Inserted, after, after, "%d bytes at offset %d of %s are not a frame", b.end-b.off, b.off, name)
		}
	}
	// Records missing at the end of a segment are missing between
	// segments: a segment deleted, by retention or not.
	tail := hi
	if !s.last {
		for tail > lo && chosen[tail-1-lo] < 0 && !damaged[tail-1-lo] {
			tail--
		}
		if tail < hi {
			v.gaps = append(v.gaps, Range{tail, hi - 1})
		}
	}
	for i := lo; i < tail; {
		if chosen[i-lo] >= 0 {
			i++
			continue
		}
		j := i
		for j+1 < tail && chosen[j+1-lo] < 0 && damaged[j+1-lo] == damaged[i-lo] {
			j++
		}
		if damaged[i-lo] {
			v.problem(Modified, i, j, "the frames of %s that held these records are damaged (bad magic, length or checksum)", name)
		} else {
			v.problem(Deleted, i, j, "no frame in %s holds these records", name)
		}
		i = j + 1
	}

	// Now the tree, in index order.
	for i := lo; i < hi; {
		if chosen[i-lo] < 0 {
			j := i + 1
			for j < hi && chosen[j-lo] < 0 {
				j++
			}
			v.fill(i, j)
			i = j
			continue
		}
		r := s.recs[chosen[i-lo]]
		if !r.hashOK {
			v.problem(Modified, i, i, "the content of record %d in %s does not match its hash", i, name)
		}
		v.rep.Records++
		switch {
		case r.redaction != nil:
			v.addRedaction(i, *r.redaction)
		case r.kind == KindRedacted:
			v.problem(Modified, i, i, "redacted record %d in %s does not say why", i, name)
		case r.meta != nil && r.meta.Type == metaRetention:
			v.metas = append(v.metas, metaAt{i, *r.meta})
		}
		v.pushLeaf(i, r.leaf)
		i++
	}
	v.next = hi
}

// genuine reports whether r's leaf matches the hashes file's copy.
func (v *verifier) genuine(r segRec) bool {
	if v.hf == nil || !r.hashOK {
		return false
	}
	var h tlog.Hash
	if readHash(v.hf, tlog.StoredHashIndex(0, r.index), &h) != nil {
		return false
	}
	return h == r.leaf
}

func (v *verifier) addRedaction(i int64, red Redaction) {
	rr := v.rep.Redacted
	if n := len(rr); n > 0 && rr[n-1].Last == i-1 && rr[n-1].Reason == red.Reason {
		rr[n-1].Last = i
		return
	}
	v.rep.Redacted = append(rr, RedactedRange{First: i, Last: i, Reason: red.Reason, Time: red.Time})
}

// pushLeaf adds record i's leaf to the tree and compares the stored
// hashes that completes with the hashes file.
func (v *verifier) pushLeaf(i int64, leaf tlog.Hash) {
	if v.brokenAt >= 0 {
		return
	}
	v.tree.push(0, leaf, func(level int, n int64, h tlog.Hash) {
		stored, ok := v.storedHash(tlog.StoredHashIndex(level, n))
		if !ok || stored == h {
			return
		}
		if level == 0 {
			v.leafDiff = append(v.leafDiff, i)
		} else if v.nodeDiff < 0 {
			v.nodeDiff = i
		}
	})
	v.noteRoot()
}

// fill advances the tree over records lo..hi-1, which the segments do
// not give, with the hashes file's subtree hashes for them, so that the
// rest of the tree and later checkpoints can still be checked.
func (v *verifier) fill(lo, hi int64) {
	for lo < hi && v.brokenAt < 0 {
		// Stop at every checkpoint size on the way so its root is seen.
		end := hi
		for s := range v.roots {
			if s > lo && s < end {
				end = s
			}
		}
		for _, st := range subtrees(lo, end) {
			var h tlog.Hash
			if v.hf == nil || tlog.StoredHashIndex(st.Level, st.N) >= v.hfCount ||
				readHash(v.hf, tlog.StoredHashIndex(st.Level, st.N), &h) != nil {
				v.brokenAt = v.tree.n
				return
			}
			v.tree.push(st.Level, h, nil)
		}
		v.noteRoot()
		lo = end
	}
}

func (v *verifier) noteRoot() {
	if _, ok := v.roots[v.tree.n]; ok {
		v.roots[v.tree.n] = v.tree.root()
	}
}

// finish checks what needs the whole pass: the end of the ledger,
// retention records against gaps, checkpoints against the tree.
func (v *verifier) finish() {
	n := v.next
	v.rep.Size = n
	if v.brokenAt < 0 {
		v.rep.Root = v.tree.root()
	}
	torn := slices.ContainsFunc(v.rep.Problems, func(p Problem) bool { return p.Kind == Torn })
	if h := recordsCovered(v.hfCount); h > n && !torn {
		v.problem(Deleted, n, h-1, "the hashes file has records up to %d but the last segment ends at %d", h-1, n-1)
	}
	v.resolveGaps()

	// A checkpoint that does not match the tree is explained by a
	// problem already found inside it; otherwise the change is
	// narrowed to the records since the last checkpoint that matched.
	explained := func(size int64) bool {
		return slices.ContainsFunc(v.rep.Problems, func(p Problem) bool {
			return p.First >= 0 && p.First < size && p.Kind != Reordered && p.Kind != BadCheckpoint
		})
	}
	good := int64(0)
	for _, c := range v.cps {
		root, known := v.roots[c.Size]
		switch {
		case c.Size > n:
			c.Detail = fmt.Sprintf("covers %d records; the ledger has %d", c.Size, n)
			if c.Trusted {
				v.problem(RolledBack, n, c.Size-1, "trusted checkpoint %s covers %d records but the ledger has %d: it was rolled back", c.Source, c.Size, n)
			} else if !explained(c.Size) {
				v.problem(Deleted, n, c.Size-1, "checkpoint %s covers %d records but the ledger has %d", c.Source, c.Size, n)
			}
		case !known || (v.brokenAt >= 0 && c.Size > v.brokenAt):
			c.Detail = "not checked: the tree could not be recomputed that far"
		case root == c.Hash:
			c.OK = true
			good = max(good, c.Size)
		default:
			c.Detail = fmt.Sprintf("root hash %s, the ledger's is %s", c.Hash, root)
			if explained(c.Size) {
				break
			}
			if c.Trusted {
				v.problem(RolledBack, good, c.Size-1, "the ledger is not an extension of trusted checkpoint %s: it was rolled back and rewritten after record %d", c.Source, good)
			} else {
				v.problem(Modified, good, c.Size-1, "the tree no longer matches checkpoint %s: records in this range were rewritten together with the hashes file", c.Source)
			}
		}
	}
	for i, r := range v.rep.Removed {
		v.rep.Removed[i].Signed = slices.ContainsFunc(v.cps, func(c *CheckpointResult) bool { return c.Size > r.Record && c.OK })
	}
	v.checkPairs()
	v.classifyLeafDiffs()
	for _, c := range v.cps {
		v.rep.Checkpoints = append(v.rep.Checkpoints, *c)
	}
	slices.SortStableFunc(v.rep.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Kind, b.Kind))
	})
}

// checkPairs checks that consecutive checkpoints are consistent with
// each other, by proofs from the hashes file, independently of the
// segments.
func (v *verifier) checkPairs() {
	for i := 1; i < len(v.cps); i++ {
		a, b := v.cps[i-1], v.cps[i]
		if a.Size == b.Size {
			if a.Hash != b.Hash {
				v.problem(BadCheckpoint, 0, a.Size-1, "checkpoints %s and %s are both signed for %d records but differ: the ledger forked", a.Source, b.Source, a.Size)
			}
			continue
		}
		if a.Size == 0 || b.Size > recordsCovered(v.hfCount) {
			continue
		}
		hr := fileHashes{r: v.hf, max: v.hfCount}
		p, err := tlog.ProveTree(b.Size, a.Size, hr)
		if err == nil {
			err = tlog.CheckTree(p, b.Size, b.Hash, a.Size, a.Hash)
		}
		if err != nil {
			b.Detail = strings.TrimPrefix(b.Detail+"; ", "; ") + fmt.Sprintf("no consistency proof from %s: %v", a.Source, err)
			b.OK = false
		}
	}
}

// classifyLeafDiffs names the records whose leaf differs from the hashes
// file's: rewritten if no matching checkpoint vouches for the segment;
// otherwise the hashes file is what changed.
func (v *verifier) classifyLeafDiffs() {
	for _, i := range v.leafDiff {
		var vouch *CheckpointResult
		for _, c := range v.cps {
			if c.Size > i {
				vouch = c
				break
			}
		}
		if vouch != nil && vouch.OK {
			v.problem(HashesMismatch, i, i, "the hashes file's leaf for record %d differs from the segment's, which checkpoint %s vouches for", i, vouch.Source)
		} else {
			v.problem(Modified, i, i, "record %d's frame was rewritten with a valid checksum: its leaf differs from the hashes file's", i)
		}
	}
	if v.nodeDiff >= 0 && len(v.leafDiff) == 0 {
		v.problem(HashesMismatch, v.nodeDiff, v.nodeDiff, "the hashes file's interior hashes differ from the tree from record %d on", v.nodeDiff)
	}
}

// resolveGaps names the records missing between segments: removed by
// retention if a retention record says so, else segment-missing.
func (v *verifier) resolveGaps() {
	for _, m := range v.metas {
		for _, r := range m.meta.Removed {
			for _, st := range r.Subtrees {
				var h tlog.Hash
				idx := tlog.StoredHashIndex(st.Level, st.N)
				if v.hf != nil && idx < v.hfCount && readHash(v.hf, idx, &h) == nil && h != st.Hash {
					v.problem(HashesMismatch, r.First, r.Last, "retention record %d and the hashes file disagree on the removed records' hashes", m.index)
					break
				}
			}
		}
	}
	for _, g := range v.gaps {
		at := g.First
		for at <= g.Last {
			var hit *metaAt
			var rr removedRange
			for k := range v.metas {
				for _, r := range v.metas[k].meta.Removed {
					if r.First <= at && at <= r.Last {
						hit, rr = &v.metas[k], r
					}
				}
			}
			if hit == nil {
				end := g.Last
				for k := range v.metas {
					for _, r := range v.metas[k].meta.Removed {
						if r.First > at && r.First <= end {
							end = r.First - 1
						}
					}
				}
				v.problem(SegmentMissing, at, end, "records %d..%d are missing between segments and no retention record removed them", at, end)
				at = end + 1
				continue
			}
			last := min(rr.Last, g.Last)
			v.rep.Removed = append(v.rep.Removed, RemovedRange{
				First: at, Last: last, Reason: hit.meta.Reason, Time: hit.meta.Time, Record: hit.index,
			})
			at = last + 1
		}
	}
}
