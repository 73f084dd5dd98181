package inventory

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

// FuzzObserve: any document, under any action that issues a credential
// or makes an asset, is read without panicking, and what it adds is
// followed and looked up without panicking either.
func FuzzObserve(f *testing.F) {
	for _, s := range []string{
		`{"eventSource":"sts.amazonaws.com","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accessKeyId":"AKIA1"},"requestParameters":{"roleArn":"arn:aws:iam::1:role/r","roleSessionName":"s"},"responseElements":{"credentials":{"accessKeyId":"ASIA1","expiration":"Aug 1, 2024, 11:45:22 AM"},"assumedRoleUser":{"arn":"arn:aws:sts::1:assumed-role/r/s"}}}`,
		`{"eventSource":"sts.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"},"requestParameters":{"roleArn":"arn:aws:iam::1:role/r","roleSessionName":"i-0123456789abcdef0"},"responseElements":{"credentials":{}}}`,
		`{"eventSource":"iam.amazonaws.com","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"},"requestParameters":{"userName":"x"},"responseElements":{"accessKey":{"accessKeyId":"AKIA2"}}}`,
		`{"responseElements":{"instancesSet":{"items":[{"instanceId":"i-1","privateIpAddress":"10.0.0.1","tagSet":{"items":[{"key":"k","value":"v"}]}}]}}}`,
		`{"requestParameters":{"instancesSet":{"items":[{"instanceId":"i-1"}]}}}`,
		`{"responseElements":null}`, `[]`, `"x"`, ``,
	} {
		f.Add(s, "AssumeRole")
		f.Add(s, "RunInstances")
	}
	actions := []string{"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetSessionToken", "GetFederationToken",
		"CreateAccessKey", "RunInstances", "TerminateInstances", "CreateUser", "DeleteUser", "CreateRole", "DeleteRole", "AssociateAddress", "DisassociateAddress"}
	f.Fuzz(func(t *testing.T, doc, action string) {
		t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		ids, inv := NewIdentities(), NewInventory()
		for i, a := range append(actions, action) {
			ev := &event.Event{Source: "aws.cloudtrail", Action: a, Time: t0.Add(time.Duration(i) * time.Second), Raw: []byte(doc),
				Session: event.Session{ID: "ASIA1"}, Actor: event.Actor{Type: "AssumedRole", ID: "arn:aws:sts::1:assumed-role/r/s"}}
			ids.Enrich([]*event.Event{ev})
			inv.Observe(ev)
		}
		ids.g.Chain(Principal{Key: "ASIA1"}, t0.Add(time.Hour))
		inv.Lookup("10.0.0.1", t0.Add(time.Hour))
		inv.Lookup("i-1", time.Time{})
	})
}
