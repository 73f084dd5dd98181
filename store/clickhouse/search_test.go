package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
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
	evs := append(demoEvents(t), otherSources(t, len(demoEvents(t)))...)
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
		// Document fields that CloudTrail's parser copies into columns.
		{"eventName:StopLogging OR eventName:DeleteTrail OR userIdentity.type:Root", all},
		{"(eventName:StopLogging OR action:ConsoleLogin) AND eventSource:cloudtrail.amazonaws.com", all},
		{"eventName!=StopLogging AND source:aws.cloudtrail", all},
		{"eventName:Get* AND NOT region:us-east-1", teamA},
		// Searched as two statements (query.SplitsSources), CloudTrail's
		// events and the others, whose documents have the fields too.
		{"eventName:StopLogging OR eventSource:cloudtrail.amazonaws.com", teamA},
		{"NOT eventName:StopLogging", all},
		{"eventName:Stop* AND NOT awsRegion:us-east-1", all},
		{"eventName!=StopLogging AND NOT source:aws.cloudtrail", all},
		// Tables of such a filter read a UNION ALL of the two parts.
		{"eventName:StopLogging | stats count() by tenant, eventName", all},
		{"eventName:Stop* OR eventName:Get* | timechart span=1h count() by eventName", all},
		{"NOT eventName:StopLogging | stats count(), dc(actor) by source", teamA},
		// Groups without a value: dc() is 0 and values() empty in both.
		{"NOT source:aws.cloudtrail | stats count(), dc(actor) by source", teamA},
		{"NOT source:aws.cloudtrail | stats values(actor), min(actor), max(time), sum(src_port), avg(src_port) by source", teamA},
		{"eventName:GetSecretValue OR userAgent:curl | fields time, tenant, eventName, userAgent", all},
		{"eventName:Stop* | head 2 | stats count() by source", all},
		{"eventName:StopLogging | head 3", all},
		{`eventName:""`, all},
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
		{"| sort actor | head 5", all},
		{"action:StopLogging | sort -actor, region | head 30", all},
		{"| sort eventName | head 8", all},
		{"| head 40 | head 12", all},
		{"| head 5 | sort actor", all},
		{"| sort region", teamA},
		{"seq>100 seq<=110", all},
		{"time>=2024-07-31 | stats min(time), max(time)", all},
		{"| head 50 | stats count() by eventName", all},
	} {
		t.Run(tt.q, func(t *testing.T) {
			q, err := query.Parse(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			got, want := searchBoth(t, ch, db, query.Request{Query: q, Scope: tt.scope, From: from, To: to, Limit: 1000})
			if len(want.Rows) == 0 {
				t.Errorf("no rows in DuckDB: not a test")
			}
			if d := difference(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestUnionSourcesReadsNoDocuments: a statistic over a filter on a
// document field that CloudTrail's parser copies into a column reads
// CloudTrail's column, not its documents (query.Dialect.unionSources):
// it stays within a bound of bytes read that a statistic over another
// document field, which reads the documents, exceeds. 18.16 reads the
// OR of the column and the document in one statement for every event.
func TestUnionSourcesReadsNoDocuments(t *testing.T) {
	ctx := context.Background()
	ch, _ := bothStores(t, append(demoEvents(t), otherSources(t, len(demoEvents(t)))...))
	// Half the documents' bytes on the smaller shard: ClickHouse checks
	// the bound on each.
	bound := int64(math.MaxInt64)
	for shard := range ch.opts.Shards {
		out, err := ch.query(ctx, shard, "SELECT sum(data_uncompressed_bytes) FROM system.columns WHERE database = currentDatabase() AND table = 'events_local' AND name IN ('doc_keys', 'doc_values') FORMAT TSV")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("shard %d: the documents' size %q: %v", shard, out, err)
		}
		bound = min(bound, n/2)
	}
	for _, tt := range []struct {
		q        string
		readsDoc bool
	}{
		{"eventName:StopLogging | stats count() by action", false},
		{"eventName:Stop* OR eventSource:s3.amazonaws.com | timechart span=1h count() by tenant", false},
		{"NOT awsRegion:us-east-1 | fields time, actor", false},
		{"userIdentity.type:Root | stats count() by action", true},
	} {
		q, err := query.Parse(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		sql, err := query.Compile(query.Request{Query: q, Scope: query.Scope{All: true}}, query.ClickHouse)
		if err != nil {
			t.Fatal(err)
		}
		text, err := inline(sql.Text, sql.Args)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.send(ctx, 0, url.Values{"query": {text + " FORMAT Null"}, "database": {ch.opts.Database}, "max_bytes_to_read": {strconv.FormatInt(bound, 10)}}, nil)
		exceeded := err != nil && strings.Contains(err.Error(), "Limit for (uncompressed) bytes to read exceeded")
		if err != nil && !exceeded {
			t.Fatalf("%s: %v", tt.q, err)
		}
		if exceeded != tt.readsDoc {
			t.Errorf("%s: read over %d bytes: %v, want %v (%v)", tt.q, bound, exceeded, tt.readsDoc, err)
		}
	}
}

// searchBoth runs req on the cluster and on the embedded store, the
// oracle, and returns both answers; an error of either fails the test.
func searchBoth(t *testing.T, ch *Store, db *duckdb.DB, req query.Request) (got, want *store.Result) {
	t.Helper()
	var err error
	if got, err = ch.Search(context.Background(), req); err != nil {
		t.Fatalf("%s on ClickHouse: %v", req.Query, err)
	}
	if want, err = db.Search(context.Background(), req); err != nil {
		t.Fatalf("%s on DuckDB: %v", req.Query, err)
	}
	return got, want
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

// oracle opens an embedded store, whose answers the cluster's are held
// to.
func oracle(t *testing.T) *duckdb.DB {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// otherSources are JSON events whose documents have CloudTrail's field
// names, some of the values of the demo's events, and the demo's times,
// with seqs from after on: a document field that CloudTrail's parser
// copies into a column is searched in theirs.
func otherSources(t *testing.T, after int) []*event.Event {
	t.Helper()
	lines := `{"eventTime":"2024-07-31T10:00:00Z","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","awsRegion":"eu-west-1"}
{"eventTime":"2024-07-31T11:00:00Z","eventName":"StopLoggingSoon","awsRegion":"us-east-1"}
{"eventTime":"2024-07-31T12:00:00Z","eventName":"","note":"an empty name"}
{"eventTime":"2024-08-01T09:30:00Z","eventName":"GetSecretValue","userAgent":"curl"}
{"eventTime":"2024-08-01T09:31:00Z","other":"no eventName at all"}
`
	var evs []*event.Event
	_, err := parse.Parse(strings.NewReader(lines), "json", parse.Options{Tenant: "team-a", Backfill: true, Received: time.Now()}, func(r parse.Result) error {
		if r.Err != nil {
			return r.Err
		}
		r.Event.Seq = uint64(after + len(evs) + 1)
		evs = append(evs, r.Event)
		return nil
	})
	if err != nil || len(evs) != 5 {
		t.Fatalf("parsing the other sources' events: %d, %v", len(evs), err)
	}
	return evs
}

// bothStores stores evs in a cluster of two shards and in an embedded
// store, the oracle.
func bothStores(t *testing.T, evs []*event.Event) (*Store, *duckdb.DB) {
	t.Helper()
	ch := open(t, chtest.Start(t, 2))
	if err := ch.Append(context.Background(), 0, evs); err != nil {
		t.Fatal(err)
	}
	db := oracle(t)
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
				// Unbounded, one statement; bounded, two, the second
				// naming the tenant picked.
				for _, limit := range []int{0, 10} {
					got, want := searchBoth(t, ch, db, query.Request{Query: q, Scope: scope, Limit: limit})
					if d := difference(got, want); d != "" || len(got.Rows) != 1 || got.Rows[0][0] != uint64(i+1) {
						t.Errorf("%s in %v, limit %d: %d rows; %s", text, scope, limit, len(got.Rows), d)
					}
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
		got, want := searchBoth(t, ch, db, query.Request{Query: q, Scope: query.Scope{All: true}, Limit: tc.limit})
		if d := difference(got, want); d != "" {
			t.Errorf("%q, limit %d: %s", tc.q, tc.limit, d)
		}
	}
}

// TestSearchTwoSteps: a bounded events search picks its events by seq,
// time and tenant, then reads them whole; the rows are the embedded
// store's, in its order, on the edges of that: events at the same time
// (the seq breaks the tie), a sort on another field before a head, a
// limit beyond the matches, events stored twice by a retried Append,
// scopes that leave a tenant out or read it through a share, and a read
// of the picked events in several statements.
func TestSearchTwoSteps(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2024, 7, 30, 22, 0, 0, 0, time.UTC)
	tenants := []string{"team-a", "team-b", "team-c", query.SystemTenant}
	actors := []string{"carol", "alice", "bob"}
	var evs []*event.Event
	for i := range 90 {
		// Five events a time, a time every 40 minutes: over three days.
		at := day.Add(time.Duration(i/5) * 40 * time.Minute)
		actor := actors[i%len(actors)]
		action := []string{"Read", "Write"}[i%7/5]
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 4)})
		evs = append(evs, &event.Event{Seq: uint64(1000 - 3*i), Time: at, Received: at.Add(time.Second),
			Tenant: tenants[i%len(tenants)], Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: actor}, Action: action, SrcIP: ip,
			Raw: []byte(fmt.Sprintf(`{"who":%q,"n":%d,"secret":"s%d"}`, actor, i%4, i))})
	}
	ch, db := bothStores(t, evs)
	// A retried batch: the newest events, ties among them, and a few of
	// the oldest, stored twice.
	newest := slices.Clone(evs)
	slices.SortFunc(newest, func(a, b *event.Event) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.Seq, a.Seq)) })
	if err := ch.Append(ctx, 0, slices.Concat(newest[:23], newest[len(newest)-4:])); err != nil {
		t.Fatal(err)
	}

	scopes := map[string]query.Scope{
		"all":              {All: true},
		"all and _system":  {All: true, Tenants: []string{query.SystemTenant}},
		"team-a and c":     {Tenants: []string{"team-a", "team-c"}},
		"team-b and share": {Tenants: []string{"team-b"}, Shares: []query.Share{{Grant: "g1", Tenant: "team-a", Filter: parsed(t, "action:Read"), Redact: []string{"secret"}}}},
		"none":             {},
	}
	queries := []string{"*", "action:Read", "action:Nothing", "src_ip:203.0.113.2",
		"| sort actor | head 7", "action:Write | sort -actor, time | head 12", "| sort time | head 9",
		"| sort who | head 6", "| sort -n", "| head 4 | head 11", "| sort actor | head 2 | head 50"}
	for _, text := range queries {
		for name, scope := range scopes {
			for _, limit := range []int{1, 13, 100, 0} {
				req := query.Request{Query: parsed(t, text), Scope: scope, Limit: limit}
				got, want := searchBoth(t, ch, db, req)
				if d := difference(got, want); d != "" {
					t.Errorf("%q in %s, limit %d: %s", text, name, limit, d)
				}
				if want := eventsWanted(req); want > 0 && limit == 13 {
					// The picked events read two a statement.
					picked, err := ch.pickEvents(ctx, req, want)
					if err != nil {
						t.Fatal(err)
					}
					chunked, err := ch.readPicked(ctx, req, picked, 2)
					if err != nil {
						t.Fatal(err)
					}
					if d := difference(chunked, got); d != "" {
						t.Errorf("%q in %s, limit %d, read two events a statement: %s", text, name, limit, d)
					}
				}
			}
		}
	}
}

