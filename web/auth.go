package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/query"
)

// sessionCookie carries a console session's secret.
const sessionCookie = "vigil_session"

type identityKey struct{}

// An Authenticator checks API tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (access.Token, error)
}

// Identity is who made a request, and what the request may read.
type Identity struct {
	access.Identity
	// Scope is what the request reads: the scope of the permission its
	// endpoint needs.
	Scope query.Scope
	// Tenant is the one tenant of Scope, for actions that need a tenant
	// and were not told one; "" when the scope has several, or all.
	Tenant string
	// csrf is the CSRF token of the request's console session, which the
	// console's forms carry; "" for a bearer token.
	csrf string
}

// WithIdentity returns ctx carrying id, as the API's authentication
// does; for handlers mounted under it and their tests.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the authenticated caller of a request.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// A route is an endpoint's place in access: the permission it needs and
// the action its audit records name ("" for none: ingest, whose events
// are their own record).
type route struct {
	action string
	perm   access.Permission
	// scope, if set, replaces the permission's scope (search reads the
	// audit trail too).
	scope func(*access.Identity) query.Scope
	// also admits callers holding this permission instead (search:
	// auditors).
	also []access.Permission
	// anyone admits every authenticated caller (their own identity,
	// their own password); the handler decides the rest.
	anyone bool
	// page is a console page: refusals are pages, a GET without a
	// session is sent to the login page, and a form's CSRF token may
	// come in its csrf field.
	page bool
}

// auth admits requests whose caller holds the route's permission, and
// records each in the audit trail.
func (a *api) auth(h http.Handler, rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote := remoteIP(r)
		// Ingest is not rate limited: it has its own backpressure, and a
		// forwarder catching up sends as fast as the server takes.
		limited := rt.action != ""
		if limited {
			if ok, wait := a.ipLimit.Allow(remote); !ok {
				tooMany(w, wait, "too many requests from your address")
				return
			}
		}
		if locked, wait := a.badAuth.Locked(remote); locked {
			tooMany(w, wait, "too many failed authentications from your address")
			return
		}
		rec := &access.Record{Time: a.opts.Now(), Action: rt.action, Remote: remote, UserAgent: r.UserAgent(), Method: r.Method, Path: r.URL.Path, Kind: "anonymous"}
		id, csrf, err := a.identify(r)
		if err != nil {
			// A browser opening a page before logging in has guessed
			// nothing: only a credential presented counts.
			if !rt.page || hasCredential(r) {
				a.badAuth.Failed(remote)
			}
			if rt.page {
				a.consoleUnauthenticated(w, r)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
				writeError(w, http.StatusUnauthorized, errors.New("missing or invalid API token or session"))
			}
			a.opts.Logger.Info("refused a request", "path", r.URL.Path, "remote", remote, "reason", err)
			rec.Action, rec.Status, rec.Detail = "authenticate", http.StatusUnauthorized, "refused: "+publicReason(err)
			a.audit(r.Context(), rec)
			return
		}
		rec.Principal, rec.Actor, rec.Credential, rec.Elevated = id.Principal, id.Name, id.Credential, id.Elevated
		rec.Kind = kindOf(&id)
		if limited {
			if ok, wait := a.callerLimit.Allow(id.Credential + "|" + id.Principal); !ok {
				tooMany(w, wait, "too many requests with this credential")
				return
			}
		}
		if csrf != "" && !safeMethod(r.Method) &&
			subtle.ConstantTimeCompare([]byte(csrfToken(w, r, rt)), []byte(csrf)) != 1 {
			a.refuse(w, r, rt, http.StatusForbidden, errors.New("missing or wrong X-CSRF-Token: a change from the console carries its session's CSRF token"))
			rec.Status, rec.Detail = http.StatusForbidden, "refused: no CSRF token"
			a.audit(r.Context(), rec)
			return
		}
		allowed := rt.anyone || id.Can(rt.perm)
		for _, p := range rt.also {
			allowed = allowed || id.Can(p)
		}
		var scope query.Scope
		if rt.scope != nil {
			scope = rt.scope(&id)
		} else {
			scope = id.Scope(rt.perm)
		}
		rec.Tenants = scopeTenants(scope)
		if !allowed {
			a.refuse(w, r, rt, http.StatusForbidden, fmt.Errorf("you may not %s (%s): no role of yours allows it", rt.perm, r.URL.Path))
			rec.Status = http.StatusForbidden
			a.audit(r.Context(), rec)
			return
		}
		rid := Identity{Identity: id, Scope: scope, csrf: csrf}
		if !scope.All && len(scope.Tenants) == 1 {
			rid.Tenant = scope.Tenants[0]
		}
		if rt.action == "" {
			h.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), rid)))
			return
		}
		rec.Detail = auditDetail(r)
		sw := &statusWriter{ResponseWriter: w}
		ctx := context.WithValue(WithIdentity(r.Context(), rid), recordKey{}, rec)
		h.ServeHTTP(sw, r.WithContext(ctx))
		rec.Status = sw.status()
		a.audit(r.Context(), rec)
	})
}

