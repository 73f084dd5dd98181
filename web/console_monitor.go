package web

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web/chart"
)

// The monitoring section: the KPIs' trends with the baselines vigil
// judges them by, what vigil could see (coverage), and the context of an
// asset or a credential. Every page asks the Options' functions with the
// scope requestScope gives, as the API does, so that a page shows no more
// than /api/v1/series, /coverage, /inventory and /identities would.

// monitorDocs is where the pages send someone whose dashboard is empty:
// the console cannot serve the docs itself, they are not in the binary.
const monitorDocs = "https://github.com/vigilsec/vigil/blob/main/docs/monitoring.md"

// A kpi is a measure of the dashboard, judged by one of monitor's
// built-in rules, whose season, history and thresholds draw its baseline
// and find its anomalies as vigil serve's evaluation does.
type kpi struct {
	ID, Title string
	Rule      string // in monitor.DefaultRules
	Unit      string // for chart.LineOptions; "" for cost, which takes its currency
	// Factor turns a value into what the chart shows (probe_up's 0 or 1
	// into a percentage); Ceil, if not zero, is the most a value can be,
	// so that a band does not promise more than 100%.
	Factor, Ceil float64
	// Send says what to send for the KPI to have data, and Doc where the
	// docs say how.
	Send, Doc string
}

var kpis = []kpi{
	{ID: "cost", Title: "Cost per day", Rule: "cost-jump", Factor: 1,
		Send: "cost exports: vigil cost import --tenant TENANT FILE (AWS CUR, FOCUS, Google Cloud or Azure exports)", Doc: "#sending-metrics"},
	{ID: "cpu", Title: "CPU (user, summed per account)", Rule: "cpu-saturation", Unit: "CPUs", Factor: 1,
		Send: "OpenTelemetry host metrics (system.cpu.utilization) over OTLP to /api/v1/otlp/v1/metrics", Doc: "#sending-metrics"},
	{ID: "network-out", Title: "Network out", Rule: "egress-burst", Unit: "bytes", Factor: 1,
		Send: "VPC flow logs (vigil import, or the ingest endpoint), which vigil sums into network_out_bytes", Doc: "#network-use-from-flow-logs"},
	{ID: "network-in", Title: "Network in", Rule: "ingress-spike", Unit: "bytes", Factor: 1,
		Send: "VPC flow logs (vigil import, or the ingest endpoint), which vigil sums into network_in_bytes", Doc: "#network-use-from-flow-logs"},
	{ID: "availability", Title: "Availability (probes)", Rule: "availability-lost", Unit: "%", Factor: 100, Ceil: 100,
		Send: "probes: name the services to check under monitor.probes in the config", Doc: "#probes"},
}

// kpiRules are the built-in rules by name.
var kpiRules = func() map[string]monitor.Rule {
	m := map[string]monitor.Rule{}
	for _, r := range monitor.DefaultRules() {
		m[r.Name] = r
	}
	for _, k := range kpis {
		if _, ok := m[k.Rule]; !ok {
			panic("no monitor rule " + k.Rule)
		}
	}
	return m
}()

// kpiRule is the rule a KPI's chart draws: the server's own rule of that
// name, as configured, else the built-in one.
func (a *api) kpiRule(name string) monitor.Rule {
	for _, r := range a.opts.MonitorRules {
		if r.Name == name {
			return r
		}
	}
	return kpiRules[name]
}

// seasonOf is the Season a rule's season names, as monitor reads it:
// monitor keeps its table to itself, and the band must be fit on the
// same buckets its rules are.
func seasonOf(name string) monitor.Season {
	switch name {
	case "", "weekly":
		return monitor.Season{Period: 7 * 24 * time.Hour, Bucket: time.Hour}
	case "weekly-by-day":
		return monitor.Season{Period: 7 * 24 * time.Hour, Bucket: 24 * time.Hour}
	case "daily":
		return monitor.Season{Period: 24 * time.Hour, Bucket: time.Hour}
	}
	return monitor.Season{}
}

