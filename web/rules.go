package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// RuleBook is the detection rules the server runs, as /api/v1/rules and
// the console's rules pages show and change them: the built-in pack and
// rule files (read only here), the rule files written in the console
// (kept in the metadata database, so that every node runs them), and
// which rules are turned off.
type RuleBook struct {
	DB *meta.DB
	// Running returns the engine running now.
	Running func() *detect.Engine
	// Reload loads the rules again and runs them; it returns once they
	// run, so that a change is in force when its answer is.
	Reload func(ctx context.Context) error
}

// SavedRuleFile is the name the rule file written in the console under
// id goes by, in messages and in the rules' File: the rules pages know
// them by it. No path of a rule file on disk is so named.
func SavedRuleFile(id string) string { return "console:" + id }

// A RuleInfo is a rule as the list shows it.
type RuleInfo struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Level       string   `json:"level,omitempty"`
	Status      string   `json:"status,omitempty"`
	Description string   `json:"description,omitempty"`
	Author      string   `json:"author,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Kind is "detection" or "correlation".
	Kind string `json:"kind"`
	// Origin is "builtin", "file" or "console"; File and Line say where
	// the rule is (for one written in the console, File is "console:"
	// and the id of its file, which SavedFile holds).
	Origin    string `json:"origin"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	SavedFile string `json:"saved_file,omitempty"`
	Logsource string `json:"logsource,omitempty"`
	// Sources are the vigil sources whose events it runs on; none means
	// it sees no events.
	Sources []string `json:"sources"`
	// Off says who turned it off, when and why; nil when it is on.
	Off *meta.RuleSwitch `json:"off,omitempty"`
	// NotRunning says why a rule that loaded does not run (a placeholder
	// without values).
	NotRunning string `json:"not_running,omitempty"`
	// Hits counts the detections in the caller's tenants over the last
	// 30 days; LastMatch is the newest ever.
	Hits      int64     `json:"hits_30d"`
	LastMatch time.Time `json:"last_match,omitzero"`
}

// hitsWindow is the span rule hit counts are over.
const hitsWindow = 30 * 24 * time.Hour

// rules lists the rules the server runs, and those that loaded but do
// not run, by title, with the hits of the tenants scope reads.
func (b *RuleBook) rules(ctx context.Context, scope query.Scope, now time.Time) ([]RuleInfo, error) {
	e := b.Running()
	offs, err := b.DB.RulesOff(ctx)
	if err != nil {
		return nil, err
	}
	off := map[string]*meta.RuleSwitch{}
	for i := range offs {
		off[offs[i].RuleID] = &offs[i]
	}
	recent, err := b.DB.RuleHits(ctx, scope.Tenants, scope.All, now.Add(-hitsWindow))
	if err != nil {
		return nil, err
	}
	ever, err := b.DB.RuleHits(ctx, scope.Tenants, scope.All, time.Time{})
	if err != nil {
		return nil, err
	}
	unmatched := map[*detect.Rule]bool{}
	for _, r := range e.Unmatched() {
		unmatched[r] = true
	}
	info := func(r *detect.Rule) RuleInfo {
		ri := RuleInfo{ID: r.ID, Title: r.Title, Level: r.Level, Status: r.Status, Description: r.Description, Author: r.Author,
			Tags: r.Tags, Kind: "detection", File: r.File, Line: r.Line, Logsource: r.Logsource.String(),
			Off: off[r.ID], Hits: recent[r.ID].Count, LastMatch: ever[r.ID].Last}
		if r.IsCorrelation() {
			ri.Kind = "correlation"
		}
		switch {
		case strings.HasPrefix(r.File, "builtin/"):
			ri.Origin = "builtin"
		case strings.HasPrefix(r.File, SavedRuleFile("")):
			ri.Origin, ri.SavedFile = "console", strings.TrimPrefix(r.File, SavedRuleFile(""))
		default:
			ri.Origin = "file"
		}
		if !unmatched[r] {
			ri.Sources = e.RuleSources(r)
		}
		return ri
	}
	var out []RuleInfo
	for _, r := range e.Rules() {
		// The detection an old-style aggregation counts is the
		// aggregation's own, not a rule anyone wrote.
		if strings.Contains(r.ID, "#") {
			continue
		}
		out = append(out, info(r))
	}
	for _, d := range e.Disabled() {
		ri := info(d.Rule)
		ri.NotRunning = d.Reason
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b RuleInfo) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title)), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// rule returns one rule by id, and the text of the file it is in.
func (b *RuleBook) rule(ctx context.Context, scope query.Scope, id string, now time.Time) (RuleInfo, string, error) {
	rs, err := b.rules(ctx, scope, now)
	if err != nil {
		return RuleInfo{}, "", err
	}
	i := slices.IndexFunc(rs, func(r RuleInfo) bool { return r.ID == id })
	if i < 0 {
		return RuleInfo{}, "", meta.ErrNotFound
	}
	r := rs[i]
	var src []byte
	switch r.Origin {
	case "builtin":
		src, err = detect.BuiltinFile(r.File)
	case "console":
		var s meta.SavedRule
		s, err = b.DB.SavedRule(ctx, r.SavedFile)
		src = []byte(s.Body)
	default:
		// A file the server's configuration names: the operator's, which
		// the server reads already.
		src, err = os.ReadFile(r.File)
	}
	if err != nil {
		return r, "", fmt.Errorf("reading the file of rule %s: %w", id, err)
	}
	return r, string(src), nil
}

