package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	segPrefix = "seg-"
	segSuffix = ".log"
	// markEvery is how many records apart the in-memory offset marks of a
	// segment are: Read scans at most that many frames past a mark.
	markEvery = 64
)

func segName(first int64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// parseSegName returns the first index of a segment file name.
func parseSegName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// listSegments returns the first indexes of the segments in dir, sorted.
func listSegments(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []int64
	for _, e := range ents {
		if n, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, n)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// A segment is one file of consecutive records.
type segment struct {
	first int64
	path  string

	mu sync.Mutex
	// Known after the segment has been read once (at Open for the active
	// segment, on first use for the others); the writer keeps them
	// current for the active segment.
	indexed bool
	count   int64   // records
	size    int64   // bytes of complete frames
	marks   []int64 // offset of record first+i*markEvery
	removed bool    // deleted by retention
}

// end returns the index after the segment's last record; the segment
// must be indexed.
func (s *segment) end() int64 { return s.first + s.count }

// index reads the segment to learn its record count and offset marks.
func (s *segment) index() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexed {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	r := newSegReader(f, st.Size())
	defer r.release()
	var marks []int64
	off, next := int64(0), s.first
	for off < st.Size() {
		rec, end, err := r.frame(off, false)
		if err != nil {
			return corrupt(s.path, next, err)
		}
		if rec.Index != next {
			return corrupt(s.path, next, fmt.Errorf("frame at offset %d claims index %d", off, rec.Index))
		}
		if (next-s.first)%markEvery == 0 {
			marks = append(marks, off)
		}
		off, next = end, next+1
	}
	s.indexed, s.count, s.size, s.marks = true, next-s.first, off, marks
	return nil
}

// ErrCorrupt is wrapped by errors about records that cannot be read as
// written; Verify says what happened to them.
var ErrCorrupt = errors.New("ledger is damaged or was tampered with; run verify")

// ErrRemoved is wrapped by errors about a record whose segment was removed
// by retention: it is still in the tree, but its content is gone.
var ErrRemoved = errors.New("record is no longer stored (removed by retention)")

func corrupt(path string, index int64, err error) error {
	return fmt.Errorf("ledger: %s: record %d: %w (%w)", filepath.Base(path), index, err, ErrCorrupt)
}

// syncDir makes changes to dir's entries (created, renamed, removed
// files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ledger: sync directory %s: %w", dir, err)
	}
	return nil
}
