package playbook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTP: the http action calls a ticketing system's web hook with the
// body written and the Authorization header of the secret named (never
// the secret itself in its inputs), and gives the answer's JSON fields to
// later steps; a refusal is an *APIError, a bad address never a call.
func TestHTTP(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/down":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream down")
		case r.Method != http.MethodPost || r.URL.Path != "/rest/api/2/issue" || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("Authorization") != "Basic dmlnaWw6dG9rZW4=" || string(body) != `{"summary":"key AKIA1 deactivated"}`:
			t.Errorf("request %s %s %q %q %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body)
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"10042","key":"SEC-17","self":"https://jira.example.com/rest/api/2/issue/10042","fields":{}}`)
		}
	}))
	defer srv.Close()
	h := &HTTP{Secrets: map[string]string{"jira": "Basic dmlnaWw6dG9rZW4="}}
	ctx := context.Background()
	out, err := h.Run(ctx, "http", map[string]string{"url": srv.URL + "/rest/api/2/issue", "auth": "jira", "body": `{"summary":"key AKIA1 deactivated"}`})
	if err != nil || out["key"] != "SEC-17" || out["id"] != "10042" || out["status"] != "201" {
		t.Fatalf("outputs %v, %v", out, err)
	}
	_, err = h.Run(ctx, "http", map[string]string{"url": srv.URL + "/down"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || failure(err) != failUnknown {
		t.Errorf("a 502: %v", err)
	}
	before := calls
	for _, in := range []map[string]string{
		{"url": "file:///etc/passwd"},
		{"url": "not a url"},
		{"url": srv.URL, "method": "DELETE"},
		{"url": srv.URL, "auth": "nosuch"},
	} {
		if _, err := h.Run(ctx, "http", in); err == nil {
			t.Errorf("%v: no error", in)
		}
	}
	if calls != before {
		t.Errorf("bad inputs made %d calls", calls-before)
	}
	// An address's credentials stay out of the error.
	_, err = h.Run(ctx, "http", map[string]string{"url": "http://user:hunter2@127.0.0.1:1/x?token=s3cret"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v", err)
	}
}
