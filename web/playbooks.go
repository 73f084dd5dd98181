package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/playbook"
)

// Playbooks is what the API needs of the playbook runner (a
// *playbook.Runner). Calls that read or decide runs carry the caller's
// tenants (nil for every tenant), which the runner applies.
type Playbooks interface {
	Playbooks() []*playbook.Playbook
	Runs(ctx context.Context, q meta.RunQuery) ([]meta.Run, error)
	Run(ctx context.Context, tenants []string, id string) (*meta.Run, error)
	Approve(ctx context.Context, tenants []string, id, actor string) (*meta.Run, error)
	Reject(ctx context.Context, tenants []string, id, actor, reason string) (*meta.Run, error)
	StartFor(ctx context.Context, name string, a *meta.Alert, actor string) (*meta.Run, error)
	Kill(ctx context.Context, on bool, actor string) error
	Killed(ctx context.Context) (meta.Setting, bool, error)
}

// playbookList answers GET /api/v1/playbooks: the playbooks loaded.
func (a *api) playbookList(w http.ResponseWriter, r *http.Request) {
	type step struct {
		Name    string `json:"name"`
		Action  string `json:"action"`
		Mode    string `json:"mode"`
		OnError string `json:"on_error"`
	}
	type pb struct {
		Name        string           `json:"name"`
		Description string           `json:"description,omitempty"`
		File        string           `json:"file"`
		Mode        string           `json:"mode"`
		Trigger     playbook.Trigger `json:"trigger"`
		Steps       []step           `json:"steps"`
	}
	out := []pb{}
	for _, p := range a.opts.Playbooks.Playbooks() {
		x := pb{Name: p.Name, Description: p.Description, File: p.File, Mode: p.Mode, Trigger: p.Trigger}
		for _, s := range p.Steps {
			x.Steps = append(x.Steps, step{s.Name, s.Action, s.Mode, s.OnError})
		}
		out = append(out, x)
	}
	_, on, err := a.opts.Playbooks.Killed(r.Context())
	if err != nil {
		a.opts.Logger.Error("reading the kill switch", "err", err)
	}
	writeJSON(w, http.StatusOK, struct {
		KillSwitch bool `json:"kill_switch"`
		Playbooks  []pb `json:"playbooks"`
	}{on, out})
}

// runs answers GET /api/v1/playbook-runs?status=waiting&playbook=NAME&alert=ID&limit=N
// with the runs the caller's tenants may see, with their steps, most
// recently updated first.
func (a *api) runs(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	q := meta.RunQuery{AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, Playbook: v.Get("playbook"), AlertID: v.Get("alert"), Limit: 100, Steps: true}
	if s := v.Get("status"); s != "" {
		q.Status = strings.Split(s, ",")
	}
	if s := v.Get("limit"); s != "" {
		var err error
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a positive number", s))
			return
		}
	}
	rs, err := a.opts.Playbooks.Runs(r.Context(), q)
	if a.runError(w, err) {
		return
	}
	if rs == nil {
		rs = []meta.Run{}
	}
	writeJSON(w, http.StatusOK, rs)
}

// run answers GET /api/v1/playbook-runs/{id}.
func (a *api) run(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	run, err := a.opts.Playbooks.Run(r.Context(), tenantsOf(id), r.PathValue("id"))
	if a.runError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// decide answers POST /api/v1/playbook-runs/{id}/approve and …/reject
// (with a body {"reason": "…"}): the step the run waits on goes ahead,
// or the run ends.
func (a *api) decide(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var (
		run *meta.Run
		err error
	)
	switch r.PathValue("action") {
	case "approve":
		run, err = a.opts.Playbooks.Approve(r.Context(), tenantsOf(id), r.PathValue("id"), id.Name)
	case "reject":
		run, err = a.opts.Playbooks.Reject(r.Context(), tenantsOf(id), r.PathValue("id"), id.Name, body.Reason)
	default:
		writeError(w, http.StatusNotFound, fmt.Errorf("no action %q: approve or reject", r.PathValue("action")))
		return
	}
	if a.runError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// startRun answers POST /api/v1/playbooks/{name}/run with a body
// {"alert_id": "…"}: a person starts a playbook on an alert they see.
func (a *api) startRun(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		AlertID string `json:"alert_id"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if body.AlertID == "" {
		writeError(w, http.StatusBadRequest, errors.New("alert_id: the alert the playbook acts on is required"))
		return
	}
	al, _, _, err := a.opts.Alerts.AlertDetail(r.Context(), tenantsOf(id), body.AlertID)
	if err == nil && al.Partial {
		// A playbook acts on what the alert names, across every tenant
		// of it: the CSIRT's, who sees them all.
		err = meta.ErrPartial
	}
	if a.alertError(w, err) {
		return
	}
	run, err := a.opts.Playbooks.StartFor(r.Context(), r.PathValue("name"), &al, id.Name)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// killSwitch answers GET and POST /api/v1/playbooks/kill-switch (a body
// {"on": true}): while on, no playbook step acts.
func (a *api) killSwitch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if r.Method == http.MethodPost {
		var body struct {
			On *bool `json:"on"`
		}
		if err := decodeBody(r, &body); err != nil || body.On == nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("want a body {\"on\": true|false}"))
			return
		}
		if err := a.opts.Playbooks.Kill(r.Context(), *body.On, id.Name); a.runError(w, err) {
			return
		}
	}
	s, on, err := a.opts.Playbooks.Killed(r.Context())
	if a.runError(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		On      bool      `json:"on"`
		Actor   string    `json:"actor,omitempty"`
		Updated time.Time `json:"updated,omitzero"`
	}{on, s.Actor, s.Updated})
}

// runError writes the response for an error of the runner, and reports
// whether there was one.
func (a *api) runError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such playbook run"))
	case errors.Is(err, playbook.ErrNotWaiting):
		writeError(w, http.StatusConflict, err)
	default:
		a.opts.Logger.Error("playbooks", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("the playbook runner failed"))
	}
	return true
}
