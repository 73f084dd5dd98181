package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// queueWorld is a console world with more alerts, of a rule of their
// own, each of an actor in an environment: in team-a, prod (actor p1)
// and a payload (p2); in team-b, team-b-env (q1); and one across team-a
// and team-b.
type queueWorld struct {
	*consoleWorld
	rule                 *detect.Rule
	prod, hostile, teamB string
	cross                string
}

func newQueueWorld(t *testing.T) *queueWorld {
	t.Helper()
	w := &queueWorld{consoleWorld: newConsoleWorld(t), rule: &detect.Rule{ID: "env-rule", Title: "Console Login Without MFA", Level: "medium"}}
	byActor := map[string]string{}
	w.alerts.OnNew = func(as []meta.Alert, _ []*event.Event) {
		for _, a := range as {
			byActor[a.Group["vigil.actor"]+a.Group["vigil.src_ip"]] = a.ID
		}
	}
	w.detect(t, "team-a", "prod", "p1", 0)
	w.detect(t, "team-a", xssAttr, "p2", 0)
	w.detect(t, "team-b", "team-b-env", "q1", 0)
	corr := &detect.Rule{ID: "corr", Title: "One Source Address in Two Tenants", Level: "high"}
	now := time.Now().UTC()
	w.alerts.Detected([]detect.Detection{{Rule: corr, Group: map[string]string{"vigil.src_ip": "198.51.100.20"}, Value: 2,
		Events: []detect.EventRef{{Seq: 901, Tenant: "team-a", Time: now, Rule: "p"}, {Seq: 902, Tenant: "team-b", Time: now, Rule: "p"}}}})
	w.prod, w.hostile, w.teamB, w.cross = byActor["p1"], byActor["p2"], byActor["q1"], byActor["198.51.100.20"]
	if w.prod == "" || w.hostile == "" || w.teamB == "" || w.cross == "" {
		t.Fatalf("alerts: %v", byActor)
	}
	return w
}

// detect makes a detection of the world's rule on an event of actor in
// tenant and environment, ago before now.
func (w *queueWorld) detect(t *testing.T, tenant, env, actor string, ago time.Duration) {
	t.Helper()
	ev := &event.Event{Seq: uint64(1000 + len(actor) + int(ago)), Time: time.Now().UTC().Add(-ago), Tenant: tenant, Environment: env,
		Actor: event.Actor{Name: actor}, Source: "json", Class: "authentication"}
	w.alerts.Detected([]detect.Detection{{Rule: w.rule, Event: ev}})
}

