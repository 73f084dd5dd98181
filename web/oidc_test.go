package web

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/web/oidctest"
)

// The provider's users. Each logs in by its subject.
var (
	oidcAlice   = oidctest.User{Subject: "alice-1", Email: "alice@example.com", EmailVerified: true, PreferredUsername: "al"}
	oidcBob     = oidctest.User{Subject: "bob-2", PreferredUsername: "bob"}
	oidcCarol   = oidctest.User{Subject: "carol-3", Email: "carol@example.com", EmailVerified: true}
	oidcDave    = oidctest.User{Subject: "dave-4", Email: "dave@example.com", EmailVerified: true}
	oidcMallory = oidctest.User{Subject: "mallory-5", Email: "mallory@example.com", EmailVerified: true}
	// eve claims alice's address, unverified.
	oidcEve = oidctest.User{Subject: "eve-6", Email: "alice@example.com", PreferredUsername: "eve"}
	oidcSvc = oidctest.User{Subject: "svc-7", Email: "svc@example.com", EmailVerified: true}
)

// An oidcEnv is vigil and an OIDC provider, both on loopback, and the
// audit records vigil kept.
type oidcEnv struct {
	provider *oidctest.Server
	vigil    string // base URL
	dir      *access.Directory
	o        *OIDC

	mu      sync.Mutex
	records []access.Record
}

// oidcHandler serves the access API with login through o, on one api so
// that password and OIDC logins share their lockouts, as Handler does.
func oidcHandler(opts Options, o *OIDC) http.Handler {
	opts.OIDC = o
	return Handler(opts)
}

// newOIDCEnv starts vigil, with users for the provider's to log in as,
// and a provider with popts.
func newOIDCEnv(t *testing.T, popts oidctest.Options) *oidcEnv {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	redirect := "http://" + srv.Listener.Addr().String() + OIDCCallbackPath
	popts.ClientID, popts.ClientSecret, popts.RedirectURL = "vigil", "vigil-secret", redirect
	popts.Users = []oidctest.User{oidcAlice, oidcBob, oidcCarol, oidcDave, oidcMallory, oidcEve, oidcSvc}
	e := &oidcEnv{provider: oidctest.NewServer(t, popts)}

	mdb, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mdb.Close() })
	e.dir = access.NewDirectory(mdb, access.Options{})
	ids := map[string]string{}
	for _, p := range []struct{ name, kind string }{
		{"alice@example.com", access.User}, {"bob", access.User}, {"carol@example.com", access.User},
		{"dave@example.com", access.User}, {"svc@example.com", access.Service},
	} {
		pr, err := e.dir.CreatePrincipal(ctx, p.name, p.kind, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[p.name] = pr.ID
	}
	for _, err := range []error{
		e.dir.SetPassword(ctx, ids["alice@example.com"], "correct horse battery staple"),
		e.dir.Disable(ctx, ids["carol@example.com"]),
		e.dir.LinkOIDC(ctx, ids["dave@example.com"], access.OIDCSubjectOf("https://other.example", "dave")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	if e.o, err = NewOIDC(OIDCConfig{Issuer: e.provider.Issuer, ClientID: "vigil", ClientSecret: "vigil-secret", RedirectURL: redirect}); err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = oidcHandler(Options{
		Access: e.dir,
		Audit: func(_ context.Context, r *access.Record) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.records = append(e.records, *r)
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
		Now:    time.Now,
	}, e.o)
	srv.Start()
	e.vigil = srv.URL
	return e
}

func (e *oidcEnv) principal(t *testing.T, name string) access.Principal {
	t.Helper()
	p, err := e.dir.Principal(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// logins returns the audit records of logins.
func (e *oidcEnv) logins() []access.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []access.Record
	for _, r := range e.records {
		if r.Action == "login" {
			out = append(out, r)
		}
	}
	return out
}

// browser returns an HTTP client with cookies of its own that follows
// no redirects: each step of a login is the test's to take.
func oidcBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches u, and returns the status, the body, and where a redirect
// points.
func oidcGet(t *testing.T, b *http.Client, u string) (int, string, *url.URL) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	loc, _ := resp.Location()
	return resp.StatusCode, string(body), loc
}

// start begins a login in b, and returns where vigil sends it: the
// provider's authorization endpoint.
func (e *oidcEnv) start(t *testing.T, b *http.Client, ret string) *url.URL {
	t.Helper()
	status, body, loc := oidcGet(t, b, e.vigil+"/api/v1/oidc/login?return="+url.QueryEscape(ret))
	if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.provider.Issuer+"/authorize?") {
		t.Fatalf("starting a login: %d %s, redirected to %v", status, body, loc)
	}
	return loc
}

// authorize logs in at the provider as the user with subject sub (or
// refuses, for deny), and returns where the provider sends the browser
// back: vigil's callback.
func (e *oidcEnv) authorize(t *testing.T, b *http.Client, auth *url.URL, sub string) *url.URL {
	t.Helper()
	u := *auth
	q := u.Query()
	if sub == "deny" {
		q.Set("deny", "1")
	} else {
		q.Set("username", sub)
	}
	u.RawQuery = q.Encode()
	status, body, loc := oidcGet(t, b, u.String())
	if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.vigil+OIDCCallbackPath+"?") {
		t.Fatalf("logging in at the provider: %d %s, redirected to %v", status, body, loc)
	}
	return loc
}

