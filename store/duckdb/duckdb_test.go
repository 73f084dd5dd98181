package duckdb

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(Options{Path: filepath.Join(t.TempDir(), "events.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// number numbers evs from first in time order, as ingest does before it
// appends them to the ledger, and returns the seq after the last.
func number(evs []*event.Event, first uint64) uint64 {
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	for _, e := range sorted {
		e.Seq = first
		first++
	}
	return first
}

func search(t *testing.T, db *DB, q string, scope query.Scope) *store.Result {
	t.Helper()
	parsed, err := query.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Search(context.Background(), query.Request{Query: parsed, Scope: scope})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return res
}

func col(res *store.Result, name string) int {
	for i, c := range res.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

func TestAppendSearch(t *testing.T) {
	db := open(t)
	t0 := time.Date(2024, 7, 31, 13, 0, 0, 123456789, time.UTC)
	evs := []*event.Event{
		{Time: t0.Add(time.Minute), Received: t0, Tenant: "a", Source: "aws.cloudtrail", Class: "api_activity", Action: "StopLogging",
			SrcIP: netip.MustParseAddr("10.1.2.3"), Raw: []byte(`{"eventName":"StopLogging"}`), Outcome: event.Outcome{Result: "success"}},
		{Time: t0, Received: t0, Tenant: "b", Source: "syslog", Class: "system_log", Action: "login",
			SrcIP: netip.MustParseAddr("2001:db8::1"), Raw: []byte("Jan  1 host sshd[1]: caf\xe9"), Doc: []byte(`{"appname":"sshd"}`)},
	}
	number(evs, 1)
	if err := db.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}

	all := query.Scope{All: true}
	res := search(t, db, "*", all)
	if len(res.Rows) != 2 || !res.Events {
		t.Fatalf("rows = %v", res.Rows)
	}
	if got := res.Rows[0][col(res, "time")].(time.Time); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("time = %v, want nanosecond precision %v", got, t0.Add(time.Minute))
	}
	if n := len(search(t, db, "src_ip:10.0.0.0/8", all).Rows); n != 1 {
		t.Errorf("CIDR search: %d rows", n)
	}
	if n := len(search(t, db, "src_ip:2001:db8::/32", all).Rows); n != 1 {
		t.Errorf("IPv6 CIDR search: %d rows", n)
	}
	if n := len(search(t, db, "appname:sshd", all).Rows); n != 1 {
		t.Errorf("search on Doc field: %d rows", n)
	}

	// Tenant isolation is the compiler's: a scope of one tenant never
	// sees the other's events, and an empty scope sees nothing.
	if res := search(t, db, "*", query.Scope{Tenants: []string{"a"}}); len(res.Rows) != 1 || res.Rows[0][col(res, "tenant")] != "a" {
		t.Errorf("tenant a sees %v", res.Rows)
	}
	if n := len(search(t, db, "*", query.Scope{}).Rows); n != 0 {
		t.Errorf("empty scope sees %d rows", n)
	}

	// Raw bytes that are not UTF-8 survive exactly.
	var raw []byte
	if err := db.SQL().QueryRow("SELECT raw_bin FROM events WHERE seq = 1").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, evs[1].Raw) {
		t.Errorf("raw_bin = %q, want %q", raw, evs[1].Raw)
	}

	// What was appended is there after reopening.
	path := db.opts.Path
	db.Close()
	db2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if n := len(search(t, db2, "*", all).Rows); n != 2 {
		t.Errorf("after reopening, %d events", n)
	}
}

func TestQuarantine(t *testing.T) {
	db := open(t)
	now := time.Now().UTC()
	qs := []store.Quarantined{
		{Received: now, Tenant: "a", Format: "aws.cloudtrail", Origin: "x.json", Line: 2, Reason: "invalid JSON at byte 3", Raw: []byte("{bro")},
		{Received: now, Tenant: "b", Format: "syslog", Origin: "auth.log", Line: 9, Reason: "not syslog", Raw: []byte("\x00\xff")},
	}
	if err := db.Quarantine(context.Background(), qs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := db.SearchQuarantine(ctx, "*", query.Scope{All: true}, time.Time{}, time.Time{}, 0)
	if err != nil || len(res.Rows) != 2 {
		t.Fatalf("all: %v %v", res, err)
	}
	res, _ = db.SearchQuarantine(ctx, "INVALID", query.Scope{All: true}, time.Time{}, time.Time{}, 0)
	if len(res.Rows) != 1 {
		t.Errorf("word search: %d rows", len(res.Rows))
	}
	res, _ = db.SearchQuarantine(ctx, "*", query.Scope{Tenants: []string{"b"}}, time.Time{}, time.Time{}, 0)
	if len(res.Rows) != 1 || res.Rows[0][1] != "b" {
		t.Errorf("tenant b sees %v", res.Rows)
	}
	res, _ = db.SearchQuarantine(ctx, "*", query.Scope{}, time.Time{}, time.Time{}, 0)
	if len(res.Rows) != 0 {
		t.Errorf("empty scope sees %d rows", len(res.Rows))
	}
}

func TestMemoryLimit(t *testing.T) {
	db, err := Open(Options{Path: filepath.Join(t.TempDir(), "s.duckdb"), MemoryLimit: "300MB"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.db.QueryRow("SELECT current_setting('memory_limit')").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "286") { // 300 MB in MiB, as DuckDB shows it
		t.Errorf("memory_limit = %q, want 300MB", v)
	}
}