// maxKPILines bounds the lines of a chart: past eight, colors repeat and
// a reader tells none apart. The largest are kept.
const maxKPILines = 8

// maxKPIRange bounds a dashboard's range: a year of five-minute samples,
// each series fit again each day, is as much as a page should do.
const maxKPIRange = 400 * 24 * time.Hour

// consoleMonitorRoutes serves the console's pages of monitoring: KPIs,
// coverage, inventory, identities. Each is mounted only when the server
// has what it shows.
func (a *api) consoleMonitorRoutes(mux *http.ServeMux) {
	page := func(action string) route { return route{action: action, perm: access.Read, page: true} }
	var first string
	if a.opts.Series != nil {
		mux.Handle("GET /monitoring", a.auth(http.HandlerFunc(a.consoleKPIs), page("console.monitoring")))
		first = cmp.Or(first, "/monitoring")
	}
	if a.opts.Coverage != nil {
		mux.Handle("GET /coverage", a.auth(http.HandlerFunc(a.consoleCoverage), page("console.coverage")))
		first = cmp.Or(first, "/coverage")
	}
	if a.opts.Inventory != nil {
		mux.Handle("GET /inventory", a.auth(http.HandlerFunc(a.consoleInventory), page("console.inventory")))
		first = cmp.Or(first, "/inventory")
	}
	if a.opts.Who != nil {
		mux.Handle("GET /identities/{ref}", a.auth(http.HandlerFunc(a.consoleIdentity), page("console.identity")))
		// The inventory page's form asks for a credential as ?ref=.
		mux.Handle("GET /identities", a.auth(http.HandlerFunc(a.consoleIdentityForm), page("console.identity")))
	}
	if first != "" {
		a.addSection("monitoring", "Monitoring", first)
	}
}

// monitorTabs are the section's pages this server has, for its own nav.
type monitorTab struct {
	Name, Path string
	Current    bool
}

func (a *api) monitorTabs(current string) []monitorTab {
	var tabs []monitorTab
	add := func(ok bool, name, path string) {
		if ok {
			tabs = append(tabs, monitorTab{name, path, path == current})
		}
	}
	add(a.opts.Series != nil, "KPIs", "/monitoring")
	add(a.opts.Coverage != nil, "Coverage", "/coverage")
	add(a.opts.Inventory != nil || a.opts.Who != nil, "Inventory and identities", "/inventory")
	return tabs
}

// kpiBody is the dashboard's data.
type kpiBody struct {
	Tabs                  []monitorTab
	From, To, Tenant, Env string
	Presets               []presetLink
	Tenants, Environments []string
	RangeFrom, RangeTo    time.Time
	Error                 string
	KPIs                  []kpiView
	Empty                 bool // no KPI has data
	Docs                  string
	Probes                []probeRow
	ProbesError           string
	AnomalySearch         string
}

// A kpiView is a KPI's charts, one per tenant.
type kpiView struct {
	kpi
	Metric, RuleName, RuleDescription string
	Charts                            []kpiChart
	DocURL                            string
}

type kpiChart struct {
	Tenant    string
	Chart     template.HTML
	Lines     int
	Hidden    int  // lines not drawn, past maxKPILines
	Band      bool // the baseline is drawn
	Anomalies int
	Search    string // the anomalies vigil raised, as a search
}

// kpiParams are the dashboard's parameters, to build its links.
type kpiParams struct{ from, to, tenant, env string }

func (p kpiParams) url() string {
	v := url.Values{"from": {p.from}}
	if p.to != "" {
		v.Set("to", p.to)
	}
	if p.tenant != "" {
		v.Set("tenant", p.tenant)
	}
	if p.env != "" {
		v.Set("environment", p.env)
	}
	return "/monitoring?" + v.Encode()
}

