// Package web is vigil's HTTP API: search, ingest, health and metrics,
// behind token authentication.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// Searcher is what the API needs of the store.
type Searcher interface {
	Search(ctx context.Context, req query.Request) (*store.Result, error)
	SearchQuarantine(ctx context.Context, text string, scope query.Scope, from, to time.Time, limit int) (*store.Result, error)
}

// Options configure the API.
type Options struct {
	Store Searcher
	// IngestOnly makes the API that of a scale-out node that serves no
	// queries (vigil serve --role ingest or process): health, metrics,
	// sources and the ingest endpoints it has.
	IngestOnly bool
	Ingest     http.Handler // mounted at /api/v1/ingest
	// RemoteWrite and OTLPMetrics receive metrics (/api/v1/write,
	// /api/v1/otlp/v1/metrics), as Ingest events.
	RemoteWrite, OTLPMetrics http.Handler
	// Probes says how available each probed target was in the tenants
	// in scope, over the last hour, day and week (/api/v1/probes).
	Probes func(ctx context.Context, scope query.Scope) (any, error)
	// Coverage says what the tenants in scope sent over the last days,
	// and which rules had nothing to run on (/api/v1/coverage).
	Coverage func(ctx context.Context, scope query.Scope, days int) (any, error)
	// Series reads back a metric's series in scope (/api/v1/series).
	Series func(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error)
	// MonitorRules are the anomaly rules the server evaluates, whose
	// baselines and anomalies the console's KPI charts draw; nil: the
	// defaults (monitor.DefaultRules).
	MonitorRules []monitor.Rule
	// Sources lists the ingest sources seen (/api/v1/sources).
	Sources func() []ingest.SourceStats
	// Detections are the rules' matches (/api/v1/detections).
	Detections DetectionLister
	// Alerts are the alert layer (/api/v1/alerts, /api/v1/suppressions).
	Alerts Alerts
	// Who reassembles the identity behind a credential
	// (/api/v1/identities/{ref}) from the events scope sees.
	Who func(ctx context.Context, scope query.Scope, ref string, from, to time.Time) (*inventory.Report, error)
	// Inventory looks up the assets a reference names at a time (over
	// all time for a zero one) in the inventories of the tenants scope
	// includes (/api/v1/inventory).
	Inventory func(ctx context.Context, scope query.Scope, ref string, at time.Time) ([]inventory.Found, error)
	// Playbooks are the playbook runner (/api/v1/playbooks,
	// /api/v1/playbook-runs).
	Playbooks Playbooks
	// Exports writes the evidence bundles of /api/v1/exports, which
	// signed links open; it needs Access, which keeps their records.
	Exports Bundler
	// Hunter runs retro-hunts (/api/v1/hunt) over the store's events,
	// and rule backtests.
	Hunter detect.Scanner
	// Rules are the rules the server runs (/api/v1/rules, /rules).
	Rules *RuleBook
	// Searches keeps the searches users save from the search page
	// (/api/v1/searches, and the search page's list); nil: none.
	Searches *meta.DB
	// Ledger proves events are in the ledger (/api/v1/events/{seq}/proof);
	// LedgerKey is the public key of its checkpoints.
	Ledger    Prover
	LedgerKey string
	// AdminToken is the token of the local administrator, who sees every
	// tenant. Tokens, if set, checks every other token.
	AdminToken string
	Tokens     Authenticator
	// Access is the directory of principals, groups, roles, grants and
	// sessions: it resolves tokens of principals and console sessions,
	// and serves /api/v1/access/… and /api/v1/login. Without it, only
	// tokens with roles of their own authenticate.
	Access *access.Directory
	// OIDC, if set, logs console users in through an OpenID Connect
	// provider (/api/v1/oidc/login and /api/v1/oidc/callback); it needs
	// Access.
	OIDC *OIDC
	// Audit keeps a record of each request (in the ledger, through the
	// intake). Nil keeps none.
	Audit func(ctx context.Context, r *access.Record) error
	// OnElevate is told of each break-glass elevation, to notify.
	OnElevate func(ctx context.Context, e access.Elevation, who string)
	Gatherer  prometheus.Gatherer
	Logger    *slog.Logger
	Now       func() time.Time
	// MaxLimit caps the rows a search returns.
	MaxLimit int
}

