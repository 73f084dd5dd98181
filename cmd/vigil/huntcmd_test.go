package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sigmaAWS = "../../../shared/testdata/sigmahq-cloud-rules/rules/cloud/aws/cloudtrail"

// TestHunt runs rules over the imported Stratus detonation logs: the
// built-in pack by default, a SigmaHQ rule file when one is named, and
// refuses a rule that does not load.
func TestHunt(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	mustVigil(t, "import", "--data", data, stratus)

	out := mustVigil(t, "hunt", "--data", data, "--format", "ndjson")
	hits := ndjson(t, out)
	var stop map[string]any
	for _, h := range hits {
		for _, k := range []string{"rule_id", "title", "level", "seq", "time", "action", "event_id"} {
			if _, ok := h[k]; !ok {
				t.Fatalf("hit without %s: %v", k, h)
			}
		}
		if h["action"] == "StopLogging" {
			stop = h
		}
	}
	if stop == nil || stop["event_id"] != "10163ed2-2253-469d-a5ee-cbc6651f8934" {
		t.Fatalf("the built-in pack did not find the StopLogging event: %v", stop)
	}

	// A named rule file runs alone, for backtesting.
	rule := filepath.Join(sigmaAWS, "aws_cloudtrail_disable_logging.yml")
	hits = ndjson(t, mustVigil(t, "hunt", "--data", data, "--format", "ndjson", rule))
	if len(hits) != 2 || hits[0]["action"] != "DeleteTrail" || hits[1]["action"] != "StopLogging" {
		t.Errorf("hunt with %s: %v", rule, hits)
	}
	// The time range bounds it.
	hits = ndjson(t, mustVigil(t, "hunt", "--data", data, "--format", "ndjson", "--from", "2024-07-31T13:00:00Z", rule))
	if len(hits) != 1 || hits[0]["action"] != "StopLogging" {
		t.Errorf("hunt from 13:00: %v", hits)
	}
	// The table has a header and a line per hit.
	if out := mustVigil(t, "hunt", "--data", data, rule); len(strings.Split(strings.TrimSpace(out), "\n")) != 3 || !strings.HasPrefix(out, "RULE_ID") {
		t.Errorf("table:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("title: x\nlogsource: {product: aws}\ndetection:\n  s: {eventName|nope: x}\n  condition: s\n"), 0o600)
	code, _, errOut := vigil(t, "hunt", "--data", data, bad)
	if code != 1 || !strings.Contains(errOut, bad+`:4: rule "x": eventName|nope: unknown modifier "nope"`) {
		t.Errorf("hunt with a bad rule: exit %d\n%s", code, errOut)
	}
}

// TestServeDetects: vigil serve runs the built-in pack and the --rules
// directory on what it ingests, lists the detections in its API, runs
// hunts for vigil hunt, and picks up a rule added while it runs.
func TestServeDetects(t *testing.T) {
	needFixtures(t)
	data, rules := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	var serveOut, serveErr syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--rules", rules}, &serveOut, &serveErr)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if err := waitFile(filepath.Join(data, addrFile)); err != nil {
		t.Fatal(err)
	}
	base, token := (&dataFlags{dir: data}).server(ctx)
	if base == "" {
		t.Fatalf("no server: %s", serveErr.String())
	}
	detections := func(rule string) []map[string]any {
		req, _ := http.NewRequest("GET", base+"/api/v1/detections?since=2000-01-01T00:00:00Z&limit=1000&rule="+rule, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ds []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	post := func(file string) {
		body, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		req, _ := http.NewRequest("POST", base+"/api/v1/ingest?format=aws.cloudtrail", body)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ingest %s: %s", file, resp.Status)
		}
	}
	waitDetections := func(rule string) []map[string]any {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if ds := detections(rule); len(ds) > 0 {
				return ds
			}
			if time.Now().After(deadline) {
				t.Fatalf("no detection of %s; server log:\n%s", rule, serveErr.String())
			}
		}
	}
	post(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	ds := waitDetections("")
	if len(ds) == 0 || ds[0]["event_id"] != "10163ed2-2253-469d-a5ee-cbc6651f8934" || ds[0]["seq"] != 0.0 || ds[0]["level"] != "high" {
		t.Errorf("detections of the built-in pack: %v", ds)
	}

	// A rule dropped into the --rules directory is loaded within the
	// poll, and runs on what comes next.
	src, err := os.ReadFile(filepath.Join(sigmaAWS, "aws_cloudtrail_disable_logging.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "disable_logging.yml"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(serveErr.String(), "reloaded detection rules"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rules not reloaded; server log:\n%s", serveErr.String())
		}
	}
	post(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-delete.json"))
	ds = waitDetections("4db60cc0-36fb-42b7-9b58-a5b53019fb74")
	if len(ds) != 1 || ds[0]["event_id"] != "ee73c230-44bc-4492-8542-cfb189eae287" {
		t.Errorf("detections of the reloaded rule: %v", ds)
	}

	// vigil hunt asks the running server.
	// Detection does not wait for the store, which takes events within
	// a second: hunt until both are there.
	var hits []map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		hits = ndjson(t, mustVigil(t, "hunt", "--data", data, "--format", "ndjson", filepath.Join(rules, "disable_logging.yml")))
		if len(hits) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(hits) != 2 {
		t.Errorf("hunt through the server: %v", hits)
	}
	fmt.Fprint(io.Discard, serveOut.String())
}

// TestImportDetects: a local import runs the rules and records what they
// find; --detect=false does not.
func TestImportDetects(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	out := mustVigil(t, "import", "--data", data, filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if !strings.Contains(out, "1 detection, recorded") {
		t.Errorf("import output:\n%s", out)
	}
	out = mustVigil(t, "import", "--data", t.TempDir(), "--detect=false", filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if strings.Contains(out, "detection") {
		t.Errorf("import --detect=false output:\n%s", out)
	}
}
