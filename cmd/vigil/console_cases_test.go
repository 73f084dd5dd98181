package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// TestConsoleBrowserApprove: a responder of team-a logs in through the
// login page, opens the alert whose playbook waits for approval (the
// Stratus backdoor key, as in TestServePlaybooks, with a local stand-in
// for IAM), approves the step, and sees the run done; IAM was called
// once, and the step names them as its approver.
func TestConsoleBrowserApprove(t *testing.T) {
	needFixtures(t)
	iam, _ := localIAM(t)
	// The playbook's first step tells the on-call, here a local hook.
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()

	data := t.TempDir()
	books := filepath.Join(data, "playbooks")
	if err := os.MkdirAll(books, 0o700); err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile("../../playbook/testdata/deactivate-backdoor-key.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(books, "backdoor.yml"), pb, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`notify:
  channels:
    - {name: oncall, type: webhook, url: %q, secret: "hook secret"}
playbooks:
  dir: %s
  aws:
    region: us-east-1
    endpoints: {iam: %q}
`, hook.URL+"/oncall", books, iam.URL)
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, data)
	site := consoleSite(srv)
	mustAPI := func(method, path string, body any) map[string]any {
		t.Helper()
		code, out := srv.apiAs(srv.token, method, path, body)
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		var v map[string]any
		json.Unmarshal(out, &v)
		return v
	}
	rita := mustAPI("POST", "/api/v1/access/principals", map[string]any{"name": "rita", "password": "correct horse battery"})["id"].(string)
	mustAPI("POST", "/api/v1/access/bindings", map[string]any{"subject": "principal:" + rita, "tenant": "team-a", "role": "responder"})

	trail, err := os.ReadFile(filepath.Join(stratus, "aws.persistence.iam-backdoor-user.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant=team-a", trail)
	type runJSON struct {
		ID, Status, Tenant string
		AlertID            string `json:"alert_id"`
		Steps              []struct{ Name, Status, Approver string }
	}
	var run runJSON
	srv.wait("a run waiting for approval", func() bool {
		var rs []runJSON
		json.Unmarshal(srv.call("GET", "/api/v1/playbook-runs?status=waiting", nil), &rs)
		if len(rs) == 1 {
			run = rs[0]
		}
		return len(rs) == 1
	})
	if run.Tenant != "team-a" || run.AlertID == "" {
		t.Fatalf("the run: %+v", run)
	}

	ctx := browsertest.New(t)
	consoleLogin(t, ctx, site, "/alerts/"+run.AlertID, "rita", "correct horse battery")
	browsertest.Until(t, ctx, `document.querySelector("#run-`+run.ID+` [data-approve]") !== null`, 20*time.Second)
	text := pageText(t, ctx, "#run-"+run.ID)
	for _, want := range []string{"Deactivate a key created for another user", "waiting", "deactivate", "aws.iam.deactivate_access_key", "AKIAL80DWDVKKM0UXEER"} {
		if !strings.Contains(text, want) {
			t.Errorf("the run on the alert page lacks %q:\n%s", want, text)
		}
	}
	if len(iam.TakeCalls()) != 0 {
		t.Fatal("IAM was called before approval")
	}
	browsertest.Screenshot(t, ctx, "approve-waiting")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#run-`+run.ID+` [data-approve]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.search.includes("decision=approved") && document.readyState === "complete"`, 20*time.Second)
	// The runner carries on after the answer: the page shows it done
	// once it is.
	srv.wait("the run done", func() bool {
		var r runJSON
		json.Unmarshal(srv.call("GET", "/api/v1/playbook-runs/"+run.ID, nil), &r)
		run.Steps = r.Steps
		return r.Status == "done"
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/alerts/"+run.AlertID+"#run-"+run.ID)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("#run-`+run.ID+` .run-status").innerText === "done"`, 20*time.Second)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-approve]").length`)); err != nil || n != 0 {
		t.Errorf("%d approve buttons left (%v)", n, err)
	}
	browsertest.Screenshot(t, ctx, "approve")
	if calls := iam.TakeCalls(); len(calls) != 1 || calls[0].Get("Action") != "UpdateAccessKey" || calls[0].Get("AccessKeyId") != "AKIAL80DWDVKKM0UXEER" {
		t.Errorf("IAM calls %v", calls)
	}
	if s := run.Steps[1]; s.Approver != "rita" || s.Status != "done" {
		t.Errorf("the approved step %+v", s)
	}
}

// TestConsoleBrowserCase: an analyst opens a case from an alert's page,
// writes a note in it, and reads both in its timeline.
func TestConsoleBrowserCase(t *testing.T) {
	w := newAccessWorld(t)
	srv, site := w.srv, consoleSite(w.srv)
	var alertID string
	srv.wait("team-a's alert", func() bool {
		_, out := srv.apiAs(w.alice, "GET", "/api/v1/alerts", nil)
		var as []struct{ ID, Tenant string }
		json.Unmarshal(out, &as)
		for _, a := range as {
			if a.Tenant == "team-a" {
				alertID = a.ID
			}
		}
		return alertID != ""
	})

	ctx := browsertest.New(t)
	consoleLogin(t, ctx, site, "/alerts/"+alertID, "alice", "correct horse battery")
	// The title is the alert's until changed; alice names the incident.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#case-title`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#case-title").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#case-title`), "Trail stopped in team-a"), chromedp.Submit(chromedp.CSS(`#case-title`)))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname.startsWith("/cases/") && document.querySelector("#note-text") !== null`, 20*time.Second)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	u, _ := url.Parse(loc)
	caseID := strings.TrimPrefix(u.Path, "/cases/")

	note := "Checked with the owner: <b>not</b> them."
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#note-text`), note), chromedp.Submit(chromedp.CSS(`#note-text`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `[...document.querySelectorAll("ol.timeline .entry-note .text")].some(e => e.innerText.includes("not</b> them"))`, 20*time.Second)
	text := pageText(t, ctx, "ol.timeline")
	for _, want := range []string{"opened the case", "added an alert", "wrote a note", note, "alice"} {
		if !strings.Contains(text, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, text)
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("ol.timeline a[href^='/alerts/'], ol.timeline a[href^='/events/']").length`)); err != nil || n < 2 {
		t.Errorf("the timeline links %d alerts and events (%v)", n, err)
	}
	browsertest.Screenshot(t, ctx, "case")

	_, out := srv.apiAs(w.alice, "GET", "/api/v1/cases/"+caseID, nil)
	var c struct {
		Title, Owner string
		Timeline     []struct{ Kind, Actor, Text string }
	}
	json.Unmarshal(out, &c)
	if c.Title != "Trail stopped in team-a" || c.Owner != "alice" || len(c.Timeline) != 3 || c.Timeline[2].Text != note {
		t.Errorf("the case: %s", out)
	}
}
