package playbook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/awstest"
)

// clouds are the stand-ins of one provider and the real executor that
// calls them.
type clouds struct {
	exec     Executor
	iam, ec2 *awstest.QueryServer
	gcp      *gcpServers
	graph    *graphServers
}

// The requests a provider's stand-ins get: AWS's whole forms, as
// checkCalls compares them; Google IAM's paths and Graph's methods and
// paths, as the stand-ins record them (the stand-ins refuse, and fail
// the test on, any other method or body).
type cloudRequests struct {
	iam, ec2 []map[string]string
	gcp      []string
	graph    []string
}

// A refusal is how a stand-in answers until the runner backs off.
type refusal struct {
	service, call string // AWS: the stand-in ("iam", "ec2") and the action refused
	status        int
	code, message string
	header        map[string]string // Graph's
}

func newClouds(t *testing.T, action string) *clouds {
	t.Helper()
	c := &clouds{}
	client := loopback(t)
	switch {
	case strings.HasPrefix(action, "aws."):
		c.iam, c.ec2 = newIAMServer(t), newEC2Server(t, testKey("ec2", "us-east-1"))
		a := testAWS("test-secret", map[string]string{"iam": c.iam.URL, "ec2": c.ec2.URL})
		a.Config.HTTPClient = client
		c.exec = a
	case strings.HasPrefix(action, "gcp."):
		c.gcp = newGCPServers(t)
		g := c.gcp.gcp()
		g.Client = client
		c.exec = g
	case strings.HasPrefix(action, "graph."):
		c.graph = newGraphServers(t)
		g := c.graph.client()
		g.Client = client
		c.exec = g
	default:
		t.Fatalf("no stand-in for %s", action)
	}
	return c
}

// loopback is an HTTP client that sends only to 127.0.0.1: an endpoint
// left at its default fails the test rather than reach a cloud.
func loopback(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Hostname() != "127.0.0.1" {
			t.Errorf("a request to %s", r.URL.Redacted())
			return nil, fmt.Errorf("%s is not 127.0.0.1", r.URL.Host)
		}
		return tr.RoundTrip(r)
	})}
}

// checkTokens checks that Google's or Microsoft's stand-in got n token
// requests, none refused; AWS signs each request instead.
func (c *clouds) checkTokens(t *testing.T, n int) {
	t.Helper()
	switch {
	case c.gcp != nil:
		c.gcp.mu.Lock()
		defer c.gcp.mu.Unlock()
		if c.gcp.tokens != n || len(c.gcp.bad) > 0 {
			t.Errorf("%d token requests (refused: %v), want %d", c.gcp.tokens, c.gcp.bad, n)
		}
	case c.graph != nil:
		c.graph.mu.Lock()
		defer c.graph.mu.Unlock()
		if c.graph.tokens != n {
			t.Errorf("%d token requests, want %d", c.graph.tokens, n)
		}
	}
}

// check checks that the stand-ins got exactly the requests wanted since
// the last check.
func (c *clouds) check(t *testing.T, want cloudRequests) {
	t.Helper()
	if c.iam != nil {
		checkCalls(t, "IAM", c.iam.TakeCalls(), want.iam)
		checkCalls(t, "EC2", c.ec2.TakeCalls(), want.ec2)
	} else if len(want.iam)+len(want.ec2) > 0 {
		t.Errorf("AWS requests wanted of another cloud: %v %v", want.iam, want.ec2)
	}
	var got []string
	switch {
	case c.gcp != nil:
		c.gcp.mu.Lock()
		got, c.gcp.calls = c.gcp.calls, nil
		c.gcp.mu.Unlock()
		if !slices.Equal(got, want.gcp) {
			t.Errorf("Google IAM got %q, want %q", got, want.gcp)
		}
	case c.graph != nil:
		c.graph.mu.Lock()
		got, c.graph.calls = c.graph.calls, nil
		c.graph.mu.Unlock()
		if !slices.Equal(got, want.graph) {
			t.Errorf("Graph got %q, want %q", got, want.graph)
		}
	}
}

