package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

func TestRedact(t *testing.T) {
	dir := t.TempDir()
	s, v := testKey(t)
	opts := Options{SegmentBytes: 16 << 10, Signer: s}
	l := openTest(t, dir, opts)
	fill(t, l, 300, 10)
	signed, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseCheckpoint(signed, v)
	// 5 and 6 in an old segment, 298 in the one being appended to.
	targets := []int64{298, 5, 6}
	if err := l.Redact(context.Background(), targets, "GDPR erasure #12"); err != nil {
		t.Fatal(err)
	}
	if err := l.Redact(context.Background(), []int64{300}, "x"); err == nil {
		t.Error("redacting past the end succeeded")
	}
	fill(t, l, 20, 7) // appends still work after rewriting the active segment
	for i := int64(0); i < 320; i++ {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(targets, i) {
			checkRecord(t, rec, int(i))
			continue
		}
		red, err := rec.Redaction()
		if err != nil || red.Reason != "GDPR erasure #12" || rec.Kind != KindRedacted {
			t.Fatalf("record %d: %+v, %v", i, rec, err)
		}
		if rec.LeafHash() != LeafHash(EncodeEvent(testEvent(int(i)))) {
			t.Fatalf("record %d lost its content hash", i)
		}
		if i < c.Size {
			p, err := l.InclusionProof(i, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, c.Size, c.Hash, i, rec.LeafHash()); err != nil {
				t.Fatalf("redacted record %d no longer proves into the old checkpoint: %v", i, err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), dir, VerifyOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("problems after redaction: %v", rep.Problems)
	}
	want := []RedactedRange{{First: 5, Last: 6, Reason: "GDPR erasure #12"}, {First: 298, Last: 298, Reason: "GDPR erasure #12"}}
	if len(rep.Redacted) != 2 || rep.Redacted[0].First != 5 || rep.Redacted[0].Last != 6 || rep.Redacted[1].First != 298 || rep.Redacted[1].Reason != want[1].Reason {
		t.Fatalf("Redacted = %+v, want %+v", rep.Redacted, want)
	}
	l = openTest(t, dir, opts)
	if l.Size() != 320 {
		t.Fatalf("Size after reopen = %d", l.Size())
	}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold func(first, last int64) bool
	}{
		{"no hold", nil},
		{"hold on record 30", func(first, last int64) bool { return first <= 30 && 30 <= last }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, v := testKey(t)
			opts := Options{SegmentBytes: 8 << 10, Signer: s, Hold: tc.hold}
			l := openTest(t, dir, opts)
			fill(t, l, 200, 10)
			old, err := l.Checkpoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			oc, _ := ParseCheckpoint(old, v)
			firsts, _ := listSegments(dir)
			rm, err := l.RemoveBefore(context.Background(), 120, "kept 90 days")
			if err != nil {
				t.Fatal(err)
			}
			if rm.Index != 200 || rm.Size != 200 || rm.RootBefore != oc.Hash || l.Size() != 201 {
				t.Fatalf("Removal = %+v, Size %d", rm, l.Size())
			}
			if r, _ := l.RootHash(201); r != rm.RootAfter {
				t.Fatal("RootAfter is not the tree's root")
			}
			// Every removed or held segment lies wholly below 120, and
			// the segment that straddles 120 is kept.
			var gone []int64
			for _, r := range slices.Concat(rm.Removed, rm.Held) {
				if r.Last >= 120 {
					t.Errorf("range %v reaches past 120", r)
				}
				gone = append(gone, r.First)
			}
			for _, f := range firsts {
				if f < 120 && !slices.Contains(gone, f) && f != firsts[slices.IndexFunc(firsts, func(x int64) bool { return x > 120 })-1] {
					t.Errorf("segment %d below 120 neither removed nor held", f)
				}
			}
			if tc.hold != nil && (len(rm.Held) != 1 || rm.Held[0].First > 30 || rm.Held[0].Last < 30) {
				t.Fatalf("Held = %v, want the segment of 30", rm.Held)
			}
			if _, err := l.Read(rm.Removed[0].First); !errors.Is(err, ErrRemoved) {
				t.Errorf("Read of a removed record: %v, want ErrRemoved", err)
			}
			if tc.hold != nil {
				rec, err := l.Read(30)
				if err != nil {
					t.Fatal("held record:", err)
				}
				checkRecord(t, rec, 30)
			}
			var scanned int64
			l.Scan(0, 200, func(Record) error { scanned++; return nil })
			var removed int64
			for _, r := range rm.Removed {
				removed += r.Last - r.First + 1
			}
			if scanned != 200-removed {
				t.Errorf("Scan saw %d records, want %d", scanned, 200-removed)
			}
			// Kept records still prove into the checkpoint from before.
			for _, i := range []int64{150, 199} {
				p, _ := l.InclusionProof(i, oc.Size)
				if err := tlog.CheckRecord(p, oc.Size, oc.Hash, i, LeafHash(EncodeEvent(testEvent(int(i))))); err != nil {
					t.Fatal(err)
				}
			}
			meta, err := l.Read(rm.Index)
			if err != nil || meta.Kind != KindMeta || !strings.Contains(string(meta.Content), `"kept 90 days"`) {
				t.Fatalf("meta record: %+v, %v", meta, err)
			}
			fill(t, l, 10, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			rep, err := Verify(context.Background(), dir, VerifyOptions{Verifier: v, Trusted: [][]byte{old}})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("problems after retention: %v", rep.Problems)
			}
			var got []Range
			for _, r := range rep.Removed {
				if r.Reason != "kept 90 days" || r.Record != rm.Index || !r.Signed {
					t.Errorf("Removed %+v", r)
				}
				got = append(got, Range{r.First, r.Last})
			}
			if !slices.Equal(got, rm.Removed) {
				t.Errorf("Verify reports removed %v, RemoveBefore removed %v", got, rm.Removed)
			}
			l = openTest(t, dir, opts)
			if l.Size() != 211 {
				t.Fatalf("Size after reopen = %d, want 211", l.Size())
			}
			if rec, err := l.Read(150); err != nil {
				t.Fatal(err)
			} else {
				checkRecord(t, rec, 150)
			}
			l.Close()

			// A segment deleted without a retention record is tampering.
			firsts, _ = listSegments(dir)
			os.Remove(filepath.Join(dir, segName(firsts[len(firsts)-2])))
			rep, _ = Verify(context.Background(), dir, VerifyOptions{Verifier: v})
			if !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Kind == SegmentMissing && p.First == firsts[len(firsts)-2] }) {
				t.Errorf("deleting a segment after retention: %v", rep.Problems)
			}
		})
	}
}

