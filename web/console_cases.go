package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/playbook"
)

// consoleCaseRoutes serves the console's pages of cases and playbook runs.
func (a *api) consoleCaseRoutes(mux *http.ServeMux) {
	if a.opts.Alerts == nil {
		return
	}
	// The permissions are the API's for the same acts (see Handler):
	// reading to see, working to change a case, responding to decide a
	// run. The audit actions of changes are the API's too, so that a
	// change reads the same in the trail wherever it was made.
	page := func(action string, perm access.Permission) route {
		return route{action: action, perm: perm, page: true}
	}
	a.addSection("cases", "Cases", "/cases")
	mux.Handle("GET /cases", a.auth(http.HandlerFunc(a.consoleCases), page("console.case.list", access.Read)))
	mux.Handle("POST /cases", a.auth(http.HandlerFunc(a.consoleOpenCase), page("case.open", access.Work)))
	mux.Handle("GET /cases/{id}", a.auth(http.HandlerFunc(a.consoleCase), page("console.case.read", access.Read)))
	mux.Handle("POST /cases/{id}", a.auth(http.HandlerFunc(a.consoleSetCase), page("case.update", access.Work)))
	mux.Handle("POST /cases/{id}/timeline", a.auth(http.HandlerFunc(a.consoleAddToCase), page("case.add", access.Work)))
	// Adding an alert to a case starts on the alert's page, where the
	// case is picked from a list: the case is a field, not the path.
	mux.Handle("POST /alerts/{id}/case", a.auth(http.HandlerFunc(a.consoleAlertToCase), page("case.add", access.Work)))
	if a.opts.Playbooks != nil {
		mux.Handle("GET /runs", a.auth(http.HandlerFunc(a.consoleRuns), page("console.run.list", access.Read)))
		// Approval requests link here (playbook.Options.Link).
		mux.Handle("GET /playbook-runs/{id}", a.auth(http.HandlerFunc(a.consoleRunLink), page("console.run.read", access.Read)))
		mux.Handle("POST /runs/{id}/{action}", a.auth(http.HandlerFunc(a.consoleDecide), page("playbook.decide", access.Respond)))
	}
}

// caseStatuses are the case list's status filters: "active" (open or
// investigating) first, "" for every status.
var caseStatuses = []string{"active", alert.CaseOpen, alert.CaseInvestigating, alert.CaseClosed, ""}

// casesBody is the case list's data.
type casesBody struct {
	Status, Owner string
	Statuses      []string
	Cases         []meta.Case
	// Owners are the owners of the cases listed before the owner
	// filter, for its suggestions.
	Owners []string
}

