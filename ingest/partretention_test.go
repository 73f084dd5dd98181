package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"golang.org/x/mod/sumdb/note"
)

// TestRetainPartition applies retention to a scale-out partition, its
// ledger and its events in ClickHouse: the expired events of a tenant
// are erased from the ledger and deleted from the store, except those
// under a legal hold, another tenant's kept forever, the recent ones and
// another partition's; the segments left with nothing are removed, and
// the ledger still verifies.
func TestRetainPartition(t *testing.T) {
	ctx := context.Background()
	const part = 3
	ch, l, verifier, dir := partitionFixture(t, part)

	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old := now.Add(-100 * 24 * time.Hour)
	hold := [2]time.Time{old.Add(50 * time.Minute), old.Add(60 * time.Minute)}
	n := 0
	mk := func(tenant string, at time.Time) *event.Event {
		n++
		return &event.Event{Time: at, Received: at, Tenant: tenant, Source: "aws.cloudtrail", Class: "api",
			ID: fmt.Sprint("e", n), Action: "GetObject", Raw: []byte(fmt.Sprintf(`{"eventName":"GetObject","n":%d,"pad":"%0200d"}`, n, 0))}
	}
	var evs []*event.Event
	for i := range 60 { // a's old events: a legal hold keeps ten of them
		evs = append(evs, mk("a", old.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 5 {
		evs = append(evs, mk("b", old.Add(time.Duration(i)*time.Minute)), mk(query.SystemTenant, old), mk("a", now.Add(-time.Duration(i)*time.Hour)))
	}
	for i := 0; i < len(evs); i += 16 {
		batch := evs[i:min(i+16, len(evs))]
		first, err := l.AppendBatch(ctx, batch, fmt.Sprint("bus:", i))
		if err != nil {
			t.Fatal(err)
		}
		for j, ev := range batch {
			ev.Seq = PartitionSeq(part, first+int64(j))
		}
	}
	if err := ch.Append(ctx, part, evs); err != nil {
		t.Fatal(err)
	}
	// Another partition's old events of a: not this partition's to erase.
	other := []*event.Event{mk("a", old), mk("a", old.Add(time.Minute))}
	for i, ev := range other {
		ev.Seq = PartitionSeq(part+1, int64(i))
	}
	if err := ch.Append(ctx, part+1, other); err != nil {
		t.Fatal(err)
	}

	r := Retention{Default: 30 * 24 * time.Hour, Tenants: map[string]time.Duration{"b": 0},
		Holds: []Hold{{Tenant: "a", From: hold[0], To: hold[1], Reason: "case 12"}}}
	res, err := retainPartition(ctx, ch, l, part, r, now)
	if err != nil {
		t.Fatal(err)
	}
	expired := func(ev *event.Event) bool {
		return ev.Tenant == "a" && ev.Time.Before(now.Add(-r.Default)) && (ev.Time.Before(hold[0]) || !ev.Time.Before(hold[1]))
	}
	want := 0
	for _, ev := range evs {
		if expired(ev) {
			want++
		}
	}
	if res.Erased != int64(want) || len(res.Removal.Removed) == 0 {
		t.Fatalf("erased %d events and removed %d segments; want %d events and some segments", res.Erased, len(res.Removal.Removed), want)
	}

	// The ledger has erased exactly the expired events (or removed their
	// segments), and the store holds exactly the others.
	for _, ev := range evs {
		_, index := SeqPartition(ev.Seq)
		rec, err := l.Read(index)
		gone := errors.Is(err, ledger.ErrRemoved) || err == nil && rec.Kind == ledger.KindRedacted
		if err != nil && !gone {
			t.Fatal(err)
		}
		if gone != expired(ev) {
			t.Errorf("event %s of %s at %s: erased from the ledger %v, expired %v", ev.ID, ev.Tenant, ev.Time, gone, expired(ev))
		}
	}
	for tenant, want := range map[string]int64{"a": int64(60 + 5 + len(other) - want), "b": 5, query.SystemTenant: 5} {
		if got, err := ch.Count(ctx, tenant); err != nil || got != want {
			t.Errorf("ClickHouse holds %d events of %s (%v), want %d", got, tenant, err, want)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Verify(ctx, dir, ledger.VerifyOptions{Verifier: verifier})
	if err != nil || !rep.OK() || len(rep.Removed) == 0 {
		t.Fatalf("the ledger after retention: %v, problems %v, removals %d", err, rep.Problems, len(rep.Removed))
	}

	// A second pass finds nothing more to do.
	if res, err := retainPartition(ctx, ch, l, part, r, now); err != nil || res.Erased != 0 {
		t.Fatalf("second pass: erased %d, %v", res.Erased, err)
	}
}

// partitionFixture starts two ClickHouse shards and opens the ledger of
// partition part in a directory of its own, with small segments, signed
// by a key made for it, for a test of what a process node does to its
// partitions. It returns the store, the ledger, the key's verifier and
// the ledger's directory.
func partitionFixture(t *testing.T, part int) (*clickhouse.Store, *ledger.Ledger, note.Verifier, string) {
	t.Helper()
	shards := chtest.Start(t, 2)
	urls := make([]string, len(shards))
	for i, s := range shards {
		urls[i] = s.URL
	}
	ch, err := clickhouse.Open(context.Background(), clickhouse.Options{Shards: urls, Cluster: chtest.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signer, verifier, _, err := ledger.LoadOrCreateKey(filepath.Join(dir, "ledger.key"), "vigil")
	if err != nil {
		t.Fatal(err)
	}
	pdir := PartitionLedger(dir, part)
	l, err := ledger.Open(pdir, ledger.Options{Signer: signer, Name: fmt.Sprintf("vigil-p%d", part), SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return ch, l, verifier, pdir
}
