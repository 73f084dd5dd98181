// Package oidctest runs an OpenID Connect provider on loopback for tests,
// as net/http/httptest runs a server: discovery, a key set, an
// authorization endpoint with a login form, and a token endpoint that
// issues RS256-signed ID tokens.
//
// It checks requests as OpenID Connect Core 1.0 (the authorization code
// flow) and RFC 7636 (PKCE, S256 only) document them, and no more
// loosely, so that a relying party that logs in against it does what
// those specifications ask: exact redirect URIs, a code challenge on
// every authorization request, client authentication, single-use,
// short-lived codes bound to their client, redirect URI and verifier.
// Errors are RFC 6749's. It is not a provider to deploy: its users have
// no passwords.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Lifetimes of what the provider issues. RFC 6749 (4.1.2) asks that a
// code live no more than ten minutes; a test needs less.
const (
	codeLifetime  = time.Minute
	tokenLifetime = 5 * time.Minute
)

// keyID names the provider's signing key in its key set and in the
// headers of the tokens it signs.
const keyID = "oidctest"

// A User is someone who can log in at the provider.
type User struct {
	// Subject is the user's sub claim, and the name the login form
	// takes.
	Subject           string
	Email             string
	EmailVerified     bool
	PreferredUsername string
}

// Options configure a Server.
type Options struct {
	// ClientID and ClientSecret are the one client's credentials.
	ClientID, ClientSecret string
	// RedirectURL is the client's one registered redirect URI;
	// authorization and token requests must name it exactly.
	RedirectURL string
	Users       []User
	// Claims, if set, changes each ID token's claims before it is
	// signed, so that a test sees its relying party refuse a bad token:
	// another audience, an expired token, another nonce.
	Claims func(claims map[string]any)
	// ForeignKey signs ID tokens with a key the provider does not
	// publish, under the published key's ID: a forged signature.
	ForeignKey bool
}

// A Server is an OpenID Connect provider listening on loopback. It is
// closed when its test ends.
type Server struct {
	// Issuer is the provider's issuer identifier, its base URL
	// (http://127.0.0.1:PORT), where discovery begins.
	Issuer string

	opts   Options
	key    *rsa.PrivateKey // published
	signer jose.Signer

	mu    sync.Mutex
	codes map[string]grant
}

// A grant is what an authorization code stands for until it is
// redeemed.
type grant struct {
	user        User
	redirectURI string
	challenge   string // the S256 code challenge
	nonce       string
	expires     time.Time
}

// NewServer starts a provider for t, on 127.0.0.1.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oidctest: generating the signing key: %v", err)
	}
	signWith := key
	if opts.ForeignKey {
		if signWith, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatalf("oidctest: generating the foreign key: %v", err)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: signWith, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("oidctest: making the signer: %v", err)
	}
	s := &Server{opts: opts, key: key, signer: signer, codes: make(map[string]grant)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.Issuer = srv.URL
	return s
}

