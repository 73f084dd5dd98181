package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web"
	"github.com/vigilsec/vigil/web/browsertest"
	"github.com/vigilsec/vigil/web/oidctest"
)

// TestOIDCBrowserLogin logs a user in to vigil serve through an OpenID
// Connect provider, in a real headless Chromium: the console's login
// starts at vigil, fills the provider's form, comes back to vigil's
// callback and lands, with a session, on the page it asked for.
//
// vigil is at localhost and the provider at 127.0.0.1: two sites, as in
// production, so the browser applies its cross-site cookie rules (the
// provider's redirect back is a cross-site navigation, on which the
// SameSite=Strict session cookie would not be sent; the callback's page
// moves on by a same-site navigation, on which it is).
func TestOIDCBrowserLogin(t *testing.T) {
	ctx := browsertest.New(t)
	data := t.TempDir()
	port := freeLoopbackPort(t)
	site := "http://localhost:" + port
	provider := oidctest.NewServer(t, oidctest.Options{ClientID: "vigil", ClientSecret: "s3cret-of-vigil", RedirectURL: site + web.OIDCCallbackPath,
		Users: []oidctest.User{{Subject: "alice-1", Email: "alice@example.com", EmailVerified: true}}})
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("s3cret-of-vigil\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serveWith(t, data, "--listen", "127.0.0.1:"+port, "--oidc-issuer", provider.Issuer, "--oidc-client-id", "vigil",
		"--oidc-client-secret-file", secret, "--oidc-redirect-url", site+web.OIDCCallbackPath)
	w := &accessWorld{srv: srv, data: data, admin: srv.token}
	alice := w.mustAPI("POST", "/api/v1/access/principals", map[string]any{"name": "alice@example.com"})["id"].(string)
	w.mustAPI("POST", "/api/v1/access/bindings", map[string]any{"subject": "principal:" + alice, "tenant": "team-a", "role": "analyst"})

	fail := func(step string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\nserver log:\n%s", step, err, srv.log.String())
	}
	err := chromedp.Do(ctx, chromedp.Navigate(site+"/api/v1/oidc/login?return=/api/v1/whoami"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	if err != nil {
		fail("opening the login", err)
	}
	provAt, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		fail("reading the provider's address", err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "alice-1"), chromedp.Submit(chromedp.CSS(`input[name=username]`))); err != nil {
		fail("logging in at the provider", err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/api/v1/whoami" && document.body.innerText.includes("alice@example.com")`, 20*time.Second)
	landed, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		fail("reading the address", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		fail("reading the page", err)
	}
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		fail("reading the cookies", err)
	}
	if !strings.HasPrefix(provAt, provider.Issuer+"/authorize?") {
		t.Errorf("the login went to %s, not the provider", provAt)
	}
	// The page is whoami's answer: the session, and its CSRF token for
	// the console's changes.
	if landed != site+"/api/v1/whoami" || !strings.Contains(body, alice) || !strings.Contains(body, `"session `) || !strings.Contains(body, `"csrf":"`) {
		t.Errorf("landed on %s, seeing %s", landed, body)
	}
	// The session is out of scripts' reach.
	if strings.Contains(cookies, "vigil_session") {
		t.Errorf("a script reads the session cookie: %q", cookies)
	}
	browsertest.Screenshot(t, ctx, "logged-in")

	// The login is one record in the audit trail, and says how.
	w.auditCounts(map[string]int{
		`action:login outcome:success actor:"alice@example.com" detail:oidc*`: 1,
	})
}

// freeLoopbackPort returns a loopback port nothing listens on now, for a
// server whose address must be known before it starts (it is in the
// redirect URL the provider is told of).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
