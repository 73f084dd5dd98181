package duckdb

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// Deleting events (a redaction) drops the word filters of their blocks,
// which still hold their words, and the other events of those blocks are
// still found.
func TestDeleteForgetsFilters(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	next := uint64(0)
	for b := range 3 {
		var evs []*event.Event
		for i := range 100 {
			evs = append(evs, &event.Event{Time: t0, Received: t0, Tenant: "t", Source: "json", Class: "other",
				Raw: fmt.Appendf(nil, `{"batch":"b%d","n":"word%d"}`, b, b*100+i)})
		}
		next = number(evs, next)
		if err := db.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	filters := func() (n int) {
		t.Helper()
		if err := db.SQL().QueryRow("SELECT count(*) FROM token_blooms_1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := filters()
	db.LoadWordIndex(ctx)
	if err := db.Delete(ctx, []uint64{150}); err != nil { // word150, in the second batch
		t.Fatal(err)
	}
	if after := filters(); after != before-1 {
		t.Errorf("%d filters after deleting an event, want %d: the filter of its block dropped", after, before-1)
	}
	for q, want := range map[string][]uint64{"word150": nil, "word151": {151}, "word250": {250}, "b1": nil} {
		res := search(t, db, q, query.Scope{All: true})
		var got []uint64
		for _, r := range res.Rows {
			got = append(got, r[col(res, "seq")].(uint64))
		}
		if q == "b1" {
			if len(got) != 99 {
				t.Errorf("%s: %d events, want the 99 left", q, len(got))
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}

func TestSeqs(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	var evs []*event.Event
	for i := range 10 {
		evs = append(evs, &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Received: t0, Tenant: "t", Source: "json", Class: "other",
			Action: []string{"a", "b"}[i%2], Raw: []byte(`{}`)})
	}
	number(evs, 100)
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	parse := func(q string) *query.Query {
		p, err := query.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := db.Seqs(ctx, query.Request{Query: parse("action:b"), Scope: query.Scope{All: true}, Limit: 1000})
	if want := []uint64{101, 103, 105, 107, 109}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Seqs(action:b) = %v, %v; want %v", got, err, want)
	}
	got, err = db.Seqs(ctx, query.Request{Query: parse("action:b | head 2"), Scope: query.Scope{All: true}, Limit: 1000})
	if want := []uint64{107, 109}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Seqs(action:b | head 2) = %v, %v; want the newest two, %v", got, err, want)
	}
	if _, err := db.Seqs(ctx, query.Request{Query: parse("| stats count() by action"), Scope: query.Scope{All: true}}); err == nil {
		t.Error("Seqs of a table: no error")
	}
	// The events of seqs found, read whole, across more than one query's
	// worth; seqs that hold no event are left out.
	var at []uint64
	for i := range 2500 {
		at = append(at, uint64(i%10+100), uint64(5000+i))
	}
	slices.Sort(at)
	var read []uint64
	err = db.EventsAt(ctx, at, func(e *event.Event) error {
		if e.Action == "" || e.Tenant != "t" {
			t.Errorf("event %d read as %+v", e.Seq, e)
		}
		read = append(read, e.Seq)
		return nil
	})
	if want := []uint64{100, 101, 102, 103, 104, 105, 106, 107, 108, 109}; err != nil || !slices.Equal(slices.Compact(read), want) {
		t.Errorf("EventsAt = %v, %v; want %v", read, err, want)
	}
}

// TestScan: a scan gives the events of the request's scope and range,
// oldest first across day windows, and seq order within a time.
func TestScan(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2024, 7, 30, 22, 0, 0, 0, time.UTC)
	var evs []*event.Event
	for i := range 30 {
		// Three days, two tenants, appended out of time order.
		at := t0.Add(time.Duration((i*7)%30) * 2 * time.Hour)
		evs = append(evs, &event.Event{Time: at, Received: t0, Tenant: []string{"a", "b"}[i%2], Source: "json", Class: "other", Raw: []byte(`{}`)})
	}
	number(evs, 1)
	slices.Reverse(evs)
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	scan := func(req query.Request) []*event.Event {
		var out []*event.Event
		if err := db.Scan(ctx, req, func(e *event.Event) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := scan(query.Request{Scope: query.Scope{All: true}})
	if len(all) != 30 || !slices.IsSortedFunc(all, func(x, y *event.Event) int { return x.Time.Compare(y.Time) }) {
		t.Fatalf("scan of everything: %d events, sorted %v", len(all), slices.IsSortedFunc(all, func(x, y *event.Event) int { return x.Time.Compare(y.Time) }))
	}
	a := scan(query.Request{Scope: query.Scope{Tenants: []string{"a"}}})
	for _, e := range a {
		if e.Tenant != "a" {
			t.Fatalf("scope a gave an event of %s", e.Tenant)
		}
	}
	if len(a) != 15 {
		t.Errorf("scope a: %d events, want 15", len(a))
	}
	if got := scan(query.Request{Scope: query.Scope{}}); len(got) != 0 {
		t.Errorf("no scope: %d events", len(got))
	}
	from, to := t0.Add(10*time.Hour), t0.Add(30*time.Hour)
	ranged := scan(query.Request{Scope: query.Scope{All: true}, From: from, To: to})
	for _, e := range ranged {
		if e.Time.Before(from) || !e.Time.Before(to) {
			t.Fatalf("event at %v outside [%v, %v)", e.Time, from, to)
		}
	}
	if len(ranged) != 10 {
		t.Errorf("range: %d events, want 10", len(ranged))
	}
}
