package ledger

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// BundleVerifyOptions configure VerifyBundle.
type BundleVerifyOptions struct {
	// Key is the verifier key the bundle must be signed with: what
	// `vigil key` printed on the server, obtained some other way than
	// from the bundle. Empty means the bundle's own key.pub, which
	// shows the bundle is intact but not which ledger it came from:
	// anyone can sign a bundle with a key of their own.
	// BundleReport.TrustedKey says which it was.
	Key string
	// Trusted are checkpoints obtained outside the bundle, such as a
	// witness's copies (SplitCheckpoints reads a FileWitness file). The
	// bundle's checkpoint must agree with each: the same root if it has
	// the same size, and a proof in consistency.ndjson that its tree
	// extends it if it is smaller. Newer ones cannot be compared
	// offline and are reported as not checked; at least one must be
	// checked. Trusted checkpoints are checked with the same key as the
	// bundle, so even without Key they expose a bundle signed by a key
	// other than the ledger's.
	Trusted [][]byte
	// MaxBytes bounds the total uncompressed size of the files in the
	// bundle; 0 means 4 GiB. A bundle declaring more is refused before
	// anything is decompressed, and no file is read past what it
	// declares.
	MaxBytes int64
}

// A BundleReport is what VerifyBundle found. The bundle is proved only
// if OK; the counts say how far its records checked out.
type BundleReport struct {
	Checkpoint Checkpoint // the bundle's checkpoint, if its signature verified
	Key        string     // the verifier key signatures were checked with
	TrustedKey bool       // Key came from the options, not from the bundle
	Custody    Custody    // as the bundle states it
	Events     int        // event records whose content, proof and events.ndjson line verified
	Redacted   int        // redacted records whose content hash and proof verified
	// Trusted is the outcome for each of BundleVerifyOptions.Trusted.
	Trusted  []CheckpointResult
	Problems []BundleProblem
}

// OK reports whether the bundle verified: no problem was found.
func (r *BundleReport) OK() bool { return len(r.Problems) == 0 }

// A BundleProblem is one thing wrong with a bundle.
type BundleProblem struct {
	// File is the file in the zip concerned, "" for the zip as a
	// whole, or "trusted #i" for BundleVerifyOptions.Trusted[i].
	File   string
	Seq    int64 // the record concerned, or -1
	Detail string
}

func (p BundleProblem) String() string {
	var b strings.Builder
	if p.File == "" {
		b.WriteString("zip")
	} else {
		b.WriteString(p.File)
	}
	if p.Seq >= 0 {
		fmt.Fprintf(&b, ": record %d", p.Seq)
	}
	return b.String() + ": " + p.Detail
}

const (
	defaultBundleMaxBytes = 4 << 30
	// maxBundleProblems bounds the report of a hostile bundle; the last
	// problem says how many more there were.
	maxBundleProblems = 1000
	// maxRecordLine bounds a line of records.ndjson: the base64 of the
	// largest content and a proof.
	maxRecordLine = MaxContent/3*4 + 1<<20
)

// maxFileBytes bounds the files read whole into memory.
var maxFileBytes = map[string]int64{
	bundleConsistency: 16 << 20,
	bundleCheckpoint:  64 << 10,
	bundleKey:         64 << 10,
	bundleCustody:     1 << 20,
	bundleManifest:    1 << 20,
	bundleManifestSig: 64 << 10,
}

