package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// consoleSite is where the browser opens a served vigil: at localhost,
// where the Secure session cookie is kept over plain HTTP.
func consoleSite(srv *served) string {
	return strings.Replace(srv.base, "127.0.0.1", "localhost", 1)
}

// consoleLogin logs in through the login page a first page sends the
// browser to, and waits until it is back on that page.
func consoleLogin(t *testing.T, ctx context.Context, site, path, name, password string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Navigate(site+path), chromedp.WaitVisible(chromedp.CSS(`#password`)))
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loc, site+"/login?return=") {
		t.Errorf("%s without a session went to %s, not the login page", path, loc)
	}
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#name`), name), chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)))
	if err != nil {
		t.Fatalf("logging in: %v", err)
	}
	browsertest.Until(t, ctx, `location.pathname !== "/login" && document.readyState === "complete"`, 20*time.Second)
}

// search types a query into the search box, as a user does, and
// submits it.
func search(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#q").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#q`), text), chromedp.Submit(chromedp.CSS(`#q`))); err != nil {
		t.Fatal(err)
	}
}

// pageText returns the text of the element sel selects, trying again
// while the browser still settles a navigation (its node ids change).
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var last error
	for range 20 {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil {
			return text
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("reading %s: %v", sel, last)
	return ""
}

// TestConsoleBrowser walks through the console in a real browser: log
// in with a password, search the Stratus CloudTrail of two teams and see
// one's rows and histogram, open an event and its ledger proof, and
// acknowledge an alert.
func TestConsoleBrowser(t *testing.T) {
	w := newAccessWorld(t)
	ctx := browsertest.New(t)
	srv, site := w.srv, consoleSite(w.srv)

	// team-a's trail stop raised an alert; wait for it before the pages.
	var alertID string
	srv.wait("team-a's alert", func() bool {
		_, out := srv.apiAs(w.alice, "GET", "/api/v1/alerts", nil)
		var as []map[string]any
		json.Unmarshal(out, &as)
		for _, a := range as {
			if a["tenant"] == "team-a" && a["status"] == "open" {
				alertID, _ = a["id"].(string)
			}
		}
		return alertID != ""
	})

	consoleLogin(t, ctx, site, "/?from=2024-07-30&to=2024-08-02", "alice", "correct horse battery")
	browsertest.Until(t, ctx, `document.querySelectorAll("table[data-rows] tbody tr").length > 0`, 20*time.Second)
	body := pageText(t, ctx, "main")
	// alice, an analyst of team-a, sees team-a's trail stop and nothing
	// of team-b's.
	for _, want := range []string{"StopLogging", "team-a", "aws.cloudtrail", "Top values"} {
		if !strings.Contains(body, want) {
			t.Errorf("the search page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "team-b") || strings.Contains(body, "GetPasswordData") {
		t.Errorf("the search page shows team-b's events:\n%s", body)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.histogram svg .chart-bar").length`))
	if err != nil || bars == 0 {
		t.Errorf("the histogram has %d bars (%v)", bars, err)
	}
	header := pageText(t, ctx, "header")
	if !strings.Contains(header, "alice") || !strings.Contains(header, "analyst@team-a") {
		t.Errorf("the header says %q", header)
	}
	browsertest.Screenshot(t, ctx, "search")

	// A bar of the histogram zooms into its hour.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`figure.histogram svg a`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.search.includes("from=2024-07-31T13%3A00%3A00Z") && location.search.includes("to=2024-07-31T14%3A00%3A00Z")`+
		` && document.querySelectorAll("table[data-rows] tbody tr").length === 1`, 20*time.Second)

	// A query: the search box, as a user types it.
	search(t, ctx, `eventName:StopLogging`)
	browsertest.Until(t, ctx, `location.search.includes("q=eventName") && document.querySelectorAll("table[data-rows] tbody tr").length === 1`, 20*time.Second)

	// A mistake is pointed at under the box.
	search(t, ctx, `src_ip:10.0.0.0/33`)
	browsertest.Until(t, ctx, `document.querySelector("#qerr") !== null && document.querySelector("#qerr").innerText.includes("Column 8")`, 20*time.Second)
	browsertest.Screenshot(t, ctx, "search-error")

	// The event, with its proof: j selects the first row, Enter opens it.
	err = chromedp.Do(ctx, chromedp.Navigate(site+"/?q=eventName:StopLogging&from=2024-07-30&to=2024-08-02"),
		chromedp.WaitVisible(chromedp.CSS(`[data-row-link]`)))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx, chromedp.KeyEvent("j"))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.activeElement && document.activeElement.hasAttribute("data-row-link")`, 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname.startsWith("/events/") && document.body.innerText.includes("Ledger inclusion proof") && document.readyState === "complete"`, 20*time.Second)
	body = pageText(t, ctx, "main")
	for _, want := range []string{"Tree size", "Root hash", "Signed checkpoint", `"eventName": "StopLogging"`, "stratus-red-team-ct-stop-trail"} {
		if !strings.Contains(body, want) {
			t.Errorf("the event page lacks %q:\n%s", want, body)
		}
	}
	browsertest.Screenshot(t, ctx, "event")

	// The alert: acknowledged from its page.
	err = chromedp.Do(ctx, chromedp.Navigate(site+"/alerts"), chromedp.WaitVisible(chromedp.CSS(`a[href="/alerts/`+alertID+`"]`)))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, ctx, "alerts")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/alerts/`+alertID+`"]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector('form[action$="/ack"] button') !== null`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action$="/ack"] button`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("dl.summary .status").innerText === "acknowledged"`, 20*time.Second)
	browsertest.Screenshot(t, ctx, "alert")
	_, out := srv.apiAs(w.alice, "GET", "/api/v1/alerts/"+alertID, nil)
	var al struct {
		Status      string `json:"status"`
		Transitions []struct {
			Actor, To string
		} `json:"transitions"`
	}
	json.Unmarshal(out, &al)
	if al.Status != "acknowledged" || len(al.Transitions) != 1 || al.Transitions[0].Actor != "alice" {
		t.Errorf("the alert after acknowledging: %s", out)
	}

	// Logging out ends the session: a page goes to the login again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/login"`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/alerts")); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/login"`, 20*time.Second)

	w.auditCounts(map[string]int{
		`action:login outcome:success actor:alice detail:password`: 1,
		`action:"alert.status" actor:alice`:                        1,
		`action:"console.search" actor:alice`:                      5,
	})
}

