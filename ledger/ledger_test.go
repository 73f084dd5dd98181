package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testKey returns a signer and verifier for the test.
func testKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	s, v, _, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "ledger.key"), "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// testEvent returns a distinct event for index i, with a raw document
// of a few hundred bytes.
func testEvent(i int) *event.Event {
	t := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return &event.Event{
		Time: t, Received: t.Add(time.Second), Tenant: "acme", Source: "aws.cloudtrail",
		Class: event.ClassAPIActivity, ID: fmt.Sprintf("evt-%d", i),
		Cloud:   event.Cloud{Provider: "aws", Account: "123456789012", Region: "eu-west-1"},
		Actor:   event.Actor{ID: "AIDA", Type: "IAMUser", Name: fmt.Sprintf("user%d", i%7)},
		SrcIP:   netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
		Service: "iam.amazonaws.com", Action: "CreateUser",
		Outcome: event.Outcome{Result: event.OutcomeSuccess},
		Raw:     fmt.Appendf(nil, `{"eventID":"evt-%d","pad":"%s"}`, i, bytes.Repeat([]byte("x"), 100+i%400)),
	}
}

func events(from, n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = testEvent(from + i)
	}
	return out
}

func openTest(t testing.TB, dir string, opts Options) *Ledger {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fill appends n test events, from index l.Size(), in batches of batch.
func fill(t testing.TB, l *Ledger, n, batch int) {
	t.Helper()
	for n > 0 {
		k := min(batch, n)
		start := int(l.Size())
		first, err := l.Append(context.Background(), events(start, k))
		if err != nil {
			t.Fatal(err)
		}
		if first != int64(start) {
			t.Fatalf("Append returned %d, want %d", first, start)
		}
		n -= k
	}
}

func checkRecord(t testing.TB, rec Record, i int) {
	t.Helper()
	want := EncodeEvent(testEvent(i))
	if rec.Index != int64(i) || rec.Kind != KindEvent || !bytes.Equal(rec.Content, want) || rec.LeafHash() != LeafHash(want) {
		t.Fatalf("record %d: got index %d kind %v content %q", i, rec.Index, rec.Kind, rec.Content)
	}
}

func TestAppendReadScan(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Options{SegmentBytes: 16 << 10})
	evs := events(0, 3)
	first, err := l.Append(context.Background(), evs)
	if err != nil || first != 0 {
		t.Fatalf("Append = %d, %v", first, err)
	}
	for i, e := range evs {
		if e.Seq != uint64(i) {
			t.Errorf("event %d: Seq = %d", i, e.Seq)
		}
	}
	fill(t, l, 497, 29)
	if l.Size() != 500 {
		t.Fatalf("Size = %d, want 500", l.Size())
	}
	segs, _ := listSegments(dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments; want several with 16 KiB segments", len(segs))
	}
	for _, i := range []int{0, 1, 63, 64, 65, 200, 499} {
		rec, err := l.Read(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		checkRecord(t, rec, i)
	}
	if _, err := l.Read(500); err == nil {
		t.Error("Read(500) of 500 records succeeded")
	}
	for _, r := range [][2]int64{{0, 500}, {130, 131}, {77, 300}, {500, 500}} {
		next := r[0]
		err := l.Scan(r[0], r[1], func(rec Record) error {
			checkRecord(t, rec, int(next))
			next++
			return nil
		})
		if err != nil || next != r[1] {
			t.Fatalf("Scan(%d, %d) stopped at %d: %v", r[0], r[1], next, err)
		}
	}
	stop := errors.New("stop")
	if err := l.Scan(0, 500, func(Record) error { return stop }); err != stop {
		t.Errorf("Scan returned %v, want fn's error", err)
	}
	if _, err := l.Append(context.Background(), []*event.Event{{Raw: make([]byte, MaxContent)}}); err == nil {
		t.Error("Append of a record over MaxContent succeeded")
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	l := openTest(t, t.TempDir(), Options{SegmentBytes: 64 << 10})
	const writers, rounds = 16, 30
	type batch struct {
		first int64
		evs   []*event.Event
	}
	var (
		mu      sync.Mutex
		batches []batch
		wg      sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				n := 1 + (w+r)%5
				evs := make([]*event.Event, n)
				for i := range evs {
					evs[i] = testEvent(w*1000 + r*10 + i)
				}
				first, err := l.Append(context.Background(), evs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				batches = append(batches, batch{first, evs})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	owner := make(map[int64][]byte)
	total := int64(0)
	for _, b := range batches {
		for i, e := range b.evs {
			idx := b.first + int64(i)
			if e.Seq != uint64(idx) {
				t.Fatalf("batch at %d: event %d has Seq %d", b.first, i, e.Seq)
			}
			if _, dup := owner[idx]; dup {
				t.Fatalf("index %d assigned twice", idx)
			}
			owner[idx] = EncodeEvent(e)
		}
		total += int64(len(b.evs))
	}
	if l.Size() != total {
		t.Fatalf("Size = %d, appended %d", l.Size(), total)
	}
	err := l.Scan(0, total, func(rec Record) error {
		if !bytes.Equal(rec.Content, owner[rec.Index]) {
			return fmt.Errorf("record %d does not hold what its appender sent", rec.Index)
		}
		delete(owner, rec.Index)
		return nil
	})
	if err != nil || len(owner) != 0 {
		t.Fatalf("scan: %v; %d indexes never seen", err, len(owner))
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, v := testKey(t)
	l, err := Open(dir, Options{SegmentBytes: 8 << 10, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l, 300, 11)
	root, _ := l.RootHash(300)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	latest, err := os.ReadFile(filepath.Join(dir, checkpointDir, latestName))
	if err != nil {
		t.Fatal("Close wrote no checkpoint:", err)
	}
	if c, err := ParseCheckpoint(latest, v); err != nil || c.Size != 300 || c.Hash != root {
		t.Fatalf("final checkpoint = %+v, %v; want size 300 root %v", c, err, root)
	}

	l = openTest(t, dir, Options{SegmentBytes: 8 << 10, Signer: s})
	if l.Size() != 300 || l.Recovery() != (Recovery{}) {
		t.Fatalf("reopened: Size = %d, Recovery = %+v", l.Size(), l.Recovery())
	}
	if r, _ := l.RootHash(300); r != root {
		t.Fatal("root changed across reopen")
	}
	fill(t, l, 50, 9)
	for _, i := range []int{0, 150, 299, 300, 349} {
		rec, err := l.Read(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		checkRecord(t, rec, i)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("a second Open of the same directory succeeded")
	}
}

func TestReopenRebuildsHashes(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l, 200, 13)
	root, _ := l.RootHash(200)
	l.Close()
	for _, damage := range []func(string) error{
		os.Remove,
		func(p string) error { return os.Truncate(p, 1000) },
		func(p string) error { // longer than the records need
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(make([]byte, 96))
			return err
		},
	} {
		if err := damage(filepath.Join(dir, hashesName)); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{SegmentBytes: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := l.RootHash(200); err != nil || r != root {
			t.Errorf("root after rebuilding hashes = %v, %v; want %v", r, err, root)
		}
		l.Close()
		if st, _ := os.Stat(filepath.Join(dir, hashesName)); st.Size() != tlog.StoredHashCount(200)*tlog.HashSize {
			t.Errorf("hashes file has %d bytes, want %d", st.Size(), tlog.StoredHashCount(200)*tlog.HashSize)
		}
	}
}

func TestProofs(t *testing.T) {
	s, v := testKey(t)
	l := openTest(t, t.TempDir(), Options{SegmentBytes: 32 << 10, Signer: s})
	var cps []Checkpoint
	for _, n := range []int{1, 2, 7, 64, 65, 130} {
		fill(t, l, n-int(l.Size()), 5)
		signed, err := l.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCheckpoint(signed, v)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != int64(n) || c.Name != "vigil-test" {
			t.Fatalf("checkpoint = %+v", c)
		}
		cps = append(cps, c)
	}
	for _, c := range cps {
		for i := int64(0); i < c.Size; i++ {
			p, err := l.InclusionProof(i, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			leaf := LeafHash(EncodeEvent(testEvent(int(i))))
			if err := tlog.CheckRecord(p, c.Size, c.Hash, i, leaf); err != nil {
				t.Fatalf("record %d in checkpoint %d: %v", i, c.Size, err)
			}
			if i == 0 {
				if err := tlog.CheckRecord(p, c.Size, c.Hash, i, LeafHash([]byte("forged"))); err == nil {
					t.Fatal("a proof verified a forged leaf")
				}
			}
		}
		for _, d := range cps {
			if d.Size > c.Size {
				continue
			}
			p, err := l.ConsistencyProof(d.Size, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, c.Size, c.Hash, d.Size, d.Hash); err != nil {
				t.Fatalf("consistency %d→%d: %v", d.Size, c.Size, err)
			}
		}
	}
	for _, bad := range [][2]int64{{-1, 5}, {5, 5}, {0, 131}} {
		if _, err := l.InclusionProof(bad[0], bad[1]); err == nil {
			t.Errorf("InclusionProof(%d, %d) succeeded", bad[0], bad[1])
		}
	}
	if _, err := l.ConsistencyProof(0, 5); err == nil {
		t.Error("ConsistencyProof(0, 5) succeeded")
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	s, v := testKey(t)
	_, foreign := testKey(t)
	other, _, _, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "other")
	c := Checkpoint{Name: "vigil-test", Size: 10, Hash: tlog.Hash{1, 2, 3}, Time: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}
	sign := func(text string, signer note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(string(formatCheckpoint(c)), s)
	if got, err := ParseCheckpoint(good, v); err != nil || got != c {
		t.Fatalf("ParseCheckpoint = %+v, %v; want %+v", got, err, c)
	}
	flipped := bytes.Replace(good, []byte("\n10\n"), []byte("\n11\n"), 1)
	cases := map[string]struct {
		note []byte
		v    note.Verifier
	}{
		"altered text":     {flipped, v},
		"foreign key":      {good, foreign},
		"other signer":     {sign(string(formatCheckpoint(c)), other), v},
		"unsigned":         {formatCheckpoint(c), v},
		"no verifier":      {good, nil},
		"not a checkpoint": {sign("go.sum database tree\n10\nAAAA\n", s), v},
		"local time":       {sign(fmt.Sprintf("vigil ledger x\n1\n%s\n2024-01-02T03:04:05.000000000+01:00\n", tlog.Hash{}), s), v},
		"short time":       {sign(fmt.Sprintf("vigil ledger x\n1\n%s\n2024-01-02T03:04:05Z\n", tlog.Hash{}), s), v},
		"bad size":         {sign(fmt.Sprintf("vigil ledger x\n01\n%s\n2024-01-02T03:04:05.000000000Z\n", tlog.Hash{}), s), v},
		"extra line":       {sign(string(formatCheckpoint(c))+"x\n", s), v},
	}
	for name, tc := range cases {
		if got, err := ParseCheckpoint(tc.note, tc.v); err == nil {
			t.Errorf("%s: ParseCheckpoint accepted it: %+v", name, got)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.key")
	s1, v1, vkey1, err := LoadOrCreateKey(path, "vigil")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	s2, _, vkey2, err := LoadOrCreateKey(path, "vigil")
	if err != nil || vkey1 != vkey2 || s1.KeyHash() != s2.KeyHash() {
		t.Fatalf("reloading gave another key: %v", err)
	}
	v, err := note.NewVerifier(vkey1)
	if err != nil || v.KeyHash() != v1.KeyHash() {
		t.Fatalf("vkey %q does not parse to the verifier: %v", vkey1, err)
	}
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, s2)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatal("the verifier key does not verify the signer's notes:", err)
	}
	if _, _, _, err := LoadOrCreateKey(path, "another"); err == nil {
		t.Error("loading a key under another name succeeded")
	}
}

func TestAppendBatchKeys(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Options{})
	ctx := context.Background()
	fill(t, l, 3, 3)
	if first, err := l.AppendBatch(ctx, events(3, 4), "http/team-a/b1"); err != nil || first != 3 {
		t.Fatalf("AppendBatch = %d, %v; want 3", first, err)
	}
	// A batch of nothing but its key still records the key.
	if _, err := l.AppendBatch(ctx, nil, "s3://bucket/empty.json.gz#0"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendBatch(ctx, events(9, 2), ""); err == nil {
		t.Fatal("AppendBatch without a key succeeded")
	}
	l.Close()
	l = openTest(t, dir, Options{})
	defer l.Close()
	type key struct {
		key    string
		first  int64
		events int
	}
	var got []key
	if err := l.BatchKeys(0, func(k string, first int64, n int) error {
		got = append(got, key{k, first, n})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []key{{"http/team-a/b1", 3, 4}, {"s3://bucket/empty.json.gz#0", 8, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("BatchKeys: %v, want %v", got, want)
	}
	if rec, err := l.Read(7); err != nil || rec.Kind != KindMeta {
		t.Fatalf("record 7 (the first batch's key) is %v, %v; want a meta record", rec.Kind, err)
	}
}