// A LintProblem is one thing wrong with a rule file: an error keeps it
// from being saved; a warning does not.
type LintProblem struct {
	Line     int    `json:"line,omitempty"`
	Severity string `json:"severity"` // "error" or "warning"
	Rule     string `json:"rule,omitempty"`
	Message  string `json:"message"`
}

// A LintResult is what linting a rule file found.
type LintResult struct {
	// Rules are the rules the file holds.
	Rules    []LintedRule  `json:"rules"`
	Problems []LintProblem `json:"problems"`
	// OK is true when nothing keeps the file from being saved.
	OK bool `json:"ok"`
}

// A LintedRule is a rule of a linted file.
type LintedRule struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
}

// maxRuleBody bounds a rule file sent to lint, backtest or save: a
// Sigma rule is a few kilobytes, and the console's form must hold it
// URL-encoded (maxFormBody).
const maxRuleBody = 32 << 10

// lint checks a rule file as it would run beside the rules running now:
// that it parses and compiles, that its ids are its own, and that the
// rules it correlates exist. saved is the id of the console file it
// would replace ("" for a new one), whose rules' ids it may reuse. It
// returns the engine that runs the file's rules (with the running rules
// they correlate), nil when there are errors.
func (b *RuleBook) lint(content, saved string) (LintResult, *detect.Engine) {
	res := LintResult{Rules: []LintedRule{}, Problems: []LintProblem{}}
	file := SavedRuleFile(cmp.Or(saved, "new"))
	problem := func(sev string, err error) {
		p := LintProblem{Severity: sev, Message: err.Error()}
		var re *detect.Error
		if errors.As(err, &re) {
			p.Line, p.Rule, p.Message = re.Line, re.Rule, re.Err.Error()
		}
		res.Problems = append(res.Problems, p)
	}
	if strings.TrimSpace(content) == "" {
		problem("error", errors.New("the file is empty: write a Sigma rule"))
		return res, nil
	}
	if len(content) > maxRuleBody {
		problem("error", fmt.Errorf("the file is larger than %d KiB", maxRuleBody>>10))
		return res, nil
	}
	if !utf8.ValidString(content) || strings.ContainsRune(content, 0) {
		problem("error", errors.New("the file is not UTF-8 text"))
		return res, nil
	}
	rules, err := detect.Parse(file, []byte(content))
	for _, err := range unjoinErrors(err) {
		problem("error", err)
	}
	running := b.Running()
	own := map[string]bool{}
	for _, r := range rules {
		kind := "detection"
		if r.IsCorrelation() {
			kind = "correlation"
		}
		res.Rules = append(res.Rules, LintedRule{ID: r.ID, Title: r.Title, Kind: kind})
		if r.ID == "" {
			problem("error", &detect.Error{Line: r.Line, Rule: r.Title, Err: errors.New("a rule kept by vigil needs an id (a UUID), by which its detections and alerts are counted")})
			continue
		}
		own[r.ID], own[r.Name] = true, r.Name != ""
		if prev := running.Rule(r.ID); prev != nil && prev.File != file {
			problem("error", &detect.Error{Line: r.Line, Rule: r.ID, Err: fmt.Errorf("id already used by %s:%d", prev.File, prev.Line)})
		}
	}
	if len(rules) == 0 && len(res.Problems) == 0 {
		problem("error", errors.New("the file holds no rule"))
	}
	// The rules the file's correlations count, when the file does not
	// define them, are the running ones.
	all := append([]*detect.Rule(nil), rules...)
	var need []string
	for _, r := range rules {
		if c := r.Correlation(); c != nil {
			need = append(need, c.Rules...)
		}
	}
	for len(need) > 0 {
		ref := need[0]
		need = need[1:]
		if own[ref] {
			continue
		}
		own[ref] = true
		if r := running.Rule(ref); r != nil && r.File != file {
			all = append(all, r)
			if c := r.Correlation(); c != nil {
				need = append(need, c.Rules...)
			}
		}
	}
	e, err := detect.NewEngine(all, detect.Options{})
	for _, err := range unjoinErrors(err) {
		problem("error", err)
	}
	for _, d := range e.Disabled() {
		problem("warning", &detect.Error{Line: d.Line, Rule: d.Rule.ID, Err: fmt.Errorf("will not run: %s", d.Reason)})
	}
	for _, r := range e.Unmatched() {
		problem("warning", &detect.Error{Line: r.Line, Rule: r.ID, Err: fmt.Errorf("logsource %q: no vigil source produces these logs, so the rule sees no events", r.Logsource.String())})
	}
	res.OK = !slices.ContainsFunc(res.Problems, func(p LintProblem) bool { return p.Severity == "error" })
	slices.SortStableFunc(res.Problems, func(a, b LintProblem) int { return a.Line - b.Line })
	if !res.OK {
		return res, nil
	}
	return res, e
}

