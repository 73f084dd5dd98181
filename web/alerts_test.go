package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// TestAlertsAPI: each tenant sees and changes its own alerts only,
// readers read and workers change, every change names who made it, and
// suppressions are confined to the caller's tenant.
func TestAlertsAPI(t *testing.T) {
	f := newAlertsFixture(t)
	alerts, rule, at, call := f.alerts, f.rule, f.at, f.call
	analystA, viewerA, analystB := f.analystA, f.viewerA, f.analystB
	list := func(token, query string) []meta.Alert {
		code, body := call("GET", "/api/v1/alerts"+query, token, "")
		if code != 200 {
			t.Fatalf("list: %d %s", code, body)
		}
		var as []meta.Alert
		if err := json.Unmarshal([]byte(body), &as); err != nil {
			t.Fatal(err)
		}
		return as
	}
	as := list(analystA, "")
	if len(as) != 1 || as[0].Tenant != "team-a" || as[0].Severity != "critical" {
		t.Fatalf("team-a sees %+v", as)
	}
	if all := list("admin-secret", "?status=open"); len(all) != 2 {
		t.Fatalf("admin sees %d alerts", len(all))
	}
	idA := as[0].ID
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		has                             string
	}{
		{"no token", "GET", "/api/v1/alerts", "", "", 401, ""},
		{"bad status", "GET", "/api/v1/alerts?status=sleeping", analystA, "", 400, "status"},
		{"viewer reads", "GET", "/api/v1/alerts/" + idA, viewerA, "", 200, `"transitions":[]`},
		{"viewer may not acknowledge", "POST", "/api/v1/alerts/" + idA + "/ack", viewerA, "", 403, ""},
		{"another tenant may not acknowledge", "POST", "/api/v1/alerts/" + idA + "/ack", analystB, "", 404, ""},
		{"another tenant may not read", "GET", "/api/v1/alerts/" + idA, analystB, "", 404, ""},
		{"analyst acknowledges", "POST", "/api/v1/alerts/" + idA + "/ack", analystA, "", 200, `"status":"acknowledged"`},
		{"unknown action", "POST", "/api/v1/alerts/" + idA + "/snooze", analystA, "", 404, "snooze"},
		{"closing needs a reason", "POST", "/api/v1/alerts/" + idA + "/close", analystA, `{}`, 409, "reason"},
		{"unknown body field", "POST", "/api/v1/alerts/" + idA + "/close", analystA, `{"why":"x"}`, 400, "why"},
		{"analyst closes", "POST", "/api/v1/alerts/" + idA + "/close", analystA, `{"reason":"the red team"}`, 200, `"reason":"the red team"`},
		{"the trail names who", "GET", "/api/v1/alerts/" + idA, viewerA, "", 200, `"actor":"ann","from":"acknowledged","to":"closed","reason":"the red team"`},
		{"no such alert", "POST", "/api/v1/alerts/nope/ack", analystA, "", 404, ""},
		{"suppress in another tenant", "POST", "/api/v1/suppressions", analystA, `{"rule_id":"r1","reason":"x","tenant":"team-b"}`, 403, ""},
		{"suppress without a reason", "POST", "/api/v1/suppressions", analystA, `{"rule_id":"r1"}`, 400, "reason"},
		{"bad expiry", "POST", "/api/v1/suppressions", analystA, `{"rule_id":"r1","reason":"x","expires":"soon"}`, 400, "expires"},
		{"suppress", "POST", "/api/v1/suppressions", analystA, `{"rule_id":"r1","fields":{"vigil.actor":"root"},"reason":"break-glass drill","expires":"24h"}`, 201, `"tenant":"team-a"`},
		{"viewer may not suppress", "POST", "/api/v1/suppressions", viewerA, `{"rule_id":"r1","reason":"x"}`, 403, ""},
		{"another tenant sees none", "GET", "/api/v1/suppressions", analystB, "", 200, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(tc.method, tc.path, tc.token, tc.body)
			if code != tc.status || !strings.Contains(body, tc.has) {
				t.Fatalf("%d %s, want %d with %q", code, body, tc.status, tc.has)
			}
		})
	}
	// The suppression applies to team-a's root, not team-b's.
	alerts.Detected([]detect.Detection{
		{Rule: rule, Event: &event.Event{Seq: 3, Tenant: "team-a", Time: at.Add(time.Minute), Actor: event.Actor{Name: "root"}}},
		{Rule: rule, Event: &event.Event{Seq: 4, Tenant: "team-b", Time: at.Add(time.Minute), Actor: event.Actor{Name: "root"}}},
	})
	if as := list(analystA, ""); len(as) != 1 || as[0].Status != alert.Closed {
		t.Errorf("team-a's suppressed hit made an alert: %+v", as)
	}
	if as := list(analystB, ""); len(as) != 1 || as[0].Count != 2 {
		t.Errorf("team-b's hit did not join its alert: %+v", as)
	}
	var ss []meta.Suppression
	_, body := call("GET", "/api/v1/suppressions", analystA, "")
	json.Unmarshal([]byte(body), &ss)
	if len(ss) != 1 || ss[0].Hits != 1 || ss[0].Creator != "ann" {
		t.Fatalf("suppressions %s", body)
	}
	if code, _ := call("DELETE", "/api/v1/suppressions/"+ss[0].ID, analystB, ""); code != 404 {
		t.Errorf("another tenant revoked: %d", code)
	}
	if code, body := call("DELETE", "/api/v1/suppressions/"+ss[0].ID, analystA, ""); code != 204 {
		t.Errorf("revoking: %d %s", code, body)
	}
}

