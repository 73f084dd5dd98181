package web

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// searchesWorld is the API over a real store holding console logins of
// team-a (by team-a-actor) and of team-b (by team-b-actor), with saved
// searches, alice (analyst of team-a), bob (viewer of team-b) and carol
// (analyst of every tenant: the CSIRT).
type searchesWorld struct {
	*consoleWorld
	mdb *meta.DB
}

func newSearchesWorld(t *testing.T) *searchesWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	mdb, directory, _ := newTestDirectory(t, dir, "", append(consoleTeams, consolePerson{"carol", access.AllTenants, access.Analyst})...)
	_, _, db := openLedgerStore(t, dir)
	now := time.Now().UTC()
	evs := []*event.Event{
		{Time: now.Add(-2 * time.Hour), Tenant: "team-a", Actor: event.Actor{Name: "team-a-actor"}, Outcome: event.Outcome{Result: "failure"}},
		{Time: now.Add(-3 * 24 * time.Hour), Tenant: "team-a", Actor: event.Actor{Name: "team-a-old-actor"}, Outcome: event.Outcome{Result: "failure"}},
		{Time: now.Add(-time.Hour), Tenant: "team-b", Actor: event.Actor{Name: "team-b-actor"}, Outcome: event.Outcome{Result: "failure"}},
	}
	for i, e := range evs {
		e.Seq, e.Received, e.Source, e.Class, e.Action, e.Raw = uint64(i+1), now, "json", "authentication", "ConsoleLogin", []byte(`{}`)
	}
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	w := &searchesWorld{consoleWorld: &consoleWorld{t: t}, mdb: mdb}
	w.h = Handler(Options{Store: db, Access: directory, Searches: mdb, AdminToken: "admin-secret", Gatherer: prometheus.NewRegistry(),
		Audit: func(_ context.Context, r *access.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.records = append(w.records, *r)
			return nil
		}})
	return w
}

// csrfOf reads a session's CSRF token from the search page's forms.
func (w *searchesWorld) csrfOf(session string) string {
	w.t.Helper()
	m := csrfField.FindStringSubmatch(w.do("GET", "/", session, nil).Body.String())
	if m == nil {
		w.t.Fatal("no CSRF token in the search page")
	}
	return m[1]
}

