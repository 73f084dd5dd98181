package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
)

// cases answers GET /api/v1/cases?status=open,investigating&limit=N.
func (a *api) cases(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	q := meta.CaseQuery{AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, Limit: 100}
	if s := v.Get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st {
			case alert.CaseOpen, alert.CaseInvestigating, alert.CaseClosed:
				q.Status = append(q.Status, st)
			default:
				writeError(w, http.StatusBadRequest, fmt.Errorf("status: %q is not open, investigating or closed", st))
				return
			}
		}
	}
	if s := v.Get("limit"); s != "" {
		var err error
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a positive number", s))
			return
		}
	}
	cs, err := a.opts.Alerts.Cases(r.Context(), q)
	if a.alertError(w, err) {
		return
	}
	if cs == nil {
		cs = []meta.Case{}
	}
	writeJSON(w, http.StatusOK, cs)
}

// openCase answers POST /api/v1/cases with a body {"title", "owner",
// "alerts": [ids]}. An alert across tenants that the caller sees only
// part of is refused (403): it is the CSIRT's to put in a case.
func (a *api) openCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Title  string   `json:"title"`
		Owner  string   `json:"owner"`
		Alerts []string `json:"alerts"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	c, err := a.opts.Alerts.OpenCase(r.Context(), tenantsOf(id), body.Title, body.Owner, id.Name, body.Alerts)
	if a.alertError(w, err) {
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// caseDetail answers GET /api/v1/cases/{id}: the case and its timeline.
func (a *api) caseDetail(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	c, es, err := a.opts.Alerts.Case(r.Context(), tenantsOf(id), r.PathValue("id"))
	if a.alertError(w, err) {
		return
	}
	if es == nil {
		es = []meta.CaseEntry{}
	}
	writeJSON(w, http.StatusOK, struct {
		meta.Case
		Timeline []meta.CaseEntry `json:"timeline"`
	}{c, es})
}

// addToCase answers POST /api/v1/cases/{id}/timeline with a body
// {"kind": "alert"|"note"|"action"|"export", "ref", "text"}. An alert
// is refused as it is by openCase, and when it is not of the case's
// tenant (409).
func (a *api) addToCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Kind string `json:"kind"`
		Ref  string `json:"ref"`
		Text string `json:"text"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	c, err := a.opts.Alerts.AddToCase(r.Context(), tenantsOf(id), r.PathValue("id"), body.Kind, body.Ref, body.Text, id.Name)
	if a.alertError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// setCase answers POST /api/v1/cases/{id} with a body {"status",
// "owner"}, either or both.
func (a *api) setCase(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Status string `json:"status"`
		Owner  string `json:"owner"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	c, err := a.opts.Alerts.SetCase(r.Context(), tenantsOf(id), r.PathValue("id"), body.Status, body.Owner, id.Name)
	if a.alertError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, c)
}
