package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/store/duckdb"
)

// Payloads that would run script if a page wrote them unescaped.
const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(1)>`
	xssURL    = `javascript:alert(1)`
)

// consoleWorld is the API over a real store, ledger, directory and alert
// layer, holding events full of payloads in team-a and a secret in
// team-b, with alice (analyst of team-a) and bob (viewer of team-b).
type consoleWorld struct {
	t       *testing.T
	h       http.Handler
	alerts  *alert.Manager
	seqA    uint64 // team-a's payload event
	seqB    uint64 // team-b's event
	alertA  string
	alertB  string
	mu      sync.Mutex
	records []access.Record
}

func newConsoleWorld(t *testing.T) *consoleWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	mdb, directory, _ := newTestDirectory(t, dir, "", consoleTeams...)
	l, vkey, db := openLedgerStore(t, dir)

	now := time.Now().UTC()
	raw := `{"eventName":"` + strings.ReplaceAll(xssScript, `/`, `\/`) + `","userAgent":"\"><img src=x onerror=alert(1)>","link":"javascript:alert(1)","eventSource":"x.amazonaws.com"}`
	evs := []*event.Event{
		{Time: now.Add(-2 * time.Hour), Received: now, Tenant: "team-a", Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: xssAttr, ID: xssURL}, Action: xssScript, UserAgent: xssAttr, Message: xssScript + " " + xssURL,
			Resources: []string{xssURL, xssScript}, SrcIP: netip.MustParseAddr("203.0.113.7"), Outcome: event.Outcome{Result: "success"},
			Raw: []byte(raw)},
		{Time: now.Add(-90 * time.Minute), Received: now, Tenant: "team-a", Source: "json", Class: "api_activity",
			Actor: event.Actor{Name: "alice"}, Action: "GetObject", Raw: []byte(`{"ok":true}`)},
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

	var err error
	if w.alerts, err = alert.NewManager(ctx, mdb, alert.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	w.alerts.OnNew = func(as []meta.Alert, _ []*event.Event) {
		for _, a := range as {
			ids[a.Tenant] = a.ID
		}
	}
	rule := &detect.Rule{ID: "xss-rule", Title: "Rule " + xssScript, Level: "high"}
	w.alerts.Detected([]detect.Detection{{Rule: rule, Event: evs[0]}, {Rule: rule, Event: evs[2]}})
	w.alertA, w.alertB = ids["team-a"], ids["team-b"]
	if w.alertA == "" || w.alertB == "" {
		t.Fatalf("alerts: %v", ids)
	}

	w.h = Handler(Options{Store: db, Ledger: l, LedgerKey: vkey, Access: directory, Alerts: w.alerts,
		AdminToken: "admin-secret", Gatherer: prometheus.NewRegistry(),
		Audit: func(_ context.Context, r *access.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.records = append(w.records, *r)
			return nil
		}})
	return w
}

// A consolePerson is a user of a test world: a password of
// "correct horse battery NAME", and a role in a tenant.
type consolePerson struct {
	name, tenant string
	role         access.Role
}

// consoleTeams are the two users most tests need: alice, analyst of
// team-a, and bob, viewer of team-b.
var consoleTeams = []consolePerson{{"alice", "team-a", access.Analyst}, {"bob", "team-b", access.Viewer}}

// newTestDirectory opens a metadata database in dir, closed when the
// test ends, with a directory of people (display is their display
// name), and returns the people's ids by name.
func newTestDirectory(t *testing.T, dir, display string, people ...consolePerson) (*meta.DB, *access.Directory, map[string]string) {
	t.Helper()
	ctx := context.Background()
	mdb, err := meta.Open(ctx, filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mdb.Close() })
	directory := access.NewDirectory(mdb, access.Options{})
	ids := map[string]string{}
	for _, p := range people {
		pr, err := directory.CreatePrincipal(ctx, p.name, access.User, display)
		if err != nil {
			t.Fatal(err)
		}
		if err := directory.SetPassword(ctx, pr.ID, "correct horse battery "+p.name); err != nil {
			t.Fatal(err)
		}
		if err := directory.Bind(ctx, access.PrincipalSubject(pr.ID), access.Binding{Role: p.role, Tenant: p.tenant}); err != nil {
			t.Fatal(err)
		}
		ids[p.name] = pr.ID
	}
	return mdb, directory, ids
}

// openLedgerStore opens a signed ledger and a store in dir, closed when
// the test ends, and returns the ledger's public key too.
func openLedgerStore(t *testing.T, dir string) (*ledger.Ledger, string, *duckdb.DB) {
	t.Helper()
	signer, _, vkey, err := ledger.LoadOrCreateKey(filepath.Join(dir, "key"), "vigil")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Signer: signer, Name: "vigil"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return l, vkey, db
}

// do sends a request with the session cookie, if any, and a form body,
// if any.
func (w *consoleWorld) do(method, path, session string, form url.Values, header ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		checkPageHeaders(w.t, method+" "+path, rec)
	}
	return rec
}

func checkPageHeaders(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	for k, want := range map[string]string{
		"Content-Security-Policy": consoleCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s: %q, want %q", what, k, got, want)
		}
	}
	if strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Errorf("%s: the CSP allows inline code", what)
	}
}

// login logs name in through the login form and returns the session.
func (w *consoleWorld) login(name string) string {
	w.t.Helper()
	rec := w.do("POST", "/login", "", url.Values{"name": {name}, "password": {"correct horse battery " + name}, "return": {"/alerts"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/alerts" {
		w.t.Fatalf("login %s: %d %s %s", name, rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				w.t.Errorf("session cookie %+v", c)
			}
			return c.Value
		}
	}
	w.t.Fatalf("login %s: no session cookie", name)
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page's forms.
func (w *consoleWorld) csrf(session string) string {
	w.t.Helper()
	m := csrfField.FindStringSubmatch(w.do("GET", "/alerts", session, nil).Body.String())
	if m == nil {
		w.t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

// assertEscaped checks a page shows the payloads only as text.
func assertEscaped(t *testing.T, what, body string) {
	t.Helper()
	for _, bad := range []string{"<script>alert", "<img src=x", "onerror=alert(1)>", `href="javascript:`, `src="javascript:`} {
		if strings.Contains(body, bad) {
			t.Errorf("%s: the page holds %q unescaped", what, bad)
		}
	}
	// Scripts come from files of this origin only.
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !regexp.MustCompile(`^<script src="/static/[a-z]+\.js\?v=[0-9a-f]+"( defer)?>$`).MatchString(m) {
			t.Errorf("%s: a script that is not one of the console's files: %s", what, m)
		}
	}
	if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("%s: inline styles, which the CSP refuses", what)
	}
}

func TestConsoleLogin(t *testing.T) {
	w := newConsoleWorld(t)
	// Without a session, pages go to the login page, which returns.
	for _, path := range []string{"/", "/?q=action:x&from=-1h", "/events/1", "/alerts", "/alerts/" + w.alertA} {
		rec := w.do("GET", path, "", nil)
		if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/login?return="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session: %d to %q", path, rec.Code, loc)
		}
	}
	// A session that does not exist is no better.
	if rec := w.do("GET", "/", "forged", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("a forged session: %d", rec.Code)
	}
	// A POST without a session is refused, not redirected.
	if rec := w.do("POST", "/alerts/"+w.alertA+"/ack", "", url.Values{}); rec.Code != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d", rec.Code)
	}

	rec := w.do("GET", "/login?return=/alerts", "", nil)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `name="return" value="/alerts"`) || !strings.Contains(body, `<label for="password">`) {
		t.Errorf("the login page: %d %s", rec.Code, body)
	}
	if strings.Contains(body, "single sign-on") {
		t.Error("a single sign-on link without OIDC configured")
	}
	// Returns go to this server only.
	for _, ret := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`, "javascript:alert(1)"} {
		rec := w.do("GET", "/login?return="+url.QueryEscape(ret), "", nil)
		if !strings.Contains(rec.Body.String(), `name="return" value="/"`) {
			t.Errorf("return %q kept", ret)
		}
	}
	rec = w.do("POST", "/login", "", url.Values{"name": {"alice"}, "password": {"wrong"}, "return": {"/"}})
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong name or password") || len(rec.Result().Cookies()) != 0 {
		t.Errorf("a wrong password: %d %s", rec.Code, rec.Body)
	}
	// A login form posted from another site is refused (login CSRF).
	rec = w.do("POST", "/login", "", url.Values{"name": {"alice"}, "password": {"correct horse battery alice"}}, "Sec-Fetch-Site", "cross-site")
	if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
		t.Errorf("a cross-site login: %d", rec.Code)
	}
	rec = w.do("POST", "/login", "", url.Values{"name": {"alice"}, "password": {"correct horse battery alice"}, "return": {"https://evil.example/"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Errorf("login with a foreign return: %d %q", rec.Code, rec.Header().Get("Location"))
	}

	session := w.login("alice")
	rec = w.do("GET", "/", session, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), ">alice<") || !strings.Contains(rec.Body.String(), "analyst@team-a") {
		t.Errorf("the search page after login: %d", rec.Code)
	}
	// Logging out takes the CSRF token, and ends the session.
	if rec := w.do("POST", "/logout", session, url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("logout without a CSRF token: %d", rec.Code)
	}
	rec = w.do("POST", "/logout", session, url.Values{"csrf": {w.csrf(session)}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login" {
		t.Errorf("logout: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := w.do("GET", "/", session, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("the session after logout: %d", rec.Code)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	logins := map[int]int{}
	for _, r := range w.records {
		if r.Action == "login" {
			logins[r.Status]++
		}
	}
	if logins[http.StatusSeeOther] != 2 || logins[http.StatusUnauthorized] != 1 || logins[http.StatusForbidden] != 1 {
		t.Errorf("login records by status: %v", logins)
	}
}

func TestConsoleSearchEscapesAndScopes(t *testing.T) {
	w := newConsoleWorld(t)
	session := w.login("alice")
	for _, path := range []string{
		"/", "/?from=-7d", "/?q=" + url.QueryEscape(`actor:"\"><img src=x onerror=alert(1)>"`),
		"/?columns=time,actor,action,message,resources,userAgent,link,eventName",
		"/?q=" + url.QueryEscape("| stats count() by action, actor"),
		"/?q=" + url.QueryEscape("<script>alert(1)</script>"),
	} {
		rec := w.do("GET", path, session, nil)
		body := rec.Body.String()
		want := http.StatusOK
		if strings.HasPrefix(path, "/?q=%3Cscript") {
			want = http.StatusBadRequest // not a query: shown under the box
		}
		if rec.Code != want {
			t.Errorf("GET %s: %d %s", path, rec.Code, body)
			continue
		}
		assertEscaped(t, path, body)
		if strings.Contains(body, "team-b") {
			t.Errorf("GET %s: team-b's events show", path)
		}
	}
	body := w.do("GET", "/?columns=time,actor,action,message,userAgent,link", session, nil).Body.String()
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", "javascript:alert(1)",
		`href="/events/` + strconv.FormatUint(w.seqA, 10) + `"`, "<svg", "chart-bar"} {
		if !strings.Contains(body, want) {
			t.Errorf("the search page lacks %q", want)
		}
	}
	// The sidebar's links add the value to the query, escaped.
	if !strings.Contains(body, url.QueryEscape(`action:"<script>alert(1)</script>"`)) && !strings.Contains(body, "q=action%3A%22%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22") {
		t.Errorf("no filter link for the action's value")
	}

	// An empty range says where the latest match before it is: alice's
	// events are an hour and more old; team-b's, later, are not hers.
	body = w.do("GET", "/?from=-30m", session, nil).Body.String()
	if !strings.Contains(body, "The latest match before it is at") || !strings.Contains(body, "data-earlier") {
		i := strings.Index(body, "Nothing matches")
		t.Errorf("an empty range does not point to the latest match: %.300s", body[max(i, 0):])
	}
	if body := w.do("GET", "/?from=-30m&q=nosuchthinganywhere", session, nil).Body.String(); strings.Contains(body, "data-earlier") {
		t.Error("an empty range with no match before it points somewhere")
	}

	// Over years, the buckets are weeks or months, which must line up
	// with timechart's to show the matches at all.
	for _, from := range []string{"-1825d", "-400d", "-60d"} {
		if body := w.do("GET", "/?from="+from, session, nil).Body.String(); !strings.Contains(body, `class="chart-bar"`) {
			t.Errorf("from=%s: the histogram shows no bar", from)
		}
	}

	// A mistake in the query is shown under the box, at its column.
	rec := w.do("GET", "/?q="+url.QueryEscape("src_ip:10.0.0.0/33 <b>"), session, nil)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Column 8:") || !strings.Contains(rec.Body.String(), `aria-invalid="true"`) {
		t.Errorf("a query error: %d %s", rec.Code, rec.Body)
	}
	assertEscaped(t, "query error", rec.Body.String())

	// The event page: fields, raw document and proof, escaped.
	rec = w.do("GET", "/events/"+strconv.FormatUint(w.seqA, 10), session, nil)
	body = rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "Tree size") || !strings.Contains(body, "Signed checkpoint") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the event page: %d %s", rec.Code, body)
	}
	assertEscaped(t, "event page", body)
	// Another tenant's event is as missing as one that does not exist.
	missing := w.do("GET", "/events/999999", session, nil)
	other := w.do("GET", "/events/"+strconv.FormatUint(w.seqB, 10), session, nil)
	if missing.Code != 404 || other.Code != 404 || missing.Body.String() != other.Body.String() || strings.Contains(other.Body.String(), "team-b") {
		t.Errorf("another tenant's event: %d, a missing one: %d", other.Code, missing.Code)
	}
	if rec := w.do("GET", "/events/x", session, nil); rec.Code != 404 {
		t.Errorf("/events/x: %d", rec.Code)
	}

	// Assets are cached for long when asked by their hash.
	rec = w.do("GET", staticURL("app.css"), "", nil)
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("app.css: %d %v", rec.Code, rec.Header())
	}
	if rec := w.do("GET", "/static/chart.js", "", nil); rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("chart.js: %d %v", rec.Code, rec.Header())
	}
	if rec := w.do("GET", "/static/nope.js", "", nil); rec.Code != 404 {
		t.Errorf("a missing asset: %d", rec.Code)
	}
}