// consoleKPIs answers GET /monitoring?from=&to=&tenant=&environment=:
// each KPI's series over the range, per tenant, with the baseline band
// and the anomalies the KPI's rule finds.
func (a *api) consoleKPIs(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	p := kpiParams{from: defaultFrom, to: v.Get("to"), tenant: v.Get("tenant"), env: v.Get("environment")}
	if v.Get("from") != "" {
		p.from = v.Get("from")
	}
	b := &kpiBody{Tabs: a.monitorTabs("/monitoring"), From: p.from, To: p.to, Tenant: p.tenant, Env: p.env,
		Tenants: tenantChoices(id), Docs: monitorDocs}
	for _, pr := range presets {
		l := p
		l.from, l.to = pr.From, ""
		b.Presets = append(b.Presets, presetLink{Label: pr.Label, URL: l.url(), Active: p.from == pr.From && p.to == ""})
	}
	page := &consolePage{Title: "KPIs", Nav: "monitoring", Body: b}
	status := http.StatusOK
	defer func() { a.render(w, r, status, "monitoring", page) }()

	now := a.opts.Now()
	from, to, err := timeRange(url.Values{"from": {p.from}, "to": {p.to}}, now)
	if err != nil {
		b.Error, status = err.Error(), http.StatusBadRequest
		return
	}
	if to.IsZero() {
		to = now
	}
	switch {
	case !from.Before(to):
		b.Error, status = "from: the range must start before it ends", http.StatusBadRequest
		return
	case to.Sub(from) > maxKPIRange:
		b.Error, status = "from: a dashboard shows at most 400 days", http.StatusBadRequest
		return
	}
	b.RangeFrom, b.RangeTo = from, to
	scope := requestScope(id, v)
	envs := map[string]bool{}
	b.Empty = true
	for _, k := range kpis {
		kv, err := a.kpiView(r.Context(), k, scope, p, from, to, envs)
		if err != nil {
			a.opts.Logger.Error("reading a KPI's series", "kpi", k.ID, "err", err)
			b.Error, status = "Reading the series failed.", http.StatusInternalServerError
			return
		}
		if len(kv.Charts) > 0 {
			b.Empty = false
		}
		b.KPIs = append(b.KPIs, kv)
	}
	for e := range envs {
		b.Environments = append(b.Environments, e)
	}
	slices.Sort(b.Environments)
	b.AnomalySearch = searchURL("source:vigil.monitor action:anomaly", from, to, p.tenant)
	if a.opts.Probes != nil {
		rows, err := a.probeRows(r.Context(), scope)
		if err != nil {
			a.opts.Logger.Error("reporting probes", "err", err)
			b.ProbesError = "Reporting the probes failed."
		}
		b.Probes = rows
	}
}

// kpiView reads a KPI's series in scope, with the history its rule's
// baseline needs before the range, and draws a chart per tenant.
func (a *api) kpiView(ctx context.Context, k kpi, scope query.Scope, p kpiParams, from, to time.Time, envs map[string]bool) (kpiView, error) {
	rule := a.kpiRule(k.Rule)
	kv := kpiView{kpi: k, Metric: rule.Metric, RuleName: rule.Name, RuleDescription: rule.Description, DocURL: monitorDocs + k.Doc}
	match := map[string]string{}
	for n, val := range rule.Match {
		match[n] = val
	}
	if p.env != "" {
		match["environment"] = p.env
	}
	// Evaluate fits each day's baseline on the history before that day.
	histFrom := from.Truncate(24 * time.Hour).Add(-rule.HistorySpan())
	series, err := a.opts.Series(ctx, scope, rule.Metric, match, histFrom, to)
	if err != nil {
		return kv, err
	}
	byTenant := map[string][]metric.Series{}
	for _, s := range series {
		if e := s.Labels.Get("environment"); e != "" {
			envs[e] = true
		}
		if len(metric.Between(s.Samples, from, to)) == 0 {
			continue
		}
		t := s.Labels.Get("tenant")
		byTenant[t] = append(byTenant[t], s)
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		kv.Charts = append(kv.Charts, kpiChartOf(k, rule, t, byTenant[t], from, to, p))
	}
	return kv, nil
}