// consoleCases answers GET /cases?status=&owner=: the cases of the
// caller's tenants, most recently updated first.
func (a *api) consoleCases(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &casesBody{Status: v.Get("status"), Owner: strings.TrimSpace(v.Get("owner")), Statuses: caseStatuses}
	if !v.Has("status") {
		b.Status = "active"
	}
	q := meta.CaseQuery{AllTenants: id.Scope.All, Tenants: tenantsOf(id), Limit: 1000}
	switch b.Status {
	case "active":
		q.Status = []string{alert.CaseOpen, alert.CaseInvestigating}
	case "":
	case alert.CaseOpen, alert.CaseInvestigating, alert.CaseClosed:
		q.Status = []string{b.Status}
	default:
		a.consoleError(w, r, http.StatusBadRequest, fmt.Sprintf("No status %q: open, investigating or closed.", b.Status))
		return
	}
	cs, err := a.opts.Alerts.Cases(r.Context(), q)
	if err != nil {
		a.opts.Logger.Error("console: reading cases", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the cases failed.")
		return
	}
	for _, c := range cs {
		if c.Owner != "" && !slices.Contains(b.Owners, c.Owner) {
			b.Owners = append(b.Owners, c.Owner)
		}
		// The store has no owner filter; a team's cases are few.
		if b.Owner == "" || strings.EqualFold(c.Owner, b.Owner) {
			b.Cases = append(b.Cases, c)
		}
	}
	slices.Sort(b.Owners)
	a.render(w, r, http.StatusOK, "cases", &consolePage{Title: "Cases", Nav: "cases", Body: b})
}

// caseBody is a case page's data.
type caseBody struct {
	Case     meta.Case
	Timeline []caseLine
	// Next are the statuses the case may move to, its own first.
	Next    []string
	CanWork bool
	Message string
}

// A caseLine is an entry of a case's timeline, with what it links to.
type caseLine struct {
	meta.CaseEntry
	// Link is the page of what the entry names: the alert, or the
	// playbook run of an action.
	Link string
	// Events are the pages of an alert's first events.
	Events []eventLink
	// More counts the alert's events not linked.
	More int64
}

type eventLink struct {
	Seq  uint64
	Link string
}

// caseEvents bounds the events linked under each alert of a timeline.
const caseEvents = 10

// caseNext are the statuses a case may move to from each; the alert
// layer decides, this only keeps the form from offering the others.
var caseNext = map[string][]string{
	alert.CaseOpen:          {alert.CaseInvestigating, alert.CaseClosed},
	alert.CaseInvestigating: {alert.CaseOpen, alert.CaseClosed},
	alert.CaseClosed:        {alert.CaseOpen},
}

// consoleCase answers GET /cases/{id}: the case, its timeline, and the
// forms that change it.
func (a *api) consoleCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	c, es, err := a.opts.Alerts.Case(r.Context(), tenantsOf(id), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) {
		a.notFoundPage(w, r, "such case")
		return
	}
	if err != nil {
		a.opts.Logger.Error("console: reading a case", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the case failed.")
		return
	}
	b := &caseBody{Case: c, Next: append([]string{c.Status}, caseNext[c.Status]...),
		CanWork: id.Identity.CanIn(access.Work, c.Tenant), Message: caseFailure(r.URL.Query().Get("why"))}
	for _, e := range es {
		l := caseLine{CaseEntry: e}
		switch e.Kind {
		case alert.EntryAlert:
			// The alert as the caller sees it: one they do not see is
			// named by the title the case keeps, and linked to nothing.
			al, _, _, err := a.opts.Alerts.AlertDetail(r.Context(), tenantsOf(id), e.Ref)
			if err != nil {
				if !errors.Is(err, meta.ErrNotFound) {
					a.opts.Logger.Error("console: reading a case's alert", "alert", e.Ref, "err", err)
				}
				break
			}
			l.Link = "/alerts/" + url.PathEscape(al.ID)
			seqs := al.Seqs
			if len(seqs) > caseEvents {
				seqs = seqs[:caseEvents]
			}
			for _, s := range seqs {
				l.Events = append(l.Events, eventLink{Seq: s, Link: fmt.Sprintf("/events/%d", s)})
			}
			l.More = al.Count - int64(len(seqs))
		case alert.EntryAction:
			// Playbooks record their acts with the run as the ref.
			if e.Ref != "" && a.opts.Playbooks != nil && strings.HasPrefix(e.Actor, "playbook/") {
				l.Link = "/runs?" + url.Values{"run": {e.Ref}, "status": {""}}.Encode()
			}
		}
		b.Timeline = append(b.Timeline, l)
	}
	a.render(w, r, http.StatusOK, "case", &consolePage{Title: c.Title, Nav: "cases", Body: b})
}

// caseFailure says why a change to a case failed, from the code a
// redirect carries (never text from the request).
func caseFailure(code string) string {
	switch code {
	case "":
		return ""
	case "empty":
		return "A note needs text."
	case "nothing":
		return "Nothing to change: pick another status or owner."
	case "transition":
		return "The case does not allow that change."
	case "partial":
		return "The alert correlates events of other tenants besides yours: only those who see all of its tenants may put it in a case."
	case "tenant":
		return "A case holds its own tenant's alerts: open a case for this alert instead."
	case "missing":
		return "No such alert or case among those you may change."
	case "title":
		return "A case needs a title."
	}
	return "The change failed."
}

// caseCode names an error of the alert layer about a case for a
// redirect; what is not the caller's doing is logged.
func (a *api) caseCode(err error, what string) string {
	switch {
	case errors.Is(err, meta.ErrNotFound):
		return "missing"
	case errors.Is(err, meta.ErrPartial):
		return "partial"
	case errors.Is(err, alert.ErrCase), errors.Is(err, meta.ErrConflict):
		return what
	}
	a.opts.Logger.Error("console: changing a case", "err", err)
	return "failed"
}

// redirectCase sends the browser back to a case's page, saying why a
// change failed if it did.
func redirectCase(w http.ResponseWriter, r *http.Request, id, why string) {
	back := "/cases/" + url.PathEscape(id)
	if why != "" {
		back += "?why=" + url.QueryEscape(why)
	}
	seeOther(w, r, back)
}

// consoleOpenCase answers the "Open a case" form: POST /cases with a
// title, an owner (by default the caller) and the alerts it holds, and
// goes to the new case.
func (a *api) consoleOpenCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	ids := r.PostForm["alert"]
	rec := auditRecord(r.Context())
	rec.Target = "alerts:" + strings.Join(ids, ",")
	c, err := a.opts.Alerts.OpenCase(r.Context(), tenantsOf(id), r.PostForm.Get("title"), strings.TrimSpace(r.PostForm.Get("owner")), id.Name, ids)
	if err != nil {
		// The form is on an alert's page: back there, or to the list.
		code := a.caseCode(err, "title")
		status := http.StatusBadRequest
		switch code {
		case "missing":
			status = http.StatusNotFound
		case "partial":
			status = http.StatusForbidden
		case "failed":
			status = http.StatusInternalServerError
		}
		a.consoleError(w, r, status, "The case was not opened. "+caseFailure(code))
		return
	}
	rec.Target = "case:" + c.ID
	redirectCase(w, r, c.ID, "")
}

