package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Options configure a Ledger. The zero value is usable: a ledger without
// a Signer writes no checkpoints.
type Options struct {
	// SegmentBytes is the size past which a new segment file is started;
	// 0 means 128 MiB.
	SegmentBytes int64
	// Signer signs checkpoints (see LoadOrCreateKey).
	Signer note.Signer
	// Name names the ledger in its checkpoints; empty means the
	// signer's name.
	Name string
	// Witnesses are sent every checkpoint, so that a copy of it lives
	// outside the data directory.
	Witnesses []Witness
	// CheckpointEvery is how often a checkpoint is written while the
	// tree grows; 0 means only when asked and at Close.
	CheckpointEvery time.Duration
	// Hold, if set, is asked before RemoveBefore deletes the segment of
	// records first..last; returning true (a legal hold) keeps it.
	Hold func(first, last int64) bool
	// Now is the clock for checkpoints and redactions; nil means
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// A Recovery describes what Open cut from the end of the ledger: the
// torn frame a crash in the middle of a write leaves. Nothing that an
// Append had acknowledged is ever in it.
type Recovery struct {
	Segment        string // file name; empty if nothing was cut
	Offset         int64  // where the file was cut
	BytesTruncated int64
	// RecordsDropped counts the frames that had begun in the cut bytes:
	// the complete records of an append whose last record did not reach
	// the disk, and a torn one. None of them was acknowledged.
	RecordsDropped int
}

// A Ledger is an open ledger directory. Its methods are safe for
// concurrent use.
type Ledger struct {
	dir      string
	opts     Options
	log      *slog.Logger
	lock     *os.File
	recovery Recovery

	size atomic.Int64 // durable records

	smu  sync.RWMutex
	segs []*segment // by first index; the last is the one appended to

	// Owned by the writer goroutine once Open returns.
	hashes     *hashFile
	active     *os.File
	activeSize int64
	failed     error

	free chan []byte // frame buffers of answered requests, for reuse; two, since each may be tens of MB

	reqs       chan *request
	closeMu    sync.RWMutex
	closed     bool
	writerDone chan struct{}

	ckMu     sync.Mutex
	ckSize   int64 // size of the last checkpoint written; -1 if none
	stopLoop chan struct{}
	loopDone chan struct{}
}

// ErrClosed is returned by methods of a closed Ledger.
var ErrClosed = errors.New("ledger: closed")

const hashesName = "hashes"

// Open opens the ledger in dir, creating it if needed, and repairs what a
// crash can leave behind: a torn frame at the end of the last segment is
// cut off (see Recovery) and the hashes file is brought in step with the
// segments. Damage a crash cannot cause, such as a bad frame followed by
// good ones or a tree that no longer matches the latest checkpoint, is
// not repaired: Open fails with an error wrapping ErrCorrupt.
func Open(dir string, opts Options) (*Ledger, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 128 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Name == "" && opts.Signer != nil {
		opts.Name = opts.Signer.Name()
	}
	if opts.Signer != nil && !validName(opts.Name) {
		return nil, fmt.Errorf("ledger: bad name %q: want letters, digits and punctuation other than +", opts.Name)
	}
	if err := os.MkdirAll(filepath.Join(dir, checkpointDir), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Ledger{
		dir:        dir,
		opts:       opts,
		log:        opts.Logger.With("component", "ledger"),
		lock:       lock,
		ckSize:     -1,
		reqs:       make(chan *request, 1024),
		free:       make(chan []byte, 2),
		writerDone: make(chan struct{}),
		stopLoop:   make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	if err := l.open(); err != nil {
		if l.active != nil {
			l.active.Close()
		}
		if l.hashes != nil {
			l.hashes.f.Close()
		}
		lock.Close()
		return nil, err
	}
	go l.writeLoop()
	if opts.Signer != nil && opts.CheckpointEvery > 0 {
		go l.checkpointLoop()
	} else {
		close(l.loopDone)
	}
	return l, nil
}

func (l *Ledger) open() error {
	if err := removeTemps(l.dir); err != nil {
		return err
	}
	signed, latest, err := readLatest(l.dir)
	if err != nil {
		return err
	}
	haveLatest := signed != nil
	firsts, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if len(firsts) == 0 {
		if haveLatest && latest.Size > 0 {
			return fmt.Errorf("ledger: %s has no segments but its latest checkpoint covers %d records (%w)", l.dir, latest.Size, ErrCorrupt)
		}
		f, err := os.OpenFile(filepath.Join(l.dir, segName(0)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		f.Close()
		if err := syncDir(l.dir); err != nil {
			return err
		}
		firsts = []int64{0}
	}
	for _, first := range firsts {
		l.segs = append(l.segs, &segment{first: first, path: filepath.Join(l.dir, segName(first))})
	}
	last := l.segs[len(l.segs)-1]
	minSize := int64(0)
	if haveLatest {
		minSize = latest.Size
	}
	leaves, err := l.recoverLast(last, minSize)
	if err != nil {
		return err
	}
	n := last.end()
	if n < minSize {
		return fmt.Errorf("ledger: %s holds %d records but its latest checkpoint covers %d (%w)", l.dir, n, minSize, ErrCorrupt)
	}
	if l.hashes, err = openHashFile(filepath.Join(l.dir, hashesName)); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if err := l.rebuildHashes(last, leaves); err != nil {
		return err
	}
	l.size.Store(n)
	if haveLatest {
		root, err := l.RootHash(latest.Size)
		if err != nil {
			return err
		}
		if root != latest.Hash {
			return fmt.Errorf("ledger: the records no longer match the latest checkpoint (size %d) (%w)", latest.Size, ErrCorrupt)
		}
		l.ckSize = latest.Size
	}
	return nil
}

// recoverLast reads the last segment, cuts a torn tail off it, opens it
// for appending and returns its leaf hashes.
func (l *Ledger) recoverLast(seg *segment, minSize int64) ([]tlog.Hash, error) {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l.active = f
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	r := newSegReader(f, st.Size())
	defer r.release()
	var (
		leaves []tlog.Hash
		marks  []int64
		off    int64
		next   = seg.first
		// The end of the last whole append: frames after it belong to an
		// append that was never acknowledged, since an append is
		// acknowledged only once all its frames are on disk.
		whole     int64
		wholeNext = seg.first
	)
	for off < st.Size() {
		rec, end, err := r.frame(off, false)
		if err == nil && rec.Index != next {
			return nil, corrupt(seg.path, next, fmt.Errorf("frame at offset %d claims index %d", off, rec.Index))
		}
		if err != nil {
			// A crash leaves at most a torn end; a bad frame with good
			// ones after it is damage, and cutting there would drop
			// acknowledged records.
			if o := r.resync(off, false); o >= 0 {
				return nil, corrupt(seg.path, next, fmt.Errorf("%w, yet a good frame follows at offset %d", err, o))
			}
			break
		}
		if (next-seg.first)%markEvery == 0 {
			marks = append(marks, off)
		}
		leaves = append(leaves, rec.LeafHash())
		off, next = end, next+1
		if rec.last {
			whole, wholeNext = off, next
		}
	}
	if whole < st.Size() {
		if wholeNext < minSize {
			return nil, corrupt(seg.path, wholeNext, fmt.Errorf("torn append at offset %d inside the latest checkpoint (size %d)", whole, minSize))
		}
		dropped := int(next - wholeNext)
		if head, _ := r.view(off, 2); off < st.Size() && len(head) == 2 && head[0] == frameMagic[0] && head[1] == frameMagic[1] {
			dropped++
		}
		off, next = whole, wholeNext
		leaves = leaves[:next-seg.first]
		for len(marks) > 0 && marks[len(marks)-1] >= off {
			marks = marks[:len(marks)-1]
		}
		if err := f.Truncate(off); err != nil {
			return nil, fmt.Errorf("ledger: cut torn tail of %s: %w", seg.path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		l.recovery = Recovery{
			Segment:        filepath.Base(seg.path),
			Offset:         off,
			BytesTruncated: st.Size() - off,
			RecordsDropped: dropped,
		}
		l.log.Warn("cut the unacknowledged tail left by a crash", "segment", l.recovery.Segment,
			"offset", off, "bytes", l.recovery.BytesTruncated, "records", dropped)
	}
	seg.indexed, seg.count, seg.size, seg.marks = true, next-seg.first, off, marks
	l.activeSize = off
	return leaves, nil
}

// rebuildHashes recomputes the stored hashes of the last segment's
// records (never fsynced before a crash, so never trusted) and of any
// earlier records the hashes file lacks, and cuts what it has beyond.
func (l *Ledger) rebuildHashes(last *segment, leaves []tlog.Hash) error {
	h := l.hashes
	from := min(recordsCovered(h.n), last.first)
	if err := h.truncate(tlog.StoredHashCount(from)); err != nil {
		return err
	}
	if from < last.first {
		l.log.Warn("rebuilding hashes file from the segments", "from", from, "to", last.first)
		next := from
		err := l.scan(from, last.first, func(rec Record) error {
			if rec.Index != next {
				return fmt.Errorf("ledger: cannot rebuild the hashes file: records %d to %d are missing", next, rec.Index-1)
			}
			next++
			if err := h.add(rec.Index, rec.LeafHash()); err != nil {
				return err
			}
			if len(h.pending) >= 1<<20 {
				return h.flush()
			}
			return nil
		})
		if err == nil && next != last.first {
			err = fmt.Errorf("ledger: cannot rebuild the hashes file: records %d to %d are missing", next, last.first-1)
		}
		if err != nil {
			return err
		}
	}
	for i, leaf := range leaves {
		if err := h.add(last.first+int64(i), leaf); err != nil {
			return err
		}
	}
	if err := h.flush(); err != nil {
		return err
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// removeTemps deletes what an interrupted redaction or checkpoint left:
// the rename that would have used a temporary file never happened, so
// the file it was to replace is intact.
func removeTemps(dir string) error {
	for _, d := range []string{dir, filepath.Join(dir, checkpointDir)} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), tmpSuffix) {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					return fmt.Errorf("ledger: %w", err)
				}
			}
		}
	}
	return nil
}

const tmpSuffix = ".tmp"

// Dir returns the ledger's directory.
func (l *Ledger) Dir() string { return l.dir }

// Size returns the number of records appended durably: the next record
// gets this index.
func (l *Ledger) Size() int64 { return l.size.Load() }

// Recovery returns what Open cut from a torn end of the ledger.
func (l *Ledger) Recovery() Recovery { return l.recovery }

// Close stops appends (waiting for those under way), writes a final
// checkpoint if the tree grew since the last one, and closes the files.
func (l *Ledger) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.stopLoop)
	close(l.reqs)
	l.closeMu.Unlock()
	<-l.writerDone
	<-l.loopDone

	var errs []error
	if l.opts.Signer != nil {
		l.ckMu.Lock()
		grew := l.ckSize != l.Size()
		l.ckMu.Unlock()
		if grew {
			ctx, cancel := contextWithTimeout(closeWitnessTimeout)
			if _, err := l.checkpoint(ctx); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
	}
	if err := l.hashes.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("ledger: %w", err))
	}
	for _, f := range []*os.File{l.active, l.hashes.f, l.lock} {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("ledger: %w", err))
		}
	}
	return errors.Join(errs...)
}

// segmentFor returns the segment that holds index if it is stored.
func (l *Ledger) segmentFor(index int64) *segment {
	l.smu.RLock()
	defer l.smu.RUnlock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > index })
	return l.segs[max(i-1, 0)]
}