// login logs b in as sub, returning to ret, and returns vigil's answer
// to the callback.
func (e *oidcEnv) login(t *testing.T, b *http.Client, ret, sub string) (status int, body string, callback *url.URL) {
	t.Helper()
	callback = e.authorize(t, b, e.start(t, b, ret), sub)
	status, body, _ = oidcGet(t, b, callback.String())
	return status, body, callback
}

var oidcRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`)

// landing returns where the page that ends a login moves on to.
func oidcLanding(t *testing.T, body string) string {
	t.Helper()
	m := oidcRefresh.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no refresh in the login's page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// whoami returns the principal b's session is of.
func (e *oidcEnv) whoami(t *testing.T, b *http.Client) string {
	t.Helper()
	status, body, _ := oidcGet(t, b, e.vigil+"/api/v1/whoami")
	var answer struct{ Identity access.Identity }
	if err := json.Unmarshal([]byte(body), &answer); status != http.StatusOK || err != nil {
		t.Fatalf("whoami: %d %s", status, body)
	}
	return answer.Identity.Principal
}

// TestOIDCLogin logs users in through the provider: on their first
// login linked by their verified email, and by their subject
// afterwards.
func TestOIDCLogin(t *testing.T) {
	e := newOIDCEnv(t, oidctest.Options{})
	alice := e.principal(t, "alice@example.com")
	for _, tc := range []struct {
		name, sub, ret string
		principal      access.Principal
		detail         string
	}{
		{"first login, by verified email", oidcAlice.Subject, "/alerts?id=1&x=<y>", alice,
			"oidc: linked " + access.OIDCSubjectOf(e.provider.Issuer, oidcAlice.Subject) + " by alice@example.com"},
		{"next login, by subject", oidcAlice.Subject, "/", alice, "oidc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logins())
			b := oidcBrowser(t)
			status, body, callback := e.login(t, b, tc.ret, tc.sub)
			if status != http.StatusOK {
				t.Fatalf("callback: %d %s", status, body)
			}
			if got := oidcLanding(t, body); got != tc.ret {
				t.Errorf("the page moves on to %q, want %q", got, tc.ret)
			}
			if strings.Contains(body, "<script") {
				t.Error("the page runs a script")
			}
			if got := e.whoami(t, b); got != tc.principal.ID {
				t.Errorf("the session is of %q, want %s (%s)", got, tc.principal.ID, tc.principal.Name)
			}
			recs := e.logins()[before:]
			if len(recs) != 1 {
				t.Fatalf("%d login records, want 1: %+v", len(recs), recs)
			}
			r := recs[0]
			if r.Status != http.StatusOK || r.Detail != tc.detail || r.Principal != tc.principal.ID || r.Actor != tc.principal.Name ||
				r.Kind != "principal" || !strings.HasPrefix(r.Credential, "session ") || r.Path != OIDCCallbackPath {
				t.Errorf("record %+v, want detail %q", r, tc.detail)
			}
			oidcNoSecrets(t, r, callback)
		})
	}
	if got := e.principal(t, "alice@example.com").OIDCSubject; got != access.OIDCSubjectOf(e.provider.Issuer, oidcAlice.Subject) {
		t.Errorf("alice's OIDC subject is %q", got)
	}
}

// noSecrets checks that an audit record holds neither the code nor the
// state of a callback.
func oidcNoSecrets(t *testing.T, r access.Record, callback *url.URL) {
	t.Helper()
	js, _ := json.Marshal(r)
	for _, p := range []string{"code", "state"} {
		if v := callback.Query().Get(p); v != "" && strings.Contains(string(js), v) {
			t.Errorf("the audit record holds the callback's %s: %s", p, js)
		}
	}
}

// TestOIDCRefusals checks each way a login through the provider fails:
// with a 4xx answer, one audit record naming why, and no session.
func TestOIDCRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  oidctest.Options
		login func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL)
		// status and reason of the failure; records is how many logins
		// were audited, successes included (1 by default).
		status  int
		reason  string
		records int
	}{
		{name: "user cancels at the provider", status: 401, reason: "provider error access_denied",
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				return e.login(t, b, "/", "deny")
			}},
		{name: "no binding cookie", status: 400, reason: "state not bound to this browser",
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				cb := e.authorize(t, b, e.start(t, b, "/"), oidcAlice.Subject)
				status, body, _ := oidcGet(t, oidcBrowser(t), cb.String())
				return status, body, cb
			}},
		{name: "another browser's login (login CSRF)", status: 400, reason: "state not bound to this browser",
			login: func(t *testing.T, e *oidcEnv, victim *http.Client) (int, string, *url.URL) {
				attacker := oidcBrowser(t)
				cb := e.authorize(t, attacker, e.start(t, attacker, "/"), oidcMallory.Subject)
				e.start(t, victim, "/")
				status, body, _ := oidcGet(t, victim, cb.String())
				return status, body, cb
			}},
		{name: "unknown state", status: 400, reason: "unknown, used or expired state",
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				cb := e.authorize(t, b, e.start(t, b, "/"), oidcAlice.Subject)
				q := cb.Query()
				q.Set("state", "forged")
				cb.RawQuery = q.Encode()
				status, body, _ := oidcGet(t, b, cb.String())
				return status, body, cb
			}},
		{name: "replayed state", status: 400, reason: "unknown, used or expired state", records: 2,
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				status, body, cb := e.login(t, b, "/", oidcAlice.Subject)
				if status != http.StatusOK {
					t.Fatalf("login: %d %s", status, body)
				}
				status, body, _ = oidcGet(t, b, cb.String())
				return status, body, cb
			}},
		{name: "replayed code", status: 401, reason: "code exchange refused: invalid_grant", records: 2,
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				status, body, used := e.login(t, b, "/", oidcAlice.Subject)
				if status != http.StatusOK {
					t.Fatalf("login: %d %s", status, body)
				}
				return e.swapCode(t, b, used)
			}},
		{name: "injected code (PKCE verifier of another login)", status: 401, reason: "code exchange refused: invalid_grant",
			login: func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
				return e.swapCode(t, b, e.authorize(t, b, e.start(t, b, "/"), oidcAlice.Subject))
			}},
		{name: "ID token for another audience", status: 401, reason: `invalid ID token: oidc: expected audience "vigil"`,
			opts:  oidctest.Options{Claims: func(c map[string]any) { c["aud"] = "other" }},
			login: oidcLoginAs(oidcAlice)},
		{name: "expired ID token", status: 401, reason: "invalid ID token: oidc: token is expired",
			opts:  oidctest.Options{Claims: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }},
			login: oidcLoginAs(oidcAlice)},
		{name: "ID token from another issuer", status: 401, reason: "invalid ID token: oidc: id token issued by a different provider",
			opts:  oidctest.Options{Claims: func(c map[string]any) { c["iss"] = "https://other.example" }},
			login: oidcLoginAs(oidcAlice)},
		{name: "forged signature", status: 401, reason: "invalid ID token: failed to verify signature",
			opts: oidctest.Options{ForeignKey: true}, login: oidcLoginAs(oidcAlice)},
		{name: "nonce of another login", status: 401, reason: "ID token nonce mismatch",
			opts:  oidctest.Options{Claims: func(c map[string]any) { c["nonce"] = "replayed" }},
			login: oidcLoginAs(oidcAlice)},
		{name: "unknown identity", status: 403, reason: "no user linked to", login: oidcLoginAs(oidcMallory)},
		{name: "unverified email", status: 403, reason: "(email alice@example.com is not verified)", login: oidcLoginAs(oidcEve)},
		// preferred_username is not unique (OIDC Core 5.7): a user named
		// bob is not whoever calls themselves bob at the provider.
		{name: "preferred_username only", status: 403, reason: "no user linked to", login: oidcLoginAs(oidcBob)},
		{name: "service account", status: 403, reason: "no user linked to", login: oidcLoginAs(oidcSvc)},
		{name: "disabled user", status: 403, reason: "principal carol@example.com is disabled", login: oidcLoginAs(oidcCarol)},
		{name: "user linked to another identity", status: 403, reason: "user dave@example.com is linked to another OIDC identity",
			login: oidcLoginAs(oidcDave)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newOIDCEnv(t, tc.opts)
			b := oidcBrowser(t)
			status, body, callback := tc.login(t, e, b)
			var answer struct{ Error string }
			if status != tc.status || json.Unmarshal([]byte(body), &answer) != nil || answer.Error == "" {
				t.Errorf("callback: %d %s, want %d with a message", status, body, tc.status)
			}
			recs := e.logins()
			if want := max(tc.records, 1); len(recs) != want {
				t.Fatalf("%d login records, want %d: %+v", len(recs), want, recs)
			}
			r := recs[len(recs)-1]
			if r.Status != tc.status || !strings.HasPrefix(r.Detail, "oidc: refused: ") || !strings.Contains(r.Detail, tc.reason) || r.Kind != "anonymous" {
				t.Errorf("record %+v, want status %d and a reason with %q", r, tc.status, tc.reason)
			}
			oidcNoSecrets(t, r, callback)
			if status, body, _ := oidcGet(t, b, e.vigil+"/api/v1/whoami"); tc.records == 0 && status != http.StatusUnauthorized {
				t.Errorf("whoami after a refused login: %d %s", status, body)
			}
			if p := e.principal(t, "alice@example.com"); tc.records == 0 && p.OIDCSubject != "" {
				t.Errorf("a refused login linked alice to %s", p.OIDCSubject)
			}
		})
	}
}

func oidcLoginAs(u oidctest.User) func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
	return func(t *testing.T, e *oidcEnv, b *http.Client) (int, string, *url.URL) {
		return e.login(t, b, "/", u.Subject)
	}
}

// swapCode answers a fresh login of b with the code of callback: the
// provider must refuse a used code, or one made for another login's
// PKCE challenge.
func (e *oidcEnv) swapCode(t *testing.T, b *http.Client, callback *url.URL) (int, string, *url.URL) {
	t.Helper()
	cb := e.authorize(t, b, e.start(t, b, "/"), oidcAlice.Subject)
	q := cb.Query()
	q.Set("code", callback.Query().Get("code"))
	cb.RawQuery = q.Encode()
	status, body, _ := oidcGet(t, b, cb.String())
	return status, body, cb
}

// TestOIDCReturn checks that a login returns only to a path on vigil.
func TestOIDCReturn(t *testing.T) {
	e := newOIDCEnv(t, oidctest.Options{})
	for ret, want := range map[string]string{
		"/alerts/7?tab=timeline#x":               "/alerts/7?tab=timeline#x",
		"":                                       "/",
		"//evil.example":                         "/",
		"https://evil.example":                   "/",
		`/\evil.example`:                         "/",
		"/\t/evil.example":                       "/",
		"alerts":                                 "/",
		"/" + strings.Repeat("a", maxOIDCReturn): "/",
	} {
		status, body, _ := e.login(t, oidcBrowser(t), ret, oidcAlice.Subject)
		if status != http.StatusOK {
			t.Fatalf("login returning to %q: %d %s", ret, status, body)
		}
		if got := oidcLanding(t, body); got != want {
			t.Errorf("a login returning to %q moves on to %q, want %q", ret, got, want)
		}
	}
}

// TestOIDCLockout checks that failed OIDC logins count toward the
// address's lockout, with wrong passwords.
func TestOIDCLockout(t *testing.T) {
	e := newOIDCEnv(t, oidctest.Options{})
	b := oidcBrowser(t)
	for range 3 {
		resp, err := b.Post(e.vigil+"/api/v1/login", "application/json", strings.NewReader(`{"name": "alice@example.com", "password": "wrong"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %s", resp.Status)
		}
	}
	for range 2 {
		if status, body, _ := e.login(t, b, "/", oidcMallory.Subject); status != http.StatusForbidden {
			t.Fatalf("unknown identity: %d %s", status, body)
		}
	}
	n := len(e.logins())
	if status, body, _ := oidcGet(t, b, e.vigil+"/api/v1/oidc/login"); status != http.StatusTooManyRequests {
		t.Errorf("starting a login when locked out: %d %s", status, body)
	}
	if status, body, _ := oidcGet(t, b, e.vigil+OIDCCallbackPath+"?state=x&code=y"); status != http.StatusTooManyRequests {
		t.Errorf("callback when locked out: %d %s", status, body)
	}
	recs := e.logins()[n:]
	if len(recs) != 2 || recs[0].Detail != "oidc: refused: locked out" || recs[1].Detail != "oidc: refused: locked out" || recs[1].Status != http.StatusTooManyRequests {
		t.Errorf("records of locked-out logins: %+v", recs)
	}
}

