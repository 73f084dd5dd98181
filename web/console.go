package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/web/chart"
)

// The console: server-rendered pages (html/template) under /, with their
// styles and scripts embedded and served under /static/. Scripts only
// enhance pages that work without them, and come from this origin alone
// (the Content-Security-Policy says so to the browser).

//go:embed console/templates/*.html console/static/*
var consoleFS embed.FS

// consoleCSP is the Content-Security-Policy of every console page: no
// inline script or style, nothing from another origin, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBody bounds a console form's body.
const maxFormBody = 64 << 10

// A staticFile is an embedded asset, served under a URL that carries a
// hash of its content, so that browsers may keep it for a year.
type staticFile struct {
	body        []byte
	contentType string
	hash        string
}

// consoleAssets are the console's static files by name.
var consoleAssets = func() map[string]staticFile {
	m := map[string]staticFile{}
	add := func(name string, body []byte) {
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		m[name] = staticFile{body: body, contentType: ct, hash: hex.EncodeToString(sum[:6])}
	}
	entries, err := fs.ReadDir(consoleFS, "console/static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := consoleFS.ReadFile("console/static/" + e.Name())
		if err != nil {
			panic(err)
		}
		add(e.Name(), b)
	}
	add("chart.js", chart.Script)
	return m
}()

// staticURL is the URL of an asset, with its content's hash.
func staticURL(name string) string {
	f, ok := consoleAssets[name]
	if !ok {
		panic("no console asset " + name)
	}
	return "/static/" + name + "?v=" + f.hash
}

var consoleFuncs = template.FuncMap{
	"static": staticURL,
	// utc shows a time as the console does everywhere: UTC, to the second.
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// iso is a time for a datetime attribute, which the page's script
	// turns into a local time on hover.
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"join": strings.Join,
	// dict makes a map of key and value pairs, for a select's options
	// (ranged over in key order).
	"dict": func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	},
}

// consolePages are the parsed templates, each page with the layout.
var consolePages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	names, err := fs.Glob(consoleFS, "console/templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		m[strings.TrimSuffix(base, ".html")] = template.Must(template.New(base).Funcs(consoleFuncs).
			ParseFS(consoleFS, "console/templates/layout.html", n))
	}
	return m
}()

// A consolePage is what the layout shows around a page's own content.
type consolePage struct {
	Title string
	Nav   string // the section the page is in: search, alerts
	// User is the caller's name and roles; nil on the login page.
	User *consoleUser
	CSRF string
	// Sections are the console's sections, in the order of the nav.
	Sections []consoleSection
	// Body is the page's own data.
	Body any
}

type consoleUser struct {
	Name  string
	Roles []string // role@tenant
}

// consoleRoutes serves the console's pages and assets.
func (a *api) consoleRoutes(mux *http.ServeMux) {
	page := func(action string, perm access.Permission) route {
		return route{action: action, perm: perm, page: true}
	}
	searchRoute := route{action: "console.search", perm: access.Read, also: []access.Permission{access.ReadAudit},
		scope: (*access.Identity).SearchScope, page: true}
	mux.HandleFunc("GET /static/{name}", a.consoleStatic)
	mux.HandleFunc("GET /login", a.consoleLoginPage)
	mux.HandleFunc("POST /login", a.consoleLogin)
	mux.Handle("POST /logout", a.auth(http.HandlerFunc(a.consoleLogout), route{action: "logout", anyone: true, page: true}))
	mux.Handle("GET /{$}", a.auth(http.HandlerFunc(a.consoleSearch), searchRoute))
	eventRoute := searchRoute
	eventRoute.action = "console.event"
	mux.Handle("GET /events/{seq}", a.auth(http.HandlerFunc(a.consoleEvent), eventRoute))
	for _, format := range []string{"csv", "ndjson"} {
		downloadRoute := searchRoute
		downloadRoute.action = "search.export"
		mux.Handle("GET /search."+format, a.auth(a.consoleSearchDownload(format), downloadRoute))
	}
	if a.opts.Exports != nil {
		mux.Handle("POST /exports", a.auth(http.HandlerFunc(a.consoleExport), page("export", access.Read)))
	}
	a.addSection("search", "Search", "/")
	if a.opts.Alerts != nil {
		a.addSection("alerts", "Alerts", "/alerts")
		mux.Handle("GET /alerts", a.auth(http.HandlerFunc(a.consoleAlerts), page("console.alert.list", access.Read)))
		mux.Handle("POST /alerts", a.auth(http.HandlerFunc(a.consoleAlertsBulk), page("alert.status", access.Work)))
		mux.Handle("GET /alerts/{id}", a.auth(http.HandlerFunc(a.consoleAlert), page("console.alert.read", access.Read)))
		mux.Handle("POST /alerts/{id}/{action}", a.auth(http.HandlerFunc(a.consoleAlertStatus), page("alert.status", access.Work)))
		mux.Handle("POST /alerts/{id}/assign", a.auth(http.HandlerFunc(a.consoleAlertAssign), page("alert.assign", access.Work)))
	}
	a.consoleCaseRoutes(mux)
	a.consoleRuleRoutes(mux)
	a.consoleSearchesRoutes(mux)
	a.consoleMonitorRoutes(mux)
	a.consoleAdminRoutes(mux)
}

