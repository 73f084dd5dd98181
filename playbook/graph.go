package playbook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Graph runs the Microsoft Entra ID containment actions through Microsoft
// Graph, as an app registration with a client secret, granted the
// application permission User.ReadWrite.All (or User.RevokeSessions.All
// and User.EnableDisableAccount.All). A Graph must not be copied after
// its first use.
type Graph struct {
	TenantID, ClientID, ClientSecret string
	// LoginURL is the Microsoft identity platform's; default
	// https://login.microsoftonline.com.
	LoginURL string
	// Endpoint is Graph's; default https://graph.microsoft.com.
	Endpoint string
	// Client sends Graph's requests and the token's; default
	// http.DefaultClient.
	Client *http.Client

	mu    sync.Mutex
	token *oauth2.Token
}

// Run runs one Graph action with its inputs. Each may be run again: a
// second revocation revokes what was issued since, a second disable
// finds the account disabled.
func (g *Graph) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	user := in["user"]
	if (action == "graph.revoke_sessions" || action == "graph.disable_user") && !validGraphUser(user) {
		return nil, fmt.Errorf("graph: user %q is not an object ID (a GUID) or a user principal name (alice@contoso.com)", user)
	}
	switch action {
	case "graph.revoke_sessions":
		// learn.microsoft.com/en-us/graph/api/user-revokesigninsessions
		if err := g.call(ctx, http.MethodPost, "/v1.0/users/"+url.PathEscape(user)+"/revokeSignInSessions", nil); err != nil {
			return nil, fmt.Errorf("graph: revoking the sessions of %s: %w", user, err)
		}
		return map[string]string{"user": user, "revoked": "true"}, nil
	case "graph.disable_user":
		// learn.microsoft.com/en-us/graph/api/user-update
		if err := g.call(ctx, http.MethodPatch, "/v1.0/users/"+url.PathEscape(user), []byte(`{"accountEnabled":false}`)); err != nil {
			return nil, fmt.Errorf("graph: disabling %s: %w", user, err)
		}
		return map[string]string{"user": user, "account_enabled": "false"}, nil
	}
	return nil, fmt.Errorf("no Graph action %q", action)
}

// call sends a request to Graph, with body as JSON if there is one.
func (g *Graph) call(ctx context.Context, method, path string, body []byte) error {
	token, err := g.accessToken(ctx)
	if err != nil {
		return err
	}
	var r io.Reader // none: Go sends Content-Length: 0, which Graph wants of a POST
	if body != nil {
		r = bytes.NewReader(body)
	}
	endpoint := cmp.Or(g.Endpoint, "https://graph.microsoft.com")
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(endpoint, "/")+path, r)
	if err != nil {
		return err
	}
	token.SetAuthHeader(req)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return callREST(cmp.Or(g.Client, http.DefaultClient), req, "graph", func() {
		g.forget(token) // expired or revoked early: the next call gets another
	})
}

// accessToken returns a token for Graph: the one it has, or a new one
// from the client credentials grant when that is about to expire
// (learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
// Calls wait for one another, so that they share a single token request.
func (g *Graph) accessToken(ctx context.Context) (*oauth2.Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.TenantID == "" || g.ClientID == "" || g.ClientSecret == "" {
		return nil, errors.New("TenantID, ClientID and ClientSecret are all needed")
	}
	login := strings.TrimSuffix(cmp.Or(g.LoginURL, "https://login.microsoftonline.com"), "/")
	conf := &clientcredentials.Config{
		ClientID:     g.ClientID,
		ClientSecret: g.ClientSecret,
		TokenURL:     login + "/" + url.PathEscape(g.TenantID) + "/oauth2/v2.0/token",
		Scopes:       []string{"https://graph.microsoft.com/.default"},
		// The form, as Microsoft documents it; and no guessing, which
		// would send the secret a second time on a refusal.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	// The token request is this call's: it is cancelled with ctx, and
	// sent by Client.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, cmp.Or(g.Client, http.DefaultClient))
	token, err := oauth2.ReuseTokenSource(g.token, conf.TokenSource(ctx)).Token()
	if err != nil {
		// oauth2's error shows the whole answer: keep only its status,
		// code and description.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			err = &APIError{Service: "graph.login", Status: re.Response.StatusCode, Code: re.ErrorCode, Message: re.ErrorDescription}
		}
		return nil, fmt.Errorf("getting a token for tenant %s: %w", g.TenantID, err)
	}
	g.token = token
	return token, nil
}

func (g *Graph) forget(token *oauth2.Token) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.token == token {
		g.token = nil
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validGraphUser reports whether s names a user as Graph's users/{id}
// takes it: an object ID, or a user principal name, one @ between a name
// and a domain, with nothing that would end or change the URL's path.
func validGraphUser(s string) bool {
	if guidRE.MatchString(s) {
		return true
	}
	name, domain, ok := strings.Cut(s, "@")
	return ok && name != "" && domain != "" && !strings.ContainsAny(s, "/?#%\\") && !strings.Contains(domain, "@") &&
		!strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}
