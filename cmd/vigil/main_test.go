package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const stratus = "../../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs"

// vigil runs the command in-process and returns its exit status and output.
func vigil(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustVigil(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := vigil(t, args...)
	if code != 0 {
		t.Fatalf("vigil %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func ndjson(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("ndjson line is not a JSON object: %v\n%s", err, sc.Text())
		}
		rows = append(rows, m)
	}
	return rows
}

// The acceptance case: StopLogging over the Stratus logs, and
// stats totals that account for every imported event.
func TestImportAndSearchStratus(t *testing.T) {
	data := t.TempDir()
	out := mustVigil(t, "import", "--data", data, stratus)
	if !strings.Contains(out, "imported 310 events, 0 quarantined, 35 files") {
		t.Fatalf("import summary = %q", out)
	}

	rows := ndjson(t, mustVigil(t, "search", "--data", data, "eventName:StopLogging", "--format", "ndjson"))
	if len(rows) != 1 {
		t.Fatalf("StopLogging: %d rows, want 1", len(rows))
	}
	for _, r := range rows {
		var doc map[string]any
		if err := json.Unmarshal([]byte(r["raw"].(string)), &doc); err != nil || doc["eventName"] != "StopLogging" {
			t.Errorf("row is not a StopLogging event: %v", r)
		}
	}

	rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "* | stats count() by action"))
	total := 0.0
	for _, r := range rows {
		total += r["count"].(float64)
	}
	if total != 310 {
		t.Errorf("stats count() by action totals %v, want 310", total)
	}
}