// discovery serves the provider's metadata (OpenID Connect Discovery
// 1.0, section 3).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.Issuer,
		"authorization_endpoint":                s.Issuer + "/authorize",
		"token_endpoint":                        s.Issuer + "/token",
		"jwks_uri":                              s.Issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "preferred_username"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &s.key.PublicKey, KeyID: keyID, Algorithm: string(jose.RS256), Use: "sig"},
	}})
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>oidctest: sign in</title></head>
<body>
<h1>Sign in</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/authorize">
{{range $name, $value := .Params}}<input type="hidden" name="{{$name}}" value="{{$value}}">
{{end}}<label>Username <input name="username" autocomplete="username" autofocus></label>
<button type="submit">Sign in</button>
<button type="submit" name="deny" value="1">Cancel</button>
</form>
</body>
</html>
`))

// authorize is the authorization endpoint (OpenID Connect Core 1.0,
// 3.1.2). Without a username it shows the login form, which posts the
// request back with one; a request that names a username (in the query
// or the form) is approved at once, so that an HTTP client logs in
// without a form. A request that names deny is refused, as a user who
// cancels.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed request: "+err.Error(), http.StatusBadRequest)
		return
	}
	f := r.Form
	// A request with an unknown client or redirect URI is not
	// redirected (RFC 6749, 4.1.2.1): it may come from an attacker
	// who wants a trusted provider to send the browser elsewhere.
	if f.Get("client_id") != s.opts.ClientID {
		http.Error(w, "invalid_request: unknown client_id", http.StatusBadRequest)
		return
	}
	if f.Get("redirect_uri") != s.opts.RedirectURL {
		http.Error(w, "invalid_request: redirect_uri is not the client's registered redirect URI", http.StatusBadRequest)
		return
	}
	refuse := func(code, description string) {
		s.redirect(w, r, url.Values{"error": {code}, "error_description": {description}, "state": {f.Get("state")}})
	}
	switch {
	case f.Get("response_type") != "code":
		refuse("unsupported_response_type", "only the authorization code flow (response_type=code) is supported")
		return
	case !slices.Contains(strings.Fields(f.Get("scope")), "openid"):
		refuse("invalid_scope", "an OpenID Connect request's scope includes openid")
		return
	case f.Get("code_challenge") == "":
		refuse("invalid_request", "code challenge required")
		return
	case f.Get("code_challenge_method") != "S256":
		// RFC 7636 (4.3): an absent method means plain, which this
		// provider does not take.
		refuse("invalid_request", "transform algorithm not supported: code_challenge_method must be S256")
		return
	case !validChallenge(f.Get("code_challenge")):
		refuse("invalid_request", "code_challenge is not a base64url-encoded SHA-256 hash")
		return
	case f.Get("deny") != "":
		refuse("access_denied", "the user refused")
		return
	}
	params := map[string]string{}
	for _, name := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"} {
		if v := f.Get(name); v != "" {
			params[name] = v
		}
	}
	name := f.Get("username")
	if name == "" {
		s.showForm(w, http.StatusOK, params, "")
		return
	}
	i := slices.IndexFunc(s.opts.Users, func(u User) bool { return u.Subject == name })
	if i < 0 {
		s.showForm(w, http.StatusUnauthorized, params, "No such user.")
		return
	}
	code := rand.Text()
	s.mu.Lock()
	s.codes[code] = grant{user: s.opts.Users[i], redirectURI: f.Get("redirect_uri"), challenge: f.Get("code_challenge"),
		nonce: f.Get("nonce"), expires: time.Now().Add(codeLifetime)}
	s.mu.Unlock()
	s.redirect(w, r, url.Values{"code": {code}, "state": {f.Get("state")}})
}

func (s *Server) showForm(w http.ResponseWriter, status int, params map[string]string, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	loginForm.Execute(w, struct {
		Params map[string]string
		Error  string
	}{params, msg})
}

// redirect sends the browser back to the client's redirect URI with the
// answer's parameters added to its query.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, answer url.Values) {
	u, _ := url.Parse(s.opts.RedirectURL) // checked equal to the request's, which the browser sent
	q := u.Query()
	for k, vs := range answer {
		if vs[0] != "" {
			q[k] = vs
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// token is the token endpoint (OpenID Connect Core 1.0, 3.1.3): it
// redeems a code for an ID token once, for the client it was issued to,
// given the redirect URI and the PKCE verifier of its authorization
// request.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	f := r.PostForm
	// Client authentication (RFC 6749, 2.3.1): HTTP Basic with the
	// form-encoded id and secret, or both in the body; not both ways.
	id, secret, basic := r.BasicAuth()
	switch {
	case basic && f.Has("client_secret"):
		tokenError(w, http.StatusBadRequest, "invalid_request", "the client authenticated in more than one way")
		return
	case basic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || f.Has("client_id") && f.Get("client_id") != id {
			w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
			tokenError(w, http.StatusUnauthorized, "invalid_client", "malformed client credentials")
			return
		}
	default:
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if id != s.opts.ClientID || secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	code := f.Get("code")
	s.mu.Lock()
	g, ok := s.codes[code]
	delete(s.codes, code) // used, whatever comes of it
	s.mu.Unlock()
	switch {
	case !ok || time.Now().After(g.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case f.Get("redirect_uri") != g.redirectURI:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case !validVerifier(f.Get("code_verifier")):
		tokenError(w, http.StatusBadRequest, "invalid_request", "code_verifier missing or malformed")
		return
	}
	// RFC 7636 (4.6): BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code challenge")
		return
	}
	idToken, err := s.idToken(g)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rand.Text(),
		"token_type":   "Bearer",
		"expires_in":   int(tokenLifetime.Seconds()),
		"id_token":     idToken,
	})
}

// idToken signs the ID token of a redeemed grant (OpenID Connect Core
// 1.0, 2).
func (s *Server) idToken(g grant) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss":            s.Issuer,
		"sub":            g.user.Subject,
		"aud":            s.opts.ClientID,
		"exp":            now.Add(tokenLifetime).Unix(),
		"iat":            now.Unix(),
		"email_verified": g.user.EmailVerified,
	}
	for k, v := range map[string]string{"nonce": g.nonce, "email": g.user.Email, "preferred_username": g.user.PreferredUsername} {
		if v != "" {
			claims[k] = v
		}
	}
	if s.opts.Claims != nil {
		s.opts.Claims(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// validChallenge reports whether c can be an S256 code challenge: the
// unpadded base64url encoding of 32 bytes.
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// validVerifier reports whether v is a code verifier as RFC 7636 (4.1)
// defines one: 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range []byte(v) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

// tokenError answers a token request with an error of RFC 6749, 5.2.
func tokenError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
