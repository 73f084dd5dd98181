package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/playbook"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// caseLocation reads the case a redirect goes to.
var caseLocation = regexp.MustCompile(`^/cases/([^/?]+)$`)

// openCaseFrom opens a case from an alert's page, as its form does, and
// returns the case's id.
func (w *consoleWorld) openCaseFrom(session, csrf, alertID, title string) string {
	w.t.Helper()
	form := url.Values{"csrf": {csrf}, "title": {title}}
	if alertID != "" {
		form.Set("alert", alertID)
	}
	rec := w.do("POST", "/cases", session, form)
	m := caseLocation.FindStringSubmatch(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || m == nil {
		w.t.Fatalf("opening a case: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	return m[1]
}

func TestConsoleCases(t *testing.T) {
	w := newConsoleWorld(t)
	ctx := context.Background()
	alice := w.login("alice")
	csrf := w.csrf(alice)

	// The alert's page offers to open a case.
	body := w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String()
	if !strings.Contains(body, `action="/cases"`) || !strings.Contains(body, `name="alert" value="`+w.alertA+`"`) {
		t.Errorf("the alert page has no form to open a case")
	}
	if strings.Contains(body, "Playbook runs") {
		t.Error("the alert page shows playbook runs on a server without a runner")
	}
	if rec := w.do("GET", "/runs", alice, nil); rec.Code != http.StatusNotFound {
		t.Errorf("/runs without a runner: %d", rec.Code)
	}

	// Every change needs the session's CSRF token.
	for _, form := range []url.Values{{"title": {"x"}, "alert": {w.alertA}}, {"csrf": {"wrong"}, "title": {"x"}, "alert": {w.alertA}}} {
		if rec := w.do("POST", "/cases", alice, form); rec.Code != http.StatusForbidden {
			t.Errorf("opening a case with %v: %d", form, rec.Code)
		}
	}
	if cs, _ := w.alerts.Cases(ctx, meta.CaseQuery{AllTenants: true}); len(cs) != 0 {
		t.Fatalf("a case was opened without a CSRF token: %v", cs)
	}

	// A case whose title, note and owner are payloads shows them as text.
	id := w.openCaseFrom(alice, csrf, w.alertA, "Case "+xssScript)
	for _, form := range []url.Values{{"text": {xssAttr + " " + xssURL}}, {"text": {"isolated the host"}, "kind": {"action"}}} {
		form.Set("csrf", csrf)
		if rec := w.do("POST", "/cases/"+id+"/timeline", alice, form); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/"+id {
			t.Errorf("adding %v: %d %q", form, rec.Code, rec.Header().Get("Location"))
		}
	}
	rec := w.do("POST", "/cases/"+id, alice, url.Values{"csrf": {csrf}, "status": {alert.CaseInvestigating}, "owner": {xssAttr}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/"+id {
		t.Errorf("changing the case: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = w.do("GET", "/cases/"+id, alice, nil)
	body = rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("the case page: %d %s", rec.Code, body)
	}
	assertEscaped(t, "case page", body)
	for _, want := range []string{
		"Case &lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt; javascript:alert(1)",
		`href="/alerts/` + w.alertA + `"`, `href="/events/` + strconv.FormatUint(w.seqA, 10) + `"`,
		"open → investigating", "wrote a note", "recorded an action", "isolated the host", "changed the owner", ">alice<",
		`name="csrf" value="` + csrf + `"`, `<option value="investigating" selected>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the case page lacks %q", want)
		}
	}
	// What cannot change is said, in the console's words.
	for form, why := range map[string]url.Values{
		"nothing": {"status": {alert.CaseInvestigating}},
		"empty":   {"text": {"  "}},
	} {
		path := "/cases/" + id
		if form == "empty" {
			path += "/timeline"
		}
		why.Set("csrf", csrf)
		rec := w.do("POST", path, alice, why)
		if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/cases/"+id+"?why="+form {
			t.Errorf("%s: %d %q", form, rec.Code, loc)
		}
		if body := w.do("GET", "/cases/"+id+"?why="+form, alice, nil).Body.String(); !strings.Contains(body, caseFailure(form)) {
			t.Errorf("the page does not say %q", caseFailure(form))
		}
	}
	if rec := w.do("POST", "/cases/"+id+"/timeline", alice, url.Values{"csrf": {csrf}, "kind": {"export"}, "text": {"x"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("an export from the form: %d", rec.Code)
	}

	// The list, with its filters.
	rec = w.do("GET", "/cases", alice, nil)
	body = rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `href="/cases/`+id+`"`) || !strings.Contains(body, `aria-current="page">Cases<`) {
		t.Errorf("the case list: %d %s", rec.Code, body)
	}
	assertEscaped(t, "case list", body)
	for path, listed := range map[string]bool{
		"/cases?status=investigating": true, "/cases?status=closed": false, "/cases?status=": true,
		"/cases?owner=" + url.QueryEscape(xssAttr): true, "/cases?owner=bob": false,
	} {
		rec := w.do("GET", path, alice, nil)
		if got := strings.Contains(rec.Body.String(), `href="/cases/`+id+`"`); rec.Code != 200 || got != listed {
			t.Errorf("GET %s: %d, listed %v, want %v", path, rec.Code, got, listed)
		}
		assertEscaped(t, path, rec.Body.String())
	}
	if rec := w.do("GET", "/cases?status=bogus", alice, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("a bogus status: %d", rec.Code)
	}

	// The alert's page offers the open case to add the alert to; added,
	// the case's timeline has it twice.
	second := w.openCaseFrom(alice, csrf, "", "second")
	body = w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String()
	if !strings.Contains(body, `<option value="`+id+`">`) || !strings.Contains(body, "Add to case") {
		t.Errorf("the alert page does not offer the open cases")
	}
	rec = w.do("POST", "/alerts/"+w.alertA+"/case", alice, url.Values{"csrf": {csrf}, "case": {second}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/"+second {
		t.Errorf("adding the alert to a case: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if _, es, _ := w.alerts.Case(ctx, nil, second); !slices.ContainsFunc(es, func(e meta.CaseEntry) bool { return e.Kind == alert.EntryAlert && e.Ref == w.alertA }) {
		t.Errorf("the second case's timeline: %+v", es)
	}

	// team-b's case: as missing to alice as one that does not exist,
	// and hers cannot take team-b's alert.
	other, err := w.alerts.OpenCase(ctx, []string{"team-b"}, "team-b-secret-case", "", "bob", []string{w.alertB})
	if err != nil {
		t.Fatal(err)
	}
	missing := w.do("GET", "/cases/nope", alice, nil)
	rec = w.do("GET", "/cases/"+other.ID, alice, nil)
	if rec.Code != 404 || missing.Code != 404 || rec.Body.String() != missing.Body.String() {
		t.Errorf("another tenant's case: %d, a missing one: %d", rec.Code, missing.Code)
	}
	if body := w.do("GET", "/cases?status=", alice, nil).Body.String(); strings.Contains(body, "team-b") {
		t.Error("the case list shows team-b's case")
	}
	for path, form := range map[string]url.Values{
		"/cases/" + other.ID + "/timeline": {"text": {"mine now"}},
		"/cases/" + other.ID:               {"status": {alert.CaseClosed}},
		"/alerts/" + w.alertA + "/case":    {"case": {other.ID}},
		"/alerts/" + w.alertB + "/case":    {"case": {id}},
	} {
		form.Set("csrf", csrf)
		if rec := w.do("POST", path, alice, form); rec.Code != http.StatusNotFound {
			t.Errorf("POST %s %v: %d", path, form, rec.Code)
		}
	}
	rec = w.do("POST", "/cases", alice, url.Values{"csrf": {csrf}, "title": {"theirs"}, "alert": {w.alertB}})
	if rec.Code != http.StatusNotFound {
		t.Errorf("a case of another tenant's alert: %d", rec.Code)
	}
	if c, es, _ := w.alerts.Case(ctx, nil, other.ID); c.Status != alert.CaseOpen || len(es) != 2 {
		t.Errorf("team-b's case changed: %+v %+v", c, es)
	}

	// bob, a viewer of team-b, reads its case and changes nothing.
	bob := w.login("bob")
	bobCSRF := w.csrf(bob)
	rec = w.do("GET", "/cases/"+other.ID, bob, nil)
	body = rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "team-b-secret-case") || strings.Contains(body, "Add to the timeline") || strings.Contains(body, `action="/cases/`+other.ID+`"`) {
		t.Errorf("bob's view of his case: %d %s", rec.Code, body)
	}
	if body := w.do("GET", "/alerts/"+w.alertB, bob, nil).Body.String(); strings.Contains(body, "Open a case") {
		t.Error("a viewer is offered to open a case")
	}
	for path, form := range map[string]url.Values{
		"/cases/" + other.ID + "/timeline": {"text": {"note"}},
		"/cases/" + other.ID:               {"status": {alert.CaseClosed}},
		"/cases":                           {"title": {"x"}, "alert": {w.alertB}},
		"/alerts/" + w.alertB + "/case":    {"case": {other.ID}},
	} {
		form.Set("csrf", bobCSRF)
		if rec := w.do("POST", path, bob, form); rec.Code != http.StatusForbidden {
			t.Errorf("bob's POST %s: %d", path, rec.Code)
		}
	}
	if _, es, _ := w.alerts.Case(ctx, nil, other.ID); len(es) != 2 {
		t.Errorf("bob changed his case: %+v", es)
	}
}

// fakeRunner is a playbook runner holding runs, which it scopes and
// decides as playbook.Runner does.
type fakeRunner struct {
	mu   sync.Mutex
	runs []meta.Run
}

func (f *fakeRunner) Playbooks() []*playbook.Playbook { return nil }

func (f *fakeRunner) Runs(_ context.Context, q meta.RunQuery) ([]meta.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []meta.Run
	for _, r := range f.runs {
		if (q.AllTenants || slices.Contains(q.Tenants, r.Tenant)) && (q.ID == "" || q.ID == r.ID) &&
			(len(q.Status) == 0 || slices.Contains(q.Status, r.Status)) && (q.AlertID == "" || q.AlertID == r.AlertID) {
			r.Steps = slices.Clone(r.Steps)
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRunner) Run(ctx context.Context, tenants []string, id string) (*meta.Run, error) {
	rs, _ := f.Runs(ctx, meta.RunQuery{Tenants: tenants, AllTenants: tenants == nil, ID: id})
	if len(rs) == 0 {
		return nil, meta.ErrNotFound
	}
	return &rs[0], nil
}

func (f *fakeRunner) decide(tenants []string, id, actor, to string) (*meta.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.runs {
		r := &f.runs[i]
		if r.ID != id || tenants != nil && !slices.Contains(tenants, r.Tenant) {
			continue
		}
		if r.Status != playbook.Waiting {
			return nil, fmt.Errorf("%w (it is %s)", playbook.ErrNotWaiting, r.Status)
		}
		for j := range r.Steps {
			if r.Steps[j].Status == playbook.Waiting {
				r.Steps[j].Status, r.Steps[j].Approver = to, actor
			}
		}
		r.Status = to
		return r, nil
	}
	return nil, meta.ErrNotFound
}

func (f *fakeRunner) Approve(_ context.Context, tenants []string, id, actor string) (*meta.Run, error) {
	return f.decide(tenants, id, actor, playbook.Done)
}

func (f *fakeRunner) Reject(_ context.Context, tenants []string, id, actor, _ string) (*meta.Run, error) {
	return f.decide(tenants, id, actor, playbook.Rejected)
}

func (f *fakeRunner) StartFor(context.Context, string, *meta.Alert, string) (*meta.Run, error) {
	return nil, errors.New("not in this test")
}
func (f *fakeRunner) Kill(context.Context, bool, string) error { return nil }
func (f *fakeRunner) Killed(context.Context) (meta.Setting, bool, error) {
	return meta.Setting{}, false, nil
}

// noEvents is a store that holds nothing.
type noEvents struct{}

func (noEvents) Search(context.Context, query.Request) (*store.Result, error) {
	return &store.Result{Events: true}, nil
}
func (noEvents) SearchQuarantine(context.Context, string, query.Scope, time.Time, time.Time, int) (*store.Result, error) {
	return &store.Result{Events: true}, nil
}

// newRunsWorld is a console with a playbook runner holding runs waiting
// for approval on team-a's alert (one with payloads) and team-b's, with
// rita (responder of team-a), alice (analyst of team-a) and vera
// (viewer of team-a).
func newRunsWorld(t *testing.T) (w *consoleWorld, runs *fakeRunner) {
	t.Helper()
	ctx := context.Background()
	mdb, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mdb.Close() })
	directory := access.NewDirectory(mdb, access.Options{})
	for name, role := range map[string]access.Role{"rita": access.Responder, "alice": access.Analyst, "vera": access.Viewer} {
		p, err := directory.CreatePrincipal(ctx, name, access.User, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := directory.SetPassword(ctx, p.ID, "correct horse battery "+name); err != nil {
			t.Fatal(err)
		}
		if err := directory.Bind(ctx, access.PrincipalSubject(p.ID), access.Binding{Role: role, Tenant: "team-a"}); err != nil {
			t.Fatal(err)
		}
	}
	w = &consoleWorld{t: t}
	if w.alerts, err = alert.NewManager(ctx, mdb, alert.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	w.alerts.OnNew = func(as []meta.Alert, _ []*event.Event) {
		for _, a := range as {
			ids[a.Tenant] = a.ID
		}
	}
	rule := &detect.Rule{ID: "key-rule", Title: "A key for another user", Level: "high"}
	now := time.Now().UTC()
	w.alerts.Detected([]detect.Detection{
		{Rule: rule, Event: &event.Event{Seq: 1, Time: now, Tenant: "team-a", Action: "CreateAccessKey"}},
		{Rule: rule, Event: &event.Event{Seq: 2, Time: now, Tenant: "team-b", Action: "CreateAccessKey"}},
	})
	w.alertA, w.alertB = ids["team-a"], ids["team-b"]
	if w.alertA == "" || w.alertB == "" {
		t.Fatalf("alerts: %v", ids)
	}
	steps := func(key string) []meta.RunStep {
		return []meta.RunStep{
			{Index: 0, Name: "tell", Action: "notify", Mode: "auto", Status: playbook.Done},
			{Index: 1, Name: "deactivate " + xssScript, Action: "aws.iam.deactivate_access_key", Mode: "approve", Destructive: true,
				Status: playbook.Waiting, Inputs: map[string]string{"access_key_id": key, "user": xssAttr}, Expires: now.Add(time.Hour)},
		}
	}
	runs = &fakeRunner{runs: []meta.Run{
		{ID: "run-a", Tenant: "team-a", Playbook: "Deactivate " + xssScript, AlertID: w.alertA, Status: playbook.Waiting, Actor: "alert",
			Created: now, Updated: now, Steps: steps("AKIAEXAMPLEA")},
		{ID: "run-a2", Tenant: "team-a", Playbook: "Second", AlertID: w.alertA, Status: playbook.Waiting, Actor: "alert",
			Created: now, Updated: now, Steps: steps("AKIAEXAMPLEA2")},
		{ID: "run-b", Tenant: "team-b", Playbook: "team-b-secret-run", AlertID: w.alertB, Status: playbook.Waiting, Actor: "alert",
			Created: now, Updated: now, Steps: steps("AKIAEXAMPLEB")},
	}}
	w.h = Handler(Options{Store: noEvents{}, Access: directory, Alerts: w.alerts, Playbooks: runs, Gatherer: prometheus.NewRegistry(),
		Audit: func(_ context.Context, r *access.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.records = append(w.records, *r)
			return nil
		}})
	return w, runs
}

func (f *fakeRunner) status(id string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		if r.ID == id {
			return r.Status, r.Steps[1].Approver
		}
	}
	return "", ""
}

func TestConsoleRuns(t *testing.T) {
	w, runs := newRunsWorld(t)
	rita := w.login("rita")
	csrf := w.csrf(rita)

	// The alert's page shows its runs, the waiting step and the buttons.
	rec := w.do("GET", "/alerts/"+w.alertA, rita, nil)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("the alert page: %d %s", rec.Code, body)
	}
	assertEscaped(t, "alert page with runs", body)
	for _, want := range []string{
		"Deactivate &lt;script&gt;alert(1)&lt;/script&gt;", "AKIAEXAMPLEA", `action="/runs/run-a/approve"`, `action="/runs/run-a/reject"`,
		`id="run-run-a"`, `name="return" value="/alerts/` + w.alertA + `"`, "waits for approval", `href="/static/cases.css?v=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the alert page lacks %q", want)
		}
	}
	if strings.Contains(body, "team-b-secret-run") || strings.Contains(body, "AKIAEXAMPLEB") {
		t.Error("the alert page shows team-b's run")
	}

	// alice, an analyst, sees the runs and may not decide them.
	alice := w.login("alice")
	body = w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String()
	if !strings.Contains(body, "AKIAEXAMPLEA") || strings.Contains(body, "data-approve") {
		t.Errorf("alice's view of the runs: %s", body)
	}
	if rec := w.do("POST", "/runs/run-a/approve", alice, url.Values{"csrf": {w.csrf(alice)}}); rec.Code != http.StatusForbidden {
		t.Errorf("an analyst's approval: %d", rec.Code)
	}
	// Nor without the CSRF token, nor another tenant's run.
	if rec := w.do("POST", "/runs/run-a/approve", rita, url.Values{"csrf": {"wrong"}}); rec.Code != http.StatusForbidden {
		t.Errorf("an approval without the CSRF token: %d", rec.Code)
	}
	if rec := w.do("POST", "/runs/run-b/approve", rita, url.Values{"csrf": {csrf}}); rec.Code != http.StatusNotFound {
		t.Errorf("an approval of another tenant's run: %d", rec.Code)
	}
	if rec := w.do("POST", "/runs/run-a/nuke", rita, url.Values{"csrf": {csrf}}); rec.Code != http.StatusNotFound {
		t.Errorf("an unknown decision: %d", rec.Code)
	}
	for _, id := range []string{"run-a", "run-b"} {
		if st, _ := runs.status(id); st != playbook.Waiting {
			t.Fatalf("%s was decided: %s", id, st)
		}
	}

	// rita approves, back on the alert's page.
	rec = w.do("POST", "/runs/run-a/approve", rita, url.Values{"csrf": {csrf}, "return": {"/alerts/" + w.alertA}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/alerts/"+w.alertA+"?decision=approved#run-run-a" {
		t.Errorf("approving: %d %q", rec.Code, loc)
	}
	if st, by := runs.status("run-a"); st != playbook.Done || by != "rita" {
		t.Errorf("run-a after approval: %s by %q", st, by)
	}
	body = w.do("GET", "/alerts/"+w.alertA+"?decision=approved", rita, nil).Body.String()
	if !strings.Contains(body, "Approved: the run carries on.") || strings.Contains(body, `action="/runs/run-a/approve"`) {
		t.Errorf("the alert page after approval: %s", body)
	}
	// Approving again says it waits no more; a return elsewhere is
	// refused for the runs page.
	rec = w.do("POST", "/runs/run-a/approve", rita, url.Values{"csrf": {csrf}, "return": {"https://evil.example/"}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/runs?decision=notwaiting#run-run-a" {
		t.Errorf("approving again: %d %q", rec.Code, loc)
	}

	// The runs page: those waiting, by default; rita denies the other.
	rec = w.do("GET", "/runs", rita, nil)
	body = rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `id="run-run-a2"`) || strings.Contains(body, `id="run-run-a"`) || !strings.Contains(body, `aria-current="page">Alerts<`) {
		t.Errorf("the runs page: %d %s", rec.Code, body)
	}
	assertEscaped(t, "runs page", body)
	rec = w.do("POST", "/runs/run-a2/reject", rita, url.Values{"csrf": {csrf}, "reason": {"a test key"}, "return": {"/runs?status=waiting"}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/runs?decision=rejected&status=waiting#run-run-a2" {
		t.Errorf("denying: %d %q", rec.Code, loc)
	}
	if st, by := runs.status("run-a2"); st != playbook.Rejected || by != "rita" {
		t.Errorf("run-a2 after denial: %s by %q", st, by)
	}
	for path, want := range map[string][]string{
		"/runs?status=":            {`id="run-run-a"`, `id="run-run-a2"`},
		"/runs?status=done":        {`id="run-run-a"`},
		"/runs?run=run-a2&status=": {`id="run-run-a2"`},
	} {
		body := w.do("GET", path, rita, nil).Body.String()
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %s", path, s)
			}
		}
		if strings.Contains(body, "team-b") {
			t.Errorf("GET %s shows team-b's run", path)
		}
	}
	if rec := w.do("GET", "/runs?status=bogus", rita, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("a bogus status: %d", rec.Code)
	}
	// Approval requests link to the run.
	if rec := w.do("GET", "/playbook-runs/run-a", rita, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/runs?run=run-a&status=" {
		t.Errorf("the approval link: %d %q", rec.Code, rec.Header().Get("Location"))
	}

	// vera, a viewer, is refused too.
	vera := w.login("vera")
	if rec := w.do("POST", "/runs/run-a/reject", vera, url.Values{"csrf": {w.csrf(vera)}}); rec.Code != http.StatusForbidden {
		t.Errorf("a viewer's denial: %d", rec.Code)
	}

	// Each decision and refusal is audited as the API's.
	w.mu.Lock()
	defer w.mu.Unlock()
	got := map[string]int{}
	for _, r := range w.records {
		if r.Action == "playbook.decide" {
			got[r.Actor+" "+strconv.Itoa(r.Status)]++
		}
	}
	want := map[string]int{"alice 403": 1, "rita 403": 1, "rita 404": 2, "rita 303": 3, "vera 403": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions audited: %v, want %v", got, want)
	}
}
