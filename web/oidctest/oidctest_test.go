package oidctest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/vigilsec/vigil/web/oidctest"
)

const redirectURL = "http://127.0.0.1:1/callback"

var alice = oidctest.User{Subject: "alice", Email: "alice@example.com", EmailVerified: true, PreferredUsername: "al"}

func newServer(t *testing.T, opts oidctest.Options) *oidctest.Server {
	opts.ClientID, opts.ClientSecret, opts.RedirectURL = "vigil", "s3cret", redirectURL
	opts.Users = []oidctest.User{alice}
	return oidctest.NewServer(t, opts)
}

// noRedirects stops at the provider's answer, which points at a client
// that is not listening.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authParams are an authorization request's parameters, as a client
// following the specs sends them.
func authParams(verifier string) url.Values {
	return url.Values{
		"client_id": {"vigil"}, "redirect_uri": {redirectURL}, "response_type": {"code"}, "scope": {"openid email"},
		"state": {"st"}, "nonce": {"n0"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

func get(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// code logs alice in and returns the code the provider sends back.
func code(t *testing.T, s *oidctest.Server, verifier string) string {
	t.Helper()
	p := authParams(verifier)
	p.Set("username", "alice")
	resp := get(t, s.Issuer+"/authorize?"+p.Encode())
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %s, no redirect: %v", resp.Status, err)
	}
	if loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize redirected to %s", loc)
	}
	return loc.Query().Get("code")
}

// TestLogin logs in as a relying party does, with go-oidc and oauth2.
func TestLogin(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, oidctest.Options{})
	provider, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: "vigil", ClientSecret: "s3cret", RedirectURL: redirectURL, Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()

	// Without a username, the provider asks for one.
	resp := get(t, cfg.AuthCodeURL("st", oidc.Nonce("n0"), oauth2.S256ChallengeOption(verifier)))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="username"`) || !strings.Contains(string(body), `value="n0"`) {
		t.Fatalf("login form: %s\n%s", resp.Status, body)
	}

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg.Endpoint.AuthStyle = style
		tok, err := cfg.Exchange(ctx, code(t, s, verifier), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange (auth style %d): %v", style, err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: "vigil"}).Verify(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Email             string `json:"email"`
			EmailVerified     bool   `json:"email_verified"`
			PreferredUsername string `json:"preferred_username"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != "alice" || idt.Nonce != "n0" || claims.Email != alice.Email || !claims.EmailVerified || claims.PreferredUsername != "al" {
			t.Errorf("ID token: %+v, claims %+v", idt, claims)
		}
	}
}

// TestAuthorizeRefusals checks that bad authorization requests are
// refused: in place when the client or redirect URI is wrong, else back
// at the client with an RFC 6749 error.
func TestAuthorizeRefusals(t *testing.T) {
	s := newServer(t, oidctest.Options{})
	verifier := oauth2.GenerateVerifier()
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		status int
		error  string // at the client
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "other") }, http.StatusBadRequest, ""},
		{"unregistered redirect URI", func(v url.Values) { v.Set("redirect_uri", redirectURL+"/x") }, http.StatusBadRequest, ""},
		{"implicit flow", func(v url.Values) { v.Set("response_type", "id_token") }, http.StatusFound, "unsupported_response_type"},
		{"no openid scope", func(v url.Values) { v.Set("scope", "email") }, http.StatusFound, "invalid_scope"},
		{"no code challenge", func(v url.Values) { v.Del("code_challenge") }, http.StatusFound, "invalid_request"},
		{"plain code challenge", func(v url.Values) { v.Del("code_challenge_method") }, http.StatusFound, "invalid_request"},
		{"malformed code challenge", func(v url.Values) { v.Set("code_challenge", "short") }, http.StatusFound, "invalid_request"},
		{"user cancels", func(v url.Values) { v.Set("deny", "1") }, http.StatusFound, "access_denied"},
		{"unknown user", func(v url.Values) { v.Set("username", "mallory") }, http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := authParams(verifier)
			tc.change(p)
			resp := get(t, s.Issuer+"/authorize?"+p.Encode())
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d", resp.Status, tc.status)
			}
			loc, _ := resp.Location()
			if got := ""; loc != nil {
				if got = loc.Query().Get("error"); got != tc.error || loc.Query().Get("state") != "st" || !strings.HasPrefix(loc.String(), redirectURL) {
					t.Errorf("redirected to %s, want error %q", loc, tc.error)
				}
			} else if tc.error != "" {
				t.Errorf("no redirect, want error %q", tc.error)
			}
		})
	}
}