func TestConsoleAlerts(t *testing.T) {
	w := newConsoleWorld(t)
	alice := w.login("alice")
	rec := w.do("GET", "/alerts", alice, nil)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "Rule &lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, w.alertA) {
		t.Errorf("the queue: %d %s", rec.Code, body)
	}
	if strings.Contains(body, w.alertB) || strings.Contains(body, "team-b") {
		t.Error("the queue shows team-b's alert")
	}
	assertEscaped(t, "alerts", body)
	for path, want := range map[string]int{
		"/alerts/" + w.alertA: 200, "/alerts/" + w.alertB: 404, "/alerts/nope": 404,
		"/alerts?severity=high": 200, "/alerts?status=closed": 200, "/alerts?status=bogus": 400,
	} {
		rec := w.do("GET", path, alice, nil)
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
		assertEscaped(t, path, rec.Body.String())
	}
	if body := w.do("GET", "/alerts/"+w.alertA, alice, nil).Body.String(); !strings.Contains(body, `href="/events/`+strconv.FormatUint(w.seqA, 10)+`"`) {
		t.Errorf("the alert page does not link its event")
	}

	// Changes need the session's CSRF token.
	csrf := w.csrf(alice)
	for _, form := range []url.Values{{}, {"csrf": {"wrong"}}} {
		if rec := w.do("POST", "/alerts/"+w.alertA+"/ack", alice, form); rec.Code != http.StatusForbidden {
			t.Errorf("ack with %v: %d", form, rec.Code)
		}
		if rec := w.do("POST", "/alerts", alice, url.Values{"csrf": form["csrf"], "action": {"ack"}, "id": {w.alertA}}); rec.Code != http.StatusForbidden {
			t.Errorf("bulk ack with %v: %d", form, rec.Code)
		}
	}
	al, _, _, err := w.alerts.AlertDetail(context.Background(), nil, w.alertA)
	if err != nil || al.Status != alert.Open {
		t.Fatalf("the alert changed without a CSRF token: %v %v", al.Status, err)
	}
	rec = w.do("POST", "/alerts/"+w.alertA+"/ack", alice, url.Values{"csrf": {csrf}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/alerts/"+w.alertA {
		t.Errorf("ack: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	// The header works as well as the field.
	rec = w.do("POST", "/alerts/"+w.alertA+"/ack", alice, url.Values{}, "X-CSRF-Token", csrf)
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "why=transition") {
		t.Errorf("a second ack: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// Bulk: another tenant's alert is not changed.
	rec = w.do("POST", "/alerts", alice, url.Values{"csrf": {csrf}, "action": {"resolve"}, "id": {w.alertA, w.alertB}, "return": {"/alerts?status=&severity=high"}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || !strings.Contains(loc, "done=1") || !strings.Contains(loc, "failed=1") || !strings.HasPrefix(loc, "/alerts?") {
		t.Errorf("bulk resolve: %d %q", rec.Code, loc)
	}
	for id, want := range map[string]string{w.alertA: alert.Resolved, w.alertB: alert.Open} {
		al, _, _, _ := w.alerts.AlertDetail(context.Background(), nil, id)
		if al.Status != want {
			t.Errorf("alert %s: %s, want %s", id, al.Status, want)
		}
	}
	if rec := w.do("POST", "/alerts/"+w.alertB+"/ack", alice, url.Values{"csrf": {csrf}}); rec.Code != 404 {
		t.Errorf("ack of another tenant's alert: %d", rec.Code)
	}

	// bob, a viewer, reads his tenant's alerts but changes none.
	bob := w.login("bob")
	body = w.do("GET", "/alerts", bob, nil).Body.String()
	if !strings.Contains(body, w.alertB) || strings.Contains(body, w.alertA) || strings.Contains(body, "Acknowledge selected") {
		t.Errorf("bob's queue: %s", body)
	}
	if rec := w.do("POST", "/alerts/"+w.alertB+"/ack", bob, url.Values{"csrf": {w.csrf(bob)}}); rec.Code != http.StatusForbidden {
		t.Errorf("a viewer's ack: %d", rec.Code)
	}

	// The refusals are in the audit trail.
	w.mu.Lock()
	defer w.mu.Unlock()
	refused := 0
	for _, r := range w.records {
		if r.Status == http.StatusForbidden && r.Detail == "refused: no CSRF token" && r.Actor == "alice" {
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d CSRF refusals audited, want 4", refused)
	}
}

// TestEpochFloor: histogram buckets start where timechart's do, on the
// epoch, for every span the page picks.
func TestEpochFloor(t *testing.T) {
	at := time.Date(2024, 7, 31, 13, 6, 24, 0, time.UTC)
	for _, span := range spans {
		got := epochFloor(at, span)
		sec := int64(span / time.Second)
		if got.Unix()%sec != 0 || got.After(at) || !got.Add(span).After(at) {
			t.Errorf("span %s: %s is not the epoch-aligned bucket of %s", span, got, at)
		}
	}
	if got := epochFloor(time.Unix(-1, 0), time.Hour); got.Unix() != -3600 {
		t.Errorf("before the epoch: %s", got)
	}
}
