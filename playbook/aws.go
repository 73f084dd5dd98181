package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWS runs the AWS containment actions through IAM's and EC2's APIs,
// with the credentials of Config (the standard chain), or, for a step
// acting in one of Accounts, with those of the role vigil assumes there.
// An AWS must not be copied after first use.
type AWS struct {
	Config aws.Config
	// Accounts are the accounts vigil acts in through a role: account id
	// → the ARN of the role it assumes there
	// (arn:aws:iam::111122223333:role/vigil-responder). When it is set, a
	// step in an account not listed is refused rather than run with
	// Config's credentials.
	Accounts map[string]string
	// ExternalID, if set, is the external id given when assuming those
	// roles, as their trust policies may require.
	ExternalID string
	// Endpoints, if set, are where the services are, by service id
	// ("iam", "ec2", "sts"): local servers in tests.
	Endpoints map[string]string
	// Now is the time the session revocation cuts at; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	assumed map[string]aws.CredentialsProvider // by account
}

// The names of the policies the actions attach, which a responder
// removes to undo them, and the tag on forensic snapshots.
const (
	DenyAllPolicy        = "vigil-deny-all"
	RevokeSessionsPolicy = "vigil-revoke-older-sessions"
	ForensicsTag         = "vigil:forensics"
)

// awsActions are the AWS actions by name. Each is idempotent where the
// API lets it be, and says so where it is not.
var awsActions = map[string]func(context.Context, *awsStep) (map[string]string, error){
	"aws.iam.deactivate_access_key": iamDeactivateAccessKey,
	"aws.iam.delete_login_profile":  iamDeleteLoginProfile,
	"aws.iam.deny_all":              iamDenyAll,
	"aws.iam.revoke_sessions":       iamRevokeSessions,
	"aws.ec2.isolate":               ec2Isolate,
	"aws.ec2.snapshot":              ec2Snapshot,
	"aws.tag":                       awsTag,
}

// An awsStep is one run of an action: its inputs, and the credentials
// of the account it acts in.
type awsStep struct {
	a     *AWS
	creds aws.CredentialsProvider
	in    map[string]string
}

// Run runs one AWS action with its inputs, in the account they name
// (input account, or the account of the ARN acted on).
func (a *AWS) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	run, ok := awsActions[action]
	if !ok {
		return nil, fmt.Errorf("no AWS action %q", action)
	}
	// A template can write an empty input, which the APIs would read as
	// "all" (DescribeInstances) or refuse obscurely.
	for _, k := range Actions[action].Required {
		if in[k] == "" {
			return nil, fmt.Errorf("input %s is empty", k)
		}
	}
	creds, err := a.credentials(in)
	if err != nil {
		return nil, err
	}
	return run(ctx, &awsStep{a: a, creds: creds, in: in})
}

// credentials are those a step acts with: with Accounts configured and
// the step in one of them, the role's assumed there; otherwise Config's.
func (a *AWS) credentials(in map[string]string) (aws.CredentialsProvider, error) {
	account, err := stepAccount(in)
	if err != nil {
		return nil, err
	}
	if account == "" || len(a.Accounts) == 0 {
		return a.Config.Credentials, nil
	}
	role, ok := a.Accounts[account]
	if !ok {
		return nil, fmt.Errorf("account %s is not one of the AWS accounts vigil is configured to act in", account)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.assumed[account]; ok {
		return p, nil
	}
	// The cache keeps the role's credentials until they near their
	// expiry, so that a run's steps do not each call AssumeRole.
	p := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.config("sts", a.Config.Credentials)), role,
		func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "vigil-playbook" // what CloudTrail shows vigil's calls as
			if a.ExternalID != "" {
				o.ExternalID = aws.String(a.ExternalID)
			}
		}))
	if a.assumed == nil {
		a.assumed = map[string]aws.CredentialsProvider{}
	}
	a.assumed[account] = p
	return p, nil
}

