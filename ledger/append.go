package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/event"
)

// A request is an append waiting for the writer, or an operation that
// must run with no append under way (redaction, retention).
type request struct {
	// frames holds the records' frames back to back, built by the caller
	// except for each frame's index and CRC, which the writer fills in
	// once it knows where the records go.
	frames []byte
	ends   []int // ends[i] is the offset in frames just past frame i
	op     func() error

	first int64
	err   error
	done  chan struct{}
}

// maxBatchBytes bounds how much one group commit writes, so that a burst
// of appends is acknowledged in steps rather than after one huge write.
const maxBatchBytes = 32 << 20

// Append appends the events as consecutive records and returns the index
// of the first; it sets each event's Seq to its index. It returns once
// the records are on stable storage (fsynced), so an index it returns is
// never lost.
//
// Appends from concurrent callers are committed together: while one
// write and fsync is under way the next callers queue, and all of them go
// out in the following write and fsync.
//
// ctx bounds the wait for a place in the queue. Once queued, the records
// may already be on their way to disk, so Append waits for the outcome
// whatever ctx does: returning early would leave the caller unsure
// whether they were stored.
func (l *Ledger) Append(ctx context.Context, events []*event.Event) (int64, error) {
	return l.appendEvents(ctx, events, nil)
}

// AppendBatch is Append for a batch that carries an idempotency key (a
// client's batch id, an object's name): a KindMeta record of the key
// follows the events in the same append, so after any crash the ledger
// holds the events and their key, or neither. BatchKeys reads the keys
// back.
func (l *Ledger) AppendBatch(ctx context.Context, events []*event.Event, key string) (int64, error) {
	if key == "" {
		return 0, errors.New("ledger: a batch needs a key")
	}
	b, err := json.Marshal(batchRecord{Type: metaBatch, Key: key, Events: len(events)})
	if err != nil {
		return 0, fmt.Errorf("ledger: batch key: %w", err)
	}
	return l.appendEvents(ctx, events, b)
}

// batchRecord is the content of the KindMeta record AppendBatch writes.
type batchRecord struct {
	Type   string `json:"type"`
	Key    string `json:"key"`
	Events int    `json:"events"` // the events before it that the batch holds
}

const metaBatch = "batch"

// BatchKeys calls fn with the key of each batch AppendBatch recorded at
// index from or later, with the index of the batch's first event and the
// number of its events.
func (l *Ledger) BatchKeys(from int64, fn func(key string, first int64, events int) error) error {
	return l.Scan(max(from, 0), l.Size(), func(rec Record) error {
		if rec.Kind != KindMeta || !bytes.Contains(rec.Content, []byte(`"type":"batch"`)) {
			return nil
		}
		var b batchRecord
		if err := json.Unmarshal(rec.Content, &b); err != nil {
			return fmt.Errorf("ledger: record %d: %w", rec.Index, err)
		}
		return fn(b.Key, rec.Index-int64(b.Events), b.Events)
	})
}

func (l *Ledger) appendEvents(ctx context.Context, events []*event.Event, batch []byte) (int64, error) {
	if len(events) == 0 && batch == nil {
		return l.Size(), nil
	}
	size := 0
	for _, e := range events {
		size += frameOverhead + encodedSize(e)
	}
	if batch != nil {
		size += frameOverhead + len(batch)
	}
	r := l.newRequest(size, len(events)+1)
	defer l.recycle(r)
	for i, e := range events {
		start := r.startFrame()
		r.frames = appendEvent(r.frames, e)
		if n := len(r.frames) - start - frameHeader; n > MaxContent {
			return 0, fmt.Errorf("ledger: event %d of the batch encodes to %d bytes, more than the maximum of %d", i, n, MaxContent)
		}
		r.endFrame(KindEvent, start)
	}
	if batch != nil {
		r.appendRecord(KindMeta, batch)
	}
	r.finish()
	if err := l.submit(ctx, r); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	for i, e := range events {
		e.Seq = uint64(r.first) + uint64(i)
	}
	return r.first, nil
}

