package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestBundleSet: an export over two ledgers, one written from the ledger
// held, one from a View of a ledger another process writes, packed as a
// set, verifies part by part and whole; a set missing a part, holding a
// part twice or a part of another set, does not.
func TestBundleSet(t *testing.T) {
	ctx := context.Background()
	evs := stratusEvents(t)
	a := newBundleFixture(t, evs[:len(evs)/2])
	// The other ledger under the same key, as a scale-out's partitions.
	// Small segments: the View reads its records across several.
	bl := openTest(t, t.TempDir(), Options{Signer: a.signer, SegmentBytes: 16 << 10})
	if _, err := bl.Append(ctx, evs[len(evs)/2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := bl.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// Past the checkpoint: a View proves what a signed checkpoint covers.
	if _, err := bl.Append(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	last := int64(len(evs)-len(evs)/2) - 1 // the last record the checkpoint covers
	if segs, _ := listSegments(bl.dir); len(segs) < 2 {
		t.Fatalf("%d segments: the View's reads cross none", len(segs))
	}
	view, err := OpenView(bl.dir)
	if err != nil {
		t.Fatal(err)
	}

	custody := func(set string, part, parts int) Custody {
		c := testCustody
		c.Set, c.Part, c.Parts = set, part, parts
		return c
	}
	held := func(c Custody) []byte {
		t.Helper()
		var buf bytes.Buffer
		if _, err := WriteBundle(ctx, &buf, a.l, []int64{0, 1, 2, a.odd}, c, a.signer, a.vkey); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	viewed := func(c Custody) []byte {
		t.Helper()
		var buf bytes.Buffer
		sum, err := view.WriteBundle(ctx, &buf, []int64{0, 3, 4, last}, c, a.signer, a.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Checkpoint.Size != int64(len(evs)-len(evs)/2) {
			t.Errorf("the View's bundle is against a checkpoint of %d records, want the signed one's %d", sum.Checkpoint.Size, len(evs)-len(evs)/2)
		}
		return buf.Bytes()
	}
	if _, err := view.WriteBundle(ctx, &bytes.Buffer{}, []int64{int64(len(evs) - len(evs)/2)}, custody("x", 1, 1), a.signer, a.vkey); err == nil {
		t.Error("a View wrote a bundle of a record no signed checkpoint covers")
	}
	pack := func(parts ...[]byte) []byte {
		t.Helper()
		var buf bytes.Buffer
		sw := NewBundleSetWriter(&buf)
		for i, p := range parts {
			w, err := sw.Part(fmt.Sprintf("vigil-p%d.zip", i))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(p)
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	verify := func(set []byte) (*BundleSetReport, error) {
		return VerifyBundleSet(bytes.NewReader(set), int64(len(set)), BundleVerifyOptions{Key: a.vkey})
	}

	rep, err := verify(pack(held(custody("x-1", 1, 2)), viewed(custody("x-1", 2, 2))))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Set != "x-1" || len(rep.Parts) != 2 || rep.Events() != 8 {
		t.Fatalf("the set: ok %v, set %q, %d parts, %d events (want 8), problems %v", rep.OK(), rep.Set, len(rep.Parts), rep.Events(), rep.Problems)
	}
	for _, p := range rep.Parts {
		if !p.TrustedKey || !p.OK() {
			t.Errorf("part %s: %v", p.Name, p.Problems)
		}
	}

	for _, tc := range []struct {
		name string
		set  []byte
		want string
	}{
		{"a part missing", pack(held(custody("x-1", 1, 2))), "but the set holds 1"},
		{"a part twice", pack(held(custody("x-1", 1, 2)), held(custody("x-1", 1, 2))), "part 1 again"},
		{"a part of another set", pack(held(custody("x-1", 1, 2)), viewed(custody("x-2", 2, 2))), "not of x-1"},
		{"a bundle of no set", pack(held(testCustody)), "names no set"},
	} {
		rep, err := verify(tc.set)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "; "), tc.want) {
			t.Errorf("%s: ok %v, problems %v; want one saying %q", tc.name, rep.OK(), rep.Problems, tc.want)
		}
	}
	// A part changed in the set fails as that part.
	tampered := pack(held(custody("x-1", 1, 2)), viewed(custody("x-1", 2, 2)))
	i := bytes.Index(tampered, []byte("StopLogging"))
	if i < 0 {
		// The events are deflated inside the part: flip a byte of it.
		i = len(tampered) / 2
	}
	tampered[i] ^= 1
	if rep, err := verify(tampered); err == nil && rep.OK() {
		t.Error("a set with a byte of a part changed verifies")
	}
	// A part written straight into the set, as a scale-out's export is.
	var direct bytes.Buffer
	sw := NewBundleSetWriter(&direct)
	w, err := sw.Part("vigil-p1.zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := view.WriteBundle(ctx, w, []int64{0, 3, 4, last}, custody("x-3", 1, 1), a.signer, a.vkey); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verify(direct.Bytes()); err != nil || !rep.OK() || rep.Events() != 4 {
		t.Errorf("a set written part by part: %v %+v", err, rep)
	}
	if _, err := sw.Part("../p2.zip"); err == nil {
		t.Error("a part named with a path")
	}
	// A single bundle is not a set: VerifyBundle checks it.
	one := held(custody("x-1", 1, 1))
	if _, err := VerifyBundleSet(bytes.NewReader(one), int64(len(one)), BundleVerifyOptions{Key: a.vkey}); !errors.Is(err, ErrNotBundleSet) {
		t.Errorf("a bundle as a set: %v, want ErrNotBundleSet", err)
	}
}