// stepAccount is the account a step acts in: its input account, or the
// account in the ARN it acts on. Both given, they must agree: IAM's
// calls name users and roles without their account, and alice of one
// account is not alice of another.
func stepAccount(in map[string]string) (string, error) {
	account := in["account"]
	if account != "" && !isAccountID(account) {
		return "", fmt.Errorf("account %q is not an AWS account id (12 digits)", account)
	}
	for _, k := range []string{"arn", "principal"} {
		parts := strings.SplitN(in[k], ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || !isAccountID(parts[4]) {
			continue // no account in it, as in a bare id or user/NAME
		}
		if account != "" && account != parts[4] {
			return "", fmt.Errorf("input %s %s is in account %s, not in account %s", k, in[k], parts[4], account)
		}
		account = parts[4]
	}
	return account, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// config is Config for a client of service with credentials creds.
func (a *AWS) config(service string, creds aws.CredentialsProvider) aws.Config {
	cfg := a.Config.Copy()
	cfg.Credentials = creds
	// vigil's runner tries a failed step again itself, and only when that
	// is safe (see failure): the SDK's own retries would try again calls
	// that may have acted, and keep throttling from the runner.
	cfg.RetryMaxAttempts = 1
	if e := a.Endpoints[service]; e != "" {
		cfg.BaseEndpoint = aws.String(e)
	}
	return cfg
}

func (s *awsStep) iam() *iam.Client {
	return iam.NewFromConfig(s.a.config("iam", s.creds))
}

// ec2 is a client of EC2 in region, or if empty the input region, or
// Config's.
func (s *awsStep) ec2(region string) *ec2.Client {
	cfg := s.a.config("ec2", s.creds)
	if region == "" {
		region = s.in["region"]
	}
	if region != "" {
		cfg.Region = region
	}
	return ec2.NewFromConfig(cfg)
}

// iamDeactivateAccessKey makes an access key inactive: a responder can
// make it active again. Run twice, the key stays inactive.
func iamDeactivateAccessKey(ctx context.Context, s *awsStep) (map[string]string, error) {
	user, key := s.in["user"], s.in["access_key_id"]
	// docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAccessKey.html
	_, err := s.iam().UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
		UserName: aws.String(user), AccessKeyId: aws.String(key), Status: iamtypes.StatusTypeInactive,
	})
	if err != nil {
		return nil, fmt.Errorf("deactivating access key %s of %s: %w", key, user, err)
	}
	return map[string]string{"access_key_id": key, "status": "Inactive"}, nil
}

// iamDeleteLoginProfile deletes a user's console password. A profile
// already gone is not an error.
func iamDeleteLoginProfile(ctx context.Context, s *awsStep) (map[string]string, error) {
	user := s.in["user"]
	// docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteLoginProfile.html
	_, err := s.iam().DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(user)})
	var gone *iamtypes.NoSuchEntityException
	if err != nil && !errors.As(err, &gone) {
		return nil, fmt.Errorf("deleting the login profile of %s: %w", user, err)
	}
	return map[string]string{"user": user}, nil
}

// iamDenyAll puts an inline policy denying everything on a user or a
// role; put again, the policy is the same.
func iamDenyAll(ctx context.Context, s *awsStep) (map[string]string, error) {
	kind, name, err := principal(s.in["principal"])
	if err != nil {
		return nil, err
	}
	return map[string]string{"policy": DenyAllPolicy}, putPolicy(ctx, s.iam(), kind, name, DenyAllPolicy, denyAll(nil))
}

// iamRevokeSessions puts on a role the deny of sessions issued before
// now that the IAM console's "Revoke active sessions" puts. Run again,
// it moves the cut to the later now.
func iamRevokeSessions(ctx context.Context, s *awsStep) (map[string]string, error) {
	now := time.Now
	if s.a.Now != nil {
		now = s.a.Now
	}
	cond := map[string]any{"DateLessThan": map[string]string{"aws:TokenIssueTime": now().UTC().Format(time.RFC3339)}}
	return map[string]string{"policy": RevokeSessionsPolicy}, putPolicy(ctx, s.iam(), "role", s.in["role"], RevokeSessionsPolicy, denyAll(cond))
}

// putPolicy puts an inline policy on a user or a role.
func putPolicy(ctx context.Context, c *iam.Client, kind, name, policy, doc string) error {
	var err error
	switch kind {
	case "user":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html
		_, err = c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
	case "role":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
		_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
	default:
		return fmt.Errorf("cannot put a policy on a %s", kind)
	}
	if err != nil {
		return fmt.Errorf("putting policy %s on %s %s: %w", policy, kind, name, err)
	}
	return nil
}

// ec2Isolate replaces an instance's security groups with one (which a
// responder makes allow nothing, or only their own access), after
// recording the groups it had, so that it can be undone. An instance
// already in that group alone is left as it is; its previous_groups are
// then that group, the first run's output having those to restore.
// EC2 refuses to change the groups of an instance with several network
// interfaces this way: those are isolated per interface.
func ec2Isolate(ctx context.Context, s *awsStep) (map[string]string, error) {
	id, group := s.in["instance_id"], s.in["security_group"]
	c := s.ec2("")
	// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html
	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describing instance %s: %w", id, err)
	}
	var inst *ec2types.Instance
	for _, r := range desc.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				inst = &r.Instances[i]
			}
		}
	}
	if inst == nil {
		return nil, fmt.Errorf("describing instance %s: EC2 does not list it", id)
	}
	var previous []string
	for _, g := range inst.SecurityGroups {
		previous = append(previous, aws.ToString(g.GroupId))
	}
	already := len(previous) == 1 && previous[0] == group
	// already is always set, so that a later step's template may read it.
	out := map[string]string{"instance_id": id, "security_group": group, "previous_groups": strings.Join(previous, ","), "already": strconv.FormatBool(already)}
	if already {
		return out, nil
	}
	// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceAttribute.html:
	// GroupId replaces the instance's groups.
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), Groups: []string{group}}); err != nil {
		return nil, fmt.Errorf("moving instance %s into security group %s: %w", id, group, err)
	}
	return out, nil
}