// Handler returns the API's handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = 100000
	}
	a := &api{
		opts: opts,
		// Per address before authentication, per credential after: a
		// console user or a script, not a flood.
		ipLimit:     &access.Limiter{Rate: 100, Burst: 200, Now: opts.Now},
		callerLimit: &access.Limiter{Rate: 50, Burst: 100, Now: opts.Now},
		// Ten wrong credentials from an address in ten minutes lock it
		// out for fifteen: slow enough to stop guessing, short enough
		// that a mistyped token locks no one out for long.
		badAuth: &access.Lockout{Max: 10, Window: 10 * time.Minute, Lock: 15 * time.Minute, Now: opts.Now},
		// Five wrong passwords for a name lock that name out.
		badLogin: &access.Lockout{Max: 5, Window: 15 * time.Minute, Lock: 15 * time.Minute, Now: opts.Now},
		scans:    make(chan struct{}, maxScans),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	read := func(action string) route { return route{action: action, perm: access.Read} }
	admin := func(action string) route { return route{action: action, perm: access.Manage} }
	ingest := route{perm: access.IngestEvents}
	mux.Handle("GET /metrics", a.auth(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}), admin("metrics")))
	if opts.Ingest != nil {
		mux.Handle("/api/v1/ingest", a.auth(opts.Ingest, ingest))
	}
	if opts.RemoteWrite != nil {
		mux.Handle("/api/v1/write", a.auth(opts.RemoteWrite, ingest))
	}
	if opts.OTLPMetrics != nil {
		mux.Handle("/api/v1/otlp/v1/metrics", a.auth(opts.OTLPMetrics, ingest))
	}
	if opts.Sources != nil {
		mux.Handle("GET /api/v1/sources", a.auth(http.HandlerFunc(a.sources), admin("sources")))
	}
	if opts.IngestOnly {
		return mux
	}
	// A search reads the events of the caller's roles and the audit
	// trail of its auditor roles.
	mux.Handle("GET /api/v1/search", a.auth(http.HandlerFunc(a.search), route{action: "search", perm: access.Read,
		also: []access.Permission{access.ReadAudit}, scope: (*access.Identity).SearchScope}))
	if opts.Who != nil {
		mux.Handle("GET /api/v1/identities/{ref}", a.auth(http.HandlerFunc(a.who), read("identity")))
	}
	if opts.Inventory != nil {
		mux.Handle("GET /api/v1/inventory", a.auth(http.HandlerFunc(a.inventory), read("inventory")))
	}
	if opts.Ledger != nil {
		mux.Handle("GET /api/v1/events/{seq}/proof", a.auth(http.HandlerFunc(a.proof), route{action: "proof", perm: access.Read,
			also: []access.Permission{access.ReadAudit}, scope: (*access.Identity).SearchScope}))
	}
	if opts.Series != nil {
		mux.Handle("GET /api/v1/series", a.auth(http.HandlerFunc(a.series), read("series")))
	}
	if opts.Coverage != nil {
		mux.Handle("GET /api/v1/coverage", a.auth(http.HandlerFunc(a.coverage), read("coverage")))
	}
	if opts.Probes != nil {
		mux.Handle("GET /api/v1/probes", a.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := IdentityFrom(r.Context())
			rep, err := opts.Probes(r.Context(), requestScope(id, r.URL.Query()))
			if err != nil {
				a.opts.Logger.Error("reporting probes", "err", err)
				writeError(w, http.StatusInternalServerError, errors.New("reporting probes failed"))
				return
			}
			writeJSON(w, http.StatusOK, rep)
		}), read("probes")))
	}
	// Profiles of the running server, for its operators.
	mux.Handle("GET /debug/pprof/", a.auth(http.HandlerFunc(pprof.Index), admin("profile")))
	mux.Handle("GET /debug/pprof/profile", a.auth(http.HandlerFunc(pprof.Profile), admin("profile")))
	mux.Handle("GET /debug/pprof/trace", a.auth(http.HandlerFunc(pprof.Trace), admin("profile")))
	if opts.Alerts != nil {
		work := func(action string) route { return route{action: action, perm: access.Work} }
		mux.Handle("GET /api/v1/alerts", a.auth(http.HandlerFunc(a.alerts), read("alert.list")))
		if opts.Playbooks != nil {
			// Approving and starting acts on the world: responders and
			// administrators only; the kill switch is the administrators'.
			respond := func(action string) route { return route{action: action, perm: access.Respond} }
			mux.Handle("GET /api/v1/playbooks", a.auth(http.HandlerFunc(a.playbookList), read("playbook.list")))
			mux.Handle("POST /api/v1/playbooks/{name}/run", a.auth(http.HandlerFunc(a.startRun), respond("playbook.start")))
			mux.Handle("GET /api/v1/playbook-runs", a.auth(http.HandlerFunc(a.runs), read("playbook.runs")))
			mux.Handle("GET /api/v1/playbook-runs/{id}", a.auth(http.HandlerFunc(a.run), read("playbook.run")))
			mux.Handle("POST /api/v1/playbook-runs/{id}/{action}", a.auth(http.HandlerFunc(a.decide), respond("playbook.decide")))
			mux.Handle("GET /api/v1/playbooks/kill-switch", a.auth(http.HandlerFunc(a.killSwitch), read("playbook.kill-switch")))
			mux.Handle("POST /api/v1/playbooks/kill-switch", a.auth(http.HandlerFunc(a.killSwitch), admin("playbook.kill-switch")))
		}
		mux.Handle("GET /api/v1/alerts/{id}", a.auth(http.HandlerFunc(a.alert), read("alert.read")))
		mux.Handle("POST /api/v1/alerts/{id}/{action}", a.auth(http.HandlerFunc(a.setStatus), work("alert.status")))
		mux.Handle("POST /api/v1/alerts/{id}/assign", a.auth(http.HandlerFunc(a.assign), work("alert.assign")))
		mux.Handle("GET /api/v1/suppressions", a.auth(http.HandlerFunc(a.suppressions), read("suppression.list")))
		mux.Handle("POST /api/v1/suppressions", a.auth(http.HandlerFunc(a.suppress), work("suppression.create")))
		mux.Handle("DELETE /api/v1/suppressions/{id}", a.auth(http.HandlerFunc(a.unsuppress), work("suppression.delete")))
		mux.Handle("GET /api/v1/cases", a.auth(http.HandlerFunc(a.cases), read("case.list")))
		mux.Handle("POST /api/v1/cases", a.auth(http.HandlerFunc(a.openCase), work("case.open")))
		mux.Handle("GET /api/v1/cases/{id}", a.auth(http.HandlerFunc(a.caseDetail), read("case.read")))
		mux.Handle("POST /api/v1/cases/{id}", a.auth(http.HandlerFunc(a.setCase), work("case.update")))
		mux.Handle("POST /api/v1/cases/{id}/timeline", a.auth(http.HandlerFunc(a.addToCase), work("case.add")))
	}
	if opts.Detections != nil {
		mux.Handle("GET /api/v1/detections", a.auth(http.HandlerFunc(a.detections), read("detection.list")))
	}
	if opts.Hunter != nil {
		mux.Handle("POST /api/v1/hunt", a.auth(http.HandlerFunc(a.hunt), route{action: "hunt", perm: access.Hunt}))
	}
	a.ruleRoutes(mux)
	a.searchRoutes(mux)
	if opts.Access != nil {
		a.accessRoutes(mux)
		// The console logs in with the directory's sessions.
		a.consoleRoutes(mux)
		if opts.Exports != nil {
			a.exportRoutes(mux)
		}
	}
	return mux
}

