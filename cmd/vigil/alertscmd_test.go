package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/meta/metatest"
)

// TestAlertsCommands: an import's detections become alerts, grouped by
// rule and actor, which the alerts commands list, acknowledge and close
// (closing needs a reason), each change shown with who made it.
func TestAlertsCommands(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	// Two detonations of the same technique by the same actor would be
	// one alert; these are two techniques.
	mustVigil(t, "import", "--data", data, filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"), filepath.Join(stratus, "aws.defense-evasion.cloudtrail-delete.json"))
	out := mustVigil(t, "alerts", "list", "--data", data)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.Contains(out, "CloudTrail Logging Stopped, Deleted or Weakened") || !strings.Contains(out, "open") {
		t.Fatalf("alerts list:\n%s", out)
	}
	id := strings.Fields(lines[1])[0]
	mustVigil(t, "alerts", "ack", "--data", data, "--by", "ann", id)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"alerts", "close", "--data", data, id}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "needs a reason") {
		t.Errorf("close without a reason: exit %d, %s", code, stderr.String())
	}
	mustVigil(t, "alerts", "close", "--data", data, "--by", "ann", "--reason", "the red team", id)
	out = mustVigil(t, "alerts", "show", "--data", data, id)
	for _, want := range []string{"status:     closed: the red team", "open → acknowledged by ann", "acknowledged → closed by ann: the red team"} {
		if !strings.Contains(out, want) {
			t.Errorf("alerts show lacks %q:\n%s", want, out)
		}
	}
	if out := mustVigil(t, "alerts", "list", "--data", data, "--status", "closed"); !strings.Contains(out, id) {
		t.Errorf("closed alerts:\n%s", out)
	}
	if code := run(context.Background(), []string{"alerts", "list", "--data", data, "--status", "asleep"}, &stdout, &stderr); code != 1 {
		t.Errorf("a bad status: exit %d", code)
	}
}

// TestCasesCommands: a case opened of an alert, worked and closed, shows
// its timeline with who did what.
func TestCasesCommands(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	mustVigil(t, "import", "--data", data, filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	id := strings.Fields(strings.Split(mustVigil(t, "alerts", "list", "--data", data), "\n")[1])[0]
	out := mustVigil(t, "cases", "open", "--data", data, "--by", "ann", "--title", "Trail stopped", id)
	if !strings.Contains(out, `"Trail stopped", owner ann`) {
		t.Fatalf("cases open: %s", out)
	}
	cid := strings.Fields(strings.Split(mustVigil(t, "cases", "list", "--data", data), "\n")[1])[0]
	mustVigil(t, "cases", "add", "--data", data, "--by", "ann", "--action", "restarted the trail", cid)
	mustVigil(t, "cases", "set", "--data", data, "--by", "ann", "--status", "closed", "--owner", "bob", cid)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"cases", "set", "--data", data, "--status", "investigating", cid}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "cannot become investigating") {
		t.Errorf("investigating a closed case: exit %d, %s", code, stderr.String())
	}
	out = mustVigil(t, "cases", "show", "--data", data, cid)
	for _, want := range []string{"status: closed", "owner:  bob", "opened by ann: Trail stopped", "alert " + id + " by ann", "action by ann: restarted the trail", "status closed by ann: open → closed", "owner bob by ann: ann → bob"} {
		if !strings.Contains(out, want) {
			t.Errorf("cases show lacks %q:\n%s", want, out)
		}
	}
	if out := mustVigil(t, "cases", "list", "--data", data); !strings.Contains(out, "no cases") {
		t.Errorf("open cases after closing:\n%s", out)
	}
}

// TestMetaOnPostgres: with meta.url naming a PostgreSQL database, an
// import's alerts go there, where the alerts commands find them, and the
// data directory holds no SQLite file.
func TestMetaOnPostgres(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	t.Setenv("VIGIL_TEST_META_URL", metatest.Postgres(t))
	if err := os.WriteFile(filepath.Join(data, configFile), []byte("meta:\n  url: env:VIGIL_TEST_META_URL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVigil(t, "import", "--data", data, filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	out := mustVigil(t, "alerts", "list", "--data", data)
	if !strings.Contains(out, "CloudTrail Logging Stopped") {
		t.Fatalf("alerts list:\n%s", out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	mustVigil(t, "alerts", "ack", "--data", data, "--by", "ann", id)
	if out := mustVigil(t, "alerts", "show", "--data", data, id); !strings.Contains(out, "open → acknowledged by ann") {
		t.Errorf("alerts show:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, metaFile)); err == nil {
		t.Error("an SQLite metadata file was made beside the PostgreSQL database")
	}
}