// TestTokenRefusals checks the token endpoint's client authentication,
// single use of codes, and PKCE.
func TestTokenRefusals(t *testing.T) {
	s := newServer(t, oidctest.Options{})
	verifier := oauth2.GenerateVerifier()
	redeem := func(t *testing.T, form url.Values, basic bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.Issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("vigil", url.QueryEscape("s3cret"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Error   string `json:"error"`
			IDToken string `json:"id_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK && answer.IDToken == "" {
			t.Error("no ID token")
		}
		return resp.StatusCode, answer.Error
	}
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURL}, "code_verifier": {verifier}}
	}

	c := code(t, s, verifier)
	if status, e := redeem(t, form(c), true); status != http.StatusOK {
		t.Fatalf("redeeming a code: %d %s", status, e)
	}
	if status, e := redeem(t, form(c), true); status != http.StatusBadRequest || e != "invalid_grant" {
		t.Errorf("redeeming a code twice: %d %q, want 400 invalid_grant", status, e)
	}
	post := form(code(t, s, verifier))
	post.Set("client_id", "vigil")
	post.Set("client_secret", "s3cret")
	if status, e := redeem(t, post, false); status != http.StatusOK {
		t.Errorf("client_secret_post: %d %s", status, e)
	}

	for _, tc := range []struct {
		name   string
		change func(url.Values)
		basic  bool
		status int
		error  string
	}{
		{"wrong verifier", func(v url.Values) { v.Set("code_verifier", oauth2.GenerateVerifier()) }, true, 400, "invalid_grant"},
		{"no verifier", func(v url.Values) { v.Del("code_verifier") }, true, 400, "invalid_request"},
		{"other redirect URI", func(v url.Values) { v.Set("redirect_uri", redirectURL+"/x") }, true, 400, "invalid_grant"},
		{"other grant type", func(v url.Values) { v.Set("grant_type", "password") }, true, 400, "unsupported_grant_type"},
		{"no client authentication", func(url.Values) {}, false, 401, "invalid_client"},
		{"wrong secret", func(v url.Values) { v.Set("client_id", "vigil"); v.Set("client_secret", "guess") }, false, 401, "invalid_client"},
		{"two authentication methods", func(v url.Values) { v.Set("client_secret", "s3cret") }, true, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := form(code(t, s, verifier))
			tc.change(f)
			if status, e := redeem(t, f, tc.basic); status != tc.status || e != tc.error {
				t.Errorf("got %d %q, want %d %q", status, e, tc.status, tc.error)
			}
		})
	}
}

// TestMisbehaving checks the options that make bad ID tokens.
func TestMisbehaving(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts oidctest.Options
		want string // in the verifier's error
	}{
		{"foreign key", oidctest.Options{ForeignKey: true}, "signature"},
		{"other audience", oidctest.Options{Claims: func(c map[string]any) { c["aud"] = "other" }}, "audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			provider, err := oidc.NewProvider(ctx, s.Issuer)
			if err != nil {
				t.Fatal(err)
			}
			verifier := oauth2.GenerateVerifier()
			cfg := oauth2.Config{ClientID: "vigil", ClientSecret: "s3cret", RedirectURL: redirectURL, Endpoint: provider.Endpoint()}
			tok, err := cfg.Exchange(ctx, code(t, s, verifier), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			_, err = provider.Verifier(&oidc.Config{ClientID: "vigil"}).Verify(ctx, raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verifying: %v, want an error about %s", err, tc.want)
			}
		})
	}
}
