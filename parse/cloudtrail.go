package parse

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vigilsec/vigil/event"
)

func init() {
	registerJSON("aws.cloudtrail", "AWS CloudTrail: S3 delivery files, JSON lines or arrays, EventBridge events, LookupEvents output, Logstash exports", parseCloudTrail)
}

// cloudTrailRecord holds the fields of a CloudTrail record that
// normalization reads; the rest stays in the raw document.
type cloudTrailRecord struct {
	EventTime          string `json:"eventTime"`
	LogstashTime       string `json:"@timestamp"`
	EventID            string `json:"eventID"`
	EventSource        string `json:"eventSource"`
	EventName          string `json:"eventName"`
	AWSRegion          string `json:"awsRegion"`
	SourceIPAddress    string `json:"sourceIPAddress"`
	UserAgent          string `json:"userAgent"`
	ErrorCode          string `json:"errorCode"`
	ErrorMessage       string `json:"errorMessage"`
	RecipientAccountID string `json:"recipientAccountId"`
	UserIdentity       struct {
		Type             string `json:"type"`
		PrincipalID      string `json:"principalId"`
		ARN              string `json:"arn"`
		AccountID        string `json:"accountId"`
		AccessKeyID      string `json:"accessKeyId"`
		UserName         string `json:"userName"`
		InvokedBy        string `json:"invokedBy"`
		IdentityProvider string `json:"identityProvider"`
		SessionContext   struct {
			SessionIssuer struct {
				UserName string `json:"userName"`
				ARN      string `json:"arn"`
			} `json:"sessionIssuer"`
			SourceIdentity string `json:"sourceIdentity"`
		} `json:"sessionContext"`
		OnBehalfOf struct {
			UserID string `json:"userId"`
		} `json:"onBehalfOf"`
	} `json:"userIdentity"`
	Resources           json.RawMessage `json:"resources"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData"`

	// The EventBridge envelope.
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
	// LookupEvents output: the record is a JSON string.
	CloudTrailEvent *string `json:"CloudTrailEvent"`
}

func parseCloudTrail(rec []byte, ev *event.Event) error {
	var r cloudTrailRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return fmt.Errorf("CloudTrail record: %w", err)
		}
		return jsonError(rec)
	}
	switch {
	case r.CloudTrailEvent != nil:
		inner := []byte(*r.CloudTrailEvent)
		if err := parseCloudTrailInner(inner, ev); err != nil {
			return fmt.Errorf("CloudTrailEvent of a LookupEvents record: %w", err)
		}
		ev.Doc = inner
		return nil
	case r.DetailType != "" && len(r.Detail) > 0 && r.Detail[0] == '{':
		if err := parseCloudTrailInner(r.Detail, ev); err != nil {
			return fmt.Errorf("detail of an EventBridge event: %w", err)
		}
		ev.Doc = r.Detail
		return nil
	}
	return r.normalize(ev)
}

// parseCloudTrailInner parses the CloudTrail record inside an envelope.
func parseCloudTrailInner(rec []byte, ev *event.Event) error {
	var r cloudTrailRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return err
		}
		return jsonError(rec)
	}
	return r.normalize(ev)
}

func (r *cloudTrailRecord) normalize(ev *event.Event) error {
	if r.EventName == "" || r.EventSource == "" {
		return notThis("CloudTrail", "no eventName or eventSource")
	}
	ts := r.EventTime
	if ts == "" {
		ts = r.LogstashTime // Logstash exports move eventTime to @timestamp
	}
	if ts != "" { // without one, the event is stamped with its receipt time
		t, err := parseTime(ts)
		if err != nil {
			return fmt.Errorf("CloudTrail eventTime: %w", err)
		}
		ev.Time = t
	}
	ev.ID = r.EventID
	ev.Source = "aws.cloudtrail"
	ev.Cloud = event.Cloud{Provider: "aws", Account: r.RecipientAccountID, Region: r.AWSRegion}
	if ev.Cloud.Account == "" {
		ev.Cloud.Account = r.UserIdentity.AccountID
	}
	ev.Service = r.EventSource
	ev.Action = r.EventName
	ev.UserAgent = r.UserAgent
	if ip, err := netip.ParseAddr(r.SourceIPAddress); err == nil {
		ev.SrcIP = ip.Unmap()
	}
	ev.Actor = r.actor()
	ev.Session.ID = r.UserIdentity.AccessKeyID
	ev.Outcome = r.outcome()
	ev.Class = cloudTrailClass(r.EventSource, r.EventName)
	ev.Resources = appendResourceARNs(ev.Resources, r.Resources)
	ev.Resources = appendRequestResources(ev.Resources, r.RequestParameters)
	return nil
}