// refuse makes the stand-in answer with r, or, on is false, as it
// would.
func (c *clouds) refuse(r refusal, on bool) {
	switch {
	case c.iam != nil:
		srv := map[string]*awstest.QueryServer{"iam": c.iam, "ec2": c.ec2}[r.service]
		var e *awstest.QueryError
		if on {
			e = &awstest.QueryError{Status: r.status, Code: r.code, Message: r.message}
		}
		srv.Refuse(r.call, e)
	case c.gcp != nil:
		c.gcp.mu.Lock()
		defer c.gcp.mu.Unlock()
		c.gcp.fail = nil
		if on {
			c.gcp.fail = &struct {
				status       int
				code, reason string
			}{r.status, r.code, r.message}
		}
	case c.graph != nil:
		c.graph.mu.Lock()
		defer c.graph.mu.Unlock()
		c.graph.fail = nil
		if on {
			c.graph.fail = &graphFail{status: r.status, code: r.code, message: r.message, header: r.header}
		}
	}
}

// e2ePlaybook is an approve-mode playbook the backdoor-key alert starts,
// with one step: action, with inputs with (a YAML flow mapping).
func e2ePlaybook(action, with string, retries int) string {
	return fmt.Sprintf(`
name: contain
mode: approve
trigger: {rules: [1bc4d2e3-23a1-40b8-9e99-6406cc022632]}
steps:
  - name: act
    action: %s
    retries: %d
    with: %s
`, action, retries, with)
}

// The Stratus event: stratus-red-team-backdoor-u-user's key
// AKIAL80DWDVKKM0UXEER, created by christophe in account 946986569305.
const (
	e2eKeyInputs = `{user: "{{ .Event.Raw.requestParameters.userName }}", access_key_id: "{{ .Event.Raw.responseElements.accessKey.accessKeyId }}", account: "{{ .Event.Cloud.Account }}"}`
	e2eUser      = "stratus-red-team-backdoor-u-user"
	e2eKey       = "AKIAL80DWDVKKM0UXEER"
	e2eAccount   = "946986569305"
	e2eInstance  = "i-0598c7d356eba48d7"
	e2eIsolated  = "sg-0f00d15c0a7ed0001"
	e2eSA        = "backdoor@victim-prod.iam.gserviceaccount.com"
	e2eGCPKey    = "projects/victim-prod/serviceAccounts/" + e2eSA + "/keys/0123456789abcdef0123456789abcdef01234567"
	e2eEntraUser = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
	// The policies IAM gets, byte for byte: IAM would take any equal
	// JSON, but the form is compared whole. The session cut is testAWS's
	// now.
	e2eDenyAll        = `{"Statement":[{"Action":"*","Effect":"Deny","Resource":"*"}],"Version":"2012-10-17"}`
	e2eRevokeSessions = `{"Statement":[{"Action":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2024-07-10T12:00:00Z"}},"Effect":"Deny","Resource":"*"}],"Version":"2012-10-17"}`
)

// The requests of the cases, shared by the success and failure tables.
var (
	e2eUpdateAccessKey = map[string]string{"Action": "UpdateAccessKey", "Version": "2010-05-08", "UserName": e2eUser, "AccessKeyId": e2eKey, "Status": "Inactive"}
	e2ePutUserPolicy   = map[string]string{"Action": "PutUserPolicy", "Version": "2010-05-08", "UserName": "christophe", "PolicyName": DenyAllPolicy, "PolicyDocument": e2eDenyAll}
	e2eDescribe        = map[string]string{"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": e2eInstance}
	e2eModify          = map[string]string{"Action": "ModifyInstanceAttribute", "Version": "2016-11-15", "InstanceId": e2eInstance, "GroupId.1": e2eIsolated}
	e2eCreateSnapshots = map[string]string{
		"Action": "CreateSnapshots", "Version": "2016-11-15", "InstanceSpecification.InstanceId": e2eInstance, "CopyTagsFromSource": "volume",
		"Description":                     "vigil a1: CreateAccessKey by christophe",
		"TagSpecification.1.ResourceType": "snapshot", "TagSpecification.1.Tag.1.Key": ForensicsTag, "TagSpecification.1.Tag.1.Value": e2eInstance,
	}
	e2eDisableKey = "/v1/" + e2eGCPKey + ":disable"
	e2eDisableSA  = "/v1/projects/-/serviceAccounts/" + e2eSA + ":disable"
)

