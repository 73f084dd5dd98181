package web

import (
	"context"
	"encoding/json"
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
