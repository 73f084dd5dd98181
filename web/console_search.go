package web

import (
	"context"
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
	"unicode/utf8"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/web/chart"
)

// defaultColumns are the result table's columns unless columns= names
// others.
var defaultColumns = []string{"time", "tenant", "source", "actor", "action", "outcome", "src_ip", "message"}

// sidebarFields are the fields whose top values the search page lists.
var sidebarFields = []string{"tenant", "source", "action", "actor", "src_ip", "outcome"}

// presets are the time picker's relative ranges.
var presets = []struct{ From, Label string }{
	{"-15m", "15 minutes"}, {"-1h", "1 hour"}, {"-24h", "24 hours"}, {"-7d", "7 days"}, {"-30d", "30 days"},
}

// defaultFrom is the start of a search that names none.
const defaultFrom = "-24h"

// columnName is what a column may be called: a normalized field, or a
// dotted path into the original document.
var columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// The result table's rows, by default and at most.
const (
	defaultRows = 50
	maxRows     = 1000
)

// searchBody is the search page's data.
type searchBody struct {
	Q, From, To, Tenant, Columns string
	Limit                        int
	Presets                      []presetLink
	// QueryError is a mistake in the query, at a column; Error any other
	// failure.
	QueryError *queryError
	Error      string
	// Range says the range searched, in UTC.
	RangeFrom, RangeTo time.Time
	Histogram          template.HTML
	Span               string
	// Table is set for a query whose pipeline makes a table (stats,
	// timechart, fields): its rows are not events.
	Table  bool
	Cols   []string
	Rows   []resultRow
	More   string // the URL of more rows, if there may be more
	Fields []fieldTop
	// Tenants are the tenants the tenant box suggests.
	Tenants []string
	// Earlier is the last match before an empty range, if any.
	Earlier *earlierMatch
	// CSV and NDJSON download the results, up to MaxExport rows; Bundle
	// says whether the server makes evidence bundles.
	CSV, NDJSON string
	MaxExport   int
	Bundle      bool
	// Searches are the caller's saved searches and the shared ones; nil
	// when the server keeps none.
	Searches *savedSearchesBody
}

// An earlierMatch is the last match before the range searched, and the
// search of the week up to it.
type earlierMatch struct {
	Time time.Time
	URL  string
}

type presetLink struct {
	Label, URL string
	Active     bool
}

type queryError struct {
	Column int
	Msg    string
	// Before is the query up to the mistake, for the caret line.
	Before, At, After string
}

type resultRow struct {
	Link  string // the event page, for events
	Cells []cell
}

type cell struct {
	Text string
	Time time.Time // set for a time, which the page shows in UTC with local time on hover
}

type fieldTop struct {
	Name   string
	Values []fieldValue
}

type fieldValue struct {
	Value string
	Count int64
	URL   string
}

// searchParams are a search page's parameters, to build its links.
type searchParams struct {
	q, from, to, tenant, columns string
	limit                        int
}

// url is the search page of p.
func (p searchParams) url() string {
	v := p.values()
	if p.limit != 0 && p.limit != defaultRows {
		v.Set("limit", strconv.Itoa(p.limit))
	}
	return "/?" + v.Encode()
}

// values are the parameters of the search itself: its query, range,
// tenant and columns.
func (p searchParams) values() url.Values {
	v := url.Values{}
	if p.q != "" {
		v.Set("q", p.q)
	}
	v.Set("from", p.from)
	if p.to != "" {
		v.Set("to", p.to)
	}
	if p.tenant != "" {
		v.Set("tenant", p.tenant)
	}
	if p.columns != "" {
		v.Set("columns", p.columns)
	}
	return v
}

