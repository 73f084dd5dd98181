package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
)

// accessRoutes serves login and logout, the caller's own identity,
// break-glass access, grants, and the administration of principals,
// groups, bindings and tokens.
func (a *api) accessRoutes(mux *http.ServeMux) {
	self := func(action string) route { return route{action: action, anyone: true} }
	manage := func(action string) route { return route{action: action, perm: access.Manage} }
	mux.HandleFunc("POST /api/v1/login", a.login)
	a.oidcRoutes(mux, a.opts.OIDC)
	mux.Handle("POST /api/v1/logout", a.auth(http.HandlerFunc(a.logout), self("logout")))
	mux.Handle("GET /api/v1/whoami", a.auth(http.HandlerFunc(a.whoami), self("whoami")))
	mux.Handle("POST /api/v1/break-glass", a.auth(http.HandlerFunc(a.breakGlass), self("break-glass")))
	mux.Handle("DELETE /api/v1/break-glass", a.auth(http.HandlerFunc(a.endBreakGlass), self("break-glass.end")))

	mux.Handle("GET /api/v1/grants", a.auth(http.HandlerFunc(a.grants), self("grant.list")))
	mux.Handle("POST /api/v1/grants", a.auth(http.HandlerFunc(a.createGrant), manage("grant.create")))
	mux.Handle("DELETE /api/v1/grants/{id}", a.auth(http.HandlerFunc(a.revokeGrant), manage("grant.revoke")))

	mux.Handle("GET /api/v1/access/principals", a.auth(http.HandlerFunc(a.principals), manage("principal.list")))
	mux.Handle("POST /api/v1/access/principals", a.auth(http.HandlerFunc(a.createPrincipal), manage("principal.create")))
	mux.Handle("POST /api/v1/access/principals/{id}/password", a.auth(http.HandlerFunc(a.setPassword), self("principal.password")))
	mux.Handle("POST /api/v1/access/principals/{id}/disable", a.auth(http.HandlerFunc(a.disablePrincipal), manage("principal.disable")))
	mux.Handle("GET /api/v1/access/groups", a.auth(http.HandlerFunc(a.groups), manage("group.list")))
	mux.Handle("POST /api/v1/access/groups", a.auth(http.HandlerFunc(a.createGroup), manage("group.create")))
	mux.Handle("POST /api/v1/access/groups/{name}/members", a.auth(http.HandlerFunc(a.addMember), manage("group.add")))
	mux.Handle("DELETE /api/v1/access/groups/{name}/members/{id}", a.auth(http.HandlerFunc(a.removeMember), manage("group.remove")))
	mux.Handle("GET /api/v1/access/bindings", a.auth(http.HandlerFunc(a.bindings), manage("role.list")))
	mux.Handle("POST /api/v1/access/bindings", a.auth(http.HandlerFunc(a.bind), manage("role.bind")))
	mux.Handle("DELETE /api/v1/access/bindings", a.auth(http.HandlerFunc(a.unbind), manage("role.unbind")))
	mux.Handle("GET /api/v1/access/tokens", a.auth(http.HandlerFunc(a.tokens), manage("token.list")))
	mux.Handle("POST /api/v1/access/tokens", a.auth(http.HandlerFunc(a.createToken), self("token.create")))
	mux.Handle("DELETE /api/v1/access/tokens/{id}", a.auth(http.HandlerFunc(a.revokeToken), manage("token.revoke")))
}

// Tokenizer is what the API needs of the token store to make and revoke
// tokens.
type Tokenizer interface {
	Authenticator
	Create(ctx context.Context, spec access.Spec) (string, access.Token, error)
	List(ctx context.Context) ([]access.Token, error)
	Revoke(ctx context.Context, id string) error
}

