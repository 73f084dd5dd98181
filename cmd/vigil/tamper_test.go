package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store/duckdb"
)

// These tests tamper with a data directory the way an intruder covering
// their tracks would, and check that vigil verify catches each change and
// names the records concerned: no more, no fewer.

// A testDataDir is a data directory whose ledger has small segments, so
// that the Stratus fixtures fill several, and a witness file outside it,
// which is what catches a rollback of the whole directory.
type testDataDir struct {
	dir     string
	witness string
}

func newTestDataDir(t *testing.T) testDataDir {
	t.Helper()
	d := testDataDir{dir: t.TempDir(), witness: filepath.Join(t.TempDir(), "witness")}
	d.writeConfig(t, true)
	return d
}

func (d testDataDir) writeConfig(t *testing.T, witness bool) {
	t.Helper()
	cfg := "ledger:\n  segment_bytes: 200000\n"
	if witness {
		cfg += "  witnesses: [" + strconv.Quote(d.witness) + "]\n"
	}
	if err := os.WriteFile(filepath.Join(d.dir, configFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clone copies d, witness file included, so that each case tampers with
// its own copy.
func (d testDataDir) clone(t *testing.T) testDataDir {
	t.Helper()
	c := testDataDir{dir: t.TempDir(), witness: filepath.Join(t.TempDir(), "witness")}
	copyDataDir(t, c.dir, d.dir)
	if b, err := os.ReadFile(d.witness); err == nil {
		if err := os.WriteFile(c.witness, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.writeConfig(t, true)
	return c
}

func (d testDataDir) ledgerPath(name string) string { return filepath.Join(d.dir, ledgerDir, name) }

func copyDataDir(t *testing.T, dst, src string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// verifyData runs vigil verify on dir and returns its exit status and
// what it printed. Exit status 1 must come with a report of what is
// wrong, not with a failure to check.
func verifyData(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	code, out, errOut := vigil(t, append([]string{"verify", "-q", "--data", dir}, args...)...)
	switch {
	case code == 0 && intactLine.MatchString(out):
	case code == 1 && notIntactLine.MatchString(out):
	default:
		t.Fatalf("vigil verify: exit %d\n%s%s", code, out, errOut)
	}
	return code, out
}

var (
	intactLine    = regexp.MustCompile(`(?m)^intact: `)
	notIntactLine = regexp.MustCompile(`(?m)^NOT INTACT: `)
)

var verifiedSize = regexp.MustCompile(`(?m)^(?:intact:|NOT INTACT: \d+ problems;) (\d+) records in \d+ segments`)

// ledgerSize returns the number of records verify's summary line gives.
func ledgerSize(t *testing.T, out string) int64 {
	t.Helper()
	m := verifiedSize.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in verify's output:\n%s", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// A verifyFinding is one line of verify's output that names records: a
// ledger problem or a store mismatch.
type verifyFinding struct {
	line        string
	kind        string
	first, last int64 // -1 when the line names no record
}

var (
	ledgerFinding = regexp.MustCompile(`^ledger: ([a-z-]+)(?: at (\d+)(?:\.\.(\d+))?)?: `)
	storeFinding  = regexp.MustCompile(`^store seq (\d+)(?:-(\d+))?: ([a-z]+): `)
)

func verifyFindings(out string) []verifyFinding {
	var fs []verifyFinding
	num := func(s string, def int64) int64 {
		if s == "" {
			return def
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if m := ledgerFinding.FindStringSubmatch(line); m != nil {
			first := num(m[2], -1)
			fs = append(fs, verifyFinding{line, m[1], first, num(m[3], first)})
		} else if m := storeFinding.FindStringSubmatch(line); m != nil {
			first := num(m[1], -1)
			fs = append(fs, verifyFinding{line, "store " + m[3], first, num(m[2], first)})
		} else if strings.HasPrefix(line, "ledger: ") || strings.HasPrefix(line, "store ") {
			fs = append(fs, verifyFinding{line, "?", -1, -1})
		}
	}
	return fs
}

// The frame layout of ledger/frame.go: magic(2) kind(1) index(8)
// contentHash(32) length(4) content crc32c(4), integers big-endian. The
// test reads it on its own, as an intruder would, rather than through the
// ledger package, and checks every frame so that a change of layout
// fails here loudly instead of making the tampering miss its target.
const (
	tamperFrameHeader  = 2 + 1 + 8 + sha256.Size + 4
	tamperFrameTrailer = 4
)

var (
	tamperFrameMagic = []byte{0xB7, 0x1E}
	castagnoliTable  = crc32.MakeTable(crc32.Castagnoli)
)

// A segFrame is one record's bytes, [off, end), in a segment file.
type segFrame struct {
	index    int64
	off, end int
}

func (f segFrame) content(seg []byte) []byte {
	return seg[f.off+tamperFrameHeader : f.end-tamperFrameTrailer]
}

func parseSegFrames(t *testing.T, seg []byte) []segFrame {
	t.Helper()
	var fs []segFrame
	for off := 0; off < len(seg); {
		h := seg[off:]
		if len(h) < tamperFrameHeader+tamperFrameTrailer || !bytes.HasPrefix(h, tamperFrameMagic) {
			t.Fatalf("no frame at offset %d: the frame layout changed?", off)
		}
		f := segFrame{index: int64(binary.BigEndian.Uint64(h[3:])), off: off}
		f.end = off + tamperFrameHeader + int(binary.BigEndian.Uint32(h[43:])) + tamperFrameTrailer
		if f.end > len(seg) ||
			crc32.Checksum(seg[off:f.end-tamperFrameTrailer], castagnoliTable) != binary.BigEndian.Uint32(seg[f.end-tamperFrameTrailer:]) ||
			sha256.Sum256(f.content(seg)) != [32]byte(h[11:43]) {
			t.Fatalf("frame at offset %d does not check out: the frame layout changed?", off)
		}
		fs = append(fs, f)
		off = f.end
	}
	return fs
}

// forgeFrame returns a well-formed frame, checksum and content hash
// included: a forgery only the ledger's tree and checkpoints can expose.
func forgeFrame(index int64, content []byte) []byte {
	b := append(slices.Clone(tamperFrameMagic), byte(ledger.KindEvent))
	b = binary.BigEndian.AppendUint64(b, uint64(index))
	h := sha256.Sum256(content)
	b = append(b, h[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(content)))
	b = append(b, content...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoliTable))
}

// A segFile is a ledger segment file and the records it holds.
type segFile struct {
	name        string
	first, last int64
}

func segFiles(t *testing.T, d testDataDir) []segFile {
	t.Helper()
	names, err := filepath.Glob(d.ledgerPath("seg-*.log"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no ledger segments in %s: %v", d.dir, err)
	}
	slices.Sort(names)
	var segs []segFile
	for _, path := range names {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fs := parseSegFrames(t, b)
		if len(fs) == 0 {
			t.Fatalf("%s is empty", path)
		}
		segs = append(segs, segFile{filepath.Base(path), fs[0].index, fs[len(fs)-1].index})
	}
	return segs
}

// editSegment rewrites a segment file of d with edit, which gets its
// bytes and frames.
func editSegment(t *testing.T, d testDataDir, name string, edit func(b []byte, fs []segFrame) []byte) {
	t.Helper()
	path := d.ledgerPath(name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b, parseSegFrames(t, b)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// segFrameOf returns the frame of record index among fs.
func segFrameOf(t *testing.T, fs []segFrame, index int64) (int, segFrame) {
	t.Helper()
	for i, f := range fs {
		if f.index == index {
			return i, f
		}
	}
	t.Fatalf("no frame for record %d", index)
	return 0, segFrame{}
}

// storeExec runs a statement on the store of d, as someone with write
// access to the DuckDB file would, and checks it changed one row.
func storeExec(t *testing.T, d testDataDir, stmt string, args ...any) {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(d.dir, storeFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.SQL().Exec(stmt, args...)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("%s: %d rows affected (%v), want 1", stmt, n, err)
	}
}

// importLedgerData imports the Stratus fixtures into a new data directory
// and checks that verify finds it intact. It returns the directory and
// the ledger's size.
func importLedgerData(t *testing.T) (testDataDir, int64) {
	t.Helper()
	needFixtures(t)
	d := newTestDataDir(t)
	mustVigil(t, "import", "-q", "--data", d.dir, stratus)
	code, out := verifyData(t, d.dir)
	if code != 0 || !strings.Contains(out, "store in sync") {
		t.Fatalf("verify after a plain import: exit %d\n%s", code, out)
	}
	return d, ledgerSize(t, out)
}

func TestVerifyFindsTampering(t *testing.T) {
	golden, size := importLedgerData(t)
	segs := segFiles(t, golden)
	if len(segs) < 3 {
		t.Fatalf("the fixtures fill %d segments; the cases need at least 3", len(segs))
	}
	// The cases aim at the middle of a middle segment, away from the
	// edges that have cases of their own.
	mid := segs[1]
	k := (mid.first + mid.last) / 2
	end := size - 1

	// rollBack keeps a copy of the directory, imports more and puts the
	// copy back: the directory is consistent in itself, but the witness
	// has seen the larger tree.
	rollBack := func(t *testing.T, d testDataDir) []string {
		snapshot := t.TempDir()
		copyDataDir(t, snapshot, d.dir)
		more := filepath.Join(t.TempDir(), "more.json")
		writeCloudTrail(t, more, "rollback", 5)
		mustVigil(t, "import", "-q", "--data", d.dir, "--format", "aws.cloudtrail", more)
		if err := os.RemoveAll(d.dir); err != nil {
			t.Fatal(err)
		}
		copyDataDir(t, d.dir, snapshot)
		return []string{"--from-checkpoint", d.witness}
	}
	// forge rewrites record k as an intruder who also holds the server's
	// disk would: a well-formed frame, a hashes file and a store to
	// match, and checkpoints signed with a key of their own, since they
	// cannot reach the witness or the copy of the key kept elsewhere.
	forge := func(t *testing.T, d testDataDir) (origKey string) {
		origKey = strings.TrimSpace(mustVigil(t, "key", "--data", d.dir))
		editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
			_, f := segFrameOf(t, fs, k)
			e, err := ledger.DecodeEvent(f.content(b))
			if err != nil {
				t.Fatal(err)
			}
			e.Action = "ForgedAction"
			return slices.Concat(b[:f.off], forgeFrame(k, ledger.EncodeEvent(e)), b[f.end:])
		})
		for _, p := range []string{d.ledgerPath("hashes"), d.ledgerPath("checkpoints")} {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		other := t.TempDir()
		mustVigil(t, "key", "--data", other)
		key, err := os.ReadFile(filepath.Join(other, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.dir, keyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
		d.writeConfig(t, false)
		mustVigil(t, "rebuild", "--data", d.dir)
		// With nothing kept outside the server, the forgery is
		// consistent: this is what --key and witnesses are for.
		if code, out := verifyData(t, d.dir); code != 0 {
			t.Fatalf("the forgery is not self-consistent, so the cases below test less than they claim:\n%s", out)
		}
		return origKey
	}

	tests := []struct {
		name   string
		tamper func(t *testing.T, d testDataDir) (verifyArgs []string)
		// want are prefixes of lines verify must print.
		want []string
		// Every record verify names must be in first..last.
		first, last int64
	}{
		{
			name: "flip a byte in a record",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					_, f := segFrameOf(t, fs, k)
					b[f.off+tamperFrameHeader+(f.end-f.off)/2] ^= 0x20
					return b
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: modified at %d: ", k)},
			first: k, last: k,
		},
		{
			name: "flip a byte in a record's index",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					_, f := segFrameOf(t, fs, k)
					// The frame now claims another index; verify
					// must name it by its place, not by its claim.
					b[f.off+3+7] ^= 0x01
					return b
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: modified at %d: ", k)},
			first: k, last: k,
		},
		{
			name: "delete a record",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					_, f := segFrameOf(t, fs, k)
					return slices.Delete(b, f.off, f.end)
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: deleted at %d: ", k)},
			first: k, last: k,
		},
		{
			name: "delete the last two records",
			tamper: func(t *testing.T, d testDataDir) []string {
				last := segs[len(segs)-1]
				editSegment(t, d, last.name, func(b []byte, fs []segFrame) []byte {
					return b[:fs[len(fs)-2].off]
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: deleted at %d..%d: ", end-1, end)},
			first: end - 1, last: end,
		},
		{
			name: "insert a copy of a record",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					_, f := segFrameOf(t, fs, k)
					return slices.Insert(b, f.end, b[f.off:f.end]...)
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: inserted at %d: ", k)},
			first: k, last: k,
		},
		{
			name: "insert a forged record",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					_, f := segFrameOf(t, fs, k)
					e, err := ledger.DecodeEvent(f.content(b))
					if err != nil {
						t.Fatal(err)
					}
					e.Action = "ForgedAction"
					return slices.Insert(b, f.end, forgeFrame(k, ledger.EncodeEvent(e))...)
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: inserted at %d: ", k)},
			first: k, last: k,
		},
		{
			name: "swap two records",
			tamper: func(t *testing.T, d testDataDir) []string {
				editSegment(t, d, mid.name, func(b []byte, fs []segFrame) []byte {
					i, f := segFrameOf(t, fs, k)
					g := fs[i+1]
					return slices.Concat(b[:f.off], b[g.off:g.end], b[f.off:f.end], b[g.end:])
				})
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: reordered at %d..%d: ", k, k+1)},
			first: k, last: k + 1,
		},
		{
			name: "delete a segment",
			tamper: func(t *testing.T, d testDataDir) []string {
				if err := os.Remove(d.ledgerPath(mid.name)); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want:  []string{fmt.Sprintf("ledger: segment-missing at %d..%d: ", mid.first, mid.last)},
			first: mid.first, last: mid.last,
		},
		{
			name: "edit a row in the store",
			tamper: func(t *testing.T, d testDataDir) []string {
				storeExec(t, d, "UPDATE events SET action = 'x' WHERE seq = ?", k)
				return nil
			},
			want:  []string{fmt.Sprintf("store seq %d: changed: differs from the ledger in action", k)},
			first: k, last: k,
		},
		{
			name: "delete a row from the store",
			tamper: func(t *testing.T, d testDataDir) []string {
				storeExec(t, d, "DELETE FROM events WHERE seq = ?", k)
				return nil
			},
			want:  []string{fmt.Sprintf("store seq %d: missing: ", k)},
			first: k, last: k,
		},
		{
			name: "duplicate a row in the store",
			tamper: func(t *testing.T, d testDataDir) []string {
				storeExec(t, d, "INSERT INTO events SELECT * FROM events WHERE seq = ?", k)
				return nil
			},
			want:  []string{fmt.Sprintf("store seq %d: added: ", k)},
			first: k, last: k,
		},
		{
			name: "add a row past the ledger's end",
			tamper: func(t *testing.T, d testDataDir) []string {
				storeExec(t, d, "INSERT INTO events SELECT * REPLACE (CAST(? AS UBIGINT) AS seq) FROM events WHERE seq = ?", size+10, k)
				return nil
			},
			want:  []string{fmt.Sprintf("store seq %d: added: ", size+10)},
			first: size + 10, last: size + 10,
		},
		{
			name:   "roll back to an older copy",
			tamper: rollBack,
			want:   []string{fmt.Sprintf("ledger: rolled-back at %d..%d: ", size, size+4)},
			first:  size, last: size + 4,
		},
		{
			name: "rewrite a record and re-sign with another key, checked with the original key",
			tamper: func(t *testing.T, d testDataDir) []string {
				return []string{"--key", forge(t, d)}
			},
			want:  []string{fmt.Sprintf("ledger: bad-checkpoint at 0..%d: ", end)},
			first: 0, last: end,
		},
		{
			name: "rewrite a record and re-sign with another key, checked against the witness",
			tamper: func(t *testing.T, d testDataDir) []string {
				return []string{"--key", forge(t, d), "--from-checkpoint", d.witness}
			},
			want:  []string{fmt.Sprintf("ledger: rolled-back at 0..%d: ", end)},
			first: 0, last: end,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := golden.clone(t)
			args := tc.tamper(t, d)
			code, out := verifyData(t, d.dir, args...)
			if code != 1 {
				t.Fatalf("verify %s: exit %d, want 1\n%s", strings.Join(args, " "), code, out)
			}
			fs := verifyFindings(out)
			for _, w := range tc.want {
				if !slices.ContainsFunc(fs, func(f verifyFinding) bool { return strings.HasPrefix(f.line, w) }) {
					t.Errorf("verify did not say %q", w)
				}
			}
			for _, f := range fs {
				if f.first < tc.first || f.last > tc.last || f.first > f.last {
					t.Errorf("verify names records outside %d..%d: %s", tc.first, tc.last, f.line)
				}
			}
			if t.Failed() {
				t.Logf("verify's output:\n%s", out)
			}
		})
	}
}

// writeCloudTrail writes n CloudTrail records, one per line, with event
// IDs that start with prefix.
func writeCloudTrail(t *testing.T, path, prefix string, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := range n {
		b.Write(cloudTrailRecord(fmt.Sprintf("%s-%d", prefix, i), i))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cloudTrailRecord returns a CloudTrail record with the given event ID.
func cloudTrailRecord(id string, i int) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.08","eventTime":"2026-01-01T00:%02d:%02dZ","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"vigil-test","eventID":%q,"recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","userName":"tester","accountId":"111122223333"}}`,
		i/60%60, i%60, id)
}

// searchCount returns the number of events search finds in dir.
func searchCount(t *testing.T, dir string) int {
	t.Helper()
	rows := ndjson(t, mustVigil(t, "search", "--data", dir, "--format", "ndjson", "* | stats count()"))
	if len(rows) != 1 {
		t.Fatalf("stats count(): %v", rows)
	}
	return int(rows[0]["count"].(float64))
}

func quarantineCount(t *testing.T, dir string) int {
	t.Helper()
	return len(ndjson(t, mustVigil(t, "search", "--data", dir, "--quarantine", "--format", "ndjson", "*")))
}

func TestRebuild(t *testing.T) {
	needFixtures(t)
	golden := newTestDataDir(t)
	// A line that is not JSON goes to the quarantine, which is in the
	// store only: rebuild must carry it over from the old store.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, append(cloudTrailRecord("rebuild-0", 0), "\n{broken\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVigil(t, "import", "-q", "--data", golden.dir, stratus, bad)
	events := searchCount(t, golden.dir)
	if q := quarantineCount(t, golden.dir); q != 1 {
		t.Fatalf("%d records quarantined, want 1", q)
	}

	tests := []struct {
		name   string
		damage func(t *testing.T, d testDataDir)
		// readable says the old store can still be read, so its
		// quarantine is carried over.
		readable bool
	}{
		{
			name: "store deleted",
			damage: func(t *testing.T, d testDataDir) {
				if err := os.Remove(filepath.Join(d.dir, storeFile)); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "store rows changed",
			damage: func(t *testing.T, d testDataDir) {
				storeExec(t, d, "UPDATE events SET action = 'x' WHERE seq = 7")
				storeExec(t, d, "DELETE FROM events WHERE seq = 200")
				storeExec(t, d, "INSERT INTO events SELECT * REPLACE (seq + 1000 AS seq) FROM events WHERE seq = 3")
				if code, out := verifyData(t, d.dir); code != 1 {
					t.Fatalf("verify after changing the store: exit %d\n%s", code, out)
				}
			},
			readable: true,
		},
		{
			name: "store file not a database",
			damage: func(t *testing.T, d testDataDir) {
				garbage := bytes.Repeat([]byte("not a DuckDB file "), 10000)
				if err := os.WriteFile(filepath.Join(d.dir, storeFile), garbage, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := golden.clone(t)
			tc.damage(t, d)
			out := mustVigil(t, "rebuild", "--data", d.dir)
			if want := fmt.Sprintf("rebuilt the store from the ledger: %d events\n", events); !strings.HasSuffix(out, want) {
				t.Errorf("rebuild said %q, want it to end with %q", out, want)
			}
			if carried := strings.Contains(out, "carried over 1 quarantined records"); carried != tc.readable {
				t.Errorf("rebuild said %q; want the quarantine carried over: %v", out, tc.readable)
			}
			if code, out := verifyData(t, d.dir); code != 0 || !strings.Contains(out, "store in sync") {
				t.Errorf("verify after rebuild: exit %d\n%s", code, out)
			}
			if n := searchCount(t, d.dir); n != events {
				t.Errorf("search finds %d events after rebuild, want %d", n, events)
			}
			want := 0
			if tc.readable {
				want = 1
			}
			if q := quarantineCount(t, d.dir); q != want {
				t.Errorf("%d quarantined records after rebuild, want %d", q, want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	d, _ := importLedgerData(t)
	byAction := func() map[string]float64 {
		m := map[string]float64{}
		for _, r := range ndjson(t, mustVigil(t, "search", "--data", d.dir, "--format", "ndjson", "* | stats count() by action")) {
			m[fmt.Sprint(r["action"])] = r["count"].(float64)
		}
		return m
	}
	before := byAction()
	if before["StopLogging"] != 1 {
		t.Fatalf("StopLogging: %v events before the redaction, want 1", before["StopLogging"])
	}
	rows := ndjson(t, mustVigil(t, "search", "--data", d.dir, "--format", "ndjson", "eventName:StopLogging"))
	if len(rows) != 1 {
		t.Fatalf("eventName:StopLogging: %d events before the redaction, want 1", len(rows))
	}
	seq, id := int64(rows[0]["seq"].(float64)), rows[0]["event_id"].(string)

	out := mustVigil(t, "redact", "--data", d.dir, "--query", "eventName:StopLogging", "--reason", "test")
	if want := fmt.Sprintf("erased 1 events (seq %d)", seq); !strings.HasPrefix(out, want) {
		t.Errorf("redact said %q, want %q", out, want)
	}
	code, out := verifyData(t, d.dir)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("redacted seq %d: \"test\" on ", seq)) || !strings.Contains(out, "store in sync") {
		t.Errorf("verify after the redaction: exit %d, want 0 and the redaction listed\n%s", code, out)
	}
	for _, q := range []string{"eventName:StopLogging", "StopLogging", id} {
		if rows := ndjson(t, mustVigil(t, "search", "--data", d.dir, "--format", "ndjson", q)); len(rows) != 0 {
			t.Errorf("search %s finds %d events after the redaction", q, len(rows))
		}
	}
	after := byAction()
	for action, n := range before {
		if action == "StopLogging" {
			n = 0
		}
		if after[action] != n {
			t.Errorf("action %s: %v events after the redaction, want %v", action, after[action], n)
		}
	}
	// The content is gone from the ledger's files, not only hidden.
	err := filepath.WalkDir(filepath.Join(d.dir, ledgerDir), func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if bytes.Contains(b, []byte(id)) {
			t.Errorf("%s still holds the redacted event's ID %s", path, id)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("store file", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(d.dir, storeFile))
		if err != nil {
			t.Fatal(err)
		}
		// DuckDB's DELETE only marks rows deleted; redact rewrites
		// the file so that their bytes are gone.
		if bytes.Contains(b, []byte(id)) {
			t.Errorf("after vigil redact, %s still holds the redacted event's bytes", storeFile)
		}
	})
}
