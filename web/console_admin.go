package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/query"
)

// The console's administration: principals, groups and role bindings,
// API tokens, grants, exports, and the audit trail. Every change is a
// form that goes through the checks the access API makes (mayBind,
// mayMakeToken, mayShare, …), so that the console never decides
// differently from the API who may manage what.

// consoleAdminRoutes serves the console's pages of administration:
// principals, groups, roles, tokens, grants, exports, the audit trail.
func (a *api) consoleAdminRoutes(mux *http.ServeMux) {
	if a.opts.Access == nil {
		return
	}
	page := func(action string, perm access.Permission) route {
		return route{action: action, perm: perm, page: true}
	}
	manage := func(action string) route { return page(action, access.Manage) }
	handle := func(pattern string, h http.HandlerFunc, rt route) { mux.Handle(pattern, a.auth(h, rt)) }

	a.addSection("admin", "Admin", "/admin")
	// The section's first page lets everyone in, to send auditors on to
	// the audit trail and readers on to their exports, the pages of it
	// they may see.
	handle("GET /admin", a.consoleAdmin, route{action: "console.admin", perm: access.Manage, also: []access.Permission{access.ReadAudit, access.Read}, page: true})
	handle("POST /admin/principals", a.consoleCreatePrincipal, manage("principal.create"))
	handle("POST /admin/principals/{id}/password", a.consoleSetPassword, manage("principal.password"))
	handle("POST /admin/principals/{id}/disable", a.consoleDisablePrincipal, manage("principal.disable"))
	handle("POST /admin/groups", a.consoleCreateGroup, manage("group.create"))
	handle("POST /admin/groups/{name}/members", a.consoleAddMember, manage("group.add"))
	handle("POST /admin/groups/{name}/members/{id}/remove", a.consoleRemoveMember, manage("group.remove"))
	handle("POST /admin/bindings", a.consoleBind, manage("role.bind"))
	handle("POST /admin/bindings/remove", a.consoleUnbind, manage("role.unbind"))
	handle("GET /admin/tenants", a.consoleTenants, manage("console.admin.tenants"))
	if _, ok := a.opts.Tokens.(Tokenizer); ok {
		handle("GET /admin/tokens", a.consoleTokens, manage("console.admin.tokens"))
		handle("POST /admin/tokens", a.consoleCreateToken, manage("token.create"))
		handle("POST /admin/tokens/{id}/revoke", a.consoleRevokeToken, manage("token.revoke"))
	}
	handle("GET /admin/grants", a.consoleGrants, manage("console.admin.grants"))
	handle("POST /admin/grants", a.consoleCreateGrant, manage("grant.create"))
	handle("POST /admin/grants/{id}/revoke", a.consoleRevokeGrant, manage("grant.revoke"))
	if a.opts.Exports != nil {
		// Whoever exports sees and revokes their own exports, as the API
		// lets them; administrators those of their tenants too.
		handle("GET /admin/exports", a.consoleExports, page("console.admin.exports", access.Read))
		handle("POST /admin/exports/{id}/revoke", a.consoleRevokeExport, page("export.revoke", access.Read))
	}
	handle("GET /admin/audit", a.consoleAudit, page("console.audit", access.ReadAudit))
}

// An adminTab is a page of the section, in the tabs atop each.
type adminTab struct {
	Name, Path string
	Current    bool
}

// adminTabs are the section's pages the caller may open.
func (a *api) adminTabs(id Identity, current string) []adminTab {
	var tabs []adminTab
	add := func(name, path string) {
		tabs = append(tabs, adminTab{Name: name, Path: path, Current: path == current})
	}
	if id.Can(access.Manage) {
		add("Principals and roles", "/admin")
		add("Tenants", "/admin/tenants")
		if _, ok := a.opts.Tokens.(Tokenizer); ok {
			add("API tokens", "/admin/tokens")
		}
		add("Grants", "/admin/grants")
	}
	if a.opts.Exports != nil && id.Can(access.Read) {
		add("Exports", "/admin/exports")
	}
	if id.Can(access.ReadAudit) {
		add("Audit trail", "/admin/audit")
	}
	return tabs
}

