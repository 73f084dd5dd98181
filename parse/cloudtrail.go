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
	if err := r.decode(rec); err != nil {
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
	if err := r.decode(rec); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return err
		}
		return jsonError(rec)
	}
	return r.normalize(ev)
}

// decode fills r from rec as json.Unmarshal would. CloudTrail records are
// the bulk of most imports, so it reads them in one pass with a
// jsonScanner, and leaves to encoding/json only the records the scanner
// does not take.
func (r *cloudTrailRecord) decode(rec []byte) error {
	if r.decodeFast(rec) {
		return nil
	}
	*r = cloudTrailRecord{}
	return json.Unmarshal(rec, r)
}

// decodeFast fills r from rec and reports true, or reports false if rec
// must be left to encoding/json.
func (r *cloudTrailRecord) decodeFast(rec []byte) bool {
	s := jsonScanner{b: rec}
	if !s.object() {
		return false
	}
	for first := true; ; first = false {
		key, kind, more, ok := s.member(first)
		if !ok || (more && kind != strASCII) {
			return false
		}
		if !more {
			return s.end()
		}
		switch {
		case keyIs(key, "eventTime"):
			ok = s.stringValue(&r.EventTime)
		case keyIs(key, "@timestamp"):
			ok = s.stringValue(&r.LogstashTime)
		case keyIs(key, "eventID"):
			ok = s.stringValue(&r.EventID)
		case keyIs(key, "eventSource"):
			ok = s.stringValue(&r.EventSource)
		case keyIs(key, "eventName"):
			ok = s.stringValue(&r.EventName)
		case keyIs(key, "awsRegion"):
			ok = s.stringValue(&r.AWSRegion)
		case keyIs(key, "sourceIPAddress"):
			ok = s.stringValue(&r.SourceIPAddress)
		case keyIs(key, "userAgent"):
			ok = s.stringValue(&r.UserAgent)
		case keyIs(key, "errorCode"):
			ok = s.stringValue(&r.ErrorCode)
		case keyIs(key, "errorMessage"):
			ok = s.stringValue(&r.ErrorMessage)
		case keyIs(key, "recipientAccountId"):
			ok = s.stringValue(&r.RecipientAccountID)
		case keyIs(key, "userIdentity"):
			ok = r.decodeUserIdentity(&s)
		case keyIs(key, "resources"):
			r.Resources, ok = s.raw(1)
		case keyIs(key, "requestParameters"):
			r.RequestParameters, ok = s.raw(1)
		case keyIs(key, "responseElements"):
			r.ResponseElements, ok = s.raw(1)
		case keyIs(key, "additionalEventData"):
			r.AdditionalEventData, ok = s.raw(1)
		case keyIs(key, "detail-type"):
			ok = s.stringValue(&r.DetailType)
		case keyIs(key, "detail"):
			r.Detail, ok = s.raw(1)
		case keyIs(key, "CloudTrailEvent"):
			if s.null() {
				r.CloudTrailEvent = nil
				break
			}
			var v string
			ok = s.peek() == '"' && s.stringValue(&v)
			r.CloudTrailEvent = &v
		default:
			ok = s.skip(1)
		}
		if !ok {
			return false
		}
	}
}

