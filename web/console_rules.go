package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/web/chart"
)

// rulesBody is the rules list's data.
type rulesBody struct {
	Q, Origin, State string
	Rules            []RuleInfo
	// Total is how many rules there are before the filters.
	Total int
	// CanChange says the caller may write rules and turn them off.
	CanChange bool
	Notice    string
}

// consoleRuleRoutes mounts the rules pages.
func (a *api) consoleRuleRoutes(mux *http.ServeMux) {
	if a.opts.Rules == nil {
		return
	}
	page := func(action string, perm access.Permission) route {
		return route{action: action, perm: perm, page: true}
	}
	a.addSection("rules", "Rules", "/rules")
	mux.Handle("GET /rules", a.auth(http.HandlerFunc(a.consoleRules), page("console.rule.list", access.Read)))
	mux.Handle("GET /rules/{id}", a.auth(http.HandlerFunc(a.consoleRule), page("console.rule.read", access.Read)))
	mux.Handle("GET /rules/new", a.auth(http.HandlerFunc(a.consoleRuleNew), page("console.rule.edit", access.Hunt)))
	mux.Handle("GET /rules/files/{file}/edit", a.auth(http.HandlerFunc(a.consoleRuleEdit), page("console.rule.edit", access.Hunt)))
	mux.Handle("POST /rules/backtest", a.auth(http.HandlerFunc(a.consoleRuleBacktest), page("rule.backtest", access.Hunt)))
	mux.Handle("POST /rules/save", a.auth(http.HandlerFunc(a.consoleRuleSave), page("rule.change", access.Hunt)))
	mux.Handle("POST /rules/files/{file}/delete", a.auth(http.HandlerFunc(a.consoleRuleDelete), page("rule.change", access.Hunt)))
	mux.Handle("POST /rules/{id}/{action}", a.auth(http.HandlerFunc(a.consoleRuleSwitch), page("rule.change", access.Hunt)))
}

// consoleRules answers GET /rules?q=&origin=&state=: every rule, with its
// hits in the caller's tenants.
func (a *api) consoleRules(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	b := &rulesBody{Q: strings.TrimSpace(v.Get("q")), Origin: v.Get("origin"), State: v.Get("state"), CanChange: mayChangeRules(id) == nil}
	all, err := a.opts.Rules.rules(r.Context(), id.Scope, a.opts.Now())
	if err != nil {
		a.opts.Logger.Error("console: listing rules", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Listing the rules failed.")
		return
	}
	b.Total = len(all)
	q := strings.ToLower(b.Q)
	for _, ri := range all {
		switch {
		case b.Origin != "" && ri.Origin != b.Origin,
			b.State == "on" && (ri.Off != nil || ri.NotRunning != ""),
			b.State == "off" && ri.Off == nil,
			b.State == "hits" && ri.Hits == 0,
			q != "" && !ruleMatches(ri, q):
			continue
		}
		b.Rules = append(b.Rules, ri)
	}
	switch {
	case v.Get("deleted") != "":
		b.Notice = "Deleted the rule file " + v.Get("deleted") + "."
	}
	a.render(w, r, http.StatusOK, "rules", &consolePage{Title: "Rules", Nav: "rules", Body: b})
}

// ruleMatches says whether a rule's id, title, tags or logsource hold q
// (lower case).
func ruleMatches(ri RuleInfo, q string) bool {
	for _, s := range append([]string{ri.ID, ri.Title, ri.Logsource, ri.Level}, ri.Tags...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// ruleBody is a rule page's data.
type ruleBody struct {
	Rule    RuleInfo
	Content string
	// Alerts and Detections link to the rule's alerts and detections.
	Alerts    string
	CanChange bool
	Notice    string
	Error     string
}

// consoleRule answers GET /rules/{id}: a rule, its file, and whether it
// runs.
func (a *api) consoleRule(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	ri, src, err := a.opts.Rules.rule(r.Context(), id.Scope, r.PathValue("id"), a.opts.Now())
	if errors.Is(err, meta.ErrNotFound) {
		a.notFoundPage(w, r, "such rule")
		return
	}
	b := &ruleBody{Rule: ri, Content: src, Alerts: "/alerts?rule=" + url.QueryEscape(ri.ID), CanChange: mayChangeRules(id) == nil}
	if err != nil {
		a.opts.Logger.Error("console: reading a rule", "rule", ri.ID, "err", err)
		b.Error = "The rule's file could not be read."
	}
	switch r.URL.Query().Get("done") {
	case "saved":
		b.Notice = "Saved. The rule runs on every event from now on."
	case "off":
		b.Notice = "Turned off: the rule makes no detections until it is turned on."
	case "on":
		b.Notice = "Turned on."
	}
	if why := r.URL.Query().Get("why"); why != "" {
		b.Error = why
	}
	a.render(w, r, http.StatusOK, "rule", &consolePage{Title: ri.Title, Nav: "rules", Body: b})
}

// consoleRuleSwitch answers POST /rules/{id}/off (reason) and
// /rules/{id}/on.
func (a *api) consoleRuleSwitch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	action := r.PathValue("action")
	if action != "off" && action != "on" {
		a.notFoundPage(w, r, "such action")
		return
	}
	if err := mayChangeRules(id); err != nil {
		a.consoleError(w, r, http.StatusForbidden, err.Error())
		return
	}
	if !a.consoleForm(w, r) {
		return
	}
	ruleID, reason := r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("reason"))
	back := "/rules/" + url.PathEscape(ruleID)
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "rule:"+ruleID, ruleSwitchDetail(ruleID, action == "off", reason)
	err := a.opts.Rules.setOff(r.Context(), ruleID, action == "off", reason, id.Name, a.opts.Now())
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such rule")
		return
	case err != nil && action == "off" && reason == "":
		back += "?why=" + url.QueryEscape("Say why the rule is turned off: the reason is kept with it.")
	case err != nil:
		a.opts.Logger.Error("console: turning a rule off or on", "rule", ruleID, "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Changing the rule failed.")
		return
	default:
		back += "?done=" + action
	}
	seeOther(w, r, back)
}

