package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// monitorFakes stand for the server's series, coverage, probes,
// inventory and identities: each answers only from the tenants of the
// scope it is given, as the real ones do, and records every scope, so
// that a test can tell what a page asked for.
type monitorFakes struct {
	now    time.Time
	mu     sync.Mutex
	scopes []query.Scope
}

func (f *monitorFakes) saw(s query.Scope) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = append(f.scopes, s)
}

// asked returns the scopes recorded since the last call.
func (f *monitorFakes) asked() []query.Scope {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.scopes
	f.scopes = nil
	return s
}

// series: network_out_bytes of team-a, hourly, flat at 1 MB for three
// weeks and then 500 MB for the two hours before the last, its labels
// full of payloads; a secret series of team-b.
func (f *monitorFakes) series(_ context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error) {
	f.saw(scope)
	if name != "network_out_bytes" {
		return nil, nil
	}
	var out []metric.Series
	for _, tenant := range []string{"team-a", "team-b"} {
		if !scope.Includes(tenant) {
			continue
		}
		ls := metric.NewLabels(map[string]string{"tenant": tenant, "provider": "aws", "account": xssScript, "interface": xssAttr, "environment": xssAttr})
		if tenant == "team-b" {
			ls = metric.NewLabels(map[string]string{"tenant": tenant, "account": "team-b-secret-account"})
		}
		if env := match["environment"]; env != "" && ls.Get("environment") != env {
			continue
		}
		s := metric.Series{Metric: name, Labels: ls}
		for t := f.now.Add(-21 * 24 * time.Hour); t.Before(f.now); t = t.Add(time.Hour) {
			v := 1e6 * (1 + 0.01*float64(t.Hour()%3-1))
			if !t.Before(f.now.Add(-3*time.Hour)) && t.Before(f.now.Add(-time.Hour)) {
				v = 5e8
			}
			if !t.Before(from) && t.Before(to) {
				s.Samples = append(s.Samples, metric.Sample{Time: t, Value: v})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *monitorFakes) coverage(_ context.Context, scope query.Scope, days int) (any, error) {
	f.saw(scope)
	type source struct {
		Tenant   string        `json:"tenant"`
		Source   string        `json:"source"`
		From     string        `json:"from"`
		Events   int64         `json:"events"`
		LastSeen time.Time     `json:"last_seen"`
		Delay    time.Duration `json:"delay"`
	}
	rep := map[string]any{"from": f.now.Add(-time.Duration(days) * 24 * time.Hour), "to": f.now,
		"rules_without_data": []map[string]any{{"id": "blind-rule", "title": "Rule " + xssScript, "reason": "nothing from " + xssAttr}}}
	var srcs []source
	if scope.Includes("team-a") {
		srcs = append(srcs, source{"team-a", xssScript, xssAttr, 42, f.now.Add(-time.Hour), 90 * time.Second})
	}
	if scope.Includes("team-b") {
		srcs = append(srcs, source{"team-b", "team-b-secret-source", "1", 1, f.now, 0})
	}
	rep["sources"] = srcs
	return rep, nil
}

func (f *monitorFakes) probes(_ context.Context, scope query.Scope) (any, error) {
	f.saw(scope)
	rows := []map[string]any{}
	if scope.Includes("team-a") {
		rows = append(rows, map[string]any{"probe": xssScript, "target": xssURL, "tenant": "team-a", "up": false,
			"last_check": f.now, "availability": map[string]float64{"1h": 0.5, "24h": 0.9, "7d": 0.99}})
	}
	return rows, nil
}

func (f *monitorFakes) inventory(_ context.Context, scope query.Scope, ref string, at time.Time) ([]inventory.Found, error) {
	f.saw(scope)
	if !scope.Includes("team-a") || ref != "10.0.3.7" {
		return nil, nil
	}
	a := inventory.Asset{Kind: "instance", ID: "i-" + xssAttr, Provider: "aws", Account: xssScript}
	return []inventory.Found{{Asset: a, Facts: []inventory.Fact{
		{Asset: a, Attr: "private_ip", Value: "10.0.3.7", From: f.now.Add(-48 * time.Hour)},
		{Asset: a, Attr: "tag:" + xssScript, Value: xssURL, From: f.now.Add(-48 * time.Hour), Source: xssAttr},
		{Asset: a, Attr: "arn", Value: "arn:aws:iam::1:role/" + xssAttr, From: f.now.Add(-48 * time.Hour)},
	}}}, nil
}

func (f *monitorFakes) who(_ context.Context, scope query.Scope, ref string, from, to time.Time) (*inventory.Report, error) {
	f.saw(scope)
	rep := &inventory.Report{Ref: inventory.Principal{Key: ref}}
	if !scope.Includes("team-a") {
		rep.Chain = []inventory.Link{{As: rep.Ref}}
		rep.Origin = rep.Ref
		return rep, nil
	}
	origin := inventory.Principal{Type: "IAMUser", ARN: "arn:aws:iam::1:user/" + xssScript}
	rep.Chain = []inventory.Link{
		{As: inventory.Principal{Type: "AssumedRole", ARN: "arn:aws:sts::1:assumed-role/" + xssAttr, Key: ref},
			Issue: &inventory.Issue{Kind: "AssumeRole", Time: f.now.Add(-time.Hour), Account: "1", Seq: 7, Caller: origin}},
		{As: origin},
	}
	rep.Origin = origin
	rep.Uses = []inventory.Use{{Seq: 9, Time: f.now, Account: "1", Action: xssScript, Actor: xssAttr, Key: ref,
		SrcIP: netip.MustParseAddr("203.0.113.7"), Outcome: "success", OffInstance: "used from " + xssScript}}
	return rep, nil
}

// silentStore answers the coverage page's search for silent sources.
type silentStore struct{ f *monitorFakes }

func (s silentStore) Search(_ context.Context, req query.Request) (*store.Result, error) {
	s.f.saw(req.Scope)
	res := &store.Result{Columns: []string{"seq", "time", "tenant", "message"}, Events: true}
	if s.f != nil && req.Scope.Includes("team-a") {
		res.Rows = append(res.Rows, []any{uint64(5), s.f.now, "team-a", "json from " + xssScript + " has sent nothing"})
	}
	return res, nil
}

func (silentStore) SearchQuarantine(context.Context, string, query.Scope, time.Time, time.Time, int) (*store.Result, error) {
	return &store.Result{}, nil
}

// newMonitorWorld is the API with the fakes, alice an analyst of team-a
// and bob a viewer of team-b. Without fakes, it has no monitoring.
func newMonitorWorld(t *testing.T, f *monitorFakes) *consoleWorld {
	t.Helper()
	_, directory, _ := newTestDirectory(t, t.TempDir(), "", consoleTeams...)
	opts := Options{Access: directory, Gatherer: prometheus.NewRegistry(), Store: silentStore{f}}
	if f != nil {
		opts.Series, opts.Coverage, opts.Probes, opts.Inventory, opts.Who = f.series, f.coverage, f.probes, f.inventory, f.who
		opts.Now = func() time.Time { return f.now }
	}
	return &consoleWorld{t: t, h: Handler(opts)}
}

// onlyTeamA checks that every scope a page asked with was alice's, or
// narrower: never team-b, never all tenants.
func onlyTeamA(t *testing.T, what string, scopes []query.Scope) {
	t.Helper()
	if len(scopes) == 0 {
		t.Errorf("%s asked nothing", what)
	}
	for _, s := range scopes {
		if s.All || slices.ContainsFunc(s.Tenants, func(x string) bool { return x != "team-a" }) || len(s.Shares) > 0 {
			t.Errorf("%s asked with the scope %+v", what, s)
		}
	}
}

func TestConsoleMonitoring(t *testing.T) {
	f := &monitorFakes{now: time.Now().UTC().Truncate(time.Hour)}
	w := newMonitorWorld(t, f)
	alice, bob := w.login("alice"), w.login("bob")

	rec := w.do("GET", "/monitoring", alice, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /monitoring: %d\n%s", rec.Code, body)
	}
	assertEscaped(t, "the KPI page", body)
	onlyTeamA(t, "the KPI page", f.asked())
	for _, want := range []string{
		`class="chart-line chart-line-0"`, `class="chart-band"`, `class="chart-anomaly"`, // the spike, circled over the baseline
		`href="/monitoring" aria-current="page"`, `/static/monitor.css?v=`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", // the account label, as text
		"egress-burst", "1 anomaly",
		"Probed targets", "50.00%", "99.00%",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the KPI page lacks %q", want)
		}
	}
	if strings.Contains(body, "team-b-secret") {
		t.Error("alice's KPI page shows team-b's series")
	}
	// Other KPIs have no data, and say what to send.
	if !strings.Contains(body, "No system.cpu.utilization samples") || !strings.Contains(body, monitorDocs+"#probes") {
		t.Error("the KPI page does not say what to send for the KPIs without data")
	}

	// Asking for team-b narrows alice's scope to nothing of it.
	rec = w.do("GET", "/monitoring?tenant=team-b", alice, nil)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "team-b-secret") {
		t.Errorf("alice's tenant=team-b: %d, team-b's data shown: %v", rec.Code, strings.Contains(rec.Body.String(), "team-b-secret"))
	}
	for _, s := range f.asked() {
		if s.Includes("team-b") || s.Includes("team-a") || s.All {
			t.Errorf("tenant=team-b asked as alice with %+v", s)
		}
	}
	if !strings.Contains(rec.Body.String(), "data-no-data") {
		t.Error("an empty dashboard has no empty state")
	}

	// An environment narrows the series asked for.
	rec = w.do("GET", "/monitoring?"+url.Values{"environment": {"prod"}}.Encode(), alice, nil)
	if strings.Contains(rec.Body.String(), `class="chart-line`) {
		t.Error("environment=prod shows the series of another environment")
	}
	f.asked()

	// A range that cannot be read is a 400 that says which.
	for _, from := range []string{"yesterday-ish", xssScript, "-1h&to=-2h"} {
		rec = w.do("GET", "/monitoring?from="+url.QueryEscape(from), alice, nil)
		if from == "-1h&to=-2h" {
			rec = w.do("GET", "/monitoring?from=-1h&to=-2h", alice, nil)
		}
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "from:") {
			t.Errorf("from=%s: %d, want 400 naming from", from, rec.Code)
		}
		assertEscaped(t, "a bad range", rec.Body.String())
	}
	f.asked()

	// bob's tenant has a series of its own, and nothing of team-a's.
	body = w.do("GET", "/monitoring", bob, nil).Body.String()
	if strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "team-b-secret-account") {
		t.Error("bob's dashboard is not team-b's")
	}

	// Without a session: the login page.
	if rec := w.do("GET", "/monitoring", "", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("GET /monitoring without a session: %d", rec.Code)
	}
}

