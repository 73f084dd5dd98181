package ledger

// Evidence bundles: a selection of events taken out of the ledger with
// everything needed to check, offline and without the data directory,
// that each is exactly what the ledger recorded. Who checks trusts only
// the ledger's public key and, optionally, checkpoints from a witness;
// everything else in the bundle is checked against those.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/event"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Custody is the chain-of-custody record of an export: who took which
// events out of the ledger, when, how and why. It is signed with the
// rest of the bundle, so it cannot be edited afterwards either.
type Custody struct {
	ExportedBy string    `json:"exported_by"` // who ran the export (user, token name)
	ExportedAt time.Time `json:"exported_at"` // zero means the ledger's clock at export
	Query      string    `json:"query,omitempty"`
	From       time.Time `json:"from,omitzero"` // the time range asked for
	To         time.Time `json:"to,omitzero"`
	Tool       string    `json:"tool"` // e.g. "vigil v0.3.0"
	Host       string    `json:"host"`
	Reason     string    `json:"reason,omitempty"` // case number, ticket
	// Set, Part and Parts place a bundle in a set of them, one per
	// ledger: a scale-out's export, whose events are in its partitions'
	// ledgers (BundleSetWriter, VerifyBundleSet). Zero outside a set.
	Set   string `json:"set,omitempty"`
	Part  int    `json:"part,omitempty"`
	Parts int    `json:"parts,omitempty"`
}

// A BundleSummary says what WriteBundle wrote.
type BundleSummary struct {
	Checkpoint Checkpoint // the checkpoint the proofs are against
	Events     int        // event records
	Redacted   int        // redacted records, with hash and proof only
	Bytes      int64      // size of the zip
	SHA256     [32]byte   // of the zip, for the case file
	// WitnessErr is set when witnesses failed to receive the bundle's
	// checkpoint. The bundle is valid, but a verifier holding only a
	// witness's copies will not find that checkpoint among them.
	WitnessErr error
}

// The files of a bundle, in the order they are in the zip.
const (
	bundleEvents      = "events.ndjson"
	bundleRecords     = "records.ndjson"
	bundleConsistency = "consistency.ndjson"
	bundleCheckpoint  = "checkpoint.note"
	bundleKey         = "key.pub"
	bundleCustody     = "custody.json"
	bundleManifest    = "manifest.json"
	bundleManifestSig = "manifest.sig"
)

var bundleFiles = []string{
	bundleEvents, bundleRecords, bundleConsistency, bundleCheckpoint,
	bundleKey, bundleCustody, bundleManifest, bundleManifestSig,
}

// manifested are the files manifest.json lists: all but itself and its
// signature.
var manifested = bundleFiles[:len(bundleFiles)-2]

const (
	bundleFormat = "vigil-evidence-bundle/1"
	// manifestSigPrefix starts the text of manifest.sig. It cannot be
	// mistaken for a checkpoint (checkpointOrigin), though the same key
	// signs both.
	manifestSigPrefix = "vigil evidence bundle\nmanifest.json sha256 "
	// maxConsistencyProofs bounds the earlier checkpoints a bundle
	// carries consistency proofs from: the most recent ones.
	maxConsistencyProofs = 1000
)