// consoleSetCase answers the case page's form: POST /cases/{id} with a
// status and an owner, either or both changed.
func (a *api) consoleSetCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	cid := r.PathValue("id")
	status, owner := r.PostForm.Get("status"), strings.TrimSpace(r.PostForm.Get("owner"))
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "case:"+cid, "status "+status+", owner "+owner
	// The form sends both fields as they are: one left alone is no
	// change, and the alert layer refuses a change of neither.
	c, _, err := a.opts.Alerts.Case(r.Context(), tenantsOf(id), cid)
	if err == nil {
		if status == c.Status {
			status = ""
		}
		if owner == c.Owner {
			owner = ""
		}
		if status == "" && owner == "" {
			redirectCase(w, r, cid, "nothing")
			return
		}
		_, err = a.opts.Alerts.SetCase(r.Context(), tenantsOf(id), cid, status, owner, id.Name)
	}
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such case")
	case err != nil:
		redirectCase(w, r, cid, a.caseCode(err, "transition"))
	default:
		redirectCase(w, r, cid, "")
	}
}

// consoleAddToCase answers the case page's note form:
// POST /cases/{id}/timeline with a kind (note or action) and its text.
func (a *api) consoleAddToCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	cid, kind, text := r.PathValue("id"), r.PostForm.Get("kind"), strings.TrimSpace(r.PostForm.Get("text"))
	if kind == "" {
		kind = alert.EntryNote
	}
	// Alerts are added from their page, exports by the exporter: a
	// person writes notes and actions here.
	if kind != alert.EntryNote && kind != alert.EntryAction {
		a.consoleError(w, r, http.StatusBadRequest, "Add a note or an action.")
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "case:"+cid, kind
	if text == "" {
		redirectCase(w, r, cid, "empty")
		return
	}
	_, err := a.opts.Alerts.AddToCase(r.Context(), tenantsOf(id), cid, kind, "", text, id.Name)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such case")
	case err != nil:
		redirectCase(w, r, cid, a.caseCode(err, "empty"))
	default:
		redirectCase(w, r, cid, "")
	}
}

