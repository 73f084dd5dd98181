package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"

	"github.com/vigilsec/vigil/web/browsertest"
)

// TestConsoleMonitorBrowser opens the monitoring section in a real
// browser: each team's ingest token writes network_out_bytes into a
// running vigil by Prometheus remote write, and alice, an analyst of
// team-a, logs in and sees team-a's series drawn as a line on the KPI
// dashboard, and nothing of team-b's; then the coverage page, with the
// sources team-a's CloudTrail came from.
func TestConsoleMonitorBrowser(t *testing.T) {
	w := newAccessWorld(t)
	ctx := browsertest.New(t)
	srv, site := w.srv, consoleSite(w.srv)

	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UTC()
	for tenant, iface := range map[string]string{"team-a": "eni-team-a", "team-b": "eni-team-b-secret"} {
		id := w.mustAPI("POST", "/api/v1/access/principals", map[string]any{"name": "metrics-" + tenant})["id"].(string)
		w.mustAPI("POST", "/api/v1/access/bindings", map[string]any{"subject": "principal:" + id, "tenant": tenant, "role": "ingest"})
		token := w.mustAPI("POST", "/api/v1/access/tokens", map[string]any{"principal": id, "days": 1})["secret"].(string)
		var samples []*writev2.Sample
		for i := range 30 {
			v := 2e6 + float64(i%5)*4e5
			if i >= 20 && i < 24 {
				v = 3e8
			}
			samples = append(samples, &writev2.Sample{Value: v, Timestamp: t0.Add(time.Duration(i) * time.Minute).UnixMilli()})
		}
		req := &writev2.Request{
			Symbols:    []string{"", "__name__", "network_out_bytes", "interface", iface, "provider", "aws"},
			Timeseries: []*writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4, 5, 6}, Samples: samples}},
		}
		api, err := remote.NewAPI(srv.base, remote.WithAPIPath("/api/v1/write"),
			remote.WithAPIHTTPClient(&http.Client{Transport: bearer{token}}), remote.WithAPINoRetryOnRateLimit(),
			remote.WithAPIBackoff(remote.BackoffConfig{Min: time.Millisecond, Max: time.Millisecond, MaxRetries: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.Write(context.Background(), remote.WriteV2MessageType, req); err != nil {
			t.Fatalf("writing %s's metrics: %v", tenant, err)
		}
	}
	srv.wait("team-a's series", func() bool {
		_, out := srv.apiAs(w.alice, "GET", "/api/v1/series?metric=network_out_bytes&from=-2h", nil)
		var got []any
		json.Unmarshal(out, &got)
		return len(got) == 1
	})

	consoleLogin(t, ctx, site, "/monitoring", "alice", "correct horse battery")
	browsertest.Until(t, ctx, `document.querySelectorAll("#kpi-network-out svg path.chart-line").length > 0`, 20*time.Second)
	body := pageText(t, ctx, "main")
	for _, want := range []string{"Network out", "team-a", "eni-team-a", "No cost samples in this range"} {
		if !strings.Contains(body, want) {
			t.Errorf("the KPI page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "team-b") {
		t.Errorf("the KPI page shows team-b's series:\n%s", body)
	}
	// The line is drawn, with a stroke: the page's stylesheet colors it.
	stroke, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#kpi-network-out svg path.chart-line")).stroke`))
	if err != nil || stroke == "" || stroke == "none" {
		t.Errorf("the line's stroke is %q (%v)", stroke, err)
	}
	browsertest.Screenshot(t, ctx, "monitoring")

	// A preset is a link, keeping the page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.presets a[href*="from=-7d"]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.search.includes("from=-7d") && document.querySelectorAll("#kpi-network-out svg path.chart-line").length > 0`, 20*time.Second)

	// Coverage, from the section's own nav.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.monitor-tabs a[href="/coverage"]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/coverage" && document.querySelector('table[data-coverage-tenant="team-a"]') !== null`, 20*time.Second)
	body = pageText(t, ctx, "main")
	for _, want := range []string{"aws.cloudtrail", "Silent sources", "Rules without data"} {
		if !strings.Contains(body, want) {
			t.Errorf("the coverage page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "team-b") {
		t.Errorf("the coverage page shows team-b's sources:\n%s", body)
	}
	browsertest.Screenshot(t, ctx, "coverage")
}
