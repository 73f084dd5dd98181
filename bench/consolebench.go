package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// pageBudget is how long a console page may take on the demo data, the
// issue's bar for an analyst clicking through during an incident.
const pageBudget = 300 * time.Millisecond

// runConsole times the console's pages on a real `vigil serve --demo`,
// logged in as its first administrator, each against the API read it is
// built on where there is one: the ratio is what rendering (and the
// histogram and top values a search page adds) costs over the data it
// shows. Times are of whole requests on loopback, which is server time
// and a few tens of microseconds.
func runConsole(ctx context.Context, c *config) error {
	bin, err := c.buildVigil(ctx)
	if err != nil {
		return err
	}
	data := filepath.Join(c.dir, "console-demo")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	srv, err := startServer(ctx, bin, data, "--demo")
	if err != nil {
		return err
	}
	defer srv.stop()
	pw, err := os.ReadFile(filepath.Join(data, "admin.password"))
	if err != nil {
		return fmt.Errorf("the first administrator's password: %w", err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"name": {"admin"}, "password": {strings.TrimSpace(string(pw))}, "return": {"/"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.base)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	session := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == "vigil_session" {
			session = ck.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == "" {
		return fmt.Errorf("logging in: %s", resp.Status)
	}
	get := func(path string, api bool) (time.Duration, int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+path, nil)
		if api {
			req.Header.Set("Authorization", "Bearer "+srv.token)
		} else {
			// The jar keeps a Secure cookie for https only.
			req.AddCookie(&http.Cookie{Name: "vigil_session", Value: session})
		}
		// The server allows a credential 50 requests a second: stay
		// under it, or the times are of 429s.
		time.Sleep(25 * time.Millisecond)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), resp.StatusCode, err
	}
	timed := func(path string, api bool) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			d, code, err := get(path, api)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("GET %s: status %d", path, code)
			}
			return d, err
		}
	}

	// An alert and an event of the demo, for their pages.
	var alerts []struct{ ID string }
	if err := apiJSON(ctx, srv, "/api/v1/alerts", &alerts); err != nil {
		return err
	}
	alert := ""
	if len(alerts) > 0 {
		alert = alerts[0].ID
	}
	pages := []struct{ name, page, api string }{
		{"search, last 30 days", "/?from=-30d", "/api/v1/search?q=*&from=-30d&limit=50"},
		{"search, a needle", "/?q=eventName:StopLogging&from=-30d", "/api/v1/search?q=eventName:StopLogging&from=-30d&limit=50"},
		{"search, stats", "/?q=" + url.QueryEscape("| stats count() by action") + "&from=-30d", "/api/v1/search?q=" + url.QueryEscape("| stats count() by action") + "&from=-30d"},
		{"event and its proof", "/events/100", "/api/v1/events/100/proof"},
		{"alert queue", "/alerts", "/api/v1/alerts"},
		{"an alert", "/alerts/" + alert, "/api/v1/alerts/" + alert},
		{"cases", "/cases", "/api/v1/cases"},
		{"monitoring", "/monitoring", ""},
		{"coverage", "/coverage", "/api/v1/coverage"},
		{"rules", "/rules", "/api/v1/rules"},
		{"a rule", "/rules/f6dd0262-074b-4b46-95a3-46a50af84de2", "/api/v1/rules/f6dd0262-074b-4b46-95a3-46a50af84de2"},
		{"rule editor", "/rules/new?from=f6dd0262-074b-4b46-95a3-46a50af84de2", ""},
		{"admin", "/admin", ""},
		{"tenants", "/admin/tenants", ""},
		{"audit trail", "/admin/audit", ""},
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "page\tmedian\tp99\tmax\tAPI median\tratio\tunder %s\t\n", pageBudget)
	for _, p := range pages {
		if _, code, err := get(p.page, false); err != nil || code != http.StatusOK {
			c.logf("skipping %s (%s): %d %v", p.name, p.page, code, err)
			continue
		}
		pageTimes, err := timeRuns(c.runs, timed(p.page, false))
		if err != nil {
			return err
		}
		p50, p99, worst := percentiles(pageTimes)
		row := fmt.Sprintf("%s\t%s\t%s\t%s", p.name, ms(p50), ms(p99), ms(worst))
		if p.api != "" {
			apiTimes, err := timeRuns(c.runs, timed(p.api, true))
			if err != nil {
				return err
			}
			api50, _, _ := percentiles(apiTimes)
			row += fmt.Sprintf("\t%s\t%.1f×", ms(api50), float64(p50)/float64(api50))
		} else {
			row += "\t-\t-"
		}
		fmt.Fprintf(tw, "%s\t%v\t\n", row, worst < pageBudget)
	}
	return tw.Flush()
}

// timeRuns runs fn twice to warm up, then runs times, and returns the
// durations it measured.
func timeRuns(runs int, fn func() (time.Duration, error)) ([]time.Duration, error) {
	out := make([]time.Duration, 0, runs)
	for i := range runs + 2 {
		d, err := fn()
		if err != nil {
			return nil, err
		}
		if i >= 2 {
			out = append(out, d)
		}
	}
	return out, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// apiJSON reads an API answer as the server's administrator.
func apiJSON(ctx context.Context, srv *server, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+srv.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