// kpiChartOf draws a tenant's series of a KPI as its rule judges them:
// summed by the rule's labels, each sum a line, its anomalies circled.
// The band is drawn for a chart of one line only: a band belongs to a
// series, and several overlapping would say nothing.
func kpiChartOf(k kpi, rule monitor.Rule, tenant string, series []metric.Series, from, to time.Time, p kpiParams) kpiChart {
	sums := monitor.Aggregate(series, rule.Metric, rule.By)
	totals := make([]float64, len(sums))
	for i := range sums {
		for _, x := range metric.Between(sums[i].Samples, from, to) {
			if !math.IsNaN(x.Value) && !math.IsInf(x.Value, 0) {
				totals[i] += x.Value
			}
		}
	}
	order := make([]int, len(sums))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(totals[y], totals[x]), strings.Compare(lineName(sums[x], rule.By), lineName(sums[y], rule.By)))
	})
	c := kpiChart{Tenant: tenant, Lines: len(sums)}
	if len(order) > maxKPILines {
		c.Hidden = len(order) - maxKPILines
		order = order[:maxKPILines]
	}
	unit := k.Unit
	if k.ID == "cost" {
		unit = costUnit(sums)
	}
	var lines []chart.Series
	var marks []chart.Mark
	var band []chart.Band
	for _, i := range order {
		s := &sums[i]
		line := chart.Series{Name: lineName(*s, rule.By)}
		for _, x := range metric.Between(s.Samples, from, to) {
			line.Points = append(line.Points, chart.Point{Time: x.Time, Value: x.Value * k.Factor})
		}
		lines = append(lines, line)
		for _, an := range rule.Evaluate(s, from, to) {
			c.Anomalies++
			for j, x := range an.Observed {
				title := fmt.Sprintf("%s (%s, %s): expected about %s", rule.Name, an.Severity, an.Direction,
					roughValue(an.Levels[j].Value*k.Factor, unit))
				marks = append(marks, chart.Mark{Time: x.Time, Value: x.Value * k.Factor, Title: title})
			}
		}
	}
	if len(order) == 1 {
		band = kpiBand(k, rule, &sums[order[0]], from, to)
		c.Band = slices.ContainsFunc(band, func(b chart.Band) bool { return !math.IsNaN(b.Low) })
	}
	label := k.Title + " of " + cmp.Or(tenant, "no tenant")
	c.Chart = chart.Line(lines, chart.LineOptions{Width: 1000, Height: 220, Label: label, Unit: unit, Band: band, Marks: marks, From: from, To: to})
	c.Search = searchURL("source:vigil.monitor action:anomaly service:\""+quoteValue(rule.Metric)+"\"", from, to, tenant)
	return c
}

// kpiBand is the range a series' rule expects of each of its samples in
// [from, to): the baseline's level, widened either side to where a value
// would stray by the rule's score and change. A day's baseline is fit on
// the history before it, as Evaluate fits it; where the baseline has no
// level yet (a series warming up) the band has a gap.
func kpiBand(k kpi, rule monitor.Rule, s *metric.Series, from, to time.Time) []chart.Band {
	season := seasonOf(rule.Season)
	var out []chart.Band
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		base := monitor.Fit(s.Samples, season, day.Add(-rule.HistorySpan()), day)
		lo, hi := day, day.Add(24*time.Hour)
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		for _, x := range metric.Between(s.Samples, lo, hi) {
			_, level, ok := base.Score(x.Time, x.Value)
			if !ok {
				out = append(out, chart.Band{Time: x.Time, Low: math.NaN(), High: math.NaN()})
				continue
			}
			// Baseline keeps its per-bucket scale to itself; the score of
			// a value d from the level is d/scale, which gives it back.
			d := max(math.Abs(level), 1)
			unit, _, _ := base.Score(x.Time, level+d)
			half := rule.Change
			if unit > 0 {
				half = max(half, rule.Score*d/unit)
			}
			low, high := max(level-half, 0)*k.Factor, (level+half)*k.Factor
			if k.Ceil != 0 {
				high = min(high, k.Ceil)
			}
			out = append(out, chart.Band{Time: x.Time, Low: low, High: high})
		}
	}
	return out
}