// consoleAlertToCase answers the alert page's "Add to case" form:
// POST /alerts/{id}/case with the case, and goes to the case.
func (a *api) consoleAlertToCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	aid, cid := r.PathValue("id"), r.PostForm.Get("case")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "case:"+cid, "alert "+aid
	_, err := a.opts.Alerts.AddToCase(r.Context(), tenantsOf(id), cid, alert.EntryAlert, aid, "", id.Name)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such alert or case")
	case err != nil:
		redirectCase(w, r, cid, a.caseCode(err, "tenant"))
	default:
		redirectCase(w, r, cid, "")
	}
}

// runStatuses are the run list's status filters; "" is every status.
var runStatuses = []string{playbook.Waiting, playbook.Running, playbook.Done, playbook.Failed, playbook.Rejected, playbook.Expired, playbook.Halted, ""}

// runsBody is the run list's data.
type runsBody struct {
	Status   string
	Statuses []string
	runList
}

// runList is the data of the "run-list" template, which the run list
// and the alert page share.
type runList struct {
	Runs []runView
	// Return is the page the decisions come back to.
	Return string
	// Notice says what became of a decision just made.
	Notice, Error string
	// CSRF is the session's token for the decisions' forms: the
	// template runs apart from the layout on the alert page.
	CSRF string
}

// A runView is a run with whether the caller may decide it.
type runView struct {
	meta.Run
	CanDecide bool
	// Waiting is the index of the step waiting for approval, or -1.
	Waiting int
}

func runViews(id Identity, rs []meta.Run) []runView {
	var out []runView
	for _, r := range rs {
		v := runView{Run: r, Waiting: -1}
		if r.Status == playbook.Waiting {
			v.Waiting = slices.IndexFunc(r.Steps, func(s meta.RunStep) bool { return s.Status == playbook.Waiting })
			v.CanDecide = v.Waiting >= 0 && id.Identity.CanIn(access.Respond, r.Tenant)
		}
		out = append(out, v)
	}
	return out
}

// consoleRuns answers GET /runs?status=&run=: the playbook runs of the
// caller's tenants, by default those waiting for approval.
func (a *api) consoleRuns(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &runsBody{Status: v.Get("status"), Statuses: runStatuses}
	if !v.Has("status") {
		b.Status = playbook.Waiting
	}
	if !slices.Contains(runStatuses, b.Status) {
		a.consoleError(w, r, http.StatusBadRequest, fmt.Sprintf("No status %q.", b.Status))
		return
	}
	q := meta.RunQuery{AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, ID: v.Get("run"), Limit: 200, Steps: true}
	if b.Status != "" {
		q.Status = []string{b.Status}
	}
	rs, err := a.opts.Playbooks.Runs(r.Context(), q)
	if err != nil {
		a.opts.Logger.Error("console: reading playbook runs", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the playbook runs failed.")
		return
	}
	b.runList = a.runList(r, id, rs, r.URL.RequestURI())
	a.render(w, r, http.StatusOK, "runs", &consolePage{Title: "Playbook runs", Nav: "alerts", Body: b})
}

func (a *api) runList(r *http.Request, id Identity, rs []meta.Run, back string) runList {
	l := runList{Runs: runViews(id, rs), Return: back, CSRF: id.csrf}
	switch r.URL.Query().Get("decision") {
	case "approved":
		l.Notice = "Approved: the run carries on."
	case "rejected":
		l.Notice = "Denied: the run ends."
	case "notwaiting":
		l.Error = "That run no longer waits for approval: someone decided, or the approval expired."
	}
	return l
}

// consoleRunLink answers GET /playbook-runs/{id}, where approval
// requests link: the run, on the run list.
func (a *api) consoleRunLink(w http.ResponseWriter, r *http.Request) {
	seeOther(w, r, "/runs?"+url.Values{"run": {r.PathValue("id")}, "status": {""}}.Encode())
}

// consoleDecide answers the Approve and Deny buttons:
// POST /runs/{id}/{approve|reject} with a reason (for a denial) and the
// page to return to, through the runner as the API's decide does.
func (a *api) consoleDecide(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	rid, action := r.PathValue("id"), r.PathValue("action")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "run:"+rid, action
	var (
		err      error
		decision string
	)
	switch action {
	case "approve":
		_, err = a.opts.Playbooks.Approve(r.Context(), tenantsOf(id), rid, id.Name)
		decision = "approved"
	case "reject":
		_, err = a.opts.Playbooks.Reject(r.Context(), tenantsOf(id), rid, id.Name, strings.TrimSpace(r.PostForm.Get("reason")))
		decision = "rejected"
	default:
		a.notFoundPage(w, r, "such action")
		return
	}
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such playbook run")
		return
	case errors.Is(err, playbook.ErrNotWaiting):
		decision = "notwaiting"
	case err != nil:
		a.opts.Logger.Error("console: deciding a playbook run", "run", rid, "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Deciding the run failed.")
		return
	}
	back := localReturn(r.PostForm.Get("return"))
	if !strings.HasPrefix(back, "/alerts/") && !strings.HasPrefix(back, "/runs") {
		back = "/runs"
	}
	u, _ := url.Parse(back)
	v := u.Query()
	v.Set("decision", decision)
	seeOther(w, r, u.Path+"?"+v.Encode()+"#run-"+url.PathEscape(rid))
}

