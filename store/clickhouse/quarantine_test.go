package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// quarantined is the records of TestQuarantine, by name: two tenants
// and the system's, raw bytes that are not UTF-8, hold a NUL, or would
// end a string literal, and lines that are unknown. No two share
// (received, origin, line), so that their order is the same in every
// store.
func quarantined() (map[string]store.Quarantined, time.Time) {
	t0 := time.Date(2024, 7, 31, 12, 0, 0, 123456789, time.UTC)
	h := time.Hour
	return map[string]store.Quarantined{
		"a1": {Received: t0, Tenant: "team-a", Format: "aws.cloudtrail", Origin: "s3://trail/a.json.gz", Line: 2, Offset: 100,
			Reason: "invalid JSON at byte 3", Raw: []byte("{bro")},
		"a2": {Received: t0.Add(h), Tenant: "team-a", Format: "syslog", Origin: "auth.log", Line: 9, Offset: 512,
			Reason: "not syslog: no priority", Raw: []byte("\x00\xff\xfebinary\x80")},
		"a3": {Received: t0.Add(2 * h), Tenant: "team-a", Format: "json", Origin: "listener:6514",
			Reason: "unterminated string", Raw: []byte(`{"who":"o'brien\", "q":"\'; DROP TABLE quarantine_local; --"`)},
		"a4": {Received: t0.Add(2 * h), Tenant: "team-a", Format: "syslog", Origin: "auth.log", Line: 10, Offset: 900,
			Reason: "Timestamp Out Of Range", Raw: []byte("MiXeD CaSe Secret")},
		"a5": {Received: t0.Add(2 * h), Tenant: "team-a", Format: "syslog", Origin: "auth.log", Line: 3, Offset: 300,
			Reason: "ÉCHEC de l'analyse", Raw: []byte("<13>x")},
		"a6": {Received: t0.Add(2 * h), Tenant: "team-a", Format: "syslog", Origin: "auth.log",
			Reason: "empty record", Raw: []byte{}},
		"b1": {Received: t0.Add(30 * time.Minute), Tenant: "team-b", Format: "json", Origin: "b-only.log", Line: 1,
			Reason: "invalid JSON bravo", Raw: []byte("secret-of-b {bro")},
		"b2": {Received: t0.Add(50 * h), Tenant: "team-b", Format: "json", Origin: "b-only.log", Line: 2, Offset: 77,
			Reason: "truncated record", Raw: []byte("\xc3")},
		"sys": {Received: t0.Add(10 * time.Minute), Tenant: query.SystemTenant, Format: "json", Origin: "audit", Line: 1,
			Reason: "invalid JSON system", Raw: []byte("{bro")},
	}, t0
}

// key names a row of a quarantine search by its origin and line, as a
// record is named by them.
func key(origin string, line any) string {
	return origin + "#" + cell(line)
}