// newRequest returns an append request with room for frames of size
// bytes in all, reusing a buffer of an earlier request when one is free:
// an import appends gigabytes, and a fresh buffer per batch cost as much
// to allocate and clear as the hashing.
func (l *Ledger) newRequest(size, records int) *request {
	var buf []byte
	select {
	case buf = <-l.free:
	default:
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	return &request{frames: buf[:0], ends: make([]int, 0, records), done: make(chan struct{})}
}

// recycle keeps r's buffer for a later request. The writer is done with
// it once r is answered.
func (l *Ledger) recycle(r *request) {
	if cap(r.frames) > maxBatchBytes+MaxContent {
		return
	}
	select {
	case l.free <- r.frames[:0]:
	default:
	}
	r.frames = nil
}

// startFrame reserves room for a frame's header; the content is appended
// after it, then endFrame completes the frame.
func (r *request) startFrame() int {
	start := len(r.frames)
	r.frames = append(r.frames, make([]byte, frameHeader)...)
	return start
}

// endFrame fills in the header of the frame that starts at start and
// reserves its trailer. Hashing here, not in the writer, spreads it over
// the callers' goroutines.
func (r *request) endFrame(kind Kind, start int) {
	f := r.frames[start:]
	content := f[frameHeader:]
	f[0], f[1], f[2] = frameMagic[0], frameMagic[1], byte(kind)
	sum := sha256.Sum256(content)
	copy(f[11:11+sha256.Size], sum[:])
	binary.BigEndian.PutUint32(f[11+sha256.Size:frameHeader], uint32(len(content)))
	r.frames = append(r.frames, 0, 0, 0, 0)
	r.ends = append(r.ends, len(r.frames))
}

// finish marks r's last frame as the end of its append.
func (r *request) finish() {
	start := 0
	if n := len(r.ends); n > 1 {
		start = r.ends[n-2]
	}
	r.frames[start+2] |= lastFlag
}

// appendRecord adds a record with the given content to r.
func (r *request) appendRecord(kind Kind, content []byte) {
	start := r.startFrame()
	r.frames = append(r.frames, content...)
	r.endFrame(kind, start)
}

// exclusive runs op in the writer, between two commits.
func (l *Ledger) exclusive(ctx context.Context, op func() error) error {
	r := &request{op: op, done: make(chan struct{})}
	if err := l.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

func (l *Ledger) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case l.reqs <- r:
		l.closeMu.RUnlock()
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return ctx.Err()
	}
	<-r.done
	return nil
}

// writeLoop is the writer goroutine: it takes whatever requests are
// queued, commits the appends among them with one write and one fsync,
// and answers them.
func (l *Ledger) writeLoop() {
	defer close(l.writerDone)
	var batch []*request
	for r := range l.reqs {
		batch = append(batch[:0], r)
		n := r.bytes()
	gather:
		for n < maxBatchBytes {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
				n += r.bytes()
			default:
				break gather
			}
		}
		for len(batch) > 0 {
			i := 0
			for i < len(batch) && batch[i].op == nil {
				i++
			}
			if i > 0 {
				l.commit(batch[:i])
			} else {
				r := batch[0]
				r.err = l.failed
				if r.err == nil {
					r.err = r.op()
				}
				close(r.done)
				i = 1
			}
			batch = batch[i:]
		}
	}
}

func (r *request) bytes() int { return len(r.frames) }

// commit writes the records of reqs, fsyncs them, and answers reqs.
func (l *Ledger) commit(reqs []*request) {
	err := l.failed
	if err == nil {
		err = l.write(reqs)
		if err != nil {
			// After a failed write or fsync the file's state is unknown
			// (a failed fsync may have dropped dirty pages), so the
			// ledger refuses further appends until reopened, when
			// recovery reads what really is on disk.
			l.failed = fmt.Errorf("ledger: an earlier write failed; reopen the ledger: %w", err)
			l.log.Error("append failed; refusing appends until reopened", "err", err)
		}
	}
	for _, r := range reqs {
		r.err = err
		close(r.done)
	}
}