// A consoleSection is a section of the console: its pages' Nav, its
// name in the nav, and its first page.
type consoleSection struct {
	ID, Name, Path string
}

// addSection adds a section to the nav, as its routes are mounted: a
// section whose capability the server lacks (no alert layer, no
// playbooks) is not shown.
func (a *api) addSection(id, name, path string) {
	a.sections = append(a.sections, consoleSection{ID: id, Name: name, Path: path})
}

// consoleStatic serves an embedded asset: for a year when asked by the
// hash of its current content, else to be revalidated.
func (a *api) consoleStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := consoleAssets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+f.hash+`"`)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+f.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(f.body)
}

// pageHeaders are the headers of every console page.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

// render writes a page. The page is rendered into a buffer first, so
// that a template that fails sends an error page, not half a page.
func (a *api) render(w http.ResponseWriter, r *http.Request, status int, name string, p *consolePage) {
	if p.User == nil {
		if id, ok := IdentityFrom(r.Context()); ok {
			p.User = userOf(id)
			p.CSRF = id.csrf
		}
	}
	p.Sections = a.sections
	var buf bytes.Buffer
	if err := consolePages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.opts.Logger.Error("rendering a console page", "page", name, "err", err)
		pageHeaders(w)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("<!doctype html><title>Error</title><p>Rendering the page failed.</p>\n"))
		return
	}
	pageHeaders(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func userOf(id Identity) *consoleUser {
	u := &consoleUser{Name: id.Name}
	for _, b := range id.Bindings {
		u.Roles = append(u.Roles, string(b.Role)+"@"+b.Tenant)
	}
	slices.Sort(u.Roles)
	u.Roles = slices.Compact(u.Roles)
	return u
}

// consoleError answers with an error page.
func (a *api) consoleError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.render(w, r, status, "error", &consolePage{Title: http.StatusText(status), Body: struct {
		Status int
		Text   string
		Msg    string
	}{status, http.StatusText(status), msg}})
}

// consoleUnauthenticated answers a page asked for without a session:
// a GET goes to the login page, which comes back here.
func (a *api) consoleUnauthenticated(w http.ResponseWriter, r *http.Request) {
	if safeMethod(r.Method) {
		seeOther(w, r, "/login?return="+url.QueryEscape(r.URL.RequestURI()))
		return
	}
	a.render(w, r, http.StatusUnauthorized, "error", &consolePage{Title: "Not logged in", Body: struct {
		Status int
		Text   string
		Msg    string
	}{http.StatusUnauthorized, "Not logged in", "Your session has ended: log in again."}})
}

// loginBody is the login page's data.
type loginBody struct {
	Return string
	Name   string
	Error  string
	OIDC   string // the single sign-on link, if configured
}

