package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// fill types into the fields of a form, chooses its options, and
// submits it: values are by selector, those of selects chosen.
func fill(t *testing.T, ctx context.Context, submit string, typed, chosen map[string]string) {
	t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for sel, v := range typed {
		actions = append(actions, chromedp.SendKeys(chromedp.CSS(sel), v))
	}
	for sel, v := range chosen {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(sel), v))
	}
	actions = append(actions, chromedp.Click(chromedp.CSS(submit)))
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("filling the form of %s: %v", submit, err)
	}
}

// TestConsoleAdminBrowser is the first administrator's day in the
// console: log in with the password vigil made, create a user and bind
// it a role, share a tenant's events with it, and read all of it back in
// the audit trail.
func TestConsoleAdminBrowser(t *testing.T) {
	data := t.TempDir()
	srv := serve(t, data)
	ctx := browsertest.New(t)
	site := consoleSite(srv)
	pw, err := os.ReadFile(filepath.Join(data, passwordFile))
	if err != nil {
		t.Fatal(err)
	}

	consoleLogin(t, ctx, site, "/admin", "admin", strings.TrimSpace(string(pw)))
	browsertest.Until(t, ctx, `location.pathname === "/admin" && document.querySelector("#p-name") !== null`, 20*time.Second)

	// A user, with a password.
	fill(t, ctx, `form[action="/admin/principals"] button[type=submit]`,
		map[string]string{"#p-name": "carol", "#p-display": "Carol <CSIRT>", "#p-password": "correct horse battery"}, nil)
	browsertest.Until(t, ctx, `document.querySelector(".notice") !== null && document.querySelector(".notice").innerText.includes("Principal created")`+
		` && document.querySelector("#principals").innerText.includes("Carol <CSIRT>")`, 20*time.Second)

	// A role for her in team-a.
	fill(t, ctx, `form[action="/admin/bindings"] button[type=submit]`,
		map[string]string{"#b-name": "carol", "#b-tenant": "team-a"}, map[string]string{"#b-role": "analyst"})
	browsertest.Until(t, ctx, `document.querySelector(".notice") !== null && document.querySelector(".notice").innerText.includes("Role bound")`, 20*time.Second)
	bindings := pageText(t, ctx, "#bindings")
	if !strings.Contains(bindings, "carol") || !strings.Contains(bindings, "team-a") || !strings.Contains(bindings, "analyst") {
		t.Errorf("the bindings after binding carol:\n%s", bindings)
	}
	browsertest.Screenshot(t, ctx, "admin")

	// A grant of team-b's logins to her, for a week.
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/admin/grants"), chromedp.WaitVisible(chromedp.CSS(`#gr-reason`))); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, `form[action="/admin/grants"] button[type=submit]`, map[string]string{
		"#gr-owner": "team-b", "#gr-grantee": "carol", "#gr-filter": "action:ConsoleLogin", "#gr-from": "2024-01-01",
		"#gr-redact": "src_ip", "#gr-reason": "incident 7: team-b's logins",
	}, map[string]string{"#gr-days": "7"})
	browsertest.Until(t, ctx, `document.querySelector(".notice") !== null && document.querySelector(".notice").innerText.includes("Grant created")`, 20*time.Second)
	grants := pageText(t, ctx, "#grants")
	for _, want := range []string{"team-b", "action:ConsoleLogin", "src_ip", "incident 7: team-b's logins", "active"} {
		if !strings.Contains(grants, want) {
			t.Errorf("the grants lack %q:\n%s", want, grants)
		}
	}

	// The trail: records reach the store a moment after their
	// requests, so the page is opened again until they show.
	var trail string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/admin/audit?actor=admin"), chromedp.WaitVisible(chromedp.CSS(`main h1`))); err != nil {
			t.Fatal(err)
		}
		trail = pageText(t, ctx, "main")
		if strings.Contains(trail, "grant.create") && strings.Contains(trail, "role.bind") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"principal.create", "role.bind", "grant.create", "incident 7: team-b's logins", "team-a", "analyst", "login"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail lacks %q:\n%s", want, trail)
		}
	}
	browsertest.Screenshot(t, ctx, "audit")

	// A filter narrows it to the grant, whose record opens as an event.
	fill(t, ctx, `form[action="/admin/audit"] button[type=submit]`, map[string]string{"#a-action": "grant.create"}, nil)
	browsertest.Until(t, ctx, `location.search.includes("action=grant.create") && document.querySelectorAll("#audit tbody tr").length === 1`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#audit [data-row-link]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname.startsWith("/events/") && document.readyState === "complete" && document.body.innerText.includes("grant.create")`, 20*time.Second)

	// carol logs in with the password given, as an analyst of team-a.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/login"`, 20*time.Second)
	consoleLogin(t, ctx, site, "/alerts", "carol", "correct horse battery")
	if header := pageText(t, ctx, "header"); !strings.Contains(header, "carol") || !strings.Contains(header, "analyst@team-a") {
		t.Errorf("carol's header says %q", header)
	}
}

// TestConsoleTenantsServed: the tenants page counts each team's events
// and names its sources.
func TestConsoleTenantsServed(t *testing.T) {
	srv, _ := serveTwoTeams(t)
	b := srv.page("/admin/tenants")
	for _, tenant := range []string{"team-a", "team-b"} {
		_, rows, _ := srv.searchAs(srv.token, "tenant:"+tenant+" | stats count()")
		want := int(rows[0]["count"].(float64))
		row := regexp.MustCompile(`(?s)data-row-link>` + tenant + `</a></td>\s*<td class="num">(\d+)</td>.*?</tr>`).FindStringSubmatch(b)
		if row == nil || row[1] != strconv.Itoa(want) || !strings.Contains(row[0], "aws.cloudtrail") {
			t.Errorf("the row of %s: %q, want %d events of aws.cloudtrail", tenant, row, want)
		}
	}
}