type api struct {
	opts                 Options
	ipLimit, callerLimit *access.Limiter
	badAuth, badLogin    *access.Lockout
	// sections are the console's, as its routes are mounted.
	sections []consoleSection
	// scans holds a slot for each hunt or backtest running: each reads
	// every event of its rules' sources in its range, so a few at once
	// are all a server gives them.
	scans chan struct{}
}

// maxScans bounds the hunts and backtests that run at once.
const maxScans = 2

// startScan takes a slot for a scan of history, and returns the function
// that gives it back; false when every slot is taken.
func (a *api) startScan() (func(), bool) {
	select {
	case a.scans <- struct{}{}:
		return func() { <-a.scans }, true
	default:
		return nil, false
	}
}

// errBusy refuses a scan while others take every slot.
var errBusy = errors.New("other hunts or backtests are running: try again in a moment")

// A DetectionLister reads detections; the query carries the caller's
// tenants, which it must apply.
type DetectionLister interface {
	Detections(ctx context.Context, q meta.DetectionQuery) ([]meta.Detection, error)
}

// search answers GET /api/v1/search?q=&from=&to=&limit=&tenant=&quarantine=.
// who answers GET /api/v1/identities/{ref}?from=&to=&tenant= (ref an
// access key id or an ARN): the chain of credentials back to the
// identity behind it, and the events done under it, in the caller's
// tenants.
func (a *api) who(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	from, to, err := timeRange(v, a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	scope := requestScope(id, v)
	rep, err := a.opts.Who(r.Context(), scope, r.PathValue("ref"), from, to)
	if err != nil {
		a.opts.Logger.Error("reassembling an identity", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reassembling the identity failed"))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// timeRange reads a request's from= and to=, as query.ParseTimeArg
// reads them; a bound not given is zero.
func timeRange(v url.Values, now time.Time) (from, to time.Time, err error) {
	if from, err = query.ParseTimeArg(v.Get("from"), now); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to, err = query.ParseTimeArg(v.Get("to"), now); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	return from, to, nil
}

// requestScope is the caller's scope, narrowed to the tenant a request
// names with tenant=, if it names one: never wider than the caller's.
func requestScope(id Identity, v url.Values) query.Scope {
	if t := v.Get("tenant"); t != "" {
		return id.Scope.Narrow(t)
	}
	return id.Scope
}

// inventory answers GET /api/v1/inventory?q=REF&at=T&tenant=: the assets
// REF (an address, an instance id, an ARN, a name) names, with their
// facts at T (over all time without it), in the caller's tenants.
func (a *api) inventory(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	if v.Get("q") == "" {
		writeError(w, http.StatusBadRequest, errors.New("q: name an address, an instance id, an ARN or a name"))
		return
	}
	at, err := query.ParseTimeArg(v.Get("at"), a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("at: %w", err))
		return
	}
	scope := requestScope(id, v)
	found, err := a.opts.Inventory(r.Context(), scope, v.Get("q"), at)
	if err != nil {
		a.opts.Logger.Error("looking up the inventory", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("looking up the inventory failed"))
		return
	}
	if found == nil {
		found = []inventory.Found{}
	}
	writeJSON(w, http.StatusOK, found)
}

// series answers GET /api/v1/series?metric=NAME&match=LABEL=VALUE&from=&to=:
// the metric's series in the caller's tenants (narrowed by tenant=),
// each with its samples in [from, to) (the last hour by default).
func (a *api) series(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	name := v.Get("metric")
	if name == "" {
		writeError(w, http.StatusBadRequest, errors.New("metric: name the metric"))
		return
	}
	match := map[string]string{}
	for _, m := range v["match"] {
		k, val, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("match %q: want LABEL=VALUE", m))
			return
		}
		match[k] = val
	}
	now := a.opts.Now()
	from, to, err := timeRange(v, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-time.Hour)
	}
	series, err := a.opts.Series(r.Context(), requestScope(id, v), name, match, from, to)
	if err != nil {
		a.opts.Logger.Error("reading series", "metric", name, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reading the series failed"))
		return
	}
	type sample struct {
		Time  time.Time `json:"time"`
		Value float64   `json:"value"`
	}
	type out struct {
		Metric  string            `json:"metric"`
		Labels  map[string]string `json:"labels"`
		Samples []sample          `json:"samples"`
	}
	res := make([]out, 0, len(series))
	for _, s := range series {
		o := out{Metric: s.Metric, Labels: s.Labels.Map(), Samples: make([]sample, len(s.Samples))}
		for i, x := range s.Samples {
			o.Samples[i] = sample{x.Time, x.Value}
		}
		res = append(res, o)
	}
	writeJSON(w, http.StatusOK, res)
}

// coverage answers GET /api/v1/coverage?days=7&tenant=: what the
// caller's tenants sent over the last days, and the rules without data.
func (a *api) coverage(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	days := 7
	if s := v.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 3660 {
			writeError(w, http.StatusBadRequest, errors.New("days: want a number of days, 1 to 3660"))
			return
		}
		days = n
	}
	rep, err := a.opts.Coverage(r.Context(), requestScope(id, v), days)
	if err != nil {
		a.opts.Logger.Error("reporting coverage", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reporting coverage failed"))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *api) search(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	from, to, err := timeRange(v, a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	limit := 100
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			writeError(w, http.StatusBadRequest, errors.New("limit: want a number ≥ 0"))
			return
		}
	}
	if limit == 0 || limit > a.opts.MaxLimit {
		limit = a.opts.MaxLimit
	}
	scope := requestScope(id, v)
	var res *store.Result
	if v.Get("quarantine") != "" {
		res, err = a.opts.Store.SearchQuarantine(r.Context(), v.Get("q"), scope, from, to, limit)
	} else {
		q, perr := query.Parse(v.Get("q"))
		if perr != nil {
			writeError(w, http.StatusBadRequest, perr)
			return
		}
		res, err = a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: scope, From: from, To: to, Limit: limit})
	}
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		a.opts.Logger.Error("search failed", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("search failed"))
		return
	}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// detections answers GET /api/v1/detections?since=-24h&rule=ID&limit=N
