package alert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
	"github.com/vigilsec/vigil/parse"
)

var (
	t0       = time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
	stopRule = &detect.Rule{ID: "r-stop", Title: "CloudTrail Logging Stopped", Level: "high", Tags: []string{"attack.t1562.008"}}
)

func TestMain(m *testing.M) { os.Exit(metatest.Main(m)) }

// onPostgres makes testManager's database a PostgreSQL one.
var onPostgres bool

// TestPostgres runs the tests of the alert layer again, on PostgreSQL.
func TestPostgres(t *testing.T) {
	defer func() { onPostgres = false }()
	onPostgres = true
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Grouping", TestGrouping}, {"Window", TestWindow}, {"Lifecycle", TestLifecycle}, {"Suppression", TestSuppression},
		{"Restart", TestRestart}, {"ResolvedElsewhere", TestResolvedElsewhere}, {"StratusAlerts", TestStratusAlerts}, {"Cases", TestCases}, {"QuietAndEscalate", TestQuietAndEscalate},
		{"CrossTenantAlert", TestCrossTenantAlert}, {"Assign", TestAssign},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// testManager returns a Manager over a fresh database, with a clock the
// test moves, and the alerts it opened, as OnNew was given them.
func testManager(t *testing.T, cfg Config) (*Manager, *meta.DB, *time.Time, *[]meta.Alert) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	if onPostgres {
		path = metatest.Postgres(t)
	}
	db, err := meta.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := NewManager(ctx, db, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	m.now = func() time.Time { return now }
	var opened []meta.Alert
	m.OnNew = func(as []meta.Alert, _ []*event.Event) { opened = append(opened, as...) }
	return m, db, &now, &opened
}

// hit is a detection of r on an event of actor at t0+at.
func hit(r *detect.Rule, tenant, actor string, at time.Duration, seq uint64) detect.Detection {
	ev := &event.Event{Seq: seq, Tenant: tenant, Time: t0.Add(at), Actor: event.Actor{Name: actor}, Source: "aws.cloudtrail"}
	return detect.Detection{Rule: r, Event: ev, Fields: map[string]string{"eventName": "StopLogging"}}
}

func alerts(t *testing.T, db *meta.DB) []meta.Alert {
	t.Helper()
	as, err := db.Alerts(context.Background(), meta.AlertQuery{AllTenants: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestGrouping: 10,000 hits of one rule for one actor in a minute make
// one alert with count 10,000, notified once; a second actor makes a
// second alert.
func TestGrouping(t *testing.T) {
	m, db, _, opened := testManager(t, Config{})
	for batch := range 10 {
		var ds []detect.Detection
		for i := range 1000 {
			n := batch*1000 + i
			ds = append(ds, hit(stopRule, "acme", "alice", time.Duration(n)*6*time.Millisecond, uint64(n+1)))
		}
		m.Detected(ds)
	}
	as := alerts(t, db)
	if len(as) != 1 || as[0].Count != 10_000 || len(*opened) != 1 {
		t.Fatalf("%d alerts (%+v), %d notified; want one of count 10000, notified once", len(as), as, len(*opened))
	}
	a := as[0]
	if a.Status != Open || a.Severity != "high" || a.Tenant != "acme" || a.Group["vigil.actor"] != "alice" || a.Context["vigil.actor"] != "alice" ||
		!a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(9999*6*time.Millisecond)) || len(a.Seqs) != MaxSeqs || a.Seqs[0] != 1 {
		t.Errorf("alert %+v", a)
	}
	m.Detected([]detect.Detection{hit(stopRule, "acme", "bob", time.Minute, 10_001)})
	if as := alerts(t, db); len(as) != 2 || len(*opened) != 2 || (*opened)[1].Group["vigil.actor"] != "bob" {
		t.Fatalf("after bob: %d alerts, %d notified", len(as), len(*opened))
	}
	// Another tenant's alice is another alert too.
	m.Detected([]detect.Detection{hit(stopRule, "other", "alice", time.Minute, 10_002)})
	if as := alerts(t, db); len(as) != 3 {
		t.Fatalf("after another tenant: %d alerts", len(as))
	}
}

// TestWindow: a hit more than the window after the alert's last event
// opens a new alert; one within it joins, however old the alert.
func TestWindow(t *testing.T) {
	m, db, _, opened := testManager(t, Config{Window: 10 * time.Minute})
	for _, at := range []time.Duration{0, 9 * time.Minute, 18 * time.Minute, 29 * time.Minute} {
		m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", at, 1)})
	}
	if as := alerts(t, db); len(as) != 2 || len(*opened) != 2 {
		t.Fatalf("%d alerts, %d notified; want 2: hits at 0, 9 and 18 minutes, then 29", len(as), len(*opened))
	}
}

// TestLifecycle: the allowed transitions, each recorded with who, when
// and why; a resolved alert takes no more hits; the scope is enforced.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	m, db, now, opened := testManager(t, Config{})
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", 0, 1)})
	id := (*opened)[0].ID

	if _, err := m.SetStatus(ctx, []string{"other"}, id, Acknowledged, "eve", ""); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("another tenant acknowledged: %v", err)
	}
	steps := []struct {
		to, actor, reason string
		err               error
	}{
		{Acknowledged, "ann", "", nil},
		{Acknowledged, "ann", "", ErrTransition}, // already
		{Closed, "ann", "", ErrTransition},       // a reason is needed
		{Resolved, "ann", "keys rotated", nil},
		{Acknowledged, "ann", "", ErrTransition}, // resolved: only reopened
		{Open, "bob", "it came back", nil},
		{Closed, "bob", "the red team's test", nil},
		{"gone", "bob", "", ErrTransition},
	}
	for i, st := range steps {
		*now = now.Add(time.Minute)
		a, err := m.SetStatus(ctx, []string{"acme"}, id, st.to, st.actor, st.reason)
		if !errors.Is(err, st.err) {
			t.Fatalf("step %d (%s): %v, want %v", i, st.to, err, st.err)
		}
		if err == nil && (a.Status != st.to || !a.Updated.Equal(*now)) {
			t.Errorf("step %d: alert %+v", i, a)
		}
	}
	ts, err := db.AlertTransitions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"open→acknowledged by ann", "acknowledged→resolved by ann: keys rotated", "resolved→open by bob: it came back", "open→closed by bob: the red team's test"}
	if len(ts) != len(want) {
		t.Fatalf("transitions %+v", ts)
	}
	for i, tr := range ts {
		got := fmt.Sprintf("%s→%s by %s", tr.From, tr.To, tr.Actor)
		if tr.Reason != "" {
			got += ": " + tr.Reason
		}
		if got != want[i] || tr.At.IsZero() {
			t.Errorf("transition %d: %s at %v, want %s", i, got, tr.At, want[i])
		}
	}
	// Closed, it takes no more hits: the next opens a new alert.
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", time.Minute, 2)})
	if as := alerts(t, db); len(as) != 2 || len(*opened) != 2 {
		t.Fatalf("after closing: %d alerts, %d notified", len(as), len(*opened))
	}
}

