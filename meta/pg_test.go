package meta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
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

// TestPartsEngines: alerts and detections across tenants keep each
// tenant's part, on SQLite and PostgreSQL alike. A scope sees its own
// rows and the rows across tenants with a part of its, trimmed to its
// parts unless it holds them all; a scope over every tenant sees every
// row whole; changing an alert across tenants needs the whole of it.
func TestPartsEngines(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		minute := func(n int) time.Time { return at.Add(time.Duration(n) * time.Minute) }
		grp := map[string]string{"vigil.src_ip": "198.51.100.20"}
		cross := meta.Alert{ID: "x1", RuleID: "corr", Title: "One Source Address in Three Accounts", Severity: "medium", Key: "k-x",
			Group: grp, Context: map[string]string{"vigil.src_ip": "198.51.100.20", "vigil.account": "333333333333", "vigil.actor": "deploy-b"},
			Status: "open", Count: 1, FirstSeen: minute(0), LastSeen: minute(20), Seqs: []uint64{1, 2, 3}, Created: at, Updated: at,
			Parts: []meta.AlertPart{
				{Tenant: "team-a", Seqs: []uint64{1, 2}, Count: 2, FirstSeen: minute(0), LastSeen: minute(10)},
				{Tenant: "team-b", Seqs: []uint64{3}, Count: 1, FirstSeen: minute(20), LastSeen: minute(20)},
			}}
		legacy := meta.Alert{ID: "x0", RuleID: "corr", Title: "before parts", Severity: "medium", Key: "k-0", Status: "open", Count: 1,
			FirstSeen: at, LastSeen: at, Created: at, Updated: at.Add(-time.Hour)}
		own := meta.Alert{ID: "a1", Tenant: "team-a", RuleID: "r1", Title: "a's own", Severity: "high", Key: "k-a", Status: "open", Count: 1,
			FirstSeen: at, LastSeen: at, Seqs: []uint64{9}, Created: at, Updated: at.Add(-time.Minute)}
		if err := db.SaveAlerts(ctx, []meta.Alert{cross, legacy, own}); err != nil {
			t.Fatal(err)
		}
		// A merged hit updates the parts, and adds one.
		cross.Count, cross.LastSeen, cross.Seqs = 2, minute(32), []uint64{1, 2, 3, 4, 5}
		cross.Parts[1] = meta.AlertPart{Tenant: "team-b", Seqs: []uint64{3, 4}, Count: 2, FirstSeen: minute(20), LastSeen: minute(30)}
		cross.Parts = append(cross.Parts, meta.AlertPart{Tenant: "team-c", Seqs: []uint64{5}, Count: 1, FirstSeen: minute(32), LastSeen: minute(32)})
		if err := db.SaveAlerts(ctx, []meta.Alert{cross}); err != nil {
			t.Fatal(err)
		}
		ids := func(q meta.AlertQuery) (string, map[string]meta.Alert) {
			t.Helper()
			as, err := db.Alerts(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			byID := map[string]meta.Alert{}
			for _, a := range as {
				out = append(out, a.ID)
				byID[a.ID] = a
			}
			return strings.Join(out, " "), byID
		}
		for _, tc := range []struct {
			name string
			q    meta.AlertQuery
			want string
		}{
			{"every tenant", meta.AlertQuery{AllTenants: true}, "x1 a1 x0"},
			{"team-a", meta.AlertQuery{Tenants: []string{"team-a"}}, "x1 a1"},
			{"team-b", meta.AlertQuery{Tenants: []string{"team-b"}}, "x1"},
			{"team-d", meta.AlertQuery{Tenants: []string{"team-d"}}, ""},
			{"team-d, open", meta.AlertQuery{Tenants: []string{"team-d"}, Status: []string{"open"}}, ""},
			{"team-d, by id", meta.AlertQuery{Tenants: []string{"team-d"}, ID: "x1"}, ""},
			{"team-b, a rule", meta.AlertQuery{Tenants: []string{"team-b"}, RuleID: "r1"}, ""},
			{"no scope", meta.AlertQuery{}, ""},
		} {
			if got, _ := ids(tc.q); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
		_, all := ids(meta.AlertQuery{AllTenants: true})
		if a := all["x1"]; a.Partial || a.Count != 2 || len(a.Seqs) != 5 || len(a.Parts) != 3 || strings.Join(a.Tenants, ",") != "team-a,team-b,team-c" ||
			a.Context["vigil.account"] != "333333333333" || a.Parts[1].Count != 2 || !a.Parts[1].LastSeen.Equal(minute(30)) {
			t.Errorf("the whole: %+v", a)
		}
		if a := all["a1"]; a.Tenants != nil || a.Partial || a.Parts != nil {
			t.Errorf("one tenant's alert: %+v", a)
		}
		_, whole := ids(meta.AlertQuery{Tenants: []string{"team-c", "team-a", "team-b"}})
		if a := whole["x1"]; a.Partial || a.Count != 2 || len(a.Parts) != 3 {
			t.Errorf("a scope of all its tenants: %+v", a)
		}
		_, as := ids(meta.AlertQuery{Tenants: []string{"team-b"}})
		a := as["x1"]
		if !a.Partial || a.Tenant != "" || strings.Join(a.Tenants, ",") != "team-b" || fmt.Sprint(a.Seqs) != "[3 4]" || a.Count != 2 ||
			!a.FirstSeen.Equal(minute(20)) || !a.LastSeen.Equal(minute(30)) || len(a.Parts) != 1 || a.Group["vigil.src_ip"] != "198.51.100.20" ||
			len(a.Context) != 1 || a.Context["vigil.src_ip"] != "198.51.100.20" {
			t.Errorf("team-b's part: %+v", a)
		}
		if b, _ := json.Marshal(a); strings.Contains(string(b), "team-a") || strings.Contains(string(b), "team-c") || strings.Contains(string(b), "deploy-b") {
			t.Errorf("team-b's part tells of others: %s", b)
		}
		if err := db.SaveAlerts(ctx, []meta.Alert{a}); err == nil {
			t.Error("saved a part over the whole")
		}

		// Changing it.
		tr := meta.Transition{AlertID: "x1", At: minute(40), Actor: "carol", From: "open", To: "acknowledged", Reason: "team-c's scanner"}
		for _, tenants := range [][]string{{"team-a"}, {"team-a", "team-b"}} {
			if _, err := db.SetAlertStatus(ctx, tenants, tr); !errors.Is(err, meta.ErrPartial) {
				t.Errorf("%v changed it: %v", tenants, err)
			}
		}
		if _, err := db.SetAlertStatus(ctx, []string{"team-d"}, tr); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("team-d changed it: %v", err)
		}
		if _, err := db.SetAlertStatus(ctx, []string{"team-a"}, meta.Transition{AlertID: "x0", From: "open", To: "acknowledged"}); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("team-a changed an alert across tenants without parts: %v", err)
		}
		got, err := db.SetAlertStatus(ctx, []string{"team-a", "team-b", "team-c"}, tr)
		if err != nil || got.Status != "acknowledged" || got.Partial || len(got.Parts) != 3 || got.Count != 2 {
			t.Fatalf("all its tenants changed it: %+v, %v", got, err)
		}
		if err := db.AddDelivery(ctx, meta.Delivery{AlertID: "x1", Channel: "team-c-pager", Action: "trigger", Status: "delivered", Queued: at, Done: at}); err != nil {
			t.Fatal(err)
		}
		a, ts, ds, err := db.AlertDetail(ctx, []string{"team-b"}, "x1")
		if err != nil || !a.Partial || a.Reason != "" || len(ts) != 1 || ts[0].Reason != "" || ts[0].To != "acknowledged" || ts[0].Actor != "carol" || ds != nil {
			t.Errorf("team-b's detail: %+v %+v %+v %v", a, ts, ds, err)
		}
		a, ts, ds, err = db.AlertDetail(ctx, nil, "x1")
		if err != nil || a.Partial || ts[0].Reason != "team-c's scanner" || len(ds) != 1 {
			t.Errorf("the CSIRT's detail: %+v %+v %+v %v", a, ts, ds, err)
		}
		if _, _, _, err := db.AlertDetail(ctx, []string{"team-d"}, "x1"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("team-d's detail: %v", err)
		}

		// Detections.
		if err := db.AddDetections(ctx, []meta.Detection{
			{Created: minute(1), Tenant: "team-a", RuleID: "r1", Title: "a's", Level: "high", Seq: ptr(9)},
			{Created: minute(2), RuleID: "corr", Title: "across", Level: "medium", Group: grp, Events: []uint64{1, 2, 3},
				Parts: []meta.DetectionPart{{Tenant: "team-a", Seqs: []uint64{1, 2}}, {Tenant: "team-b", Seqs: []uint64{3}}}},
			{Created: minute(3), RuleID: "corr", Title: "before parts", Level: "medium", Events: []uint64{4, 5, 6}},
		}); err != nil {
			t.Fatal(err)
		}
		dets := func(q meta.DetectionQuery) []meta.Detection {
			t.Helper()
			ds, err := db.Detections(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		if ds := dets(meta.DetectionQuery{AllTenants: true}); len(ds) != 3 || ds[1].Partial || fmt.Sprint(ds[1].Events) != "[1 2 3]" || strings.Join(ds[1].Tenants, ",") != "team-a,team-b" {
			t.Errorf("every tenant's detections: %+v", ds)
		}
		if ds := dets(meta.DetectionQuery{Tenants: []string{"team-a", "team-b"}}); len(ds) != 2 || ds[0].Partial || len(ds[0].Parts) != 2 {
			t.Errorf("team-a and team-b's detections: %+v", ds)
		}
		bs := dets(meta.DetectionQuery{Tenants: []string{"team-b"}})
		if len(bs) != 1 || !bs[0].Partial || bs[0].Title != "across" || fmt.Sprint(bs[0].Events) != "[3]" || strings.Join(bs[0].Tenants, ",") != "team-b" ||
			len(bs[0].Parts) != 1 || bs[0].Group["vigil.src_ip"] != "198.51.100.20" {
			t.Errorf("team-b's detections: %+v", bs)
		}
		if ds := dets(meta.DetectionQuery{Tenants: []string{"team-d"}}); len(ds) != 0 {
			t.Errorf("team-d's detections: %+v", ds)
		}
		if ds := dets(meta.DetectionQuery{Tenants: []string{"team-b"}, RuleID: "r1"}); len(ds) != 0 {
			t.Errorf("team-b's detections of r1: %+v", ds)
		}
	})
}

func ptr(n uint64) *uint64 { return &n }