// VerifyBundle checks an evidence bundle written by WriteBundle,
// offline: it needs only the zip and, to know which ledger the bundle
// comes from, the ledger's verifier key (opts.Key). It checks that
//
//   - the zip holds exactly the files of a bundle, once each, and is
//     byte for byte in the canonical form WriteBundle writes, so no
//     byte outside the files' contents can change unnoticed;
//   - manifest.sig is a signature by the key, in canonical form, of
//     manifest.json's SHA-256, and every other file's size and SHA-256,
//     before and after deflation, match manifest.json;
//   - checkpoint.note is signed by the key (and key.pub is the key, if
//     opts.Key is given);
//   - every line of records.ndjson is canonical JSON, in increasing seq
//     order below the checkpoint's size; an event's content has the
//     SHA-256 content_hash, decodes (DecodeEvent), and renders to
//     exactly the same line of events.ndjson; a redacted record has no
//     content; and each content_hash is in the checkpoint's tree at
//     seq (tlog.CheckRecord of the leaf LeafHashOf(content_hash));
//   - events.ndjson has no more lines than records.ndjson;
//   - custody.json's counts, ledger name and checkpoint size are the
//     bundle's;
//   - the checkpoint agrees with opts.Trusted (see there).
//
// Everything found wrong is in the report's Problems. The error is for
// what stopped the check: input that is not a zip file, a bad opts.Key,
// or a bundle larger than opts.MaxBytes. Nothing is written to disk,
// so file names in the zip are only compared, never used as paths.
func VerifyBundle(r io.ReaderAt, size int64, opts BundleVerifyOptions) (*BundleReport, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultBundleMaxBytes
	}
	opts.Key = strings.TrimSpace(opts.Key)
	bv := &bundleVerifier{
		r: r, size: size, opts: opts,
		rep:   &BundleReport{},
		files: map[string]*zip.File{},
		sums:  map[string]contentSum{},
	}
	if opts.Key != "" {
		v, err := note.NewVerifier(opts.Key)
		if err != nil {
			return nil, fmt.Errorf("ledger: verify bundle: key: %w", err)
		}
		bv.v, bv.rep.Key, bv.rep.TrustedKey = v, opts.Key, true
	}
	zr, err := zip.NewReader(r, size)
	// The names ErrInsecurePath objects to are unexpected files, and
	// reported as such.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("ledger: verify bundle: not a zip file: %w", err)
	}
	bv.zr = zr
	if err := bv.checkEntries(); err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for _, name := range bundleFiles {
		if name != bundleEvents && name != bundleRecords {
			data[name] = bv.read(name)
		}
	}
	bv.checkKey(data[bundleKey])
	bv.checkManifest(data[bundleManifest], data[bundleManifestSig])
	bv.checkCheckpoint(data[bundleCheckpoint])
	bv.checkRecords()
	bv.checkTrusted(data[bundleConsistency])
	bv.checkCustody(data[bundleCustody])
	bv.checkCanonical()
	if bv.dropped > 0 {
		bv.rep.Problems = append(bv.rep.Problems, BundleProblem{Seq: -1, Detail: fmt.Sprintf("and %d more problems", bv.dropped)})
	}
	return bv.rep, nil
}

type bundleVerifier struct {
	r    io.ReaderAt
	size int64
	opts BundleVerifyOptions
	rep  *BundleReport
	zr   *zip.Reader

	files    map[string]*zip.File  // the expected files, by name
	sums     map[string]contentSum // of the files read in full
	manifest map[string]fileSum    // nil unless manifest.json parsed
	v        note.Verifier         // nil without a usable key
	cp       *Checkpoint           // nil unless checkpoint.note verified
	// zipTime is the checkpoint's time, which the canonical form of the
	// zip uses, even if the checkpoint's signature failed.
	zipTime time.Time

	nEvents, nRedacted int // records of each kind, verified or not
	dropped            int // problems beyond maxBundleProblems
}

// A contentSum is what reading a file's content found.
type contentSum struct {
	size   int64
	sha256 [32]byte
	crc    uint32
}

func (bv *bundleVerifier) problem(file string, seq int64, format string, args ...any) {
	if len(bv.rep.Problems) >= maxBundleProblems {
		bv.dropped++
		return
	}
	bv.rep.Problems = append(bv.rep.Problems, BundleProblem{File: file, Seq: seq, Detail: fmt.Sprintf(format, args...)})
}