const (
	e2eDenyAllInputs  = `{principal: "{{ .Event.Raw.userIdentity.arn }}", account: "{{ .Event.Cloud.Account }}"}`
	e2eIsolateInputs  = `{instance_id: "` + e2eInstance + `", security_group: "` + e2eIsolated + `", account: "{{ .Event.Cloud.Account }}"}`
	e2eSnapshotInputs = `{instance_id: "` + e2eInstance + `", description: "vigil {{ .Alert.ID }}: {{ .Event.Raw.eventName }} by {{ .Event.Actor.Name }}"}`
)

// TestActionsEndToEnd: for each containment action, the backdoor-key
// alert starts an approve-mode playbook whose step waits without a
// request reaching the cloud (not even for a token); approved, the
// runner's real executor sends the one request the cloud documents, its
// inputs written from the Stratus event, and the step ends done with the
// executor's outputs. The real services are out of a test's reach, so
// the executors call the stand-ins of their own tests, on 127.0.0.1,
// which check each request as the real API documents it (AWS's signed,
// in the Query API's form with the parameters each action requires;
// Google's and Microsoft's after their token grants, by method, path and
// body) and refuse any other.
func TestActionsEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name, action string
		with         string
		want         cloudRequests
		out          map[string]string
	}{
		{
			name: "deactivate the key", action: "aws.iam.deactivate_access_key", with: e2eKeyInputs,
			want: cloudRequests{iam: []map[string]string{e2eUpdateAccessKey}},
			out:  map[string]string{"access_key_id": e2eKey, "status": "Inactive"},
		},
		{
			name: "delete the user's password", action: "aws.iam.delete_login_profile",
			with: `{user: "{{ .Event.Raw.requestParameters.userName }}", account: "{{ .Event.Cloud.Account }}"}`,
			want: cloudRequests{iam: []map[string]string{{"Action": "DeleteLoginProfile", "Version": "2010-05-08", "UserName": e2eUser}}},
			out:  map[string]string{"user": e2eUser},
		},
		{
			name: "deny the key's creator all", action: "aws.iam.deny_all", with: e2eDenyAllInputs,
			want: cloudRequests{iam: []map[string]string{e2ePutUserPolicy}},
			out:  map[string]string{"policy": DenyAllPolicy},
		},
		{
			name: "revoke a role's sessions", action: "aws.iam.revoke_sessions",
			with: `{role: "deploy", account: "{{ .Event.Cloud.Account }}"}`,
			want: cloudRequests{iam: []map[string]string{{"Action": "PutRolePolicy", "Version": "2010-05-08", "RoleName": "deploy", "PolicyName": RevokeSessionsPolicy, "PolicyDocument": e2eRevokeSessions}}},
			out:  map[string]string{"policy": RevokeSessionsPolicy},
		},
		{
			name: "isolate an instance", action: "aws.ec2.isolate", with: e2eIsolateInputs,
			want: cloudRequests{ec2: []map[string]string{e2eDescribe, e2eModify}},
			out:  map[string]string{"instance_id": e2eInstance, "security_group": e2eIsolated, "previous_groups": "sg-0a1b2c3d4e5f60001,sg-0a1b2c3d4e5f60002", "already": "false"},
		},
		{
			name: "snapshot an instance", action: "aws.ec2.snapshot", with: e2eSnapshotInputs,
			want: cloudRequests{ec2: []map[string]string{e2eCreateSnapshots}},
			out:  map[string]string{"instance_id": e2eInstance, "snapshots": "snap-049df61146c4d79010,snap-049df61146c4d79021"},
		},
		{
			name: "tag the user", action: "aws.tag",
			with: `{arn: "arn:aws:iam::{{ .Event.Cloud.Account }}:user/{{ .Event.Raw.requestParameters.userName }}", key: "vigil:alert", value: "{{ .Alert.ID }}"}`,
			want: cloudRequests{iam: []map[string]string{{"Action": "TagUser", "Version": "2010-05-08", "UserName": e2eUser, "Tags.member.1.Key": "vigil:alert", "Tags.member.1.Value": "a1"}}},
			out:  map[string]string{"arn": "arn:aws:iam::" + e2eAccount + ":user/" + e2eUser, "key": "vigil:alert", "value": "a1"},
		},
		{
			name: "tag an instance", action: "aws.tag",
			with: `{arn: "arn:aws:ec2:us-east-1:{{ .Event.Cloud.Account }}:instance/` + e2eInstance + `", key: "vigil:alert", value: "{{ .Alert.ID }}"}`,
			want: cloudRequests{ec2: []map[string]string{{"Action": "CreateTags", "Version": "2016-11-15", "ResourceId.1": e2eInstance, "Tag.1.Key": "vigil:alert", "Tag.1.Value": "a1"}}},
			out:  map[string]string{"arn": "arn:aws:ec2:us-east-1:" + e2eAccount + ":instance/" + e2eInstance, "key": "vigil:alert", "value": "a1"},
		},
		{
			name: "disable a GCP key", action: "gcp.iam.disable_key", with: `{key: "` + e2eGCPKey + `"}`,
			want: cloudRequests{gcp: []string{e2eDisableKey}},
			out:  map[string]string{"key": e2eGCPKey, "state": "disabled"},
		},
		{
			name: "disable a GCP service account", action: "gcp.iam.disable_service_account", with: `{service_account: "` + e2eSA + `"}`,
			want: cloudRequests{gcp: []string{e2eDisableSA}},
			out:  map[string]string{"service_account": e2eSA, "state": "disabled"},
		},
		{
			name: "revoke an Entra user's sessions", action: "graph.revoke_sessions", with: `{user: "alice@contoso.com"}`,
			want: cloudRequests{graph: []string{"POST /v1.0/users/alice@contoso.com/revokeSignInSessions"}},
			out:  map[string]string{"user": "alice@contoso.com", "revoked": "true"},
		},
		{
			name: "disable an Entra user", action: "graph.disable_user", with: `{user: "` + e2eEntraUser + `"}`,
			want: cloudRequests{graph: []string{"PATCH /v1.0/users/" + e2eEntraUser}},
			out:  map[string]string{"user": e2eEntraUser, "account_enabled": "false"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClouds(t, tc.action)
			h := newHarness(t, Options{Executors: map[string]Executor{tc.action: c.exec}}, e2ePlaybook(tc.action, tc.with, 0))
			run := h.alert("a1")
			if run.Status != Waiting || run.Steps[0].Status != Waiting {
				t.Fatalf("before approval: run %s %s: %s", run.Status, stepsOf(run), run.Error)
			}
			c.check(t, cloudRequests{})
			c.checkTokens(t, 0)

			if _, err := h.runner.Approve(context.Background(), []string{"acme"}, run.ID, "alice"); err != nil {
				t.Fatal(err)
			}
			h.runner.Wait()
			run = h.run(run.ID)
			s := run.Steps[0]
			if run.Status != Done || s.Status != Done || s.Attempts != 1 || s.Approver != "alice" || s.Error != "" {
				t.Fatalf("run %s %q; step %s, %d attempts, approver %q: %s", run.Status, run.Error, s.Status, s.Attempts, s.Approver, s.Error)
			}
			if !maps.Equal(s.Outputs, tc.out) {
				t.Errorf("outputs %v, want %v", s.Outputs, tc.out)
			}
			if got, want := slices.Sorted(maps.Keys(s.Outputs)), slices.Sorted(slices.Values(Actions[tc.action].Outputs)); !slices.Equal(got, want) {
				t.Errorf("outputs %q, but the registry says %q", got, want)
			}
			c.check(t, tc.want)
			c.checkTokens(t, 1)
			want := []string{"run.started", "step.waiting act", "step.approved act", "step.done act", "run.done"}
			if got := h.kinds(); !slices.Equal(got, want) {
				t.Errorf("records %q, want %q", got, want)
			}
		})
	}
}