// unjoinErrors returns the errors joined in err, one level deep for each
// join.
func unjoinErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoinErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// A Backtest is what a rule file would have found in a range of the
// caller's events.
type Backtest struct {
	Lint LintResult `json:"lint"`
	From time.Time  `json:"from"`
	To   time.Time  `json:"to"`
	// Hits counts the matching events by rule id (a correlation's, under
	// its id, are the events behind its matches); Total is their sum.
	Hits  map[string]int64 `json:"hits"`
	Total int64            `json:"total"`
	// Days counts the hits of the file's rules by day (UTC), oldest
	// first, one entry per day of the range.
	Days []BacktestDay `json:"days"`
	// Sample are the newest hits, at most maxBacktestSample.
	Sample []detect.Hit `json:"sample"`
	// Tenants counts the hits by tenant.
	Tenants map[string]int64 `json:"tenants"`
	// Seconds is how long the backtest took.
	Seconds float64 `json:"seconds"`
}

// A BacktestDay is one day of a backtest.
type BacktestDay struct {
	Day  time.Time `json:"day"`
	Hits int64     `json:"hits"`
}

const (
	maxBacktestDays   = 90
	maxBacktestSample = 100
	// backtestTimeout bounds a backtest: it scans the events of the
	// rules' sources, and a console waits for it.
	backtestTimeout = 2 * time.Minute
)