// decodeUserIdentity reads the userIdentity object, in the top-level
// record, into r.UserIdentity.
func (r *cloudTrailRecord) decodeUserIdentity(s *jsonScanner) bool {
	u := &r.UserIdentity
	return decodeObject(s, 1, func(key []byte) bool {
		switch {
		case keyIs(key, "type"):
			return s.stringValue(&u.Type)
		case keyIs(key, "principalId"):
			return s.stringValue(&u.PrincipalID)
		case keyIs(key, "arn"):
			return s.stringValue(&u.ARN)
		case keyIs(key, "accountId"):
			return s.stringValue(&u.AccountID)
		case keyIs(key, "accessKeyId"):
			return s.stringValue(&u.AccessKeyID)
		case keyIs(key, "userName"):
			return s.stringValue(&u.UserName)
		case keyIs(key, "invokedBy"):
			return s.stringValue(&u.InvokedBy)
		case keyIs(key, "identityProvider"):
			return s.stringValue(&u.IdentityProvider)
		case keyIs(key, "sessionContext"):
			sc := &u.SessionContext
			return decodeObject(s, 2, func(key []byte) bool {
				switch {
				case keyIs(key, "sessionIssuer"):
					return decodeObject(s, 3, func(key []byte) bool {
						switch {
						case keyIs(key, "userName"):
							return s.stringValue(&sc.SessionIssuer.UserName)
						case keyIs(key, "arn"):
							return s.stringValue(&sc.SessionIssuer.ARN)
						}
						return s.skip(4)
					})
				case keyIs(key, "sourceIdentity"):
					return s.stringValue(&sc.SourceIdentity)
				}
				return s.skip(3)
			})
		case keyIs(key, "onBehalfOf"):
			return decodeObject(s, 2, func(key []byte) bool {
				if keyIs(key, "userId") {
					return s.stringValue(&u.OnBehalfOf.UserID)
				}
				return s.skip(3)
			})
		}
		return s.skip(2)
	})
}

// decodeObject reads an object into a Go struct field as encoding/json
// would: null leaves the struct as it is; another type than an object is
// a mismatch. member reads the value of each member (a strASCII key).
// depth is the number of arrays and objects the object is in.
func decodeObject(s *jsonScanner, depth int, member func(key []byte) bool) bool {
	if s.null() {
		return true
	}
	if depth >= maxScanDepth || !s.object() {
		return false
	}
	for first := true; ; first = false {
		key, kind, more, ok := s.member(first)
		if !ok || !more {
			return ok
		}
		if kind != strASCII || !member(key) {
			return false
		}
	}
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
		if v, found := signInResult(r.ResponseElements); found {
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
	return event.Outcome{Result: event.OutcomeSuccess}
}

// signInKeys are the members of a response that carry the result of a
// sign-in, in the order they are looked for.
var signInKeys = [...]string{"ConsoleLogin", "SwitchRole", "CheckMfa", "ExternalIdPDirectoryLogin", "UserAuthentication", "CredentialVerification"}

// signInResult returns the first of signInKeys in a response object that
// holds a string, as a lookup in the response decoded into a
// map[string]any finds it.
func signInResult(resp []byte) (v string, found bool) {
	if v, found, ok := signInResultFast(resp); ok {
		return v, found
	}
	var m map[string]any
	if json.Unmarshal(resp, &m) != nil {
		return "", false
	}
	for _, k := range signInKeys {
		if v, ok := m[k].(string); ok {
			return v, true
		}
	}
	return "", false
}

// signInResultFast is signInResult in one pass; ok is false if the
// response must be left to encoding/json.
func signInResultFast(resp []byte) (v string, found, ok bool) {
	s := jsonScanner{b: resp}
	if !s.object() {
		return "", false, false
	}
	var vals [len(signInKeys)]string
	var isString [len(signInKeys)]bool
	for first := true; ; first = false {
		k, kind, more, ok := s.member(first)
		if !ok || (more && kind == strEscaped) { // an escaped key might spell one of signInKeys
			return "", false, false
		}
		if !more {
			break
		}
		i := 0
		for i < len(signInKeys) && string(k) != signInKeys[i] {
			i++
		}
		switch {
		case i == len(signInKeys):
			ok = s.skip(1)
		case s.peek() == '"': // a map keeps the last of duplicate keys
			isString[i], vals[i] = true, ""
			ok = s.stringValue(&vals[i])
		default:
			isString[i] = false
			ok = s.skip(1)
		}
		if !ok {
			return "", false, false
		}
	}
	if !s.end() {
		return "", false, false
	}
	for i := range signInKeys {
		if isString[i] {
			return vals[i], true, true
		}
	}
	return "", false, true
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
		Items []instanceItem `json:"items"`
	} `json:"instancesSet"`
}

type instanceItem struct {
	InstanceID string `json:"instanceId"`
}

