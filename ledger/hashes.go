package ledger

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

// hashFile is the file of stored tree hashes: hash i (as numbered by
// tlog.StoredHashIndex) at byte 32*i. It is derived from the segments and
// lets proofs and root hashes be answered with a handful of reads instead
// of a pass over the records; Open rebuilds what it cannot trust.
//
// Only the writer goroutine adds hashes. Readers read with ReadAt below
// the published tree size, which only grows after the hashes for it are
// written.
type hashFile struct {
	f       *os.File
	n       int64       // hashes written to f
	pending []tlog.Hash // hashes n, n+1, … not yet written
}

func openHashFile(path string) (*hashFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &hashFile{f: f, n: st.Size() / tlog.HashSize}, nil
}

// ReadHashes implements tlog.HashReader for the writer, which may need
// hashes it has computed but not yet written.
func (h *hashFile) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= h.n {
			if x-h.n >= int64(len(h.pending)) {
				return nil, fmt.Errorf("ledger: stored hash %d not yet computed", x)
			}
			out[i] = h.pending[x-h.n]
			continue
		}
		if err := readHash(h.f, x, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// add computes and queues the stored hashes for record n.
func (h *hashFile) add(n int64, leaf tlog.Hash) error {
	if want := tlog.StoredHashIndex(0, n); h.n+int64(len(h.pending)) != want {
		return fmt.Errorf("ledger: hashes file out of step: have %d hashes, record %d needs %d", h.n+int64(len(h.pending)), n, want)
	}
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, h)
	if err != nil {
		return err
	}
	h.pending = append(h.pending, hs...)
	return nil
}

func (h *hashFile) flush() error {
	if len(h.pending) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(h.pending)*tlog.HashSize)
	for _, x := range h.pending {
		buf = append(buf, x[:]...)
	}
	if _, err := h.f.WriteAt(buf, h.n*tlog.HashSize); err != nil {
		return fmt.Errorf("ledger: write %s: %w", h.f.Name(), err)
	}
	h.n += int64(len(h.pending))
	h.pending = h.pending[:0]
	return nil
}

// truncate drops everything from hash n on.
func (h *hashFile) truncate(n int64) error {
	h.pending = h.pending[:0]
	if err := h.f.Truncate(n * tlog.HashSize); err != nil {
		return fmt.Errorf("ledger: truncate %s: %w", h.f.Name(), err)
	}
	h.n = n
	return nil
}

func readHash(r io.ReaderAt, index int64, h *tlog.Hash) error {
	if _, err := r.ReadAt(h[:], index*tlog.HashSize); err != nil {
		return fmt.Errorf("ledger: read stored hash %d: %w", index, err)
	}
	return nil
}

// fileHashes reads stored hashes from a hashes file that holds at least
// max of them; it serves proofs, which never ask past the tree they are
// about.
type fileHashes struct {
	r   io.ReaderAt
	max int64
}

func (fh fileHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= fh.max {
			return nil, fmt.Errorf("ledger: stored hash %d is outside the tree (%d hashes)", x, fh.max)
		}
		if err := readHash(fh.r, x, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordsCovered returns the number of records whose stored hashes all
// fit in n hashes.
func recordsCovered(n int64) int64 {
	// StoredHashCount(r) is between 2r-log₂r-1 and 2r, so r is near n/2.
	lo, hi := int64(0), n+1
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if tlog.StoredHashCount(mid) <= n {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// A frontier builds a tree hash from its leaves in order while keeping
// only the hashes of its complete subtrees on the right edge (at most one
// per level), so a whole ledger can be rehashed in constant memory.
type frontier struct {
	n      int64       // leaves pushed
	hashes []tlog.Hash // complete subtrees, largest first
}

// push adds a complete subtree of 2^level leaves; the frontier's size
// must be a multiple of 2^level. It calls stored, if not nil, with every
// hash the push completes, in stored-hash order, for comparison against a
// hashes file.
func (f *frontier) push(level int, h tlog.Hash, stored func(level int, n int64, h tlog.Hash)) {
	n := f.n >> level
	if stored != nil {
		stored(level, n, h)
	}
	for l := level; n&1 == 1; l++ {
		h = tlog.NodeHash(f.hashes[len(f.hashes)-1], h)
		f.hashes = f.hashes[:len(f.hashes)-1]
		n >>= 1
		if stored != nil {
			stored(l+1, n, h)
		}
	}
	f.hashes = append(f.hashes, h)
	f.n += 1 << level
}

// root returns the tree hash of the leaves pushed so far.
func (f *frontier) root() tlog.Hash {
	if len(f.hashes) == 0 {
		// RFC 6962's hash of the empty tree, as tlog.TreeHash(0, …).
		return sha256.Sum256(nil)
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.hashes[i], h)
	}
	return h
}
