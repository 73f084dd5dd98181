package playbook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The Microsoft identity platform and Graph are out of reach of the
// tests: graphServers stands in for both, on 127.0.0.1, checking every
// request as Microsoft documents it. The login server
// (learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
// takes only the tenant's token path and the client credentials form,
// exactly; Graph (learn.microsoft.com/en-us/graph/api/user-revokesigninsessions,
// …/user-update) takes only the token the login server gave, and the
// method, path and body of each call.
type graphServers struct {
	t      *testing.T
	login  *httptest.Server
	graph  *httptest.Server
	mu     sync.Mutex
	tokens int      // token requests
	calls  []string // Graph requests: method and path
	// fail, if set, answers Graph with a status, an error code and headers.
	fail *graphFail
	// loginFail, if set, answers token requests with a status and an
	// OAuth 2.0 error code.
	loginFail *graphFail
}

type graphFail struct {
	status  int
	code    string
	message string
	header  map[string]string
}

const (
	graphTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	graphClient = "6731de76-14a6-49ae-97bc-6eba6914391e"
	graphSecret = "sampleCredentia1s~not-a-real-secret"
	graphToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-graph-token"
)

func newGraphServers(t *testing.T) *graphServers {
	s := &graphServers{t: t}
	s.login = httptest.NewServer(http.HandlerFunc(s.serveLogin))
	s.graph = httptest.NewServer(http.HandlerFunc(s.serveGraph))
	t.Cleanup(s.login.Close)
	t.Cleanup(s.graph.Close)
	return s
}

func (s *graphServers) client() *Graph {
	return &Graph{TenantID: graphTenant, ClientID: graphClient, ClientSecret: graphSecret, LoginURL: s.login.URL, Endpoint: s.graph.URL}
}

func (s *graphServers) serveLogin(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokens++
	fail := s.loginFail
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = r.ParseForm()
	want := map[string]string{
		"client_id": graphClient, "client_secret": graphSecret,
		"scope": "https://graph.microsoft.com/.default", "grant_type": "client_credentials",
	}
	got := map[string]string{}
	for k, v := range r.PostForm {
		got[k] = strings.Join(v, ",")
	}
	if r.Method != http.MethodPost || r.URL.Path != "/"+graphTenant+"/oauth2/v2.0/token" || len(r.URL.Query()) != 0 ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Authorization") != "" || !maps.Equal(got, want) {
		s.t.Errorf("token request: %s %s (%s) %v", r.Method, r.URL, r.Header.Get("Content-Type"), got)
		fail = &graphFail{status: http.StatusBadRequest, code: "invalid_request"}
	}
	if fail != nil {
		w.WriteHeader(fail.status)
		fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333"}`, fail.code)
		return
	}
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, graphToken)
}