// failFirst fails its first round trip, as a provider down when vigil
// starts.
type failFirst struct{ failed atomic.Bool }

func (f *failFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	if !f.failed.Swap(true) {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestOIDCDiscoveryRetry checks that a provider that could not be
// discovered is discovered at the next login.
func TestOIDCDiscoveryRetry(t *testing.T) {
	e := newOIDCEnv(t, oidctest.Options{})
	e.o.client.Transport = &failFirst{}
	b := oidcBrowser(t)
	status, body, _ := oidcGet(t, b, e.vigil+"/api/v1/oidc/login")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, e.provider.Issuer) {
		t.Errorf("login with the provider down: %d %s, want 503 naming the issuer", status, body)
	}
	if recs := e.logins(); len(recs) != 1 || recs[0].Detail != "oidc: failed: provider discovery failed" {
		t.Errorf("records: %+v", recs)
	}
	if status, body, _ := e.login(t, b, "/", oidcAlice.Subject); status != http.StatusOK {
		t.Errorf("login once the provider is up: %d %s", status, body)
	}
}

func TestNewOIDC(t *testing.T) {
	ok := OIDCConfig{Issuer: "https://id.example", ClientID: "vigil", ClientSecret: "s", RedirectURL: "https://vigil.example" + OIDCCallbackPath}
	for _, tc := range []struct {
		name   string
		change func(*OIDCConfig)
		ok     bool
	}{
		{"https", func(*OIDCConfig) {}, true},
		{"http on loopback", func(c *OIDCConfig) { c.Issuer = "http://127.0.0.1:5556/dex" }, true},
		{"http elsewhere", func(c *OIDCConfig) { c.Issuer = "http://id.example" }, false},
		{"no issuer", func(c *OIDCConfig) { c.Issuer = "" }, false},
		{"no client secret", func(c *OIDCConfig) { c.ClientSecret = "" }, false},
		{"relative redirect URL", func(c *OIDCConfig) { c.RedirectURL = OIDCCallbackPath }, false},
	} {
		c := ok
		tc.change(&c)
		if _, err := NewOIDC(c); (err == nil) != tc.ok {
			t.Errorf("%s: NewOIDC: %v", tc.name, err)
		}
	}
}

// TestPendingLogins checks that logins under way expire, are good for
// one callback, and stay bounded in number.
func TestPendingLogins(t *testing.T) {
	now := time.Now()
	p := pendingLogins{m: map[string]pendingLogin{}}
	p.add("stale", pendingLogin{expires: now.Add(-time.Second)}, now)
	if _, ok := p.take("stale", now); ok {
		t.Error("an expired login was taken")
	}
	p.add("first", pendingLogin{expires: now.Add(time.Minute)}, now)
	p.add("expired", pendingLogin{expires: now.Add(-time.Second)}, now)
	for i := range maxPendingOIDC - 1 {
		p.add(strconv.Itoa(i), pendingLogin{expires: now.Add(oidcPending)}, now)
	}
	if len(p.m) != maxPendingOIDC || p.m["first"].expires.IsZero() || !p.m["expired"].expires.IsZero() {
		t.Errorf("%d logins under way; the expired one should have gone first", len(p.m))
	}
	p.add("last", pendingLogin{expires: now.Add(oidcPending)}, now)
	if len(p.m) != maxPendingOIDC || !p.m["first"].expires.IsZero() {
		t.Errorf("%d logins under way; the oldest should have gone", len(p.m))
	}
	if _, ok := p.take("last", now); !ok {
		t.Error("the last login is not under way")
	}
	if _, ok := p.take("last", now); ok {
		t.Error("a login was taken twice")
	}
}

func TestOIDCClaims(t *testing.T) {
	for js, want := range map[string]bool{
		`{"email_verified": true}`:    true,
		`{"email_verified": "true"}`:  true,
		`{"email_verified": false}`:   false,
		`{"email_verified": "false"}`: false,
		`{"email_verified": null}`:    false,
		`{}`:                          false,
	} {
		var c oidcClaims
		if err := json.Unmarshal([]byte(js), &c); err != nil || bool(c.EmailVerified) != want {
			t.Errorf("%s: email_verified %v, %v; want %v", js, c.EmailVerified, err, want)
		}
	}
}