// editorBody is the rule editor's data.
type editorBody struct {
	// File is the id of the console file being edited; "" for a new one.
	File    string
	Content string
	// Days, or From and To, are the range to backtest over.
	Days     int
	From, To string
	Lint     LintResult
	// Backtest is the result of the last backtest of Content.
	Backtest *Backtest
	Chart    template.HTML
	// Tested is the hash of the content backtested, which a save must
	// carry: a rule is saved only as it was backtested.
	Tested    string
	CanChange bool
	Error     string
	DayChoice []int
}

// ruleTemplate is a new rule's starting point.
const ruleTemplate = `title: 
id: %s
status: experimental
description: |
  What the rule finds, and why it matters.
author: 
tags:
    - attack.
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: iam.amazonaws.com
        eventName: 
    condition: selection
falsepositives:
    - 
level: medium
`

// consoleRuleNew answers GET /rules/new?from=ID: the editor, with a new
// rule or a copy of rule ID's file under new ids.
func (a *api) consoleRuleNew(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	content := fmt.Sprintf(ruleTemplate, newRuleID())
	if from := r.URL.Query().Get("from"); from != "" {
		_, src, err := a.opts.Rules.rule(r.Context(), id.Scope, from, a.opts.Now())
		if err != nil {
			a.notFoundPage(w, r, "such rule")
			return
		}
		content = freshIDs(src)
	}
	a.editor(w, r, http.StatusOK, &editorBody{Content: content, Days: 7})
}

// consoleRuleEdit answers GET /rules/files/{file}/edit: the editor, with
// a rule file written in the console.
func (a *api) consoleRuleEdit(w http.ResponseWriter, r *http.Request) {
	s, err := a.opts.Rules.DB.SavedRule(r.Context(), r.PathValue("file"))
	if errors.Is(err, meta.ErrNotFound) {
		a.notFoundPage(w, r, "such rule file")
		return
	}
	if err != nil {
		a.opts.Logger.Error("console: reading a rule file", "file", r.PathValue("file"), "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the rule file failed.")
		return
	}
	a.editor(w, r, http.StatusOK, &editorBody{File: s.ID, Content: s.Body, Days: 7})
}

// editor renders the editor, with the lint of its content.
func (a *api) editor(w http.ResponseWriter, r *http.Request, status int, b *editorBody) {
	id, _ := IdentityFrom(r.Context())
	b.CanChange = mayChangeRules(id) == nil
	b.DayChoice = []int{1, 7, 30, 90}
	if b.Backtest != nil {
		b.Lint = b.Backtest.Lint
	} else {
		b.Lint, _ = a.opts.Rules.lint(b.Content, b.File)
	}
	title := "New rule"
	if b.File != "" {
		title = "Edit rule " + b.File
	}
	a.render(w, r, status, "rule_edit", &consolePage{Title: title, Nav: "rules", Body: b})
}

// editorForm reads the editor's form: the file, its content and the days
// to backtest.
func editorForm(r *http.Request) (*editorBody, error) {
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("the form could not be read (a rule file is at most %d KiB)", maxRuleBody>>10)
	}
	b := &editorBody{File: r.PostForm.Get("file"), Content: strings.ReplaceAll(r.PostForm.Get("content"), "\r\n", "\n"), Days: 7,
		From: strings.TrimSpace(r.PostForm.Get("from")), To: strings.TrimSpace(r.PostForm.Get("to"))}
	if d := r.PostForm.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxBacktestDays {
			return b, fmt.Errorf("days must be from 1 to %d", maxBacktestDays)
		}
		b.Days = n
	}
	return b, nil
}