// roughValue writes a value of a unit to three significant digits, for
// an anomaly's title (the chart writes the value itself).
func roughValue(v float64, unit string) string {
	switch unit {
	case "bytes":
		for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
			if math.Abs(v) < 1000 || u == "TB" {
				return strconv.FormatFloat(v, 'g', 3, 64) + " " + u
			}
			v /= 1000
		}
	case "%":
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	case "":
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + " " + unit
}

// lineName names a sum by the values of the labels it is summed by.
func lineName(s metric.Series, by []string) string {
	var parts []string
	for _, n := range by {
		if v := s.Labels.Get(n); v != "" {
			parts = append(parts, v)
		}
	}
	if len(by) == 0 {
		for _, l := range s.Labels {
			if l.Name != "tenant" {
				parts = append(parts, l.Name+"="+l.Value)
			}
		}
	}
	return cmp.Or(strings.Join(parts, " · "), "all")
}

// costUnit is the currency the cost series share, for the chart's axis;
// series in several currencies are drawn as plain numbers.
func costUnit(sums []metric.Series) string {
	unit := ""
	for i, s := range sums {
		c := strings.ToUpper(s.Labels.Get("currency"))
		if i > 0 && c != unit {
			return ""
		}
		unit = c
	}
	return unit
}

// searchURL is the search page of a query over [from, to) in a tenant.
func searchURL(q string, from, to time.Time, tenant string) string {
	v := url.Values{"q": {q}, "from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	return "/?" + v.Encode()
}

// A probeRow is a probed target's availability, as /api/v1/probes gives it.
type probeRow struct {
	Probe  string             `json:"probe"`
	Target string             `json:"target"`
	Tenant string             `json:"tenant"`
	Up     bool               `json:"up"`
	Last   time.Time          `json:"last_check"`
	Shares map[string]float64 `json:"availability"`
}

// Percent writes a share of a span as a percentage.
func (p probeRow) Percent(span string) string {
	v, ok := p.Shares[span]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

// probeRows reads Options.Probes' answer as the API writes it: the
// function answers whatever its server's report is, and the JSON is the
// contract it keeps with every client.
func (a *api) probeRows(ctx context.Context, scope query.Scope) ([]probeRow, error) {
	rep, err := a.opts.Probes(ctx, scope)
	if err != nil {
		return nil, err
	}
	var rows []probeRow
	if err := viaJSON(rep, &rows); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(x, y probeRow) int {
		return cmp.Or(strings.Compare(x.Tenant, y.Tenant), strings.Compare(x.Probe, y.Probe), strings.Compare(x.Target, y.Target))
	})
	return rows, nil
}

// viaJSON reads v, of a type this package does not know, into out
// through its JSON.
func viaJSON(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// A coverageReport is Options.Coverage's answer as /api/v1/coverage
// writes it.
type coverageReport struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Sources []coverageSource `json:"sources"`
	Blind   []blindRule      `json:"rules_without_data"`
}

type coverageSource struct {
	Tenant      string        `json:"tenant"`
	Environment string        `json:"environment"`
	Source      string        `json:"source"`
	From        string        `json:"from"`
	Events      int64         `json:"events"`
	Skewed      int64         `json:"skewed"`
	LastSeen    time.Time     `json:"last_seen"`
	Delay       time.Duration `json:"delay"`
	DelayP95    time.Duration `json:"delay_p95"`
	// Search is the source's events over the span, set by the page.
	Search string `json:"-"`
}

// DelayText and DelayP95Text write the delays as a person reads them:
// a late source is hours or days behind, not 20524h49m50.317s.
func (s coverageSource) DelayText() string    { return roughDuration(s.Delay) }
func (s coverageSource) DelayP95Text() string { return roughDuration(s.DelayP95) }

// roughDuration writes d to two units at most.
func roughDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + roughDuration(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd %dh", days, (d-days*24*time.Hour)/time.Hour)
}

type blindRule struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Sources []string `json:"sources"`
	Reason  string   `json:"reason"`
}

