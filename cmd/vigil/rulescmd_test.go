package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesLint(t *testing.T) {
	dir := t.TempDir()
	good := "title: Trail stopped\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: StopLogging}\n  condition: s\nlevel: high\n"
	if err := os.WriteFile(filepath.Join(dir, "good.yml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := vigil(t, "rules", "lint", dir)
	if code != 0 || !strings.Contains(out, "1 rules loaded, 0 refused") {
		t.Fatalf("lint of a good rule: exit %d\n%s", code, out)
	}
	bad := strings.Replace(good, "eventName:", "eventName|sounds_like:", 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = vigil(t, "rules", "lint", dir)
	want := filepath.Join(dir, "bad.yml") + `:5: rule 11111111-1111-4111-8111-111111111111: eventName|sounds_like: unknown modifier "sounds_like"`
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("lint of a bad rule: exit %d, want 1 and %q\n%s", code, want, out)
	}
}

func TestRulesTest(t *testing.T) {
	needFixtures(t)
	dir := t.TempDir()
	rule := "title: Trail stopped\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}\n  condition: s\nlevel: high\n"
	if err := os.WriteFile(filepath.Join(dir, "stop.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	tests := `tests:
  - name: StopLogging is detected
    format: aws.cloudtrail
    events:
      - {eventVersion: "1.08", eventSource: cloudtrail.amazonaws.com, eventName: StopLogging, eventTime: "2024-07-31T13:06:24Z", awsRegion: us-east-1, sourceIPAddress: 203.0.113.9, userIdentity: {type: IAMUser, userName: mallory}, eventID: e1}
    expect: match
  - name: StartLogging is not
    events:
      - {eventVersion: "1.08", eventSource: cloudtrail.amazonaws.com, eventName: StartLogging, eventTime: "2024-07-31T13:06:24Z", awsRegion: us-east-1, sourceIPAddress: 203.0.113.9, userIdentity: {type: IAMUser, userName: mallory}, eventID: e2}
    expect: no match
  - name: the detonation log
    file: ` + abs + `
    matches: 1
`
	if err := os.WriteFile(filepath.Join(dir, "stop.tests.yml"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := vigil(t, "rules", "test", dir)
	if code != 0 || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("rules test: exit %d\n%s%s", code, out, errOut)
	}
	// A test that does not hold fails the run, saying what happened.
	bad := strings.Replace(tests, "matches: 1", "matches: 2", 1)
	os.WriteFile(filepath.Join(dir, "stop.tests.yml"), []byte(bad), 0o644)
	code, out, _ = vigil(t, "rules", "test", dir)
	if code != 1 || !strings.Contains(out, "the detonation log: 1 detections of 11111111-1111-4111-8111-111111111111 from 1 events, want 2 detections") {
		t.Fatalf("rules test of a failing test: exit %d\n%s", code, out)
	}
}

// TestRulesRemote: the rules commands that work through a server list
// its rules with their hits, backtest a file over a range of its events
// in the caller's tenants, and turn rules off and on for those who may.
func TestRulesRemote(t *testing.T) {
	noRemote(t)
	w := newAccessWorld(t)
	const stopTrail = "6b1d3f7c-2a44-4f6e-9b1a-0c5d8e7f9a21"
	dir := t.TempDir()
	rule := "title: Trail stopped\nid: " + stopTrail + "\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}\n  condition: s\nlevel: high\n"
	file := filepath.Join(dir, "stop.yml")
	if err := os.WriteFile(file, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustVigil(t, "rules", "list", "--data", w.data)
	if !strings.Contains(out, "CloudTrail Logging Stopped, Deleted or Weakened") || !strings.Contains(out, "HITS(30D)") {
		t.Errorf("rules list:\n%s", out)
	}
	// team-a stopped its trail; team-b did not.
	as := func(token string, args ...string) (int, string, string) {
		t.Setenv(serverEnv, w.srv.base)
		t.Setenv(tokenEnv, token)
		defer t.Setenv(tokenEnv, "")
		return vigil(t, args...)
	}
	code, out, errOut := as(w.alice, "rules", "backtest", "--from", "2024-07-30", "--to", "2024-08-02", file)
	if code != 0 || !strings.Contains(out, "1 hits from 2024-07-30T00:00:00Z") || !strings.Contains(out, "team-a\t"+stopTrail+"\tStopLogging") {
		t.Errorf("alice's backtest: exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte(strings.Replace(rule, "eventName:", "eventName|sounds_like:", 1)), 0o644)
	if code, _, errOut := as(w.alice, "rules", "backtest", bad); code != 1 || !strings.Contains(errOut, bad+`:5: error: eventName|sounds_like: unknown modifier "sounds_like"`) {
		t.Errorf("a backtest of a bad file: exit %d\n%s", code, errOut)
	}
	const builtin = "f6dd0262-074b-4b46-95a3-46a50af84de2"
	if code, _, errOut := as(w.alice, "rules", "off", "--reason", "noisy", builtin); code == 0 || !strings.Contains(errOut, "every tenant") {
		t.Errorf("alice turns a rule off: exit %d %s", code, errOut)
	}
	if code, _, errOut := vigil(t, "rules", "off", "--data", w.data, builtin); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Errorf("off without a reason: exit %d %s", code, errOut)
	}
	if out := mustVigil(t, "rules", "off", "--data", w.data, "--reason", "we rebuilt the trail alerts", builtin); !strings.Contains(out, "turned rule "+builtin+" off") {
		t.Errorf("off: %s", out)
	}
	if out := mustVigil(t, "rules", "list", "--data", w.data, "--json"); !strings.Contains(out, `"reason": "we rebuilt the trail alerts"`) {
		t.Errorf("the list after off:\n%s", out)
	}
	mustVigil(t, "rules", "on", "--data", w.data, builtin)
	if out := mustVigil(t, "rules", "list", "--data", w.data, "--json"); strings.Contains(out, `"off"`) {
		t.Errorf("the list after on:\n%s", out)
	}
}