// TestQuarantine: records stored on a cluster of two shards are found by
// the words of their reason, origin or raw text, in their window of
// time, in the DuckDB store's order, and never by a scope without their
// tenant; what is stored reads back byte for byte; and hostile search
// text runs as words, nothing else. The embedded store, given the same
// records, is the oracle of every answer.
func TestQuarantine(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	ch := open(t, shards)
	db := oracle(t)

	recs, t0 := quarantined()
	names := map[string]string{}
	var all []store.Quarantined
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		q := recs[name]
		var line any
		if q.Line > 0 {
			line = q.Line
		}
		names[key(q.Origin, line)] = name
		all = append(all, q)
		// One batch a record, for them to go round the shards.
		if err := ch.Quarantine(ctx, []store.Quarantined{q}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Quarantine(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := ch.Quarantine(ctx, nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}

	// Both shards hold some, and together all.
	total := 0
	for i := range shards {
		out, err := ch.exec(ctx, i, "SELECT count() FROM vigil.quarantine_local", nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if n == 0 {
			t.Errorf("shard %d holds no quarantined record", i+1)
		}
		total += n
	}
	if total != len(recs) {
		t.Errorf("the shards hold %d quarantined records, want %d", total, len(recs))
	}

	all1 := query.Scope{All: true}
	teamA := query.Scope{Tenants: []string{"team-a"}}
	teamB := query.Scope{Tenants: []string{"team-b"}}
	h := time.Hour
	for _, tt := range []struct {
		name     string
		text     string
		scope    query.Scope
		from, to time.Time
		limit    int
		want     []string
	}{
		{name: "all", text: "*", scope: all1, want: []string{"b2", "a5", "a4", "a6", "a3", "a2", "b1", "a1"}},
		{name: "all, no text", text: "", scope: all1, want: []string{"b2", "a5", "a4", "a6", "a3", "a2", "b1", "a1"}},
		{name: "team-a", text: "", scope: teamA, want: []string{"a5", "a4", "a6", "a3", "a2", "a1"}},
		{name: "team-b", text: "*", scope: teamB, want: []string{"b2", "b1"}},
		{name: "both teams", text: "*", scope: query.Scope{Tenants: []string{"team-b", "team-a"}}, want: []string{"b2", "a5", "a4", "a6", "a3", "a2", "b1", "a1"}},
		{name: "empty scope", text: "*", scope: query.Scope{}},
		{name: "empty scope, a word", text: "invalid", scope: query.Scope{}},
		{name: "a grant is not the quarantine", text: "*", scope: query.Scope{Shares: []query.Share{{Grant: "g1", Tenant: "team-a"}}}},
		{name: "a tenant of none", text: "*", scope: query.Scope{Tenants: []string{"team-c"}}},
		{name: "all and the system", text: "*", scope: query.Scope{All: true, Tenants: []string{query.SystemTenant}},
			want: []string{"b2", "a5", "a4", "a6", "a3", "a2", "b1", "sys", "a1"}},
		{name: "the system", text: "*", scope: query.Scope{Tenants: []string{query.SystemTenant}}, want: []string{"sys"}},
		{name: "a word both tenants have, team-b", text: "{bro", scope: teamB, want: []string{"b1"}},
		{name: "a word both tenants have, team-a", text: "{BRO", scope: teamA, want: []string{"a1"}},
		{name: "reason, any case", text: "INVALID json", scope: all1, want: []string{"b1", "a1"}},
		{name: "* among words", text: "*  invalid *", scope: all1, want: []string{"b1", "a1"}},
		{name: "words across columns", text: "AUTH.LOG timestamp", scope: teamA, want: []string{"a4"}},
		{name: "every word must be there", text: "auth.log bravo", scope: all1},
		{name: "raw, any case", text: "secret", scope: all1, want: []string{"a4", "b1"}},
		{name: "raw, any case, team-a", text: "SeCrEt", scope: teamA, want: []string{"a4"}},
		{name: "origin", text: "S3://TRAIL", scope: all1, want: []string{"a1"}},
		{name: "not UTF-8", text: "binary", scope: all1, want: []string{"a2"}},
		{name: "beyond ASCII", text: "échec", scope: all1, want: []string{"a5"}},
		{name: "a window", text: "*", scope: all1, from: t0.Add(30 * time.Minute), to: t0.Add(2 * h), want: []string{"a2", "b1"}},
		{name: "from", text: "", scope: teamA, from: t0.Add(2 * h), want: []string{"a5", "a4", "a6", "a3"}},
		{name: "to", text: "", scope: all1, to: t0.Add(h), want: []string{"b1", "a1"}},
		{name: "to, the nanosecond", text: "", scope: all1, to: t0.Add(time.Nanosecond), want: []string{"a1"}},
		{name: "from the day after", text: "", scope: all1, from: t0.Add(24 * h), want: []string{"b2"}},
		{name: "limit", text: "*", scope: all1, limit: 2, want: []string{"b2", "a5"}},
		{name: "limit, a word", text: "auth.log", scope: teamA, limit: 3, want: []string{"a5", "a4", "a6"}},
		{name: "quote and backslash", text: `o'brien\",`, scope: teamA, want: []string{"a3"}},
		{name: "quote and backslash, team-b", text: `o'brien\",`, scope: teamB},
		{name: "SQL in words", text: `\'; DROP TABLE quarantine_local; --`, scope: all1, want: []string{"a3"}},
		{name: "SQL that would widen", text: `' OR 1=1 --`, scope: teamB},
		{name: "SQL that would widen, the tenant", text: `x') OR tenant = 'team-a' OR ('`, scope: teamB},
		{name: "a quote", text: `'`, scope: all1, want: []string{"a5", "a3"}},
		{name: "a backslash", text: `\`, scope: all1, want: []string{"a3"}},
		{name: "LIKE's wildcards are letters", text: "%", scope: all1},
		{name: "an underscore", text: "_", scope: all1, want: []string{"a3"}},
		{name: "NUL", text: "\x00", scope: teamA, want: []string{"a2"}},
		{name: "NUL, team-b", text: "\x00", scope: teamB},
		{name: "not UTF-8 in text", text: "\xff", scope: all1, want: []string{"b2", "a2"}},
		{name: "a hostile tenant", text: "*", scope: query.Scope{Tenants: []string{`team-a' OR '1'='1`, `\`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ch.SearchQuarantine(ctx, tt.text, tt.scope, tt.from, tt.to, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var gotNames []string
			for _, row := range got.Rows {
				n, ok := names[key(row[3].(string), row[4])]
				if !ok {
					t.Fatalf("a row of no record: %q", row)
				}
				gotNames = append(gotNames, n)
			}
			if !slices.Equal(gotNames, tt.want) {
				t.Errorf("got %q, want %q", gotNames, tt.want)
			}
			want, err := db.SearchQuarantine(ctx, tt.text, tt.scope, tt.from, tt.to, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if d := difference(got, want); d != "" {
				t.Errorf("not as DuckDB: %s", d)
			}
		})
	}

	// The values are of the DuckDB store's types, and what it gives.
	res, err := ch.SearchQuarantine(ctx, "*", query.Scope{All: true, Tenants: []string{query.SystemTenant}}, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(res.Rows), len(recs))
	}
	for _, row := range res.Rows {
		q := recs[names[key(row[3].(string), row[4])]]
		received, ok := row[0].(time.Time)
		if !ok || !received.Equal(q.Received) || received.Location() != time.UTC {
			t.Errorf("%s: received %#v, want %v in UTC", q.Reason, row[0], q.Received)
		}
		wantNum := func(n int64) any {
			if n <= 0 {
				return nil
			}
			return n
		}
		if row[4] != wantNum(q.Line) || row[5] != wantNum(q.Offset) {
			t.Errorf("%s: line and offset %#v, %#v; want %d, %d", q.Reason, row[4], row[5], q.Line, q.Offset)
		}
		if row[1] != q.Tenant || row[2] != q.Format || row[6] != q.Reason || row[7] != strings.ToValidUTF8(string(q.Raw), "\uFFFD") {
			t.Errorf("%s: read back as %q", q.Reason, row)
		}
	}

	// The raw bytes are stored exactly, in raw or raw_bin.
	out, err := ch.exec(ctx, 0, "SELECT origin, line, raw, raw_bin FROM vigil.quarantine FORMAT JSONEachRow", nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Origin string
			Line   int64 `json:",string"`
			Raw    string
			RawBin *string `json:"raw_bin"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		var line any
		if r.Line > 0 {
			line = r.Line
		}
		q := recs[names[key(r.Origin, line)]]
		raw := []byte(r.Raw)
		if r.RawBin != nil {
			if raw, err = base64.StdEncoding.DecodeString(*r.RawBin); err != nil {
				t.Fatal(err)
			}
		}
		if string(raw) != string(q.Raw) {
			t.Errorf("%s: raw %q, want %q", q.Reason, raw, q.Raw)
		}
		stored++
	}
	if stored != len(recs) {
		t.Errorf("%d records stored, want %d", stored, len(recs))
	}
}

// TestQuarantineOutOfRange: records received at times no Int64 of
// nanoseconds or Date holds are stored, and sort and fall in a window
// as their times do.
func TestQuarantineOutOfRange(t *testing.T) {
	ctx := context.Background()
	ch := open(t, chtest.Start(t, 2))
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	qs := []store.Quarantined{
		{Tenant: "team-a", Format: "json", Origin: "never", Line: 1, Reason: "no time"},
		{Received: far, Tenant: "team-a", Format: "json", Origin: "future", Line: 1, Reason: "far"},
		{Received: time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC), Tenant: "team-a", Format: "json", Origin: "now", Line: 1, Reason: "now"},
	}
	if err := ch.Quarantine(ctx, qs); err != nil {
		t.Fatal(err)
	}
	scope := query.Scope{Tenants: []string{"team-a"}}
	mid := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		from, to time.Time
		want     []string
	}{
		{want: []string{"future", "now", "never"}},
		{from: mid, want: []string{"future", "now"}},
		{to: mid, want: []string{"never"}},
		{from: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), want: []string{"future", "now", "never"}},
		{from: time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC), want: []string{"future"}},
	} {
		res, err := ch.SearchQuarantine(ctx, "", scope, tt.from, tt.to, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, row := range res.Rows {
			got = append(got, row[3].(string))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("from %v to %v: %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}

// TestQuarantineShardDown: with a shard down, quarantined records go to
// another, for they have no other copy; with every shard down, the
// error names them.
func TestQuarantineShardDown(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	s := open(t, shards)
	shards[1].Stop()
	at := time.Date(2024, 7, 31, 12, 0, 0, 0, time.UTC)
	// Enough batches that some try the stopped shard first.
	const batches = 4
	for i := range batches {
		q := store.Quarantined{Received: at, Tenant: "team-a", Format: "json", Origin: "x.json", Line: int64(i + 1), Reason: "invalid JSON", Raw: []byte("{")}
		if err := s.Quarantine(ctx, []store.Quarantined{q}); err != nil {
			t.Fatalf("batch %d with shard 2 down: %v", i+1, err)
		}
	}
	shards[0].Stop()
	err := s.Quarantine(ctx, []store.Quarantined{{Received: at, Tenant: "team-a", Reason: "lost"}})
	if err == nil || !strings.Contains(err.Error(), "shard 1") || !strings.Contains(err.Error(), "shard 2") {
		t.Errorf("with every shard down: %v", err)
	}
	shards[0].Restart(t)
	shards[1].Restart(t)
	res, err := s.SearchQuarantine(ctx, "*", query.Scope{All: true}, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, row := range res.Rows {
		lines = append(lines, fmt.Sprint(row[4]))
	}
	if want := []string{"1", "2", "3", "4"}; !slices.Equal(lines, want) {
		t.Errorf("after the shards came back: lines %q, want %q", lines, want)
	}
}