// TestConsoleBrowserPayloads ingests events whose fields are HTML and
// script, and checks in the browser that none of it runs and all of it
// reads as text, on the search page and the event page.
func TestConsoleBrowserPayloads(t *testing.T) {
	w := newAccessWorld(t)
	ctx := browsertest.New(t)
	srv, site := w.srv, consoleSite(w.srv)
	at := time.Now().UTC().Add(-10 * time.Minute).Format(time.RFC3339)
	payloads := map[string]string{
		"action":    `<script>window.pwned=1</script>`,
		"user":      `"><img src=x onerror="window.pwned=2">`,
		"message":   `<svg onload="window.pwned=3"></svg> <img src=x onerror="document.title='pwned'">`,
		"useragent": `'><iframe src="javascript:window.parent.pwned=4"></iframe>`,
		"link":      `javascript:window.pwned=5`,
		"time":      at,
	}
	line, _ := json.Marshal(payloads)
	srv.call("POST", "/api/v1/ingest?format=json&tenant=team-a", append(line, '\n'))
	srv.wait("the payload event", func() bool {
		_, rows, _ := srv.searchAs(w.alice, "source:json")
		return len(rows) == 1
	})

	pwned := `window.pwned === undefined && document.title !== "pwned"`
	consoleLogin(t, ctx, site, "/?q=source:json&from=-1h&columns=time,actor,action,message,user_agent,link", "alice", "correct horse battery")
	browsertest.Until(t, ctx, `document.querySelectorAll("table[data-rows] tbody tr").length === 1`, 20*time.Second)
	text := pageText(t, ctx, "table[data-rows]")
	for k, p := range payloads {
		if k != "time" && !strings.Contains(text, p) {
			t.Errorf("the results do not show %s as text: %q\n%s", k, p, text)
		}
	}
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pwned)); err != nil || !ok {
		t.Errorf("a payload ran on the search page (%v)", err)
	}
	browsertest.Screenshot(t, ctx, "payloads-search")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-row-link]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname.startsWith("/events/") && document.readyState === "complete"`, 20*time.Second)
	text = pageText(t, ctx, "main")
	for _, p := range []string{payloads["action"], payloads["user"], payloads["link"]} {
		if !strings.Contains(text, p) {
			t.Errorf("the event page does not show %q as text:\n%s", p, text)
		}
	}
	// Not one element a payload would have made.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img, main svg, main iframe, main script").length`))
	if err != nil || n != 0 {
		t.Errorf("the event page holds %d elements from payloads (%v)", n, err)
	}
	// Wait a moment for anything a payload would have loaded.
	time.Sleep(300 * time.Millisecond)
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pwned)); err != nil || !ok {
		t.Errorf("a payload ran on the event page (%v)", err)
	}
	browsertest.Screenshot(t, ctx, "payloads-event")
}