func TestConsoleCoverage(t *testing.T) {
	f := &monitorFakes{now: time.Now().UTC().Truncate(time.Second)}
	w := newMonitorWorld(t, f)
	alice := w.login("alice")

	rec := w.do("GET", "/coverage?days=30", alice, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /coverage: %d\n%s", rec.Code, body)
	}
	assertEscaped(t, "the coverage page", body)
	onlyTeamA(t, "the coverage page", f.asked())
	for _, want := range []string{
		`data-coverage-tenant="team-a"`, "1m30s", "42", "blind-rule", "Rule &lt;script&gt;",
		`href="/events/5"`, "has sent nothing", // the silent source, linked to its event
		"action%3Asource_silent", `aria-current="true">Last 30 days`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the coverage page lacks %q", want)
		}
	}
	if strings.Contains(body, "team-b-secret") {
		t.Error("alice's coverage shows team-b's sources")
	}

	rec = w.do("GET", "/coverage?tenant=team-b", alice, nil)
	if strings.Contains(rec.Body.String(), "team-b-secret") || !strings.Contains(rec.Body.String(), "Nothing arrived") {
		t.Error("alice's tenant=team-b coverage is not empty")
	}
	for _, s := range f.asked() {
		if s.Includes("team-b") || s.All {
			t.Errorf("tenant=team-b asked as alice with %+v", s)
		}
	}
	for _, days := range []string{"0", "x", "9999"} {
		if rec := w.do("GET", "/coverage?days="+days, alice, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("days=%s: %d, want 400", days, rec.Code)
		}
	}
}

