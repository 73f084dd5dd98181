package meta_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
)

func TestMain(m *testing.M) { os.Exit(metatest.Main(m)) }

// TestEngines: the schema migrates, and alerts, their transitions,
// suppressions and cases round-trip, on SQLite and PostgreSQL alike.
func TestEngines(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		a := meta.Alert{ID: "a1", Tenant: "acme", RuleID: "r1", Title: "Root Account Used", Severity: "critical", Key: "k",
			Group: map[string]string{"vigil.actor": "root"}, Tags: []string{"attack.t1078"}, Status: "open", Count: 1,
			FirstSeen: at, LastSeen: at, Seqs: []uint64{7}, Created: at, Updated: at}
		if err := db.SaveAlerts(ctx, []meta.Alert{a}); err != nil {
			t.Fatal(err)
		}
		a.Count, a.Seqs = 2, []uint64{7, 9}
		if err := db.SaveAlerts(ctx, []meta.Alert{a}); err != nil {
			t.Fatal(err)
		}
		got, err := db.SetAlertStatus(ctx, []string{"acme"}, meta.Transition{AlertID: "a1", At: at.Add(time.Minute), Actor: "ann", From: "open", To: "acknowledged"})
		if err != nil || got.Count != 2 || got.Status != "acknowledged" || len(got.Seqs) != 2 || got.Group["vigil.actor"] != "root" {
			t.Fatalf("SetAlertStatus = %+v, %v", got, err)
		}
		if _, err := db.SetAlertStatus(ctx, []string{"acme"}, meta.Transition{AlertID: "a1", From: "open", To: "resolved"}); err != meta.ErrConflict {
			t.Errorf("a stale transition: %v", err)
		}
		if _, err := db.SetAlertStatus(ctx, []string{"beta"}, meta.Transition{AlertID: "a1", From: "acknowledged", To: "resolved"}); err != meta.ErrNotFound {
			t.Errorf("another tenant's transition: %v", err)
		}
		ts, err := db.AlertTransitions(ctx, "a1")
		if err != nil || len(ts) != 1 || ts[0].Actor != "ann" {
			t.Errorf("transitions %+v, %v", ts, err)
		}
		if as, err := db.Alerts(ctx, meta.AlertQuery{Tenants: []string{"acme"}, Status: []string{"acknowledged"}}); err != nil || len(as) != 1 {
			t.Errorf("alerts %+v, %v", as, err)
		}
		if err := db.AddSuppression(ctx, meta.Suppression{ID: "s1", Tenant: "acme", RuleID: "r1", Fields: map[string]string{"vigil.actor": "ci"}, Reason: "ci", Creator: "ann", Created: at}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddSuppressionHits(ctx, map[string]int64{"s1": 3}); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeSuppression(ctx, []string{"acme"}, "s1", "ann", at); err != nil {
			t.Fatal(err)
		}
		if ss, err := db.Suppressions(ctx, []string{"acme"}); err != nil || len(ss) != 1 || ss[0].Hits != 3 || ss[0].Revoked.IsZero() {
			t.Errorf("suppressions %+v, %v", ss, err)
		}
		if err := db.AddDelivery(ctx, meta.Delivery{AlertID: "a1", Channel: "pager", Action: "trigger", Status: "delivered", Attempts: 1, Queued: at, Done: at}); err != nil {
			t.Fatal(err)
		}
		if ds, err := db.AlertDeliveries(ctx, "a1"); err != nil || len(ds) != 1 || ds[0].Attempts != 1 {
			t.Errorf("deliveries %+v, %v", ds, err)
		}
		c := meta.Case{ID: "c1", Tenant: "acme", Title: "t", Status: "open", Owner: "ann", Creator: "ann", Created: at, Updated: at}
		if err := db.AddCase(ctx, c, []meta.CaseEntry{{At: at, Actor: "ann", Kind: "opened", Text: "t"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateCase(ctx, []string{"acme"}, "c1", func(c *meta.Case) ([]meta.CaseEntry, error) {
			c.Status, c.Updated = "closed", at.Add(time.Hour)
			return []meta.CaseEntry{{At: c.Updated, Actor: "ann", Kind: "status", Ref: "closed"}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if cs, err := db.Cases(ctx, meta.CaseQuery{Tenants: []string{"acme"}, Status: []string{"closed"}}); err != nil || len(cs) != 1 {
			t.Errorf("cases %+v, %v", cs, err)
		}
		if es, err := db.CaseEntries(ctx, "c1"); err != nil || len(es) != 2 {
			t.Errorf("entries %+v, %v", es, err)
		}
	})
}

// TestRunsEngines: playbook runs, their steps, the acts done, the count
// of containment and the settings round-trip on SQLite and PostgreSQL
// alike, scoped by tenant.
func TestRunsEngines(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		r := &meta.Run{ID: "run-1", Tenant: "acme", Playbook: "lock", AlertID: "a1", Status: "waiting", Actor: "alert", Data: []byte(`{"alert":null}`),
			Created: at, Updated: at, Steps: []meta.RunStep{
				{Index: 0, Name: "deny", Action: "aws.iam.deny_all", Mode: "approve", Destructive: true, Status: "waiting",
					Inputs: map[string]string{"principal": "user/alice"}, Key: "k1", Expires: at.Add(time.Hour)},
				{Index: 1, Name: "tell", Action: "notify", Mode: "auto", Status: "pending"},
			}}
		if err := db.SaveRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Status, r.CaseID, r.Updated = "done", "c1", at.Add(time.Minute)
		r.Steps[0].Status, r.Steps[0].Approver, r.Steps[0].Done, r.Steps[0].Attempts = "done", "ann", at.Add(time.Minute), 1
		r.Steps[0].Outputs = map[string]string{"policy": "vigil-deny-all"}
		if err := db.SaveRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		rs, err := db.Runs(ctx, meta.RunQuery{Tenants: []string{"acme"}, Status: []string{"done"}, Steps: true})
		if err != nil || len(rs) != 1 {
			t.Fatalf("runs: %v %v", rs, err)
		}
		got := rs[0]
		if got.CaseID != "c1" || string(got.Data) != `{"alert":null}` || len(got.Steps) != 2 || got.Steps[0].Approver != "ann" ||
			got.Steps[0].Outputs["policy"] != "vigil-deny-all" || !got.Steps[0].Destructive || !got.Steps[0].Expires.Equal(at.Add(time.Hour)) || !got.Steps[1].Done.IsZero() {
			t.Errorf("run %+v", got)
		}
		if rs, _ := db.Runs(ctx, meta.RunQuery{Tenants: []string{"beta"}}); len(rs) != 0 {
			t.Errorf("another tenant sees %v", rs)
		}
		if by, outs, ok, err := db.ActDone(ctx, "k1", "done"); err != nil || !ok || by != "run-1" || outs["policy"] != "vigil-deny-all" {
			t.Errorf("ActDone = %s %v %v %v", by, outs, ok, err)
		}
		if n, err := db.DestructiveSince(ctx, "done", at); err != nil || n != 1 {
			t.Errorf("DestructiveSince = %d, %v", n, err)
		}
		if n, _ := db.DestructiveSince(ctx, "done", at.Add(2*time.Minute)); n != 0 {
			t.Errorf("DestructiveSince later = %d", n)
		}
		if s, err := db.Setting(ctx, "playbooks.kill_switch"); err != nil || !s.Updated.IsZero() {
			t.Errorf("an unset setting: %+v %v", s, err)
		}
		for _, v := range []string{"on", "off"} {
			if err := db.SetSetting(ctx, meta.Setting{Name: "playbooks.kill_switch", Value: v, Actor: "ann", Updated: at}); err != nil {
				t.Fatal(err)
			}
		}
		if s, _ := db.Setting(ctx, "playbooks.kill_switch"); s.Value != "off" || s.Actor != "ann" {
			t.Errorf("setting %+v", s)
		}
	})
}