// backtestRange is the range a backtest runs over: [from, to) when from
// is given (to defaults to now), else the last days before now, from the
// start of the first (UTC). It may span maxBacktestDays at most.
func backtestRange(days int, from, to string, now time.Time) (time.Time, time.Time, error) {
	now = now.UTC()
	if from == "" {
		if days < 1 || days > maxBacktestDays {
			return time.Time{}, time.Time{}, fmt.Errorf("days must be from 1 to %d", maxBacktestDays)
		}
		return now.Truncate(24*time.Hour).AddDate(0, 0, -(days - 1)), now, nil
	}
	f, err := query.ParseTimeArg(from, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("from: %w", err)
	}
	t := now
	if to != "" {
		if t, err = query.ParseTimeArg(to, now); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("to: %w", err)
		}
	}
	switch {
	case !t.After(f):
		return time.Time{}, time.Time{}, errors.New("the range ends before it starts")
	case t.Sub(f) > maxBacktestDays*24*time.Hour:
		return time.Time{}, time.Time{}, fmt.Errorf("the range is longer than %d days", maxBacktestDays)
	}
	return f.UTC(), t.UTC(), nil
}

// backtest runs a rule file over the events scope reads in [from, to).
// A file with errors is not run: the result says why.
func (b *RuleBook) backtest(ctx context.Context, s detect.Scanner, scope query.Scope, content, saved string, from, to time.Time) (*Backtest, error) {
	lint, e := b.lint(content, saved)
	bt := &Backtest{Lint: lint, From: from, To: to, Hits: map[string]int64{}, Tenants: map[string]int64{}, Sample: []detect.Hit{}}
	day0 := from.Truncate(24 * time.Hour)
	for d := day0; d.Before(to); d = d.AddDate(0, 0, 1) {
		bt.Days = append(bt.Days, BacktestDay{Day: d})
	}
	if e == nil {
		return bt, nil
	}
	mine := map[string]bool{}
	for _, r := range lint.Rules {
		mine[r.ID] = true
	}
	ctx, cancel := context.WithTimeout(ctx, backtestTimeout)
	defer cancel()
	start := time.Now()
	err := detect.HuntStore(ctx, e, s, query.Request{Scope: scope, From: bt.From, To: bt.To}, bt.To, func(h detect.Hit) error {
		// A correlated rule brought in from the running set counts in
		// the correlation's hits, not as hits of its own.
		if !mine[h.RuleID] {
			return nil
		}
		bt.Hits[h.RuleID]++
		bt.Total++
		bt.Tenants[h.Tenant]++
		if i := int(h.Time.UTC().Sub(day0) / (24 * time.Hour)); i >= 0 && i < len(bt.Days) {
			bt.Days[i].Hits++
		}
		bt.Sample = append(bt.Sample, h)
		if len(bt.Sample) > 2*maxBacktestSample {
			bt.Sample = newest(bt.Sample, maxBacktestSample)
		}
		return nil
	})
	bt.Seconds = time.Since(start).Seconds()
	bt.Sample = newest(bt.Sample, maxBacktestSample)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("the backtest took longer than %s: try a shorter range", backtestTimeout)
	}
	return bt, err
}

// newest returns the n newest hits, newest first.
func newest(hs []detect.Hit, n int) []detect.Hit {
	slices.SortStableFunc(hs, func(a, b detect.Hit) int { return b.Time.Compare(a.Time) })
	return hs[:min(n, len(hs))]
}

// errRulesEveryTenant refuses a change to the rules to a caller who does
// not hunt in every tenant: rules run on every tenant's events.
var errRulesEveryTenant = errors.New("rules run on every tenant's events: changing them takes an analyst or administrator of every tenant")

// mayChangeRules says whether id may write, delete, or turn rules off
// and on.
func mayChangeRules(id Identity) error {
	if !id.Identity.Scope(access.Hunt).All {
		return errRulesEveryTenant
	}
	return nil
}

// save lints and keeps a rule file, then reloads the rules; saved is the
// id of the console file it replaces, "" for a new one, which goes by the
// id of its first rule.
func (b *RuleBook) save(ctx context.Context, content, saved, by string, now time.Time) (meta.SavedRule, LintResult, error) {
	if saved != "" {
		if _, err := b.DB.SavedRule(ctx, saved); err != nil {
			return meta.SavedRule{}, LintResult{}, err
		}
	}
	lint, e := b.lint(content, saved)
	if e == nil {
		return meta.SavedRule{}, lint, errLint
	}
	fileID := cmp.Or(saved, lint.Rules[0].ID)
	s, err := b.DB.SaveRule(ctx, meta.SavedRule{ID: fileID, Title: lint.Rules[0].Title, Body: content,
		Created: now, CreatedBy: by, Updated: now, UpdatedBy: by})
	if err != nil {
		return s, lint, err
	}
	return s, lint, b.Reload(ctx)
}

