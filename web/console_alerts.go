package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// alertsBody is the alert queue's data.
type alertsBody struct {
	Status, Severity, Rule string
	// Environment and Assignee are the filters of those names: Assignee
	// "" is anyone, "me" the caller, "-" no one, else a name.
	Environment, Assignee string
	Statuses, Severities  []string
	// Environments and Assignees are those of the caller's alerts (of
	// the status and rule filtered on), which the filters offer.
	Environments, Assignees []string
	Alerts                  []meta.Alert
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

// consoleAlerts answers GET /alerts?status=&severity=&rule=&environment=&assignee=:
// the alert queue of the caller's tenants, most recently updated first.
func (a *api) consoleAlerts(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &alertsBody{Runs: a.opts.Playbooks != nil, Status: v.Get("status"), Severity: v.Get("severity"), Rule: v.Get("rule"), Statuses: alertStatuses,
		Environment: v.Get("environment"), Assignee: v.Get("assignee"),
		Severities: append([]string{""}, alert.Severities...), CanWork: id.Can(workPermission)}
	if !v.Has("status") {
		b.Status = "active"
	}
	b.Statuses = append([]string{"active"}, alertStatuses...)
	b.Self = alertsURL(b.Status, b.Severity, b.Rule, b.Environment, b.Assignee)
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
	// The filters offer the environments and assignees of the alerts
	// of the status and rule asked, read before the two filters narrow
	// them, and so read twice when either is set.
	offered := q
	q.Environment, q.Assignee = b.Environment, assigneeFilter(b.Assignee, id)
	as, err := a.opts.Alerts.Alerts(r.Context(), q)
	if err == nil && (q.Environment != "" || q.Assignee != "") {
		var all []meta.Alert
		if all, err = a.opts.Alerts.Alerts(r.Context(), offered); err == nil {
			b.Environments, b.Assignees = alertFacets(all)
		}
	} else {
		b.Environments, b.Assignees = alertFacets(as)
	}
	if err != nil {
		a.opts.Logger.Error("console: reading alerts", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the alerts failed.")
		return
	}
	if b.Assignee != "" && b.Assignee != me && b.Assignee != meta.Unassigned && !slices.Contains(b.Assignees, b.Assignee) {
		b.Assignees = append(b.Assignees, b.Assignee) // kept selected, though it holds none
	}
	for _, al := range as {
		if b.Severity == "" || al.Severity == b.Severity {
			b.Alerts = append(b.Alerts, al)
		}
	}
	a.render(w, r, http.StatusOK, "alerts", &consolePage{Title: "Alerts", Nav: "alerts", Body: b})
}

// alertFacets returns the environments and the assignees of alerts,
// each sorted and once. An alert's environment is read from its context
// as the reader sees it, which for a part of an alert across tenants
// holds no other tenant's.
func alertFacets(as []meta.Alert) (environments, assignees []string) {
	for _, al := range as {
		if e := al.Context[meta.EnvironmentFact]; e != "" {
			environments = append(environments, e)
		}
		if al.Assignee != "" {
			assignees = append(assignees, al.Assignee)
		}
	}
	slices.Sort(environments)
	slices.Sort(assignees)
	return slices.Compact(environments), slices.Compact(assignees)
}

// workPermission is what changing alerts takes.
const workPermission = access.Work

func alertsURL(status, severity, rule, environment, assignee string) string {
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
	if environment != "" {
		v.Set("environment", environment)
	}
	if assignee != "" {
		v.Set("assignee", assignee)
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
	case "reason":
		return "Suppressing needs a reason."
	case "expires":
		return "The expiry is a whole number of days, from 1 to 3650, or nothing for none."
	case "across":
		return "The alert correlates events of several tenants: its suppression would apply to every tenant, which only those who see every tenant may make."
	case "assignee":
		return "That is not a name to assign to: at most 200 characters, without control characters, and not “-”."
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
	case errors.Is(err, alert.ErrAssignee):
		return "assignee"
	}
	return "failed"
}

// consoleAlertsBulk answers the queue's form: POST /alerts with
// action (ack, resolve, reopen, close, suppress), the ids of the checked
// alerts, a reason, for suppress the days it lasts (expires, optional),
// and where to return.
func (a *api) consoleAlertsBulk(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	action := r.PostForm.Get("action")
	to, ok := statusActions[action]
	if !ok && action != "suppress" {
		a.consoleError(w, r, http.StatusBadRequest, "No such action: acknowledge, resolve, reopen, close or suppress.")
		return
	}
	ids := r.PostForm["id"]
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "alerts:"+strings.Join(ids, ","), "to "+to
	done, failed, why := 0, 0, ""
	if len(ids) == 0 {
		failed, why = 1, "none"
	}
	if action == "suppress" {
		rec.Detail = "suppress"
		if len(ids) > 0 {
			done, failed, why = a.suppressAlerts(r, id, ids)
		}
	} else {
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
	seeOther(w, r, u.Path+"?"+v.Encode())
}

// maxSuppressDays bounds the expiry the queue's suppress takes: ten
// years, past which "until revoked" (no expiry) says it better.
const maxSuppressDays = 3650

// suppressAlerts suppresses, for the queue's bulk form, each alert of
// ids: its rule with its group's values (the fields of its dedup key),
// in its tenant, with the form's reason (required) and expiry in days
// (expires; none for until revoked). It returns how many were done and
// failed, and the failure code of the first to fail. The alert is read
// in the caller's scope, so that another tenant's is missing; one across
// tenants is refused to a caller who sees part of it (its suppression
// would hide the other tenants' events), and, whole, to one who does not
// see every tenant: a suppression of no tenant applies to all of them.
// Alerts of one rule and group are suppressed once.
func (a *api) suppressAlerts(r *http.Request, id Identity, ids []string) (done, failed int, why string) {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return 0, len(ids), "reason"
	}
	var expires time.Time
	if s := strings.TrimSpace(r.PostForm.Get("expires")); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days < 1 || days > maxSuppressDays {
			return 0, len(ids), "expires"
		}
		expires = a.opts.Now().Add(time.Duration(days) * 24 * time.Hour)
	}
	fail := func(code string) {
		if failed == 0 {
			why = code
		}
		failed++
	}
	made := map[string]bool{} // by rule, tenant and group
	for _, aid := range ids {
		al, _, _, err := a.opts.Alerts.AlertDetail(r.Context(), tenantsOf(id), aid)
		switch {
		case err != nil:
			if failureCode(err) == "failed" {
				a.opts.Logger.Error("console: reading an alert to suppress", "alert", aid, "err", err)
			}
			fail(failureCode(err))
			continue
		case al.Partial:
			fail("partial")
			continue
		case al.Tenant == "" && !id.Scope.All:
			fail("across")
			continue
		}
		key := suppressionKey(al)
		if made[key] {
			done++
			continue
		}
		s := meta.Suppression{Tenant: al.Tenant, RuleID: al.RuleID, Fields: al.Group, Reason: reason, Creator: id.Name, Expires: expires}
		if _, err := a.opts.Alerts.Suppress(r.Context(), s); err != nil {
			a.opts.Logger.Error("console: suppressing an alert", "alert", aid, "err", err)
			fail("failed")
			continue
		}
		made[key] = true
		done++
	}
	return done, failed, why
}

// suppressionKey is what makes two alerts' suppressions the same: the
// rule, the tenant and the group's values.
func suppressionKey(al meta.Alert) string {
	// JSON quotes each string and sorts the group's keys.
	b, _ := json.Marshal([]any{al.RuleID, al.Tenant, al.Group})
	return string(b)
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
	// Cases are the cases holding the alert that the caller sees.
	Cases []meta.Case
	// Me is the caller's name, whom "Assign to me" assigns.
	Me string
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
	b := &alertBody{Alert: al, Transitions: ts, Deliveries: ds, CanWork: id.Can(workPermission), Cols: []string{"time", "tenant", "actor", "action", "outcome", "src_ip"},
		Me: id.Name}
	if b.Cases, err = a.opts.Alerts.CasesOfAlert(r.Context(), tenantsOf(id), al.ID); err != nil {
		// The page is of use without them.
		a.opts.Logger.Error("console: reading the cases of an alert", "alert", al.ID, "err", err)
	}
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
	if !a.consoleForm(w, r) {
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
	seeOther(w, r, back)
}

// consoleAlertAssign answers an alert page's assign forms:
// POST /alerts/{id}/assign with to=me (the caller), or with assignee, a
// name, or nothing to assign the alert to no one.
func (a *api) consoleAlertAssign(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	assignee := r.PostForm.Get("assignee")
	if r.PostForm.Get("to") == me {
		assignee = id.Name
	}
	aid := r.PathValue("id")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "alert:"+aid, assignDetail(assignee)
	back := "/alerts/" + url.PathEscape(aid)
	_, err := a.opts.Alerts.Assign(r.Context(), tenantsOf(id), aid, assignee, id.Name)
	switch code := failureCode(err); {
	case err == nil:
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such alert")
		return
	case code == "failed":
		a.opts.Logger.Error("console: assigning an alert", "alert", aid, "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Assigning the alert failed.")
		return
	default:
		back += "?why=" + code
	}
	seeOther(w, r, back)
}
