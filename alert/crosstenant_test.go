package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
)

// ruleCrossAccount is the built-in "One Source Address Active in Three
// or More Cloud Accounts", a correlation that spans tenants when the
// accounts are different tenants'.
const ruleCrossAccount = "b95e4d5e-13d3-400d-80c6-2a01b16621b8"

// crossEvent is a CloudTrail record of tenant's account from ip, parsed
// as ingest parses it, at t0+at with the given seq.
func crossEvent(t *testing.T, tenant, account, ip string, at time.Duration, seq uint64) *event.Event {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "1.09", "eventTime": t0.Add(at).Format(time.RFC3339), "eventSource": "sts.amazonaws.com",
		"eventName": "GetCallerIdentity", "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0",
		"eventID": fmt.Sprint("ev-", seq), "eventType": "AwsApiCall", "recipientAccountId": account,
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDA" + account, "arn": "arn:aws:iam::" + account + ":user/deploy-" + tenant,
			"accountId": account, "userName": "deploy-" + tenant},
	}}})
	var ev *event.Event
	if _, err := parse.Parse(strings.NewReader(string(doc)), parse.Auto, parse.Options{Tenant: tenant, Received: t0.Add(at)}, func(r parse.Result) error {
		if r.Event == nil {
			return fmt.Errorf("not parsed: %w", r.Err)
		}
		ev = r.Event
		return nil
	}); err != nil || ev == nil {
		t.Fatalf("parsing %s: %v", doc, err)
	}
	ev.Seq = seq
	return ev
}

