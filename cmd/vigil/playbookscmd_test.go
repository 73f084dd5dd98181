package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlaybooksCommands: playbooks test shows the steps a playbook would
// take for a real event, inputs written; lint fails on a broken one,
// naming its line.
func TestPlaybooksCommands(t *testing.T) {
	needFixtures(t)
	out := mustVigil(t, "playbooks", "test", "--event", filepath.Join(stratus, "aws.persistence.iam-backdoor-user.json"),
		"--rule", "1bc4d2e3-23a1-40b8-9e99-6406cc022632", "../../playbook/testdata/deactivate-backdoor-key.yml")
	if !strings.Contains(out, "runs for an alert") || !strings.Contains(out, "2. deactivate: aws.iam.deactivate_access_key (approve)") {
		t.Errorf("playbooks test:\n%s", out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("name: x\ntrigger: {rules: [r]}\nsteps:\n  - {action: launch.missiles}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"playbooks", "lint", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), `bad.yml:4: step "step1": unknown action "launch.missiles"`) {
		t.Errorf("lint: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestPlaybooksTestCallsNothing: playbooks test plans a playbook whose
// steps would call AWS and a web hook, and makes no network call.
func TestPlaybooksTestCallsNothing(t *testing.T) {
	needFixtures(t)
	orig := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("a network call to %s", r.URL)
		return nil, errors.New("no network in playbooks test")
	})
	defer func() { http.DefaultTransport = orig }()
	dir := t.TempDir()
	pb := `name: contain
mode: auto
trigger: {rules: [1bc4d2e3-23a1-40b8-9e99-6406cc022632]}
steps:
  - name: ticket
    action: http
    with: {url: "http://127.0.0.1:1/ticket", body: "{}"}
  - name: lock
    action: aws.iam.deny_all
    mode: auto
    with: {principal: "user/{{ .Event.Raw.requestParameters.userName }}"}
`
	if err := os.WriteFile(filepath.Join(dir, "p.yml"), []byte(pb), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustVigil(t, "playbooks", "test", "--event", filepath.Join(stratus, "aws.persistence.iam-backdoor-user.json"), filepath.Join(dir, "p.yml"))
	if !strings.Contains(out, "principal: user/stratus-red-team-backdoor-u-user") {
		t.Errorf("playbooks test:\n%s", out)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
