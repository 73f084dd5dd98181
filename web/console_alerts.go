package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// alertsBody is the alert queue's data.
type alertsBody struct {
	Status, Severity, Rule string
	Statuses, Severities   []string
	Alerts                 []meta.Alert
	// Done and Failed count the alerts a bulk change changed and could
	// not change; Message says why the first failed.
	Done, Failed int
	Message      string
	// CanWork says the caller may change alerts.
	CanWork bool
	// Self is the queue's URL with its filters, where changes return.
	Self string
	// Runs says playbook runs are served: the queue links those waiting
	// for approval.
	Runs bool
}

// alertStatuses are the queue's status filters; "" is every status.
var alertStatuses = []string{"", alert.Open, alert.Acknowledged, alert.Resolved, alert.Closed}

// consoleAlerts answers GET /alerts?status=&severity=&rule=: the alert
// queue of the caller's tenants, most recently updated first.
func (a *api) consoleAlerts(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &alertsBody{Runs: a.opts.Playbooks != nil, Status: v.Get("status"), Severity: v.Get("severity"), Rule: v.Get("rule"), Statuses: alertStatuses,
		Severities: append([]string{""}, alert.Severities...), CanWork: id.Can(workPermission)}
	if !v.Has("status") {
		b.Status = "active"
	}
	b.Statuses = append([]string{"active"}, alertStatuses...)
	b.Self = alertsURL(b.Status, b.Severity, b.Rule)
	b.Done, _ = strconv.Atoi(v.Get("done"))
	b.Failed, _ = strconv.Atoi(v.Get("failed"))
	if b.Failed > 0 {
		b.Message = alertFailure(v.Get("why"))
	}
	q := meta.AlertQuery{AllTenants: id.Scope.All, Tenants: tenantsOf(id), RuleID: b.Rule, Limit: 1000}
	switch b.Status {
	case "active":
		q.Status = []string{alert.Open, alert.Acknowledged}
	case "":
	default:
		if !slices.Contains(alertStatuses, b.Status) {
			a.consoleError(w, r, http.StatusBadRequest, fmt.Sprintf("No status %q: open, acknowledged, resolved or closed.", b.Status))
			return
		}
		q.Status = []string{b.Status}
	}
	as, err := a.opts.Alerts.Alerts(r.Context(), q)
	if err != nil {
		a.opts.Logger.Error("console: reading alerts", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the alerts failed.")
		return
	}
	for _, al := range as {
		if b.Severity == "" || al.Severity == b.Severity {
			b.Alerts = append(b.Alerts, al)
		}
	}
	a.render(w, r, http.StatusOK, "alerts", &consolePage{Title: "Alerts", Nav: "alerts", Body: b})
}

// workPermission is what changing alerts takes.
const workPermission = access.Work

func alertsURL(status, severity, rule string) string {
	v := url.Values{}
	if status != "" {
		v.Set("status", status)
	}
	if severity != "" {
		v.Set("severity", severity)
	}
	if rule != "" {
		v.Set("rule", rule)
	}
	if len(v) == 0 {
		return "/alerts?status="
	}
	return "/alerts?" + v.Encode()
}

// alertFailure says why a change failed, from the code a redirect
// carries (never text from the request).
func alertFailure(code string) string {
	switch code {
	case "transition":
		return "The lifecycle does not allow that change (a resolved alert must be reopened first; closing needs a reason)."
	case "partial":
		return "The alert correlates events of other tenants besides yours: only those who see all of its tenants may change it."
	case "missing":
		return "No such alert among those you may see."
	case "none":
		return "Select the alerts to change."
	}
	return "The change failed."
}

// failureCode names an error of the alert layer for a redirect.
func failureCode(err error) string {
	switch {
	case errors.Is(err, meta.ErrNotFound):
		return "missing"
	case errors.Is(err, meta.ErrPartial):
		return "partial"
	case errors.Is(err, alert.ErrTransition), errors.Is(err, meta.ErrConflict):
		return "transition"
	}
	return "failed"
}

// consoleAlertsBulk answers the queue's form: POST /alerts with
// action (ack, resolve, reopen, close), the ids of the checked alerts,
// a reason and where to return.
func (a *api) consoleAlertsBulk(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if err := r.ParseForm(); err != nil {
		a.consoleError(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	to, ok := statusActions[r.PostForm.Get("action")]
	if !ok {
		a.consoleError(w, r, http.StatusBadRequest, "No such action: acknowledge, resolve, reopen or close.")
		return
	}
	ids := r.PostForm["id"]
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "alerts:"+strings.Join(ids, ","), "to "+to
	done, failed, why := 0, 0, ""
	if len(ids) == 0 {
		failed, why = 1, "none"
	}
	for _, aid := range ids {
		if _, err := a.opts.Alerts.SetStatus(r.Context(), tenantsOf(id), aid, to, id.Name, r.PostForm.Get("reason")); err != nil {
			if failed == 0 {
				why = failureCode(err)
			}
			failed++
			if why == "failed" {
				a.opts.Logger.Error("console: changing an alert", "alert", aid, "err", err)
			}
			continue
		}
		done++
	}
	back := localReturn(r.PostForm.Get("return"))
	if !strings.HasPrefix(back, "/alerts") {
		back = "/alerts"
	}
	u, _ := url.Parse(back)
	v := u.Query()
	v.Del("done")
	v.Del("failed")
	v.Del("why")
	v.Set("done", strconv.Itoa(done))
	if failed > 0 {
		v.Set("failed", strconv.Itoa(failed))
		v.Set("why", why)
	}
	pageHeaders(w)
	http.Redirect(w, r, u.Path+"?"+v.Encode(), http.StatusSeeOther)
}

// alertBody is an alert page's data.
type alertBody struct {
	Alert       meta.Alert
	Transitions []meta.Transition
	Deliveries  []meta.Delivery
	Events      []resultRow
	Cols        []string
	// More counts the events of the alert not listed.
	More    int64
	CanWork bool
	Message string
	Search  string // a search for the alert's events
	// Response is the alert's part in cases and playbook runs (see
	// alertResponse).
	Response template.HTML
}

// consoleAlert answers GET /alerts/{id}: the alert, the events behind
// it, its transitions and notifications.
func (a *api) consoleAlert(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	al, ts, ds, err := a.opts.Alerts.AlertDetail(r.Context(), tenantsOf(id), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) {
		a.notFoundPage(w, r, "such alert")
		return
	}
	if err != nil {
		a.opts.Logger.Error("console: reading an alert", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the alert failed.")
		return
	}
	b := &alertBody{Alert: al, Transitions: ts, Deliveries: ds, CanWork: id.Can(workPermission), Cols: []string{"time", "tenant", "actor", "action", "outcome", "src_ip"}}
	if why := r.URL.Query().Get("why"); why != "" {
		b.Message = alertFailure(why)
	}
	// The events behind it, as the caller's scope sees them.
	seqs := al.Seqs
	if len(seqs) > 50 {
		seqs = seqs[:50]
	}
	b.More = al.Count - int64(len(seqs))
	if len(seqs) > 0 {
		terms := make([]string, len(seqs))
		for i, s := range seqs {
			terms[i] = "seq:" + strconv.FormatUint(s, 10)
		}
		text := strings.Join(terms, " OR ")
		b.Search = searchParams{q: text, from: ""}.url()
		if q, err := query.Parse(text); err == nil {
			res, err := a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: id.Scope, Limit: len(seqs)})
			if err != nil {
				a.opts.Logger.Error("console: reading an alert's events", "err", err)
			} else {
				b.Events = eventRows(res, b.Cols)
			}
		}
	}
	b.Response = a.alertResponse(r, id, al)
	a.render(w, r, http.StatusOK, "alert", &consolePage{Title: al.Title, Nav: "alerts", Body: b})
}

// consoleAlertStatus answers an alert page's buttons:
// POST /alerts/{id}/{ack|resolve|reopen|close} with a reason.
func (a *api) consoleAlertStatus(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	to, ok := statusActions[r.PathValue("action")]
	if !ok {
		a.notFoundPage(w, r, "such action")
		return
	}
	if err := r.ParseForm(); err != nil {
		a.consoleError(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	aid := r.PathValue("id")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "alert:"+aid, "to "+to
	back := "/alerts/" + url.PathEscape(aid)
	_, err := a.opts.Alerts.SetStatus(r.Context(), tenantsOf(id), aid, to, id.Name, r.PostForm.Get("reason"))
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such alert")
		return
	case err != nil:
		if code := failureCode(err); code == "failed" {
			a.opts.Logger.Error("console: changing an alert", "alert", aid, "err", err)
			a.consoleError(w, r, http.StatusInternalServerError, "Changing the alert failed.")
			return
		} else {
			back += "?why=" + code
		}
	}
	pageHeaders(w)
	http.Redirect(w, r, back, http.StatusSeeOther)
}