// adminDone says what a change did, from the code its redirect carries
// (never text from the request, which a crafted link would show).
var adminDone = map[string]string{
	"principal":  "Principal created.",
	"password":   "Password set.",
	"disabled":   "Principal disabled: it can no longer log in, and its tokens and sessions stop working.",
	"group":      "Group created.",
	"member":     "Member added.",
	"unmember":   "Member removed.",
	"bound":      "Role bound.",
	"unbound":    "Role unbound.",
	"revoked":    "Token revoked.",
	"grant":      "Grant created.",
	"ungranted":  "Grant revoked.",
	"unexported": "Export revoked: its link no longer opens it, and its bundle is deleted.",
}

// adminRedirect sends the browser back to a page of the section after a
// change, saying what it did.
func adminRedirect(w http.ResponseWriter, r *http.Request, path, done string) {
	seeOther(w, r, path+"?done="+url.QueryEscape(done))
}

// accessFailure is what a page says of an error of the access layer:
// its own words when they are about the request (a name not valid, a
// principal not found), a plain failure, logged, otherwise.
func (a *api) accessFailure(err error) (int, string) {
	if errors.Is(err, access.ErrNotFound) {
		return http.StatusNotFound, "Not found: " + err.Error()
	}
	a.opts.Logger.Error("console: access", "err", err)
	return http.StatusInternalServerError, "The access layer failed."
}

// adminBody is the data of /admin: principals, groups, bindings.
type adminBody struct {
	Tabs        []adminTab
	Done, Error string
	// Installation says the caller manages every tenant, and so
	// principals and groups.
	Installation bool
	// Self is the caller's principal id, who may set its own password.
	Self       string
	Principals []access.Principal
	Groups     []access.Group
	Bindings   []adminBinding
	Roles      []access.Role
	// Tenants are those where the caller may bind roles.
	Tenants []string
}

// An adminBinding is a binding with its subject's name.
type adminBinding struct {
	access.SubjectBinding
	Name string
}

// consoleAdmin answers GET /admin.
func (a *api) consoleAdmin(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !id.Can(access.Manage) {
		// An auditor's part of the section is the trail; a reader's,
		// their exports.
		next := "/admin/audit"
		if !id.Can(access.ReadAudit) {
			if a.opts.Exports == nil {
				a.consoleError(w, r, http.StatusForbidden, "You may not manage access: no role of yours allows it.")
				return
			}
			next = "/admin/exports"
		}
		seeOther(w, r, next)
		return
	}
	a.adminPage(w, r, http.StatusOK, adminDone[r.URL.Query().Get("done")], "")
}

// adminPage renders /admin, with the outcome of a change if any: a
// change that fails shows the page again with why, without a redirect,
// so that the message never travels in a URL.
func (a *api) adminPage(w http.ResponseWriter, r *http.Request, status int, done, failure string) {
	id, _ := IdentityFrom(r.Context())
	ctx := r.Context()
	b := &adminBody{Tabs: a.adminTabs(id, "/admin"), Done: done, Error: failure, Installation: manageInstallation(id) == nil,
		Self: id.Principal, Roles: access.Roles(), Tenants: manageableTenants(id)}
	var err error
	if b.Principals, err = a.opts.Access.Principals(ctx); err == nil {
		if b.Groups, err = a.opts.Access.Groups(ctx); err == nil {
			var bs []access.SubjectBinding
			if bs, err = a.opts.Access.Bindings(ctx); err == nil {
				names := map[access.Subject]string{}
				for _, p := range b.Principals {
					names[access.PrincipalSubject(p.ID)] = p.Name
				}
				for _, sb := range bs {
					if !bindingVisible(id, sb) {
						continue
					}
					name, ok := names[sb.Subject]
					if !ok {
						name = strings.TrimPrefix(string(sb.Subject), "group:")
					}
					b.Bindings = append(b.Bindings, adminBinding{SubjectBinding: sb, Name: name})
				}
			}
		}
	}
	if err != nil {
		a.opts.Logger.Error("console: reading the directory", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the directory failed.")
		return
	}
	a.render(w, r, status, "admin", &consolePage{Title: "Admin", Nav: "admin", Body: b})
}

// manageableTenants are the tenants where id manages access, "*" first
// for an administrator of every tenant.
func manageableTenants(id Identity) []string {
	s := id.Identity.Scope(access.Manage)
	var out []string
	if s.All {
		out = append(out, access.AllTenants)
	}
	ts := slices.Clone(s.Tenants)
	slices.Sort(ts)
	return append(out, ts...)
}

// adminRefuse shows /admin again with why a change was refused or failed.
func (a *api) adminRefuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	a.adminPage(w, r, status, "", err.Error())
}