// coverageBody is the coverage page's data.
type coverageBody struct {
	Tabs         []monitorTab
	Days         int
	Tenant       string
	Tenants      []string
	DayChoices   []dayChoice
	Error        string
	Report       *coverageReport
	ByTenant     []tenantSources
	Silent       []silentSource
	SilentSearch string
	SilentError  string
	Docs         string
}

type dayChoice struct {
	Days    int
	URL     string
	Current bool
}

type tenantSources struct {
	Tenant  string
	Sources []coverageSource
}

// A silentSource is a source vigil found gone quiet: its source_silent
// event.
type silentSource struct {
	Time    time.Time
	Tenant  string
	Message string
	Link    string
}

// consoleCoverage answers GET /coverage?days=7&tenant=: the sources of
// the tenants in scope with their last event and delay, the sources
// vigil found gone silent, and the rules that had nothing to run on.
func (a *api) consoleCoverage(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &coverageBody{Tabs: a.monitorTabs("/coverage"), Days: 7, Tenant: v.Get("tenant"), Tenants: tenantChoices(id), Docs: monitorDocs}
	page := &consolePage{Title: "Coverage", Nav: "monitoring", Body: b}
	status := http.StatusOK
	defer func() { a.render(w, r, status, "coverage", page) }()
	if s := v.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 3660 {
			b.Error, status = "days: want a number of days, 1 to 3660", http.StatusBadRequest
			return
		}
		b.Days = n
	}
	for _, d := range []int{1, 7, 30, 90} {
		q := url.Values{"days": {strconv.Itoa(d)}}
		if b.Tenant != "" {
			q.Set("tenant", b.Tenant)
		}
		b.DayChoices = append(b.DayChoices, dayChoice{d, "/coverage?" + q.Encode(), d == b.Days})
	}
	scope := requestScope(id, v)
	rep, err := a.opts.Coverage(r.Context(), scope, b.Days)
	if err == nil {
		b.Report = &coverageReport{}
		err = viaJSON(rep, b.Report)
	}
	if err != nil {
		a.opts.Logger.Error("reporting coverage", "err", err)
		b.Report, b.Error, status = nil, "Reporting coverage failed.", http.StatusInternalServerError
		return
	}
	idx := map[string]int{}
	for _, s := range b.Report.Sources {
		q := "source:\"" + quoteValue(s.Source) + "\""
		s.Search = searchURL(q, b.Report.From, b.Report.To, s.Tenant)
		i, ok := idx[s.Tenant]
		if !ok {
			i = len(b.ByTenant)
			idx[s.Tenant] = i
			b.ByTenant = append(b.ByTenant, tenantSources{Tenant: s.Tenant})
		}
		b.ByTenant[i].Sources = append(b.ByTenant[i].Sources, s)
	}
	slices.SortFunc(b.ByTenant, func(x, y tenantSources) int { return strings.Compare(x.Tenant, y.Tenant) })
	const silentQuery = "source:vigil.monitor action:source_silent"
	b.SilentSearch = searchURL(silentQuery, b.Report.From, b.Report.To, b.Tenant)
	if a.opts.Store != nil {
		if b.Silent, err = a.silentSources(r.Context(), silentQuery, scope, b.Report.From, b.Report.To); err != nil {
			a.opts.Logger.Error("reading silent sources", "err", err)
			b.SilentError = "Reading the silent sources failed."
		}
	}
}

