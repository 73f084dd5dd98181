package playbook

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Google's token endpoint and IAM API are out of reach of the tests:
// gcpServers stands in for both, on 127.0.0.1, checking every request
// as Google documents it. The token endpoint
// (developers.google.com/identity/protocols/oauth2/service-account#httprest)
// takes only a form with the JWT-bearer grant and an RS256 JWT signed by
// the test's key, its header naming the key and its claims those of the
// key file; IAM (cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/disable,
// …/projects.serviceAccounts/disable) takes only a POST of {} as JSON
// with the token the endpoint gave.
type gcpServers struct {
	t      *testing.T
	key    *rsa.PrivateKey
	email  string
	keyID  string
	token  *httptest.Server
	iam    *httptest.Server
	mu     sync.Mutex
	tokens int      // token requests
	bad    []error  // why token requests were refused
	calls  []string // IAM requests' paths
	// fail, if set, answers IAM requests with a status and Google's error body.
	fail *struct {
		status       int
		code, reason string
	}
}

const gcpTestToken = "ya29.c.test-access-token"

func newGCPServers(t *testing.T) *gcpServers {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &gcpServers{t: t, key: key, email: "vigil@sec-ops-1.iam.gserviceaccount.com", keyID: "3f1b8a9c0d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a"}
	s.token = httptest.NewServer(http.HandlerFunc(s.serveToken))
	s.iam = httptest.NewServer(http.HandlerFunc(s.serveIAM))
	t.Cleanup(s.token.Close)
	t.Cleanup(s.iam.Close)
	return s
}

// credentials is a key file as the console writes it, with key, its
// token_uri the local token endpoint.
func (s *gcpServers) credentials(key *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "sec-ops-1", "private_key_id": s.keyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": s.email, "client_id": "104729384756102938475",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": s.token.URL + "/token",
	})
	return b
}

func (s *gcpServers) gcp() *GCP {
	return &GCP{CredentialsJSON: s.credentials(s.key), Endpoint: s.iam.URL}
}

func (s *gcpServers) serveToken(w http.ResponseWriter, r *http.Request) {
	err := s.checkTokenRequest(r)
	s.mu.Lock()
	s.tokens++
	if err != nil {
		s.bad = append(s.bad, err)
	}
	s.mu.Unlock()
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, gcpTestToken)
}