// adminAccessFailure shows /admin again after an error of the access layer.
func (a *api) adminAccessFailure(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := a.accessFailure(err)
	a.adminPage(w, r, status, "", msg)
}

// consoleCreatePrincipal answers POST /admin/principals: name, kind,
// display and, for a user, an optional password.
func (a *api) consoleCreatePrincipal(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	if err := manageInstallation(id); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	f := r.PostForm
	kind := f.Get("kind")
	if kind == "" {
		kind = access.User
	}
	p, err := a.opts.Access.CreatePrincipal(r.Context(), f.Get("name"), kind, f.Get("display"))
	if err != nil {
		a.adminRefuse(w, r, http.StatusBadRequest, err)
		return
	}
	auditRecord(r.Context()).Target = "principal:" + p.ID
	if pw := f.Get("password"); pw != "" {
		if err := a.opts.Access.SetPassword(r.Context(), p.ID, pw); err != nil {
			a.adminRefuse(w, r, http.StatusBadRequest, fmt.Errorf("created %s, but its password: %w", p.Name, err))
			return
		}
	}
	adminRedirect(w, r, "/admin", "principal")
}

// consoleSetPassword answers POST /admin/principals/{id}/password.
func (a *api) consoleSetPassword(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	target := r.PathValue("id")
	auditRecord(r.Context()).Target = "principal:" + target
	if !a.consoleForm(w, r) {
		return
	}
	if err := maySetPassword(id, target); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	if err := a.opts.Access.SetPassword(r.Context(), target, r.PostForm.Get("password")); err != nil {
		if errors.Is(err, access.ErrNotFound) {
			a.adminAccessFailure(w, r, err)
			return
		}
		// A password too short or too common: the directory says which.
		a.adminRefuse(w, r, http.StatusBadRequest, err)
		return
	}
	adminRedirect(w, r, "/admin", "password")
}

// consoleDisablePrincipal answers POST /admin/principals/{id}/disable.
func (a *api) consoleDisablePrincipal(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	auditRecord(r.Context()).Target = "principal:" + r.PathValue("id")
	if !a.consoleForm(w, r) {
		return
	}
	if err := manageInstallation(id); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	if err := a.opts.Access.Disable(r.Context(), r.PathValue("id")); err != nil {
		a.adminAccessFailure(w, r, err)
		return
	}
	adminRedirect(w, r, "/admin", "disabled")
}

// consoleCreateGroup answers POST /admin/groups: name, description.
func (a *api) consoleCreateGroup(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	name := r.PostForm.Get("name")
	auditRecord(r.Context()).Target = "group:" + name
	if err := manageInstallation(id); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	if err := a.opts.Access.CreateGroup(r.Context(), name, r.PostForm.Get("description")); err != nil {
		a.adminRefuse(w, r, http.StatusBadRequest, err)
		return
	}
	adminRedirect(w, r, "/admin", "group")
}

