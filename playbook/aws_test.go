package playbook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vigilsec/vigil/awstest"
)

// iamServer stands in for IAM: it takes only requests signed with its
// test credentials (SigV4, recomputed), in IAM's Query API (a POST of a
// form with Action and Version 2010-05-08), and answers as IAM does. It
// keeps the calls it took.
type iamServer struct {
	*httptest.Server
	creds awstest.Credentials
	mu    sync.Mutex
	calls []url.Values
	// missing, if set, is answered with NoSuchEntity.
	missing string
}

func newIAMServer(t *testing.T) *iamServer {
	s := &iamServer{creds: awstest.Credentials{KeyID: "AKIDVIGILTEST0000001", Secret: "test-secret", Region: "us-east-1", Service: "iam"}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *iamServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := s.creds.Check(r, body); err != nil {
		iamError(w, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
		return
	}
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || r.URL.Path != "/" || err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		iamError(w, http.StatusBadRequest, "MalformedQueryString", "not a Query API request")
		return
	}
	if form.Get("Version") != "2010-05-08" {
		iamError(w, http.StatusBadRequest, "InvalidParameterValue", "Version "+form.Get("Version"))
		return
	}
	action := form.Get("Action")
	required := map[string][]string{
		"UpdateAccessKey":    {"AccessKeyId", "Status"},
		"DeleteLoginProfile": {"UserName"},
		"PutUserPolicy":      {"UserName", "PolicyName", "PolicyDocument"},
		"PutRolePolicy":      {"RoleName", "PolicyName", "PolicyDocument"},
	}[action]
	if required == nil {
		iamError(w, http.StatusBadRequest, "InvalidAction", action)
		return
	}
	for _, p := range required {
		if form.Get(p) == "" {
			iamError(w, http.StatusBadRequest, "MissingParameter", p)
			return
		}
	}
	if s.missing != "" && form.Get("UserName") == s.missing {
		iamError(w, http.StatusNotFound, "NoSuchEntity", "The user with name "+s.missing+" cannot be found.")
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, form)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata></%sResponse>`, action, action)
}

func iamError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>`, code, msg)
}

func (s *iamServer) aws(secret string) *AWS {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s.creds.KeyID, secret, "")}
	return &AWS{Config: cfg, Endpoint: s.URL, Now: func() time.Time { return time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC) }}
}

// TestAWSActions: each action makes the IAM call AWS documents, signed;
// a second run acts the same (idempotent); a login profile already gone
// is not an error; a request signed with the wrong secret is refused.
func TestAWSActions(t *testing.T) {
	ctx := context.Background()
	s := newIAMServer(t)
	a := s.aws(s.creds.Secret)
	for _, tc := range []struct {
		action string
		in     map[string]string
		want   map[string]string // form values the call must carry
	}{
		{"aws.iam.deactivate_access_key", map[string]string{"user": "stratus-red-team-backdoor-u-user", "access_key_id": "AKIAL80DWDVKKM0UXEER"},
			map[string]string{"Action": "UpdateAccessKey", "UserName": "stratus-red-team-backdoor-u-user", "AccessKeyId": "AKIAL80DWDVKKM0UXEER", "Status": "Inactive"}},
		{"aws.iam.delete_login_profile", map[string]string{"user": "alice"},
			map[string]string{"Action": "DeleteLoginProfile", "UserName": "alice"}},
		{"aws.iam.deny_all", map[string]string{"principal": "arn:aws:iam::111122223333:user/ops/alice"},
			map[string]string{"Action": "PutUserPolicy", "UserName": "alice", "PolicyName": DenyAllPolicy}},
		{"aws.iam.deny_all", map[string]string{"principal": "arn:aws:sts::111122223333:assumed-role/deploy/session-1"},
			map[string]string{"Action": "PutRolePolicy", "RoleName": "deploy", "PolicyName": DenyAllPolicy}},
		{"aws.iam.revoke_sessions", map[string]string{"role": "deploy"},
			map[string]string{"Action": "PutRolePolicy", "RoleName": "deploy", "PolicyName": RevokeSessionsPolicy}},
	} {
		for run := range 2 {
			s.calls = nil
			if _, err := a.Run(ctx, tc.action, tc.in); err != nil {
				t.Fatalf("%s (run %d): %v", tc.action, run+1, err)
			}
			if len(s.calls) != 1 {
				t.Fatalf("%s: %d calls", tc.action, len(s.calls))
			}
			for k, v := range tc.want {
				if got := s.calls[0].Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tc.action, k, got, v)
				}
			}
		}
		if doc := s.calls[0].Get("PolicyDocument"); doc != "" {
			var p struct {
				Statement []struct {
					Effect, Action, Resource string
					Condition                map[string]map[string]string
				}
			}
			if err := json.Unmarshal([]byte(doc), &p); err != nil || len(p.Statement) != 1 || p.Statement[0].Effect != "Deny" || p.Statement[0].Action != "*" {
				t.Errorf("%s: policy %s", tc.action, doc)
			}
			if tc.action == "aws.iam.revoke_sessions" && p.Statement[0].Condition["DateLessThan"]["aws:TokenIssueTime"] != "2024-07-10T12:00:00Z" {
				t.Errorf("revoke_sessions: condition %v", p.Statement[0].Condition)
			}
		}
	}

	s.missing = "bob"
	if _, err := a.Run(ctx, "aws.iam.delete_login_profile", map[string]string{"user": "bob"}); err != nil {
		t.Errorf("a profile already gone: %v", err)
	}
	if _, err := a.Run(ctx, "aws.iam.deactivate_access_key", map[string]string{"user": "bob", "access_key_id": "AKIA0000000000000000"}); err == nil || !strings.Contains(err.Error(), "NoSuchEntity") {
		t.Errorf("a key of a user that does not exist: %v", err)
	}
	if _, err := s.aws("wrong-secret").Run(ctx, "aws.iam.delete_login_profile", map[string]string{"user": "alice"}); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("a bad signature: %v", err)
	}
	for _, bad := range []string{"alice", "group/admins", "arn:aws:iam::1:user", "arn:x"} {
		if _, err := a.Run(ctx, "aws.iam.deny_all", map[string]string{"principal": bad}); err == nil {
			t.Errorf("deny_all of %q: no error", bad)
		}
	}
}
