package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// A Range is the inclusive range of indexes First..Last.
type Range struct {
	First, Last int64
}

// A Removal says what RemoveBefore did.
type Removal struct {
	// Index is the meta record that documents the removal, or -1 if
	// nothing was removed.
	Index   int64
	Removed []Range // segments deleted
	Held    []Range // segments kept because Options.Hold said so
	// Size and RootBefore are the tree just before the meta record;
	// RootAfter is the tree with it (Size+1 records), computed after the
	// segments were deleted: the tree is not shrunk, only stored content
	// is.
	Size       int64
	RootBefore tlog.Hash
	RootAfter  tlog.Hash
}

// metaRecord is the content of a KindMeta record.
type metaRecord struct {
	Type string `json:"type"`
	// For Type "retention":
	Reason   string         `json:"reason,omitempty"`
	Time     time.Time      `json:"time"`
	Before   int64          `json:"before"`
	TreeSize int64          `json:"tree_size"`
	Root     tlog.Hash      `json:"root"`
	Removed  []removedRange `json:"removed,omitempty"`
}

const metaRetention = "retention"

// removedRange is one deleted segment's records and the hashes of the
// complete subtrees that cover them, so the tree can still be computed
// (and Verify can still check it) without them.
type removedRange struct {
	First    int64     `json:"first"`
	Last     int64     `json:"last"`
	Subtrees []subtree `json:"subtrees"`
}

type subtree struct {
	Level int       `json:"level"`
	N     int64     `json:"n"`
	Hash  tlog.Hash `json:"hash"`
}

// subtrees returns the coordinates of the complete subtrees that exactly
// cover records lo..hi-1, left to right: the shape a frontier at lo
// needs to advance to hi.
func subtrees(lo, hi int64) []subtree {
	var out []subtree
	for lo < hi {
		level := 0
		for lo&(1<<level) == 0 && lo+(2<<level) <= hi && level < 62 {
			level++
		}
		out = append(out, subtree{Level: level, N: lo >> level})
		lo += 1 << level
	}
	return out
}

// RemoveBefore deletes the segments whose records all have indexes below
// index, except the segment being appended to and those Options.Hold
// keeps, and records what it removed in a KindMeta record appended first.
// The tree keeps the removed records' hashes: its root, the proofs of the
// records kept and every checkpoint stay valid, and Verify reports the
// range as removed by retention, not as deleted. If the ledger signs
// checkpoints, one is written after the removal so the meta record is
// covered by a signature.
func (l *Ledger) RemoveBefore(ctx context.Context, index int64, reason string) (Removal, error) {
	if reason == "" {
		return Removal{}, errors.New("ledger: remove: a reason is required")
	}
	rm := Removal{Index: -1}
	err := l.exclusive(ctx, func() error {
		var doomed []*segment
		l.smu.RLock()
		segs := append([]*segment(nil), l.segs...)
		l.smu.RUnlock()
		for i := 0; i+1 < len(segs) && segs[i+1].first <= index; i++ {
			seg := segs[i]
			if err := seg.index(); err != nil {
				return err
			}
			if seg.count == 0 {
				continue
			}
			r := Range{seg.first, seg.end() - 1}
			if l.opts.Hold != nil && l.opts.Hold(r.First, r.Last) {
				rm.Held = append(rm.Held, r)
				continue
			}
			doomed = append(doomed, seg)
			rm.Removed = append(rm.Removed, r)
		}
		if len(doomed) == 0 {
			return nil
		}
		size := l.Size()
		hr, err := l.reader(size)
		if err != nil {
			return err
		}
		meta := metaRecord{Type: metaRetention, Reason: reason, Time: l.opts.Now().UTC(), Before: index, TreeSize: size}
		if meta.Root, err = tlog.TreeHash(size, hr); err != nil {
			return fmt.Errorf("ledger: remove: %w", err)
		}
		for _, r := range rm.Removed {
			rr := removedRange{First: r.First, Last: r.Last, Subtrees: subtrees(r.First, r.Last+1)}
			for i, st := range rr.Subtrees {
				hs, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(st.Level, st.N)})
				if err != nil {
					return fmt.Errorf("ledger: remove: %w", err)
				}
				rr.Subtrees[i].Hash = hs[0]
			}
			meta.Removed = append(meta.Removed, rr)
		}
		content, err := json.Marshal(meta)
		if err != nil {
			return fmt.Errorf("ledger: remove: %w", err)
		}
		req := &request{}
		req.appendRecord(KindMeta, content)
		req.finish()
		// Inside the writer already: commit directly. The meta record is
		// durable before any segment goes, so a crash in between leaves
		// a removal announced but not done, never the reverse.
		if err := l.write([]*request{req}); err != nil {
			l.failed = fmt.Errorf("ledger: an earlier write failed; reopen the ledger: %w", err)
			return err
		}
		rm.Index, rm.Size, rm.RootBefore = req.first, size, meta.Root
		for _, seg := range doomed {
			seg.mu.Lock()
			seg.removed = true
			err := os.Remove(seg.path)
			seg.mu.Unlock()
			if err != nil {
				return fmt.Errorf("ledger: remove: %w", err)
			}
		}
		if err := syncDir(l.dir); err != nil {
			return err
		}
		l.smu.Lock()
		kept := l.segs[:0]
		for _, seg := range l.segs {
			if !seg.removed {
				kept = append(kept, seg)
			}
		}
		l.segs = kept
		l.smu.Unlock()
		if rm.RootAfter, err = l.RootHash(size + 1); err != nil {
			return err
		}
		l.log.Info("removed segments by retention", "before", index, "removed", rm.Removed, "held", rm.Held, "record", rm.Index)
		return nil
	})
	if err != nil || rm.Index < 0 || l.opts.Signer == nil {
		return rm, err
	}
	_, err = l.Checkpoint(ctx)
	return rm, err
}
