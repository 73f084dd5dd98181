package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportBundle exports evidence and checks it the way a recipient
// would: with the server's public key only, and failing on any change.
func TestExportBundle(t *testing.T) {
	data := t.TempDir()
	mustVigil(t, "import", "--data", data, stratus)
	key := strings.TrimSpace(mustVigil(t, "key", "--data", data))
	bundle := filepath.Join(t.TempDir(), "case-42.zip")
	out := mustVigil(t, "export", "--data", data, "--from", "2020-01-01", "--query", "eventSource:iam.amazonaws.com", "--reason", "case 42", "--out", bundle)
	if !strings.Contains(out, "wrote "+bundle) {
		t.Fatalf("export: %s", out)
	}
	want := strings.TrimSpace(mustVigil(t, "search", "--data", data, "--from", "2020-01-01", "eventSource:iam.amazonaws.com | stats count()"))
	out = mustVigil(t, "verify-bundle", "--key", key, bundle)
	if !strings.Contains(out, "verified: ") || !strings.Contains(out, `reason "case 42"`) || !strings.Contains(out, "with the given key") {
		t.Errorf("verify-bundle: %s", out)
	}
	if n := strings.Fields(want); !strings.Contains(out, "verified: "+n[len(n)-1]+" events") {
		t.Errorf("verify-bundle counts other events than the search (%s): %s", want, out)
	}

	// Another key, a changed byte: not verified.
	other := strings.TrimSpace(mustVigil(t, "key", "--data", t.TempDir()))
	if code, out, _ := vigil(t, "verify-bundle", "--key", other, bundle); code != 1 || !strings.Contains(out, "NOT VERIFIED") {
		t.Errorf("verify-bundle with another key: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, len(b) / 3, len(b) / 2, len(b) - 1} {
		changed := append([]byte(nil), b...)
		changed[at] ^= 0x20
		path := filepath.Join(t.TempDir(), "changed.zip")
		if err := os.WriteFile(path, changed, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := vigil(t, "verify-bundle", "--key", key, path); code != 1 {
			t.Errorf("byte %d changed: exit %d\n%s", at, code, out)
		}
	}

	// A trusted-checkpoint file that holds none is an error, not a
	// check that checks nothing.
	empty := filepath.Join(t.TempDir(), "witness")
	if err := os.WriteFile(empty, []byte("not a note\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := vigil(t, "verify-bundle", "--key", key, "--from-checkpoint", empty, bundle); code != 1 || !strings.Contains(errOut, "holds no checkpoint") {
		t.Errorf("verify-bundle with an empty witness file: exit %d: %s", code, errOut)
	}

	// Nothing to export is an error, and writes nothing.
	none := filepath.Join(t.TempDir(), "none.zip")
	if code, _, errOut := vigil(t, "export", "--data", data, "--from", "2020-01-01", "--query", "nosuchwordanywhere", "--out", none); code != 1 || !strings.Contains(errOut, "no event matches") {
		t.Errorf("empty export: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(none); err == nil {
		t.Error("an empty export wrote a file")
	}
}
