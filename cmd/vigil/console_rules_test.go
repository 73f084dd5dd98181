package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// trailRule is a detection engineer's new rule: CloudTrail's own trail
// changed or stopped.
const trailRule = `title: CloudTrail trail changed or stopped
id: 6f1b3c2a-8d4e-4b7a-9c5d-1e2f3a4b5c6d
status: experimental
description: A trail was stopped, deleted or changed; the audit log may go dark.
tags:
    - attack.defense-evasion
    - attack.t1562.008
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: cloudtrail.amazonaws.com
        eventName:
            - StopLogging
            - DeleteTrail
            - UpdateTrail
    condition: selection
level: high
`

// TestConsoleRulesBrowser is a detection engineer's session on the demo:
// the rules with their hits, a new rule checked as it is typed,
// backtested over the demo's days, saved and turned off.
func TestConsoleRulesBrowser(t *testing.T) {
	data := t.TempDir()
	srv := serveWith(t, data, "--listen", "127.0.0.1:0", "--demo")
	ctx := browsertest.New(t)
	site := consoleSite(srv)
	pw, err := os.ReadFile(filepath.Join(data, passwordFile))
	if err != nil {
		t.Fatal(err)
	}
	// What the rule should find: the demo's trail events.
	srv.waitDemo()
	var want int
	srv.wait("the demo's detections and trail events", func() bool {
		_, rows, _ := srv.searchAs(srv.token, "source:aws.cloudtrail (action:StopLogging OR action:DeleteTrail OR action:UpdateTrail) | stats count()")
		if len(rows) == 1 {
			n, _ := rows[0]["count"].(float64)
			want = int(n)
		}
		_, out := srv.apiAs(srv.token, "GET", "/api/v1/rules", nil)
		var rules []struct {
			Hits int `json:"hits_30d"`
		}
		json.Unmarshal(out, &rules)
		return want > 0 && slices.ContainsFunc(rules, func(r struct {
			Hits int `json:"hits_30d"`
		}) bool {
			return r.Hits > 0
		})
	})

	consoleLogin(t, ctx, site, "/rules", "admin", strings.TrimSpace(string(pw)))
	browsertest.Until(t, ctx, `location.pathname === "/rules" && document.querySelector("#rules") !== null`, 20*time.Second)
	// The demo's detections count as hits of the rules that made them.
	browsertest.Until(t, ctx, `[...document.querySelectorAll("#rules tbody tr td.num")].some(td => Number(td.innerText) > 0)`, 5*time.Second)
	browsertest.Screenshot(t, ctx, "rules")

	// A new rule: a mistake is reported as it is typed, with its line,
	// before anything is sent to run.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/rules/new"]`)), chromedp.WaitVisible(chromedp.CSS(`#content`))); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(trailRule, "eventName:", "eventName|sideways:", 1)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#content").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#content`), broken)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("#lint-status").innerText.includes("problem")`+
		` && document.querySelector("#lint-problems").innerText.includes("sideways")`+
		` && document.querySelector("#lint-problems li").dataset.line === "14"`+
		` && document.querySelector("#content").getAttribute("aria-invalid") === "true"`, 10*time.Second)
	browsertest.Screenshot(t, ctx, "rule-lint")
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if loc != site+"/rules/new" {
		t.Errorf("linting left the editor for %s", loc)
	}
	// Fixed, it is clean.
	fix, _ := json.Marshal(trailRule)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const c = document.querySelector("#content"); c.value = `+string(fix)+
		`; c.dispatchEvent(new Event("input")); return true })()`)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("#lint-status").innerText === "No problems found."`+
		` && document.querySelector("#lint-problems").children.length === 0`, 10*time.Second)

	// The backtest over the demo's days finds the trail events.
	fill(t, ctx, `#backtest`, map[string]string{"#bt-from": "2024-07-30", "#bt-to": "2024-08-02"}, nil)
	browsertest.Until(t, ctx, `document.querySelector("#backtest-summary") !== null`, 60*time.Second)
	total, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#backtest-summary strong").dataset.total`))
	if err != nil || total != strconv.Itoa(want) {
		t.Errorf("the backtest found %s hits (%v), want %d", total, err, want)
	}
	bars, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#backtest-result rect.chart-bar").length`))
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#backtest-result tbody tr").length`))
	if bars == 0 || rows != want {
		t.Errorf("the backtest shows %d bars and %d hits, want bars and %d hits", bars, rows, want)
	}
	browsertest.Screenshot(t, ctx, "rule-backtest")

	// Saved as backtested, it runs.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#save`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/rules/6f1b3c2a-8d4e-4b7a-9c5d-1e2f3a4b5c6d" && document.querySelector(".notice") !== null`, 20*time.Second)
	page := pageText(t, ctx, "main")
	for _, w := range []string{"Saved.", "CloudTrail trail changed or stopped", "console", "aws.cloudtrail", "StopLogging"} {
		if !strings.Contains(page, w) {
			t.Errorf("the saved rule's page lacks %q:\n%s", w, page)
		}
	}
	_, out := srv.apiAs(srv.token, "GET", "/api/v1/rules/6f1b3c2a-8d4e-4b7a-9c5d-1e2f3a4b5c6d", nil)
	var got struct {
		Origin, Content string
		Off             any
	}
	if json.Unmarshal(out, &got); got.Origin != "console" || got.Content != trailRule || got.Off != nil {
		t.Errorf("the API's view of the saved rule: %s", out)
	}

	// Turned off, with a reason.
	fill(t, ctx, `form[action$="/off"] button[type=submit]`, map[string]string{"#off-reason": "replaced by the built-in pack"}, nil)
	browsertest.Until(t, ctx, `location.search === "?done=off" && document.querySelector(".state-off") !== null`, 20*time.Second)
	_, out = srv.apiAs(srv.token, "GET", "/api/v1/rules/6f1b3c2a-8d4e-4b7a-9c5d-1e2f3a4b5c6d", nil)
	if !strings.Contains(string(out), `"reason":"replaced by the built-in pack"`) || !strings.Contains(string(out), `"by":"admin"`) {
		t.Errorf("the API's view of the rule turned off: %s", out)
	}

	// A hit of the demo made with a role's key, from an address on the
	// demo's watch list: its page shows both.
	_, found, _ := srv.searchAs(srv.token, "actor_type:AssumedRole intel:demo-watchlist session_origin:* | sort seq | head 1 | fields seq")
	if len(found) != 1 {
		t.Fatal("no enriched event of an assumed role in the demo")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/events/"+strconv.Itoa(int(found[0]["seq"].(float64))))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("#identity-title") !== null && document.querySelector("ul.intel li") !== null`+
		` && document.querySelector("ol.chain").innerText.includes("christophe")`, 20*time.Second)
	browsertest.Screenshot(t, ctx, "event-identity")
}