func appendRequestResources(dst []string, params json.RawMessage) []string {
	if len(params) == 0 || params[0] != '{' {
		return dst
	}
	var p requestResources
	if !p.decodeFast(params) {
		p = requestResources{}
		if json.Unmarshal(params, &p) != nil {
			return dst // a parameter of an unexpected type is left in the document
		}
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

// decodeFast fills p from the request parameters as json.Unmarshal would,
// in one pass, and reports true; or it reports false if they must be left
// to encoding/json.
func (p *requestResources) decodeFast(params []byte) bool {
	s := jsonScanner{b: params}
	ok := decodeObject(&s, 0, func(key []byte) bool {
		switch {
		case keyIs(key, "bucketName"):
			return s.stringValue(&p.BucketName)
		case keyIs(key, "userName"):
			return s.stringValue(&p.UserName)
		case keyIs(key, "roleName"):
			return s.stringValue(&p.RoleName)
		case keyIs(key, "groupName"):
			return s.stringValue(&p.GroupName)
		case keyIs(key, "policyArn"):
			return s.stringValue(&p.PolicyArn)
		case keyIs(key, "roleArn"):
			return s.stringValue(&p.RoleArn)
		case keyIs(key, "functionName"):
			return s.stringValue(&p.FunctionName)
		case keyIs(key, "secretId"):
			return s.stringValue(&p.SecretID)
		case keyIs(key, "keyId"):
			return s.stringValue(&p.KeyID)
		case keyIs(key, "instanceId"):
			return s.stringValue(&p.InstanceID)
		case keyIs(key, "snapshotId"):
			return s.stringValue(&p.SnapshotID)
		case keyIs(key, "groupId"):
			return s.stringValue(&p.GroupID)
		case keyIs(key, "instancesSet"):
			return decodeObject(&s, 1, func(key []byte) bool {
				if !keyIs(key, "items") {
					return s.skip(2)
				}
				items := &p.Instances.Items
				if s.null() {
					*items = nil
					return true
				}
				if !s.array() {
					return false
				}
				// Like encoding/json, decode into the elements already
				// there (a repeated key), even past the length, before
				// appending new ones.
				i := 0
				for first := true; ; first = false {
					more, ok := s.element(first)
					if !ok {
						return false
					}
					if !more {
						break
					}
					switch {
					case i < len(*items):
					case i < cap(*items):
						*items = (*items)[:i+1]
					default:
						*items = append(*items, instanceItem{})
					}
					it := &(*items)[i]
					if !decodeObject(&s, 3, func(key []byte) bool {
						if keyIs(key, "instanceId") {
							return s.stringValue(&it.InstanceID)
						}
						return s.skip(4)
					}) {
						return false
					}
					i++
				}
				*items = (*items)[:i]
				if i == 0 {
					*items = []instanceItem{} // as encoding/json leaves it
				}
				return true
			})
		}
		return s.skip(1)
	})
	return ok && s.end()
}

// appendResourceARNs adds the ARNs of the resources list. Its shape is
// not checked: a list of another shape stays in the document only.
func appendResourceARNs(dst []string, resources json.RawMessage) []string {
	if len(resources) == 0 || resources[0] != '[' {
		return dst
	}
	if out, ok := appendResourceARNsFast(dst, resources); ok {
		return out
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

// appendResourceARNsFast is appendResourceARNs in one pass; ok is false if
// the list must be left to encoding/json.
func appendResourceARNsFast(dst []string, resources []byte) (out []string, ok bool) {
	s := jsonScanner{b: resources}
	if !s.array() {
		return dst, false
	}
	for first := true; ; first = false {
		more, ok := s.element(first)
		if !ok {
			return dst, false
		}
		if !more {
			break
		}
		var arn string
		if !decodeObject(&s, 1, func(key []byte) bool {
			if keyIs(key, "ARN") {
				return s.stringValue(&arn)
			}
			return s.skip(2)
		}) {
			return dst, false
		}
		if arn != "" {
			dst = append(dst, arn)
		}
	}
	return dst, s.end()
}
