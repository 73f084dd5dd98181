package ledger

import (
	"bytes"
	"context"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestView reads and proves, without a lock, the records of a ledger
// that a writer holds open and goes on appending to: those its latest
// signed checkpoint covers, across segments, redacted ones included, and
// no record past it.
func TestView(t *testing.T) {
	ctx := context.Background()
	s, v := testKey(t)
	dir := t.TempDir()
	l := openTest(t, dir, Options{SegmentBytes: 4 << 10, Signer: s})
	view, err := OpenView(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := view.Read(0); err == nil {
		t.Fatal("a View read a record no checkpoint covers")
	}
	fill(t, l, 40, 7)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Redact(ctx, []int64{3}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	fill(t, l, 10, 5) // past the checkpoint: not the View's to read
	if n := len(l.segs); n < 3 {
		t.Fatalf("the test wants several segments; has %d", n)
	}

	signed, c, err := view.CheckpointCovering(ctx, 39)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCheckpoint(signed, v); err != nil || c.Size != 40 {
		t.Fatalf("checkpoint of size %d: %v", c.Size, err)
	}
	for i := range int64(40) {
		want, err := l.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		got, err := view.Read(i)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got.Index != i || got.Kind != want.Kind || got.ContentHash != want.ContentHash || !bytes.Equal(got.Content, want.Content) {
			t.Fatalf("record %d: the View reads %+v, the ledger %+v", i, got, want)
		}
		p, err := view.InclusionProof(i, c.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, c.Size, c.Hash, i, got.LeafHash()); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if got, _ := view.Read(3); got.Kind != KindRedacted {
		t.Errorf("the redacted record reads as kind %d", got.Kind)
	}
	for _, i := range []int64{40, 49, -1} {
		if _, err := view.Read(i); err == nil {
			t.Errorf("record %d, past the checkpoint, was read", i)
		}
		if _, _, err := view.CheckpointCovering(ctx, i); err == nil {
			t.Errorf("a checkpoint covers record %d", i)
		}
	}
	// The writer's next checkpoint covers the rest.
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := view.Read(49); err != nil || rec.Index != 49 {
		t.Fatalf("record 49 after the checkpoint: %+v, %v", rec, err)
	}
	if _, err := OpenView(t.TempDir()); err == nil {
		t.Error("a View of an empty directory opened")
	}
}