func TestRecoverTornTail(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, Options{})
	fill(t, l, 20, 20)
	l.Close()
	seg := filepath.Join(dir, segName(0))
	st, _ := os.Stat(seg)
	content := EncodeEvent(testEvent(20))
	frame := appendFrame(nil, KindEvent, true, 20, sha256.Sum256(content), content)
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(frame[:100])
	f.Close()

	l = openTest(t, dir, Options{})
	want := Recovery{Segment: segName(0), Offset: st.Size(), BytesTruncated: 100, RecordsDropped: 1}
	if l.Size() != 20 || l.Recovery() != want {
		t.Fatalf("Size %d, Recovery %+v; want 20, %+v", l.Size(), l.Recovery(), want)
	}
	fill(t, l, 5, 5)
	l.Close()

	// Damage followed by good frames is not a torn write: Open refuses.
	offs, _ := frames(t, seg)
	edit(t, seg, func(b []byte) []byte { b[offs[10]+50] ^= 1; return b })
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a damaged segment: %v, want ErrCorrupt", err)
	}
}

// TestRecoverKeepsAppendsWhole cuts a segment inside an append of several
// records, at a frame boundary and inside a frame: recovery drops the
// append's records that did reach the disk too, since the append was
// never acknowledged, and keeps every earlier append.
func TestRecoverKeepsAppendsWhole(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cut     func(offs []int64) int64 // where the file ends, given the frame offsets
		dropped int
	}{
		{"at a frame boundary", func(o []int64) int64 { return o[13] }, 3},
		{"inside a frame", func(o []int64) int64 { return o[13] + 30 }, 4},
		{"after the whole append", func(o []int64) int64 { return -1 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, Options{})
			fill(t, l, 10, 10) // appends [0, 10)
			fill(t, l, 8, 8)   // appends [10, 18)
			l.Close()
			seg := filepath.Join(dir, segName(0))
			offs, _ := frames(t, seg)
			if cut := tc.cut(offs); cut >= 0 {
				if err := os.Truncate(seg, cut); err != nil {
					t.Fatal(err)
				}
			}
			l = openTest(t, dir, Options{})
			defer l.Close()
			want := int64(18)
			if tc.dropped > 0 {
				want = 10
			}
			if l.Size() != want || l.Recovery().RecordsDropped != tc.dropped {
				t.Fatalf("Size %d, Recovery %+v; want size %d, %d records dropped", l.Size(), l.Recovery(), want, tc.dropped)
			}
			if tc.dropped > 0 && l.Recovery().Offset != offs[10] {
				t.Errorf("cut at offset %d, want %d (the end of the first append)", l.Recovery().Offset, offs[10])
			}
			// The ledger goes on from there.
			fill(t, l, 5, 5)
			for i := int64(0); i < l.Size(); i++ {
				if _, err := l.Read(i); err != nil {
					t.Fatalf("Read(%d): %v", i, err)
				}
			}
		})
	}
}