// login answers POST /api/v1/login {"name", "password"}: a console
// session, in an HttpOnly, Secure, SameSite=Strict cookie, and the CSRF
// token its changes carry. Failures are alike whatever failed, counted
// per name and per address, and audited.
func (a *api) login(w http.ResponseWriter, r *http.Request) {
	remote := remoteIP(r)
	rec := &access.Record{Time: a.opts.Now(), Action: "login", Kind: "anonymous", Remote: remote, UserAgent: r.UserAgent(), Method: r.Method, Path: r.URL.Path}
	if ok, wait := a.ipLimit.Allow(remote); !ok {
		tooMany(w, wait, "too many requests from your address")
		return
	}
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := decodeBody(r, &body); err != nil || body.Name == "" {
		writeError(w, http.StatusBadRequest, errors.New(`body: want {"name": …, "password": …}`))
		return
	}
	rec.Actor = body.Name
	p, ref := a.checkLogin(r.Context(), rec, body.Name, body.Password)
	if ref != nil {
		if ref.status == http.StatusTooManyRequests {
			tooMany(w, ref.wait, ref.msg)
		} else {
			writeError(w, ref.status, errors.New(ref.msg))
		}
		return
	}
	a.startSession(w, r, p, "password", rec)
}

// A loginRefusal is why a login was refused: the status to answer
// with, the message, and how long a lockout lasts.
type loginRefusal struct {
	status int
	msg    string
	wait   time.Duration
}

// checkLogin checks a name and password, under the lockouts of names and
// addresses (five failures lock either), for the API's login and the
// console's. A refusal is audited in rec, whose actor and address are
// set; a success is left to the session that follows.
func (a *api) checkLogin(ctx context.Context, rec *access.Record, name, password string) (access.Principal, *loginRefusal) {
	for _, key := range []string{"name " + name, "addr " + rec.Remote} {
		if locked, wait := a.badLogin.Locked(key); locked {
			rec.Status, rec.Detail = http.StatusTooManyRequests, "refused: locked out"
			a.audit(ctx, rec)
			return access.Principal{}, &loginRefusal{http.StatusTooManyRequests, "too many failed logins; try again later", wait}
		}
	}
	p, err := a.opts.Access.CheckPassword(ctx, name, password)
	if err != nil {
		status := http.StatusUnauthorized
		if !errors.Is(err, access.ErrBadLogin) {
			a.opts.Logger.Error("checking a password", "err", err)
			status = http.StatusInternalServerError
		}
		a.badLogin.Failed("name " + name)
		a.badLogin.Failed("addr " + rec.Remote)
		rec.Status, rec.Detail = status, "wrong name or password"
		a.audit(ctx, rec)
		return access.Principal{}, &loginRefusal{status, access.ErrBadLogin.Error(), 0}
	}
	a.badLogin.Succeeded("name " + name)
	return p, nil
}

// startSession logs p in: the session cookie, and the identity with the
// CSRF token as the answer.
func (a *api) startSession(w http.ResponseWriter, r *http.Request, p access.Principal, method string, rec *access.Record) {
	secret, s, err := a.opts.Access.StartSession(r.Context(), p.ID, method)
	if err == nil {
		var id access.Identity
		if id, err = a.opts.Access.Resolve(r.Context(), p.ID); err == nil {
			setSessionCookie(w, secret, s.Expires)
			writeJSON(w, http.StatusOK, map[string]any{"identity": id, "csrf": s.CSRF, "expires": s.Expires})
			rec.Principal, rec.Kind, rec.Credential, rec.Status, rec.Detail = p.ID, "principal", "session "+s.ID, http.StatusOK, method
			a.audit(r.Context(), rec)
			return
		}
	}
	a.opts.Logger.Error("starting a session", "err", err)
	writeError(w, http.StatusInternalServerError, errors.New("starting the session failed"))
	rec.Status = http.StatusInternalServerError
	a.audit(r.Context(), rec)
}

