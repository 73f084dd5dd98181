package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// TestContext stores enriched events, reads them back whole, and
// searches the enrichment fields.
func TestContext(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2024, 7, 31, 13, 0, 0, 0, time.UTC)
	evs := []*event.Event{
		{Time: t0, Received: t0, Tenant: "a", Source: "aws.cloudtrail", Class: "api_activity", Raw: []byte(`{}`),
			SrcIP: netip.MustParseAddr("203.0.113.7"),
			Context: event.Context{
				Src:  event.Place{Country: "NL", City: "Amsterdam", ASN: 64500, ASOrg: "Example Hosting"},
				Team: "payments",
				Intel: []event.IntelHit{
					{List: "feodo", Indicator: "203.0.113.7", Type: "botnet_cc"},
					{List: "domains", Indicator: "evil.example"},
				},
			}},
		{Time: t0.Add(time.Second), Received: t0, Tenant: "a", Source: "aws.vpcflow", Class: "network_activity", Raw: []byte(`x`),
			SrcIP: netip.MustParseAddr("10.0.3.7"), DstIP: netip.MustParseAddr("52.95.110.1"),
			Context: event.Context{
				Src: event.Place{Asset: "i-0abc", Owner: "web"},
				Dst: event.Place{Cloud: "aws/S3/eu-west-1", Country: "IE", ASN: 16509},
			}},
		{Time: t0.Add(2 * time.Second), Received: t0, Tenant: "a", Source: "json", Class: "other", Raw: []byte(`{}`)},
	}
	number(evs, 1)
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}

	var got []*event.Event
	if err := db.Scan(ctx, query.Request{Scope: query.Scope{All: true}}, func(e *event.Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("scan: %d events", len(got))
	}
	for i, e := range got {
		if want := StoredForm(evs[i]); !reflect.DeepEqual(e.Context, want.Context) {
			t.Errorf("event %d: context %+v, want %+v", i, e.Context, want.Context)
		}
	}

	all := query.Scope{All: true}
	for q, want := range map[string][]uint64{
		"intel:feodo":                    {1},
		"intel:*":                        {1},
		"intel_indicator:evil.example":   {1},
		"intel_type:botnet_cc":           {1},
		"src_country:NL":                 {1},
		"src_asn>60000 src_asn<65000":    {1},
		"dst_asn:16509":                  {2},
		"src_asset:i-0abc":               {2},
		"src_owner:web OR team:payments": {1, 2},
		`dst_cloud:"aws/S3/*"`:           {2},
		"origin_actor:*":                 nil,
		"NOT intel:*":                    {2, 3},
	} {
		res := search(t, db, q, all)
		var seqs []uint64
		for _, row := range res.Rows {
			seqs = append(seqs, row[col(res, "seq")].(uint64))
		}
		slices.Sort(seqs)
		if !reflect.DeepEqual(seqs, want) {
			t.Errorf("%s: seqs %v, want %v", q, seqs, want)
		}
	}
}

// TestContextMigration opens a store made before enrichment existed: its
// events table gains the columns, and its events read back with an
// empty context.
func TestContextMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.duckdb")
	old, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	firstRelease, _, ok := strings.Cut(schema, "-- Enrichment (event.Context)")
	if !ok {
		t.Fatal("schema.sql no longer marks where enrichment's columns begin")
	}
	if _, err := old.Exec(firstRelease); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO events (seq, time, received, skewed, tenant, source, class, raw)
		VALUES (1, TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 00:00:00', false, 'a', 'json', 'other', '{}')`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	// Read-only, it cannot be brought up to date: a clear error.
	if _, err := Open(Options{Path: path, ReadOnly: true}); !errors.Is(err, ErrOldSchema) {
		t.Fatalf("read-only open of an old store: %v, want ErrOldSchema", err)
	}
	db, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []*event.Event
	if err := db.Scan(context.Background(), query.Request{Scope: query.Scope{All: true}}, func(e *event.Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Context.IsZero() {
		t.Fatalf("after migration: %+v", got)
	}
	evs := []*event.Event{{Seq: 2, Time: time.Unix(1e9, 0).UTC(), Received: time.Unix(1e9, 0).UTC(), Tenant: "a", Source: "json", Class: "other", Raw: []byte(`{}`),
		Context: event.Context{Team: "t"}}}
	if err := db.Append(context.Background(), evs); err != nil {
		t.Fatalf("appending to a migrated store: %v", err)
	}
	if n := len(search(t, db, "team:t", query.Scope{All: true}).Rows); n != 1 {
		t.Errorf("team:t after migration: %d rows", n)
	}
	db.Close()
	ro, err := Open(Options{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of the migrated store: %v", err)
	}
	ro.Close()
}
