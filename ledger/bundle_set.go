package ledger

// Bundle sets: an export whose events are in several ledgers (a
// scale-out's partitions, a ledger each) is a bundle per ledger, each
// proving its events against its own ledger's checkpoint, packed in one
// zip. The zip itself is not signed: what binds the parts together is in
// each part's signed custody record (Custody.Set, Part, Parts), so a part
// taken out, added from another export or put in twice is found.

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

var partName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}\.zip$`)

// A BundleSetWriter writes the zip of a set of bundles, a part at a
// time, each stored as WriteBundle writes it: a bundle is compressed
// already, and its bytes are what its manifest's signature covers.
type BundleSetWriter struct {
	zw *zip.Writer
}

// NewBundleSetWriter returns a writer of a set to w.
func NewBundleSetWriter(w io.Writer) *BundleSetWriter {
	return &BundleSetWriter{zw: zip.NewWriter(w)}
}

// Part starts the next part, named name (letters, digits, '.', '_' and
// '-', ending in .zip), and returns the writer of its bundle, valid
// until the next Part or Close.
func (s *BundleSetWriter) Part(name string) (io.Writer, error) {
	if !partName.MatchString(name) {
		return nil, fmt.Errorf("ledger: bundle set: %q is not a part's name", name)
	}
	w, err := s.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle set: %w", err)
	}
	return w, nil
}

// Close writes the end of the set's zip.
func (s *BundleSetWriter) Close() error {
	if err := s.zw.Close(); err != nil {
		return fmt.Errorf("ledger: bundle set: %w", err)
	}
	return nil
}

// ErrNotBundleSet is returned by VerifyBundleSet for a zip that is a
// single bundle, or holds anything but bundles.
var ErrNotBundleSet = errors.New("ledger: not a bundle set")

// A BundleSetReport is what VerifyBundleSet found: each part's report,
// and what is wrong with the set as a whole.
type BundleSetReport struct {
	Set      string // the set's id, as its parts' custody states it
	Parts    []BundleSetPartReport
	Problems []string
}

// A BundleSetPartReport is the report of one part.
type BundleSetPartReport struct {
	Name string
	*BundleReport
}

// OK reports whether the set verified: every part, and the set whole.
func (r *BundleSetReport) OK() bool {
	if len(r.Problems) > 0 || len(r.Parts) == 0 {
		return false
	}
	for _, p := range r.Parts {
		if !p.OK() {
			return false
		}
	}
	return true
}

// Events is the number of event records that verified, over the parts.
func (r *BundleSetReport) Events() int {
	n := 0
	for _, p := range r.Parts {
		n += p.BundleReport.Events
	}
	return n
}

// VerifyBundleSet checks a set of bundles offline: each part as
// VerifyBundle does, with opts (but Trusted, refused: a witness's
// checkpoints are checked against the part of their ledger, unzipped),
// and that the parts are those of one set, each once and none missing. It returns
// ErrNotBundleSet for a zip that is not a set (a single bundle is
// checked with VerifyBundle).
func VerifyBundleSet(r io.ReaderAt, size int64, opts BundleVerifyOptions) (*BundleSetReport, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle set: %w", err)
	}
	if len(zr.File) == 0 {
		return nil, ErrNotBundleSet
	}
	for _, f := range zr.File {
		if !partName.MatchString(f.Name) || f.Method != zip.Store {
			return nil, ErrNotBundleSet
		}
	}
	if len(opts.Trusted) > 0 {
		// A witness's checkpoints are of one ledger, and each part is
		// of another.
		return nil, errors.New("ledger: bundle set: trusted checkpoints are checked against one part at a time: unzip the set and verify the part of their ledger")
	}
	rep := &BundleSetReport{}
	parts := map[int]string{} // part number → name
	for _, f := range zr.File {
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("ledger: bundle set: %s: %w", f.Name, err)
		}
		part := io.NewSectionReader(r, off, int64(f.CompressedSize64))
		br, err := VerifyBundle(part, part.Size(), opts)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", f.Name, err))
			continue
		}
		rep.Parts = append(rep.Parts, BundleSetPartReport{Name: f.Name, BundleReport: br})
		c := br.Custody
		switch {
		case c.Set == "" || c.Parts < 1:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: its custody names no set: a bundle on its own", f.Name))
			continue
		case rep.Set == "":
			rep.Set = c.Set
		case c.Set != rep.Set:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: a part of set %s, not of %s", f.Name, c.Set, rep.Set))
			continue
		}
		if c.Parts != len(zr.File) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: part %d of %d, but the set holds %d", f.Name, c.Part, c.Parts, len(zr.File)))
		}
		if other, dup := parts[c.Part]; dup {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: part %d again (%s is)", f.Name, c.Part, other))
		}
		parts[c.Part] = f.Name
	}
	var missing []string
	for i := 1; i <= len(zr.File); i++ {
		if _, ok := parts[i]; !ok {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 && len(rep.Problems) == 0 {
		rep.Problems = append(rep.Problems, "parts missing: "+strings.Join(missing, ", "))
	}
	slices.SortFunc(rep.Parts, func(a, b BundleSetPartReport) int { return a.Custody.Part - b.Custody.Part })
	return rep, nil
}
