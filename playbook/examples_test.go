package playbook

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
)

// stratusEvent returns the first event of a Stratus Red Team detonation
// that performs action.
func stratusEvent(t *testing.T, technique, action string) *event.Event {
	t.Helper()
	f, err := os.Open("../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/" + technique + ".json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found *event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil && r.Event.Action == action && found == nil {
			found = r.Event
		}
		return nil
	})
	if err != nil || found == nil {
		t.Fatalf("%s: no %s event: %v", technique, action, err)
	}
	return found
}

// TestExamples: the example playbooks load, take the alerts of the
// attacks they are for, and plan the steps docs/playbooks.md says, with
// inputs written from the real events.
func TestExamples(t *testing.T) {
	ps, errs := LoadFS(Examples())
	if len(errs) > 0 || len(ps) != 3 {
		t.Fatalf("%d examples, errors %v", len(ps), errs)
	}
	byName := map[string]*Playbook{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	for _, tc := range []struct {
		playbook, technique, action, rule, severity string
		// want are the steps planned (name=status or name: input=value).
		want []string
	}{
		{"Tell the analyst on call", "aws.persistence.iam-create-admin-user", "CreateUser", "r", "high",
			[]string{"case", "actor: query=actor:\"christophe\"", "page: channel=oncall"}},
		{"Lock a compromised IAM user", "aws.initial-access.console-login-without-mfa", "ConsoleLogin", "8713a488-84e2-49a2-830e-e5036c88b1f3", "high",
			[]string{"console: user=stratus-red-team-nmfalu-jfzdtsvchl", "key=skipped", "deny: principal=arn:aws:iam::562283505220:user/stratus-red-team-nmfalu-jfzdtsvchl"}},
		{"Lock a compromised IAM user", "aws.persistence.iam-backdoor-user", "CreateAccessKey", "1bc4d2e3-23a1-40b8-9e99-6406cc022632", "medium",
			[]string{"console: user=christophe", "deny: principal=arn:aws:iam::946986569305:user/christophe"}},
		{"Isolate a crypto-mining instance", "aws.execution.ec2-launch-unusual-instances", "RunInstances", "6dd7fbc0-3ac7-414b-9872-b14486cbdd84", "high",
			[]string{"snapshot=skipped", "isolate=skipped", "sessions: role=stratus-red-team-ec2lui-role-idtzskbvtd"}},
	} {
		p := byName[tc.playbook]
		ev := stratusEvent(t, tc.technique, tc.action)
		a := &meta.Alert{ID: "a1", Tenant: "acme", RuleID: tc.rule, Title: "t", Severity: tc.severity, Count: 1,
			Context: map[string]string{"vigil.actor": ev.Actor.Name, "vigil.action": ev.Action, "vigil.account": ev.Cloud.Account}}
		if !p.Matches(a, ev) {
			t.Errorf("%s does not take the alert of %s", tc.playbook, tc.technique)
			continue
		}
		data, err := NewData(a, ev)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := p.Plan(data)
		if err != nil {
			t.Errorf("%s on %s: %v", tc.playbook, tc.technique, err)
			continue
		}
		var got []string
		for _, s := range plan {
			if s.Skipped {
				got = append(got, s.Step+"=skipped")
				continue
			}
			got = append(got, s.Step)
			for k, v := range s.Inputs {
				got = append(got, s.Step+": "+k+"="+v)
			}
		}
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("%s on %s: no %q in\n%s", tc.playbook, tc.technique, w, strings.Join(got, "\n"))
			}
		}
	}
}