// TestSuppression: a suppression keeps matching detections from
// alerting, and counts them, until it expires or is revoked; others
// alert as ever.
func TestSuppression(t *testing.T) {
	ctx := context.Background()
	m, db, now, opened := testManager(t, Config{})
	s, err := m.Suppress(ctx, meta.Suppression{Tenant: "acme", RuleID: stopRule.ID, Fields: map[string]string{"vigil.actor": "ci-bot"},
		Reason: "the CI pipeline recreates its trail", Creator: "ann", Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	m.Detected([]detect.Detection{hit(stopRule, "acme", "ci-bot", 0, 1), hit(stopRule, "acme", "ci-bot", time.Second, 2), hit(stopRule, "acme", "alice", 0, 3)})
	if len(*opened) != 1 || (*opened)[0].Group["vigil.actor"] != "alice" || m.Suppressed() != 2 {
		t.Fatalf("opened %+v, suppressed %d", *opened, m.Suppressed())
	}
	ss, err := db.Suppressions(ctx, []string{"acme"})
	if err != nil || len(ss) != 1 || ss[0].Hits != 2 || ss[0].Creator != "ann" || ss[0].Reason == "" {
		t.Fatalf("suppressions %+v, %v", ss, err)
	}
	// Expired, it no longer applies.
	*now = now.Add(2 * time.Hour)
	m.loaded = time.Time{}
	m.Detected([]detect.Detection{hit(stopRule, "acme", "ci-bot", 2*time.Second, 4)})
	if len(*opened) != 2 {
		t.Fatalf("after expiry: opened %d", len(*opened))
	}
	// Revoked, neither; and the revocation is kept.
	s2, err := m.Suppress(ctx, meta.Suppression{RuleID: stopRule.ID, Fields: map[string]string{"vigil.actor": "bob"}, Reason: "noisy", Creator: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	m.Detected([]detect.Detection{hit(stopRule, "other", "bob", 0, 5)})
	if len(*opened) != 2 {
		t.Fatalf("a suppression of every tenant did not apply")
	}
	if err := m.Unsuppress(ctx, []string{"acme"}, s2.ID, "ann"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("a tenant revoked a suppression of every tenant: %v", err)
	}
	if err := m.Unsuppress(ctx, nil, s2.ID, "root"); err != nil {
		t.Fatal(err)
	}
	m.Detected([]detect.Detection{hit(stopRule, "other", "bob", time.Second, 6)})
	if len(*opened) != 3 {
		t.Fatalf("after revoking: opened %d", len(*opened))
	}
	ss, _ = db.Suppressions(ctx, nil)
	if len(ss) != 2 || ss[0].ID != s.ID || ss[1].Revoked.IsZero() || ss[1].RevokedBy != "root" {
		t.Errorf("suppressions %+v", ss)
	}
	for _, bad := range []meta.Suppression{
		{RuleID: stopRule.ID, Creator: "ann"},
		{Reason: "x", Creator: "ann"},
		{RuleID: stopRule.ID, Reason: "x", Expires: now.Add(-time.Minute)},
	} {
		if _, err := m.Suppress(ctx, bad); err == nil {
			t.Errorf("suppression %+v accepted", bad)
		}
	}
}

// TestRestart: a new manager over the same database goes on grouping
// into the open alerts.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	m, db, _, _ := testManager(t, Config{})
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", 0, 1)})
	m2, err := NewManager(ctx, db, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2.Detected([]detect.Detection{hit(stopRule, "acme", "alice", time.Minute, 2)})
	if as := alerts(t, db); len(as) != 1 || as[0].Count != 2 || len(as[0].Seqs) != 2 {
		t.Fatalf("after a restart: %+v", as)
	}
}

// TestStratusAlerts runs the built-in pack on real attack logs and makes
// alerts of what it finds: each Stratus technique's log gives alerts,
// keyed by actor, fewer than its detections, and each names its rule's
// severity.
func TestStratusAlerts(t *testing.T) {
	rules, err := detect.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e, err := detect.NewEngine(rules, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, db, _, opened := testManager(t, Config{})
	files, _ := filepath.Glob("../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/*.json")
	if len(files) < 30 {
		t.Fatalf("%d Stratus logs", len(files))
	}
	detections := 0
	for _, f := range files {
		d := e.NewDetector()
		var ds []detect.Detection
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(0)
		_, err = parse.Parse(fh, parse.Auto, parse.Options{Tenant: "acme", Received: t0}, func(r parse.Result) error {
			if r.Event != nil {
				seq++
				r.Event.Seq = seq
				ds = append(ds, d.Process(r.Event)...)
			}
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		detections += len(ds)
		m.Detected(ds)
	}
	as := alerts(t, db)
	var count int64
	for _, a := range as {
		count += a.Count
		if a.Severity == "" || a.Title == "" || a.Count < 1 {
			t.Errorf("alert %+v", a)
		}
	}
	if len(as) == 0 || len(as) != len(*opened) || count != int64(detections) || len(as) >= detections {
		t.Errorf("%d detections made %d alerts (%d notified) counting %d", detections, len(as), len(*opened), count)
	}
	t.Logf("%d detections, %d alerts", detections, len(as))
}

// TestSaveFails: an alert that could not be saved is not notified, and
// the next hit of its key, once the database is back, opens and
// notifies it.
func TestSaveFails(t *testing.T) {
	m, db, _, opened := testManager(t, Config{})
	db.Close() // every write fails
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", 0, 1)})
	if len(*opened) != 0 || len(m.active) != 0 {
		t.Fatalf("an alert not saved: notified %d, active %d", len(*opened), len(m.active))
	}
	db2, err := meta.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	m.db = db2
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", time.Second, 2)})
	if len(*opened) != 1 {
		t.Fatalf("after the database came back: notified %d", len(*opened))
	}
}

// TestResolvedElsewhere: an alert resolved by another process (the
// command line, another node) takes no more hits: the next opens a new
// alert, and notifies.
func TestResolvedElsewhere(t *testing.T) {
	ctx := context.Background()
	m, db, _, opened := testManager(t, Config{})
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", 0, 1)})
	other, err := NewManager(ctx, db, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetStatus(ctx, nil, (*opened)[0].ID, Resolved, "ann", "done"); err != nil {
		t.Fatal(err)
	}
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", time.Minute, 2)})
	as := alerts(t, db)
	if len(as) != 2 || len(*opened) != 2 {
		t.Fatalf("%d alerts, %d notified; want the resolved one and a new one", len(as), len(*opened))
	}
	for _, a := range as {
		if a.Status == Resolved && a.Count != 1 {
			t.Errorf("the resolved alert took a hit: count %d", a.Count)
		}
	}
}