func (s *gcpServers) checkTokenRequest(r *http.Request) error {
	if r.Method != http.MethodPost || r.URL.Path != "/token" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return fmt.Errorf("%s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if len(r.PostForm) != 2 || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("form %v", r.PostForm)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return errors.New("the assertion is not a JWT")
	}
	enc := base64.RawURLEncoding
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var header struct{ Alg, Typ, Kid string }
	var claims struct {
		Iss, Scope, Aud string
		Iat, Exp        int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := enc.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	if header.Alg != "RS256" || header.Typ != "JWT" || header.Kid != s.keyID {
		return fmt.Errorf("header %+v", header)
	}
	now := time.Now().Unix()
	if claims.Iss != s.email || claims.Scope != "https://www.googleapis.com/auth/cloud-platform" || claims.Aud != s.token.URL+"/token" ||
		claims.Iat < now-60 || claims.Iat > now+5 || claims.Exp <= claims.Iat || claims.Exp-claims.Iat > 3600 {
		return fmt.Errorf("claims %+v", claims)
	}
	return nil
}

func (s *gcpServers) serveIAM(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if r.Header.Get("Authorization") != "Bearer "+gcpTestToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || string(body) != "{}" || !strings.HasSuffix(r.URL.Path, ":disable") {
		s.t.Errorf("IAM request: %s %s (%s) %q", r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":400,"message":"Invalid request.","status":"INVALID_ARGUMENT"}}`)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, r.URL.EscapedPath())
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		w.WriteHeader(fail.status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q}}`, fail.status, fail.reason, fail.code)
		return
	}
	fmt.Fprint(w, "{}\n") // google.protobuf.Empty
}

// TestGCPActions: each action and each form of its inputs makes the call
// IAM documents, at the exact path; several calls share one token.
func TestGCPActions(t *testing.T) {
	s := newGCPServers(t)
	g := s.gcp()
	const (
		sa    = "backdoor@victim-prod.iam.gserviceaccount.com"
		keyID = "0123456789abcdef0123456789abcdef01234567"
	)
	for _, tc := range []struct {
		action string
		in     map[string]string
		path   string
		out    map[string]string
	}{
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/" + keyID},
			"/v1/projects/victim-prod/serviceAccounts/" + sa + "/keys/" + keyID + ":disable",
			map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/" + keyID, "state": "disabled"}},
		{"gcp.iam.disable_key", map[string]string{"key": keyID, "service_account": sa},
			"/v1/projects/-/serviceAccounts/" + sa + "/keys/" + keyID + ":disable",
			map[string]string{"key": "projects/-/serviceAccounts/" + sa + "/keys/" + keyID, "state": "disabled"}},
		{"gcp.iam.disable_key", map[string]string{"key": keyID, "service_account": "projects/victim-prod/serviceAccounts/" + sa},
			"/v1/projects/victim-prod/serviceAccounts/" + sa + "/keys/" + keyID + ":disable",
			map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/" + keyID, "state": "disabled"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": sa},
			"/v1/projects/-/serviceAccounts/" + sa + ":disable",
			map[string]string{"service_account": sa, "state": "disabled"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "projects/victim-prod/serviceAccounts/" + sa},
			"/v1/projects/victim-prod/serviceAccounts/" + sa + ":disable",
			map[string]string{"service_account": sa, "state": "disabled"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "112233445566778899001"},
			"/v1/projects/-/serviceAccounts/112233445566778899001:disable",
			map[string]string{"service_account": "112233445566778899001", "state": "disabled"}},
	} {
		s.calls = nil
		out, err := g.Run(context.Background(), tc.action, tc.in)
		if err != nil {
			t.Errorf("%s %v: %v", tc.action, tc.in, err)
			continue
		}
		if len(s.calls) != 1 || s.calls[0] != tc.path {
			t.Errorf("%s %v: calls %q, want [%s]", tc.action, tc.in, s.calls, tc.path)
		}
		if !maps.Equal(out, tc.out) {
			t.Errorf("%s %v: outputs %v, want %v", tc.action, tc.in, out, tc.out)
		}
	}
	if s.tokens != 1 || len(s.bad) != 0 {
		t.Errorf("%d token requests (refused: %v), want 1 (the token is cached)", s.tokens, s.bad)
	}
}

// TestGCPErrors: Google's refusals become APIErrors classified for
// retries; a refused token request names no secret.
func TestGCPErrors(t *testing.T) {
	s := newGCPServers(t)
	g := s.gcp()
	in := map[string]string{"service_account": "backdoor@victim-prod.iam.gserviceaccount.com"}
	for _, tc := range []struct {
		status       int
		code, reason string
		failure      string
	}{
		{403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.disable' denied on resource (or it may not exist).", failRefused},
		{404, "NOT_FOUND", "Unknown service account", failRefused},
		{429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Service account write requests'.", failThrottled},
		{503, "UNAVAILABLE", "The service is currently unavailable.", failThrottled},
	} {
		s.fail = &struct {
			status       int
			code, reason string
		}{tc.status, tc.code, tc.reason}
		_, err := g.Run(context.Background(), "gcp.iam.disable_service_account", in)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Service != "gcp.iam" || ae.Status != tc.status || ae.Code != tc.code || ae.Message != tc.reason {
			t.Errorf("%d %s: %#v (%v)", tc.status, tc.code, ae, err)
		}
		if f := failure(err); f != tc.failure {
			t.Errorf("%d %s: failure %s, want %s", tc.status, tc.code, f, tc.failure)
		}
	}

	// A key file whose key is not the service account's: Google refuses
	// the signature.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.calls = nil
	_, err = (&GCP{CredentialsJSON: s.credentials(other), Endpoint: s.iam.URL}).Run(context.Background(), "gcp.iam.disable_service_account", in)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Service != "gcp.oauth2" || ae.Code != "invalid_grant" || failure(err) != failRefused {
		t.Errorf("a bad signature: %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "eyJ")) {
		t.Errorf("the error shows a secret: %v", err)
	}
	if len(s.bad) != 1 || !strings.Contains(s.bad[0].Error(), "signature") || len(s.calls) != 0 {
		t.Errorf("token refusals %v, IAM calls %q; want a bad signature and no call", s.bad, s.calls)
	}
}

// TestGCPBadInputs: inputs that are not what the actions take, and
// credentials that are not a service account key, fail before any
// request.
func TestGCPBadInputs(t *testing.T) {
	s := newGCPServers(t)
	g := s.gcp()
	const sa = "backdoor@victim-prod.iam.gserviceaccount.com"
	for _, tc := range []struct {
		action string
		in     map[string]string
	}{
		{"gcp.iam.disable_key", map[string]string{"key": ""}},
		{"gcp.iam.disable_key", map[string]string{"key": "0123456789abcdef"}}, // no service_account
		{"gcp.iam.disable_key", map[string]string{"key": "0123456789abcdef", "service_account": "backdoor"}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/"}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/abc/x"}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/serviceAccounts/" + sa + "/keys/abc:enable"}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/../serviceAccounts/" + sa + "/keys/abc"}},
		{"gcp.iam.disable_key", map[string]string{"key": "projects/victim-prod/users/" + sa + "/keys/abc"}},
		{"gcp.iam.disable_key", map[string]string{"key": "../abc"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": ""}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "backdoor"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "backdoor@victim-prod"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "a@b.com/keys/x"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "a b@victim-prod.iam.gserviceaccount.com"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "projects/victim-prod/serviceAccounts/" + sa + "/keys/abc"}},
		{"gcp.iam.disable_service_account", map[string]string{"service_account": "projects/Victim Prod/serviceAccounts/" + sa}},
		{"gcp.iam.delete_service_account", map[string]string{"service_account": sa}},
	} {
		if _, err := g.Run(context.Background(), tc.action, tc.in); err == nil {
			t.Errorf("%s %v: no error", tc.action, tc.in)
		}
	}
	for _, creds := range []string{
		``, `{`, `{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`,
		`{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key_id":"k","private_key":"not a key"}`,
	} {
		g := &GCP{CredentialsJSON: []byte(creds), Endpoint: s.iam.URL}
		if _, err := g.Run(context.Background(), "gcp.iam.disable_service_account", map[string]string{"service_account": sa}); err == nil {
			t.Errorf("credentials %s: no error", creds)
		}
	}
	if s.tokens != 0 || len(s.calls) != 0 {
		t.Errorf("%d token requests, IAM calls %q; want none", s.tokens, s.calls)
	}
}