func (l *Ledger) write(reqs []*request) error {
	next := l.Size()
	seg := l.activeSegment()
	var (
		pending [][]byte // the requests' frames, to write in order
		n       int64    // bytes in pending
		marks   []int64
	)
	for _, r := range reqs {
		// An append never spans two segments, so that recovery, which
		// looks at the last segment only, can keep it whole or drop it
		// whole. A segment may grow past SegmentBytes by one append.
		if pos := l.activeSize + n; pos > 0 && pos+int64(len(r.frames)) > l.opts.SegmentBytes {
			if err := l.flush(seg, pending, marks, next); err != nil {
				return err
			}
			pending, n, marks = pending[:0], 0, nil
			var err error
			if seg, err = l.rotate(next); err != nil {
				return err
			}
		}
		r.first = next
		start := 0
		for _, end := range r.ends {
			f := r.frames[start:end]
			if (next-seg.first)%markEvery == 0 {
				marks = append(marks, l.activeSize+n+int64(start))
			}
			sealFrame(f, next)
			if err := l.hashes.add(next, LeafHashOf([32]byte(f[11:11+sha256.Size]))); err != nil {
				return err
			}
			start = end
			next++
		}
		pending = append(pending, r.frames)
		n += int64(len(r.frames))
	}
	return l.flush(seg, pending, marks, next)
}

// flush writes pieces to the active segment, one after the other, fsyncs
// it and publishes the records before next.
func (l *Ledger) flush(seg *segment, pieces [][]byte, marks []int64, next int64) error {
	size := l.activeSize
	for _, p := range pieces {
		if _, err := l.active.WriteAt(p, size); err != nil {
			l.undo()
			return fmt.Errorf("ledger: write %s: %w", seg.path, err)
		}
		size += int64(len(p))
	}
	if size == l.activeSize {
		return nil
	}
	if err := l.active.Sync(); err != nil {
		l.undo()
		return fmt.Errorf("ledger: sync %s: %w", seg.path, err)
	}
	// The hashes file is derived and rebuilt past the last sealed
	// segment on Open, so it is written but not fsynced here.
	if err := l.hashes.flush(); err != nil {
		return err
	}
	l.activeSize = size
	seg.mu.Lock()
	seg.count = next - seg.first
	seg.size = l.activeSize
	seg.marks = append(seg.marks, marks...)
	seg.mu.Unlock()
	l.size.Store(next)
	return nil
}

// undo drops a write that failed: best effort, since Open repairs the
// end of the last segment anyway.
func (l *Ledger) undo() {
	l.active.Truncate(l.activeSize)
	l.hashes.pending = l.hashes.pending[:0]
}

// rotate seals the active segment and starts a new one at index first.
func (l *Ledger) rotate(first int64) (*segment, error) {
	// Sealed segments' hashes are fsynced so that Open need only rebuild
	// the last segment's.
	if err := l.hashes.f.Sync(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	seg := &segment{first: first, path: filepath.Join(l.dir, segName(first)), indexed: true}
	f, err := os.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: new segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.active.Close(); err != nil {
		l.log.Warn("closing sealed segment", "err", err)
	}
	l.active, l.activeSize = f, 0
	l.smu.Lock()
	l.segs = append(l.segs, seg)
	l.smu.Unlock()
	return seg, nil
}

func (l *Ledger) activeSegment() *segment {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.segs[len(l.segs)-1]
}

// LastBatchKey returns the key of the last batch AppendBatch recorded,
// and false if there is none.
func (l *Ledger) LastBatchKey() (string, bool, error) {
	size := l.Size()
	// A batch's key is the last record of its append, so it is found
	// near the end unless other appends followed it.
	for _, from := range []int64{size - 1024, 0} {
		key, found := "", false
		err := l.BatchKeys(from, func(k string, _ int64, _ int) error {
			key, found = k, true
			return nil
		})
		if err != nil || found || from <= 0 {
			return key, found, err
		}
	}
	return "", false, nil
}
