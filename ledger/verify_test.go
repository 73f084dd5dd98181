package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// frames returns the offsets and lengths of the frames of a segment.
func frames(t testing.TB, path string) (offs, lens []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newSegReader(bytes.NewReader(b), int64(len(b)))
	for off := int64(0); off < int64(len(b)); {
		_, end, err := r.frame(off, true)
		if err != nil {
			t.Fatal(err)
		}
		offs, lens = append(offs, off), append(lens, end-off)
		off = end
	}
	return offs, lens
}

// ledgerFixture is a closed ledger of 400 records in 16 KiB segments,
// with checkpoints at 100, 250 and 400.
func ledgerFixture(t testing.TB) (dir string, v note.Verifier) {
	t.Helper()
	dir = t.TempDir()
	s, v := testKey(t)
	l, err := Open(dir, Options{SegmentBytes: 16 << 10, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{100, 250, 400} {
		fill(t, l, n-int(l.Size()), 50)
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, v
}

// segmentOf returns the path of the segment holding index and the
// index's position in it.
func segmentOf(t testing.TB, dir string, index int64) (string, int) {
	t.Helper()
	firsts, _ := listSegments(dir)
	i, _ := slices.BinarySearch(firsts, index+1)
	return filepath.Join(dir, segName(firsts[i-1])), int(index - firsts[i-1])
}

func edit(t testing.TB, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyClean(t *testing.T) {
	dir, v := ledgerFixture(t)
	var seen []int64
	var progress int64
	rep, err := Verify(context.Background(), dir, VerifyOptions{
		Verifier: v,
		Record:   func(r Record) error { seen = append(seen, r.Index); return nil },
		Progress: func(done, total int64) { progress = done },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("problems in an untouched ledger: %v", rep.Problems)
	}
	l := openTest(t, dir, Options{})
	root, _ := l.RootHash(400)
	if rep.Size != 400 || rep.Root != root || rep.Records != 400 || len(rep.Checkpoints) != 3 || !rep.SignaturesChecked {
		t.Fatalf("report = size %d root %v records %d checkpoints %d", rep.Size, rep.Root, rep.Records, len(rep.Checkpoints))
	}
	for _, c := range rep.Checkpoints {
		if !c.OK {
			t.Errorf("checkpoint %s not OK: %s", c.Source, c.Detail)
		}
	}
	if len(seen) != 400 || !slices.IsSorted(seen) || progress != rep.Bytes {
		t.Errorf("Record saw %d records (sorted %v), progress %d of %d bytes", len(seen), slices.IsSorted(seen), progress, rep.Bytes)
	}
}

func TestVerifyTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string) [][]byte // returns trusted checkpoints
		want    []Problem                               // Kind, First, Last
		noOther bool
	}{
		{
			name: "flip a byte in a record",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 123)
				offs, lens := frames(t, path)
				edit(t, path, func(b []byte) []byte { b[offs[k]+lens[k]/2] ^= 0x40; return b })
				return nil
			},
			want: []Problem{{Kind: Modified, First: 123, Last: 123}},
		},
		{
			name: "flip a byte in a frame header",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 77)
				offs, _ := frames(t, path)
				edit(t, path, func(b []byte) []byte { b[offs[k]+44] ^= 0x01; return b }) // length field
				return nil
			},
			want: []Problem{{Kind: Modified, First: 77, Last: 77}},
		},
		{
			name: "flip a byte in the last record",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 399)
				offs, _ := frames(t, path)
				edit(t, path, func(b []byte) []byte { b[offs[k]+60] ^= 0x01; return b })
				return nil
			},
			want: []Problem{{Kind: Modified, First: 399, Last: 399}},
		},
		{
			name: "rewrite a record with a valid checksum",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 222)
				offs, lens := frames(t, path)
				content := EncodeEvent(testEvent(9999))
				forged := appendFrame(nil, KindEvent, true, 222, sha256.Sum256(content), content)
				edit(t, path, func(b []byte) []byte {
					return slices.Concat(b[:offs[k]], forged, b[offs[k]+lens[k]:])
				})
				return nil
			},
			want: []Problem{{Kind: Modified, First: 222, Last: 222}},
		},
		{
			name: "change content but keep the frame's hash",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 10)
				offs, lens := frames(t, path)
				edit(t, path, func(b []byte) []byte {
					f := b[offs[k] : offs[k]+lens[k]]
					f[frameHeader+5] ^= 1
					binary.BigEndian.PutUint32(f[len(f)-4:], crc32.Checksum(f[:len(f)-4], castagnoli))
					return b
				})
				return nil
			},
			want: []Problem{{Kind: Modified, First: 10, Last: 10}},
		},
		{
			name: "delete a frame",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 150)
				offs, lens := frames(t, path)
				edit(t, path, func(b []byte) []byte { return slices.Delete(b, int(offs[k]), int(offs[k]+lens[k])) })
				return nil
			},
			want: []Problem{{Kind: Deleted, First: 150, Last: 150}},
		},
		{
			name: "insert a copy of a frame",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 301)
				offs, lens := frames(t, path)
				edit(t, path, func(b []byte) []byte {
					dup := slices.Clone(b[offs[k] : offs[k]+lens[k]])
					return slices.Insert(b, int(offs[k+2]), dup...)
				})
				return nil
			},
			want: []Problem{{Kind: Inserted, First: 301, Last: 301}},
		},
		{
			name: "insert a forged frame",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 50)
				offs, _ := frames(t, path)
				content := EncodeEvent(testEvent(777))
				forged := appendFrame(nil, KindEvent, true, 50, sha256.Sum256(content), content)
				edit(t, path, func(b []byte) []byte { return slices.Insert(b, int(offs[k]), forged...) })
				return nil
			},
			want: []Problem{{Kind: Inserted, First: 50, Last: 50}},
		},
		{
			name: "swap two frames",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 200)
				offs, lens := frames(t, path)
				if k+3 >= len(offs) {
					t.Skip("fixture layout changed")
				}
				edit(t, path, func(b []byte) []byte {
					a := b[offs[k] : offs[k]+lens[k]]
					c := b[offs[k+3] : offs[k+3]+lens[k+3]]
					return slices.Concat(b[:offs[k]], c, b[offs[k]+lens[k]:offs[k+3]], a, b[offs[k+3]+lens[k+3]:])
				})
				return nil
			},
			want:    []Problem{{Kind: Reordered, First: 200, Last: 203}},
			noOther: true,
		},
		{
			name: "delete a segment",
			tamper: func(t *testing.T, dir string) [][]byte {
				firsts, _ := listSegments(dir)
				if err := os.Remove(filepath.Join(dir, segName(firsts[2]))); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want: []Problem{{Kind: SegmentMissing}}, // range filled in below
		},
		{
			name: "cut the end of the last segment",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, k := segmentOf(t, dir, 395)
				offs, _ := frames(t, path)
				if err := os.Truncate(path, offs[k]); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want: []Problem{{Kind: Deleted, First: 395, Last: 399}},
		},
		{
			name: "torn write at the end",
			tamper: func(t *testing.T, dir string) [][]byte {
				path, _ := segmentOf(t, dir, 399)
				content := EncodeEvent(testEvent(400))
				frame := appendFrame(nil, KindEvent, true, 400, sha256.Sum256(content), content)
				edit(t, path, func(b []byte) []byte { return append(b, frame[:len(frame)/2]...) })
				return nil
			},
			want:    []Problem{{Kind: Torn, First: 400, Last: 400}},
			noOther: true,
		},
		{
			name: "roll back to an older copy",
			tamper: func(t *testing.T, dir string) [][]byte {
				trusted, err := os.ReadFile(filepath.Join(dir, checkpointDir, latestName))
				if err != nil {
					t.Fatal(err)
				}
				old := filepath.Join(t.TempDir(), "old")
				if out, err := exec.Command("cp", "-a", dir, old).CombinedOutput(); err != nil {
					t.Fatal(err, string(out))
				}
				// Make the copy older: back to the checkpoint at 250.
				path, k := segmentOf(t, old, 250)
				offs, _ := frames(t, path)
				os.Truncate(path, offs[k])
				firsts, _ := listSegments(old)
				for _, f := range firsts {
					if f > 250 {
						os.Remove(filepath.Join(old, segName(f)))
					}
				}
				ents, _ := os.ReadDir(filepath.Join(old, checkpointDir))
				for _, e := range ents {
					if e.Name() >= "00000000000000000251" {
						os.Remove(filepath.Join(old, checkpointDir, e.Name()))
					}
				}
				os.Truncate(filepath.Join(old, hashesName), 0)
				os.RemoveAll(dir)
				os.Rename(old, dir)
				return [][]byte{trusted}
			},
			want: []Problem{{Kind: RolledBack, First: 250, Last: 399}},
		},
		{
			name: "alter the hashes file",
			tamper: func(t *testing.T, dir string) [][]byte {
				f, err := os.OpenFile(filepath.Join(dir, hashesName), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte{1, 2, 3}, tlog.StoredHashIndex(0, 42)*tlog.HashSize)
				f.Close()
				return nil
			},
			want:    []Problem{{Kind: HashesMismatch, First: 42, Last: 42}},
			noOther: true,
		},
		{
			name: "forge a checkpoint",
			tamper: func(t *testing.T, dir string) [][]byte {
				edit(t, filepath.Join(dir, checkpointDir, latestName), func(b []byte) []byte {
					return bytes.Replace(b, []byte("\n400\n"), []byte("\n401\n"), 1)
				})
				return nil
			},
			want:    []Problem{{Kind: BadCheckpoint, First: 0, Last: 400}},
			noOther: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, v := ledgerFixture(t)
			want := tc.want
			if tc.name == "delete a segment" {
				firsts, _ := listSegments(dir)
				want = []Problem{{Kind: SegmentMissing, First: firsts[2], Last: firsts[3] - 1}}
			}
			trusted := tc.tamper(t, dir)
			rep, err := Verify(context.Background(), dir, VerifyOptions{Verifier: v, Trusted: trusted})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if !slices.ContainsFunc(rep.Problems, func(p Problem) bool {
					return p.Kind == w.Kind && p.First == w.First && p.Last == w.Last
				}) {
					t.Errorf("want %s at %d..%d; got:", w.Kind, w.First, w.Last)
					for _, p := range rep.Problems {
						t.Logf("  %v", p)
					}
				}
			}
			if tc.noOther && len(rep.Problems) != len(want) {
				t.Errorf("want only %v; got %v", want, rep.Problems)
			}
		})
	}
}