// consoleAddMember answers POST /admin/groups/{name}/members with the
// principal's name or id.
func (a *api) consoleAddMember(w http.ResponseWriter, r *http.Request) {
	if !a.consoleForm(w, r) {
		return
	}
	a.consoleMember(w, r, r.PostForm.Get("principal"), "member", a.opts.Access.AddMember)
}

// consoleRemoveMember answers POST /admin/groups/{name}/members/{id}/remove.
func (a *api) consoleRemoveMember(w http.ResponseWriter, r *http.Request) {
	if !a.consoleForm(w, r) {
		return
	}
	a.consoleMember(w, r, r.PathValue("id"), "unmember", a.opts.Access.RemoveMember)
}

func (a *api) consoleMember(w http.ResponseWriter, r *http.Request, principal, done string, change func(ctx context.Context, group, principal string) error) {
	id, _ := IdentityFrom(r.Context())
	if err := manageInstallation(id); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	p, err := a.opts.Access.Principal(r.Context(), principal)
	if err != nil {
		a.adminAccessFailure(w, r, err)
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "group:"+r.PathValue("name"), "principal:"+p.ID
	if err := change(r.Context(), r.PathValue("name"), p.ID); err != nil {
		a.adminAccessFailure(w, r, err)
		return
	}
	adminRedirect(w, r, "/admin", done)
}

// consoleBind answers POST /admin/bindings: a subject (kind and name,
// or subject as the list's rows send it), a tenant and a role.
func (a *api) consoleBind(w http.ResponseWriter, r *http.Request) {
	a.consoleBinding(w, r, "bound", a.opts.Access.Bind)
}

// consoleUnbind answers POST /admin/bindings/remove, as consoleBind.
func (a *api) consoleUnbind(w http.ResponseWriter, r *http.Request) {
	a.consoleBinding(w, r, "unbound", a.opts.Access.Unbind)
}

func (a *api) consoleBinding(w http.ResponseWriter, r *http.Request, done string, change func(context.Context, access.Subject, access.Binding) error) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	f := r.PostForm
	b := access.Binding{Tenant: f.Get("tenant"), Role: access.Role(f.Get("role"))}
	subject := f.Get("subject")
	rec := auditRecord(r.Context())
	rec.Tenants, rec.Target, rec.Detail = []string{b.Tenant}, subject, string(b.Role)
	if err := mayBind(id, b.Tenant); err != nil {
		a.adminRefuse(w, r, http.StatusForbidden, err)
		return
	}
	if kind := f.Get("kind"); kind != "" {
		s, err := a.subjectRef(r.Context(), kind, f.Get("name"))
		if err != nil {
			a.adminRefuse(w, r, http.StatusBadRequest, err)
			return
		}
		subject = s
		rec.Target = s
	}
	if err := change(r.Context(), access.Subject(subject), b); err != nil {
		if errors.Is(err, access.ErrNotFound) {
			a.adminAccessFailure(w, r, err)
			return
		}
		a.adminRefuse(w, r, http.StatusBadRequest, err)
		return
	}
	adminRedirect(w, r, "/admin", done)
}

// subjectRef is what a form's kind and name refer to, as bindings and
// grants name it: a principal, typed by its name, by its id.
func (a *api) subjectRef(ctx context.Context, kind, name string) (string, error) {
	switch kind {
	case "principal":
		p, err := a.opts.Access.Principal(ctx, name)
		if err != nil {
			return "", fmt.Errorf("no principal %q", name)
		}
		return "principal:" + p.ID, nil
	case "group", "tenant":
		return kind + ":" + name, nil
	}
	return "", fmt.Errorf("%q is not principal, group or tenant", kind)
}

// adminTokensBody is the data of /admin/tokens.
type adminTokensBody struct {
	Tabs         []adminTab
	Done, Error  string
	Installation bool
	Tokens       []adminToken
	// Principals are those the caller may make tokens for: every one
	// for an administrator of every tenant, else itself.
	Principals []access.Principal
	Roles      []access.Role
	Tenants    []string
	// Secret and Made are the token just made: the one page that shows
	// its secret, which is never stored.
	Secret string
	Made   *access.Token
}