// alert reads an alert as an administrator would.
func (w *queueWorld) alert(id string) meta.Alert {
	w.t.Helper()
	al, _, _, err := w.alerts.AlertDetail(context.Background(), nil, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return al
}

// queue returns which of the world's alerts a page of the queue lists,
// by name, checking it is escaped and never lists team-b's.
func (w *queueWorld) queue(session, query string) string {
	w.t.Helper()
	rec := w.do("GET", "/alerts?"+query, session, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		w.t.Fatalf("GET /alerts?%s: %d %s", query, rec.Code, body)
	}
	assertEscaped(w.t, "/alerts?"+query, body)
	var out []string
	for _, a := range []struct{ name, id string }{{"alertA", w.alertA}, {"prod", w.prod}, {"hostile", w.hostile}, {"cross", w.cross},
		{"alertB", w.alertB}, {"teamB", w.teamB}} {
		if strings.Contains(body, `href="/alerts/`+a.id+`"`) {
			out = append(out, a.name)
		}
	}
	return strings.Join(out, " ")
}

// TestConsoleAlertQueueFilters: the queue filters on the environment
// and the assignee, within the caller's tenants only; assigning takes
// the CSRF token and the right to work alerts, shows in the queue, the
// alert page and its history, and hostile names stay text.
func TestConsoleAlertQueueFilters(t *testing.T) {
	w := newQueueWorld(t)
	alice, bob := w.login("alice"), w.login("bob")
	for _, tc := range []struct{ query, want string }{
		{"", "alertA prod hostile cross"},
		{"environment=prod", "prod"},
		{"environment=" + url.QueryEscape(xssAttr), "hostile"},
		{"environment=team-b-env", ""},
		{"environment=nowhere", ""},
		{"assignee=-", "alertA prod hostile cross"},
		{"assignee=me", ""},
	} {
		if got := w.queue(alice, tc.query); got != tc.want {
			t.Errorf("alice's queue, %s: %q, want %q", tc.query, got, tc.want)
		}
	}
	if got := w.queue(bob, "environment=team-b-env"); got != "teamB" {
		t.Errorf("bob's queue in team-b-env: %q", got)
	}
	// The environment filter offers alice's environments, not team-b's.
	body := w.do("GET", "/alerts?environment=prod", alice, nil).Body.String()
	if !strings.Contains(body, `<option value="prod">`) || !strings.Contains(body, `<option value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;">`) ||
		strings.Contains(body, "team-b-env") || !strings.Contains(body, `name="environment" value="prod"`) {
		t.Errorf("the environments offered: %s", body)
	}

	// Assigning takes the CSRF token, and changes nothing without it.
	csrf := w.csrf(alice)
	for _, form := range []url.Values{{"to": {"me"}}, {"to": {"me"}, "csrf": {"wrong"}}} {
		if rec := w.do("POST", "/alerts/"+w.prod+"/assign", alice, form); rec.Code != http.StatusForbidden {
			t.Errorf("assigning with %v: %d", form, rec.Code)
		}
	}
	if a := w.alert(w.prod); a.Assignee != "" {
		t.Fatalf("assigned without a CSRF token: %q", a.Assignee)
	}
	rec := w.do("POST", "/alerts/"+w.prod+"/assign", alice, url.Values{"csrf": {csrf}, "to": {"me"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/alerts/"+w.prod {
		t.Fatalf("assign to me: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if a := w.alert(w.prod); a.Assignee != "alice" {
		t.Fatalf("assigned to %q, want alice", a.Assignee)
	}
	rec = w.do("POST", "/alerts/"+w.hostile+"/assign", alice, url.Values{"csrf": {csrf}, "assignee": {xssScript}})
	if rec.Code != http.StatusSeeOther || w.alert(w.hostile).Assignee != xssScript {
		t.Fatalf("assign to a payload: %d %s", rec.Code, rec.Body)
	}
	rec = w.do("POST", "/alerts/"+w.alertA+"/assign", alice, url.Values{"csrf": {csrf}, "assignee": {"bad\nname"}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || !strings.HasSuffix(loc, "?why=assignee") || w.alert(w.alertA).Assignee != "" {
		t.Errorf("assign to a name with a newline: %d %q", rec.Code, loc)
	}
	// Not another tenant's alert, nor part of one across tenants, nor as
	// a viewer.
	if rec := w.do("POST", "/alerts/"+w.teamB+"/assign", alice, url.Values{"csrf": {csrf}, "to": {"me"}}); rec.Code != http.StatusNotFound {
		t.Errorf("alice assigned team-b's alert: %d", rec.Code)
	}
	if rec := w.do("POST", "/alerts/"+w.cross+"/assign", alice, url.Values{"csrf": {csrf}, "to": {"me"}}); rec.Code != http.StatusSeeOther ||
		!strings.HasSuffix(rec.Header().Get("Location"), "?why=partial") {
		t.Errorf("alice assigned her part of an alert across tenants: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := w.do("POST", "/alerts/"+w.teamB+"/assign", bob, url.Values{"csrf": {w.csrf(bob)}, "to": {"me"}}); rec.Code != http.StatusForbidden {
		t.Errorf("a viewer assigned: %d", rec.Code)
	}
	for _, id := range []string{w.teamB, w.cross, w.alertA} {
		if a := w.alert(id); a.Assignee != "" {
			t.Errorf("alert %s assigned to %q", id, a.Assignee)
		}
	}

	for _, tc := range []struct{ query, want string }{
		{"assignee=me", "prod"},
		{"assignee=alice", "prod"},
		{"assignee=" + url.QueryEscape(xssScript), "hostile"},
		{"assignee=-", "alertA cross"},
		{"assignee=me&environment=prod", "prod"},
		{"assignee=me&environment=" + url.QueryEscape(xssAttr), ""},
		{"status=&assignee=me", "prod"},
	} {
		if got := w.queue(alice, tc.query); got != tc.want {
			t.Errorf("alice's queue, %s: %q, want %q", tc.query, got, tc.want)
		}
	}
	// bob's "me" is bob, who has none; alice's assignments are not his.
	if got := w.queue(bob, "assignee=me"); got != "" {
		t.Errorf("bob's own: %q", got)
	}
	if got := w.queue(bob, "assignee=alice"); got != "" {
		t.Errorf("alice's, as bob sees them: %q", got)
	}
	body = w.do("GET", "/alerts?assignee="+url.QueryEscape(xssScript), alice, nil).Body.String()
	if !strings.Contains(body, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>") || !strings.Contains(body, `<option value="&lt;script&gt;alert(1)&lt;/script&gt;" selected>`) ||
		!strings.Contains(body, `<option value="alice">alice</option>`) {
		t.Errorf("the queue's assignees: %s", body)
	}
	if body := w.do("GET", "/alerts", alice, nil).Body.String(); !strings.Contains(body, "<td>alice</td>") || !strings.Contains(body, `<span class="unassigned">unassigned</span>`) {
		t.Errorf("the queue's assignee column: %s", body)
	}
	// The filters stay in the URL the bulk form returns to.
	if !strings.Contains(body, `name="return" value="/alerts?assignee=%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;status=active"`) {
		t.Errorf("the queue's return: %s", body)
	}

	// The alert page shows the assignee, and the history who assigned.
	for id, want := range map[string]string{w.prod: "<dd>alice</dd>", w.hostile: "<dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>"} {
		body := w.do("GET", "/alerts/"+id, alice, nil).Body.String()
		assertEscaped(t, "alert page", body)
		if !strings.Contains(body, want) || !strings.Contains(body, "assigned to ") || !strings.Contains(body, `action="/alerts/`+id+`/assign"`) {
			t.Errorf("alert %s's page lacks %q or its history: %s", id, want, body)
		}
	}
	// Unassigning.
	if rec := w.do("POST", "/alerts/"+w.prod+"/assign", alice, url.Values{"csrf": {csrf}, "assignee": {""}}); rec.Code != http.StatusSeeOther || w.alert(w.prod).Assignee != "" {
		t.Errorf("unassign: %d", rec.Code)
	}
	if got := w.queue(alice, "assignee=me"); got != "" {
		t.Errorf("alice's own after unassigning: %q", got)
	}
	_, ts, _, _ := w.alerts.AlertDetail(context.Background(), nil, w.prod)
	if len(ts) != 2 || ts[0].Reason != "assigned to alice" || ts[1].Reason != "unassigned from alice" || ts[1].Actor != "alice" {
		t.Errorf("history %+v", ts)
	}

	// Each assignment is in the audit trail, with what it did.
	w.mu.Lock()
	defer w.mu.Unlock()
	details := map[string]int{}
	for _, r := range w.records {
		if r.Action == "alert.assign" && r.Actor == "alice" && r.Status == http.StatusSeeOther && (r.Target == "alert:"+w.prod || r.Target == "alert:"+w.hostile) {
			details[r.Detail]++
		}
	}
	if details["assign to alice"] != 1 || details["assign to "+xssScript] != 1 || details["unassign"] != 1 {
		t.Errorf("audited assignments: %v", details)
	}
}

// TestConsoleBulkSuppress: "Suppress selected" suppresses each alert's
// rule and group in its tenant, so that the next detection of them is
// kept from alerting; it needs a reason and the CSRF token, and refuses
// another tenant's alert and part of one across tenants.
func TestConsoleBulkSuppress(t *testing.T) {
	w := newQueueWorld(t)
	ctx := context.Background()
	alice := w.login("alice")
	csrf := w.csrf(alice)
	if body := w.do("GET", "/alerts", alice, nil).Body.String(); !strings.Contains(body, `name="action" value="suppress"`) || !strings.Contains(body, `name="expires"`) {
		t.Errorf("the queue has no suppress button: %s", body)
	}
	suppressions := func() []meta.Suppression {
		t.Helper()
		ss, err := w.alerts.Suppressions(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	ret := "/alerts?environment=prod&status=active"
	for _, tc := range []struct {
		name string
		form url.Values
		code int
		loc  string // a part of where it redirects
	}{
		{"no CSRF token", url.Values{"action": {"suppress"}, "id": {w.prod}, "reason": {"drill"}}, http.StatusForbidden, ""},
		{"a wrong CSRF token", url.Values{"csrf": {"wrong"}, "action": {"suppress"}, "id": {w.prod}, "reason": {"drill"}}, http.StatusForbidden, ""},
		{"no reason", url.Values{"csrf": {csrf}, "action": {"suppress"}, "id": {w.prod, w.hostile}, "reason": {"  "}, "return": {ret}}, http.StatusSeeOther, "failed=2&status=active&why=reason"},
		{"a bad expiry", url.Values{"csrf": {csrf}, "action": {"suppress"}, "id": {w.prod}, "reason": {"drill"}, "expires": {"-3"}}, http.StatusSeeOther, "failed=1&why=expires"},
		{"none selected", url.Values{"csrf": {csrf}, "action": {"suppress"}, "reason": {"drill"}}, http.StatusSeeOther, "failed=1&why=none"},
		{"another tenant's", url.Values{"csrf": {csrf}, "action": {"suppress"}, "id": {w.teamB}, "reason": {"drill"}}, http.StatusSeeOther, "failed=1&why=missing"},
		{"part of one across tenants", url.Values{"csrf": {csrf}, "action": {"suppress"}, "id": {w.cross}, "reason": {"drill"}}, http.StatusSeeOther, "failed=1&why=partial"},
	} {
		rec := w.do("POST", "/alerts", alice, tc.form)
		if loc := rec.Header().Get("Location"); rec.Code != tc.code || !strings.Contains(loc, tc.loc) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, rec.Code, loc, tc.code, tc.loc)
		}
		if ss := suppressions(); len(ss) != 0 {
			t.Fatalf("%s: suppressed %+v", tc.name, ss)
		}
	}
	if body := w.do("GET", "/alerts?done=0&failed=1&why=partial", alice, nil).Body.String(); !strings.Contains(body, "correlates events of other tenants") {
		t.Errorf("the refusal of part of an alert across tenants is not said: %s", body)
	}
	if body := w.do("GET", "/alerts?done=0&failed=2&why=reason", alice, nil).Body.String(); !strings.Contains(body, "Suppressing needs a reason.") {
		t.Errorf("the missing reason is not said: %s", body)
	}

	// Suppressing prod's alert (twice selected) and team-b's: one done
	// (the same rule and group once), one refused.
	before := time.Now()
	rec := w.do("POST", "/alerts", alice, url.Values{"csrf": {csrf}, "action": {"suppress"}, "id": {w.prod, w.teamB, w.prod},
		"reason": {"the SSO migration " + xssScript}, "expires": {"7"}, "return": {ret}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/alerts?done=2&environment=prod&failed=1&status=active&why=missing" {
		t.Fatalf("suppress: %d %q", rec.Code, loc)
	}
	ss := suppressions()
	if len(ss) != 1 {
		t.Fatalf("suppressions %+v", ss)
	}
	s := ss[0]
	if s.Tenant != "team-a" || s.RuleID != w.rule.ID || len(s.Fields) != 1 || s.Fields["vigil.actor"] != "p1" || s.Creator != "alice" ||
		s.Reason != "the SSO migration "+xssScript || s.Expires.Before(before.Add(7*24*time.Hour-time.Minute)) || s.Expires.After(time.Now().Add(7*24*time.Hour)) {
		t.Errorf("suppression %+v", s)
	}
	// The next detection of the rule and group in team-a is suppressed;
	// the same actor in team-b, and another actor in team-a, alert.
	count, suppressed := w.alert(w.prod).Count, w.alerts.Suppressed()
	var opened []meta.Alert
	w.alerts.OnNew = func(as []meta.Alert, _ []*event.Event) { opened = append(opened, as...) }
	if _, err := w.alerts.SetStatus(ctx, nil, w.prod, alert.Resolved, "alice", ""); err != nil {
		t.Fatal(err)
	}
	w.detect(t, "team-a", "prod", "p1", time.Second)
	if w.alerts.Suppressed() != suppressed+1 || len(opened) != 0 || w.alert(w.prod).Count != count {
		t.Errorf("the next detection: %d suppressed, opened %+v", w.alerts.Suppressed()-suppressed, opened)
	}
	w.detect(t, "team-b", "team-b-env", "p1", 2*time.Second)
	w.detect(t, "team-a", "prod", "p3", 3*time.Second)
	if len(opened) != 2 || w.alerts.Suppressed() != suppressed+1 {
		t.Errorf("detections the suppression does not cover: opened %+v", opened)
	}

	// The bulk suppress is audited with what it did.
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.records {
		if r.Actor == "alice" && r.Detail == "suppress" && r.Status == http.StatusSeeOther && r.Target == "alerts:"+w.prod+","+w.teamB+","+w.prod {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audited bulk suppressions of prod's alert, want 1", n)
	}
}

// TestConsoleAlertCases: the alert page lists the cases holding the
// alert that the caller sees, linked, and no other.
func TestConsoleAlertCases(t *testing.T) {
	w := newConsoleWorld(t)
	ctx := context.Background()
	alice := w.login("alice")
	if body := w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String(); !strings.Contains(body, "In no case you can see.") {
		t.Errorf("an alert in no case: %s", body)
	}
	own, err := w.alerts.OpenCase(ctx, []string{"team-a"}, "Case "+xssScript, "", "alice", []string{w.alertA})
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.alerts.OpenCase(ctx, []string{"team-a"}, "a case without it", "", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The CSIRT's case across tenants holds it too; alice does not see
	// that case.
	csirt, err := w.alerts.OpenCase(ctx, nil, "csirt-secret-case", "", "root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.alerts.AddToCase(ctx, nil, csirt.ID, alert.EntryAlert, w.alertA, "", "root"); err != nil {
		t.Fatal(err)
	}
	body := w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String()
	assertEscaped(t, "alert page", body)
	if !strings.Contains(body, `<a href="/cases/`+own.ID+`">Case &lt;script&gt;alert(1)&lt;/script&gt;</a>`) ||
		strings.Contains(body, `href="/cases/`+other.ID+`"`) || strings.Contains(body, "csirt-secret-case") || strings.Contains(body, csirt.ID) {
		t.Errorf("the alert's cases: %s", body)
	}
}

// TestAlertsAssignAPI: POST /api/v1/alerts/{id}/assign assigns within
// the caller's tenants, for workers only, audited; GET /api/v1/alerts
// filters on the environment and the assignee, "me" the caller.
func TestAlertsAssignAPI(t *testing.T) {
	var records []access.Record
	f := newAlertsFixture(t, func(_ *meta.DB, _ *alert.Manager, o *Options) {
		o.Audit = func(_ context.Context, r *access.Record) error { records = append(records, *r); return nil }
	})
	f.alerts.Detected([]detect.Detection{
		{Rule: f.rule, Event: &event.Event{Seq: 5, Tenant: "team-a", Time: f.at, Environment: "prod", Actor: event.Actor{Name: "deploy"}}},
		{Rule: f.rule, Event: &event.Event{Seq: 6, Tenant: "team-b", Time: f.at, Environment: "prod", Actor: event.Actor{Name: "deploy"}}},
	})
	idA, idB := f.ids["team-a"], f.ids["team-b"] // the deploy alerts
	list := func(token, query string) string {
		t.Helper()
		code, body := f.call("GET", "/api/v1/alerts"+query, token, "")
		var as []meta.Alert
		if err := json.Unmarshal([]byte(body), &as); code != 200 || err != nil {
			t.Fatalf("list %s: %d %s", query, code, body)
		}
		var out []string
		for _, a := range as {
			switch a.ID {
			case idA:
				out = append(out, "deployA")
			case idB:
				out = append(out, "deployB")
			default:
				out = append(out, a.Tenant+":"+a.Group["vigil.actor"])
			}
		}
		slices.Sort(out) // alerts saved at the same time come in no set order
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		has                             string
	}{
		{"viewer may not assign", "POST", "/api/v1/alerts/" + idA + "/assign", f.viewerA, `{"assignee":"vic"}`, 403, ""},
		{"another tenant may not assign", "POST", "/api/v1/alerts/" + idA + "/assign", f.analystB, `{"assignee":"bea"}`, 404, ""},
		{"unknown body field", "POST", "/api/v1/alerts/" + idA + "/assign", f.analystA, `{"who":"ann"}`, 400, "who"},
		{"not a name", "POST", "/api/v1/alerts/" + idA + "/assign", f.analystA, `{"assignee":"a\u0000b"}`, 400, "not a name"},
		{"analyst assigns", "POST", "/api/v1/alerts/" + idA + "/assign", f.analystA, `{"assignee":"ann"}`, 200, `"assignee":"ann"`},
		{"the history says so", "GET", "/api/v1/alerts/" + idA, f.viewerA, "", 200, `"actor":"ann","from":"open","to":"open","reason":"assigned to ann"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(tc.method, tc.path, tc.token, tc.body)
			if code != tc.status || !strings.Contains(body, tc.has) {
				t.Fatalf("%d %s, want %d with %q", code, body, tc.status, tc.has)
			}
		})
	}
	for _, tc := range []struct{ token, query, want string }{
		{f.analystA, "?environment=prod", "deployA"},
		{f.analystB, "?environment=prod", "deployB"},
		{"admin-secret", "?environment=prod", "deployA deployB"},
		{f.analystA, "?assignee=me", "deployA"},
		{f.analystA, "?assignee=ann", "deployA"},
		{f.analystA, "?assignee=-", "team-a:root"},
		{f.analystB, "?assignee=ann", ""},
		{f.analystB, "?assignee=me", ""},
		{f.viewerA, "?assignee=me", ""},
		{f.analystA, "?assignee=me&environment=staging", ""},
	} {
		if got := list(tc.token, tc.query); got != tc.want {
			t.Errorf("list %s: %q, want %q", tc.query, got, tc.want)
		}
	}
	n := 0
	for _, r := range records {
		if r.Action == "alert.assign" && r.Target == "alert:"+idA && r.Detail == "assign to ann" && r.Status == 200 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audited assignments, want 1: %+v", n, records)
	}
}
