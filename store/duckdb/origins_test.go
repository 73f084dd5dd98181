package duckdb

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// TestSetOrigins: a backfilled origin is what searches see; the
// comparison with the ledger accepts it while the ledger still holds
// the origin the store replaced, and reports any other change of the
// session; a rebuilt store gets the backfills of the old one.
func TestSetOrigins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(Options{Path: filepath.Join(dir, "old.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 7, 31, 13, 0, 0, 0, time.UTC)
	role := "arn:aws:sts::2:assumed-role/admin/pivot"
	var evs []*event.Event
	for i, origin := range []string{"", role, "", "arn:aws:iam::1:user/alice"} {
		evs = append(evs, &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Received: t0, Tenant: "a", Source: "aws.cloudtrail",
			Class: "api_activity", Raw: []byte(`{}`), Action: "GetObject",
			Actor:   event.Actor{Type: "AssumedRole", ID: "arn:aws:sts::3:assumed-role/x/y"},
			Session: event.Session{ID: "ASIAX", Origin: origin}})
	}
	number(evs, 0)
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	records := make([]ledger.Record, len(evs))
	for i, e := range evs {
		records[i] = ledger.Record{Index: int64(e.Seq), Kind: ledger.KindEvent, Content: ledger.EncodeEvent(e)}
	}
	compare := func(db *DB) []store.Mismatch {
		t.Helper()
		c := db.Compare(ctx)
		for _, r := range records {
			if err := c.Record(r); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := c.Finish(uint64(len(records)))
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}

	alice := "arn:aws:iam::1:user/alice"
	if err := db.SetOrigins(ctx, map[uint64]string{0: alice, 1: alice}); err != nil {
		t.Fatal(err)
	}
	// Set again: the ledger's origin recorded is still the first.
	if err := db.SetOrigins(ctx, map[uint64]string{1: alice}); err != nil {
		t.Fatal(err)
	}
	if n := len(search(t, db, "origin_actor:"+query.Quote(alice), query.Scope{All: true}).Rows); n != 3 {
		t.Errorf("%d events have the origin after the backfill, want 3", n)
	}
	sessions := make([]event.Session, len(evs))
	err = db.Sessions(ctx, query.Request{Query: mustParse(t, "session:ASIA*"), Scope: query.Scope{All: true}}, func(e *event.Event) error {
		if e.Actor.ID != "arn:aws:sts::3:assumed-role/x/y" || e.Time.Before(t0) || e.Tenant != "a" {
			t.Errorf("sessions: %+v", e)
		}
		sessions[e.Seq] = e.Session
		return nil
	})
	if err != nil || len(sessions) != 4 || sessions[2] != (event.Session{ID: "ASIAX"}) || sessions[1].Origin != alice {
		t.Errorf("sessions %+v, %v", sessions, err)
	}
	if ms := compare(db); len(ms) > 0 {
		t.Errorf("after a backfill: %v", ms)
	}

	// Moved without a record: a change of the session.
	if _, err := db.SQL().Exec("UPDATE events SET session_origin = 'someone' WHERE seq IN (1, 2)"); err != nil {
		t.Fatal(err)
	}
	ms := compare(db)
	if len(ms) != 1 || ms[0].First != 1 || ms[0].Last != 2 || ms[0].Detail != "differs from the ledger in session" {
		t.Errorf("after an edit: %v", ms)
	}
	if err := db.SetOrigins(ctx, map[uint64]string{1: alice, 2: ""}); err != nil {
		t.Fatal(err)
	}

	// A store rebuilt from the ledger gets the backfills; an event whose
	// origin the ledger no longer gives as recorded keeps its own.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fresh := open(t)
	if err := fresh.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.SQL().Exec("UPDATE events SET session_origin = 'other' WHERE seq = 1"); err != nil {
		t.Fatal(err)
	}
	n, err := fresh.CopyOrigins(ctx, filepath.Join(dir, "old.duckdb"))
	if err != nil || n != 1 {
		t.Errorf("copied %d origins (%v), want 1", n, err)
	}
	got := make([]string, len(evs))
	err = fresh.Sessions(ctx, query.Request{Scope: query.Scope{All: true}}, func(e *event.Event) error {
		got[e.Seq] = e.Session.Origin
		return nil
	})
	if want := []string{alice, "other", "", alice}; err != nil || !slices.Equal(got, want) {
		t.Errorf("origins after the rebuild %q (%v), want %q", got, err, want)
	}
}