// alertsFixture is an API over a real metadata database with an alert
// for each of two tenants, and tokens: an analyst and a viewer of
// team-a, an analyst of team-b.
type alertsFixture struct {
	alerts                      *alert.Manager
	rule                        *detect.Rule
	at                          time.Time
	analystA, viewerA, analystB string
	responderA                  string
	ids                         map[string]string // alert id by tenant
	call                        func(method, path, token, body string) (int, string)
}

// with, if given, adds to the API's options, given the database and the
// alert manager.
func newAlertsFixture(t *testing.T, with ...func(*meta.DB, *alert.Manager, *Options)) *alertsFixture {
	t.Helper()
	ctx := context.Background()
	mdb, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mdb.Close() })
	tokens := access.NewTokens(mdb, access.Options{})
	secret := func(name, tenant string, role access.Role) string {
		s, _, err := tokens.Create(ctx, access.Spec{Name: name, Tenant: tenant, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := &alertsFixture{
		analystA: secret("ann", "team-a", access.Analyst), viewerA: secret("vic", "team-a", access.Viewer), analystB: secret("bea", "team-b", access.Analyst),
		responderA: secret("rex", "team-a", access.Responder),
		rule:       &detect.Rule{ID: "r1", Title: "Root Account Used", Level: "critical"},
		at:         time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC),
		ids:        map[string]string{},
	}
	if f.alerts, err = alert.NewManager(ctx, mdb, alert.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	f.alerts.OnNew = func(as []meta.Alert, _ []*event.Event) {
		for _, a := range as {
			f.ids[a.Tenant] = a.ID
		}
	}
	f.alerts.Detected([]detect.Detection{
		{Rule: f.rule, Event: &event.Event{Seq: 1, Tenant: "team-a", Time: f.at, Actor: event.Actor{Name: "root"}}},
		{Rule: f.rule, Event: &event.Event{Seq: 2, Tenant: "team-b", Time: f.at, Actor: event.Actor{Name: "root"}}},
	})
	opts := Options{Store: &fakeStore{}, AdminToken: "admin-secret", Tokens: tokens, Alerts: f.alerts, Gatherer: prometheus.NewRegistry()}
	for _, w := range with {
		w(mdb, f.alerts, &opts)
	}
	h := Handler(opts)
	f.call = func(method, path, token, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	return f
}

// TestCasesAPI: cases are confined to their tenant, readers read and
// workers change them, and the timeline names who did what.
func TestCasesAPI(t *testing.T) {
	f := newAlertsFixture(t)
	code, body := f.call("POST", "/api/v1/cases", f.analystA, `{"title":"Root used at night","alerts":["`+f.ids["team-a"]+`"]}`)
	if code != 201 {
		t.Fatalf("open: %d %s", code, body)
	}
	var c meta.Case
	json.Unmarshal([]byte(body), &c)
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		has                             string
	}{
		{"another tenant's alert", "POST", "/api/v1/cases", f.analystA, `{"title":"x","alerts":["` + f.ids["team-b"] + `"]}`, 404, ""},
		{"no title", "POST", "/api/v1/cases", f.analystA, `{"title":""}`, 409, "title"},
		{"viewer may not open", "POST", "/api/v1/cases", f.viewerA, `{"title":"x"}`, 403, ""},
		{"viewer reads", "GET", "/api/v1/cases/" + c.ID, f.viewerA, "", 200, `"kind":"alert","ref":"` + f.ids["team-a"] + `"`},
		{"another tenant may not read", "GET", "/api/v1/cases/" + c.ID, f.analystB, "", 404, ""},
		{"another tenant's list", "GET", "/api/v1/cases", f.analystB, "", 200, "[]"},
		{"note", "POST", "/api/v1/cases/" + c.ID + "/timeline", f.analystA, `{"kind":"note","text":"the on-call did not do it"}`, 200, ""},
		{"another tenant may not note", "POST", "/api/v1/cases/" + c.ID + "/timeline", f.analystB, `{"kind":"note","text":"x"}`, 404, ""},
		{"bad kind", "POST", "/api/v1/cases/" + c.ID + "/timeline", f.analystA, `{"kind":"rumour","text":"x"}`, 409, "rumour"},
		{"investigate", "POST", "/api/v1/cases/" + c.ID, f.analystA, `{"status":"investigating","owner":"vic"}`, 200, `"owner":"vic"`},
		{"bad status", "POST", "/api/v1/cases/" + c.ID, f.analystA, `{"status":"solved"}`, 409, "solved"},
		{"the timeline", "GET", "/api/v1/cases/" + c.ID, f.analystA, "", 200, `"actor":"ann","kind":"note","text":"the on-call did not do it"`},
		{"filter", "GET", "/api/v1/cases?status=investigating", f.analystA, "", 200, c.ID},
		{"bad filter", "GET", "/api/v1/cases?status=lost", f.analystA, "", 400, "lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(tc.method, tc.path, tc.token, tc.body)
			if code != tc.status || !strings.Contains(body, tc.has) {
				t.Fatalf("%d %s, want %d with %q", code, body, tc.status, tc.has)
			}
		})
	}
}

// TestCrossTenantAlertsAPI: an alert and a detection across team-a and
// team-b are listed and read whole by an administrator, as team-a's
// part by team-a (its seqs, its count, nothing of team-b), not at all by
// team-c; team-a may neither change the alert nor put it in a case.
func TestCrossTenantAlertsAPI(t *testing.T) {
	var mdb *meta.DB
	f := newAlertsFixture(t, func(db *meta.DB, _ *alert.Manager, o *Options) { mdb, o.Detections = db, db })
	ctx := context.Background()
	tokens := access.NewTokens(mdb, access.Options{})
	analystC, _, err := tokens.Create(ctx, access.Spec{Name: "cat", Tenant: "team-c", Role: access.Analyst})
	if err != nil {
		t.Fatal(err)
	}
	corr := &detect.Rule{ID: "c1", Title: "One Source Address Active in Three or More Cloud Accounts", Level: "medium"}
	ref := func(seq uint64, tenant string, at time.Duration) detect.EventRef {
		return detect.EventRef{Seq: seq, Tenant: tenant, Time: f.at.Add(at), Rule: "p1"}
	}
	d := detect.Detection{Rule: corr, Group: map[string]string{"vigil.src_ip": "198.51.100.20"}, Value: 3,
		Events: []detect.EventRef{ref(11, "team-a", 0), ref(12, "team-b", time.Minute), ref(13, "team-b", 2*time.Minute)}}
	f.alerts.Detected([]detect.Detection{d})
	id := f.ids[""]
	if id == "" {
		t.Fatal("no alert across tenants")
	}
	if err := mdb.AddDetections(ctx, []meta.Detection{{Created: f.at, RuleID: "c1", Title: corr.Title, Level: "medium", Group: d.Group,
		Events: []uint64{11, 12, 13}, Parts: []meta.DetectionPart{{Tenant: "team-a", Seqs: []uint64{11}}, {Tenant: "team-b", Seqs: []uint64{12, 13}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := mdb.AddDelivery(ctx, meta.Delivery{AlertID: id, Channel: "team-b-pager", Action: "trigger", Status: "delivered", Queued: f.at, Done: f.at}); err != nil {
		t.Fatal(err)
	}
	get := func(token, path string, v any) string {
		t.Helper()
		code, body := f.call("GET", path, token, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatal(err)
		}
		return body
	}
	find := func(as []meta.Alert) *meta.Alert {
		for i := range as {
			if as[i].ID == id {
				return &as[i]
			}
		}
		return nil
	}

	var all []meta.Alert
	get("admin-secret", "/api/v1/alerts", &all)
	if a := find(all); a == nil || a.Partial || a.Count != 1 || len(a.Seqs) != 3 || strings.Join(a.Tenants, ",") != "team-a,team-b" {
		t.Fatalf("the administrator's view: %+v", a)
	}
	var as []meta.Alert
	body := get(f.analystA, "/api/v1/alerts", &as)
	if a := find(as); a == nil || !a.Partial || a.Tenant != "" || a.Count != 1 || fmt.Sprint(a.Seqs) != "[11]" || strings.Join(a.Tenants, ",") != "team-a" {
		t.Fatalf("team-a's view: %+v", a)
	}
	if strings.Contains(body, "team-b") {
		t.Errorf("team-a's list names team-b: %s", body)
	}
	var detail struct {
		meta.Alert
		Transitions []meta.Transition `json:"transitions"`
		Deliveries  []meta.Delivery   `json:"deliveries"`
	}
	body = get(f.viewerA, "/api/v1/alerts/"+id, &detail)
	if !detail.Partial || len(detail.Deliveries) != 0 || !strings.Contains(body, `"deliveries":[]`) || strings.Contains(body, "team-b") {
		t.Errorf("team-a's viewer reads %s", body)
	}
	var ds []meta.Detection
	body = get(f.analystA, "/api/v1/detections?since=-1000000h", &ds)
	if len(ds) != 1 || !ds[0].Partial || fmt.Sprint(ds[0].Events) != "[11]" || strings.Contains(body, "team-b") {
		t.Errorf("team-a's detections: %s", body)
	}
	body = get(analystC, "/api/v1/detections?since=-1000000h", &ds)
	if len(ds) != 0 {
		t.Errorf("team-c's detections: %s", body)
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		has                             string
	}{
		{"team-a may not acknowledge", "POST", "/api/v1/alerts/" + id + "/ack", f.analystA, "", 403, "CSIRT"},
		{"team-a may not close", "POST", "/api/v1/alerts/" + id + "/close", f.analystA, `{"reason":"ours"}`, 403, "other tenants"},
		{"team-a may not open a case of it", "POST", "/api/v1/cases", f.analystA, `{"title":"x","alerts":["` + id + `"]}`, 403, "CSIRT"},
		{"team-c does not see it", "GET", "/api/v1/alerts/" + id, analystC, "", 404, ""},
		{"team-c may not acknowledge", "POST", "/api/v1/alerts/" + id + "/ack", analystC, "", 404, ""},
		{"team-c's list", "GET", "/api/v1/alerts", analystC, "", 200, "[]"},
		{"the administrator acknowledges", "POST", "/api/v1/alerts/" + id + "/ack", "admin-secret", `{"reason":"team-b's scanner"}`, 200, `"tenants":["team-a","team-b"]`},
		{"the administrator reads all", "GET", "/api/v1/alerts/" + id, "admin-secret", "", 200, `"channel":"team-b-pager"`},
		{"team-a reads no reason", "GET", "/api/v1/alerts/" + id, f.analystA, "", 200, `"to":"acknowledged"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(tc.method, tc.path, tc.token, tc.body)
			if code != tc.status || !strings.Contains(body, tc.has) {
				t.Fatalf("%d %s, want %d with %q", code, body, tc.status, tc.has)
			}
			if tc.token != "admin-secret" && strings.Contains(body, "team-b") {
				t.Errorf("the answer names team-b: %s", body)
			}
		})
	}
}

// TestTenantsOf: a scope of shares only, with no tenant, is no tenant to
// the alert layer, never nil, which is every tenant.
func TestTenantsOf(t *testing.T) {
	shares := Identity{Scope: query.Scope{Shares: []query.Share{{Grant: "g1", Tenant: "team-a"}}}}
	if ts := tenantsOf(shares); ts == nil || len(ts) != 0 {
		t.Errorf("a scope of shares: %#v", ts)
	}
	if ts := tenantsOf(Identity{Scope: query.Scope{All: true}}); ts != nil {
		t.Errorf("a scope of every tenant: %#v", ts)
	}
	if ts := tenantsOf(Identity{Scope: query.Scope{Tenants: []string{"team-a"}}}); len(ts) != 1 {
		t.Errorf("a scope of team-a: %#v", ts)
	}
}