// checkEntries checks the zip's list of files and its declared size.
func (bv *bundleVerifier) checkEntries() error {
	var total uint64
	for _, f := range bv.zr.File {
		total += f.UncompressedSize64
		if total > uint64(bv.opts.MaxBytes) || f.UncompressedSize64 > uint64(bv.opts.MaxBytes) {
			return fmt.Errorf("ledger: verify bundle: its files declare more than %d bytes in all (BundleVerifyOptions.MaxBytes)", bv.opts.MaxBytes)
		}
		switch {
		case !slices.Contains(bundleFiles, f.Name):
			bv.problem("", -1, "unexpected file %q", f.Name)
		case bv.files[f.Name] != nil:
			bv.problem(f.Name, -1, "is in the zip more than once")
		default:
			bv.files[f.Name] = f
		}
	}
	for _, name := range bundleFiles {
		if bv.files[name] == nil {
			bv.problem(name, -1, "missing")
		}
	}
	return nil
}

// open opens a file of the bundle for reading its content, or returns
// nil if it is missing.
func (bv *bundleVerifier) open(name string) *sumReader {
	f := bv.files[name]
	if f == nil {
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		bv.problem(name, -1, "%v", err)
		return nil
	}
	return &sumReader{name: name, rc: rc, size: int64(f.UncompressedSize64), sha: sha256.New(), crc: crc32.NewIEEE()}
}

// bufSize is the size of a buffer for reading n bytes: small bundles are
// verified by the thousand in tests and fuzzing.
func bufSize(n int64) int {
	return int(min(max(n, 4<<10), 64<<10))
}

