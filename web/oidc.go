package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/vigilsec/vigil/access"
)

// OIDCCallbackPath is where the provider sends the browser back to: the
// path of the redirect URL registered with it.
const OIDCCallbackPath = "/api/v1/oidc/callback"

const (
	// oidcCookie binds a login in progress to the browser that started
	// it, so that a callback with a state made for another browser (a
	// login forced on the victim, with the attacker's account) fails.
	oidcCookie = "vigil_oidc"
	// A login must come back from the provider within oidcPending, and
	// at most maxPendingOIDC may be under way, so that the logins kept
	// waiting cannot grow without bound.
	oidcPending    = 10 * time.Minute
	maxPendingOIDC = 10000
	// maxOIDCReturn bounds the path a login returns to, which is kept while
	// it is under way.
	maxOIDCReturn = 2048
	// oidcTimeout bounds each request to the provider.
	oidcTimeout = 10 * time.Second
)

// oidcScopes are what the login asks the provider for: the subject, and
// the claims that link an identity to a user on its first login.
var oidcScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// OIDCConfig configures console login through an OpenID Connect
// provider, with the authorization code flow and PKCE.
type OIDCConfig struct {
	// Issuer is the provider's issuer identifier: an https URL (http
	// only on loopback), where discovery begins.
	Issuer string
	// ClientID and ClientSecret are vigil's credentials at the
	// provider.
	ClientID, ClientSecret string
	// RedirectURL is vigil's callback as registered with the provider:
	// an absolute URL ending in OIDCCallbackPath, unless a proxy in
	// front of vigil rewrites it.
	RedirectURL string
}

// OIDC logs console users in through an OpenID Connect provider. It
// discovers the provider when first needed, and again at each login
// until that succeeds, so that a provider down when vigil starts does
// not keep the console from it afterwards.
type OIDC struct {
	cfg    OIDCConfig
	client *http.Client
	logins pendingLogins
	// cookiePath is the redirect URL's path, where the browser brings
	// the oidcCookie back to.
	cookiePath string

	mu       sync.Mutex
	provider *oidcProvider // nil until discovered
}

// oidcProvider is what discovery learned of the provider.
type oidcProvider struct {
	provider *oidc.Provider
	oauth    *oauth2.Config
}

// NewOIDC returns the login that cfg configures.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return nil, fmt.Errorf("OIDC issuer %q is not an https URL (or an http URL on loopback)", cfg.Issuer)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("OIDC login through %s needs a client ID and a client secret", cfg.Issuer)
	}
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || ru.Host == "" || ru.Scheme != "https" && ru.Scheme != "http" {
		return nil, fmt.Errorf("OIDC redirect URL %q is not an absolute http(s) URL", cfg.RedirectURL)
	}
	return &OIDC{cfg: cfg, client: &http.Client{Timeout: oidcTimeout}, logins: pendingLogins{m: map[string]pendingLogin{}},
		cookiePath: cmp.Or(ru.Path, "/")}, nil
}

func loopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Discover fetches the provider's metadata, if it has not been: at
// startup, to report a misconfigured or unreachable provider early.
func (o *OIDC) Discover(ctx context.Context) error {
	_, err := o.discover(ctx)
	return err
}

func (o *OIDC) discover(ctx context.Context) (*oidcProvider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	// The provider keeps the client for fetching its keys later.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OIDC provider %s: %w", o.cfg.Issuer, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the metadata of the OIDC provider %s: %w", o.cfg.Issuer, err)
	}
	// Authenticate as the provider says it wants: client_secret_basic
	// unless it lists only client_secret_post (OpenID Connect Discovery
	// 1.0, 3). Trying one way and then the other, as oauth2 does when
	// not told, could spend the single-use code on the first try.
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	o.provider = &oidcProvider{provider: p, oauth: &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: ep, Scopes: oidcScopes,
	}}
	return o.provider, nil
}

// A pendingLogin is a login sent to the provider and not yet back: what
// its callback is checked against.
type pendingLogin struct {
	binding  string // the value of the oidcCookie of the browser that started it
	nonce    string
	verifier string // PKCE
	returnTo string
	expires  time.Time
}

// pendingLogins are the logins under way, by state. They are kept in
// memory: a login interrupted by a restart starts again.
type pendingLogins struct {
	mu sync.Mutex
	m  map[string]pendingLogin
}

// add keeps l under state. When too many logins are under way it
// forgets the expired and then the oldest, so that a flood of login
// starts costs bounded memory.
func (p *pendingLogins) add(state string, l pendingLogin, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= maxPendingOIDC {
		for s, old := range p.m {
			if !now.Before(old.expires) {
				delete(p.m, s)
			}
		}
	}
	if len(p.m) >= maxPendingOIDC {
		oldest := ""
		for s, old := range p.m {
			if oldest == "" || old.expires.Before(p.m[oldest].expires) {
				oldest = s
			}
		}
		delete(p.m, oldest)
	}
	p.m[state] = l
}