// consoleSearch answers GET /?q=&from=&to=&tenant=&columns=&limit=: the
// search page.
func (a *api) consoleSearch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	p := searchParams{q: v.Get("q"), from: defaultFrom, to: v.Get("to"), tenant: v.Get("tenant"), columns: v.Get("columns"), limit: defaultRows}
	if v.Has("from") {
		p.from = v.Get("from")
	}
	if s := v.Get("limit"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			p.limit = min(n, maxRows)
		}
	}
	b := &searchBody{Q: p.q, From: p.from, To: p.to, Tenant: p.tenant, Columns: p.columns, Limit: p.limit, Tenants: tenantChoices(id)}
	for _, pr := range presets {
		l := p
		l.from, l.to = pr.From, ""
		b.Presets = append(b.Presets, presetLink{Label: pr.Label, URL: l.url(), Active: p.from == pr.From && p.to == ""})
	}
	b.CSV, b.NDJSON, b.MaxExport, b.Bundle = p.exportURL("csv"), p.exportURL("ndjson"), maxExportRows, a.opts.Exports != nil
	a.savedSearches(r.Context(), id, b, p, v)
	page := &consolePage{Title: "Search", Nav: "search", Body: b}
	status := http.StatusOK
	defer func() {
		if b.Searches != nil {
			// A search that does not run is not one to save.
			b.Searches.CanSave = b.QueryError == nil && b.Error == ""
		}
		a.render(w, r, status, "search", page)
	}()

	now := a.opts.Now()
	from, to, err := timeRange(url.Values{"from": {p.from}, "to": {p.to}}, now)
	if err != nil {
		b.Error, status = err.Error(), http.StatusBadRequest
		return
	}
	cols, err := parseColumns(p.columns)
	if err != nil {
		b.Error, status = err.Error(), http.StatusBadRequest
		return
	}
	q, err := query.Parse(p.q)
	if err != nil {
		b.QueryError, status = newQueryError(p.q, err), http.StatusBadRequest
		return
	}
	scope := requestScope(id, v)
	ctx := r.Context()
	req := query.Request{Query: q, Scope: scope, From: from, To: to, Limit: p.limit + 1}
	res, err := a.opts.Store.Search(ctx, req)
	if err != nil {
		status = a.searchFailed(b, p.q, err)
		return
	}
	if more := len(res.Rows) > p.limit; more {
		res.Rows = res.Rows[:p.limit]
		if p.limit < maxRows {
			l := p
			l.limit = min(p.limit*2, maxRows)
			b.More = l.url()
		}
	}
	if !res.Events {
		b.Table, b.Cols = true, res.Columns
		for _, row := range res.Rows {
			rr := resultRow{}
			for _, val := range row {
				rr.Cells = append(rr.Cells, cellOf(val))
			}
			b.Rows = append(b.Rows, rr)
		}
		return
	}
	b.Cols = cols
	b.Rows = eventRows(res, cols)
	if len(b.Rows) == 0 && !from.IsZero() {
		// Nothing here is a dead end for someone new to the data (the
		// demo's events are from 2024): say where the matches are.
		last, err := a.matchTime(ctx, p.q, "max", scope, time.Time{}, from)
		if err != nil {
			status = a.searchFailed(b, p.q, err)
			return
		}
		if !last.IsZero() {
			l := p
			l.from, l.to = last.Add(-7*24*time.Hour).UTC().Format(time.RFC3339), last.Add(time.Minute).UTC().Format(time.RFC3339)
			b.Earlier = &earlierMatch{Time: last, URL: l.url()}
		}
	}

	// The histogram over the range; an open start is the first match.
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		if from, err = a.firstMatch(ctx, p.q, scope, to); err != nil {
			status = a.searchFailed(b, p.q, err)
			return
		}
	}
	if !from.IsZero() && from.Before(to) {
		b.RangeFrom, b.RangeTo = from, to
		if err := a.histogram(ctx, b, p, scope, from, to); err != nil {
			status = a.searchFailed(b, p.q, err)
			return
		}
	}
	if err := a.sidebar(ctx, b, p, q, scope, from, to); err != nil {
		status = a.searchFailed(b, p.q, err)
		return
	}
}

// searchFailed says why a search failed on the page, and returns the
// page's status.
func (a *api) searchFailed(b *searchBody, text string, err error) int {
	var qe *query.Error
	if errors.As(err, &qe) {
		b.QueryError = newQueryError(text, err)
		return http.StatusBadRequest
	}
	a.opts.Logger.Error("console search failed", "err", err)
	b.Error = "The search failed."
	return http.StatusInternalServerError
}

func newQueryError(text string, err error) *queryError {
	var qe *query.Error
	if !errors.As(err, &qe) {
		return &queryError{Msg: err.Error()}
	}
	e := &queryError{Column: qe.Column, Msg: qe.Msg}
	pos := min(max(qe.Pos, 0), len(text))
	e.Before = text[:pos]
	if pos < len(text) {
		_, n := utf8.DecodeRuneInString(text[pos:])
		e.At, e.After = text[pos:pos+n], text[pos+n:]
	}
	return e
}