func (a *api) loginPage(w http.ResponseWriter, r *http.Request, status int, b loginBody) {
	if a.opts.OIDC != nil {
		b.OIDC = "/api/v1/oidc/login?return=" + url.QueryEscape(b.Return)
	}
	a.render(w, r, status, "login", &consolePage{Title: "Log in", Body: b})
}

// consoleLoginPage answers GET /login?return=PATH.
func (a *api) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	a.loginPage(w, r, http.StatusOK, loginBody{Return: localReturn(r.URL.Query().Get("return"))})
}

// crossSite reports whether a form was posted from another site, which
// would log a browser in to the wrong account (login CSRF).
func crossSite(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s != "same-origin" && s != "none"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err != nil || u.Host != r.Host
	}
	return false
}

// consoleLogin answers the login form (name, password, return) as
// POST /api/v1/login does, with the same limits, lockouts and audit, and
// sends the browser on to return.
func (a *api) consoleLogin(w http.ResponseWriter, r *http.Request) {
	remote := remoteIP(r)
	rec := &access.Record{Time: a.opts.Now(), Action: "login", Kind: "anonymous", Remote: remote, UserAgent: r.UserAgent(), Method: r.Method, Path: r.URL.Path}
	if ok, wait := a.ipLimit.Allow(remote); !ok {
		tooMany(w, wait, "too many requests from your address")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		a.consoleError(w, r, http.StatusBadRequest, "The login form could not be read.")
		return
	}
	b := loginBody{Return: localReturn(r.PostForm.Get("return")), Name: r.PostForm.Get("name")}
	password := r.PostForm.Get("password")
	if crossSite(r) {
		rec.Status, rec.Detail = http.StatusForbidden, "refused: a login form posted from another site"
		a.audit(r.Context(), rec)
		a.consoleError(w, r, http.StatusForbidden, "A login must start on vigil's own login page.")
		return
	}
	if a.opts.Access == nil {
		a.consoleError(w, r, http.StatusNotFound, "This server has no directory of users.")
		return
	}
	if b.Name == "" {
		b.Error = "Enter your name and password."
		a.loginPage(w, r, http.StatusBadRequest, b)
		return
	}
	rec.Actor = b.Name
	p, ref := a.checkLogin(r.Context(), rec, b.Name, password)
	if ref != nil {
		b.Error = "Wrong name or password."
		if ref.status == http.StatusTooManyRequests {
			b.Error = "Too many failed logins; try again later."
		}
		a.loginPage(w, r, ref.status, b)
		return
	}
	secret, s, err := a.opts.Access.StartSession(r.Context(), p.ID, "password")
	if err != nil {
		a.opts.Logger.Error("starting a session", "err", err)
		rec.Status = http.StatusInternalServerError
		a.audit(r.Context(), rec)
		a.consoleError(w, r, http.StatusInternalServerError, "Starting the session failed.")
		return
	}
	setSessionCookie(w, secret, s.Expires)
	rec.Principal, rec.Kind, rec.Credential, rec.Status, rec.Detail = p.ID, "principal", "session "+s.ID, http.StatusSeeOther, "password"
	a.audit(r.Context(), rec)
	seeOther(w, r, b.Return)
}

// consoleLogout ends the session and goes to the login page.
func (a *api) consoleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && a.opts.Access != nil {
		if err := a.opts.Access.EndSession(r.Context(), c.Value); err != nil {
			a.opts.Logger.Error("ending a session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	seeOther(w, r, "/login")
}

// consoleForm reads the form of a change, bounded to maxFormBody, or
// answers that it could not and returns false.
func (a *api) consoleForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		a.consoleError(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

// seeOther sends the browser on to path after a change: a GET of it,
// which a reload does not post again.
func seeOther(w http.ResponseWriter, r *http.Request, path string) {
	pageHeaders(w)
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// notFoundPage answers a page for something missing or out of the
// caller's scope, alike.
func (a *api) notFoundPage(w http.ResponseWriter, r *http.Request, what string) {
	a.consoleError(w, r, http.StatusNotFound, fmt.Sprintf("No %s here, or none you may see.", what))
}