// api sends a JSON request with a session and its CSRF token, or with a
// bearer token when session starts with "Bearer ".
func (w *searchesWorld) api(method, path, session string, body any) *httptest.ResponseRecorder {
	w.t.Helper()
	var req *http.Request
	if body != nil {
		b, ok := body.(string)
		if !ok {
			j, _ := json.Marshal(body)
			b = string(j)
		}
		req = httptest.NewRequest(method, path, strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if strings.HasPrefix(session, "Bearer ") {
		req.Header.Set("Authorization", session)
	} else {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		req.Header.Set("X-CSRF-Token", w.csrfOf(session))
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec
}

func (w *searchesWorld) list(session string) []SavedSearchInfo {
	w.t.Helper()
	rec := w.api("GET", "/api/v1/searches", session, nil)
	if rec.Code != http.StatusOK {
		w.t.Fatalf("listing: %d %s", rec.Code, rec.Body)
	}
	return decode[[]SavedSearchInfo](w.t, rec)
}

// record returns the audit records of an action.
func (w *searchesWorld) recordsOf(action string) []access.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []access.Record
	for _, r := range w.records {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

func TestSearchesAPI(t *testing.T) {
	w := newSearchesWorld(t)
	alice, bob, carol := w.login("alice"), w.login("bob"), w.login("carol")

	if got := w.list(alice); len(got) != 0 {
		t.Fatalf("no searches yet: %+v", got)
	}
	rec := w.api("POST", "/api/v1/searches", alice, map[string]any{"name": "  Failed logins ", "query": "action:ConsoleLogin outcome:failure",
		"from": "-7d", "columns": "time, actor", "tenant": "team-a"})
	if rec.Code != http.StatusCreated {
		t.Fatalf("saving: %d %s", rec.Code, rec.Body)
	}
	private := decode[SavedSearchInfo](t, rec)
	if private.ID == "" || private.Name != "Failed logins" || private.OwnerName != "alice" || !private.Mine || private.Shared ||
		private.From != "-7d" || private.To != "" || private.Tenant != "team-a" {
		t.Errorf("saved %+v", private)
	}
	u, err := url.Parse(private.URL)
	if err != nil || u.Path != "/" || u.Query().Get("q") != "action:ConsoleLogin outcome:failure" || u.Query().Get("from") != "-7d" ||
		u.Query().Get("columns") != "time, actor" || u.Query().Get("tenant") != "team-a" || u.Query().Has("to") {
		t.Errorf("its URL %q", private.URL)
	}
	// Without from, the search page's default; an empty one is all time.
	rec = w.api("POST", "/api/v1/searches", alice, map[string]any{"name": "everything, shared", "shared": true})
	shared := decode[SavedSearchInfo](t, rec)
	if rec.Code != http.StatusCreated || shared.From != "-24h" || shared.Query != "" || !shared.Shared {
		t.Errorf("a search without a range: %d %+v", rec.Code, shared)
	}
	rec = w.api("POST", "/api/v1/searches", alice, map[string]any{"name": "all time", "from": ""})
	if s := decode[SavedSearchInfo](t, rec); rec.Code != http.StatusCreated || s.From != "" || !strings.Contains(s.URL, "from=&") && !strings.HasSuffix(s.URL, "from=") {
		t.Errorf("a search over all time: %d %+v", rec.Code, s)
	}

	// Alice sees hers; carol, who reads team-a too, only the shared one,
	// as not hers; bob, of team-b only, none: a team's shared search may
	// tell of its incident, and is not another team's to see.
	if got := w.list(alice); len(got) != 3 || got[0].Name != "all time" || got[1].Name != "everything, shared" || got[2].ID != private.ID {
		t.Errorf("alice's list: %+v", got)
	}
	got := w.list(carol)
	if len(got) != 1 || got[0].ID != shared.ID || got[0].Mine || got[0].OwnerName != "alice" {
		t.Errorf("carol's list: %+v", got)
	}
	if got := w.list(bob); len(got) != 0 {
		t.Errorf("bob's list: %+v", got)
	}
	if rec := w.api("GET", "/api/v1/searches/"+shared.ID, carol, nil); rec.Code != http.StatusOK {
		t.Errorf("carol reading the shared search: %d", rec.Code)
	}
	for _, id := range []string{shared.ID, private.ID} {
		if rec := w.api("GET", "/api/v1/searches/"+id, bob, nil); rec.Code != http.StatusNotFound {
			t.Errorf("bob reading alice's search %s: %d", id, rec.Code)
		}
	}
	if rec := w.api("GET", "/api/v1/searches/"+private.ID, carol, nil); rec.Code != http.StatusNotFound {
		t.Errorf("carol reading alice's private search: %d", rec.Code)
	}

	// What the search page would not run is refused, saying why.
	for _, c := range []struct {
		name string
		body any
		want string
	}{
		{"a query that does not parse", map[string]any{"name": "x", "query": "src_ip:10.0.0.0/33"}, "query: column 8"},
		{"no name", map[string]any{"name": " ", "query": "x"}, "name:"},
		{"a long name", map[string]any{"name": strings.Repeat("é", 101)}, "at most 100"},
		{"a control character", map[string]any{"name": "a\x1bb"}, "control"},
		{"a bad range", map[string]any{"name": "x", "from": "last tuesday"}, "from:"},
		{"bad columns", map[string]any{"name": "x", "columns": "time,<b>"}, "columns:"},
		{"not JSON", "{", "reading the request"},
	} {
		rec := w.api("POST", "/api/v1/searches", alice, c.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", c.name, rec.Code, rec.Body, c.want)
		}
	}
	// A name of 100 characters is fine.
	if rec := w.api("POST", "/api/v1/searches", bob, map[string]any{"name": strings.Repeat("é", 100)}); rec.Code != http.StatusCreated {
		t.Errorf("a name of 100 characters: %d %s", rec.Code, rec.Body)
	}
	if got := w.list(alice); len(got) != 3 {
		t.Errorf("after the refusals, alice has %d searches, want her 3 (bob's is not shared)", len(got))
	}

	// A change from a session needs its CSRF token.
	req := httptest.NewRequest("POST", "/api/v1/searches", strings.NewReader(`{"name":"forged"}`))
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: alice})
	rr := httptest.NewRecorder()
	w.h.ServeHTTP(rr, req)
	if rr.Code != http.StatusForbidden {
		t.Errorf("without a CSRF token: %d", rr.Code)
	}
	// A token that acts for no user has no searches.
	for _, m := range []string{"GET", "POST"} {
		rec := w.api(m, "/api/v1/searches", "Bearer admin-secret", map[string]any{"name": "admin's"})
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "saved searches belong to a user") {
			t.Errorf("%s as the admin token: %d %s", m, rec.Code, rec.Body)
		}
	}
	if rec := w.api("DELETE", "/api/v1/searches/"+shared.ID, "Bearer admin-secret", nil); rec.Code != http.StatusForbidden {
		t.Errorf("the admin token deleting: %d", rec.Code)
	}

	// Only its owner deletes a search: to anyone else it is missing.
	for _, id := range []string{shared.ID, private.ID, "nope"} {
		if rec := w.api("DELETE", "/api/v1/searches/"+id, carol, nil); rec.Code != http.StatusNotFound {
			t.Errorf("carol deleting %s: %d", id, rec.Code)
		}
	}
	if got := w.list(carol); len(got) != 1 {
		t.Errorf("carol's deletions left %d searches in her list, want 1", len(got))
	}
	if rec := w.api("DELETE", "/api/v1/searches/"+shared.ID, alice, nil); rec.Code != http.StatusNoContent {
		t.Errorf("alice deleting hers: %d %s", rec.Code, rec.Body)
	}
	if rec := w.api("DELETE", "/api/v1/searches/"+shared.ID, alice, nil); rec.Code != http.StatusNotFound {
		t.Errorf("deleting twice: %d", rec.Code)
	}
	if got := w.list(carol); len(got) != 0 {
		t.Errorf("carol's list after alice deleted the shared search: %+v", got)
	}

	// The trail: who saved what, and who deleted what or tried to.
	saves := w.recordsOf("search.saved.save")
	var ok int
	for _, r := range saves {
		if r.Status == http.StatusCreated {
			ok++
			if r.Actor == "alice" && r.Target == "saved-search:"+private.ID &&
				(!strings.Contains(r.Detail, `"Failed logins"`) || !strings.Contains(r.Detail, "action:ConsoleLogin outcome:failure")) {
				t.Errorf("the record of a save: %+v", r)
			}
		}
	}
	if ok != 4 {
		t.Errorf("%d saves recorded, want 4: %+v", ok, saves)
	}
	var deleted, refused int
	for _, r := range w.recordsOf("search.saved.delete") {
		switch {
		case r.Status == http.StatusNoContent && r.Actor == "alice" && strings.Contains(r.Detail, `deleted saved search `+shared.ID+` "everything, shared"`):
			deleted++
		case r.Status == http.StatusNotFound && strings.HasPrefix(r.Detail, "refused"):
			refused++
		}
	}
	if deleted != 1 || refused != 4 {
		t.Errorf("deletions recorded: %d, refusals %d; want 1 and 4", deleted, refused)
	}
}

var savedLink = regexp.MustCompile(`<a href="([^"]+)" data-saved-link>([^<]*)</a>`)

// savedLinks returns the saved searches' links on a search page, by
// name as shown.
func savedLinks(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range savedLink.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[2])] = html.UnescapeString(m[1])
	}
	return out
}

