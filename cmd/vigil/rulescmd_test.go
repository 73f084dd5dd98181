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