// alertResponseBody is the data of the alert page's part about cases and
// playbook runs ("alert-cases" and "run-list").
type alertResponseBody struct {
	Alert meta.Alert
	// CanOpen says the caller may put the alert in a case.
	CanOpen bool
	// Cases are the open cases the alert may be added to.
	Cases []meta.Case
	CSRF  string
	// Runs are the alert's playbook runs; nil without a runner.
	Runs *runList
}

// alertResponse renders the alert page's sections about cases and
// playbook runs. They are rendered here, from this file's templates, and
// given to the alert page as HTML: each page is parsed with the layout
// alone, so alert.html cannot call templates of case.html or runs.html.
// html/template escaped what went in, as it does for any page.
func (a *api) alertResponse(r *http.Request, id Identity, al meta.Alert) template.HTML {
	ctx := r.Context()
	b := alertResponseBody{Alert: al, CSRF: id.csrf}
	// An alert that the caller sees part of is the CSIRT's to put in a
	// case (alert.Manager.OpenCase refuses it).
	b.CanOpen = id.Identity.CanIn(access.Work, al.Tenant) && !al.Partial
	if b.CanOpen {
		work := id.Identity.Scope(access.Work)
		cs, err := a.opts.Alerts.Cases(ctx, meta.CaseQuery{AllTenants: work.All, Tenants: work.Tenants,
			Status: []string{alert.CaseOpen, alert.CaseInvestigating}, Limit: 200})
		if err != nil {
			a.opts.Logger.Error("console: reading cases", "err", err)
		}
		for _, c := range cs {
			// A case holds its own tenant's alerts; one across tenants, any.
			if c.Tenant == "" || c.Tenant == al.Tenant {
				b.Cases = append(b.Cases, c)
			}
		}
	}
	var out strings.Builder
	// A part that fails is left out whole, not cut halfway.
	part := func(page, name string, data any) {
		var buf bytes.Buffer
		if err := consolePages[page].ExecuteTemplate(&buf, name, data); err != nil {
			a.opts.Logger.Error("rendering a part of an alert's page", "part", name, "err", err)
			return
		}
		out.Write(buf.Bytes())
	}
	part("case", "alert-cases", b)
	if a.opts.Playbooks != nil {
		rs, err := a.opts.Playbooks.Runs(ctx, meta.RunQuery{AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, AlertID: al.ID, Limit: 50, Steps: true})
		if err != nil {
			a.opts.Logger.Error("console: reading an alert's playbook runs", "err", err)
		}
		part("runs", "alert-runs", a.runList(r, id, rs, "/alerts/"+url.PathEscape(al.ID)))
	}
	return template.HTML(out.String())
}