func TestImportExitStatus(t *testing.T) {
	data := t.TempDir()
	notLogs := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(notLogs, []byte("# not a log\n"), 0o644)
	if code, _, errOut := vigil(t, "import", "--data", data, notLogs); code == 0 || !strings.Contains(errOut, "not recognized") {
		t.Errorf("importing only an unrecognized file: exit %d, stderr %q; want non-zero and a reason", code, errOut)
	}
	if code, _, _ := vigil(t, "import", "--data", data, "/nonexistent/path"); code == 0 {
		t.Error("importing a missing path exited 0")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`+"\n{broken\n"), 0o644)
	code, out, _ := vigil(t, "import", "--data", data, bad)
	if code != 0 || !strings.Contains(out, "imported 1 events, 1 quarantined") {
		t.Errorf("file with one bad line: exit %d, %q", code, out)
	}
	rows := ndjson(t, mustVigil(t, "search", "--data", data, "--quarantine", "--format", "ndjson", "*"))
	if len(rows) != 1 || rows[0]["line"].(float64) != 2 || !strings.Contains(rows[0]["reason"].(string), "invalid JSON") {
		t.Errorf("quarantine = %v", rows)
	}
	if code, _, errOut := vigil(t, "search", "--data", data, "eventName:(StopLogging"); code == 0 || !strings.Contains(errOut, "column") {
		t.Errorf("bad query: exit %d, stderr %q", code, errOut)
	}
}

// While serve holds the database, search must go through it rather than
// fail on DuckDB's lock; and the API must refuse requests without the
// token.
func TestSearchWhileServing(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	var serveOut, serveErr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--demo"}, &serveOut, &serveErr)
	}()
	var addr string
	for i := 0; i < 600 && addr == ""; i++ {
		if b, err := os.ReadFile(filepath.Join(data, addrFile)); err == nil {
			addr = strings.TrimSpace(string(b))
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if addr == "" {
		t.Fatalf("server did not start: %s", serveErr.String())
	}

	rows := ndjson(t, mustVigil(t, "search", "--data", data, "eventName:StopLogging", "--format", "ndjson"))
	if len(rows) != 1 || rows[0]["action"] != "StopLogging" {
		t.Errorf("search through the server: %v", rows)
	}
	// The demo is enriched with its sample watch list and ranges.
	for q, want := range map[string]string{
		"intel:demo-watchlist": "84", // 45 + 34 + 5 events from the three addresses
		`intel_indicator:"18.236.253.47" src_cloud:"aws/EC2/us-west-2"`: "45",
	} {
		rows := ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", q+" | stats count()"))
		if len(rows) != 1 || fmt.Sprint(rows[0]["count"]) != want {
			t.Errorf("demo %s: %v, want %s events", q, rows, want)
		}
	}

	for _, path := range []string{"/api/v1/search?q=*", "/metrics", "/api/v1/ingest"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %s, want 401", path, resp.Status)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %v %v", resp, err)
	}

	// Ingest through the API, then find it.
	tok, _ := os.ReadFile(filepath.Join(data, tokenFile))
	body := `{"eventTime":"2026-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","recipientAccountId":"111122223333"}` + "\nnot json\n"
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/ingest?format=aws.cloudtrail", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ir struct{ Accepted, Quarantined int }
	json.NewDecoder(resp.Body).Decode(&ir)
	resp.Body.Close()
	if resp.StatusCode != 200 || ir.Accepted != 1 || ir.Quarantined != 1 {
		t.Errorf("ingest: %s %+v", resp.Status, ir)
	}
	// Acknowledged means in the ledger; the store follows within about
	// a second (ingest.IntakeOptions.StoreDelay).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "action:CreateAccessKey account:111122223333"))
		if len(rows) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingested event: %d rows 10s after it was acknowledged", len(rows))
		}
	}
	srcs := mustVigil(t, "sources", "--data", data)
	if !regexp.MustCompile(`(?m)^http/admin +1 +[0-9.]+ +2026-01-01T00:00:00Z .* 1$`).MatchString(srcs) {
		t.Errorf("vigil sources:\n%s", srcs)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, serveErr.String())
	}
	if _, err := os.Stat(filepath.Join(data, addrFile)); !os.IsNotExist(err) {
		t.Errorf("serve left %s behind", addrFile)
	}
	// Now the store is free: search opens it directly.
	rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "NOT source:vigil.playbook | stats count()"))
	if fmt.Sprint(rows[0]["count"]) != "311" {
		t.Errorf("after serve: count = %v, want 311 (310 demo events + 1 ingested)", rows[0]["count"])
	}
	// Beside them, the records of the example playbooks the demo
	// rehearsed on its alerts.
	rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "source:vigil.playbook action:run.done | stats count()"))
	if n, _ := strconv.Atoi(fmt.Sprint(rows[0]["count"])); n == 0 {
		t.Error("after serve: no playbook run was recorded in the ledger")
	}
}

// The config maps accounts to environments, names the default tenant and
// the generic JSON time field; searches see the result.
func TestConfig(t *testing.T) {
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, configFile), []byte(`
tenant: team-a
environments:
  "143434273843": prod
json_time_field: meta.when
`), 0o644)
	logs := filepath.Join(t.TempDir(), "app.json")
	os.WriteFile(logs, []byte(`{"meta":{"when":"2025-03-04T05:06:07Z"},"msg":"hello"}`+"\n"), 0o644)
	mustVigil(t, "import", "--data", data, stratus+"/aws.defense-evasion.cloudtrail-stop.json", logs)

	rows := ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "environment:prod | stats count() by tenant"))
	if len(rows) != 1 || rows[0]["tenant"] != "team-a" {
		t.Errorf("prod events by tenant: %v", rows)
	}
	rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "source:json"))
	if len(rows) != 1 || rows[0]["time"] != "2025-03-04T05:06:07Z" {
		t.Errorf("json event time: %v", rows)
	}
	if n := len(ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", "--tenant", "other", "*"))); n != 0 {
		t.Errorf("--tenant other sees %d events", n)
	}

	os.WriteFile(filepath.Join(data, configFile), []byte("tenant: [\n"), 0o644)
	if code, _, errOut := vigil(t, "import", "--data", data, logs); code == 0 || !strings.Contains(errOut, "config") {
		t.Errorf("broken config: exit %d, %q", code, errOut)
	}
	os.WriteFile(filepath.Join(data, configFile), []byte("tenatn: x\n"), 0o644)
	if code, _, errOut := vigil(t, "import", "--data", data, logs); code == 0 || !strings.Contains(errOut, "tenatn") {
		t.Errorf("misspelled config key: exit %d, %q", code, errOut)
	}
}