// done reads what is left of the file, closes it and records its sums.
func (bv *bundleVerifier) done(sr *sumReader) {
	_, err := io.Copy(io.Discard, sr)
	sr.rc.Close()
	if err := cmpErr(sr.err, err); err != nil {
		bv.problem(sr.name, -1, "read: %v", err)
		return
	}
	var s contentSum
	s.size, s.crc = sr.n, sr.crc.Sum32()
	sr.sha.Sum(s.sha256[:0])
	bv.sums[sr.name] = s
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// read returns the content of a small file, or nil if it is missing or
// unreadable.
func (bv *bundleVerifier) read(name string) []byte {
	f := bv.files[name]
	if f == nil {
		return nil
	}
	if limit := maxFileBytes[name]; f.UncompressedSize64 > uint64(limit) {
		bv.problem(name, -1, "%d bytes, more than such a file can hold (%d)", f.UncompressedSize64, limit)
		return nil
	}
	sr := bv.open(name)
	if sr == nil {
		return nil
	}
	b, err := io.ReadAll(sr)
	sr.err = cmpErr(sr.err, err)
	bv.done(sr)
	if _, ok := bv.sums[name]; !ok {
		return nil
	}
	return b
}

// A sumReader reads a file's content, keeping its size, SHA-256 and
// CRC-32, and the first error.
type sumReader struct {
	name string
	rc   io.ReadCloser
	size int64 // as declared
	sha  hash.Hash
	crc  hash.Hash32
	n    int64
	err  error
}

func (s *sumReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.sha.Write(p[:n])
	s.crc.Write(p[:n])
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

func (bv *bundleVerifier) checkKey(keyPub []byte) {
	if keyPub == nil {
		return
	}
	key := strings.TrimSuffix(string(keyPub), "\n")
	if bv.rep.TrustedKey {
		if key != bv.opts.Key {
			bv.problem(bundleKey, -1, "is %q, not the trusted key %q", key, bv.opts.Key)
		}
		return
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		bv.problem(bundleKey, -1, "%v", err)
		return
	}
	bv.v, bv.rep.Key = v, key
}

// openNote checks a note's signature by bv.v and that it is exactly what
// note.Sign writes. note.Open alone would accept base64 with its unused
// bits set, or further signatures by other keys: bytes that could
// change without the signature failing.
func (bv *bundleVerifier) openNote(file string, msg []byte) (*note.Note, bool) {
	if bv.v == nil {
		bv.problem(file, -1, "signature not checked: no usable key")
		return nil, false
	}
	n, err := note.Open(msg, note.VerifierList(bv.v))
	if err != nil {
		bv.problem(file, -1, "signature: %v", err)
		return nil, false
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		bv.problem(file, -1, "has %d signatures; want only the key's", len(n.Sigs)+len(n.UnverifiedSigs))
		return nil, false
	}
	s := n.Sigs[0]
	sig, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil || n.Text+"\n— "+s.Name+" "+base64.StdEncoding.EncodeToString(sig)+"\n" != string(msg) {
		bv.problem(file, -1, "not in the form note.Sign writes")
		return nil, false
	}
	return n, true
}

func (bv *bundleVerifier) checkManifest(m, sig []byte) {
	if m == nil || sig == nil {
		return
	}
	if n, ok := bv.openNote(bundleManifestSig, sig); ok && n.Text != manifestSigText(m) {
		bv.problem(bundleManifest, -1, "does not match its signature in %s: it was changed", bundleManifestSig)
	}
	var mj bundleManifestJSON
	if err := strictJSON(m, &mj); err != nil {
		bv.problem(bundleManifest, -1, "%v", err)
		return
	}
	if mj.Format != bundleFormat {
		bv.problem(bundleManifest, -1, "format %q; this verifier knows %q", mj.Format, bundleFormat)
	}
	var names []string
	bv.manifest = map[string]fileSum{}
	for _, f := range mj.Files {
		names = append(names, f.Name)
		bv.manifest[f.Name] = f
	}
	if !slices.Equal(names, manifested) {
		bv.problem(bundleManifest, -1, "lists %q; want %q", names, manifested)
	}
}

func (bv *bundleVerifier) checkCheckpoint(signed []byte) {
	if signed == nil {
		return
	}
	if c, err := parseUnverified(signed); err == nil {
		bv.zipTime = c.Time
	}
	n, ok := bv.openNote(bundleCheckpoint, signed)
	if !ok {
		return
	}
	c, err := parseCheckpointText([]byte(n.Text))
	if err != nil {
		bv.problem(bundleCheckpoint, -1, "%v", err)
		return
	}
	bv.cp = &c
	bv.rep.Checkpoint = c
}

// checkRecords reads records.ndjson and events.ndjson side by side.
func (bv *bundleVerifier) checkRecords() {
	rr, er := bv.open(bundleRecords), bv.open(bundleEvents)
	if rr == nil || er == nil {
		for _, r := range []*sumReader{rr, er} {
			if r != nil {
				bv.done(r)
			}
		}
		return
	}
	defer bv.done(er)
	defer bv.done(rr)
	rbr, ebr := bufio.NewReaderSize(rr, bufSize(rr.size)), bufio.NewReaderSize(er, bufSize(er.size))
	var (
		rline, eline []byte
		err          error
		prev         = int64(-1)
		enc, render  lineEncoder
	)
	for i := 1; ; i++ {
		rline, err = readLine(rbr, rline, maxRecordLine)
		if err == io.EOF {
			break
		}
		if err != nil {
			// Errors reading the file are reported once, by done.
			if rr.err == nil {
				bv.problem(bundleRecords, -1, "line %d: %v", i, err)
			}
			return
		}
		seq, kind, ok := bv.record(i, rline, &prev, &enc, &render)
		// The events line is compared whatever else failed, to keep the
		// two files in step; render is empty if there is nothing to
		// compare it with.
		want := render.bytes()
		limit := len(want)
		if limit == 0 {
			limit = 1 // nothing to compare with: skip the line
		}
		eline, err = readLine(ebr, eline, limit)
		switch {
		case err == io.EOF:
			bv.problem(bundleEvents, seq, "ends at line %d, before the records do", i)
			return
		case len(want) == 0 && (err == nil || err == errLineTooLong):
		case err == errLineTooLong || err == nil && !bytes.Equal(eline, want):
			bv.problem(bundleEvents, seq, "line %d is not what the record's content says", i)
			ok = false
		case err != nil:
			if er.err == nil {
				bv.problem(bundleEvents, seq, "line %d: %v", i, err)
			}
			return
		}
		if ok && kind == KindEvent {
			bv.rep.Events++
		} else if ok && kind == KindRedacted {
			bv.rep.Redacted++
		}
	}
	if _, err := ebr.Peek(1); err != io.EOF {
		bv.problem(bundleEvents, -1, "has more lines than %s", bundleRecords)
	}
}

// record checks line i of records.ndjson. It renders into render the
// line of events.ndjson the record implies, if it can, and reports
// whether everything about the record checked out.
func (bv *bundleVerifier) record(i int, line []byte, prev *int64, enc, render *lineEncoder) (seq int64, kind Kind, ok bool) {
	render.buf.Reset()
	var rl recordLine
	if err := strictJSON(line, &rl); err != nil {
		bv.problem(bundleRecords, -1, "line %d: %v", i, err)
		return -1, 0, false
	}
	seq, ok = rl.Seq, true
	bad := func(format string, args ...any) {
		bv.problem(bundleRecords, seq, format, args...)
		ok = false
	}
	if err := enc.encode(rl); err != nil || !bytes.Equal(enc.bytes(), line) {
		bad("line %d is not in canonical form", i)
	}
	if seq <= *prev {
		bad("line %d: records must be in increasing seq order", i)
	}
	*prev = max(*prev, seq)
	if bv.cp != nil && seq >= bv.cp.Size {
		bad("not in the checkpoint's tree of %d records", bv.cp.Size)
	}
	var hash [32]byte
	if b, err := hex.DecodeString(rl.ContentHash); err != nil || len(b) != len(hash) || hex.EncodeToString(b) != rl.ContentHash {
		bad("bad content_hash %q", rl.ContentHash)
		return seq, 0, false
	}
	hex.Decode(hash[:], []byte(rl.ContentHash))
	switch rl.Kind {
	case KindEvent.String():
		kind = KindEvent
		bv.nEvents++
		if rl.Redaction != nil {
			bad("an event record with a redaction")
		}
		if sha256.Sum256(rl.Content) != hash {
			bad("content does not match content_hash")
		}
		if ev, err := DecodeEvent(rl.Content); err != nil {
			bad("content: %v", err)
		} else if err := render.event(seq, ev); err != nil {
			bad("content: %v", err)
		}
	case KindRedacted.String():
		kind = KindRedacted
		bv.nRedacted++
		switch {
		case rl.Content != nil:
			bad("a redacted record with content")
		case rl.Redaction == nil:
			bad("a redacted record without its redaction")
		default:
			if err := render.redacted(seq, hash, *rl.Redaction); err != nil {
				bad("redaction: %v", err)
			}
		}
	default:
		bad("unknown kind %q", rl.Kind)
	}
	if bv.cp == nil {
		ok = false
	} else if err := tlog.CheckRecord(rl.Proof, bv.cp.Size, bv.cp.Hash, seq, LeafHashOf(hash)); err != nil {
		bad("not proved to be in the checkpoint's tree: %v", err)
	}
	return seq, kind, ok
}

var errLineTooLong = errors.New("line too long")

// readLine reads a line, newline included, into buf. A line longer than
// limit is read to its end but not kept (errLineTooLong), so the reader
// stays at a line boundary; io.EOF means no more lines.
func readLine(br *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	long := false
	for {
		frag, err := br.ReadSlice('\n')
		if !long && len(buf)+len(frag) > limit {
			long, buf = true, buf[:0]
		}
		if !long {
			buf = append(buf, frag...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(frag) == 0 && len(buf) == 0 && !long:
			return nil, io.EOF
		case err == io.EOF:
			return nil, errors.New("last line has no newline")
		case err != nil:
			return nil, err
		case long:
			return nil, errLineTooLong
		}
		return buf, nil
	}
}

// strictJSON decodes one JSON value from b, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkTrusted checks the bundle's checkpoint against the trusted ones,
// with the consistency proofs of the bundle.
func (bv *bundleVerifier) checkTrusted(consistency []byte) {
	proofs := map[int64]tlog.TreeProof{}
	prev := int64(0)
	for i, line := range bytes.SplitAfter(consistency, []byte("\n")) {
		if len(line) == 0 {
			break
		}
		var cl consistencyLine
		if err := strictJSON(line, &cl); err != nil {
			bv.problem(bundleConsistency, -1, "line %d: %v", i+1, err)
			continue
		}
		if cl.Size <= prev || bv.cp != nil && cl.Size >= bv.cp.Size {
			bv.problem(bundleConsistency, -1, "line %d: size %d out of order or not below the checkpoint's", i+1, cl.Size)
		}
		prev = max(prev, cl.Size)
		proofs[cl.Size] = cl.Proof
	}
	if len(bv.opts.Trusted) == 0 {
		return
	}
	checked := false
	for i, signed := range bv.opts.Trusted {
		res := CheckpointResult{Source: fmt.Sprintf("trusted #%d", i), Trusted: true}
		c, err := ParseCheckpoint(signed, bv.v)
		switch {
		case bv.cp == nil:
			res.Detail = "not checked: the bundle's checkpoint did not verify"
		case err != nil:
			res.Detail = err.Error()
			bv.problem(res.Source, -1, "%v", err)
		case c.Name != bv.cp.Name:
			res.Detail = fmt.Sprintf("is for ledger %q, the bundle for %q", c.Name, bv.cp.Name)
			bv.problem(res.Source, -1, "%s", res.Detail)
		case c.Size > bv.cp.Size:
			res.Detail = fmt.Sprintf("not checked: newer than the bundle's checkpoint (%d records, the bundle's %d)", c.Size, bv.cp.Size)
		case c.Size == bv.cp.Size && c.Hash == bv.cp.Hash, c.Size == 0:
			res.OK = true
		case c.Size == bv.cp.Size:
			res.Detail = fmt.Sprintf("root hash %s, the bundle's is %s: the ledger forked", c.Hash, bv.cp.Hash)
			bv.problem(bundleCheckpoint, -1, "contradicts %s: %s", res.Source, res.Detail)
		default:
			p, found := proofs[c.Size]
			if !found {
				res.Detail = fmt.Sprintf("not checked: the bundle has no consistency proof from size %d", c.Size)
				break
			}
			if err := tlog.CheckTree(p, bv.cp.Size, bv.cp.Hash, c.Size, c.Hash); err != nil {
				res.Detail = fmt.Sprintf("the bundle's tree does not extend it (%v): the ledger was rewritten", err)
				bv.problem(bundleCheckpoint, -1, "contradicts %s: %s", res.Source, res.Detail)
				break
			}
			res.OK = true
		}
		res.Checkpoint = c
		checked = checked || res.OK
		bv.rep.Trusted = append(bv.rep.Trusted, res)
	}
	if !checked {
		bv.problem(bundleCheckpoint, -1, "none of the %d trusted checkpoints could be checked against it", len(bv.opts.Trusted))
	}
}

func (bv *bundleVerifier) checkCustody(b []byte) {
	if b == nil {
		return
	}
	var cf custodyFile
	if err := strictJSON(b, &cf); err != nil {
		bv.problem(bundleCustody, -1, "%v", err)
		return
	}
	bv.rep.Custody = cf.Custody
	if cf.Events != bv.nEvents || cf.Redacted != bv.nRedacted {
		bv.problem(bundleCustody, -1, "counts %d events and %d redacted; the bundle has %d and %d", cf.Events, cf.Redacted, bv.nEvents, bv.nRedacted)
	}
	if bv.cp != nil && (cf.Ledger != bv.cp.Name || cf.CheckpointSize != bv.cp.Size) {
		bv.problem(bundleCustody, -1, "names ledger %q at %d records; the checkpoint is of %q at %d", cf.Ledger, cf.CheckpointSize, bv.cp.Name, bv.cp.Size)
	}
}

// checkCanonical re-emits the zip from the payloads in it, the way
// WriteBundle writes it, and compares the result with the input byte
// for byte; it hashes the payloads on the way for the manifest's
// deflated sums.
func (bv *bundleVerifier) checkCanonical() {
	cw := &cmpWriter{r: bv.r, size: bv.size, diff: -1, buf: make([]byte, bufSize(bv.size))}
	buf := make([]byte, bufSize(bv.size))
	z := newZipWriter(cw, bv.zipTime)
	deflated := map[string]contentSum{}
	for _, f := range bv.zr.File {
		method := zipDeflate
		switch f.Name {
		case bundleManifest, bundleManifestSig:
			method = zipStore
		}
		crc, usize := f.CRC32, int64(f.UncompressedSize64)
		if s, ok := bv.sums[f.Name]; ok {
			crc, usize = s.crc, s.size
		}
		raw, err := f.OpenRaw()
		if err != nil {
			bv.problem(f.Name, -1, "%v", err)
			return
		}
		h := sha256.New()
		cr := &countReader{r: io.TeeReader(raw, h)}
		z.raw(f.Name, method, crc, usize, cr, buf)
		if z.err != nil {
			break
		}
		if _, seen := deflated[f.Name]; !seen {
			s := contentSum{size: cr.n}
			h.Sum(s.sha256[:0])
			deflated[f.Name] = s
		}
	}
	if err := z.close(); err != nil && !errors.Is(err, errDiffers) {
		bv.problem("", -1, "%v", err)
	}
	switch {
	case cw.diff >= 0:
		bv.problem("", -1, "not in the form WriteBundle writes: byte %d differs", cw.diff)
	case cw.off != bv.size:
		bv.problem("", -1, "not in the form WriteBundle writes: %d bytes, want %d", bv.size, cw.off)
	}
	// The manifest's sums, checked last so that a problem with the zip
	// as a whole comes before what it explains.
	for _, name := range manifested {
		m, ok := bv.manifest[name]
		if !ok {
			continue
		}
		if s, ok := bv.sums[name]; ok && (s.size != m.Size || hex.EncodeToString(s.sha256[:]) != m.SHA256) {
			bv.problem(name, -1, "content differs from the manifest: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", s.size, s.sha256, m.Size, m.SHA256)
		}
		if s, ok := deflated[name]; ok && (s.size != m.DeflatedSize || hex.EncodeToString(s.sha256[:]) != m.DeflatedSHA256) {
			bv.problem(name, -1, "deflated bytes differ from the manifest: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", s.size, s.sha256, m.DeflatedSize, m.DeflatedSHA256)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errDiffers = errors.New("differs from the input")

// A cmpWriter compares what is written to it with r from offset 0,
// and fails at the first difference.
type cmpWriter struct {
	r    io.ReaderAt
	size int64
	off  int64
	diff int64 // the first offset that differs, once Write has failed
	buf  []byte
}

func (c *cmpWriter) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		n := min(len(p)-done, len(c.buf))
		got, err := c.r.ReadAt(c.buf[:n], c.off)
		if got == n {
			err = nil // ReaderAt may return io.EOF with the last bytes
		} else if err == nil {
			err = io.ErrUnexpectedEOF
		}
		for i := range got {
			if c.buf[i] != p[done+i] {
				c.diff = c.off + int64(i)
				return done + i, errDiffers
			}
		}
		if err != nil {
			c.diff = c.off + int64(got)
			return done + got, errDiffers
		}
		done += n
		c.off += int64(n)
	}
	return len(p), nil
}
