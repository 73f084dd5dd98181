package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// A View reads a ledger that another process holds open and appends to
// (a scale-out's partition ledger, held by the process node that leases
// the partition) to prove its records: those its latest signed
// checkpoint covers, which are whole on disk whatever the writer is
// doing past them. It takes no lock and writes nothing, so it neither
// waits for the writer nor repairs what a crash left: records past the
// checkpoint are not its to read.
type View struct {
	dir string
}

// OpenView returns a View of the ledger in dir.
func OpenView(dir string) (*View, error) {
	if _, err := os.Stat(filepath.Join(dir, checkpointDir)); err != nil {
		return nil, fmt.Errorf("ledger: no ledger in %s: %w", dir, err)
	}
	return &View{dir: dir}, nil
}

// covered returns the latest signed checkpoint, which must cover index.
func (v *View) covered(index int64) ([]byte, Checkpoint, error) {
	signed, c, err := readLatest(v.dir)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if signed == nil || index < 0 || index >= c.Size {
		return nil, Checkpoint{}, fmt.Errorf("ledger: record %d is not covered by a signed checkpoint yet (%d records are)", index, c.Size)
	}
	return signed, c, nil
}

// Read returns the record at index, which a signed checkpoint covers.
func (v *View) Read(index int64) (Record, error) {
	if _, _, err := v.covered(index); err != nil {
		return Record{}, err
	}
	firsts, err := listSegments(v.dir)
	if err != nil {
		return Record{}, fmt.Errorf("ledger: %w", err)
	}
	i := sort.Search(len(firsts), func(i int) bool { return firsts[i] > index }) - 1
	if i < 0 {
		return Record{}, fmt.Errorf("ledger: read %d: %w", index, ErrRemoved)
	}
	path := filepath.Join(v.dir, segName(firsts[i]))
	f, err := os.Open(path)
	if err != nil {
		return Record{}, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Record{}, fmt.Errorf("ledger: %w", err)
	}
	// Front to back: a View keeps no offsets, and a record read for a
	// proof is worth a segment's scan (milliseconds from the page cache).
	r := newSegReader(f, st.Size())
	defer r.release()
	for off, at := int64(0), firsts[i]; off < st.Size() && at <= index; at++ {
		rec, end, err := r.frame(off, false)
		if err != nil {
			return Record{}, corrupt(path, at, err)
		}
		if rec.Index != at {
			return Record{}, corrupt(path, at, fmt.Errorf("frame at offset %d claims index %d", off, rec.Index))
		}
		if at == index {
			if rec.Kind == 0 {
				return Record{}, fmt.Errorf("ledger: read %d: %w", index, ErrRemoved)
			}
			rec.Content = append([]byte(nil), rec.Content...)
			return rec, nil
		}
		off = end
	}
	return Record{}, corrupt(path, index, fmt.Errorf("the segment ends before it"))
}

// signedCheckpoint implements bundleSource: the latest signed checkpoint.
func (v *View) signedCheckpoint(context.Context) ([]byte, error, error) {
	signed, _, err := readLatest(v.dir)
	if err == nil && signed == nil {
		err = fmt.Errorf("ledger: %s has no signed checkpoint yet", v.dir)
	}
	return signed, nil, err
}

func (v *View) hashes(size int64) (tlog.HashReader, func(), error) {
	f, err := os.Open(filepath.Join(v.dir, hashesName))
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	return fileHashes{r: f, max: tlog.StoredHashCount(size)}, func() { f.Close() }, nil
}

func (v *View) directory() string { return v.dir }

// A View keeps no marks and reads a segment from its start: one scan
// from the first record wanted to the last reads each segment once.
func (v *View) gap() int64     { return math.MaxInt64 }
func (v *View) now() time.Time { return time.Now() }

// scan calls fn with the records from index from to index to, front to
// back through each segment (a View keeps no offsets), skipping those
// retention removed, as a Ledger's Scan does. The caller keeps to what a
// signed checkpoint covers: those records are whole on disk.
func (v *View) scan(from, to int64, fn func(Record) error) error {
	firsts, err := listSegments(v.dir)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	i := sort.Search(len(firsts), func(i int) bool { return firsts[i] > from }) - 1
	for i = max(i, 0); i < len(firsts) && firsts[i] < to; i++ {
		if err := v.scanSegment(firsts[i], from, to, fn); err != nil {
			return err
		}
	}
	return nil
}

func (v *View) scanSegment(first, from, to int64, fn func(Record) error) error {
	path := filepath.Join(v.dir, segName(first))
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed by retention meanwhile
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	r := newSegReader(f, st.Size())
	defer r.release()
	for off, at := int64(0), first; off < st.Size() && at < to; at++ {
		rec, end, err := r.frame(off, false)
		if err != nil {
			return corrupt(path, at, err)
		}
		if rec.Index != at {
			return corrupt(path, at, fmt.Errorf("frame at offset %d claims index %d", off, rec.Index))
		}
		if at >= from && rec.Kind != 0 {
			if err := fn(rec); err != nil {
				return err
			}
		}
		off = end
	}
	return nil
}

// CheckpointCovering returns the latest signed checkpoint if it covers
// index. Unlike a Ledger's, it signs none: the writer signs them (every
// Options.CheckpointEvery), so a record just appended waits for the next.
func (v *View) CheckpointCovering(_ context.Context, index int64) ([]byte, Checkpoint, error) {
	return v.covered(index)
}

// InclusionProof returns the proof that record index is in the tree of
// size treeSize, read from the writer's hashes file, which holds the
// hashes of every record the writer acknowledged.
func (v *View) InclusionProof(index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("ledger: inclusion proof: record %d is not in a tree of size %d", index, treeSize)
	}
	f, err := os.Open(filepath.Join(v.dir, hashesName))
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	p, err := tlog.ProveRecord(treeSize, index, fileHashes{r: f, max: tlog.StoredHashCount(treeSize)})
	if err != nil {
		return nil, fmt.Errorf("ledger: inclusion proof of %d in %d: %w", index, treeSize, err)
	}
	return p, nil
}