// take returns and forgets the login of state: a state is good for one
// callback, whatever comes of it.
func (p *pendingLogins) take(state string, now time.Time) (pendingLogin, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.m[state]
	delete(p.m, state)
	return l, ok && now.Before(l.expires)
}

// oidcRoutes serves login through the provider of o, if there is one.
func (a *api) oidcRoutes(mux *http.ServeMux, o *OIDC) {
	if o == nil || a.opts.Access == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/oidc/login", func(w http.ResponseWriter, r *http.Request) { a.oidcLogin(w, r, o) })
	mux.HandleFunc("GET "+OIDCCallbackPath, func(w http.ResponseWriter, r *http.Request) { a.oidcCallback(w, r, o) })
}

// An oidcRefusal is why a login through the provider failed.
type oidcRefusal struct {
	status int
	reason string // for the audit trail: what failed, never a code, token or secret
	msg    string // for the user
	err    error  // for the log, if the failure is vigil's or the provider's
}

func oidcRefuse(status int, reason, msg string) *oidcRefusal {
	return &oidcRefusal{status: status, reason: reason, msg: msg}
}

// oidcLogin answers GET /api/v1/oidc/login?return=PATH: a redirect to
// the provider, with a fresh state, nonce and PKCE challenge, and a
// cookie that binds them to this browser. After logging in, the browser
// returns to PATH, if it is a path on this server, or to "/".
func (a *api) oidcLogin(w http.ResponseWriter, r *http.Request, o *OIDC) {
	remote := remoteIP(r)
	if ok, wait := a.ipLimit.Allow(remote); !ok {
		tooMany(w, wait, "too many requests from your address")
		return
	}
	// A login refused here is audited here; one sent to the provider
	// is audited when it comes back, or not at all if it does not.
	if a.oidcLockedOut(w, r) {
		return
	}
	p, err := o.discover(r.Context())
	if err != nil {
		a.opts.Logger.Error("OIDC login", "err", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("the identity provider %s cannot be reached; try again later", o.cfg.Issuer))
		a.auditOIDC(r, &access.Record{Status: http.StatusServiceUnavailable, Detail: "oidc: failed: provider discovery failed"})
		return
	}
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	l := pendingLogin{binding: rand.Text(), nonce: rand.Text(), verifier: verifier,
		returnTo: localReturn(r.URL.Query().Get("return")), expires: a.opts.Now().Add(oidcPending)}
	o.logins.add(state, l, a.opts.Now())
	// SameSite=Lax: the cookie must come back on the provider's
	// redirect, a navigation from another site.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: l.binding, Path: o.cookiePath, MaxAge: int(oidcPending.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, oidc.Nonce(l.nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// localReturn returns ret if it is a path on this server, and "/"
// otherwise, so that login never sends a browser to another site (an
// open redirect, which lends phishing a trusted address). Browsers read
// "//host" and "/\host" as other hosts, and drop tabs and newlines
// before they read, so none of these pass.
func localReturn(ret string) string {
	if !strings.HasPrefix(ret, "/") || strings.HasPrefix(ret, "//") || len(ret) > maxOIDCReturn ||
		strings.ContainsFunc(ret, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	if u, err := url.Parse(ret); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return ret
}

// oidcCallback answers GET /api/v1/oidc/callback?code=&state=, where the
// provider sends the browser back: a console session, as a password
// login starts, for the user the identity is linked to, and a page that
// moves on to where the login was to return. Each callback is audited,
// and each failure counts toward the address's lockout as a wrong
// password does.
func (a *api) oidcCallback(w http.ResponseWriter, r *http.Request, o *OIDC) {
	remote := remoteIP(r)
	if ok, wait := a.ipLimit.Allow(remote); !ok {
		tooMany(w, wait, "too many requests from your address")
		return
	}
	// The binding cookie has done its work, whatever comes of it.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: o.cookiePath, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if a.oidcLockedOut(w, r) {
		return
	}
	rec := &access.Record{}
	p, l, detail, ref := a.oidcIdentify(r, o, rec)
	if ref != nil {
		if ref.err != nil {
			a.opts.Logger.Error("OIDC login", "reason", ref.reason, "err", ref.err)
		}
		// Failures of vigil or of the provider are not the caller's.
		if ref.status < 500 {
			a.badLogin.Failed("addr " + remote)
		}
		writeError(w, ref.status, errors.New(ref.msg))
		rec.Status, rec.Detail = ref.status, "oidc: refused: "+ref.reason
		if ref.status >= 500 {
			rec.Detail = "oidc: failed: " + ref.reason
		}
		a.auditOIDC(r, rec)
		return
	}
	a.startSessionPage(w, r, p, l.returnTo, detail, rec)
}

// oidcIdentify checks a callback and finds the principal it logs in:
// the login it answers (l), and what the audit record says of it.
func (a *api) oidcIdentify(r *http.Request, o *OIDC, rec *access.Record) (p access.Principal, l pendingLogin, detail string, ref *oidcRefusal) {
	ctx := r.Context()
	q := r.URL.Query()
	l, ok := o.logins.take(q.Get("state"), a.opts.Now())
	if e := q.Get("error"); e != "" {
		e = oauthErrorCode(e)
		return p, l, "", oidcRefuse(http.StatusUnauthorized, "provider error "+e, "the identity provider did not log you in: "+e)
	}
	if !ok {
		return p, l, "", oidcRefuse(http.StatusBadRequest, "unknown, used or expired state", "this login is unknown, used or expired; log in again")
	}
	c, err := r.Cookie(oidcCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(l.binding)) != 1 {
		return p, l, "", oidcRefuse(http.StatusBadRequest, "state not bound to this browser", "this login was not started in this browser; log in again")
	}
	code := q.Get("code")
	if code == "" {
		return p, l, "", oidcRefuse(http.StatusBadRequest, "no code", "the identity provider sent no authorization code")
	}
	// Discovered when the login started, unless vigil restarted since,
	// when the state would be unknown.
	prov, err := o.discover(ctx)
	if err != nil {
		return p, l, "", &oidcRefusal{status: http.StatusServiceUnavailable, reason: "provider discovery failed", msg: "the identity provider cannot be reached; try again later", err: err}
	}
	pctx := oidc.ClientContext(ctx, o.client)
	tok, err := prov.oauth.Exchange(pctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return p, l, "", &oidcRefusal{status: http.StatusUnauthorized, reason: "code exchange refused: " + oauthErrorCode(re.ErrorCode), msg: "the identity provider refused the login; log in again", err: err}
		}
		return p, l, "", &oidcRefusal{status: http.StatusBadGateway, reason: "code exchange failed", msg: "the identity provider could not be reached; log in again", err: err}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return p, l, "", oidcRefuse(http.StatusUnauthorized, "no ID token", "the identity provider sent no ID token")
	}
	idt, err := prov.provider.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: a.opts.Now}).Verify(pctx, raw)
	if err != nil {
		// go-oidc's errors name the check that failed (issuer,
		// audience, expiry, signature), never the token.
		return p, l, "", oidcRefuse(http.StatusUnauthorized, "invalid ID token: "+err.Error(), "the identity provider's ID token is not valid")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.nonce)) != 1 {
		return p, l, "", oidcRefuse(http.StatusUnauthorized, "ID token nonce mismatch", "the ID token is not for this login; log in again")
	}
	var claims oidcClaims
	if err := idt.Claims(&claims); err != nil {
		return p, l, "", oidcRefuse(http.StatusUnauthorized, "unreadable ID token claims", "the identity provider's ID token is not valid")
	}
	subject := access.OIDCSubjectOf(idt.Issuer, idt.Subject)
	rec.Actor = cmp.Or(claims.Email, claims.PreferredUsername, subject)
	p, detail, ref = a.oidcPrincipal(ctx, subject, claims)
	if p.ID != "" {
		rec.Principal, rec.Target = p.ID, "principal:"+p.ID
	}
	return p, l, detail, ref
}