// with the detections the caller's tenants may see, newest first.
func (a *api) detections(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	since, err := query.ParseTimeArg(v.Get("since"), a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("since: %w", err))
		return
	}
	limit := 100
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a positive number", s))
			return
		}
	}
	ds, err := a.opts.Detections.Detections(r.Context(), meta.DetectionQuery{
		AllTenants: id.Scope.All, Tenants: id.Scope.Tenants, Since: since, RuleID: v.Get("rule"), Limit: limit,
	})
	if err != nil {
		a.opts.Logger.Error("reading detections", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reading detections failed"))
		return
	}
	if ds == nil {
		ds = []meta.Detection{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ds)
}

// A HuntRequest is the body of POST /api/v1/hunt: rule files (their
// names are for messages only) and whether to add the built-in pack.
type HuntRequest struct {
	Rules   []HuntRule `json:"rules"`
	Builtin bool       `json:"builtin"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	Tenant  string     `json:"tenant"`
}

// Engine compiles the hunt's rules. Any rule that does not load is an
// error: a hunt with rules silently missing would read as "nothing
// found".
func (req *HuntRequest) Engine() (*detect.Engine, error) {
	var (
		rules []*detect.Rule
		errs  []error
	)
	if req.Builtin {
		rs, err := detect.Builtin()
		rules, errs = append(rules, rs...), append(errs, err)
	}
	for _, f := range req.Rules {
		rs, err := detect.Parse(f.File, []byte(f.Content))
		rules, errs = append(rules, rs...), append(errs, err)
	}
	e, err := detect.NewEngine(rules, detect.Options{})
	return e, errors.Join(append(errs, err)...)
}

// A HuntRule is one rule file of a hunt.
type HuntRule struct {
	File    string `json:"file"`
	Content string `json:"content"`
}

// maxHuntBody bounds the rules a hunt sends.
const maxHuntBody = 32 << 20

// hunt answers POST /api/v1/hunt with a line of NDJSON per hit
// (detect.Hit), over the events of the caller's scope in [from, to). A
// rule that does not load makes the hunt a 400 naming it: a hunt with
// rules silently missing would read as "nothing found".
func (a *api) hunt(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var req HuntRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxHuntBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the hunt request: %w", err))
		return
	}
	now := a.opts.Now()
	from, err := query.ParseTimeArg(req.From, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("from: %w", err))
		return
	}
	to, err := query.ParseTimeArg(req.To, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("to: %w", err))
		return
	}
	e, err := req.Engine()
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	scope := id.Scope
	if req.Tenant != "" {
		scope = scope.Narrow(req.Tenant)
	}
	end := to
	if end.IsZero() {
		end = now
	}
	done, ok := a.startScan()
	if !ok {
		tooMany(w, 10*time.Second, errBusy.Error())
		return
	}
	defer done()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	err = detect.HuntStore(r.Context(), e, a.opts.Hunter, query.Request{Scope: scope, From: from, To: to}, end,
		func(h detect.Hit) error { return enc.Encode(h) })
	if err != nil {
		// The lines so far are out: end with an error line the client
		// reports.
		a.opts.Logger.Error("hunt failed", "err", err)
		enc.Encode(map[string]string{"error": "the hunt failed: " + err.Error()})
	}
}

// sources answers GET /api/v1/sources.
func (a *api) sources(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.opts.Sources())
}