// TestActionsEndToEndFailures: through the runner and the real
// executors, a cloud's refusal (403) fails the step at its first
// attempt, though it may be retried, and the failure is in the step, the
// run and the case; throttling is retried after the runner's backoff,
// even for a snapshot, which is not idempotent but was not taken, and
// the run ends done at the second attempt.
func TestActionsEndToEndFailures(t *testing.T) {
	for _, tc := range []struct {
		name, action string
		with         string
		refusal      refusal
		status       string // the run's and the step's
		attempts     int
		want         cloudRequests
		out          map[string]string
	}{
		{
			name: "IAM AccessDenied", action: "aws.iam.deactivate_access_key", with: e2eKeyInputs,
			refusal: refusal{service: "iam", call: "UpdateAccessKey", status: http.StatusForbidden, code: "AccessDenied",
				message: "User: arn:aws:iam::946986569305:user/vigil is not authorized to perform: iam:UpdateAccessKey on resource: user " + e2eUser},
			status: Failed, attempts: 1,
			want: cloudRequests{iam: []map[string]string{e2eUpdateAccessKey}},
		},
		{
			name: "EC2 UnauthorizedOperation", action: "aws.ec2.snapshot", with: e2eSnapshotInputs,
			refusal: refusal{service: "ec2", call: "CreateSnapshots", status: http.StatusForbidden, code: "UnauthorizedOperation",
				message: "You are not authorized to perform this operation."},
			status: Failed, attempts: 1,
			want: cloudRequests{ec2: []map[string]string{e2eCreateSnapshots}},
		},
		{
			name: "GCP PERMISSION_DENIED", action: "gcp.iam.disable_service_account", with: `{service_account: "` + e2eSA + `"}`,
			refusal: refusal{status: http.StatusForbidden, code: "PERMISSION_DENIED",
				message: "Permission 'iam.serviceAccounts.disable' denied on resource (or it may not exist)."},
			status: Failed, attempts: 1,
			want: cloudRequests{gcp: []string{e2eDisableSA}},
		},
		{
			name: "Graph Authorization_RequestDenied", action: "graph.disable_user", with: `{user: "` + e2eEntraUser + `"}`,
			refusal: refusal{status: http.StatusForbidden, code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation."},
			status:  Failed, attempts: 1,
			want: cloudRequests{graph: []string{"PATCH /v1.0/users/" + e2eEntraUser}},
		},
		{
			name: "IAM Throttling", action: "aws.iam.deny_all", with: e2eDenyAllInputs,
			refusal: refusal{service: "iam", call: "PutUserPolicy", status: http.StatusBadRequest, code: "Throttling", message: "Rate exceeded"},
			status:  Done, attempts: 2,
			want: cloudRequests{iam: []map[string]string{e2ePutUserPolicy, e2ePutUserPolicy}},
			out:  map[string]string{"policy": DenyAllPolicy},
		},
		{
			name: "EC2 RequestLimitExceeded", action: "aws.ec2.isolate", with: e2eIsolateInputs,
			refusal: refusal{service: "ec2", call: "DescribeInstances", status: http.StatusServiceUnavailable, code: "RequestLimitExceeded", message: "Request limit exceeded."},
			status:  Done, attempts: 2,
			want: cloudRequests{ec2: []map[string]string{e2eDescribe, e2eDescribe, e2eModify}},
			out:  map[string]string{"instance_id": e2eInstance, "security_group": e2eIsolated, "previous_groups": "sg-0a1b2c3d4e5f60001,sg-0a1b2c3d4e5f60002", "already": "false"},
		},
		{
			name: "EC2 RequestLimitExceeded on a snapshot", action: "aws.ec2.snapshot", with: e2eSnapshotInputs,
			refusal: refusal{service: "ec2", call: "CreateSnapshots", status: http.StatusServiceUnavailable, code: "RequestLimitExceeded", message: "Request limit exceeded."},
			status:  Done, attempts: 2,
			want: cloudRequests{ec2: []map[string]string{e2eCreateSnapshots, e2eCreateSnapshots}},
			out:  map[string]string{"instance_id": e2eInstance, "snapshots": "snap-049df61146c4d79010,snap-049df61146c4d79021"},
		},
		{
			name: "GCP RESOURCE_EXHAUSTED", action: "gcp.iam.disable_key", with: `{key: "` + e2eGCPKey + `"}`,
			refusal: refusal{status: http.StatusTooManyRequests, code: "RESOURCE_EXHAUSTED", message: "Quota exceeded for quota metric 'Service account write requests'."},
			status:  Done, attempts: 2,
			want: cloudRequests{gcp: []string{e2eDisableKey, e2eDisableKey}},
			out:  map[string]string{"key": e2eGCPKey, "state": "disabled"},
		},
		{
			name: "Graph TooManyRequests", action: "graph.revoke_sessions", with: `{user: "alice@contoso.com"}`,
			refusal: refusal{status: http.StatusTooManyRequests, code: "TooManyRequests", message: "Too many requests.", header: map[string]string{"Retry-After": "10"}},
			status:  Done, attempts: 2,
			want: cloudRequests{graph: []string{"POST /v1.0/users/alice@contoso.com/revokeSignInSessions", "POST /v1.0/users/alice@contoso.com/revokeSignInSessions"}},
			out:  map[string]string{"user": "alice@contoso.com", "revoked": "true"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClouds(t, tc.action)
			// With retries to spare, a refusal's single attempt is the
			// runner's choice, not the playbook's limit.
			// The throttling passes while the runner backs off: the only
			// moment between two attempts a test can act in, as the run
			// goes on in the background.
			backoffs := 0
			backoff := func(int) time.Duration {
				backoffs++
				c.refuse(tc.refusal, false)
				return 0
			}
			h := newHarness(t, Options{Executors: map[string]Executor{tc.action: c.exec}, Backoff: backoff}, e2ePlaybook(tc.action, tc.with, 2))
			c.refuse(tc.refusal, true)
			run := h.alert("a1")
			if run.Status != Waiting {
				t.Fatalf("before approval: run %s %s: %s", run.Status, stepsOf(run), run.Error)
			}
			c.check(t, cloudRequests{})
			c.checkTokens(t, 0)
			if _, err := h.runner.Approve(context.Background(), []string{"acme"}, run.ID, "alice"); err != nil {
				t.Fatal(err)
			}
			h.runner.Wait()
			run = h.run(run.ID)
			s := run.Steps[0]
			if run.Status != tc.status || s.Status != tc.status || s.Attempts != tc.attempts || backoffs != tc.attempts-1 {
				t.Errorf("run %s %q; step %s after %d attempts and %d backoffs: %s; want %s after %d", run.Status, run.Error,
					s.Status, s.Attempts, backoffs, s.Error, tc.status, tc.attempts)
			}
			if !strings.Contains(s.Error, tc.refusal.code) {
				t.Errorf("step error %q lacks %s", s.Error, tc.refusal.code)
			}
			if tc.status == Failed && !strings.Contains(run.Error, tc.refusal.code) {
				t.Errorf("run error %q lacks %s", run.Error, tc.refusal.code)
			}
			if !maps.Equal(s.Outputs, tc.out) {
				t.Errorf("outputs %v, want %v", s.Outputs, tc.out)
			}
			c.check(t, tc.want)
			c.checkTokens(t, 1) // the token outlives a refusal
			tl := h.timeline(run.CaseID)
			for _, want := range []string{tc.refusal.code, "ended " + tc.status} {
				if !strings.Contains(tl, want) {
					t.Errorf("the case's timeline lacks %q:\n%s", want, tl)
				}
			}
		})
	}
}
