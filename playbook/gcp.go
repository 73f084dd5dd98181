package playbook

import (
	"cmp"
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
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// GCP runs the Google Cloud containment actions through the IAM API's
// REST interface, as the service account whose key file it is given.
// Disabling what is already disabled succeeds at Google, so each action
// is idempotent. A GCP must not be copied after its first use.
type GCP struct {
	// CredentialsJSON is a service account key file (type
	// "service_account"), as the console's "Create key" gives it.
	CredentialsJSON []byte
	// Endpoint is the IAM API's; default https://iam.googleapis.com.
	Endpoint string
	// Client sends the API's requests and the token's; default
	// http.DefaultClient.
	Client *http.Client

	mu     sync.Mutex
	creds  *gcpCredentials // read from CredentialsJSON on first use
	token  string
	expiry time.Time
}

// gcpScope is the scope the token is asked for: IAM's methods take it.
const gcpScope = "https://www.googleapis.com/auth/cloud-platform"

// Run runs one GCP action with its inputs.
func (g *GCP) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	switch action {
	case "gcp.iam.disable_key":
		name, err := gcpKeyName(in["key"], in["service_account"])
		if err != nil {
			return nil, err
		}
		// cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys/disable
		if err := g.disable(ctx, name); err != nil {
			return nil, err
		}
		return map[string]string{"key": name, "state": "disabled"}, nil
	case "gcp.iam.disable_service_account":
		project, account, err := gcpServiceAccount(in["service_account"])
		if err != nil {
			return nil, err
		}
		// cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/disable
		if err := g.disable(ctx, "projects/"+project+"/serviceAccounts/"+account); err != nil {
			return nil, err
		}
		return map[string]string{"service_account": account, "state": "disabled"}, nil
	}
	return nil, fmt.Errorf("no GCP action %q", action)
}

// disable calls the disable method of the resource name, whose segments
// have been checked: none holds a '/'.
func (g *GCP) disable(ctx context.Context, name string) error {
	token, err := g.accessToken(ctx)
	if err != nil {
		return err
	}
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	endpoint := cmp.Or(g.Endpoint, "https://iam.googleapis.com")
	u := strings.TrimSuffix(endpoint, "/") + "/v1/" + strings.Join(segs, "/") + ":disable"
	// The disable methods take an empty request message, sent as {}.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		return fmt.Errorf("gcp: disabling %s: %w", name, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	err = callREST(cmp.Or(g.Client, http.DefaultClient), req, "gcp.iam", func() {
		g.forget(token) // revoked early: the next call gets another
	})
	if err != nil {
		return fmt.Errorf("gcp: disabling %s: %w", name, err)
	}
	return nil
}

// accessToken returns an access token for the service account: the one
// it has, or a new one when that is about to expire. Calls wait for one
// another, so that they share a single token request.
func (g *GCP) accessToken(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.token != "" && time.Until(g.expiry) > time.Minute {
		return g.token, nil
	}
	if g.creds == nil {
		c, err := parseGCPCredentials(g.CredentialsJSON)
		if err != nil {
			return "", err
		}
		g.creds = c
	}
	token, ttl, err := g.creds.fetchToken(ctx, cmp.Or(g.Client, http.DefaultClient))
	if err != nil {
		return "", err
	}
	g.token, g.expiry = token, time.Now().Add(ttl)
	return token, nil
}

func (g *GCP) forget(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.token == token {
		g.token = ""
	}
}

// gcpCredentials is what a service account key file holds that the
// token request needs.
type gcpCredentials struct {
	email, keyID, tokenURI string
	key                    *rsa.PrivateKey
}

func parseGCPCredentials(data []byte) (*gcpCredentials, error) {
	var f struct {
		Type         string `json:"type"`
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("gcp: reading the credentials: %w", err)
	}
	if f.Type != "service_account" {
		return nil, fmt.Errorf("gcp: the credentials are of type %q, not a service account key (service_account)", f.Type)
	}
	if f.ClientEmail == "" || f.PrivateKeyID == "" {
		return nil, errors.New("gcp: the service account key has no client_email or no private_key_id")
	}
	// Google writes the key as PKCS #8 PEM; the error says nothing of
	// the key's bytes.
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return nil, fmt.Errorf("gcp: the private_key of %s is not PEM", f.ClientEmail)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("gcp: the private_key of %s is not an RSA private key", f.ClientEmail)
	}
	return &gcpCredentials{
		email: f.ClientEmail, keyID: f.PrivateKeyID, key: rsaKey,
		tokenURI: cmp.Or(f.TokenURI, "https://oauth2.googleapis.com/token"),
	}, nil
}

