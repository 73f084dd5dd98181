package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegment feeds arbitrary bytes to everything that reads segments:
// the frame reader, Open's recovery and Verify. They must report, never
// panic, and Open must either refuse or leave a ledger that verifies up
// to what it kept.
func FuzzSegment(f *testing.F) {
	var seed []byte
	for i := range 4 {
		c := EncodeEvent(testEvent(i))
		seed = appendFrame(seed, KindEvent, true, int64(i), sha256.Sum256(c), c)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(append(append([]byte{}, seed...), frameMagic[0], frameMagic[1], 1))
	f.Add([]byte{frameMagic[0], frameMagic[1], 3, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newSegReader(bytes.NewReader(b), int64(len(b)))
		for off := int64(0); off < int64(len(b)); {
			_, end, err := r.frame(off, true)
			if err != nil {
				if off = r.resync(off, true); off < 0 {
					break
				}
				continue
			}
			if end <= off {
				t.Fatalf("frame at %d ends at %d", off, end)
			}
			off = end
		}

		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(context.Background(), dir, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			return
		}
		size := l.Size()
		if err := l.Scan(0, size, func(Record) error { return nil }); err != nil {
			t.Fatalf("Open accepted a segment Scan cannot read: %v", err)
		}
		l.Close()
		rep, err := Verify(context.Background(), dir, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Problems {
			// Open checks CRCs, not content hashes.
			if p.Kind != Modified || p.First != p.Last {
				t.Fatalf("after Open: %v", p)
			}
		}
	})
}