// ec2Snapshot snapshots the EBS volumes of an instance, for forensics,
// the snapshots tagged with their volume's tags and ForensicsTag = the
// instance id. It is not idempotent: CreateSnapshots takes no client
// token, and a second run takes a second set of snapshots. The runner's
// idempotency key keeps a step from running twice.
func ec2Snapshot(ctx context.Context, s *awsStep) (map[string]string, error) {
	id := s.in["instance_id"]
	desc := s.in["description"]
	if desc == "" {
		desc = "vigil: forensic snapshot of " + id
	}
	// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html
	res, err := s.ec2("").CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(id)},
		CopyTagsFromSource:    ec2types.CopyTagsFromSourceVolume,
		Description:           aws.String(desc),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeSnapshot,
			Tags:         []ec2types.Tag{{Key: aws.String(ForensicsTag), Value: aws.String(id)}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("snapshotting the volumes of instance %s: %w", id, err)
	}
	var ids []string
	for _, snap := range res.Snapshots {
		ids = append(ids, aws.ToString(snap.SnapshotId))
	}
	return map[string]string{"instance_id": id, "snapshots": strings.Join(ids, ",")}, nil
}

// awsTag tags an IAM user or role, or an EC2 resource. Tagged again with
// the same value, it is the same.
func awsTag(ctx context.Context, s *awsStep) (map[string]string, error) {
	arn, key, value := s.in["arn"], s.in["key"], s.in["value"]
	out := map[string]string{"arn": arn, "key": key, "value": value}
	if id, region, ok := ec2Resource(arn); ok {
		if r := s.in["region"]; r != "" && region != "" && r != region {
			return nil, fmt.Errorf("input arn %s is in region %s, not in region %s", arn, region, r)
		}
		// docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html
		_, err := s.ec2(region).CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}},
		})
		if err != nil {
			return nil, fmt.Errorf("tagging %s: %w", id, err)
		}
		return out, nil
	}
	kind, name, ok := iamResource(arn)
	if !ok {
		return nil, fmt.Errorf("cannot tag %q: aws.tag tags IAM users and roles (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:iam::ACCOUNT:role/NAME) and EC2 resources (arn:aws:ec2:REGION:ACCOUNT:TYPE/ID, or an id i-…, vol-…, sg-…, snap-…)", arn)
	}
	tags := []iamtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}
	var err error
	if kind == "user" {
		// docs.aws.amazon.com/IAM/latest/APIReference/API_TagUser.html
		_, err = s.iam().TagUser(ctx, &iam.TagUserInput{UserName: aws.String(name), Tags: tags})
	} else {
		// docs.aws.amazon.com/IAM/latest/APIReference/API_TagRole.html
		_, err = s.iam().TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(name), Tags: tags})
	}
	if err != nil {
		return nil, fmt.Errorf("tagging %s %s: %w", kind, name, err)
	}
	return out, nil
}

// iamResource reads an IAM user's or role's ARN
// (arn:aws:iam::ACCOUNT:user/PATH/NAME, …:role/PATH/NAME): which it is,
// and its name.
func iamResource(s string) (kind, name string, ok bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" {
		return "", "", false
	}
	kind, name, err := principal(s)
	return kind, name, err == nil
}

// ec2Resource reads an EC2 resource's ARN (arn:aws:ec2:REGION:ACCOUNT:TYPE/ID)
// or id (i-…, vol-…, sg-…, snap-…): its id, and its region if the ARN says.
func ec2Resource(s string) (id, region string, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "ec2" {
		_, id, ok := strings.Cut(parts[5], "/")
		return id, parts[3], ok && id != "" && !strings.Contains(id, "/")
	}
	for _, p := range []string{"i-", "vol-", "sg-", "snap-"} {
		if len(s) > len(p) && strings.HasPrefix(s, p) && !strings.ContainsAny(s, ":/") {
			return s, "", true
		}
	}
	return "", "", false
}

// denyAll is a policy document denying every action on every resource,
// under cond if given.
func denyAll(cond map[string]any) string {
	st := map[string]any{"Effect": "Deny", "Action": "*", "Resource": "*"}
	if cond != nil {
		st["Condition"] = cond
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
	return string(b)
}

// principal reads a user or role: an ARN (arn:aws:iam::123456789012:user/alice,
// …:role/path/name) or user/NAME, role/NAME. An assumed-role session
// names its role.
func principal(s string) (kind, name string, err error) {
	rest := s
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 {
			return "", "", fmt.Errorf("principal %q is not an ARN", s)
		}
		rest = parts[5]
		if r, ok := strings.CutPrefix(rest, "assumed-role/"); ok {
			role, _, _ := strings.Cut(r, "/")
			return "role", role, nil
		}
	}
	kind, path, ok := strings.Cut(rest, "/")
	if !ok || (kind != "user" && kind != "role") || path == "" {
		return "", "", fmt.Errorf("principal %q is not a user or a role (user/NAME, role/NAME or an ARN)", s)
	}
	// IAM's APIs take the name, the last part of the path.
	return kind, path[strings.LastIndexByte(path, '/')+1:], nil
}