// consoleRuleBacktest answers POST /rules/backtest: the editor with what
// its rules would have found over the last days of the caller's events.
func (a *api) consoleRuleBacktest(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	b, err := editorForm(r)
	if b == nil {
		a.consoleError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		b.Error = err.Error()
		a.editor(w, r, http.StatusBadRequest, b)
		return
	}
	if a.opts.Hunter == nil {
		b.Error = "This server keeps no events to backtest on."
		a.editor(w, r, http.StatusOK, b)
		return
	}
	from, to, err := backtestRange(b.Days, b.From, b.To, a.opts.Now())
	if err != nil {
		b.Error = "The backtest's range: " + err.Error()
		a.editor(w, r, http.StatusBadRequest, b)
		return
	}
	done, ok := a.startScan()
	if !ok {
		b.Error = "Other hunts or backtests are running: try again in a moment."
		a.editor(w, r, http.StatusTooManyRequests, b)
		return
	}
	defer done()
	bt, err := a.opts.Rules.backtest(r.Context(), a.opts.Hunter, id.Scope, b.Content, b.File, from, to)
	if err != nil {
		a.opts.Logger.Error("console: backtesting a rule", "err", err)
		b.Error = "The backtest failed: " + err.Error()
		a.editor(w, r, http.StatusOK, b)
		return
	}
	b.Backtest = bt
	if bt.Lint.OK {
		b.Tested = contentHash(b.Content)
		buckets := make([]chart.Bucket, len(bt.Days))
		for i, d := range bt.Days {
			buckets[i] = chart.Bucket{Start: d.Day, End: d.Day.Add(24 * time.Hour), Count: d.Hits}
		}
		b.Chart = chart.Histogram(buckets, chart.HistogramOptions{Width: 1000, Height: 120, Label: "Backtest hits per day", Location: time.UTC})
	}
	auditRecord(r.Context()).Detail = fmt.Sprintf("backtest from %s to %s: %d hits", from.Format(time.RFC3339), to.Format(time.RFC3339), bt.Total)
	a.editor(w, r, http.StatusOK, b)
}

// consoleRuleSave answers POST /rules/save: the rule file is kept, as it
// was backtested, and runs from now on.
func (a *api) consoleRuleSave(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	b, err := editorForm(r)
	if b == nil {
		a.consoleError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if err := mayChangeRules(id); err != nil {
		a.consoleError(w, r, http.StatusForbidden, err.Error())
		return
	}
	if r.PostForm.Get("tested") != contentHash(b.Content) {
		b.Error = "Backtest the rule as it is now before saving it."
		a.editor(w, r, http.StatusConflict, b)
		return
	}
	s, lint, err := a.opts.Rules.save(r.Context(), b.Content, b.File, id.Name, a.opts.Now())
	switch {
	case errors.Is(err, errLint):
		b.Error = "The rule file has errors; it is not saved."
		a.editor(w, r, http.StatusUnprocessableEntity, b)
		return
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such rule file")
		return
	case err != nil:
		a.opts.Logger.Error("console: saving a rule", "err", err)
		b.Error = "Saving the rule failed."
		a.editor(w, r, http.StatusInternalServerError, b)
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "rule-file:"+s.ID, "saved rule file "+s.ID
	seeOther(w, r, "/rules/"+url.PathEscape(lint.Rules[0].ID)+"?done=saved")
}

// consoleRuleDelete answers POST /rules/files/{file}/delete.
func (a *api) consoleRuleDelete(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if err := mayChangeRules(id); err != nil {
		a.consoleError(w, r, http.StatusForbidden, err.Error())
		return
	}
	file := r.PathValue("file")
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "rule-file:"+file, "deleted rule file "+file
	err := a.opts.Rules.remove(r.Context(), file)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "such rule file")
		return
	case err != nil:
		a.opts.Logger.Error("console: deleting a rule file", "file", file, "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Deleting the rule file failed.")
		return
	}
	seeOther(w, r, "/rules?deleted="+url.QueryEscape(file))
}

// contentHash names a rule file's content, to tie a save to its backtest.
func contentHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newRuleID returns a random (version 4) UUID, as Sigma rule ids are.
func newRuleID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// idLine matches a rule's top-level id.
var idLine = regexp.MustCompile(`(?m)^id:[ \t]*['"]?([^'"\s#]+)['"]?[ \t]*$`)

// freshIDs gives each rule of a file a new id, and the references to
// them (in correlations' rules:) the new ones, so that a copy of a file
// can run beside it.
func freshIDs(src string) string {
	olds := slices.Compact(idsOf(src))
	for _, old := range olds {
		src = strings.ReplaceAll(src, old, newRuleID())
	}
	return src
}

func idsOf(src string) []string {
	var out []string
	for _, m := range idLine.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	return out
}
