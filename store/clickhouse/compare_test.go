package clickhouse

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// TestCompare compares a partition's ledger with its events in
// ClickHouse: an event missing below the stored mark, one past it (not
// yet stored, not a mismatch), one whose raw bytes or tenant changed, a
// retried insert's copy that differs, a redacted event still stored, an
// event at a meta record's seq and one past the ledger's end are each
// found; identical copies, raw bytes that are not UTF-8, and another
// ledger's events are not.
func TestCompare(t *testing.T) {
	ctx := context.Background()
	s := open(t, chtest.Start(t, 2))
	// Copies of a retried insert stay as they were sent.
	setMerges(t, s, []int{0, 1}, false)
	dir := filepath.Join(t.TempDir(), "p3")
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const part = 3
	base := uint64(part) << 40

	at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	mk := func(i int) *event.Event {
		return &event.Event{Time: at.Add(time.Duration(i) * time.Second), Received: at, Tenant: "team-a", Source: "json", Class: event.ClassAPIActivity,
			Raw: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	var evs []*event.Event
	for i := range 12 {
		evs = append(evs, mk(i))
	}
	evs[7].Raw = []byte("{\"k\":\"\xff\xfe\"}")
	first, err := l.AppendBatch(ctx, evs, "bus 1") // a meta record follows the events
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		ev.Seq = base + uint64(first) + uint64(i)
	}
	metaSeq := evs[11].Seq + 1
	if err := l.Redact(ctx, []int64{int64(evs[6].Seq - base)}, "gdpr"); err != nil {
		t.Fatal(err)
	}

	clone := func(ev *event.Event) *event.Event { c := *ev; return &c }
	var stored []*event.Event
	for i, ev := range evs {
		switch i {
		case 2, 11: // missing; past the mark
			continue
		case 4:
			ev = clone(ev)
			ev.Raw = []byte(`{"n":"tampered"}`)
		case 5:
			ev = clone(ev)
			ev.Tenant = "team-b"
		}
		stored = append(stored, ev)
	}
	extra := mk(99)
	extra.Seq = metaSeq
	past := mk(100)
	past.Seq = metaSeq + 5
	stored = append(stored, extra, past)
	if err := s.Append(ctx, part, stored); err != nil {
		t.Fatal(err)
	}
	// A retried insert: event 8's copy as it was, event 9's changed.
	copy9 := clone(evs[9])
	copy9.Raw = []byte(`{"n":"other"}`)
	if err := s.Append(ctx, part, []*event.Event{clone(evs[8]), copy9}); err != nil {
		t.Fatal(err)
	}
	// Another partition's events, seqs from 0, compared with nothing here.
	other := mk(200)
	other.Seq = 1
	if err := s.Append(ctx, part+1, []*event.Event{other}); err != nil {
		t.Fatal(err)
	}

	c := s.Compare(ctx, part, base, evs[11].Seq) // event 11 is past the mark
	rep, err := ledger.Verify(ctx, dir, ledger.VerifyOptions{Record: c.Record})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	got, unstored, err := c.Finish(rep.Size)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{
		evs[2].Seq: store.MismatchMissing,
		evs[4].Seq: store.MismatchChanged,
		evs[5].Seq: store.MismatchChanged,
		evs[6].Seq: store.MismatchRedacted,
		evs[9].Seq: store.MismatchChanged,
		metaSeq:    store.MismatchAdded,
		past.Seq:   store.MismatchAdded,
	}
	found := map[uint64]string{}
	for _, m := range got {
		for seq := m.First; seq <= m.Last; seq++ {
			found[seq] = m.Kind
		}
	}
	for seq, kind := range want {
		if found[seq] != kind {
			t.Errorf("seq %d (index %d): %q, want %q", seq, seq-base, found[seq], kind)
		}
	}
	for seq, kind := range found {
		if want[seq] == "" {
			t.Errorf("seq %d (index %d): %q, want no mismatch", seq, seq-base, kind)
		}
	}
	for _, m := range got {
		switch m.First {
		case evs[4].Seq:
			if m.Detail != "differs from the ledger in raw" {
				t.Errorf("the tampered raw bytes: %s", m)
			}
		case evs[5].Seq:
			if m.Detail != "differs from the ledger in tenant" {
				t.Errorf("the changed tenant: %s", m)
			}
		}
	}
	if unstored != 1 {
		t.Errorf("%d events past the mark not stored, want 1", unstored)
	}

	// Closed early, a comparison stops its stream.
	c = s.Compare(ctx, part, base, 0)
	c.Close()
}

// FuzzParseDigest: whatever line the server's answer holds (an error's
// text comes in the rows' stead), reading it fails or gives a digest,
// never a panic.
func FuzzParseDigest(f *testing.F) {
	f.Add([]byte("1099511627776\t7465616D2D61\tBA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\t"))
	f.Add([]byte("5\t\t" + strings.Repeat("AB", 40) + "\t"))
	f.Add([]byte("7\t61\t00\tewp9"))
	f.Add([]byte("Code: 241, e.displayText() = DB::Exception: Memory limit exceeded"))
	f.Fuzz(func(t *testing.T, line []byte) {
		d, err := parseDigest(line)
		if err == nil && strings.Count(string(line), "\t") != 3 {
			t.Errorf("%q read as %+v", line, d)
		}
	})
}