// parseColumns reads columns=: names separated by commas or spaces.
func parseColumns(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return defaultColumns, nil
	}
	var cols []string
	for _, c := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !columnName.MatchString(c) || len(c) > 200 {
			return nil, fmt.Errorf("columns: %q is not a field name", c)
		}
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	if len(cols) > 30 {
		return nil, errors.New("columns: at most 30")
	}
	return cols, nil
}

// tenantChoices are the tenants the caller's roles and grants name.
func tenantChoices(id Identity) []string {
	var ts []string
	for _, b := range id.Bindings {
		if b.Tenant != "" && b.Tenant != "*" {
			ts = append(ts, b.Tenant)
		}
	}
	for _, sh := range id.Shares {
		ts = append(ts, sh.Tenant)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// eventRows makes the table of events, with their columns: normalized
// fields from their columns, anything else from the document.
func eventRows(res *store.Result, cols []string) []resultRow {
	return eventTable(res, cols, true)
}

// eventTable makes the table of events, with long values shortened as
// the page shows them, or whole (for a download).
func eventTable(res *store.Result, cols []string, short bool) []resultRow {
	index := map[string]int{}
	for i, c := range res.Columns {
		index[c] = i
	}
	type source struct {
		col  int // in the result, or -1
		path int // in paths, or -1
	}
	srcs := make([]source, len(cols))
	var paths []string
	for i, c := range cols {
		srcs[i] = source{col: -1, path: -1}
		if f, ok := query.LookupField(c); ok {
			if j, ok := index[f.Column]; ok {
				srcs[i].col = j
				continue
			}
		}
		srcs[i].path = len(paths)
		paths = append(paths, c)
	}
	compiled, err := event.CompilePaths(paths, false)
	if err != nil {
		compiled = nil
	}
	seqCol, hasSeq := index["seq"]
	// The document fields resolve against: doc when it differs from
	// the raw bytes, else those.
	docCol, hasDoc := index["doc"]
	rawCol, hasRaw := index["raw"]
	var rows []resultRow
	for _, row := range res.Rows {
		rr := resultRow{Cells: make([]cell, len(cols))}
		if hasSeq {
			rr.Link = "/events/" + fmt.Sprint(row[seqCol])
		}
		var docVals []string
		if compiled != nil && len(paths) > 0 && (hasDoc || hasRaw) {
			docVals = make([]string, len(paths))
			doc, _ := row[docCol].(string)
			if !hasDoc || doc == "" {
				doc, _ = row[rawCol].(string)
			}
			if doc != "" {
				compiled.Extract([]byte(doc), func(p int, v event.Value) {
					if docVals[p] == "" {
						docVals[p] = v.Str()
					} else {
						docVals[p] += ", " + v.Str()
					}
				})
			}
		}
		for i, s := range srcs {
			switch {
			case s.col >= 0:
				rr.Cells[i] = cellOf(row[s.col])
				if short && cols[i] == "message" {
					rr.Cells[i].Text = shorten(rr.Cells[i].Text, 120)
				}
			case docVals != nil:
				rr.Cells[i] = cell{Text: docVals[s.path]}
				if short {
					rr.Cells[i].Text = shorten(rr.Cells[i].Text, 200)
				}
			}
		}
		rows = append(rows, rr)
	}
	return rows
}

// cellOf renders a result value.
func cellOf(v any) cell {
	switch x := v.(type) {
	case nil:
		return cell{}
	case time.Time:
		return cell{Time: x}
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return cell{Text: strings.Join(parts, ", ")}
	}
	return cell{Text: fmt.Sprint(v)}
}

// shorten cuts s to n runes, with an ellipsis.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// spans are the histogram's bucket lengths, each at most 2.5 times the
// one before, so that a range gets between about 50 and 120 buckets.
var spans = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 4 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
	30 * 24 * time.Hour, 60 * 24 * time.Hour, 120 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// maxBuckets bounds the histogram's buckets.
const maxBuckets = 120

// histogramSpan is the shortest span that cuts d into at most
// maxBuckets buckets.
func histogramSpan(d time.Duration) time.Duration {
	for _, s := range spans {
		if d <= s*maxBuckets {
			return s
		}
	}
	return spans[len(spans)-1]
}

// spanText writes a span as timechart's span= takes it.
func spanText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// withPipe returns the query text followed by a command. The query has
// no pipeline (it is a search of events), so the command applies to its
// matches.
func withPipe(q, pipe string) (*query.Query, error) {
	return query.Parse(q + " | " + pipe)
}

// firstMatch is the time of the query's first match before to, zero if
// none.
func (a *api) firstMatch(ctx context.Context, text string, scope query.Scope, to time.Time) (time.Time, error) {
	return a.matchTime(ctx, text, "min", scope, time.Time{}, to)
}

// matchTime is the time of the query's first ("min") or last ("max")
// match in [from, to), zero if none.
func (a *api) matchTime(ctx context.Context, text, agg string, scope query.Scope, from, to time.Time) (time.Time, error) {
	q, err := withPipe(text, "stats "+agg+"(time) as t")
	if err != nil {
		return time.Time{}, err
	}
	res, err := a.opts.Store.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: 1})
	if err != nil {
		return time.Time{}, err
	}
	if len(res.Rows) == 1 && len(res.Rows[0]) == 1 {
		if t, ok := res.Rows[0][0].(time.Time); ok {
			return t, nil
		}
	}
	return time.Time{}, nil
}

