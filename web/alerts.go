package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// Alerts is what the API needs of the alert layer (an *alert.Manager).
// Every call carries the caller's tenants (nil for every tenant), which
// it applies.
type Alerts interface {
	Alerts(ctx context.Context, q meta.AlertQuery) ([]meta.Alert, error)
	AlertDetail(ctx context.Context, tenants []string, id string) (meta.Alert, []meta.Transition, []meta.Delivery, error)
	SetStatus(ctx context.Context, tenants []string, id, to, actor, reason string) (meta.Alert, error)
	Assign(ctx context.Context, tenants []string, id, assignee, actor string) (meta.Alert, error)
	Suppressions(ctx context.Context, tenants []string) ([]meta.Suppression, error)
	Suppress(ctx context.Context, s meta.Suppression) (meta.Suppression, error)
	Unsuppress(ctx context.Context, tenants []string, id, by string) error

	Cases(ctx context.Context, q meta.CaseQuery) ([]meta.Case, error)
	Case(ctx context.Context, tenants []string, id string) (meta.Case, []meta.CaseEntry, error)
	OpenCase(ctx context.Context, tenants []string, title, owner, actor string, alertIDs []string) (meta.Case, error)
	AddToCase(ctx context.Context, tenants []string, id, kind, ref, text, actor string) (meta.Case, error)
	SetCase(ctx context.Context, tenants []string, id, status, owner, actor string) (meta.Case, error)
	CasesOfAlert(ctx context.Context, tenants []string, id string) ([]meta.Case, error)
}

// tenantsOf is the caller's tenants as the alert layer takes them: nil
// for a scope over every tenant, and never nil otherwise: a scope of
// shares only (a grant of events, no role in a tenant) has no tenants,
// and sees no alert, case or run.
func tenantsOf(id Identity) []string {
	if id.Scope.All {
		return nil
	}
	if id.Scope.Tenants == nil {
		return []string{}
	}
	return id.Scope.Tenants
}

// alerts answers GET /api/v1/alerts?status=open,acknowledged&rule=ID&since=-24h&limit=N&environment=E&assignee=NAME
// with the alerts the caller's tenants may see, most recently updated
// first. assignee=me is the caller's own, and assignee=- those assigned
// to no one.
func (a *api) alerts(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	q := meta.AlertQuery{AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, RuleID: v.Get("rule"), Limit: 100,
		Environment: v.Get("environment"), Assignee: assigneeFilter(v.Get("assignee"), id)}
	if s := v.Get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st {
			case alert.Open, alert.Acknowledged, alert.Resolved, alert.Closed:
				q.Status = append(q.Status, st)
			default:
				writeError(w, http.StatusBadRequest, fmt.Errorf("status: %q is not open, acknowledged, resolved or closed", st))
				return
			}
		}
	}
	var err error
	if q.LastSeenSince, err = query.ParseTimeArg(v.Get("since"), a.opts.Now()); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("since: %w", err))
		return
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a positive number", s))
			return
		}
	}
	as, err := a.opts.Alerts.Alerts(r.Context(), q)
	if err != nil {
		a.opts.Logger.Error("reading alerts", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reading alerts failed"))
		return
	}
	if as == nil {
		as = []meta.Alert{}
	}
	writeJSON(w, http.StatusOK, as)
}

// alert answers GET /api/v1/alerts/{id}: the alert, its transitions and
// its notifications, as the caller sees them: of an alert across
// tenants that they see part of, their part, and the transitions
// without reasons and no notifications (see meta.DB.AlertDetail).
func (a *api) alert(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	al, ts, ds, err := a.opts.Alerts.AlertDetail(r.Context(), tenantsOf(id), r.PathValue("id"))
	if a.alertError(w, err) {
		return
	}
	if ts == nil {
		ts = []meta.Transition{}
	}
	if ds == nil {
		ds = []meta.Delivery{}
	}
	writeJSON(w, http.StatusOK, struct {
		meta.Alert
		Transitions []meta.Transition `json:"transitions"`
		Deliveries  []meta.Delivery   `json:"deliveries"`
	}{al, ts, ds})
}

// me is the assignee filter, and the assignee, that stands for the
// caller.
const me = "me"

// assigneeFilter is the AlertQuery.Assignee of an assignee filter: the
// caller's name for "me", else the filter as it is.
func assigneeFilter(s string, id Identity) string {
	if s == me {
		return id.Name
	}
	return s
}