// TestCrossTenantAlert: the built-in cross-account correlation firing on
// events of three tenants makes one alert across tenants, with each
// tenant's part; a later firing merges into it, and the parts survive a
// restart. The CSIRT sees it whole; a team sees its part only, with
// nothing of the other tenants, and may neither change it nor put it in
// a case.
func TestCrossTenantAlert(t *testing.T) {
	ctx := context.Background()
	rules, err := detect.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e, err := detect.NewEngine(rules, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, db, _, opened := testManager(t, Config{})
	det := e.NewDetector()
	const ip = "198.51.100.20"
	fire := func(evs ...*event.Event) []detect.Detection {
		t.Helper()
		var ds []detect.Detection
		for _, ev := range evs {
			ds = append(ds, det.Process(ev)...)
		}
		var corr []detect.Detection
		for _, d := range ds {
			if d.Rule.ID == ruleCrossAccount {
				corr = append(corr, d)
			}
		}
		if len(corr) != 1 {
			t.Fatalf("%d cross-account correlations, want 1 (of %d detections)", len(corr), len(ds))
		}
		m.Detected(ds)
		return corr
	}
	ds := fire(
		crossEvent(t, "team-a", "111111111111", ip, 0, 1),
		crossEvent(t, "team-a", "222222222222", ip, 10*time.Minute, 2),
		crossEvent(t, "team-b", "333333333333", ip, 20*time.Minute, 3),
	)
	if d := ds[0]; d.Tenant() != "" || len(d.Parts()) != 2 || d.Parts()[0].Tenant != "team-a" || len(d.Parts()[0].Events) != 2 || d.Parts()[1].Events[0].Seq != 3 {
		t.Fatalf("the correlation's parts: %+v", d.Parts())
	}
	if len(*opened) != 1 || (*opened)[0].Tenant != "" || len((*opened)[0].Parts) != 2 {
		t.Fatalf("opened %+v", *opened)
	}
	id := (*opened)[0].ID

	// A second firing of the same address, now with team-c, merges.
	fire(
		crossEvent(t, "team-b", "333333333333", ip, 30*time.Minute, 4),
		crossEvent(t, "team-c", "555555555555", ip, 31*time.Minute, 5),
		crossEvent(t, "team-a", "111111111111", ip, 32*time.Minute, 6),
	)
	view := func(tenants []string) (meta.Alert, bool) {
		t.Helper()
		as, err := m.Alerts(ctx, meta.AlertQuery{Tenants: tenants, AllTenants: tenants == nil})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.RuleID == ruleCrossAccount {
				return a, true
			}
		}
		return meta.Alert{}, false
	}
	whole, _ := view(nil)
	if whole.ID != id || whole.Count != 2 || whole.Partial || !slices.Equal(whole.Tenants, []string{"team-a", "team-b", "team-c"}) ||
		!slices.Equal(whole.Seqs, []uint64{1, 2, 3, 4, 5, 6}) || whole.Group["vigil.src_ip"] != ip || len(*opened) != 1 {
		t.Fatalf("the CSIRT's view: %+v (%d opened)", whole, len(*opened))
	}
	wantParts := "team-a [1 2 6] 3 12:00-12:32, team-b [3 4] 2 12:20-12:30, team-c [5] 1 12:31-12:31"
	if got := partsString(whole.Parts); got != wantParts {
		t.Errorf("parts %s, want %s", got, wantParts)
	}
	// A scope over every tenant of its parts sees it whole too.
	if a, _ := view([]string{"team-c", "team-b", "team-a", "team-d"}); a.Partial || a.Count != 2 || len(a.Seqs) != 6 {
		t.Errorf("a scope of all its tenants: %+v", a)
	}

	a, ok := view([]string{"team-a"})
	if !ok || !a.Partial || a.Tenant != "" || !slices.Equal(a.Tenants, []string{"team-a"}) || !slices.Equal(a.Seqs, []uint64{1, 2, 6}) ||
		a.Count != 3 || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(32*time.Minute)) || a.Group["vigil.src_ip"] != ip ||
		partsString(a.Parts) != "team-a [1 2 6] 3 12:00-12:32" {
		t.Fatalf("team-a's view: %+v", a)
	}
	b, _ := json.Marshal(a)
	for _, other := range []string{"team-b", "team-c", "333333333333", "555555555555"} {
		if strings.Contains(string(b), other) {
			t.Errorf("team-a's view names %s: %s", other, b)
		}
	}
	if _, ok := view([]string{"team-d"}); ok {
		t.Error("team-d, with no part, sees the alert")
	}
	if a, _ := view([]string{"team-b", "team-c"}); !a.Partial || a.Count != 3 || !slices.Equal(a.Seqs, []uint64{3, 4, 5}) || !slices.Equal(a.Tenants, []string{"team-b", "team-c"}) {
		t.Errorf("team-b and team-c's view: %+v", a)
	}

	// Changing it is the CSIRT's.
	if _, err := m.SetStatus(ctx, []string{"team-a"}, id, Acknowledged, "ann", ""); !errors.Is(err, meta.ErrPartial) {
		t.Errorf("team-a acknowledged: %v", err)
	}
	if _, err := m.SetStatus(ctx, []string{"team-d"}, id, Acknowledged, "eve", ""); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("team-d acknowledged: %v", err)
	}
	if _, err := db.SetAlertStatus(ctx, []string{"team-a", "team-b"}, meta.Transition{AlertID: id, From: Open, To: Acknowledged}); !errors.Is(err, meta.ErrPartial) {
		t.Errorf("the database let team-a and team-b acknowledge: %v", err)
	}
	got, err := m.SetStatus(ctx, nil, id, Acknowledged, "carol", "team-b's pentest from 333333333333")
	if err != nil || got.Status != Acknowledged || got.Partial || len(got.Parts) != 3 {
		t.Fatalf("the CSIRT acknowledged: %+v, %v", got, err)
	}
	if err := db.AddDelivery(ctx, meta.Delivery{AlertID: id, Channel: "team-b-pager", Action: "trigger", Status: "delivered", Attempts: 1, Queued: t0, Done: t0}); err != nil {
		t.Fatal(err)
	}
	al, ts, dls, err := m.AlertDetail(ctx, []string{"team-a"}, id)
	if err != nil || !al.Partial || len(ts) != 1 || ts[0].Reason != "" || ts[0].To != Acknowledged || len(dls) != 0 {
		t.Errorf("team-a's detail: %+v %+v %+v %v", al, ts, dls, err)
	}
	if _, ts, dls, err := m.AlertDetail(ctx, nil, id); err != nil || len(ts) != 1 || ts[0].Reason == "" || len(dls) != 1 {
		t.Errorf("the CSIRT's detail: %+v %+v %v", ts, dls, err)
	}
	if _, _, _, err := m.AlertDetail(ctx, []string{"team-d"}, id); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("team-d's detail: %v", err)
	}

	// Cases: a team may not put it in one; the CSIRT puts it in a case
	// across tenants, and not in a team's.
	if _, err := m.OpenCase(ctx, []string{"team-a"}, "Shared IP", "", "ann", []string{id}); !errors.Is(err, meta.ErrPartial) {
		t.Errorf("team-a opened a case of it: %v", err)
	}
	own, err := m.OpenCase(ctx, []string{"team-a"}, "Ours", "", "ann", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddToCase(ctx, []string{"team-a"}, own.ID, EntryAlert, id, "", "ann"); !errors.Is(err, meta.ErrPartial) {
		t.Errorf("team-a added it to its case: %v", err)
	}
	if _, err := m.AddToCase(ctx, nil, own.ID, EntryAlert, id, "", "carol"); !errors.Is(err, ErrCase) {
		t.Errorf("the CSIRT added it to team-a's case: %v", err)
	}
	c, err := m.OpenCase(ctx, nil, "Shared IP", "", "carol", []string{id})
	if err != nil || c.Tenant != "" {
		t.Errorf("the CSIRT's case %+v, %v", c, err)
	}
	if cs, _ := m.Cases(ctx, meta.CaseQuery{Tenants: []string{"team-a"}}); len(cs) != 1 || cs[0].ID != own.ID {
		t.Errorf("team-a sees cases %+v", cs)
	}

	// After a restart, a third firing joins the alert, its parts kept.
	m2, err := NewManager(ctx, db, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2.now = m.now
	m = m2
	fire(
		crossEvent(t, "team-a", "111111111111", ip, 40*time.Minute, 7),
		crossEvent(t, "team-b", "333333333333", ip, 41*time.Minute, 8),
		crossEvent(t, "team-b", "444444444444", ip, 42*time.Minute, 9),
	)
	whole, _ = view(nil)
	wantParts = "team-a [1 2 6 7] 4 12:00-12:40, team-b [3 4 8 9] 4 12:20-12:42, team-c [5] 1 12:31-12:31"
	if whole.ID != id || whole.Count != 3 || whole.Status != Acknowledged || partsString(whole.Parts) != wantParts {
		t.Errorf("after a restart: %+v, parts %s, want %s", whole, partsString(whole.Parts), wantParts)
	}
	// An alert read as a part is never saved over the whole.
	a, _ = view([]string{"team-a"})
	if err := db.SaveAlerts(ctx, []meta.Alert{a}); err == nil {
		t.Error("saved team-a's view of the alert")
	}
}

func partsString(ps []meta.AlertPart) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %v %d %s-%s", p.Tenant, p.Seqs, p.Count, p.FirstSeen.Format("15:04"), p.LastSeen.Format("15:04")))
	}
	return strings.Join(out, ", ")
}