// TestPickingStatements: the first step of a search is the compiler's
// statement with a narrow SELECT, and the second names the seqs picked
// in PREWHERE and their tenants, days and times; a query of more than
// one SELECT is no search of two steps.
func TestPickingStatements(t *testing.T) {
	req := query.Request{Query: parsed(t, "action:Read | sort actor | head 3"), Scope: query.Scope{Tenants: []string{"team-a"}}, Limit: 100}
	if n := eventsWanted(req); n != 3 {
		t.Errorf("%d events wanted, want 3", n)
	}
	req.Limit = 6
	q, err := query.Compile(req, query.ClickHouseCopies)
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := picking(q)
	if err != nil {
		t.Fatal(err)
	}
	text, err := inline(narrow.Text, narrow.Args)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT seq, time, tenant FROM events WHERE tenant IN ('team-a') AND action = 'Read' ORDER BY actor ASC, time DESC, seq DESC LIMIT 3"; text != want {
		t.Errorf("the first step:\n%s\nwant\n%s", text, want)
	}

	for text, n := range map[string]int{"*": 100, "| head 5 | sort actor": 0, "| stats count()": 0, "| fields actor | head 2": 0, "| sort actor": 100} {
		if got := eventsWanted(query.Request{Query: parsed(t, text), Limit: 100}); got != n {
			t.Errorf("%q: %d events wanted, want %d", text, got, n)
		}
	}
	nested, err := query.Compile(query.Request{Query: parsed(t, "| head 5 | sort actor"), Scope: query.Scope{All: true}}, query.ClickHouseCopies)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := picking(nested); err == nil {
		t.Error("a statement of two SELECTs picked")
	}

	at := time.Date(2024, 7, 31, 23, 59, 59, 0, time.UTC)
	stmt := pickedStatement([]string{"seq", "raw"}, []pickedEvent{
		{seq: 7, time: at.UnixNano(), tenant: "o'brien"}, {seq: 3, time: at.Add(2 * time.Second).UnixNano(), tenant: "team-a"}, {seq: 9, time: at.UnixNano(), tenant: "team-a"},
	})
	want := fmt.Sprintf("SELECT seq, raw FROM events PREWHERE seq IN (7, 3, 9) WHERE tenant IN ('o\\'brien', 'team-a') AND day IN ('2024-07-31', '2024-08-01') AND time >= %d AND time <= %d",
		at.UnixNano(), at.Add(2*time.Second).UnixNano())
	if stmt != want {
		t.Errorf("the second step:\n%s\nwant\n%s", stmt, want)
	}
}
