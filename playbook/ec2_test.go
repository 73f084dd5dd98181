package playbook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/awstest"
)

// ec2Fake is what the EC2 stand-in knows of a region: its instances'
// security groups and volumes. It answers as the EC2 API reference
// documents, and ModifyInstanceAttribute changes the groups as EC2 does,
// so that a second isolation sees the first.
type ec2Fake struct {
	mu      sync.Mutex
	groups  map[string][]string // by instance id
	volumes map[string][]string // by instance id
}

func newEC2Fake() *ec2Fake {
	return &ec2Fake{
		groups:  map[string][]string{"i-0598c7d356eba48d7": {"sg-0a1b2c3d4e5f60001", "sg-0a1b2c3d4e5f60002"}, "i-0b22a22eec53b9321": {"sg-0a1b2c3d4e5f60001"}},
		volumes: map[string][]string{"i-0598c7d356eba48d7": {"vol-049df61146c4d7901", "vol-049df61146c4d7902"}, "i-0b22a22eec53b9321": {"vol-0b22a22eec53b9301"}},
	}
}

func (f *ec2Fake) answer(action string, form url.Values) (string, *awstest.QueryError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := form.Get("InstanceId.1") + form.Get("InstanceId") + form.Get("InstanceSpecification.InstanceId")
	groups, ok := f.groups[id]
	if !ok && action != "CreateTags" {
		return "", &awstest.QueryError{Status: http.StatusBadRequest, Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", id)}
	}
	var b strings.Builder
	switch action {
	case "DescribeInstances":
		// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html
		fmt.Fprintf(&b, `<reservationSet><item><reservationId>r-1234567890abcdef0</reservationId><ownerId>111122223333</ownerId><groupSet/><instancesSet><item>`+
			`<instanceId>%s</instanceId><imageId>ami-0abcdef1234567890</imageId><instanceState><code>16</code><name>running</name></instanceState>`+
			`<instanceType>t3.micro</instanceType><groupSet>`, id)
		for _, g := range groups {
			fmt.Fprintf(&b, `<item><groupId>%s</groupId><groupName>%s-name</groupName></item>`, g, g)
		}
		b.WriteString(`</groupSet></item></instancesSet></item></reservationSet>`)
	case "ModifyInstanceAttribute":
		// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceAttribute.html
		var next []string
		for i := 1; form.Has(fmt.Sprintf("GroupId.%d", i)); i++ {
			next = append(next, form.Get(fmt.Sprintf("GroupId.%d", i)))
		}
		f.groups[id] = next
		b.WriteString(`<return>true</return>`)
	case "CreateSnapshots":
		// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html
		b.WriteString(`<snapshotSet>`)
		for i, v := range f.volumes[id] {
			fmt.Fprintf(&b, `<item><snapshotId>snap-%s%d</snapshotId><volumeId>%s</volumeId><state>pending</state><startTime>2024-07-10T12:00:00.000Z</startTime>`+
				`<progress/><ownerId>111122223333</ownerId><volumeSize>8</volumeSize><encrypted>false</encrypted>`+
				`<tagSet><item><key>%s</key><value>%s</value></item></tagSet></item>`, strings.TrimPrefix(v, "vol-"), i, v, ForensicsTag, id)
		}
		b.WriteString(`</snapshotSet>`)
	case "CreateTags":
		// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html
		b.WriteString(`<return>true</return>`)
	}
	return b.String(), nil
}

func newEC2Server(t *testing.T, creds awstest.Credentials) *awstest.QueryServer {
	return awstest.NewQueryServer(t, awstest.EC2, creds, newEC2Fake().answer)
}

// TestEC2Actions: each EC2 action, and aws.tag, makes the calls AWS
// documents, with exactly the parameters listed, in the region the step
// says; a second isolation of an instance already isolated changes
// nothing.
func TestEC2Actions(t *testing.T) {
	ctx := context.Background()
	iamSrv := newIAMServer(t)
	ec2Srv := map[string]*awstest.QueryServer{
		"us-east-1": newEC2Server(t, testKey("ec2", "us-east-1")),
		"eu-west-1": newEC2Server(t, testKey("ec2", "eu-west-1")),
	}
	const isolated = "sg-0f00d15c0a7ed0001"
	// The cases run in order, on the same stand-ins: the second
	// isolation finds what the first did.
	for _, tc := range []struct {
		name   string
		action string
		in     map[string]string
		region string              // of the EC2 stand-in the calls go to
		ec2    []map[string]string // the calls EC2 must get, each's whole form
		iam    []map[string]string
		out    map[string]string
	}{
		{
			name: "isolate", action: "aws.ec2.isolate", region: "us-east-1",
			in: map[string]string{"instance_id": "i-0598c7d356eba48d7", "security_group": isolated},
			ec2: []map[string]string{
				{"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-0598c7d356eba48d7"},
				{"Action": "ModifyInstanceAttribute", "Version": "2016-11-15", "InstanceId": "i-0598c7d356eba48d7", "GroupId.1": isolated},
			},
			out: map[string]string{"instance_id": "i-0598c7d356eba48d7", "security_group": isolated, "previous_groups": "sg-0a1b2c3d4e5f60001,sg-0a1b2c3d4e5f60002", "already": "false"},
		},
		{
			name: "isolate again", action: "aws.ec2.isolate", region: "us-east-1",
			in: map[string]string{"instance_id": "i-0598c7d356eba48d7", "security_group": isolated},
			ec2: []map[string]string{
				{"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-0598c7d356eba48d7"},
			},
			out: map[string]string{"instance_id": "i-0598c7d356eba48d7", "security_group": isolated, "previous_groups": isolated, "already": "true"},
		},
		{
			name: "isolate in a region", action: "aws.ec2.isolate", region: "eu-west-1",
			in: map[string]string{"instance_id": "i-0b22a22eec53b9321", "security_group": isolated, "region": "eu-west-1"},
			ec2: []map[string]string{
				{"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-0b22a22eec53b9321"},
				{"Action": "ModifyInstanceAttribute", "Version": "2016-11-15", "InstanceId": "i-0b22a22eec53b9321", "GroupId.1": isolated},
			},
			out: map[string]string{"instance_id": "i-0b22a22eec53b9321", "security_group": isolated, "previous_groups": "sg-0a1b2c3d4e5f60001", "already": "false"},
		},
		{
			name: "snapshot", action: "aws.ec2.snapshot", region: "us-east-1",
			in: map[string]string{"instance_id": "i-0598c7d356eba48d7"},
			ec2: []map[string]string{{
				"Action": "CreateSnapshots", "Version": "2016-11-15",
				"InstanceSpecification.InstanceId": "i-0598c7d356eba48d7", "CopyTagsFromSource": "volume",
				"Description":                     "vigil: forensic snapshot of i-0598c7d356eba48d7",
				"TagSpecification.1.ResourceType": "snapshot", "TagSpecification.1.Tag.1.Key": "vigil:forensics", "TagSpecification.1.Tag.1.Value": "i-0598c7d356eba48d7",
			}},
			out: map[string]string{"instance_id": "i-0598c7d356eba48d7", "snapshots": "snap-049df61146c4d79010,snap-049df61146c4d79021"},
		},
		{
			name: "snapshot described", action: "aws.ec2.snapshot", region: "eu-west-1",
			in: map[string]string{"instance_id": "i-0b22a22eec53b9321", "description": "case 42", "region": "eu-west-1"},
			ec2: []map[string]string{{
				"Action": "CreateSnapshots", "Version": "2016-11-15",
				"InstanceSpecification.InstanceId": "i-0b22a22eec53b9321", "CopyTagsFromSource": "volume", "Description": "case 42",
				"TagSpecification.1.ResourceType": "snapshot", "TagSpecification.1.Tag.1.Key": "vigil:forensics", "TagSpecification.1.Tag.1.Value": "i-0b22a22eec53b9321",
			}},
			out: map[string]string{"instance_id": "i-0b22a22eec53b9321", "snapshots": "snap-0b22a22eec53b93010"},
		},
		{
			name: "tag an instance ARN", action: "aws.tag", region: "eu-west-1",
			in: map[string]string{"arn": "arn:aws:ec2:eu-west-1:111122223333:instance/i-0b22a22eec53b9321", "key": "vigil:case", "value": "42"},
			ec2: []map[string]string{
				{"Action": "CreateTags", "Version": "2016-11-15", "ResourceId.1": "i-0b22a22eec53b9321", "Tag.1.Key": "vigil:case", "Tag.1.Value": "42"},
			},
			out: map[string]string{"arn": "arn:aws:ec2:eu-west-1:111122223333:instance/i-0b22a22eec53b9321", "key": "vigil:case", "value": "42"},
		},
		{
			name: "tag a volume id", action: "aws.tag", region: "us-east-1",
			in: map[string]string{"arn": "vol-049df61146c4d7901", "key": "vigil:case", "value": "42"},
			ec2: []map[string]string{
				{"Action": "CreateTags", "Version": "2016-11-15", "ResourceId.1": "vol-049df61146c4d7901", "Tag.1.Key": "vigil:case", "Tag.1.Value": "42"},
			},
			out: map[string]string{"arn": "vol-049df61146c4d7901", "key": "vigil:case", "value": "42"},
		},
		{
			name: "tag a user", action: "aws.tag",
			in: map[string]string{"arn": "arn:aws:iam::111122223333:user/ops/alice", "key": "vigil:case", "value": "42"},
			iam: []map[string]string{
				{"Action": "TagUser", "Version": "2010-05-08", "UserName": "alice", "Tags.member.1.Key": "vigil:case", "Tags.member.1.Value": "42"},
			},
			out: map[string]string{"arn": "arn:aws:iam::111122223333:user/ops/alice", "key": "vigil:case", "value": "42"},
		},
		{
			name: "tag a role", action: "aws.tag",
			in: map[string]string{"arn": "arn:aws:iam::111122223333:role/deploy", "key": "vigil:case", "value": "42"},
			iam: []map[string]string{
				{"Action": "TagRole", "Version": "2010-05-08", "RoleName": "deploy", "Tags.member.1.Key": "vigil:case", "Tags.member.1.Value": "42"},
			},
			out: map[string]string{"arn": "arn:aws:iam::111122223333:role/deploy", "key": "vigil:case", "value": "42"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoints := map[string]string{"iam": iamSrv.URL}
			if tc.region != "" {
				endpoints["ec2"] = ec2Srv[tc.region].URL
			}
			out, err := testAWS("test-secret", endpoints).Run(ctx, tc.action, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(out, tc.out) {
				t.Errorf("outputs %v, want %v", out, tc.out)
			}
			var ec2Calls []url.Values
			for _, s := range ec2Srv {
				ec2Calls = append(ec2Calls, s.TakeCalls()...)
			}
			checkCalls(t, "EC2", ec2Calls, tc.ec2)
			checkCalls(t, "IAM", iamSrv.TakeCalls(), tc.iam)
		})
	}
}

// checkCalls checks that a service got the calls wanted, in order, each
// with exactly the form wanted.
func checkCalls(t *testing.T, service string, got []url.Values, want []map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s got %d calls %v, want %d", service, len(got), got, len(want))
		return
	}
	for i, form := range got {
		flat := map[string]string{}
		for k, vs := range form {
			flat[k] = strings.Join(vs, ",")
		}
		if !maps.Equal(flat, want[i]) {
			t.Errorf("%s call %d:\n got %v\nwant %v", service, i+1, flat, want[i])
		}
	}
}

// TestAWSTagRefuses: aws.tag names what it tags when given anything
// else, and calls nothing.
func TestAWSTagRefuses(t *testing.T) {
	iamSrv, ec2Srv := newIAMServer(t), newEC2Server(t, testKey("ec2", "us-east-1"))
	a := testAWS("test-secret", map[string]string{"iam": iamSrv.URL, "ec2": ec2Srv.URL})
	for _, arn := range []string{
		"arn:aws:s3:::vigil-logs", "arn:aws:iam::111122223333:group/admins", "arn:aws:iam::aws:policy/AdministratorAccess",
		"arn:aws:sts::111122223333:assumed-role/deploy/s1", "arn:aws:ec2:us-east-1:111122223333:instance", "alice", "ami-0abcdef1234567890", "i-",
	} {
		_, err := a.Run(context.Background(), "aws.tag", map[string]string{"arn": arn, "key": "k", "value": "v"})
		if err == nil || !strings.Contains(err.Error(), "aws.tag tags IAM users and roles") {
			t.Errorf("tag %s: %v", arn, err)
		}
	}
	_, err := a.Run(context.Background(), "aws.tag", map[string]string{"arn": "arn:aws:ec2:eu-west-1:111122223333:volume/vol-1", "key": "k", "value": "v", "region": "us-east-1"})
	if err == nil || !strings.Contains(err.Error(), "region eu-west-1") {
		t.Errorf("an ARN of another region than the input's: %v", err)
	}
	if n := len(iamSrv.TakeCalls()) + len(ec2Srv.TakeCalls()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

// TestAWSAssumeRole: a step in a configured account acts with the
// temporary credentials of the role vigil assumes there, the STS
// AssumeRole call made once for all the account's steps; a step in
// another account is refused without a call.
func TestAWSAssumeRole(t *testing.T) {
	ctx := context.Background()
	const (
		role    = "arn:aws:iam::111122223333:role/vigil-responder"
		keyID   = "ASIAVIGILTEST0000002"
		secret  = "temporary-secret"
		session = "FwoGZXIvYXdzEXAMPLE//////////wEaDvigil-session-token"
	)
	stsSrv := awstest.NewQueryServer(t, awstest.STS, testKey("sts", "us-east-1"), func(action string, form url.Values) (string, *awstest.QueryError) {
		// docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
		return fmt.Sprintf(`<AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/vigil-responder/%s</Arn>`+
			`<AssumedRoleId>AROA3XFRBF535PLBIFPI4:%[1]s</AssumedRoleId></AssumedRoleUser>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>`+
			`<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult>`,
			form.Get("RoleSessionName"), keyID, secret, session, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), nil
	})
	// The services take only the role's credentials, with their token.
	temp := func(service string) awstest.Credentials {
		return awstest.Credentials{KeyID: keyID, Secret: secret, SessionToken: session, Region: "us-east-1", Service: service}
	}
	iamSrv := awstest.NewQueryServer(t, awstest.IAM, temp("iam"), nil)
	ec2Srv := newEC2Server(t, temp("ec2"))
	a := testAWS("test-secret", map[string]string{"sts": stsSrv.URL, "iam": iamSrv.URL, "ec2": ec2Srv.URL})
	a.Accounts = map[string]string{"111122223333": role}
	a.ExternalID = "vigil-7f3a"

	if _, err := a.Run(ctx, "aws.ec2.snapshot", map[string]string{"instance_id": "i-0598c7d356eba48d7", "account": "111122223333"}); err != nil {
		t.Fatalf("snapshot in the account: %v", err)
	}
	// The account here is the ARN's.
	if _, err := a.Run(ctx, "aws.iam.deny_all", map[string]string{"principal": "arn:aws:iam::111122223333:user/alice"}); err != nil {
		t.Fatalf("deny_all in the account: %v", err)
	}
	checkCalls(t, "STS", stsSrv.TakeCalls(), []map[string]string{{
		"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role, "RoleSessionName": "vigil-playbook",
		"ExternalId": "vigil-7f3a", "DurationSeconds": "900",
	}})
	if n, m := len(ec2Srv.TakeCalls()), len(iamSrv.TakeCalls()); n != 1 || m != 1 {
		t.Errorf("%d EC2 calls and %d IAM calls, want 1 and 1", n, m)
	}

	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{map[string]string{"instance_id": "i-0598c7d356eba48d7", "account": "444455556666"}, "account 444455556666 is not one"},
		{map[string]string{"arn": "arn:aws:ec2:us-east-1:444455556666:instance/i-0598c7d356eba48d7", "key": "k", "value": "v"}, "account 444455556666 is not one"},
		{map[string]string{"arn": "arn:aws:iam::444455556666:user/alice", "key": "k", "value": "v", "account": "111122223333"}, "is in account 444455556666, not in account 111122223333"},
		{map[string]string{"instance_id": "i-0598c7d356eba48d7", "account": "1111-2222-3333"}, "not an AWS account id"},
	} {
		action := "aws.ec2.snapshot"
		if tc.in["arn"] != "" {
			action = "aws.tag"
		}
		if _, err := a.Run(ctx, action, tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.in, err, tc.want)
		}
	}
	if n := len(stsSrv.TakeCalls()) + len(ec2Srv.TakeCalls()) + len(iamSrv.TakeCalls()); n != 0 {
		t.Errorf("refused steps made %d calls", n)
	}
}

// TestAWSFailures: the SDK does not retry, the runner does: a throttled
// call, a refused one and a server error are each one request, and
// failure tells them apart, for the runner to decide what to retry.
func TestAWSFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		service string // whose stand-in refuses
		action  string
		in      map[string]string
		refuse  string // the call refused
		err     awstest.QueryError
		want    string
	}{
		{"ec2", "aws.ec2.isolate", map[string]string{"instance_id": "i-0598c7d356eba48d7", "security_group": "sg-1"}, "DescribeInstances",
			awstest.QueryError{Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}, failThrottled},
		{"ec2", "aws.ec2.snapshot", map[string]string{"instance_id": "i-0598c7d356eba48d7"}, "CreateSnapshots",
			awstest.QueryError{Status: http.StatusForbidden, Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}, failRefused},
		{"ec2", "aws.tag", map[string]string{"arn": "i-0598c7d356eba48d7", "key": "k", "value": "v"}, "CreateTags",
			awstest.QueryError{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred."}, failUnknown},
		{"iam", "aws.iam.deny_all", map[string]string{"principal": "user/alice"}, "PutUserPolicy",
			awstest.QueryError{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}, failThrottled},
		{"iam", "aws.iam.deactivate_access_key", map[string]string{"user": "alice", "access_key_id": "AKIAL80DWDVKKM0UXEER"}, "UpdateAccessKey",
			awstest.QueryError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "User: arn:aws:iam::111122223333:user/vigil is not authorized to perform: iam:UpdateAccessKey"}, failRefused},
		{"sts", "aws.iam.deny_all", map[string]string{"principal": "user/alice", "account": "111122223333"}, "AssumeRole",
			awstest.QueryError{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}, failThrottled},
	} {
		t.Run(tc.refuse+" "+tc.err.Code, func(t *testing.T) {
			srv := map[string]*awstest.QueryServer{
				"iam": newIAMServer(t),
				"ec2": newEC2Server(t, testKey("ec2", "us-east-1")),
				"sts": awstest.NewQueryServer(t, awstest.STS, testKey("sts", "us-east-1"), nil),
			}
			srv[tc.service].Refuse(tc.refuse, &tc.err)
			a := testAWS("test-secret", map[string]string{"iam": srv["iam"].URL, "ec2": srv["ec2"].URL, "sts": srv["sts"].URL})
			if tc.service == "sts" {
				a.Accounts = map[string]string{"111122223333": "arn:aws:iam::111122223333:role/vigil-responder"}
			}
			_, err := a.Run(ctx, tc.action, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.err.Code) {
				t.Fatalf("error %v, want one with %s", err, tc.err.Code)
			}
			if got := failure(err); got != tc.want {
				t.Errorf("failure(%v) = %s, want %s", err, got, tc.want)
			}
			for _, name := range slices.Sorted(maps.Keys(srv)) {
				n := len(srv[name].TakeCalls())
				if name == tc.service && n != 1 {
					t.Errorf("%s got %d requests, want 1 (no retries)", name, n)
				}
				if name != tc.service && n != 0 {
					t.Errorf("%s got %d requests after %s failed", name, n, tc.refuse)
				}
			}
		})
	}
}

// TestAWSActionsRegistered: every AWS action steps may name runs, and
// every action run is one steps may name.
func TestAWSActionsRegistered(t *testing.T) {
	for name := range Actions {
		if _, ok := awsActions[name]; strings.HasPrefix(name, "aws.") && !ok {
			t.Errorf("action %s has no AWS executor", name)
		}
	}
	for name := range awsActions {
		if _, ok := Actions[name]; !ok {
			t.Errorf("AWS executor %s is no action", name)
		}
	}
	if _, err := (&AWS{}).Run(context.Background(), "aws.ec2.isolate", map[string]string{"instance_id": "i-1", "security_group": ""}); err == nil || !strings.Contains(err.Error(), "security_group is empty") {
		t.Errorf("an empty input: %v", err)
	}
}