// maxSilent bounds the silent sources the coverage page lists; the
// search link has the rest.
const maxSilent = 100

// silentSources are the source_silent events the silence watch recorded
// in scope over [from, to), newest first: what vigil found quiet, which
// the coverage report (a count of what arrived) cannot say.
func (a *api) silentSources(ctx context.Context, text string, scope query.Scope, from, to time.Time) ([]silentSource, error) {
	q, err := query.Parse(text)
	if err != nil {
		return nil, err
	}
	res, err := a.opts.Store.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: maxSilent})
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, c := range res.Columns {
		col[c] = i
	}
	get := func(row []any, name string) any {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	var out []silentSource
	for _, row := range res.Rows {
		s := silentSource{Tenant: cellOf(get(row, "tenant")).Text, Message: cellOf(get(row, "message")).Text}
		s.Time, _ = get(row, "time").(time.Time)
		if seq := get(row, "seq"); seq != nil {
			s.Link = "/events/" + fmt.Sprint(seq)
		}
		out = append(out, s)
	}
	return out, nil
}

// inventoryBody is the inventory page's data.
type inventoryBody struct {
	Tabs      []monitorTab
	Q, At     string
	Tenant    string
	Tenants   []string
	AtTime    time.Time
	Error     string
	Searched  bool
	Found     []foundView
	CanLookUp bool // the server has an inventory
	CanWho    bool // and reassembles identities
}

type foundView struct {
	Asset    inventory.Asset
	Facts    []factView
	Search   string // the asset's events
	Identity string // its identity page, for a user or role
}

type factView struct {
	inventory.Fact
	Link string // the inventory of an address, or an identity
}

// consoleInventory answers GET /inventory?q=REF&at=T&tenant=: the
// assets REF names, with their facts at T (over all time without it).
func (a *api) consoleInventory(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &inventoryBody{Tabs: a.monitorTabs("/inventory"), Q: strings.TrimSpace(v.Get("q")), At: v.Get("at"), Tenant: v.Get("tenant"),
		Tenants: tenantChoices(id), CanLookUp: a.opts.Inventory != nil, CanWho: a.opts.Who != nil}
	page := &consolePage{Title: "Inventory", Nav: "monitoring", Body: b}
	status := http.StatusOK
	defer func() { a.render(w, r, status, "inventory", page) }()
	if b.Q == "" {
		return
	}
	page.Title = "Inventory: " + shorten(b.Q, 60)
	at, err := query.ParseTimeArg(b.At, a.opts.Now())
	if err != nil {
		b.Error, status = fmt.Sprintf("at: %v", err), http.StatusBadRequest
		return
	}
	b.AtTime = at
	found, err := a.opts.Inventory(r.Context(), requestScope(id, v), b.Q, at)
	if err != nil {
		a.opts.Logger.Error("looking up the inventory", "err", err)
		b.Error, status = "Looking up the inventory failed.", http.StatusInternalServerError
		return
	}
	b.Searched = true
	for _, f := range found {
		fv := foundView{Asset: f.Asset}
		sv := url.Values{"q": {"\"" + quoteValue(f.Asset.ID) + "\""}, "from": {""}}
		if b.Tenant != "" {
			sv.Set("tenant", b.Tenant)
		}
		fv.Search = "/?" + sv.Encode()
		for _, fact := range f.Facts {
			fw := factView{Fact: fact}
			switch {
			case strings.HasSuffix(fact.Attr, "_ip"):
				fw.Link = "/inventory?" + url.Values{"q": {fact.Value}, "at": {b.At}}.Encode()
			case fact.Attr == "arn" && b.CanWho:
				fw.Link = identityURL(fact.Value)
				fv.Identity = fw.Link
			}
			fv.Facts = append(fv.Facts, fw)
		}
		b.Found = append(b.Found, fv)
	}
}

