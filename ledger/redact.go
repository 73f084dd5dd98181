package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// A Redaction is the content of a redacted record: why and when its
// content was erased.
type Redaction struct {
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// Redaction returns the redaction a KindRedacted record holds.
func (r Record) Redaction() (Redaction, error) {
	if r.Kind != KindRedacted {
		return Redaction{}, fmt.Errorf("ledger: record %d is not redacted", r.Index)
	}
	var red Redaction
	if err := json.Unmarshal(r.Content, &red); err != nil {
		return Redaction{}, fmt.Errorf("ledger: record %d: bad redaction: %w", r.Index, err)
	}
	return red, nil
}

// Redact erases the content of the given event records, keeping their
// content hashes, so that the tree, every proof and every checkpoint
// still verify while the content (personal data, a leaked secret) is
// gone from the ledger. Each record becomes a KindRedacted record that
// holds reason and the time. Records already redacted are left as they
// are; the ledger's own meta records cannot be redacted.
//
// Each affected segment is rewritten to a temporary file that replaces
// the original by rename once fsynced, so a crash leaves one or the
// other. Appends wait while Redact runs. The erased bytes are unlinked,
// not overwritten: the file system may keep them in free blocks.
func (l *Ledger) Redact(ctx context.Context, indexes []int64, reason string) error {
	if reason == "" {
		return errors.New("ledger: redact: a reason is required")
	}
	indexes = slices.Clone(indexes)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)
	if len(indexes) == 0 {
		return nil
	}
	if n := l.Size(); indexes[0] < 0 || indexes[len(indexes)-1] >= n {
		return fmt.Errorf("ledger: redact: indexes must be in 0..%d", n-1)
	}
	content, err := json.Marshal(Redaction{Reason: reason, Time: l.opts.Now().UTC()})
	if err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	if len(content) > MaxContent {
		return errors.New("ledger: redact: reason too long")
	}
	return l.exclusive(ctx, func() error {
		for len(indexes) > 0 {
			seg := l.segmentFor(indexes[0])
			n := 1
			for n < len(indexes) && l.segmentFor(indexes[n]) == seg {
				n++
			}
			if err := l.redactSegment(seg, indexes[:n], content); err != nil {
				return err
			}
			l.log.Info("redacted records", "segment", seg.path, "records", n, "reason", reason)
			indexes = indexes[n:]
		}
		return nil
	})
}

// redactSegment rewrites seg with the records at indexes (sorted, all in
// seg) redacted. It runs in the writer, so the active segment is not
// being appended to.
func (l *Ledger) redactSegment(seg *segment, indexes []int64, content []byte) error {
	if err := seg.index(); err != nil {
		return err
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if seg.removed || indexes[0] < seg.first || indexes[len(indexes)-1] >= seg.end() {
		return fmt.Errorf("ledger: redact %d: %w", indexes[0], ErrRemoved)
	}
	in, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	defer in.Close()
	tmp := seg.path + tmpSuffix
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()

	w := bufio.NewWriterSize(out, 1<<20)
	r := newSegReader(in, seg.size)
	defer r.release()
	var (
		marks      []int64
		off, pos   int64
		frame, red []byte
	)
	for i := seg.first; off < seg.size; i++ {
		rec, end, err := r.frame(off, false)
		if err != nil {
			return corrupt(seg.path, i, err)
		}
		if rec.Index != i {
			return corrupt(seg.path, i, fmt.Errorf("frame at offset %d claims index %d", off, rec.Index))
		}
		if (i-seg.first)%markEvery == 0 {
			marks = append(marks, pos)
		}
		if len(indexes) > 0 && indexes[0] == i {
			indexes = indexes[1:]
			switch rec.Kind {
			case KindMeta:
				return fmt.Errorf("ledger: redact: record %d is one of the ledger's own records", i)
			case KindEvent:
				red = appendFrame(red[:0], KindRedacted, rec.last, i, rec.ContentHash, content)
				frame = red
			default:
				frame, _ = r.view(off, int(end-off))
			}
		} else {
			frame, _ = r.view(off, int(end-off))
		}
		if _, err := w.Write(frame); err != nil {
			return fmt.Errorf("ledger: redact: %w", err)
		}
		off, pos = end, pos+int64(len(frame))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	if err := os.Rename(tmp, seg.path); err != nil {
		return fmt.Errorf("ledger: redact: %w", err)
	}
	ok = true
	seg.size, seg.marks = pos, marks
	if seg == l.activeSegment() {
		// The writer's descriptor still points at the replaced file.
		l.active.Close()
		l.active, l.activeSize = out, pos
	} else {
		out.Close()
	}
	return syncDir(l.dir)
}
