package duckdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// loadEvents returns n events numbered from first, as the ledger numbers
// them, but given in another order.
func loadEvents(n int, t0 time.Time, first uint64) []*event.Event {
	evs := make([]*event.Event, n)
	for i := range evs {
		j := (i * 7919) % n
		evs[i] = &event.Event{
			Seq:  first + uint64(j),
			Time: t0.Add(time.Duration(j) * time.Second), Received: t0,
			Tenant: "t", Source: "aws.cloudtrail", Class: "api_activity", Action: "GetObject",
			Raw: fmt.Appendf(nil, `{"eventName":"GetObject","n":%d}`, i),
		}
	}
	return evs
}

func TestLoader(t *testing.T) {
	defer func(c, f int) { commitEvery, flushEvery = c, f }(commitEvery, flushEvery)
	commitEvery, flushEvery = 200, 40 // several flushes and commits

	ctx := context.Background()
	db := open(t)
	threads := func() (n int64) {
		t.Helper()
		if err := db.SQL().QueryRow("SELECT current_setting('threads')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := threads()
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	// Two loaders, as two import workers use them, appending in turn.
	var loaders []store.Loader
	for range 2 {
		l, err := db.NewLoader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		loaders = append(loaders, l)
	}
	evs := loadEvents(1000, t0, 0)
	for i := 0; i < len(evs); i += 30 {
		batch := evs[i:min(i+30, len(evs))]
		for _, e := range batch {
			e.Tenant = fmt.Sprint(i / 30 % 2) // the loader
			e.Action = fmt.Sprint(i / 30)     // the append
		}
		if err := loaders[i/30%2].Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := threads(); n != 1 {
		t.Errorf("DuckDB runs %d threads during a load, want 1", n)
	}
	for _, l := range loaders {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := threads(); n != before {
		t.Errorf("DuckDB runs %d threads after a load, want %d as before", n, before)
	}
	q := func(query string) (n int64) {
		t.Helper()
		if err := db.SQL().QueryRow(query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, distinct := q("SELECT count(*) FROM events"), q("SELECT count(DISTINCT seq) FROM events"); n != 1000 || distinct != 1000 {
		t.Errorf("stored %d events, %d distinct seqs; want 1000 of each", n, distinct)
	}
	// Each append is stored in seq order.
	if n := q("SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY action ORDER BY rowid) AS back FROM events) WHERE back"); n != 0 {
		t.Errorf("%d events stored out of seq order within their append", n)
	}
}

func TestLoaderFailure(t *testing.T) {
	defer func(c int) { commitEvery = c }(commitEvery)
	commitEvery = 100

	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	l, err := db.NewLoader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, loadEvents(120, t0, 0)); err != nil { // committed
		t.Fatal(err)
	}
	if err := l.Append(ctx, loadEvents(10, t0, 120)); err != nil { // not yet
		t.Fatal(err)
	}
	l.(*loader).app.Close() // break the appender under the loader
	if err := l.Append(ctx, loadEvents(1, t0, 130)); err == nil {
		t.Fatal("Append on a broken appender: no error")
	}
	if err := l.Append(ctx, loadEvents(1, t0, 130)); err == nil {
		t.Error("Append after a failure: no error")
	}
	if err := l.Close(ctx); err == nil {
		t.Error("Close after a failure: no error")
	}
	var n int64
	if err := db.SQL().QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 120 {
		t.Errorf("after a failed load, %d events are stored; want the 120 committed", n)
	}
}
