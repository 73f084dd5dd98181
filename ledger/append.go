package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/event"
)

// A request is an append waiting for the writer, or an operation that
// must run with no append under way (redaction, retention).
type request struct {
	kind     Kind
	contents [][]byte
	hashes   [][32]byte
	op       func() error

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
	// The events are encoded into one buffer, allocated once at its
	// final size: an import appends gigabytes, and an allocation per
	// event, or a buffer grown by doubling, cost as much as the hashing.
	size := 0
	for _, e := range events {
		size += encodedSize(e)
	}
	buf := make([]byte, 0, size)
	contents := make([][]byte, len(events))
	for i, e := range events {
		start := len(buf)
		buf = appendEvent(buf, e)
		contents[i] = buf[start:len(buf):len(buf)]
	}
	first, err := l.append(ctx, KindEvent, contents)
	if err != nil {
		return 0, err
	}
	for i, e := range events {
		e.Seq = uint64(first) + uint64(i)
	}
	return first, nil
}

func (l *Ledger) append(ctx context.Context, kind Kind, contents [][]byte) (int64, error) {
	if len(contents) == 0 {
		return l.Size(), nil
	}
	r := &request{kind: kind, contents: contents, hashes: make([][32]byte, len(contents)), done: make(chan struct{})}
	for i, c := range contents {
		if len(c) > MaxContent {
			return 0, fmt.Errorf("ledger: record %d of the batch has %d bytes, more than the maximum of %d", i, len(c), MaxContent)
		}
		// Hashing here, not in the writer, spreads it over the callers'
		// goroutines.
		r.hashes[i] = sha256.Sum256(c)
	}
	if err := l.submit(ctx, r); err != nil {
		return 0, err
	}
	return r.first, r.err
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

func (r *request) bytes() int {
	n := 0
	for _, c := range r.contents {
		n += frameOverhead + len(c)
	}
	return n
}

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
	buf := l.wbuf[:0]
	seg := l.activeSegment()
	var marks []int64
	for _, r := range reqs {
		r.first = next
		for i, c := range r.contents {
			pos := l.activeSize + int64(len(buf))
			if pos > 0 && pos+int64(frameOverhead+len(c)) > l.opts.SegmentBytes {
				if err := l.flush(seg, buf, marks, next); err != nil {
					return err
				}
				buf, marks = buf[:0], nil
				var err error
				if seg, err = l.rotate(next); err != nil {
					return err
				}
				pos = 0
			}
			if (next-seg.first)%markEvery == 0 {
				marks = append(marks, pos)
			}
			buf = appendFrame(buf, r.kind, next, r.hashes[i], c)
			if err := l.hashes.add(next, LeafHashOf(r.hashes[i])); err != nil {
				return err
			}
			next++
		}
	}
	err := l.flush(seg, buf, marks, next)
	if cap(buf) <= maxBatchBytes+MaxContent {
		l.wbuf = buf[:0]
	}
	return err
}

// flush writes buf to the active segment, fsyncs it and publishes the
// records before next.
func (l *Ledger) flush(seg *segment, buf []byte, marks []int64, next int64) error {
	if len(buf) == 0 {
		return nil
	}
	if _, err := l.active.WriteAt(buf, l.activeSize); err != nil {
		l.undo()
		return fmt.Errorf("ledger: write %s: %w", seg.path, err)
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
	l.activeSize += int64(len(buf))
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
