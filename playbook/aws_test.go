package playbook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vigilsec/vigil/awstest"
)

// testKey is the long-term access key the stand-ins take (as the
// standard chain would give it), for their service and region.
func testKey(service, region string) awstest.Credentials {
	return awstest.Credentials{KeyID: "AKIDVIGILTEST0000001", Secret: "test-secret", Region: region, Service: service}
}

func newIAMServer(t *testing.T) *awstest.QueryServer {
	return awstest.NewQueryServer(t, awstest.IAM, testKey("iam", "us-east-1"), nil)
}

// testAWS is an AWS with the test key (signing with secret) and the
// stand-ins' endpoints, by service.
func testAWS(secret string, endpoints map[string]string) *AWS {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDVIGILTEST0000001", secret, "")}
	return &AWS{Config: cfg, Endpoints: endpoints, Now: func() time.Time { return time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC) }}
}

// TestAWSActions: each action makes the IAM call AWS documents, signed;
// a second run acts the same (idempotent); a login profile already gone
// is not an error; a request signed with the wrong secret is refused.
func TestAWSActions(t *testing.T) {
	ctx := context.Background()
	s := newIAMServer(t)
	a := testAWS("test-secret", map[string]string{"iam": s.URL})
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
		var calls []url.Values
		for run := range 2 {
			if _, err := a.Run(ctx, tc.action, tc.in); err != nil {
				t.Fatalf("%s (run %d): %v", tc.action, run+1, err)
			}
			if calls = s.TakeCalls(); len(calls) != 1 {
				t.Fatalf("%s: %d calls", tc.action, len(calls))
			}
			for k, v := range tc.want {
				if got := calls[0].Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tc.action, k, got, v)
				}
			}
		}
		if doc := calls[0].Get("PolicyDocument"); doc != "" {
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

	noBob := &awstest.QueryError{Status: http.StatusNotFound, Code: "NoSuchEntity", Message: "The user with name bob cannot be found."}
	s.Refuse("DeleteLoginProfile", noBob)
	s.Refuse("UpdateAccessKey", noBob)
	if _, err := a.Run(ctx, "aws.iam.delete_login_profile", map[string]string{"user": "bob"}); err != nil {
		t.Errorf("a profile already gone: %v", err)
	}
	if _, err := a.Run(ctx, "aws.iam.deactivate_access_key", map[string]string{"user": "bob", "access_key_id": "AKIA0000000000000000"}); err == nil || !strings.Contains(err.Error(), "NoSuchEntity") {
		t.Errorf("a key of a user that does not exist: %v", err)
	}
	if _, err := testAWS("wrong-secret", map[string]string{"iam": s.URL}).Run(ctx, "aws.iam.delete_login_profile", map[string]string{"user": "alice"}); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("a bad signature: %v", err)
	}
	for _, bad := range []string{"alice", "group/admins", "arn:aws:iam::1:user", "arn:x"} {
		if _, err := a.Run(ctx, "aws.iam.deny_all", map[string]string{"principal": bad}); err == nil {
			t.Errorf("deny_all of %q: no error", bad)
		}
	}
}
