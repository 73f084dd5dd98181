package web

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
)

// The search page's exports: its results as CSV or NDJSON, and an
// evidence bundle of its query and range.

// maxExportRows bounds a download of a search's results.
const maxExportRows = 100_000

// exportURL is the URL of the download of a search's results in format
// (csv, ndjson): the same query, range, tenant and columns, no limit.
func (p searchParams) exportURL(format string) string {
	return "/search." + format + "?" + p.values().Encode()
}

// consoleSearchDownload answers GET /search.csv and /search.ndjson
// ?q=&from=&to=&tenant=&columns=: the search page's results, in the
// caller's scope, up to maxExportRows rows, whole.
func (a *api) consoleSearchDownload(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		v := r.URL.Query()
		from := defaultFrom
		if v.Has("from") {
			from = v.Get("from")
		}
		now := a.opts.Now()
		start, end, err := timeRange(url.Values{"from": {from}, "to": {v.Get("to")}}, now)
		if err != nil {
			a.consoleError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		cols, err := parseColumns(v.Get("columns"))
		if err != nil {
			a.consoleError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		q, err := query.Parse(v.Get("q"))
		if err != nil {
			a.consoleError(w, r, http.StatusBadRequest, "The query: "+err.Error())
			return
		}
		res, err := a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: requestScope(id, v), From: start, To: end, Limit: maxExportRows})
		if err != nil {
			var qe *query.Error
			if errors.As(err, &qe) {
				a.consoleError(w, r, http.StatusBadRequest, "The query: "+err.Error())
				return
			}
			a.opts.Logger.Error("console search download failed", "err", err)
			a.consoleError(w, r, http.StatusInternalServerError, "The search failed.")
			return
		}
		var rows []resultRow
		if res.Events {
			rows = eventTable(res, cols, false)
		} else {
			cols = res.Columns
			for _, row := range res.Rows {
				rr := resultRow{}
				for _, val := range row {
					rr.Cells = append(rr.Cells, cellOf(val))
				}
				rows = append(rows, rr)
			}
		}
		capped := len(rows) >= maxExportRows
		rec := auditRecord(r.Context())
		rec.Detail = fmt.Sprintf("%s, %d rows: %s", format, len(rows), rec.Detail)
		if capped {
			rec.Detail = "capped at " + rec.Detail
		}

		h := w.Header()
		name := "vigil-search-" + now.UTC().Format("20060102T150405Z") + "." + format
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		if capped {
			// There may be more rows than a download holds.
			h.Set("X-Vigil-Truncated", strconv.Itoa(maxExportRows))
		}
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		if format == "csv" {
			h.Set("Content-Type", "text/csv; charset=utf-8")
			writeCSV(bw, cols, rows)
			return
		}
		h.Set("Content-Type", "application/x-ndjson")
		writeNDJSON(bw, cols, rows)
	}
}

// exportText is a cell's value in a download: a time as the page shows
// it, anything else whole.
func exportText(c cell) string {
	if !c.Time.IsZero() {
		return c.Time.UTC().Format("2006-01-02 15:04:05Z")
	}
	return c.Text
}

// writeCSV writes a header row of the columns, then the rows, each cell
// neutralized against formula injection.
func writeCSV(w *bufio.Writer, cols []string, rows []resultRow) {
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = csvSafe(c)
	}
	cw.Write(rec)
	for _, row := range rows {
		rec = rec[:0]
		for _, c := range row.Cells {
			rec = append(rec, csvSafe(exportText(c)))
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula: one that
// begins with =, +, -, @, a tab or a carriage return gets a leading '
// (OWASP's advice on CSV injection). A number is left alone: it cannot
// be a formula.
func csvSafe(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return "'" + s
}

// writeNDJSON writes a JSON object per row, its keys the columns in
// order; an empty cell is null.
func writeNDJSON(w *bufio.Writer, cols []string, rows []resultRow) {
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		keys[i], _ = json.Marshal(c)
	}
	for _, row := range rows {
		w.WriteByte('{')
		for i, c := range row.Cells {
			if i > 0 {
				w.WriteByte(',')
			}
			w.Write(keys[i])
			w.WriteByte(':')
			switch {
			case !c.Time.IsZero():
				b, _ := json.Marshal(c.Time.UTC().Format(time.RFC3339Nano))
				w.Write(b)
			case c.Text == "":
				w.WriteString("null")
			default:
				b, _ := json.Marshal(c.Text)
				w.Write(b)
			}
		}
		w.WriteString("}\n")
	}
}

// exportBody is the page of an evidence bundle made from the search
// page.
type exportBody struct {
	Error  string
	Export *exportAnswer
	// Link is the bundle's link, absolute.
	Link string
	// Search is the search page the bundle was made from.
	Search string
}

// consoleExport answers the search page's evidence bundle form (POST
// /exports: q, from, to, tenant, reason, hours), making the export as
// POST /api/v1/exports does, and shows its link.
func (a *api) consoleExport(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if !a.consoleForm(w, r) {
		return
	}
	f := r.PostForm
	p := searchParams{q: f.Get("q"), from: f.Get("from"), to: f.Get("to"), tenant: f.Get("tenant"), columns: f.Get("columns")}
	b := &exportBody{Search: p.url()}
	page := &consolePage{Title: "Evidence bundle", Nav: "search", Body: b}
	hours := 0
	if s := strings.TrimSpace(f.Get("hours")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Error = "hours: a number of hours"
			a.render(w, r, http.StatusBadRequest, "search_export", page)
			return
		}
		hours = n
	}
	ans, xerr := a.makeExport(r.Context(), id, exportParams{Query: p.q, From: p.from, To: p.to, Tenant: p.tenant, Reason: f.Get("reason"), Hours: hours})
	if xerr != nil {
		b.Error = xerr.Error()
		a.render(w, r, xerr.status, "search_export", page)
		return
	}
	b.Export = &ans
	b.Link = absoluteURL(r, ans.Link)
	a.render(w, r, http.StatusCreated, "search_export", page)
}

// absoluteURL is a path of this server as a URL, on the host the
// request came to.
func absoluteURL(r *http.Request, path string) string {
	if path == "" {
		return ""
	}
	scheme := "https"
	if r.TLS == nil && (strings.HasPrefix(r.Host, "localhost") || strings.HasPrefix(r.Host, "127.0.0.1")) {
		scheme = "http"
	}
	return scheme + "://" + r.Host + path
}