// WriteBundle writes to w an evidence bundle of the records at indexes:
// a zip that proves, to whoever trusts the ledger's verifier key vkey,
// that each record is what the ledger holds (VerifyBundle checks it).
// Event records are included in full; redacted ones with their content
// hash, reason and time only. Indexes are sorted and duplicates dropped.
//
// WriteBundle has the ledger sign a checkpoint of its current tree
// (l.Checkpoint, so witnesses receive it too) and proves every record
// against it. signer must be the ledger's key, whose verifier key is
// vkey; it also signs the manifest, which makes the custody record and
// every other byte of the bundle as binding as the checkpoint.
//
// The zip holds, in this order:
//
//	events.ndjson       one JSON object per record, for people: seq, the
//	                    normalized fields (times RFC 3339 in UTC), raw
//	                    (the exact bytes, as a string if valid UTF-8,
//	                    else raw_base64) and doc when present; for a
//	                    redacted record, seq, content_hash and redacted
//	                    {reason, time}
//	records.ndjson      one JSON object per record, for machines: seq,
//	                    kind ("event" or "redacted"), content_hash (hex
//	                    SHA-256), content (base64 of the exact ledger
//	                    bytes, EncodeEvent's output; absent if redacted),
//	                    redaction {reason, time} if redacted, and proof
//	                    (the inclusion proof, base64 hashes)
//	consistency.ndjson  {size, proof} per earlier checkpoint of the
//	                    ledger (the latest 1000): proof that the
//	                    bundle's tree extends it, for checking against a
//	                    witness's copy
//	checkpoint.note     the signed checkpoint the proofs are against
//	key.pub             the verifier key
//	custody.json        the Custody record, the ledger's name and the
//	                    counts of records
//	manifest.json       format, and name, size, SHA-256, deflated size
//	                    and deflated SHA-256 of each file above
//	manifest.sig        a note, signed by signer, of the SHA-256 of
//	                    manifest.json
//
// The zip itself has one canonical form, with every entry's time set to
// the checkpoint's (see bundle_zip.go), so that no byte of it is left
// that neither a hash nor the form pins down.
//
// A redacted record's reason and time are not in the tree, which holds
// only the original content's hash: they are vouched for by the
// manifest's signature alone. Records removed by retention cannot be
// exported (the error wraps ErrRemoved), nor can the ledger's own meta
// records.
//
// The records are read twice, once for each ndjson file, so that the
// bundle streams to w whatever its size; if a record is redacted in
// between, WriteBundle fails and the export can be run again.
// BenchmarkWriteBundle: 10,000 CloudTrail events (17.7 MB of raw JSON)
// export in about 1 s on a 2-core VM, to a 7.8 MB zip of 62 MB of
// files, bound by deflate, JSON and SHA-256; VerifyBundle takes about
// 0.6 s over it.
func WriteBundle(ctx context.Context, w io.Writer, l *Ledger, indexes []int64, c Custody, signer note.Signer, vkey string) (*BundleSummary, error) {
	return writeBundle(ctx, w, held{l}, indexes, c, signer, vkey)
}

// WriteBundle writes an evidence bundle of the records at indexes of the
// ledger the View reads, as the package's WriteBundle does, but against
// the ledger's latest signed checkpoint, which must cover every index
// (its writer signs one every Options.CheckpointEvery): a View signs
// nothing. signer must be the ledger's key, for the manifest.
func (v *View) WriteBundle(ctx context.Context, w io.Writer, indexes []int64, c Custody, signer note.Signer, vkey string) (*BundleSummary, error) {
	return writeBundle(ctx, w, v, indexes, c, signer, vkey)
}

// A bundleSource is the ledger a bundle is written from: one this
// process holds, or a View of one another process writes.
type bundleSource interface {
	// signedCheckpoint returns the checkpoint to prove against, and why
	// witnesses did not receive it (the bundle is valid all the same).
	signedCheckpoint(ctx context.Context) (signed []byte, witnessErr, err error)
	// hashes reads the tree's stored hashes up to size; done releases
	// what it holds.
	hashes(size int64) (r tlog.HashReader, done func(), err error)
	scan(from, to int64, fn func(Record) error) error
	// gap is the largest gap between two wanted indexes that one scan
	// reads through rather than starting another.
	gap() int64
	directory() string
	now() time.Time
}

// held is the bundleSource of a Ledger this process holds.
type held struct{ l *Ledger }

func (h held) signedCheckpoint(ctx context.Context) ([]byte, error, error) {
	// The checkpoint is signed for the bundle, so it covers every record.
	signed, err := h.l.Checkpoint(ctx)
	if signed == nil {
		return nil, nil, err
	}
	return signed, err, nil
}

func (h held) hashes(size int64) (tlog.HashReader, func(), error) {
	r, err := h.l.reader(size)
	return r, func() {}, err
}

func (h held) scan(from, to int64, fn func(Record) error) error { return h.l.Scan(from, to, fn) }
func (h held) directory() string                                { return h.l.dir }

// A held ledger seeks to a record through its marks: a seek costs
// about a scan of markEvery frames.
func (h held) gap() int64     { return markEvery }
func (h held) now() time.Time { return h.l.opts.Now() }