// setSessionCookie sets a console session's cookie: out of scripts'
// reach, over HTTPS (or to localhost) only, and never sent on a request
// another site starts, which is half of the CSRF defence.
func setSessionCookie(w http.ResponseWriter, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", Expires: expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := a.opts.Access.EndSession(r.Context(), c.Value); err != nil {
			a.opts.Logger.Error("ending a session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

// whoami answers with the caller's identity: roles, groups, the grants
// shared with it and its elevation; and, to a console session, its CSRF
// token, which a page logged in through OIDC has no other way to learn.
// Only a page of vigil's own origin reads the answer.
func (a *api) whoami(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	type share struct {
		Grant  string   `json:"grant"`
		Tenant string   `json:"tenant"`
		Filter string   `json:"filter,omitempty"`
		Redact []string `json:"redact,omitempty"`
	}
	shares := []share{}
	for _, sh := range id.Shares {
		s := share{Grant: sh.Grant, Tenant: sh.Tenant, Redact: sh.Redact}
		if sh.Filter != nil {
			s.Filter = sh.Filter.String()
		}
		shares = append(shares, s)
	}
	answer := map[string]any{"identity": id.Identity, "shares": shares}
	if c, err := r.Cookie(sessionCookie); err == nil && strings.HasPrefix(id.Credential, "session ") {
		if s, err := a.opts.Access.Session(r.Context(), c.Value); err == nil {
			answer["csrf"] = s.CSRF
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

func (a *api) breakGlass(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body struct {
		Role    access.Role `json:"role"`
		Reason  string      `json:"reason"`
		Minutes int         `json:"minutes"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if id.Principal == "" {
		writeError(w, http.StatusForbidden, errors.New("break-glass access is for principals, not for tokens with roles of their own"))
		return
	}
	if body.Role == "" {
		body.Role = access.Admin
	}
	if body.Minutes == 0 {
		body.Minutes = 60
	}
	rec := auditRecord(r.Context())
	rec.Detail = fmt.Sprintf("role %s for %d minutes: %s", body.Role, body.Minutes, body.Reason)
	e, err := a.opts.Access.Elevate(r.Context(), id.Principal, body.Role, body.Reason, time.Duration(body.Minutes)*time.Minute)
	if err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	rec.Target, rec.Elevated = "elevation:"+e.ID, e.ID
	if a.opts.OnElevate != nil {
		a.opts.OnElevate(context.WithoutCancel(r.Context()), e, id.Name)
	}
	writeJSON(w, http.StatusOK, e)
}

func (a *api) endBreakGlass(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if err := a.opts.Access.EndElevation(r.Context(), id.Principal); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ended"})
}

// grants answers GET /api/v1/grants: the grants of the tenants the
// caller manages (owners see what they shared), and those shared with
// the caller.
func (a *api) grants(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	out, err := a.grantsOf(r.Context(), id)
	if err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// grantsOf returns the grants id sees: those of the tenants it manages,
// and those shared with it. The API and the console list the same.
func (a *api) grantsOf(ctx context.Context, id Identity) ([]access.Grant, error) {
	managed := id.Identity.Scope(access.Manage)
	var owners []string
	if !managed.All {
		owners = append([]string{}, managed.Tenants...)
	}
	gs, err := a.opts.Access.Grants(ctx, owners)
	if err != nil {
		return nil, err
	}
	out := []access.Grant{}
	seen := map[string]bool{}
	for _, g := range gs {
		out, seen[g.ID] = append(out, g), true
	}
	for _, sh := range id.Shares {
		if seen[sh.Grant] {
			continue
		}
		if g, err := a.opts.Access.Grant(ctx, sh.Grant); err == nil {
			out = append(out, g)
		}
	}
	return out, nil
}

// mayShare says why id may not share owner's events, or nil if it may.
func mayShare(id Identity, owner string) error {
	if !id.CanIn(access.Manage, owner) {
		return fmt.Errorf("you do not manage tenant %q, so you may not share its events", owner)
	}
	return nil
}

// grantManaged reports whether id manages g's tenant, and so may revoke
// it; to anyone else it is as absent as a grant that does not exist.
func grantManaged(id Identity, g access.Grant) bool {
	return id.CanIn(access.Manage, g.Owner)
}

// grantDetail is what the audit trail says of a grant made.
func grantDetail(g access.Grant) string {
	return fmt.Sprintf("to %s: %q until %s, hiding %v: %s", g.Grantee, g.Filter, g.Expires.Format(time.RFC3339), g.Redact, g.Reason)
}

func (a *api) createGrant(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var g access.Grant
	if err := decodeBody(r, &g); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rec := auditRecord(r.Context())
	rec.Tenants = []string{g.Owner}
	if err := mayShare(id, g.Owner); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	g.CreatedBy = id.Name
	g, err := a.opts.Access.CreateGrant(r.Context(), g)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rec.Target, rec.Detail = "grant:"+g.ID, grantDetail(g)
	writeJSON(w, http.StatusCreated, g)
}

func (a *api) revokeGrant(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	g, err := a.opts.Access.Grant(r.Context(), r.PathValue("id"))
	rec := auditRecord(r.Context())
	rec.Target = "grant:" + r.PathValue("id")
	if err != nil || !grantManaged(id, g) {
		// A grant of a tenant the caller does not manage is as absent
		// as one that does not exist.
		writeError(w, http.StatusNotFound, errors.New("no such grant among those you manage"))
		return
	}
	rec.Tenants = []string{g.Owner}
	if err := a.opts.Access.RevokeGrant(r.Context(), g.ID, id.Name); err != nil {
		a.accessError(w, err)
		return
	}
	g, _ = a.opts.Access.Grant(r.Context(), g.ID)
	writeJSON(w, http.StatusOK, g)
}

// installation reports whether the caller manages every tenant: who
// may make principals and groups, which every tenant shares.
func installation(w http.ResponseWriter, id Identity) bool {
	if err := manageInstallation(id); err != nil {
		writeError(w, http.StatusForbidden, err)
		return false
	}
	return true
}

// manageInstallation says why id may not manage principals and groups,
// or nil if it may: only an administrator of every tenant does.
func manageInstallation(id Identity) error {
	if !id.Identity.Scope(access.Manage).All {
		return errors.New("only an administrator of every tenant manages principals and groups")
	}
	return nil
}

// maySetPassword says why id may not set target's password, or nil if
// it may: its own, or anyone's for an administrator of every tenant.
func maySetPassword(id Identity, target string) error {
	if target != id.Principal && !id.Identity.Scope(access.Manage).All {
		return errors.New("you may set only your own password")
	}
	return nil
}

func (a *api) principals(w http.ResponseWriter, r *http.Request) {
	ps, err := a.opts.Access.Principals(r.Context())
	if err != nil {
		a.accessError(w, err)
		return
	}
	if ps == nil {
		ps = []access.Principal{}
	}
	writeJSON(w, http.StatusOK, ps)
}

func (a *api) createPrincipal(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !installation(w, id) {
		return
	}
	var body struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Display  string `json:"display"`
		Password string `json:"password"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if body.Kind == "" {
		body.Kind = access.User
	}
	p, err := a.opts.Access.CreatePrincipal(r.Context(), body.Name, body.Kind, body.Display)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	auditRecord(r.Context()).Target = "principal:" + p.ID
	if body.Password != "" {
		if err := a.opts.Access.SetPassword(r.Context(), p.ID, body.Password); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("created %s, but its password: %w", p.Name, err))
			return
		}
		p.HasPassword = true
	}
	writeJSON(w, http.StatusCreated, p)
}

// setPassword sets a password: one's own, or anyone's for an
// administrator of every tenant.
func (a *api) setPassword(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	target := r.PathValue("id")
	auditRecord(r.Context()).Target = "principal:" + target
	if err := maySetPassword(id, target); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := a.opts.Access.SetPassword(r.Context(), target, body.Password); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "password set"})
}

func (a *api) disablePrincipal(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	auditRecord(r.Context()).Target = "principal:" + r.PathValue("id")
	if !installation(w, id) {
		return
	}
	if err := a.opts.Access.Disable(r.Context(), r.PathValue("id")); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "disabled"})
}

