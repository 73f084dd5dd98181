package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"github.com/vigilsec/vigil/store/duckdb"
)

// TestSearchAsDuckDB: every query of the table gives on a cluster of two
// shards the rows the embedded store gives on the same events, in the
// same order: the embedded store is the oracle of the ClickHouse
// dialect.
func TestSearchAsDuckDB(t *testing.T) {
	ctx := context.Background()
	evs := demoEvents(t)
	ch, db := bothStores(t, evs)
	// A retried batch changes nothing.
	if err := ch.Append(ctx, 0, evs[:50]); err != nil {
		t.Fatal(err)
	}
	teamA := query.Scope{Tenants: []string{"team-a"}}
	all := query.Scope{All: true}
	from, to := time.Date(2024, 7, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 8, 2, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		q     string
		scope query.Scope
	}{
		{"*", all},
		{"*", teamA},
		{"action:StopLogging", all},
		{"eventName:StopLogging", all},
		{"userIdentity.type:AssumedRole", teamA},
		{"NOT outcome:success", all},
		{"actor:christ*", all},
		{"src_ip:86.245.0.0/16", all},
		{"NOT src_ip:10.0.0.0/8", teamA},
		{"resources:*stratus*", all},
		{"password", all},
		{"requestParameters.instanceType:p2.*", all},
		{"| stats count() by action | sort -count | head 10", all},
		{"| stats count(), dc(actor), values(region) by tenant", all},
		{"| timechart span=1h count() by tenant", all},
		{"source:aws.cloudtrail | fields time, tenant, actor, action | head 20", teamA},
		{"| sort time | head 3", all},
		{"seq>100 seq<=110", all},
		{"time>=2024-07-31 | stats min(time), max(time)", all},
		{"| head 50 | stats count() by eventName", all},
	} {
		t.Run(tt.q, func(t *testing.T) {
			q, err := query.Parse(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			req := query.Request{Query: q, Scope: tt.scope, From: from, To: to, Limit: 1000}
			want, err := db.Search(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ch.Search(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Rows) == 0 {
				t.Errorf("no rows in DuckDB: not a test")
			}
			if d := difference(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

// cell writes a value as the console would show it, so that the values
// of the two stores compare.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return fmt.Sprintf("%.6g", x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// bothStores stores evs in a cluster of two shards and in an embedded
// store, the oracle.
func bothStores(t *testing.T, evs []*event.Event) (*Store, *duckdb.DB) {
	t.Helper()
	ch := open(t, chtest.Start(t, 2))
	if err := ch.Append(context.Background(), 0, evs); err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return ch, db
}

// difference says where two results differ first, "" when they do not.
func difference(got, want *store.Result) string {
	if strings.Join(got.Columns, ",") != strings.Join(want.Columns, ",") || got.Events != want.Events {
		return fmt.Sprintf("columns %q (events %v), want %q (events %v)", got.Columns, got.Events, want.Columns, want.Events)
	}
	if len(got.Rows) != len(want.Rows) {
		return fmt.Sprintf("%d rows, want %d", len(got.Rows), len(want.Rows))
	}
	for i := range got.Rows {
		for j := range got.Rows[i] {
			if g, w := cell(got.Rows[i][j]), cell(want.Rows[i][j]); g != w {
				return fmt.Sprintf("row %d, %s: %.200q, want %.200q", i, got.Columns[j], g, w)
			}
		}
	}
	return ""
}

// TestSearchHostile: values that would end a string literal, escape
// from it or pass for SQL come back as the events holding them, in
// both stores alike, and run nothing.
func TestSearchHostile(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2024, 7, 31, 12, 0, 0, 0, time.UTC)
	values := []string{`o'brien`, `back\slash\`, `x'); DROP TABLE events_local; --`, `\'`, `\x41\n`, `%_*`, "tab\there", `ünïcödé`, `'' OR 1=1`}
	var evs []*event.Event
	for i, v := range values {
		evs = append(evs, &event.Event{Seq: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Second), Received: at,
			Tenant: "team-" + v, Source: "json", Class: "api_activity", Actor: event.Actor{Name: v}, Action: "Do",
			Raw: []byte(fmt.Sprintf(`{"who":%q}`, v))})
	}
	ch, db := bothStores(t, evs)
	for i, v := range values {
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
		for _, text := range []string{"actor:" + quoted, "who:" + quoted} {
			q, err := query.Parse(text)
			if err != nil {
				t.Fatalf("%s: %v", text, err)
			}
			for _, scope := range []query.Scope{{All: true}, {Tenants: []string{"team-" + v}}} {
				req := query.Request{Query: q, Scope: scope}
				got, err := ch.Search(ctx, req)
				if err != nil {
					t.Fatalf("%s: %v", text, err)
				}
				want, _ := db.Search(ctx, req)
				if d := difference(got, want); d != "" || len(got.Rows) != 1 || got.Rows[0][0] != uint64(i+1) {
					t.Errorf("%s in %v: %d rows; %s", text, scope, len(got.Rows), d)
				}
			}
		}
	}
	if n, err := ch.Count(ctx, ""); err != nil || n != int64(len(values)) {
		t.Errorf("after the searches: %d events, %v", n, err)
	}
}

// TestScanAsDuckDB: a scan gives the events the embedded store's gives,
// in the same order and whole, and a retro-hunt of the built-in rules
// over the cluster finds what it finds over the embedded store.
func TestScanAsDuckDB(t *testing.T) {
	ctx := context.Background()
	evs := demoEvents(t)
	ch, db := bothStores(t, evs)
	if err := ch.Append(ctx, 0, evs[len(evs)/2:]); err != nil {
		t.Fatal(err)
	}
	scan := func(sc detect.Scanner, req query.Request) []*event.Event {
		t.Helper()
		var out []*event.Event
		if err := sc.Scan(ctx, req, func(e *event.Event) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	q, _ := query.Parse("source:aws.cloudtrail NOT outcome:failure")
	for _, req := range []query.Request{
		{Scope: query.Scope{All: true}},
		{Scope: query.Scope{Tenants: []string{"team-b"}}, Query: q,
			From: time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)},
	} {
		got, want := scan(ch, req), scan(db, req)
		if len(got) != len(want) || len(want) == 0 {
			t.Fatalf("%d events, want %d", len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("event %d:\n%+v\nwant\n%+v", i, got[i], want[i])
			}
		}
	}

	e, err := detect.NewEngine(builtinRules(t), detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hunt := func(sc detect.Scanner) []string {
		var out []string
		err := detect.HuntStore(ctx, e, sc, query.Request{Scope: query.Scope{All: true}}, time.Now(), func(h detect.Hit) error {
			out = append(out, fmt.Sprintf("%s %d %s", h.RuleID, h.Seq, h.Tenant))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, want := hunt(ch), hunt(db)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) < 20 {
		t.Errorf("the hunt over the cluster found %d hits, over the embedded store %d:\n%s\nwant\n%s", len(got), len(want), got, want)
	}
}

func builtinRules(t *testing.T) []*detect.Rule {
	t.Helper()
	rs, err := detect.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestSearchLimitWithCopies: the newest events stored twice (a retried
// batch) take no place in a bounded events search: each comes once, and
// the rows are those of the embedded store, however few are asked for.
func TestSearchLimitWithCopies(t *testing.T) {
	ctx := context.Background()
	evs := demoEvents(t)
	ch, db := bothStores(t, evs)
	newest := slices.Clone(evs)
	slices.SortFunc(newest, func(a, b *event.Event) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.Seq, a.Seq)) })
	if err := ch.Append(ctx, 0, newest[:40]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q     string
		limit int
	}{{"*", 1}, {"*", 3}, {"*", 7}, {"*", 30}, {"*", 100}, {"action:StopLogging", 2}, {"*", 0}} {
		q, err := query.Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		req := query.Request{Query: q, Scope: query.Scope{All: true}, Limit: tc.limit}
		got, err := ch.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if d := difference(got, want); d != "" {
			t.Errorf("%q, limit %d: %s", tc.q, tc.limit, d)
		}
	}
}