func TestConsoleSavedSearches(t *testing.T) {
	w := newSearchesWorld(t)
	alice, bob, carol := w.login("alice"), w.login("bob"), w.login("carol")
	hostile := xssScript + " " + xssAttr

	// The search page offers to save the search it shows.
	search := "/?q=" + url.QueryEscape("action:ConsoleLogin") + "&from=-7d&columns=" + url.QueryEscape("time,tenant,actor")
	rec := w.do("GET", search, alice, nil)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "data-save-search") || !strings.Contains(body, `name="q" value="action:ConsoleLogin"`) ||
		!strings.Contains(body, "No saved searches yet") {
		t.Fatalf("the search page: %d %s", rec.Code, body)
	}
	// Not a search that does not run.
	if body := w.do("GET", "/?q="+url.QueryEscape("src_ip:10.0.0.0/33"), alice, nil).Body.String(); strings.Contains(body, "data-save-search") {
		t.Error("a search with a query error may be saved")
	}

	form := func(session, name string, shared bool, extra ...string) url.Values {
		v := url.Values{"csrf": {w.csrfOf(session)}, "name": {name}, "q": {"action:ConsoleLogin"}, "from": {"-7d"}, "to": {""},
			"columns": {"time,tenant,actor"}, "tenant": {""}}
		if shared {
			v.Set("shared", "1")
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}

	// A form without the CSRF token saves nothing.
	f := form(alice, "forged", true)
	f.Del("csrf")
	if rec := w.do("POST", "/searches", alice, f); rec.Code != http.StatusForbidden {
		t.Errorf("saving without a CSRF token: %d", rec.Code)
	}
	if ss, err := w.mdb.SavedSearches(context.Background(), "", nil, true); err != nil || len(ss) != 0 {
		t.Errorf("after a forged save: %+v %v", ss, err)
	}
	// Nor does a query that does not parse: the page says why.
	rec = w.do("POST", "/searches", alice, form(alice, "bad", false, "q", "src_ip:10.0.0.0/33 "+xssScript))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "query: column 8") {
		t.Errorf("saving a bad query: %d %s", rec.Code, rec.Body)
	}
	assertEscaped(t, "a bad query's error", rec.Body.String())
	if rec := w.do("POST", "/searches", alice, form(alice, "", false)); rec.Code != http.StatusBadRequest {
		t.Errorf("saving without a name: %d", rec.Code)
	}

	// Saved by the CSIRT, shared, under a hostile name: back to the
	// search, which says so.
	rec = w.do("POST", "/searches", carol, form(carol, hostile, true))
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/?") || !strings.Contains(loc, "&saved=") {
		t.Fatalf("saving: %d %q %s", rec.Code, loc, rec.Body)
	}
	rec = w.do("GET", loc, carol, nil)
	body = rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `class="notice"`) || !strings.Contains(body, "Saved and shared the search") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img") || !strings.Contains(body, "data-delete-search") {
		t.Errorf("the page after saving: %d %s", rec.Code, body)
	}
	assertEscaped(t, "carol's page with the saved search", body)
	link := savedLinks(t, body)[hostile]
	if link == "" {
		t.Fatalf("no link to the saved search in %s", body)
	}
	// The link opens the search as saved: its query, range and columns.
	u, _ := url.Parse(link)
	if q := u.Query(); u.Path != "/" || q.Get("q") != "action:ConsoleLogin" || q.Get("from") != "-7d" || q.Get("columns") != "time,tenant,actor" || q.Get("to") != "" {
		t.Errorf("the saved search's link %q", link)
	}
	body = w.do("GET", link, carol, nil).Body.String()
	if !strings.Contains(body, `id="from" name="from" value="-7d"`) || !strings.Contains(body, `value="action:ConsoleLogin"`) ||
		!strings.Contains(body, "team-a-actor") || !strings.Contains(body, "team-a-old-actor") || !strings.Contains(body, "team-b-actor") {
		t.Errorf("carol's run of the saved search: %s", body)
	}

	// Bob sees it, shared by carol, and runs it in his own tenant only.
	body = w.do("GET", "/", bob, nil).Body.String()
	assertEscaped(t, "bob's page with carol's search", body)
	if savedLinks(t, body)[hostile] != link || !strings.Contains(body, "carol") || strings.Contains(body, "data-delete-search") {
		t.Errorf("bob's list: %s", body)
	}
	body = w.do("GET", link, bob, nil).Body.String()
	if !strings.Contains(body, "team-b-actor") || strings.Contains(body, "team-a") {
		t.Errorf("bob's run of carol's search shows team-a's events, or not his own: %s", body)
	}
	// Even one that names team-a shows him none of its events.
	rec = w.do("POST", "/searches", carol, form(carol, "team-a only", true, "tenant", "team-a"))
	teamA := savedLinks(t, w.do("GET", "/", bob, nil).Body.String())["team-a only"]
	if rec.Code != http.StatusSeeOther || teamA == "" {
		t.Fatalf("a search of team-a: %d %q", rec.Code, teamA)
	}
	body = w.do("GET", teamA, bob, nil).Body.String()
	if strings.Contains(body, "team-a-actor") || strings.Contains(body, "team-b-actor") {
		t.Errorf("bob's run of a search of team-a: %s", body)
	}
	if !strings.Contains(w.do("GET", teamA, alice, nil).Body.String(), "team-a-actor") {
		t.Error("alice's run of her search of team-a shows nothing")
	}
	// A private search is hers alone; one alice shares is team-a's: the
	// CSIRT sees it, bob does not.
	w.do("POST", "/searches", alice, form(alice, "alice's private", false))
	w.do("POST", "/searches", alice, form(alice, "team-a's shared", true))
	bobs, carols := savedLinks(t, w.do("GET", "/", bob, nil).Body.String()), savedLinks(t, w.do("GET", "/", carol, nil).Body.String())
	if _, ok := bobs["alice's private"]; ok {
		t.Error("bob sees alice's private search")
	}
	if _, ok := bobs["team-a's shared"]; ok {
		t.Error("bob sees team-a's shared search")
	}
	if _, ok := carols["team-a's shared"]; !ok {
		t.Error("the CSIRT does not see team-a's shared search")
	}

	// Only its owner deletes it: bob's try is a 404 that leaves it.
	ss, err := w.mdb.SavedSearches(context.Background(), "", nil, true)
	if err != nil || len(ss) != 3 {
		t.Fatalf("shared searches: %+v %v", ss, err)
	}
	var id string
	for _, s := range ss {
		if s.Name == hostile {
			id = s.ID
		}
	}
	rec = w.do("POST", "/searches/"+id+"/delete", bob, url.Values{"csrf": {w.csrfOf(bob)}, "return": {"/"}})
	if rec.Code != http.StatusNotFound {
		t.Errorf("bob deleting carol's search: %d", rec.Code)
	}
	assertEscaped(t, "bob's refused deletion", rec.Body.String())
	if _, err := w.mdb.SavedSearch(context.Background(), id, "", nil, true); err != nil {
		t.Errorf("after bob's deletion: %v", err)
	}
	// Nor without the CSRF token.
	if rec := w.do("POST", "/searches/"+id+"/delete", carol, url.Values{"return": {"/"}}); rec.Code != http.StatusForbidden {
		t.Errorf("deleting without a CSRF token: %d", rec.Code)
	}
	// Carol's goes back where she was, minus the notice of the save.
	rec = w.do("POST", "/searches/"+id+"/delete", carol, url.Values{"csrf": {w.csrfOf(carol)}, "return": {loc}})
	back := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.Contains(back, "deleted=1") || strings.Contains(back, "saved=") || !strings.Contains(back, "from=-7d") {
		t.Errorf("carol deleting hers: %d %q", rec.Code, back)
	}
	body = w.do("GET", back, carol, nil).Body.String()
	if !strings.Contains(body, "Deleted the saved search.") || strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the page after deleting: %s", body)
	}
	// A return elsewhere goes to the search page.
	rec = w.do("POST", "/searches/"+savedID(t, w, "alice's private")+"/delete", alice, url.Values{"csrf": {w.csrfOf(alice)}, "return": {"https://evil.example/"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?deleted=1" {
		t.Errorf("a foreign return: %d %q", rec.Code, rec.Header().Get("Location"))
	}

	// The trail has the console's saves and deletions too.
	var saved, deleted int
	for _, r := range w.recordsOf("search.saved.save") {
		if r.Status == http.StatusSeeOther {
			saved++
		}
	}
	for _, r := range w.recordsOf("search.saved.delete") {
		if r.Status == http.StatusSeeOther && strings.HasPrefix(r.Detail, "deleted saved search") {
			deleted++
		}
	}
	if saved != 4 || deleted != 2 {
		t.Errorf("recorded %d saves and %d deletions, want 4 and 2", saved, deleted)
	}
}

// savedID is the id of a saved search by name.
func savedID(t *testing.T, w *searchesWorld, name string) string {
	t.Helper()
	var id string
	if err := w.mdb.QueryRow(context.Background(), `SELECT id FROM saved_searches WHERE name = $1`, name).Scan(&id); err != nil {
		t.Fatalf("the saved search %q: %v", name, err)
	}
	return id
}
