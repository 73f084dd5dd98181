package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/duckdb"
)

// openPipeline opens a ledger and a store in dir.
func openPipeline(t *testing.T, dir string) *Pipeline {
	t.Helper()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, "events.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); l.Close() })
	return &Pipeline{Ledger: l, Store: db}
}

func storedSeqs(t *testing.T, p *Pipeline) []uint64 {
	t.Helper()
	var seqs []uint64
	err := p.Store.(*duckdb.DB).Events(context.Background(), 0, 1<<20, func(e *event.Event) error {
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestPipeline(t *testing.T) {
	ctx := context.Background()
	p := openPipeline(t, t.TempDir())
	t0 := time.Date(2024, 7, 31, 12, 0, 0, 0, time.UTC)
	evs := []*event.Event{
		{Time: t0.Add(2 * time.Second), Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":2}`)},
		{Time: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":0}`)},
		{Time: t0.Add(time.Second), Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":1}`)},
	}
	for _, e := range evs {
		e.Received = t0
	}
	if err := p.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Numbered by the ledger in time order.
	if evs[1].Seq != 0 || evs[2].Seq != 1 || evs[0].Seq != 2 || p.Ledger.Size() != 3 {
		t.Errorf("seqs %d %d %d, ledger size %d; want 2 0 1 and 3", evs[0].Seq, evs[1].Seq, evs[2].Seq, p.Ledger.Size())
	}

	// Events the ledger has and the store does not, as after a crash
	// before the store committed, are copied by CatchUp, once.
	more := []*event.Event{
		{Time: t0, Received: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":3}`)},
		{Time: t0, Received: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":4}`)},
	}
	if _, err := p.Ledger.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := p.Append(ctx, []*event.Event{{Time: t0, Received: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"n":5}`)}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := p.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := storedSeqs(t, p)
	if len(got) != 6 {
		t.Fatalf("store has seqs %v after catching up, want 0 to 5 once each", got)
	}
	for i, s := range got {
		if s != uint64(i) {
			t.Fatalf("store has seqs %v after catching up, want 0 to 5 once each", got)
		}
	}
	// And the store agrees with the ledger.
	cmp := p.Store.(*duckdb.DB).Compare(ctx)
	if err := p.Ledger.Scan(0, p.Ledger.Size(), cmp.Record); err != nil {
		t.Fatal(err)
	}
	if ms, err := cmp.Finish(uint64(p.Ledger.Size())); err != nil || len(ms) > 0 {
		t.Errorf("store against ledger: %v, %v", ms, err)
	}
}

// TestImportThroughPipeline imports real logs through the ledger and
// checks that the store holds exactly what the ledger does.
func TestImportThroughPipeline(t *testing.T) {
	ctx := context.Background()
	p := openPipeline(t, t.TempDir())
	im := NewImporter(p, ImportOptions{Parse: parse.Options{Tenant: "t", Received: time.Now()}, Batch: 100})
	sum, err := im.Import(ctx, []string{"../../shared/testdata/stratus-red-team-detonation-logs", "../../shared/testdata/loghub-openssh-linux"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events == 0 || p.Ledger.Size() != sum.Events {
		t.Fatalf("imported %d events, ledger has %d", sum.Events, p.Ledger.Size())
	}
	cmp := p.Store.(*duckdb.DB).Compare(ctx)
	if err := p.Ledger.Scan(0, p.Ledger.Size(), cmp.Record); err != nil {
		t.Fatal(err)
	}
	ms, err := cmp.Finish(uint64(p.Ledger.Size()))
	if err != nil || len(ms) > 0 {
		t.Fatalf("store against ledger: %v, %v", ms, err)
	}

	// An edited row is named, with the field that changed.
	db := p.Store.(*duckdb.DB)
	if _, err := db.SQL().Exec("UPDATE events SET action = 'Nothing' WHERE seq = 7"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec("DELETE FROM events WHERE seq BETWEEN 10 AND 12"); err != nil {
		t.Fatal(err)
	}
	cmp = db.Compare(ctx)
	if err := p.Ledger.Scan(0, p.Ledger.Size(), cmp.Record); err != nil {
		t.Fatal(err)
	}
	ms, err = cmp.Finish(uint64(p.Ledger.Size()))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Mismatch{
		{First: 7, Last: 7, Kind: store.MismatchChanged, Detail: "differs from the ledger in action"},
		{First: 10, Last: 12, Kind: store.MismatchMissing, Detail: "the ledger has this event, the store does not"},
	}
	if len(ms) != len(want) || ms[0] != want[0] || ms[1] != want[1] {
		t.Errorf("mismatches %v, want %v", ms, want)
	}
	res, err := db.Search(ctx, query.Request{Query: mustParse(t, "| stats count()"), Scope: query.Scope{All: true}})
	if err != nil || res.Rows[0][0].(int64) != sum.Events-3 {
		t.Errorf("count after deleting 3: %v %v", res, err)
	}
}

func mustParse(t *testing.T, q string) *query.Query {
	t.Helper()
	parsed, err := query.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, "events.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &Pipeline{Ledger: l, Store: db}
	now := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	old := now.Add(-60 * 24 * time.Hour)
	batch := func(tenant string, at time.Time, n int) {
		var evs []*event.Event
		for i := range n {
			evs = append(evs, &event.Event{Time: at.Add(time.Duration(i) * time.Minute), Received: at, Tenant: tenant, Source: "json", Class: "other",
				Raw: []byte(`{"tenant":"` + tenant + `","padding":"` + string(make([]byte, 100)) + `"}`)})
		}
		if err := p.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	batch("a", old, 100)                // expired
	batch("b", old, 50)                 // expired, but half under a legal hold
	batch("c", old, 20)                 // kept forever
	batch(query.SystemTenant, old, 30)  // the audit trail: the default is not for it
	batch("a", now.Add(-time.Hour), 10) // recent
	held := [2]time.Time{old, old.Add(25 * time.Minute)}
	res, err := p.ApplyRetention(ctx, Retention{
		Default: 30 * 24 * time.Hour,
		Tenants: map[string]time.Duration{"c": 0},
		Holds:   []Hold{{Tenant: "b", From: held[0], To: held[1], Reason: "case 42"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Erased != 100+25 {
		t.Errorf("erased %d events, want 125", res.Erased)
	}
	if len(res.Removal.Removed) == 0 {
		t.Errorf("no segment removed: %+v", res.Removal)
	}
	count := func(q string) int64 {
		t.Helper()
		r, err := db.Search(ctx, query.Request{Query: mustParse(t, q+" | stats count()"), Scope: query.Scope{All: true, Tenants: []string{query.SystemTenant}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Rows[0][0].(int64)
	}
	for q, want := range map[string]int64{"tenant:a": 10, "tenant:b": 25, "tenant:c": 20, "tenant:" + query.SystemTenant: 30} {
		if n := count(q); n != want {
			t.Errorf("%s: %d events after retention, want %d", q, n, want)
		}
	}
	// Erased events stay erased after a catch-up.
	if n, err := p.CatchUp(ctx); err != nil || n != 0 {
		t.Errorf("catch-up after retention copied %d events (%v), want none", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The ledger verifies, and says what retention did.
	cmp := db.Compare(ctx)
	rep, err := ledger.Verify(ctx, filepath.Join(dir, "ledger"), ledger.VerifyOptions{Record: cmp.Record})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Removed) == 0 || len(rep.Redacted) == 0 {
		t.Errorf("verify: problems %v, removed %v, redacted %v", rep.Problems, rep.Removed, rep.Redacted)
	}
	if ms, err := cmp.Finish(uint64(rep.Size)); err != nil || len(ms) > 0 {
		t.Errorf("store against ledger: %v, %v", ms, err)
	}
}

func TestPipelineAppendNothing(t *testing.T) {
	p := openPipeline(t, t.TempDir())
	if err := p.Append(context.Background(), nil); err != nil || p.Ledger.Size() != 0 {
		t.Errorf("appending nothing: %v, ledger size %d", err, p.Ledger.Size())
	}
}