func TestConsoleInventoryAndIdentity(t *testing.T) {
	f := &monitorFakes{now: time.Now().UTC().Truncate(time.Second)}
	w := newMonitorWorld(t, f)
	alice, bob := w.login("alice"), w.login("bob")

	rec := w.do("GET", "/inventory?q=10.0.3.7", alice, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /inventory: %d\n%s", rec.Code, body)
	}
	assertEscaped(t, "the inventory page", body)
	onlyTeamA(t, "the inventory page", f.asked())
	for _, want := range []string{"private_ip", `href="/inventory?at=&amp;q=10.0.3.7"`, "/identities/arn:aws:iam::1:role%2F", "its events"} {
		if !strings.Contains(body, want) {
			t.Errorf("the inventory page lacks %q", want)
		}
	}
	if body := w.do("GET", "/inventory?q=10.0.3.7", bob, nil).Body.String(); !strings.Contains(body, "No asset of your tenants") {
		t.Error("bob sees team-a's asset")
	}
	f.asked()
	if rec := w.do("GET", "/inventory?q=x&at=whenever", alice, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("a bad at=: %d", rec.Code)
	}

	ref := "ASIA" + xssAttr
	rec = w.do("GET", identityURL(ref), alice, nil)
	body = rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /identities: %d\n%s", rec.Code, body)
	}
	assertEscaped(t, "the identity page", body)
	onlyTeamA(t, "the identity page", f.asked())
	for _, want := range []string{`href="/events/7"`, `href="/events/9"`, "AssumeRole", "session_origin", "credential off the instance", `href="/inventory?q=203.0.113.7"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the identity page lacks %q", want)
		}
	}
	// An ARN's slash is escaped in the path, and the page gets it back.
	rec = w.do("GET", identityURL("arn:aws:iam::1:user/x"), alice, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Who is <code>arn:aws:iam::1:user/x</code>") {
		t.Errorf("GET %s: %d", identityURL("arn:aws:iam::1:user/x"), rec.Code)
	}
	f.asked()
	if rec := w.do("GET", identityURL("x")+"?from=soon", alice, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("a bad from=: %d", rec.Code)
	}
	rec = w.do("GET", "/identities?ref="+url.QueryEscape("arn:aws:iam::1:user/x")+"&tenant=team-a", alice, nil)
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/identities/arn:aws:iam::1:user%2Fx?tenant=team-a" {
		t.Errorf("the identity form: %d to %q", rec.Code, loc)
	}
}

// A server without metrics, coverage or inventory has no monitoring.
func TestConsoleMonitoringAbsent(t *testing.T) {
	w := newMonitorWorld(t, nil)
	alice := w.login("alice")
	if rec := w.do("GET", "/monitoring", alice, nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /monitoring: %d", rec.Code)
	}
	if body := w.do("GET", "/", alice, nil).Body.String(); strings.Contains(body, ">Monitoring<") {
		t.Error("the nav shows Monitoring")
	}
}

func TestRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:                      "2ms",
		90*time.Second + 317*time.Millisecond:        "1m30s",
		5*time.Hour + 3*time.Minute + 20*time.Second: "5h3m",
		20524*time.Hour + 49*time.Minute:             "855d 4h",
		-2 * time.Second:                             "-2s",
	} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
