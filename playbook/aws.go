package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// AWS runs the AWS containment actions through IAM's API, with the
// credentials and region of Config (from the standard chain, or an
// assumed role per account, as the caller builds it).
type AWS struct {
	Config aws.Config
	// Endpoint, if set, is where IAM is: a local server in tests.
	Endpoint string
	// Now is the time the session revocation cuts at; default time.Now.
	Now func() time.Time
}

// The names of the policies the actions attach, which a responder
// removes to undo them.
const (
	DenyAllPolicy        = "vigil-deny-all"
	RevokeSessionsPolicy = "vigil-revoke-older-sessions"
)

func (a *AWS) iam() *iam.Client {
	return iam.NewFromConfig(a.Config, func(o *iam.Options) {
		if a.Endpoint != "" {
			o.BaseEndpoint = aws.String(a.Endpoint)
		}
	})
}

// Run runs one AWS action with its inputs. Each is idempotent: run twice,
// it acts once (a key already inactive, a profile already gone, a policy
// put again with the same document).
func (a *AWS) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	c := a.iam()
	switch action {
	case "aws.iam.deactivate_access_key":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAccessKey.html
		_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
			UserName: aws.String(in["user"]), AccessKeyId: aws.String(in["access_key_id"]), Status: types.StatusTypeInactive,
		})
		return map[string]string{"access_key_id": in["access_key_id"], "status": "Inactive"}, err
	case "aws.iam.delete_login_profile":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteLoginProfile.html
		_, err := c.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(in["user"])})
		var gone *types.NoSuchEntityException
		if errors.As(err, &gone) {
			err = nil // no console password: nothing to delete
		}
		return map[string]string{"user": in["user"]}, err
	case "aws.iam.deny_all":
		kind, name, err := principal(in["principal"])
		if err != nil {
			return nil, err
		}
		return map[string]string{"policy": DenyAllPolicy}, a.putPolicy(ctx, c, kind, name, DenyAllPolicy, denyAll(nil))
	case "aws.iam.revoke_sessions":
		// The deny of sessions issued before now that the IAM console's
		// "Revoke active sessions" puts on a role.
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		cond := map[string]any{"DateLessThan": map[string]string{"aws:TokenIssueTime": now().UTC().Format(time.RFC3339)}}
		return map[string]string{"policy": RevokeSessionsPolicy}, a.putPolicy(ctx, c, "role", in["role"], RevokeSessionsPolicy, denyAll(cond))
	}
	return nil, fmt.Errorf("no AWS action %q", action)
}

// putPolicy puts an inline policy on a user or a role.
func (a *AWS) putPolicy(ctx context.Context, c *iam.Client, kind, name, policy, doc string) error {
	var err error
	switch kind {
	case "user":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html
		_, err = c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
	case "role":
		// docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
		_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
	default:
		err = fmt.Errorf("cannot put a policy on a %s", kind)
	}
	return err
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