func writeBundle(ctx context.Context, w io.Writer, l bundleSource, indexes []int64, c Custody, signer note.Signer, vkey string) (*BundleSummary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle: verifier key: %w", err)
	}
	indexes = slices.Clone(indexes)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)

	signed, witnessErr, err := l.signedCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle: %w", err)
	}
	sum := &BundleSummary{WitnessErr: witnessErr}
	cp, err := ParseCheckpoint(signed, v)
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle: the ledger's checkpoint does not verify with the given key: %w", err)
	}
	sum.Checkpoint = cp
	if n := len(indexes); n > 0 && (indexes[0] < 0 || indexes[n-1] >= cp.Size) {
		return nil, fmt.Errorf("ledger: bundle: indexes must be in 0..%d", cp.Size-1)
	}
	if c.ExportedAt.IsZero() {
		c.ExportedAt = l.now()
	}
	for _, t := range []*time.Time{&c.ExportedAt, &c.From, &c.To} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}

	hr, done, err := l.hashes(cp.Size)
	if err != nil {
		return nil, fmt.Errorf("ledger: bundle: %w", err)
	}
	defer done()
	hashes := &cachedHashes{r: hr, cache: map[int64]tlog.Hash{}}

	hw := sha256.New()
	out := bufio.NewWriterSize(w, 256<<10)
	cw := &countWriter{w: io.MultiWriter(out, hw)}
	bw := &bundleWriter{z: newZipWriter(cw, cp.Time)}

	// What the first pass saw, for the second to check it sees the same.
	seen := make([]recordSum, 0, len(indexes))
	bw.file(bundleEvents, func(w io.Writer) error {
		var enc lineEncoder
		return eachRecord(ctx, l, indexes, func(rec Record) error {
			seen = append(seen, recordSum{rec.Kind, rec.ContentHash})
			var err error
			switch rec.Kind {
			case KindEvent:
				var e *event.Event
				if e, err = DecodeEvent(rec.Content); err == nil {
					err = enc.event(rec.Index, e)
				}
				sum.Events++
			case KindRedacted:
				var red Redaction
				if red, err = rec.Redaction(); err == nil {
					err = enc.redacted(rec.Index, rec.ContentHash, red)
				}
				sum.Redacted++
			}
			if err != nil {
				return fmt.Errorf("record %d: %w", rec.Index, err)
			}
			_, err = w.Write(enc.bytes())
			return err
		})
	})
	bw.file(bundleRecords, func(w io.Writer) error {
		var enc lineEncoder
		i := 0
		return eachRecord(ctx, l, indexes, func(rec Record) error {
			if s := seen[i]; s.kind != rec.Kind || s.hash != rec.ContentHash {
				return fmt.Errorf("record %d changed during the export (it was %s, now %s): export again", rec.Index, s.kind, rec.Kind)
			}
			i++
			line, err := newRecordLine(rec)
			if err != nil {
				return err
			}
			proof, err := tlog.ProveRecord(cp.Size, rec.Index, hashes)
			if err != nil {
				return fmt.Errorf("record %d: inclusion proof: %w", rec.Index, err)
			}
			line.Proof = nonNil(proof)
			// A ledger whose segments disagree with its hashes file
			// fails here rather than in the hands of whoever checks
			// the bundle.
			if err := tlog.CheckRecord(line.Proof, cp.Size, cp.Hash, rec.Index, rec.LeafHash()); err != nil {
				return fmt.Errorf("record %d: proof does not verify: %w (%w)", rec.Index, err, ErrCorrupt)
			}
			if err := enc.encode(line); err != nil {
				return fmt.Errorf("record %d: %w", rec.Index, err)
			}
			_, err = w.Write(enc.bytes())
			return err
		})
	})
	bw.file(bundleConsistency, func(w io.Writer) error {
		sizes, err := checkpointSizes(l.directory(), cp.Size)
		if err != nil {
			return err
		}
		var enc lineEncoder
		for _, n := range sizes {
			p, err := tlog.ProveTree(cp.Size, n, hashes)
			if err != nil {
				return fmt.Errorf("consistency proof from %d: %w", n, err)
			}
			if err := enc.encode(consistencyLine{Size: n, Proof: nonNil(p)}); err != nil {
				return err
			}
			if _, err := w.Write(enc.bytes()); err != nil {
				return err
			}
		}
		return nil
	})
	bw.file(bundleCheckpoint, writeBytes(signed))
	bw.file(bundleKey, writeBytes([]byte(vkey+"\n")))
	bw.file(bundleCustody, func(w io.Writer) error {
		b, err := json.MarshalIndent(custodyFile{
			Custody: c, Ledger: cp.Name, CheckpointSize: cp.Size,
			Events: sum.Events, Redacted: sum.Redacted,
		}, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err := bw.finish(signer, v); err != nil {
		return nil, fmt.Errorf("ledger: bundle: %w", err)
	}
	if err := out.Flush(); err != nil {
		return nil, fmt.Errorf("ledger: bundle: %w", err)
	}
	sum.Bytes = cw.n
	hw.Sum(sum.SHA256[:0])
	return sum, nil
}

// A recordSum is what the first pass of WriteBundle saw of a record.
type recordSum struct {
	kind Kind
	hash [32]byte
}

// A bundleWriter writes the files of a bundle and then its manifest.
// Its first error sticks.
type bundleWriter struct {
	z    *zipWriter
	sums []fileSum
	err  error
}

// file writes the deflated file name with the content fill writes.
func (bw *bundleWriter) file(name string, fill func(io.Writer) error) {
	if bw.err != nil {
		return
	}
	f := bw.z.create(name, zipDeflate)
	if err := fill(f); err != nil {
		bw.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	s, err := f.close()
	if err != nil {
		bw.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	bw.sums = append(bw.sums, s)
}

// finish writes manifest.json, manifest.sig and the zip's directory.
func (bw *bundleWriter) finish(signer note.Signer, v note.Verifier) error {
	m, err := bw.manifest()
	if err != nil {
		return err
	}
	sig, err := note.Sign(&note.Note{Text: manifestSigText(m)}, signer)
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	// A signer that does not match vkey would make a bundle nobody can
	// verify; better to fail now.
	if _, err := note.Open(sig, note.VerifierList(v)); err != nil {
		return fmt.Errorf("the manifest's signature does not verify with the given key: %w", err)
	}
	bw.stored(bundleManifest, m)
	bw.stored(bundleManifestSig, sig)
	if bw.err != nil {
		return bw.err
	}
	return bw.z.close()
}

// manifest returns manifest.json for the files written so far.
func (bw *bundleWriter) manifest() ([]byte, error) {
	if bw.err != nil {
		return nil, bw.err
	}
	m, err := json.MarshalIndent(bundleManifestJSON{Format: bundleFormat, Files: bw.sums}, "", "  ")
	return append(m, '\n'), err
}

// stored writes a file without compression. manifest.json and
// manifest.sig are stored so that what their signature covers, the
// content, is the very bytes in the zip.
func (bw *bundleWriter) stored(name string, data []byte) {
	if bw.err != nil {
		return
	}
	f := bw.z.create(name, zipStore)
	f.Write(data)
	if _, err := f.close(); err != nil {
		bw.err = fmt.Errorf("%s: %w", name, err)
	}
}

func manifestSigText(manifest []byte) string {
	h := sha256.Sum256(manifest)
	return manifestSigPrefix + hex.EncodeToString(h[:]) + "\n"
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

type bundleManifestJSON struct {
	Format string    `json:"format"`
	Files  []fileSum `json:"files"`
}

type custodyFile struct {
	Custody
	Ledger         string `json:"ledger"` // the checkpoint's name
	CheckpointSize int64  `json:"checkpoint_size"`
	Events         int    `json:"events"`
	Redacted       int    `json:"redacted"`
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// cachedHashes is a tlog.HashReader that keeps the hashes it has read.
// Proofs of nearby records share all but their lowest hashes, and the
// ledger reads each stored hash with its own pread.
type cachedHashes struct {
	r     tlog.HashReader
	cache map[int64]tlog.Hash
}

// maxCachedHashes bounds the cache, at 40 bytes a hash and more for
// the map: proofs of records far apart have little in common.
const maxCachedHashes = 1 << 20

func (c *cachedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int64 // indexes not in the cache
	var at []int     // where in out they go
	for i, x := range indexes {
		if h, ok := c.cache[x]; ok {
			out[i] = h
		} else {
			miss, at = append(miss, x), append(at, i)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	hs, err := c.r.ReadHashes(miss)
	if err != nil {
		return nil, err
	}
	if len(c.cache)+len(hs) > maxCachedHashes {
		clear(c.cache)
	}
	for j, h := range hs {
		out[at[j]] = h
		c.cache[miss[j]] = h
	}
	return out, nil
}

// eachRecord calls fn with the records at indexes (sorted, distinct),
// which must be event or redacted records, with content that matches
// their hash. Content is valid only during the call.
func eachRecord(ctx context.Context, l bundleSource, indexes []int64, fn func(Record) error) error {
	for len(indexes) > 0 {
		n := 1
		for n < len(indexes) && indexes[n]-indexes[n-1] <= l.gap() {
			n++
		}
		run := indexes[:n]
		indexes = indexes[n:]
		next := 0
		err := l.scan(run[0], run[n-1]+1, func(rec Record) error {
			// Scan skips records removed by retention.
			if rec.Index > run[next] {
				return fmt.Errorf("record %d: %w", run[next], ErrRemoved)
			}
			if rec.Index < run[next] {
				return nil
			}
			next++
			if next%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if rec.Kind != KindEvent && rec.Kind != KindRedacted {
				return fmt.Errorf("record %d is a %s record, not an event", rec.Index, rec.Kind)
			}
			// Scan checks CRCs only; a bundle must not carry content its
			// proof does not vouch for.
			if rec.Kind == KindEvent && sha256.Sum256(rec.Content) != rec.ContentHash {
				return fmt.Errorf("record %d: content does not match its hash (%w)", rec.Index, ErrCorrupt)
			}
			return fn(rec)
		})
		if err != nil {
			return err
		}
		if next < n {
			return fmt.Errorf("record %d: %w", run[next], ErrRemoved)
		}
	}
	return ctx.Err()
}

// checkpointSizes returns the distinct sizes, below size and above 0,
// of the checkpoints stored in the ledger directory dir: the latest
// maxConsistencyProofs of them, in increasing order.
func checkpointSizes(dir string, size int64) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, checkpointDir))
	if err != nil {
		return nil, err
	}
	var sizes []int64
	for _, e := range ents {
		s, _, ok := strings.Cut(e.Name(), "-")
		if !ok || !strings.HasSuffix(e.Name(), ".note") {
			continue
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < size {
			sizes = append(sizes, n)
		}
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	return sizes[max(0, len(sizes)-maxConsistencyProofs):], nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// recordLine is a line of records.ndjson.
type recordLine struct {
	Seq         int64       `json:"seq"`
	Kind        string      `json:"kind"`
	ContentHash string      `json:"content_hash"`
	Content     []byte      `json:"content,omitempty"`
	Redaction   *Redaction  `json:"redaction,omitempty"`
	Proof       []tlog.Hash `json:"proof"`
}

func newRecordLine(rec Record) (recordLine, error) {
	line := recordLine{Seq: rec.Index, Kind: rec.Kind.String(), ContentHash: hex.EncodeToString(rec.ContentHash[:])}
	switch rec.Kind {
	case KindEvent:
		line.Content = rec.Content
	case KindRedacted:
		red, err := rec.Redaction()
		if err != nil {
			return recordLine{}, err
		}
		red.Time = red.Time.UTC()
		line.Redaction = &red
	}
	return line, nil
}

// consistencyLine is a line of consistency.ndjson.
type consistencyLine struct {
	Size  int64       `json:"size"`
	Proof []tlog.Hash `json:"proof"`
}

// eventLine is a line of events.ndjson: an event as people read it. It
// is rendered from the record's content, by the same code when writing
// and when verifying, which compares the two byte for byte; so the line
// cannot say anything the proved content does not. Strings that are not
// valid UTF-8 show U+FFFD where encoding/json puts it; raw and doc,
// where exact bytes matter most, switch to base64 instead.
type eventLine struct {
	Seq         int64        `json:"seq"`
	ContentHash string       `json:"content_hash,omitempty"` // redacted records only
	Redacted    *Redaction   `json:"redacted,omitempty"`
	Time        string       `json:"time,omitempty"`
	Received    string       `json:"received,omitempty"`
	Skewed      bool         `json:"skewed,omitempty"`
	Tenant      string       `json:"tenant,omitempty"`
	Source      string       `json:"source,omitempty"`
	Class       string       `json:"class,omitempty"`
	EventID     string       `json:"event_id,omitempty"`
	Cloud       cloudLine    `json:"cloud,omitzero"`
	Environment string       `json:"environment,omitempty"`
	Actor       actorLine    `json:"actor,omitzero"`
	Session     sessionLine  `json:"session,omitzero"`
	SrcIP       netip.Addr   `json:"src_ip,omitzero"`
	SrcPort     uint16       `json:"src_port,omitempty"`
	DstIP       netip.Addr   `json:"dst_ip,omitzero"`
	DstPort     uint16       `json:"dst_port,omitempty"`
	Host        string       `json:"host,omitempty"`
	UserAgent   string       `json:"user_agent,omitempty"`
	Service     string       `json:"service,omitempty"`
	Action      string       `json:"action,omitempty"`
	Resources   []string     `json:"resources,omitempty"`
	Outcome     outcomeLine  `json:"outcome,omitzero"`
	Message     string       `json:"message,omitempty"`
	Origin      string       `json:"origin,omitempty"`
	Context     *contextLine `json:"context,omitempty"`
	Raw         *string      `json:"raw,omitempty"`
	RawBase64   []byte       `json:"raw_base64,omitempty"`
	Doc         *string      `json:"doc,omitempty"`
	DocBase64   []byte       `json:"doc_base64,omitempty"`
}

// contextLine is an event's enrichment, as people read it.
type contextLine struct {
	Src   placeLine   `json:"src,omitzero"`
	Dst   placeLine   `json:"dst,omitzero"`
	Team  string      `json:"team,omitempty"`
	Intel []intelLine `json:"intel,omitempty"`
}

type placeLine struct {
	Asset   string `json:"asset,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Country string `json:"country,omitempty"`
	City    string `json:"city,omitempty"`
	ASN     uint32 `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
	Cloud   string `json:"cloud,omitempty"`
}

type intelLine struct {
	List      string `json:"list"`
	Indicator string `json:"indicator"`
	Type      string `json:"type,omitempty"`
}

type cloudLine struct {
	Provider string `json:"provider,omitempty"`
	Account  string `json:"account,omitempty"`
	Region   string `json:"region,omitempty"`
}

type actorLine struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

type sessionLine struct {
	ID     string `json:"id,omitempty"`
	Origin string `json:"origin,omitempty"`
}

type outcomeLine struct {
	Result string `json:"result,omitempty"`
	Code   string `json:"code,omitempty"`
}

// lineEncoder renders ndjson lines into a buffer it reuses.
type lineEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encode renders v as one line, ending in a newline, without
// encoding/json's HTML escaping, which only hinders reading.
func (e *lineEncoder) encode(v any) error {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
	}
	e.buf.Reset()
	return e.enc.Encode(v)
}

func (e *lineEncoder) bytes() []byte { return e.buf.Bytes() }

func (e *lineEncoder) event(seq int64, ev *event.Event) error {
	line := eventLine{
		Seq: seq, Time: formatTime(ev.Time), Received: formatTime(ev.Received), Skewed: ev.Skewed,
		Tenant: ev.Tenant, Source: ev.Source, Class: ev.Class, EventID: ev.ID,
		Cloud:       cloudLine{ev.Cloud.Provider, ev.Cloud.Account, ev.Cloud.Region},
		Environment: ev.Environment,
		Actor:       actorLine{ev.Actor.ID, ev.Actor.Type, ev.Actor.Name},
		Session:     sessionLine{ev.Session.ID, ev.Session.Origin},
		SrcIP:       ev.SrcIP, SrcPort: ev.SrcPort, DstIP: ev.DstIP, DstPort: ev.DstPort,
		Host: ev.Host, UserAgent: ev.UserAgent, Service: ev.Service, Action: ev.Action,
		Resources: ev.Resources,
		Outcome:   outcomeLine{ev.Outcome.Result, ev.Outcome.Code},
		Message:   ev.Message, Origin: ev.Origin,
	}
	if c := &ev.Context; !c.IsZero() {
		line.Context = &contextLine{Src: placeLine(c.Src), Dst: placeLine(c.Dst), Team: c.Team}
		for _, h := range c.Intel {
			line.Context.Intel = append(line.Context.Intel, intelLine(h))
		}
	}
	if len(ev.Raw) > 0 {
		line.Raw, line.RawBase64 = textOrBytes(ev.Raw)
	}
	if ev.Doc != nil {
		line.Doc, line.DocBase64 = textOrBytes(ev.Doc)
	}
	return e.encode(line)
}

func (e *lineEncoder) redacted(seq int64, hash [32]byte, red Redaction) error {
	red.Time = red.Time.UTC()
	return e.encode(eventLine{Seq: seq, ContentHash: hex.EncodeToString(hash[:]), Redacted: &red})
}

// textOrBytes returns b as a string if encoding/json keeps it exactly,
// and as bytes (base64 in JSON) otherwise.
func textOrBytes(b []byte) (*string, []byte) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b
}

// formatTime formats t as RFC 3339 in UTC, or "" for the zero time.
// Unlike time.Time's MarshalJSON it does not fail on years past 9999,
// which the codec keeps.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
