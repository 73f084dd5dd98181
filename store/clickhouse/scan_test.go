package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// TestScanWithCopies: with the merges stopped and events stored two to
// four times, as retried batches store them, a scan gives each event
// once, and the events the embedded store's scan gives, in the same
// order and whole: over every day, over part of one, in a scope with a
// grant, and with heads, which count events, not copies.
func TestScanWithCopies(t *testing.T) {
	ctx := context.Background()
	ch, db, _, _ := readStores(t)
	scan := func(sc detect.Scanner, req query.Request) []*event.Event {
		t.Helper()
		got, err := collect(func(fn func(*event.Event) error) error { return sc.Scan(ctx, req, fn) })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := query.Scope{All: true}
	shared := query.Scope{Tenants: []string{"team-b"}, Shares: []query.Share{{Grant: "g1", Tenant: "team-a", Filter: parsed(t, "action:GetPasswordData")}}}
	for _, tc := range []struct {
		name     string
		q        string
		scope    query.Scope
		from, to time.Time
	}{
		{name: "every event", scope: all},
		{name: "part of a day", q: "source:aws.cloudtrail NOT outcome:failure", scope: query.Scope{Tenants: []string{"team-b"}},
			from: time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC), to: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)},
		{name: "a grant", scope: shared},
		// The newest events of their day come first to a head, and are
		// those stored most often.
		{name: "a head", q: "source:aws.cloudtrail | head 7", scope: all},
		{name: "a sort and a head", q: "| sort actor | head 3", scope: query.Scope{Tenants: []string{"team-a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := query.Request{Query: parsed(t, tc.q), Scope: tc.scope, From: tc.from, To: tc.to}
			got, want := scan(ch, req), scan(db, req)
			if len(want) == 0 {
				t.Fatal("no events in DuckDB: not a test")
			}
			seen := map[uint64]bool{}
			for _, e := range got {
				if seen[e.Seq] {
					t.Errorf("event %d read twice", e.Seq)
				}
				seen[e.Seq] = true
			}
			if d := firstDifference(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}
