package main

import (
	"bytes"
	"context"
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