func (a *api) groups(w http.ResponseWriter, r *http.Request) {
	gs, err := a.opts.Access.Groups(r.Context())
	if err != nil {
		a.accessError(w, err)
		return
	}
	if gs == nil {
		gs = []access.Group{}
	}
	writeJSON(w, http.StatusOK, gs)
}

func (a *api) createGroup(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if !installation(w, id) {
		return
	}
	var g access.Group
	if err := decodeBody(r, &g); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	auditRecord(r.Context()).Target = "group:" + g.Name
	if err := a.opts.Access.CreateGroup(r.Context(), g.Name, g.Description); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request) {
	a.member(w, r, func(ctx context.Context, group, principal string) error {
		return a.opts.Access.AddMember(ctx, group, principal)
	})
}

func (a *api) removeMember(w http.ResponseWriter, r *http.Request) {
	a.member(w, r, func(ctx context.Context, group, principal string) error {
		return a.opts.Access.RemoveMember(ctx, group, principal)
	})
}

func (a *api) member(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, group, principal string) error) {
	id, _ := IdentityFrom(r.Context())
	if !installation(w, id) {
		return
	}
	principal := r.PathValue("id")
	if principal == "" {
		var body struct {
			Principal string `json:"principal"`
		}
		if err := decodeBody(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		principal = body.Principal
	}
	p, err := a.opts.Access.Principal(r.Context(), principal)
	if err != nil {
		a.accessError(w, err)
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "group:"+r.PathValue("name"), "principal:"+p.ID
	if err := change(r.Context(), r.PathValue("name"), p.ID); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "done"})
}