// actor names the principal the way an analyst would: the user name,
// the role and session for an assumed role, "root" for the root user.
func (r *cloudTrailRecord) actor() event.Actor {
	u := &r.UserIdentity
	a := event.Actor{ID: u.ARN, Type: u.Type, Name: u.UserName}
	if a.ID == "" {
		a.ID = u.PrincipalID
	}
	switch u.Type {
	case "Root":
		if a.Name == "" {
			a.Name = "root"
		}
	case "AssumedRole", "FederatedUser":
		// arn:aws:sts::123456789012:assumed-role/Role/session
		if i := strings.Index(u.ARN, ":assumed-role/"); i >= 0 {
			a.Name = u.ARN[i+len(":assumed-role/"):]
		} else if i := strings.Index(u.ARN, ":federated-user/"); i >= 0 {
			a.Name = u.ARN[i+len(":federated-user/"):]
		} else if a.Name == "" {
			a.Name = u.SessionContext.SessionIssuer.UserName
		}
	case "AWSService":
		if a.Name == "" {
			a.Name = u.InvokedBy
		}
	case "IdentityCenterUser":
		if a.Name == "" {
			a.Name = u.OnBehalfOf.UserID
		}
	}
	if a.Name == "" && u.ARN != "" {
		a.Name = u.ARN[strings.LastIndexByte(u.ARN, '/')+1:]
	}
	if a.Name == "" {
		a.Name = u.PrincipalID
	}
	return a
}

// outcome reads errorCode, and for console sign-ins the response, which
// carries the failure without an errorCode.
func (r *cloudTrailRecord) outcome() event.Outcome {
	if r.ErrorCode != "" {
		return event.Outcome{Result: event.OutcomeFailure, Code: r.ErrorCode}
	}
	if len(r.ResponseElements) > 0 && r.ResponseElements[0] == '{' {
		var resp map[string]any
		if json.Unmarshal(r.ResponseElements, &resp) == nil {
			for _, k := range []string{"ConsoleLogin", "SwitchRole", "CheckMfa", "ExternalIdPDirectoryLogin", "UserAuthentication", "CredentialVerification"} {
				if v, ok := resp[k].(string); ok {
					if v == "Success" {
						return event.Outcome{Result: event.OutcomeSuccess}
					}
					code := r.ErrorMessage
					if code == "" {
						code = v
					}
					return event.Outcome{Result: event.OutcomeFailure, Code: code}
				}
			}
		}
	}
	return event.Outcome{Result: event.OutcomeSuccess}
}

// cloudTrailClass sorts calls into the classes detections care about.
func cloudTrailClass(source, name string) string {
	switch source {
	case "signin.amazonaws.com":
		switch name {
		case "ConsoleLogin", "CheckMfa", "ExternalIdPDirectoryLogin", "UserAuthentication", "CredentialVerification", "PasswordRecoveryCompleted":
			return event.ClassAuthentication
		}
	case "iam.amazonaws.com":
		for _, verb := range []string{"Create", "Delete", "Update", "Attach", "Detach", "Put", "Add", "Remove", "Change", "Reset", "Enable", "Deactivate", "Upload", "Tag", "Untag"} {
			if strings.HasPrefix(name, verb) {
				return event.ClassAccountChange
			}
		}
	}
	return event.ClassAPIActivity
}

// requestResources are the request parameters that name the resource an
// API call acts on, for the calls attackers make most.
type requestResources struct {
	BucketName   string `json:"bucketName"`
	UserName     string `json:"userName"`
	RoleName     string `json:"roleName"`
	GroupName    string `json:"groupName"`
	PolicyArn    string `json:"policyArn"`
	RoleArn      string `json:"roleArn"`
	FunctionName string `json:"functionName"`
	SecretID     string `json:"secretId"`
	KeyID        string `json:"keyId"`
	InstanceID   string `json:"instanceId"`
	SnapshotID   string `json:"snapshotId"`
	GroupID      string `json:"groupId"`
	Instances    struct {
		Items []struct {
			InstanceID string `json:"instanceId"`
		} `json:"items"`
	} `json:"instancesSet"`
}

func appendRequestResources(dst []string, params json.RawMessage) []string {
	if len(params) == 0 || params[0] != '{' {
		return dst
	}
	var p requestResources
	if json.Unmarshal(params, &p) != nil {
		return dst // a parameter of an unexpected type is left in the document
	}
	for _, s := range []string{p.BucketName, p.UserName, p.RoleName, p.GroupName, p.PolicyArn, p.RoleArn, p.FunctionName, p.SecretID, p.KeyID, p.InstanceID, p.SnapshotID, p.GroupID} {
		if s != "" {
			dst = append(dst, s)
		}
	}
	for _, it := range p.Instances.Items {
		if it.InstanceID != "" {
			dst = append(dst, it.InstanceID)
		}
	}
	return dst
}

// appendResourceARNs adds the ARNs of the resources list. Its shape is
// not checked: a list of another shape stays in the document only.
func appendResourceARNs(dst []string, resources json.RawMessage) []string {
	if len(resources) == 0 || resources[0] != '[' {
		return dst
	}
	var rs []struct {
		ARN string `json:"ARN"`
	}
	if json.Unmarshal(resources, &rs) != nil {
		return dst
	}
	for _, r := range rs {
		if r.ARN != "" {
			dst = append(dst, r.ARN)
		}
	}
	return dst
}