// statusActions are the actions of POST /api/v1/alerts/{id}/{action}.
var statusActions = map[string]string{
	"ack": alert.Acknowledged, "resolve": alert.Resolved, "close": alert.Closed, "reopen": alert.Open,
}

// setStatus answers POST /api/v1/alerts/{id}/{ack|resolve|close|reopen}
// with a body {"reason": "…"} (which close requires).
func (a *api) setStatus(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	to, ok := statusActions[r.PathValue("action")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no action %q: ack, resolve, close or reopen", r.PathValue("action")))
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	al, err := a.opts.Alerts.SetStatus(r.Context(), tenantsOf(id), r.PathValue("id"), to, id.Name, body.Reason)
	if a.alertError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, al)
}

// assign answers POST /api/v1/alerts/{id}/assign with a body
// {"assignee": "name"}, or "" to assign the alert to no one.
func (a *api) assign(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Assignee string `json:"assignee"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	aid := r.PathValue("id")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "alert:"+aid, assignDetail(body.Assignee)
	al, err := a.opts.Alerts.Assign(r.Context(), tenantsOf(id), aid, body.Assignee, id.Name)
	if a.alertError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, al)
}

// assignDetail is what the audit trail says of an assignment: a name
// that is refused for its control characters is quoted, so that it
// cannot forge lines of the trail.
func assignDetail(assignee string) string {
	assignee = strings.TrimSpace(assignee)
	switch {
	case assignee == "":
		return "unassign"
	case strings.ContainsFunc(assignee, unicode.IsControl):
		return "assign to " + strconv.Quote(assignee)
	}
	return "assign to " + assignee
}

// suppressions answers GET /api/v1/suppressions.
func (a *api) suppressions(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ss, err := a.opts.Alerts.Suppressions(r.Context(), tenantsOf(id))
	if a.alertError(w, err) {
		return
	}
	if ss == nil {
		ss = []meta.Suppression{}
	}
	writeJSON(w, http.StatusOK, ss)
}

// suppress answers POST /api/v1/suppressions with a body
// {"rule_id", "fields": {…}, "reason", "expires": "24h" or a time,
// "tenant"}. A caller bound to a tenant suppresses in it only; an
// administrator names the tenant, or none for every tenant.
func (a *api) suppress(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		RuleID  string            `json:"rule_id"`
		Fields  map[string]string `json:"fields"`
		Reason  string            `json:"reason"`
		Expires string            `json:"expires"`
		Tenant  string            `json:"tenant"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s := meta.Suppression{RuleID: body.RuleID, Fields: body.Fields, Reason: body.Reason, Creator: id.Name, Tenant: body.Tenant}
	if !id.Scope.All {
		if body.Tenant != "" && body.Tenant != id.Tenant {
			writeError(w, http.StatusForbidden, fmt.Errorf("tenant %q is not yours", body.Tenant))
			return
		}
		s.Tenant = id.Tenant
	}
	if body.Expires != "" {
		now := a.opts.Now()
		if d, err := time.ParseDuration(body.Expires); err == nil {
			s.Expires = now.Add(d)
		} else if t, err := time.Parse(time.RFC3339, body.Expires); err == nil {
			s.Expires = t
		} else {
			writeError(w, http.StatusBadRequest, fmt.Errorf("expires: %q is neither a duration (24h) nor an RFC 3339 time", body.Expires))
			return
		}
	}
	s, err := a.opts.Alerts.Suppress(r.Context(), s)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

// unsuppress answers DELETE /api/v1/suppressions/{id}.
func (a *api) unsuppress(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if a.alertError(w, a.opts.Alerts.Unsuppress(r.Context(), tenantsOf(id), r.PathValue("id"), id.Name)) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// alertError writes the response for an error of the alert layer, and
// reports whether there was one.
func (a *api) alertError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such alert, suppression or case"))
	case errors.Is(err, meta.ErrPartial):
		writeError(w, http.StatusForbidden, errors.New("this alert correlates events of other tenants besides yours: "+
			"only those who see all of its tenants (the CSIRT) may change it or put it in a case; you see your part of it"))
	case errors.Is(err, meta.ErrConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, alert.ErrTransition), errors.Is(err, alert.ErrCase):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, alert.ErrAssignee):
		writeError(w, http.StatusBadRequest, err)
	default:
		a.opts.Logger.Error("alerts", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("the alert layer failed"))
	}
	return true
}

// decodeBody decodes a small JSON request body; an empty body is {}.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