// oauthErrorCode returns an error code of the provider, passed on by the
// browser or not, if it has the form of one (RFC 6749, A.7), to be
// shown and recorded.
func oauthErrorCode(e string) string {
	if len(e) > 64 || strings.ContainsFunc(e, func(c rune) bool { return c < 0x20 || c > 0x7e || c == '"' || c == '\\' }) {
		return "malformed"
	}
	return e
}

// oidcClaims are the claims of an ID token that link it to a user.
type oidcClaims struct {
	Email             string    `json:"email"`
	EmailVerified     claimBool `json:"email_verified"`
	PreferredUsername string    `json:"preferred_username"`
}

// claimBool is a boolean claim, which some providers (Amazon Cognito)
// send as a string.
type claimBool bool

func (t *claimBool) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = v == true || v == "true"
	return nil
}

// oidcPrincipal finds the user an OIDC identity logs in as: the one
// linked to it; or, on its first login, the user named by its verified
// email, which is then linked to it, if no other identity is. Not by
// preferred_username: OIDC Core 5.7 warns it is not unique, and where
// users may edit theirs, one could take "admin". Users are never made
// here: an administrator makes them, and gives them their roles, first.
func (a *api) oidcPrincipal(ctx context.Context, subject string, c oidcClaims) (access.Principal, string, *oidcRefusal) {
	internal := func(err error) *oidcRefusal {
		return &oidcRefusal{status: http.StatusInternalServerError, reason: "directory failed", msg: "logging in failed", err: err}
	}
	disabled := func(p access.Principal) *oidcRefusal {
		return oidcRefuse(http.StatusForbidden, "principal "+p.Name+" is disabled", "your vigil user is disabled")
	}
	p, err := a.opts.Access.PrincipalByOIDC(ctx, subject)
	switch {
	case err == nil && !p.Disabled.IsZero():
		return p, "", disabled(p)
	case err == nil:
		return p, "oidc", nil
	case !errors.Is(err, access.ErrNotFound):
		return access.Principal{}, "", internal(err)
	}
	var names []string
	if c.Email != "" && c.EmailVerified {
		names = append(names, c.Email)
	}
	for _, name := range names {
		p, err := a.opts.Access.Principal(ctx, name)
		switch {
		case errors.Is(err, access.ErrNotFound):
			continue
		case err != nil:
			return access.Principal{}, "", internal(err)
		case p.Name != name || p.Kind != access.User:
			// Principal takes an id too, and service accounts have
			// tokens, not logins.
			continue
		case p.OIDCSubject != "":
			return p, "", oidcRefuse(http.StatusForbidden, "user "+p.Name+" is linked to another OIDC identity than "+subject,
				"your vigil user is linked to another identity; ask an administrator")
		case !p.Disabled.IsZero():
			return p, "", disabled(p)
		}
		if err := a.opts.Access.LinkOIDC(ctx, p.ID, subject); errors.Is(err, access.ErrNotFound) {
			// Another identity's first login linked the user meanwhile.
			return p, "", oidcRefuse(http.StatusForbidden, "user "+p.Name+" was linked to another OIDC identity than "+subject,
				"your vigil user is linked to another identity; ask an administrator")
		} else if err != nil {
			return p, "", internal(err)
		}
		return p, "oidc: linked " + subject + " by " + name, nil
	}
	reason := "no user linked to " + subject + " or named by its verified email"
	if c.Email != "" && !c.EmailVerified {
		reason += " (email " + c.Email + " is not verified)"
	}
	return access.Principal{}, "", oidcRefuse(http.StatusForbidden, reason, "no vigil user is set up for this identity; ask an administrator")
}