// refuse answers a refused request: an error to the API, a page to the
// console.
func (a *api) refuse(w http.ResponseWriter, r *http.Request, rt route, status int, err error) {
	if rt.page {
		a.consoleError(w, r, status, err.Error())
		return
	}
	writeError(w, status, err)
}

// csrfToken is the CSRF token a request carries: its X-CSRF-Token
// header, or, for a console page's form, its csrf field.
func csrfToken(w http.ResponseWriter, r *http.Request, rt route) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" || !rt.page {
		return t
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/x-www-form-urlencoded" {
		return ""
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	return r.PostFormValue("csrf")
}

// hasCredential reports whether r presents a credential at all.
func hasCredential(r *http.Request) bool {
	_, err := r.Cookie(sessionCookie)
	return err == nil || r.Header.Get("Authorization") != ""
}

// audit hands rec to the trail. A record that cannot be kept is logged:
// the request has been answered by then.
func (a *api) audit(ctx context.Context, rec *access.Record) {
	if a.opts.Audit == nil {
		return
	}
	if err := a.opts.Audit(context.WithoutCancel(ctx), rec); err != nil {
		a.opts.Logger.Error("recording an audit event", "action", rec.Action, "actor", rec.Actor, "err", err)
	}
}

type recordKey struct{}

// auditRecord returns the audit record of the request, for handlers
// that say more of what they did (the grant made, the alert changed).
func auditRecord(ctx context.Context) *access.Record {
	if rec, ok := ctx.Value(recordKey{}).(*access.Record); ok {
		return rec
	}
	return &access.Record{}
}

// auditDetail is what a record says of a request: its query parameters,
// which hold the search. Secrets never travel in a URL of this API (a
// signed link's signature is dropped).
func auditDetail(r *http.Request) string {
	v := r.URL.Query()
	v.Del("sig")
	return v.Encode()
}

// publicReason is why a credential was refused, in the words the audit
// trail keeps: which of the token's states, never the secret.
func publicReason(err error) string {
	switch {
	case errors.Is(err, access.ErrExpiredToken):
		return "expired token"
	case errors.Is(err, access.ErrRevokedToken):
		return "revoked token"
	case errors.Is(err, access.ErrUnknownToken):
		return "unknown token"
	case errors.Is(err, access.ErrNoSession):
		return "no session"
	}
	return "no credential"
}

func kindOf(id *access.Identity) string {
	if id.Principal == "" {
		return "token"
	}
	return "principal"
}

// scopeTenants names a scope's tenants for an audit record.
func scopeTenants(s query.Scope) []string {
	out := append([]string(nil), s.Tenants...)
	if s.All {
		out = append([]string{access.AllTenants}, out...)
	}
	for _, sh := range s.Shares {
		out = append(out, sh.Tenant)
	}
	return out
}

// identify finds the caller of r from its bearer token or its session
// cookie; csrf is the session's CSRF token, "" for a bearer token (which
// a page of another origin cannot send).
func (a *api) identify(r *http.Request) (id access.Identity, csrf string, err error) {
	if c, err := r.Cookie(sessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		if a.opts.Access == nil {
			return access.Identity{}, "", access.ErrNoSession
		}
		s, err := a.opts.Access.Session(r.Context(), c.Value)
		if err != nil {
			return access.Identity{}, "", err
		}
		id, err := a.opts.Access.Resolve(r.Context(), s.Principal)
		if err != nil {
			return access.Identity{}, "", err
		}
		id.Credential = "session " + s.ID
		return id, s.CSRF, nil
	}
	id, err = a.bearer(r)
	return id, "", err
}

// bearer finds the caller of r from its bearer token.
func (a *api) bearer(r *http.Request) (access.Identity, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return access.Identity{}, errors.New("no bearer token")
	}
	if a.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.opts.AdminToken)) == 1 {
		// The local administrator, whose token is in the data
		// directory: whoever reads that reads the data anyway.
		return access.Identity{Name: "admin", Credential: "admin-token", Bindings: []access.Binding{
			{Role: access.Admin, Tenant: access.AllTenants}}}, nil
	}
	if a.opts.Tokens == nil {
		return access.Identity{}, access.ErrUnknownToken
	}
	t, err := a.opts.Tokens.Authenticate(r.Context(), tok)
	if err != nil {
		return access.Identity{}, err
	}
	if a.opts.Access != nil {
		return a.opts.Access.TokenIdentity(r.Context(), t)
	}
	if t.Principal != "" {
		return access.Identity{}, errors.New("a principal's token, with no directory to resolve it")
	}
	return t.Identity(), nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// remoteIP is the address a request came from. Forwarded headers are not
// believed: a proxy in front of vigil is configured, not claimed.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	writeError(w, http.StatusTooManyRequests, errors.New(msg))
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Flush lets streaming handlers (hunts) flush through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer beneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