// errLint refuses to save a file with errors.
var errLint = errors.New("the rule file has errors")

// setOff turns a running rule off (reason given) or on, then reloads.
func (b *RuleBook) setOff(ctx context.Context, ruleID string, off bool, reason, by string, now time.Time) error {
	e := b.Running()
	r := e.Rule(ruleID)
	if r == nil && !slices.ContainsFunc(e.Disabled(), func(d detect.Disabled) bool { return d.Rule.ID == ruleID }) {
		return meta.ErrNotFound
	}
	var err error
	if off {
		if strings.TrimSpace(reason) == "" {
			return errors.New("say why the rule is turned off: the reason is kept with it")
		}
		err = b.DB.TurnRuleOff(ctx, meta.RuleSwitch{RuleID: ruleID, Reason: reason, By: by, At: now})
	} else {
		err = b.DB.TurnRuleOn(ctx, ruleID)
	}
	if err != nil {
		return err
	}
	return b.Reload(ctx)
}

// remove deletes a rule file written in the console, then reloads.
func (b *RuleBook) remove(ctx context.Context, saved string) error {
	if err := b.DB.DeleteRule(ctx, saved); err != nil {
		return err
	}
	return b.Reload(ctx)
}

// ruleRoutes mounts /api/v1/rules.
func (a *api) ruleRoutes(mux *http.ServeMux) {
	if a.opts.Rules == nil {
		return
	}
	read := route{action: "rule.read", perm: access.Read}
	mux.Handle("GET /api/v1/rules", a.auth(http.HandlerFunc(a.listRules), read))
	mux.Handle("GET /api/v1/rules/{id}", a.auth(http.HandlerFunc(a.getRule), read))
	mux.Handle("POST /api/v1/rules/lint", a.auth(http.HandlerFunc(a.lintRule), route{action: "rule.lint", perm: access.Read}))
	mux.Handle("POST /api/v1/rules/backtest", a.auth(http.HandlerFunc(a.backtestRule), route{action: "rule.backtest", perm: access.Hunt}))
	change := route{action: "rule.change", perm: access.Hunt}
	mux.Handle("POST /api/v1/rules", a.auth(http.HandlerFunc(a.saveRule), change))
	mux.Handle("PUT /api/v1/rules/files/{file}", a.auth(http.HandlerFunc(a.saveRule), change))
	mux.Handle("DELETE /api/v1/rules/files/{file}", a.auth(http.HandlerFunc(a.deleteRule), change))
	mux.Handle("POST /api/v1/rules/{id}/off", a.auth(http.HandlerFunc(a.switchRule(true)), change))
	mux.Handle("POST /api/v1/rules/{id}/on", a.auth(http.HandlerFunc(a.switchRule(false)), change))
}