func TestOpenRefusesToCutCheckpointedRecords(t *testing.T) {
	dir := t.TempDir()
	s, _ := testKey(t)
	l, _ := Open(dir, Options{Signer: s})
	fill(t, l, 20, 20)
	l.Close() // checkpoint at 20
	seg := filepath.Join(dir, segName(0))
	offs, _ := frames(t, seg)
	os.Truncate(seg, offs[19]+10)
	if _, err := Open(dir, Options{Signer: s}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open after losing a checkpointed record: %v, want ErrCorrupt", err)
	}
}

func TestWitnesses(t *testing.T) {
	s, v := testKey(t)
	var posts [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			http.Error(w, "want POST text/plain", http.StatusBadRequest)
			return
		}
		if _, err := ParseCheckpoint(body, v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		posts = append(posts, body)
	}))
	defer srv.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "disk full", http.StatusInsufficientStorage)
	}))
	defer failing.Close()

	wfile := filepath.Join(t.TempDir(), "witness.log")
	dir := t.TempDir()
	l := openTest(t, dir, Options{Signer: s, Witnesses: []Witness{
		FileWitness{Path: wfile},
		HTTPWitness{URL: srv.URL, Client: srv.Client()},
	}})
	for range 3 {
		fill(t, l, 5, 5)
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(wfile)
	if err != nil {
		t.Fatal(err)
	}
	notes := SplitCheckpoints(data)
	if len(notes) != 3 || len(posts) != 3 {
		t.Fatalf("file witness holds %d notes, HTTP witness got %d; want 3", len(notes), len(posts))
	}
	for i, n := range notes {
		c, err := ParseCheckpoint(n, v)
		if err != nil || c.Size != int64(5*(i+1)) || string(n) != string(posts[i]) {
			t.Fatalf("witnessed note %d: %+v, %v", i, c, err)
		}
	}

	l2 := openTest(t, t.TempDir(), Options{Signer: s, Witnesses: []Witness{HTTPWitness{URL: failing.URL}}})
	fill(t, l2, 3, 3)
	signed, err := l2.Checkpoint(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("failing witness: err = %v", err)
	}
	if c, perr := ParseCheckpoint(signed, v); perr != nil || c.Size != 3 {
		t.Fatalf("checkpoint lost to a failing witness: %v", perr)
	}
	if _, err := os.Stat(filepath.Join(l2.Dir(), checkpointDir, latestName)); err != nil {
		t.Fatal("checkpoint not stored:", err)
	}
}

func TestCheckpointLoop(t *testing.T) {
	s, v := testKey(t)
	dir := t.TempDir()
	l := openTest(t, dir, Options{Signer: s, CheckpointEvery: 5 * time.Millisecond})
	fill(t, l, 10, 10)
	latest := filepath.Join(dir, checkpointDir, latestName)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(latest)
		if err == nil {
			if c, err := ParseCheckpoint(b, v); err == nil && c.Size == 10 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of size 10 written by the background loop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