// oidcLockedOut refuses, and audits, a login from an address locked out
// by failed logins, OIDC or password.
func (a *api) oidcLockedOut(w http.ResponseWriter, r *http.Request) bool {
	locked, wait := a.badLogin.Locked("addr " + remoteIP(r))
	if locked {
		tooMany(w, wait, "too many failed logins; try again later")
		a.auditOIDC(r, &access.Record{Status: http.StatusTooManyRequests, Detail: "oidc: refused: locked out"})
	}
	return locked
}

// auditOIDC completes rec as the record of an OIDC login and keeps it.
func (a *api) auditOIDC(r *http.Request, rec *access.Record) {
	rec.Time, rec.Action, rec.Remote, rec.UserAgent, rec.Method, rec.Path = a.opts.Now(), "login", remoteIP(r), r.UserAgent(), r.Method, r.URL.Path
	if rec.Kind == "" {
		rec.Kind = "anonymous"
	}
	a.audit(r.Context(), rec)
}

// oidcSessionPage is the callback's answer: the session cookie is
// SameSite=Strict, so a browser does not send it on the navigation that
// ends the provider's cross-site redirects. This page moves on by
// itself, a navigation from this site, on which it does. It runs no
// script.
var oidcSessionPage = template.Must(template.New("session").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={{.}}">
<title>vigil: logged in</title>
</head>
<body><p>Logged in. <a href="{{.}}">Continue</a>.</p></body>
</html>
`))

// startSessionPage logs p in, as startSession does, and answers with
// oidcSessionPage, which moves on to returnTo.
func (a *api) startSessionPage(w http.ResponseWriter, r *http.Request, p access.Principal, returnTo, detail string, rec *access.Record) {
	secret, s, err := a.opts.Access.StartSession(r.Context(), p.ID, "oidc")
	if err != nil {
		a.opts.Logger.Error("starting a session", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("starting the session failed"))
		rec.Status, rec.Detail = http.StatusInternalServerError, "oidc: failed: starting the session"
		a.auditOIDC(r, rec)
		return
	}
	setSessionCookie(w, secret, s.Expires)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page's address holds the code: no referrer takes it further.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusOK)
	oidcSessionPage.Execute(w, returnTo)
	rec.Principal, rec.Actor, rec.Kind, rec.Credential, rec.Status, rec.Detail = p.ID, p.Name, "principal", "session "+s.ID, http.StatusOK, detail
	a.auditOIDC(r, rec)
}