// identityURL is the identity page of a key or an ARN, which may hold
// slashes: the path has one segment.
func identityURL(ref string) string {
	return "/identities/" + url.PathEscape(ref)
}

// consoleIdentityForm sends the inventory page's form (?ref=) to the
// identity page of what it names.
func (a *api) consoleIdentityForm(w http.ResponseWriter, r *http.Request) {
	ref := strings.TrimSpace(r.URL.Query().Get("ref"))
	if ref == "" {
		seeOther(w, r, "/inventory")
		return
	}
	v := url.Values{}
	for _, k := range []string{"from", "to", "tenant"} {
		if s := r.URL.Query().Get(k); s != "" {
			v.Set(k, s)
		}
	}
	u := identityURL(ref)
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	seeOther(w, r, u)
}

// identityBody is the identity page's data.
type identityBody struct {
	Tabs         []monitorTab
	Ref          string
	From, To     string
	Tenant       string
	Error        string
	Report       *inventory.Report
	Chain        []chainLink
	Origin       string
	OriginSearch string
	Uses         []useView
	Flagged      int
}

type chainLink struct {
	As    string
	Key   string
	Issue *inventory.Issue
	Event string // the issuing event's page
	Who   string // the identity page of the caller, for a hop
}

type useView struct {
	inventory.Use
	Link string
}

// chainLinks are the links of a report's chain of credentials, as pages
// show them.
func chainLinks(rep *inventory.Report) []chainLink {
	var out []chainLink
	for _, l := range rep.Chain {
		cl := chainLink{As: l.As.String(), Key: l.As.Key, Issue: l.Issue}
		if l.Issue != nil {
			if l.Issue.Seq != 0 {
				cl.Event = "/events/" + strconv.FormatUint(l.Issue.Seq, 10)
			}
			if c := cmp.Or(l.Issue.Caller.Key, l.Issue.Caller.ARN); c != "" {
				cl.Who = identityURL(c)
			}
		}
		out = append(out, cl)
	}
	return out
}

// consoleIdentity answers GET /identities/{ref}?from=&to=&tenant=: who is
// behind a credential, the chain of credentials back to them and the
// events done under it.
func (a *api) consoleIdentity(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	ref := r.PathValue("ref")
	b := &identityBody{Tabs: a.monitorTabs(""), Ref: ref, From: v.Get("from"), To: v.Get("to"), Tenant: v.Get("tenant")}
	page := &consolePage{Title: "Who is " + shorten(ref, 60), Nav: "monitoring", Body: b}
	status := http.StatusOK
	defer func() { a.render(w, r, status, "identity", page) }()
	from, to, err := timeRange(v, a.opts.Now())
	if err != nil {
		b.Error, status = err.Error(), http.StatusBadRequest
		return
	}
	rep, err := a.opts.Who(r.Context(), requestScope(id, v), ref, from, to)
	if err != nil {
		a.opts.Logger.Error("reassembling an identity", "err", err)
		b.Error, status = "Reassembling the identity failed.", http.StatusInternalServerError
		return
	}
	if rep == nil {
		b.Error, status = "No identity here, or none you may see.", http.StatusNotFound
		return
	}
	b.Report = rep
	b.Chain = chainLinks(rep)
	b.Origin = rep.Origin.String()
	if o := rep.Origin.ID(); o != "" {
		sv := url.Values{"q": {"session_origin:\"" + quoteValue(o) + "\""}, "from": {b.From}}
		if b.To != "" {
			sv.Set("to", b.To)
		}
		if b.Tenant != "" {
			sv.Set("tenant", b.Tenant)
		}
		b.OriginSearch = "/?" + sv.Encode()
	}
	for _, u := range rep.Uses {
		uv := useView{Use: u}
		if u.Seq != 0 {
			uv.Link = "/events/" + strconv.FormatUint(u.Seq, 10)
		}
		if u.OffInstance != "" {
			b.Flagged++
		}
		b.Uses = append(b.Uses, uv)
	}
}