// An adminToken is a token as listed: with the name of its principal
// and its state.
type adminToken struct {
	access.Token
	PrincipalName string
	State         string // active, expired, revoked
}

// consoleTokens answers GET /admin/tokens.
func (a *api) consoleTokens(w http.ResponseWriter, r *http.Request) {
	a.tokensPage(w, r, http.StatusOK, &adminTokensBody{Done: adminDone[r.URL.Query().Get("done")]})
}

func (a *api) tokensPage(w http.ResponseWriter, r *http.Request, status int, b *adminTokensBody) {
	id, _ := IdentityFrom(r.Context())
	ts := a.opts.Tokens.(Tokenizer)
	b.Tabs, b.Installation, b.Roles = a.adminTabs(id, "/admin/tokens"), manageInstallation(id) == nil, access.Roles()
	b.Tenants = manageableTenants(id)
	if b.Installation && len(b.Tenants) > 0 && b.Tenants[0] == access.AllTenants {
		// A token with a role of its own in every tenant has no tenant.
		b.Tenants[0] = ""
	}
	all, err := ts.List(r.Context())
	var ps []access.Principal
	if err == nil {
		ps, err = a.opts.Access.Principals(r.Context())
	}
	if err != nil {
		a.opts.Logger.Error("console: reading tokens", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the tokens failed.")
		return
	}
	names := map[string]string{}
	for _, p := range ps {
		names[p.ID] = p.Name
		if (b.Installation || p.ID == id.Principal) && p.Disabled.IsZero() {
			b.Principals = append(b.Principals, p)
		}
	}
	now := a.opts.Now()
	for _, t := range all {
		if !tokenManaged(id, t) {
			continue
		}
		b.Tokens = append(b.Tokens, adminToken{Token: t, PrincipalName: names[t.Principal], State: lifeState(t.Revoked, t.Expires, now)})
	}
	a.render(w, r, status, "admin_tokens", &consolePage{Title: "API tokens", Nav: "admin", Body: b})
}

// consoleCreateToken answers POST /admin/tokens: name, days, and either
// a principal (its id) or a tenant and a role. The page it answers with
// shows the secret, once: it is not stored, and no redirect carries it.
func (a *api) consoleCreateToken(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	f := r.PostForm
	spec := access.Spec{Name: f.Get("name"), Principal: f.Get("principal")}
	if spec.Principal == "" {
		spec.Tenant, spec.Role = f.Get("tenant"), access.Role(f.Get("role"))
	}
	if err := mayMakeToken(id, spec.Principal, spec.Tenant); err != nil {
		a.tokensPage(w, r, http.StatusForbidden, &adminTokensBody{Error: err.Error()})
		return
	}
	days, _ := strconv.Atoi(f.Get("days"))
	var err error
	if spec.Expires, err = tokenExpiry(a.opts.Now(), days); err != nil {
		a.tokensPage(w, r, http.StatusBadRequest, &adminTokensBody{Error: err.Error()})
		return
	}
	secret, tok, err := a.opts.Tokens.(Tokenizer).Create(r.Context(), spec)
	if err != nil {
		a.tokensPage(w, r, http.StatusBadRequest, &adminTokensBody{Error: err.Error()})
		return
	}
	auditToken(r.Context(), tok)
	a.tokensPage(w, r, http.StatusCreated, &adminTokensBody{Secret: secret, Made: &tok})
}

// consoleRevokeToken answers POST /admin/tokens/{id}/revoke.
func (a *api) consoleRevokeToken(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ts := a.opts.Tokens.(Tokenizer)
	tid := r.PathValue("id")
	auditRecord(r.Context()).Target = "token:" + tid
	all, err := ts.List(r.Context())
	if err == nil {
		i := slices.IndexFunc(all, func(t access.Token) bool { return t.ID == tid })
		if i < 0 || !tokenManaged(id, all[i]) {
			a.notFoundPage(w, r, "such token among those you manage")
			return
		}
		err = ts.Revoke(r.Context(), tid)
	}
	if err != nil {
		status, msg := a.accessFailure(err)
		a.tokensPage(w, r, status, &adminTokensBody{Error: msg})
		return
	}
	adminRedirect(w, r, "/admin/tokens", "revoked")
}

// adminGrantsBody is the data of /admin/grants.
type adminGrantsBody struct {
	Tabs        []adminTab
	Done, Error string
	Grants      []adminGrant
	// Owners are the tenants whose events the caller may share; an
	// administrator of every tenant types any (AnyOwner).
	Owners   []string
	AnyOwner bool
	Form     grantForm
}

// An adminGrant is a grant as listed.
type adminGrant struct {
	access.Grant
	State     string // active, expired, revoked
	CanRevoke bool
}

// grantForm is the grant form's fields, kept when it fails.
type grantForm struct {
	Owner, GranteeKind, Grantee, Filter, From, To, Redact, Days, Reason string
}

// consoleGrants answers GET /admin/grants.
func (a *api) consoleGrants(w http.ResponseWriter, r *http.Request) {
	a.grantsPage(w, r, http.StatusOK, &adminGrantsBody{Done: adminDone[r.URL.Query().Get("done")], Form: grantForm{GranteeKind: "principal", Days: "30"}})
}

func (a *api) grantsPage(w http.ResponseWriter, r *http.Request, status int, b *adminGrantsBody) {
	id, _ := IdentityFrom(r.Context())
	b.Tabs = a.adminTabs(id, "/admin/grants")
	for _, t := range manageableTenants(id) {
		if t == access.AllTenants {
			b.AnyOwner = true
		} else {
			b.Owners = append(b.Owners, t)
		}
	}
	gs, err := a.grantsOf(r.Context(), id)
	if err != nil {
		a.opts.Logger.Error("console: reading grants", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the grants failed.")
		return
	}
	now := a.opts.Now()
	for _, g := range gs {
		state := lifeState(g.Revoked, g.Expires, now)
		b.Grants = append(b.Grants, adminGrant{Grant: g, State: state, CanRevoke: state == "active" && grantManaged(id, g)})
	}
	a.render(w, r, status, "admin_grants", &consolePage{Title: "Grants", Nav: "admin", Body: b})
}

// consoleCreateGrant answers POST /admin/grants: owner, grantee_kind
// and grantee, filter, from, to, redact (fields, comma-separated),
// days and reason.
func (a *api) consoleCreateGrant(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !a.consoleForm(w, r) {
		return
	}
	f := r.PostForm
	form := grantForm{Owner: f.Get("owner"), GranteeKind: f.Get("grantee_kind"), Grantee: f.Get("grantee"), Filter: f.Get("filter"),
		From: f.Get("from"), To: f.Get("to"), Redact: f.Get("redact"), Days: f.Get("days"), Reason: f.Get("reason")}
	fail := func(status int, err error) {
		a.grantsPage(w, r, status, &adminGrantsBody{Error: err.Error(), Form: form})
	}
	rec := auditRecord(r.Context())
	rec.Tenants = []string{form.Owner}
	if err := mayShare(id, form.Owner); err != nil {
		fail(http.StatusForbidden, err)
		return
	}
	now := a.opts.Now()
	g := access.Grant{Owner: form.Owner, Filter: form.Filter, Reason: form.Reason, CreatedBy: id.Name, Redact: []string{}}
	var err error
	if g.Grantee, err = a.subjectRef(r.Context(), form.GranteeKind, strings.TrimSpace(form.Grantee)); err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	if g.From, g.To, err = timeRange(url.Values{"from": {form.From}, "to": {form.To}}, now); err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	for _, field := range strings.Split(form.Redact, ",") {
		if field = strings.TrimSpace(field); field != "" {
			g.Redact = append(g.Redact, field)
		}
	}
	days, err := strconv.Atoi(form.Days)
	if err != nil || days <= 0 {
		fail(http.StatusBadRequest, errors.New("days: a grant expires, in a number of days"))
		return
	}
	g.Expires = now.Add(time.Duration(days) * 24 * time.Hour)
	if g, err = a.opts.Access.CreateGrant(r.Context(), g); err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	rec.Target, rec.Detail = "grant:"+g.ID, grantDetail(g)
	adminRedirect(w, r, "/admin/grants", "grant")
}

// consoleRevokeGrant answers POST /admin/grants/{id}/revoke.
func (a *api) consoleRevokeGrant(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	gid := r.PathValue("id")
	rec := auditRecord(r.Context())
	rec.Target = "grant:" + gid
	g, err := a.opts.Access.Grant(r.Context(), gid)
	if err != nil || !grantManaged(id, g) {
		a.notFoundPage(w, r, "such grant among those you manage")
		return
	}
	rec.Tenants = []string{g.Owner}
	if err := a.opts.Access.RevokeGrant(r.Context(), g.ID, id.Name); err != nil {
		status, msg := a.accessFailure(err)
		a.grantsPage(w, r, status, &adminGrantsBody{Error: msg})
		return
	}
	adminRedirect(w, r, "/admin/grants", "ungranted")
}

// adminExportsBody is the data of /admin/exports.
type adminExportsBody struct {
	Tabs        []adminTab
	Done, Error string
	Exports     []adminExport
}

// An adminExport is an export as listed.
type adminExport struct {
	exportAnswer
	State     string // active, expired, revoked
	CanRevoke bool
}

// consoleExports answers GET /admin/exports: the exports the caller
// sees, as GET /api/v1/exports lists them, with their links.
func (a *api) consoleExports(w http.ResponseWriter, r *http.Request) {
	a.exportsPage(w, r, http.StatusOK, &adminExportsBody{Done: adminDone[r.URL.Query().Get("done")]})
}

func (a *api) exportsPage(w http.ResponseWriter, r *http.Request, status int, b *adminExportsBody) {
	id, _ := IdentityFrom(r.Context())
	b.Tabs = a.adminTabs(id, "/admin/exports")
	es, err := a.exportsOf(r.Context(), id)
	if err != nil {
		a.opts.Logger.Error("console: reading exports", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the exports failed.")
		return
	}
	now := a.opts.Now()
	for _, e := range es {
		state := lifeState(e.Revoked, e.Expires, now)
		b.Exports = append(b.Exports, adminExport{exportAnswer: e, State: state, CanRevoke: state == "active" && exportRevocable(id, e.Export)})
	}
	a.render(w, r, status, "admin_exports", &consolePage{Title: "Exports", Nav: "admin", Body: b})
}

// consoleRevokeExport answers POST /admin/exports/{id}/revoke.
func (a *api) consoleRevokeExport(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	xid := r.PathValue("id")
	auditRecord(r.Context()).Target = "export:" + xid
	switch err := a.revokeExportAs(r.Context(), id, xid); {
	case errors.Is(err, access.ErrNotFound):
		a.notFoundPage(w, r, "such export")
	case errors.Is(err, errNotRevoker):
		a.exportsPage(w, r, http.StatusForbidden, &adminExportsBody{Error: err.Error()})
	case err != nil:
		status, msg := a.accessFailure(err)
		a.exportsPage(w, r, status, &adminExportsBody{Error: msg})
	default:
		adminRedirect(w, r, "/admin/exports", "unexported")
	}
}

// auditBody is the audit viewer's data.
type auditBody struct {
	Tabs                             []adminTab
	Action, Actor, Outcome, From, To string
	Error                            string
	Records                          []auditRow
	Limit                            int
	Search                           string // the same records on the search page
	// Older is the page of the records before these, when there may be
	// more than one page.
	Older string
}

// An auditRow is a record of the trail, with its event's page.
type auditRow struct {
	access.Record
	Link string
}

// auditLimit bounds the records the viewer lists.
const auditLimit = 500

// consoleAudit answers GET /admin/audit?action=&actor=&outcome=&from=&to=:
// the audit trail's records the caller may read, newest first. The
// trail is the system tenant's events, read with the caller's scope of
// ReadAudit: all of it for an auditor of every tenant, the records of
// actions in its tenants for an auditor of some.
func (a *api) consoleAudit(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &auditBody{Tabs: a.adminTabs(id, "/admin/audit"), Action: v.Get("action"), Actor: v.Get("actor"), Outcome: v.Get("outcome"),
		From: v.Get("from"), To: v.Get("to"), Limit: auditLimit}
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 && n < auditLimit {
		b.Limit = n
	}
	if !v.Has("from") {
		b.From = "-24h"
	}
	render := func(status int) {
		a.render(w, r, status, "admin_audit", &consolePage{Title: "Audit trail", Nav: "admin", Body: b})
	}
	terms := []string{"source:" + query.Quote(access.AuditSource)}
	if b.Action != "" {
		terms = append(terms, "action:"+query.Quote(b.Action))
	}
	if b.Actor != "" {
		terms = append(terms, "actor:"+query.Quote(b.Actor))
	}
	switch b.Outcome {
	case "":
	case "success", "failure":
		terms = append(terms, "outcome:"+b.Outcome)
	default:
		b.Error = "Outcome: success or failure."
		render(http.StatusBadRequest)
		return
	}
	text := strings.Join(terms, " ")
	from, to, err := timeRange(url.Values{"from": {b.From}, "to": {b.To}}, a.opts.Now())
	if err != nil {
		b.Error = err.Error()
		render(http.StatusBadRequest)
		return
	}
	b.Search = searchParams{q: text, from: b.From, to: b.To}.url()
	q, err := query.Parse(text)
	if err != nil {
		b.Error = err.Error()
		render(http.StatusBadRequest)
		return
	}
	res, err := a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: id.Identity.Scope(access.ReadAudit), From: from, To: to, Limit: b.Limit})
	if err != nil {
		a.opts.Logger.Error("console: reading the audit trail", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the audit trail failed.")
		return
	}
	b.Records = auditRows(res.Columns, res.Rows)
	if n := len(b.Records); n > 0 && n == b.Limit {
		// The next page ends where this one does: the records older
		// than its oldest.
		older := url.Values{"action": {b.Action}, "actor": {b.Actor}, "outcome": {b.Outcome}, "from": {b.From},
			"to": {b.Records[n-1].Time.UTC().Format(time.RFC3339Nano)}}
		if b.Limit != auditLimit {
			older.Set("limit", strconv.Itoa(b.Limit))
		}
		b.Older = "/admin/audit?" + older.Encode()
	}
	render(http.StatusOK)
}

// auditRows reads the records of a search of the trail from their raw
// documents, which are the records as written.
func auditRows(cols []string, rows [][]any) []auditRow {
	seqCol, rawCol := slices.Index(cols, "seq"), slices.Index(cols, "raw")
	if rawCol < 0 {
		return nil
	}
	var out []auditRow
	for _, row := range rows {
		var raw []byte
		switch x := row[rawCol].(type) {
		case string:
			raw = []byte(x)
		case []byte:
			raw = x
		}
		var rec access.Record
		if json.Unmarshal(raw, &rec) != nil {
			continue
		}
		ar := auditRow{Record: rec}
		if seqCol >= 0 {
			ar.Link = "/events/" + fmt.Sprint(row[seqCol])
		}
		out = append(out, ar)
	}
	return out
}

// lifeState says where a grant, an export or a token is in its life at
// now: active, revoked, or expired. A zero expiry (a token's) never
// comes.
func lifeState(revoked, expires, now time.Time) string {
	switch {
	case !revoked.IsZero():
		return "revoked"
	case !expires.IsZero() && !now.Before(expires):
		return "expired"
	}
	return "active"
}