// histogram counts the query's matches over [from, to) in buckets, and
// draws them; each bar zooms the search into its bucket.
func (a *api) histogram(ctx context.Context, b *searchBody, p searchParams, scope query.Scope, from, to time.Time) error {
	span := histogramSpan(to.Sub(from))
	q, err := withPipe(p.q, "timechart span="+spanText(span)+" count()")
	if err != nil {
		return err
	}
	res, err := a.opts.Store.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: maxBuckets * 2})
	if err != nil {
		return err
	}
	counts := map[int64]int64{}
	if len(res.Columns) >= 2 {
		for _, row := range res.Rows {
			t, ok := row[0].(time.Time)
			if !ok {
				continue
			}
			counts[t.Unix()] += toInt64(row[1])
		}
	}
	start := epochFloor(from, span)
	var buckets []chart.Bucket
	for t := start; t.Before(to); t = t.Add(span) {
		buckets = append(buckets, chart.Bucket{Start: t, End: t.Add(span), Count: counts[t.Unix()]})
	}
	b.Span = spanText(span)
	b.Histogram = chart.Histogram(buckets, chart.HistogramOptions{
		Width: 1000, Height: 120, Label: "Matches over time, per " + b.Span,
		Link: func(from, to time.Time) string {
			l := p
			l.from, l.to = from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)
			return l.url()
		},
		Location: time.UTC,
	})
	return nil
}

// epochFloor is the start of the bucket of span holding t, with buckets
// aligned on the Unix epoch, as timechart's are. (time.Truncate aligns
// on the zero Time, in year 1: the same for spans that divide a day, two
// days off for 30 days.)
func epochFloor(t time.Time, span time.Duration) time.Time {
	sec := int64(span / time.Second)
	u := t.Unix()
	u -= (u%sec + sec) % sec
	return time.Unix(u, 0).UTC()
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

// sidebar lists the top values of a few fields among the matches.
func (a *api) sidebar(ctx context.Context, b *searchBody, p searchParams, parsed *query.Query, scope query.Scope, from, to time.Time) error {
	for _, f := range sidebarFields {
		q, err := withPipe(p.q, "stats count() as n by "+f+" | sort -n | head 5")
		if err != nil {
			return err
		}
		res, err := a.opts.Store.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: 5})
		if err != nil {
			var qe *query.Error
			if errors.As(err, &qe) {
				// A field the scope's grants hide: no values to show.
				continue
			}
			return err
		}
		top := fieldTop{Name: f}
		for _, row := range res.Rows {
			if len(row) < 2 || row[0] == nil {
				continue
			}
			val := cellOf(row[0]).Text
			l := p
			l.q, l.limit = addFilter(p.q, parsed, f, val), 0
			top.Values = append(top.Values, fieldValue{Value: val, Count: toInt64(row[1]), URL: l.url()})
		}
		if len(top.Values) > 0 {
			b.Fields = append(b.Fields, top)
		}
	}
	return nil
}

// addFilter adds field:"value" to a query, as a term every match must
// also match.
func addFilter(text string, parsed *query.Query, field, value string) string {
	term := field + `:"` + quoteValue(value) + `"`
	switch {
	case strings.TrimSpace(text) == "":
		return term
	case parsed != nil && isOr(parsed.Filter):
		return "(" + text + ") " + term
	}
	return text + " " + term
}

func isOr(e query.Expr) bool {
	_, ok := e.(*query.Or)
	return ok
}

// quoteValue escapes a value for double quotes, wildcards included, so
// that it matches itself only.
func quoteValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"', '\\', '*', '?':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
