package playbook

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
)

// createKeyEvent is the CreateAccessKey call of Stratus Red Team's
// "backdoor user" detonation: a key created for another user.
func createKeyEvent(t *testing.T) *event.Event {
	t.Helper()
	f, err := os.Open("../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/aws.persistence.iam-backdoor-user.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found *event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil && r.Event.Action == "CreateAccessKey" {
			found = r.Event
		}
		return nil
	})
	if err != nil || found == nil {
		t.Fatalf("no CreateAccessKey event: %v", err)
	}
	return found
}

// TestPlan: the playbook matches the alert of the backdoor-key rule and
// plans its steps with their inputs written from the real event, the
// destructive step waiting for approval.
func TestPlan(t *testing.T) {
	p, err := ParseFile("testdata/deactivate-backdoor-key.yml")
	if err != nil {
		t.Fatal(err)
	}
	ev := createKeyEvent(t)
	a := &meta.Alert{ID: "a1", RuleID: "1bc4d2e3-23a1-40b8-9e99-6406cc022632", Severity: "medium", Tenant: "acme"}
	if !p.Matches(a, ev) {
		t.Fatal("the playbook does not take the alert of its rule")
	}
	if other := (&meta.Alert{RuleID: "r2", Severity: "critical"}); p.Matches(other, ev) {
		t.Error("the playbook takes another rule's alert")
	}
	data, err := NewData(a, ev)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := p.Plan(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 2 || plan[0].Mode != Auto || plan[1].Mode != Approve || plan[1].Action != "aws.iam.deactivate_access_key" {
		t.Fatalf("plan %+v", plan)
	}
	in := plan[1].Inputs
	if !strings.HasPrefix(in["access_key_id"], "AKIA") || in["user"] == "" || in["account"] != ev.Cloud.Account {
		t.Errorf("inputs %v", in)
	}
	if !strings.Contains(plan[0].Inputs["text"], "created a key for "+in["user"]) {
		t.Errorf("notify text %q", plan[0].Inputs["text"])
	}
}

// TestParseErrors: what does not load is refused with its line and why.
func TestParseErrors(t *testing.T) {
	base := "name: x\ntrigger: {rules: [r1]}\nsteps:\n"
	for _, tc := range []struct{ src, want string }{
		{"", "empty playbook"},
		{"trigger: {rules: [r1]}\nsteps: []\n", ":1: a playbook needs a name"},
		{"name: x\nsteps:\n  - {action: notify, with: {channel: a}}\n", "needs a trigger"},
		{"name: x\ntrigger: {}\nsteps:\n  - {action: notify, with: {channel: a}}\n", ":2: trigger: name rules"},
		{"name: x\ntrigger: {rules: [r1], when: now}\nsteps:\n  - {action: notify, with: {channel: a}}\n", "trigger: unknown field when"},
		{"name: x\ntrigger: {min_severity: dire}\nsteps:\n  - {action: notify, with: {channel: a}}\n", `min_severity "dire"`},
		{"name: x\ntrigger: {rules: [r1]}\n", "needs steps"},
		{base + "  - {action: launch.missiles}\n", `:4: step "step1": unknown action "launch.missiles"`},
		{base + "  - {action: aws.iam.deactivate_access_key, with: {user: u}}\n", `needs the input "access_key_id"`},
		{base + "  - {action: notify, with: {channel: \"{{ .Alert.ID\"}}\n", "input channel"},
		{base + "  - {action: notify, mode: yolo, with: {channel: a}}\n", `mode "yolo"`},
		{base + "  - {action: notify, timeout: soon, with: {channel: a}}\n", `timeout "soon"`},
		{base + "  - {action: notify, on_error: panic, with: {channel: a}}\n", `on_error "panic"`},
		{base + "  - {name: a, action: notify, with: {channel: a}}\n  - {name: a, action: notify, with: {channel: b}}\n", `step "a": a name given twice`},
		{"name: x\nmode: sometimes\ntrigger: {rules: [r1]}\nsteps:\n  - {action: notify, with: {channel: a}}\n", `mode "sometimes"`},
		{"name: [x\n", "yaml"},
	} {
		_, err := Parse("p.yml", []byte(tc.src))
		var pe *Error
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an *Error containing %q", tc.src, err, tc.want)
		}
	}
}

// TestDestructiveNeedsApproval: in an auto playbook, a destructive step
// still waits for approval unless it says auto itself; every step of a
// dry-run playbook is a dry run, whatever it says.
func TestDestructiveNeedsApproval(t *testing.T) {
	src := `name: contain
mode: %s
trigger: {min_severity: high}
steps:
  - {name: tell, action: notify, with: {channel: oncall}}
  - {name: lock, action: aws.iam.delete_login_profile, with: {user: u}}
  - {name: lock-now, action: aws.iam.deny_all, mode: auto, with: {principal: p}}
`
	for mode, want := range map[string]string{"auto": "auto approve auto", "dry-run": "dry-run dry-run dry-run", "approve": "approve approve auto"} {
		p, err := Parse("p.yml", []byte(strings.Replace(src, "%s", mode, 1)))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range p.Steps {
			got = append(got, s.Mode)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("mode %s: steps %v, want %s", mode, got, want)
		}
	}
}

// TestQuote: a value quoted for a search cannot be widened or escape its
// quotes.
func TestQuote(t *testing.T) {
	q := funcs["quote"].(func(any) string)
	for in, want := range map[string]string{
		`alice`:          `"alice"`,
		`a"b`:            `"a\"b"`,
		`*`:              `"\*"`,
		`x\" OR actor:*`: `"x\\\" OR actor:\*"`,
	} {
		if got := q(in); got != want {
			t.Errorf("quote(%s) = %s, want %s", in, got, want)
		}
		parsed, err := query.Parse("actor:" + q(in))
		c, ok := parsed.Filter.(*query.Compare)
		if err != nil || !ok || c.Value.HasWildcard() {
			t.Errorf("actor:%s: %v, %#v", q(in), err, parsed.Filter)
		}
	}
}