func (a *api) bindings(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	bs, err := a.opts.Access.Bindings(r.Context())
	if err != nil {
		a.accessError(w, err)
		return
	}
	out := []access.SubjectBinding{}
	for _, b := range bs {
		if bindingVisible(id, b) {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// bindingVisible reports whether id sees b: a binding in a tenant it
// manages, or any for an administrator of every tenant.
func bindingVisible(id Identity, b access.SubjectBinding) bool {
	manage := id.Identity.Scope(access.Manage)
	return manage.All || slices.Contains(manage.Tenants, b.Tenant)
}

// mayBind says why id may not change bindings in tenant, or nil if it
// may: in a tenant it manages, or in every tenant ("*") for an
// administrator of every tenant.
func mayBind(id Identity, tenant string) error {
	manage := id.Identity.Scope(access.Manage)
	if tenant == access.AllTenants && !manage.All || tenant != access.AllTenants && !manage.Includes(tenant) {
		return fmt.Errorf("you do not manage tenant %q", tenant)
	}
	return nil
}

func (a *api) bind(w http.ResponseWriter, r *http.Request) {
	a.binding(w, r, a.opts.Access.Bind)
}

func (a *api) unbind(w http.ResponseWriter, r *http.Request) {
	a.binding(w, r, a.opts.Access.Unbind)
}

// binding changes a role binding: in a tenant the caller manages, or in
// every tenant for an administrator of every tenant.
func (a *api) binding(w http.ResponseWriter, r *http.Request, change func(context.Context, access.Subject, access.Binding) error) {
	id, _ := IdentityFrom(r.Context())
	var b access.SubjectBinding
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rec := auditRecord(r.Context())
	rec.Tenants, rec.Target, rec.Detail = []string{b.Tenant}, string(b.Subject), string(b.Role)
	if err := mayBind(id, b.Tenant); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	if err := change(r.Context(), b.Subject, b.Binding); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *api) tokenStore(w http.ResponseWriter) (Tokenizer, bool) {
	t, ok := a.opts.Tokens.(Tokenizer)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this server has no token store"))
	}
	return t, ok
}

// tokens lists the tokens of the tenants the caller manages (and of
// principals, for an administrator of every tenant).
func (a *api) tokens(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ts, ok := a.tokenStore(w)
	if !ok {
		return
	}
	all, err := ts.List(r.Context())
	if err != nil {
		a.accessError(w, err)
		return
	}
	out := []access.Token{}
	for _, t := range all {
		if tokenManaged(id, t) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// createToken makes a token: for oneself (vigil login), or, for a
// manager of its tenant, a token with a role of its own; a token of
// another principal is an administrator of every tenant's to make. The
// secret is in the answer, once.
func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ts, ok := a.tokenStore(w)
	if !ok {
		return
	}
	var body struct {
		Name      string `json:"name"`
		Tenant    string `json:"tenant"`
		Role      string `json:"role"`
		Principal string `json:"principal"`
		Days      int    `json:"days"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := mayMakeToken(id, body.Principal, body.Tenant); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	expires, err := tokenExpiry(a.opts.Now(), body.Days)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	spec := access.Spec{Name: body.Name, Tenant: body.Tenant, Role: access.Role(body.Role), Principal: body.Principal, Expires: expires}
	secret, tok, err := ts.Create(r.Context(), spec)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	auditToken(r.Context(), tok)
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
}

// mayMakeToken says why id may not make a token acting as principal (an
// id) or with a role of its own in tenant, or nil if it may: for
// itself, for the tenants it manages, and any for an administrator of
// every tenant.
func mayMakeToken(id Identity, principal, tenant string) error {
	manage := id.Identity.Scope(access.Manage)
	switch {
	case principal != "" && principal == id.Principal:
	case principal != "" && manage.All:
	case principal == "" && tenant == "" && manage.All:
	case principal == "" && tenant != "" && manage.Includes(tenant):
	default:
		return errors.New("you may make tokens for yourself, and for the tenants you manage")
	}
	return nil
}

// tokenExpiry is when a token made days from now expires: every token
// made through the API or the console does, within a year.
func tokenExpiry(now time.Time, days int) (time.Time, error) {
	if days <= 0 || days > 366 {
		return time.Time{}, errors.New("days: a token made through the API expires, in 1 to 366 days")
	}
	return now.Add(time.Duration(days) * 24 * time.Hour), nil
}

// auditToken says in the request's audit record which token was made,
// never its secret.
func auditToken(ctx context.Context, tok access.Token) {
	rec := auditRecord(ctx)
	rec.Target, rec.Detail = "token:"+tok.ID, fmt.Sprintf("%q role %q tenant %q principal %q", tok.Name, tok.Role, tok.Tenant, tok.Principal)
	if tok.Tenant != "" {
		rec.Tenants = []string{tok.Tenant}
	}
}

// tokenManaged reports whether id manages t: a token of a tenant it
// manages, or any (principals' included) for an administrator of every
// tenant. A token it does not manage is as absent as a missing one.
func tokenManaged(id Identity, t access.Token) bool {
	manage := id.Identity.Scope(access.Manage)
	return manage.All || t.Tenant != "" && manage.Includes(t.Tenant)
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ts, ok := a.tokenStore(w)
	if !ok {
		return
	}
	all, err := ts.List(r.Context())
	if err != nil {
		a.accessError(w, err)
		return
	}
	auditRecord(r.Context()).Target = "token:" + r.PathValue("id")
	i := slices.IndexFunc(all, func(t access.Token) bool { return t.ID == r.PathValue("id") })
	if i < 0 || !tokenManaged(id, all[i]) {
		writeError(w, http.StatusNotFound, errors.New("no such token among those you manage"))
		return
	}
	if err := ts.Revoke(r.Context(), all[i].ID); err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
}

func (a *api) accessError(w http.ResponseWriter, err error) {
	if errors.Is(err, access.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	a.opts.Logger.Error("access", "err", err)
	writeError(w, http.StatusInternalServerError, errors.New("the access layer failed"))
}