// fetchToken trades a JWT signed with the service account's key for an
// access token (RFC 7523), as
// developers.google.com/identity/protocols/oauth2/service-account#httprest
// describes: it returns the token and how long it is valid.
func (c *gcpCredentials) fetchToken(ctx context.Context, client *http.Client) (string, time.Duration, error) {
	assertion, err := c.assertion(time.Now())
	if err != nil {
		return "", 0, err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("gcp: getting a token for %s: %w", c.email, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("gcp: getting a token for %s: %w", c.email, err)
	}
	defer resp.Body.Close()
	// Both answers are JSON: the token, or an OAuth 2.0 error
	// (RFC 6749 §5.2), e.g. {"error":"invalid_grant","error_description":"Invalid JWT Signature."}.
	var body struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		TokenType        string `json:"token_type"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	decodeErr := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	if resp.StatusCode/100 != 2 {
		err := &APIError{Service: "gcp.oauth2", Status: resp.StatusCode, Code: body.Error, Message: body.ErrorDescription}
		return "", 0, fmt.Errorf("gcp: getting a token for %s: %w", c.email, err)
	}
	if decodeErr != nil || body.AccessToken == "" || !strings.EqualFold(body.TokenType, "Bearer") {
		return "", 0, fmt.Errorf("gcp: getting a token for %s: the answer holds no bearer token", c.email)
	}
	return body.AccessToken, time.Duration(body.ExpiresIn) * time.Second, nil
}

// assertion returns the JWT of the token request: RS256, its header
// naming the key, valid for the hour Google allows at most.
func (c *gcpCredentials) assertion(now time.Time) (string, error) {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": c.keyID})
	claims, _ := json.Marshal(map[string]any{
		"iss": c.email, "scope": gcpScope, "aud": c.tokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("gcp: signing the token request of %s: %w", c.email, err)
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

var (
	// A project's ID (6 to 30 characters, maybe under a domain:
	// example.com:my-project), its number, or - for any project.
	gcpProjectRE = regexp.MustCompile(`^(-|[0-9]+|([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9])$`)
	// A service account's email, or its unique ID, which IAM takes too.
	gcpAccountRE = regexp.MustCompile(`^([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|[0-9]+)$`)
	gcpKeyIDRE   = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// gcpKeyName returns a key's resource name from the inputs: key is its
// name, projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID, or its bare
// ID, with account the service account's email or name.
func gcpKeyName(key, account string) (string, error) {
	if strings.HasPrefix(key, "projects/") {
		p := strings.Split(key, "/")
		if len(p) != 6 || p[2] != "serviceAccounts" || p[4] != "keys" ||
			!gcpProjectRE.MatchString(p[1]) || !gcpAccountRE.MatchString(p[3]) || !gcpKeyIDRE.MatchString(p[5]) {
			return "", fmt.Errorf("gcp: key %q is not a key's name (projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID)", key)
		}
		return key, nil
	}
	if !gcpKeyIDRE.MatchString(key) {
		return "", fmt.Errorf("gcp: key %q is neither a key's name (projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID) nor a key ID", key)
	}
	if account == "" {
		return "", fmt.Errorf("gcp: key %q is a bare key ID: give its service_account too, or the key's full name", key)
	}
	project, email, err := gcpServiceAccount(account)
	if err != nil {
		return "", err
	}
	return "projects/" + project + "/serviceAccounts/" + email + "/keys/" + key, nil
}

// gcpServiceAccount reads a service account, an email or
// projects/PROJECT/serviceAccounts/EMAIL, returning its project (- for
// an email alone: IAM finds the project from the account) and email.
func gcpServiceAccount(s string) (project, account string, err error) {
	project, account = "-", s
	if strings.HasPrefix(s, "projects/") {
		p := strings.Split(s, "/")
		if len(p) != 4 || p[2] != "serviceAccounts" || !gcpProjectRE.MatchString(p[1]) {
			return "", "", fmt.Errorf("gcp: service_account %q is not an email or projects/PROJECT/serviceAccounts/EMAIL", s)
		}
		project, account = p[1], p[3]
	}
	if !gcpAccountRE.MatchString(account) {
		return "", "", fmt.Errorf("gcp: service_account %q is not an email or projects/PROJECT/serviceAccounts/EMAIL", s)
	}
	return project, account, nil
}