// A RuleRequest is the body of the rule endpoints that take a rule file.
type RuleRequest struct {
	Content string `json:"content"`
	// Days, or From and To (absolute, or relative as "-24h"), are the
	// range a backtest runs over; the default is the last 7 days.
	Days int    `json:"days,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reason is why a rule is turned off.
	Reason string `json:"reason,omitempty"`
}

func readRuleRequest(w http.ResponseWriter, r *http.Request) (RuleRequest, bool) {
	var req RuleRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*maxRuleBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err))
		return req, false
	}
	return req, true
}

func (a *api) listRules(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	rs, err := a.opts.Rules.rules(r.Context(), id.Scope, a.opts.Now())
	if err != nil {
		a.internalError(w, "listing rules", err)
		return
	}
	writeJSON(w, http.StatusOK, rs)
}

func (a *api) getRule(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ri, src, err := a.opts.Rules.rule(r.Context(), id.Scope, r.PathValue("id"), a.opts.Now())
	if errors.Is(err, meta.ErrNotFound) {
		writeError(w, http.StatusNotFound, errors.New("no such rule"))
		return
	}
	if err != nil {
		a.internalError(w, "reading a rule", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		RuleInfo
		Content string `json:"content"`
	}{ri, src})
}

func (a *api) lintRule(w http.ResponseWriter, r *http.Request) {
	req, ok := readRuleRequest(w, r)
	if !ok {
		return
	}
	res, _ := a.opts.Rules.lint(req.Content, r.URL.Query().Get("file"))
	writeJSON(w, http.StatusOK, res)
}

func (a *api) backtestRule(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	req, ok := readRuleRequest(w, r)
	if !ok {
		return
	}
	if a.opts.Hunter == nil {
		writeError(w, http.StatusNotFound, errors.New("this server keeps no events to backtest on"))
		return
	}
	from, to, err := backtestRange(cmp.Or(req.Days, 7), req.From, req.To, a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("backtest: %w", err))
		return
	}
	done, ok := a.startScan()
	if !ok {
		tooMany(w, 10*time.Second, errBusy.Error())
		return
	}
	defer done()
	bt, err := a.opts.Rules.backtest(r.Context(), a.opts.Hunter, id.Scope, req.Content, r.URL.Query().Get("file"), from, to)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("backtest: %w", err))
		return
	}
	status := http.StatusOK
	if !bt.Lint.OK {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, bt)
}

func (a *api) saveRule(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if err := mayChangeRules(id); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	req, ok := readRuleRequest(w, r)
	if !ok {
		return
	}
	s, lint, err := a.opts.Rules.save(r.Context(), req.Content, r.PathValue("file"), id.Name, a.opts.Now())
	switch {
	case errors.Is(err, errLint):
		writeJSON(w, http.StatusUnprocessableEntity, lint)
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such rule file"))
	case err != nil:
		a.internalError(w, "saving a rule", err)
	default:
		auditRecord(r.Context()).Detail = "saved rule file " + s.ID
		writeJSON(w, http.StatusOK, struct {
			File  string     `json:"file"`
			Lint  LintResult `json:"lint"`
			Saved time.Time  `json:"saved"`
		}{s.ID, lint, s.Updated})
	}
}

func (a *api) deleteRule(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if err := mayChangeRules(id); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	err := a.opts.Rules.remove(r.Context(), r.PathValue("file"))
	switch {
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such rule file"))
	case err != nil:
		a.internalError(w, "deleting a rule file", err)
	default:
		auditRecord(r.Context()).Detail = "deleted rule file " + r.PathValue("file")
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *api) switchRule(off bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		if err := mayChangeRules(id); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		var req RuleRequest
		if off {
			if req, _ = readRuleRequest(w, r); req.Reason == "" {
				writeError(w, http.StatusBadRequest, errors.New(`say why the rule is turned off: {"reason": "…"}`))
				return
			}
		}
		err := a.opts.Rules.setOff(r.Context(), r.PathValue("id"), off, req.Reason, id.Name, a.opts.Now())
		switch {
		case errors.Is(err, meta.ErrNotFound):
			writeError(w, http.StatusNotFound, errors.New("no such rule"))
		case err != nil:
			a.internalError(w, "turning a rule off or on", err)
		default:
			auditRecord(r.Context()).Detail = ruleSwitchDetail(r.PathValue("id"), off, req.Reason)
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// ruleSwitchDetail is what the audit trail says of a rule turned off or
// on.
func ruleSwitchDetail(ruleID string, off bool, reason string) string {
	if off {
		return "turned rule " + ruleID + " off: " + reason
	}
	return "turned rule " + ruleID + " on"
}

// internalError answers a failure of the server's own, which is logged;
// the caller learns only what failed.
func (a *api) internalError(w http.ResponseWriter, what string, err error) {
	a.opts.Logger.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, errors.New(what+" failed"))
}
