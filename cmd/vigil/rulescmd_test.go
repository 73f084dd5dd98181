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