func (s *graphServers) serveGraph(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+graphToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`)
		return
	}
	path := r.URL.EscapedPath()
	revoke := r.Method == http.MethodPost && strings.HasSuffix(path, "/revokeSignInSessions") &&
		r.Header.Get("Content-Length") == "0" && len(body) == 0
	disable := r.Method == http.MethodPatch && !strings.HasSuffix(path, "/revokeSignInSessions") &&
		r.Header.Get("Content-Type") == "application/json" && string(body) == `{"accountEnabled":false}`
	if !strings.HasPrefix(path, "/v1.0/users/") || !revoke && !disable {
		s.t.Errorf("Graph request: %s %s (%s) %q", r.Method, path, r.Header.Get("Content-Type"), body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"BadRequest","message":"Invalid request."}}`)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+path)
	fail := s.fail
	s.mu.Unlock()
	switch {
	case fail != nil:
		for k, v := range fail.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(fail.status)
		fmt.Fprintf(w, `{"error":{"code":%q,"message":%q,"innerError":{"date":"2024-07-10T12:00:00","request-id":"b9a4c2a8-0000-0000-0000-000000000000"}}}`, fail.code, fail.message)
	case revoke:
		fmt.Fprint(w, `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean","value":true}`)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// TestGraphActions: each action makes the call Graph documents, for a
// user named by object ID or by UPN; several calls share one token.
func TestGraphActions(t *testing.T) {
	s := newGraphServers(t)
	g := s.client()
	const id = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
	for _, tc := range []struct {
		action, user, call string
		out                map[string]string
	}{
		{"graph.revoke_sessions", id, "POST /v1.0/users/" + id + "/revokeSignInSessions", map[string]string{"user": id, "revoked": "true"}},
		{"graph.revoke_sessions", "alice@contoso.com", "POST /v1.0/users/alice@contoso.com/revokeSignInSessions", map[string]string{"user": "alice@contoso.com", "revoked": "true"}},
		{"graph.disable_user", id, "PATCH /v1.0/users/" + id, map[string]string{"user": id, "account_enabled": "false"}},
		{"graph.disable_user", "alice@contoso.com", "PATCH /v1.0/users/alice@contoso.com", map[string]string{"user": "alice@contoso.com", "account_enabled": "false"}},
		{"graph.disable_user", "alice@contoso.com", "PATCH /v1.0/users/alice@contoso.com", map[string]string{"user": "alice@contoso.com", "account_enabled": "false"}}, // again
	} {
		s.calls = nil
		out, err := g.Run(context.Background(), tc.action, map[string]string{"user": tc.user})
		if err != nil {
			t.Errorf("%s %s: %v", tc.action, tc.user, err)
			continue
		}
		if len(s.calls) != 1 || s.calls[0] != tc.call {
			t.Errorf("%s %s: calls %q, want [%s]", tc.action, tc.user, s.calls, tc.call)
		}
		if !maps.Equal(out, tc.out) {
			t.Errorf("%s %s: outputs %v, want %v", tc.action, tc.user, out, tc.out)
		}
	}
	if s.tokens != 1 {
		t.Errorf("%d token requests, want 1 (the token is cached)", s.tokens)
	}
}

// TestGraphErrors: Graph's refusals become APIErrors classified for
// retries; a refused token request names no secret.
func TestGraphErrors(t *testing.T) {
	s := newGraphServers(t)
	g := s.client()
	in := map[string]string{"user": "alice@contoso.com"}
	for _, tc := range []struct {
		fail    graphFail
		failure string
	}{
		{graphFail{status: 403, code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation."}, failRefused},
		{graphFail{status: 404, code: "Request_ResourceNotFound", message: "Resource 'alice@contoso.com' does not exist or one of its queried reference-property objects are not present."}, failRefused},
		{graphFail{status: 429, code: "TooManyRequests", message: "Too many requests.", header: map[string]string{"Retry-After": "10"}}, failThrottled},
	} {
		s.fail = &tc.fail
		for _, action := range []string{"graph.revoke_sessions", "graph.disable_user"} {
			_, err := g.Run(context.Background(), action, in)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Service != "graph" || ae.Status != tc.fail.status || ae.Code != tc.fail.code || ae.Message != tc.fail.message {
				t.Errorf("%s, %d %s: %#v (%v)", action, tc.fail.status, tc.fail.code, ae, err)
			}
			if f := failure(err); f != tc.failure {
				t.Errorf("%s, %d %s: failure %s, want %s", action, tc.fail.status, tc.fail.code, f, tc.failure)
			}
		}
	}

	for _, tc := range []struct {
		fail    graphFail
		failure string
	}{
		{graphFail{status: 401, code: "invalid_client"}, failRefused},
		{graphFail{status: 429, code: "temporarily_unavailable"}, failThrottled},
	} {
		s.loginFail, s.calls = &tc.fail, nil
		_, err := s.client().Run(context.Background(), "graph.disable_user", in)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Service != "graph.login" || ae.Status != tc.fail.status || ae.Code != tc.fail.code || failure(err) != tc.failure {
			t.Errorf("a token refused with %d %s: %v (%s)", tc.fail.status, tc.fail.code, err, failure(err))
		}
		if err != nil && strings.Contains(err.Error(), graphSecret) {
			t.Errorf("the error shows the client secret: %v", err)
		}
		if len(s.calls) != 0 {
			t.Errorf("Graph called without a token: %q", s.calls)
		}
	}
}

// TestGraphBadInputs: a user that is neither an object ID nor a UPN, and
// a Graph without its credentials, fail before any request.
func TestGraphBadInputs(t *testing.T) {
	s := newGraphServers(t)
	g := s.client()
	for _, user := range []string{
		"", "alice", "@contoso.com", "alice@", "alice@contoso.com@evil.com", "alice@contoso.com/manager",
		"../users@contoso.com", "alice?$select=id@contoso.com", "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com",
		"alice%2f@contoso.com", "alice @contoso.com", "alice@contoso.com\n", "87d349ed-44d7-43e1-9a83-5f2406dee5b",
	} {
		for _, action := range []string{"graph.revoke_sessions", "graph.disable_user"} {
			if _, err := g.Run(context.Background(), action, map[string]string{"user": user}); err == nil {
				t.Errorf("%s of %q: no error", action, user)
			}
		}
	}
	if _, err := g.Run(context.Background(), "graph.delete_user", map[string]string{"user": "alice@contoso.com"}); err == nil {
		t.Error("an unknown action: no error")
	}
	for i, g := range []*Graph{
		{ClientID: graphClient, ClientSecret: graphSecret, LoginURL: s.login.URL, Endpoint: s.graph.URL}, // no tenant
		{TenantID: graphTenant, ClientID: graphClient, LoginURL: s.login.URL, Endpoint: s.graph.URL},     // no secret
	} {
		if _, err := g.Run(context.Background(), "graph.disable_user", map[string]string{"user": "alice@contoso.com"}); err == nil {
			t.Errorf("Graph %d, without its credentials: no error", i)
		}
	}
	if s.tokens != 0 || len(s.calls) != 0 {
		t.Errorf("%d token requests, Graph calls %q; want none", s.tokens, s.calls)
	}
}
