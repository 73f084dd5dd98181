package web

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// adminWorld is the console over a real directory, token store, ledger
// and store, whose audit records are kept as the server keeps them: as
// events of the system tenant, which the audit viewer reads. Its
// principals are root (admin of every tenant), ada (admin of team-a),
// alice (analyst of team-a), bob (viewer of team-b) and dave (auditor
// of team-a).
type adminWorld struct {
	*consoleWorld
	dir    *access.Directory
	tokens *access.Tokens
	ids    map[string]string // principal ids by name
	export string            // an export of team-a's, by root
}

// nullBundler stands for the bundles of exports, which these tests
// only list and revoke.
type nullBundler struct{}

func (nullBundler) WriteBundle(context.Context, string, query.Request, ledger.Custody) (int, [32]byte, error) {
	return 0, [32]byte{}, ErrNoEvents
}
func (nullBundler) OpenBundle(string) (io.ReadSeekCloser, error) {
	return nil, errors.New("no bundles")
}
func (nullBundler) RemoveBundle(string) error { return nil }

func newAdminWorld(t *testing.T) *adminWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	mdb, directory, ids := newTestDirectory(t, dir, xssScript,
		consolePerson{"root", access.AllTenants, access.Admin}, consolePerson{"ada", "team-a", access.Admin},
		consolePerson{"alice", "team-a", access.Analyst}, consolePerson{"bob", "team-b", access.Viewer},
		consolePerson{"dave", "team-a", access.Auditor})
	w := &adminWorld{dir: directory, tokens: access.NewTokens(mdb, access.Options{}), ids: ids}
	e, err := w.dir.RecordExport(ctx, access.Export{ID: access.NewExportID(), Tenants: []string{"team-a"}, Query: xssScript,
		Reason: "export " + xssAttr, CreatedBy: "root", Creator: "principal:" + w.ids["root"], Events: 1, SHA256: "00",
		Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w.export = e.ID

	l, vkey, db := openLedgerStore(t, dir)

	w.consoleWorld = &consoleWorld{t: t}
	var mu sync.Mutex
	w.h = Handler(Options{Store: db, Ledger: l, LedgerKey: vkey, Access: w.dir, Tokens: w.tokens, Exports: nullBundler{},
		Gatherer: prometheus.NewRegistry(),
		// The trail, as the server keeps it: in the ledger and the
		// store, as events of the system tenant.
		Audit: func(ctx context.Context, r *access.Record) error {
			mu.Lock()
			defer mu.Unlock()
			evs := []*event.Event{r.Event()}
			if _, err := l.Append(ctx, evs); err != nil {
				return err
			}
			return db.Append(ctx, evs)
		}})
	return w
}

// csrfOf reads the CSRF token from the layout of a page.
func (w *adminWorld) csrfOf(session string) string {
	w.t.Helper()
	m := csrfField.FindStringSubmatch(w.do("GET", "/", session, nil).Body.String())
	if m == nil {
		w.t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

var postForm = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"(.*?)</form>`)

// checkForms checks every form of a page that changes anything carries
// the CSRF token.
func checkForms(t *testing.T, what, body, csrf string) {
	t.Helper()
	for _, m := range postForm.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[2], `name="csrf" value="`+csrf+`"`) {
			t.Errorf("%s: the form to %s has no CSRF token", what, m[1])
		}
	}
}

// An adminChange is a form a page of the section posts.
type adminChange struct {
	path string
	form url.Values
}

// adminChanges are a form of each change of the section, as valid as
// they get, in an order where each goes through: the CSRF test posts
// them without a token, the permission test as an analyst.
func (w *adminWorld) adminChanges() []adminChange {
	alice, bob := w.ids["alice"], w.ids["bob"]
	return []adminChange{
		{"/admin/principals", url.Values{"name": {"mallory"}, "kind": {"user"}}},
		{"/admin/principals/" + bob + "/password", url.Values{"password": {"a new long password"}}},
		{"/admin/principals/" + bob + "/disable", url.Values{}},
		{"/admin/groups", url.Values{"name": {"csirt"}}},
		{"/admin/groups/csirt/members", url.Values{"principal": {"alice"}}},
		{"/admin/groups/csirt/members/" + alice + "/remove", url.Values{}},
		{"/admin/bindings", url.Values{"kind": {"principal"}, "name": {"bob"}, "tenant": {"team-a"}, "role": {"admin"}}},
		{"/admin/bindings/remove", url.Values{"subject": {"principal:" + alice}, "tenant": {"team-a"}, "role": {"analyst"}}},
		{"/admin/tokens", url.Values{"name": {"t"}, "principal": {alice}, "days": {"1"}}},
		{"/admin/grants", url.Values{"owner": {"team-a"}, "grantee_kind": {"principal"}, "grantee": {"alice"}, "days": {"1"}, "reason": {"r"}}},
		{"/admin/exports/" + w.export + "/revoke", url.Values{}},
	}
}

// state is what the changes above would change, to see that a refused
// one changed nothing.
func (w *adminWorld) state() string {
	w.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	ps, _ := w.dir.Principals(ctx)
	for _, p := range ps {
		b.WriteString(p.Name + p.Disabled.String() + ";")
	}
	gs, _ := w.dir.Groups(ctx)
	for _, g := range gs {
		b.WriteString(g.Name + strings.Join(g.Members, ",") + ";")
	}
	bs, _ := w.dir.Bindings(ctx)
	for _, sb := range bs {
		b.WriteString(string(sb.Subject) + sb.Tenant + string(sb.Role) + ";")
	}
	ts, _ := w.tokens.List(ctx)
	gr, _ := w.dir.Grants(ctx, nil)
	e, _ := w.dir.Export(ctx, w.export)
	b.WriteString(strings.Repeat("t", len(ts)) + strings.Repeat("g", len(gr)) + e.Revoked.String())
	if _, err := w.dir.CheckPassword(ctx, "bob", "correct horse battery bob"); err != nil {
		b.WriteString("bob's password changed")
	}
	return b.String()
}

func TestConsoleAdminRefusesWithoutCSRF(t *testing.T) {
	w := newAdminWorld(t)
	root := w.login("root")
	csrf := w.csrfOf(root)
	before := w.state()
	for _, c := range w.adminChanges() {
		for _, bad := range []string{"", "wrong"} {
			f := url.Values{}
			for k, v := range c.form {
				f[k] = v
			}
			if bad != "" {
				f.Set("csrf", bad)
			}
			if rec := w.do("POST", c.path, root, f); rec.Code != http.StatusForbidden {
				t.Errorf("POST %s with CSRF %q: %d", c.path, bad, rec.Code)
			}
		}
	}
	if after := w.state(); after != before {
		t.Errorf("changes without a CSRF token changed things:\n%s\n%s", before, after)
	}
	// Every form of every page carries the token.
	for _, path := range []string{"/admin", "/admin/tokens", "/admin/grants", "/admin/exports", "/admin/audit"} {
		rec := w.do("GET", path, root, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
		checkForms(t, path, rec.Body.String(), csrf)
	}
	// With the token, each goes through.
	for _, c := range w.adminChanges() {
		c.form.Set("csrf", csrf)
		rec := w.do("POST", c.path, root, c.form)
		if rec.Code != http.StatusSeeOther && rec.Code != http.StatusCreated {
			t.Errorf("POST %s with the CSRF token: %d %s", c.path, rec.Code, rec.Body)
		}
	}
}

func TestConsoleAdminAnalystRefused(t *testing.T) {
	w := newAdminWorld(t)
	alice := w.login("alice")
	csrf := w.csrfOf(alice)
	// The nav shows the section to everyone; its pages refuse her.
	if body := w.do("GET", "/", alice, nil).Body.String(); !strings.Contains(body, `href="/admin"`) {
		t.Error("the nav lacks the admin section")
	}
	for _, path := range []string{"/admin/tokens", "/admin/grants", "/admin/audit"} {
		if rec := w.do("GET", path, alice, nil); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "<h1>Forbidden</h1>") {
			t.Errorf("an analyst's GET %s: %d", path, rec.Code)
		}
	}
	// Her part of the section is her exports, which the API lets her
	// list and revoke too.
	if rec := w.do("GET", "/admin", alice, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/exports" {
		t.Errorf("an analyst's GET /admin: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if rec := w.do("GET", "/admin/exports", alice, nil); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `href="/admin/grants"`) {
		t.Errorf("an analyst's exports: %d, or with tabs she may not open", rec.Code)
	}
	before := w.state()
	for _, c := range w.adminChanges() {
		c.form.Set("csrf", csrf)
		if rec := w.do("POST", c.path, alice, c.form); rec.Code != http.StatusForbidden {
			t.Errorf("an analyst's POST %s: %d", c.path, rec.Code)
		}
	}
	if after := w.state(); after != before {
		t.Errorf("an analyst changed things:\n%s\n%s", before, after)
	}
}

func TestConsoleAdminTenantAdmin(t *testing.T) {
	w := newAdminWorld(t)
	ada := w.login("ada")
	csrf := w.csrfOf(ada)
	bind := func(path, tenant, role, name string) int {
		t.Helper()
		return w.do("POST", path, ada, url.Values{"csrf": {csrf}, "kind": {"principal"}, "name": {name}, "tenant": {tenant}, "role": {role}}).Code
	}
	has := func(name, tenant string, role access.Role) bool {
		bs, _ := w.dir.Bindings(context.Background())
		return slices.Contains(bs, access.SubjectBinding{Subject: access.PrincipalSubject(w.ids[name]), Binding: access.Binding{Role: role, Tenant: tenant}})
	}
	// Her tenant's bindings are hers to manage.
	if code := bind("/admin/bindings", "team-a", "viewer", "bob"); code != http.StatusSeeOther || !has("bob", "team-a", access.Viewer) {
		t.Errorf("ada binds bob in team-a: %d", code)
	}
	if code := w.do("POST", "/admin/bindings/remove", ada, url.Values{"csrf": {csrf}, "subject": {"principal:" + w.ids["bob"]}, "tenant": {"team-a"}, "role": {"viewer"}}).Code; code != http.StatusSeeOther || has("bob", "team-a", access.Viewer) {
		t.Errorf("ada unbinds bob in team-a: %d", code)
	}
	// Another's, and every tenant's, are not.
	for _, tenant := range []string{"team-b", "*"} {
		if code := bind("/admin/bindings", tenant, "admin", "ada"); code != http.StatusForbidden || has("ada", tenant, access.Admin) {
			t.Errorf("ada binds herself admin in %s: %d", tenant, code)
		}
	}
	rec := w.do("POST", "/admin/bindings/remove", ada, url.Values{"csrf": {csrf}, "subject": {"principal:" + w.ids["bob"]}, "tenant": {"team-b"}, "role": {"viewer"}})
	if rec.Code != http.StatusForbidden || !has("bob", "team-b", access.Viewer) {
		t.Errorf("ada unbinds bob in team-b: %d", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "you do not manage tenant &#34;team-b&#34;") {
		t.Errorf("the refusal does not say why: %s", rec.Body)
	}
	// She sees her tenant's bindings only, and makes no principals.
	body := w.do("GET", "/admin", ada, nil).Body.String()
	if !strings.Contains(body, "principal:"+w.ids["alice"]) || strings.Contains(body, "principal:"+w.ids["bob"]) || strings.Contains(body, `action="/admin/principals"`) {
		t.Errorf("ada's admin page shows another tenant's bindings or the principal form:\n%s", body)
	}
	if code := w.do("POST", "/admin/principals", ada, url.Values{"csrf": {csrf}, "name": {"eve"}}).Code; code != http.StatusForbidden {
		t.Errorf("ada creates a principal: %d", code)
	}
	// Tokens of her tenant, not of another or of a principal.
	for tenant, want := range map[string]int{"team-a": http.StatusCreated, "team-b": http.StatusForbidden} {
		if code := w.do("POST", "/admin/tokens", ada, url.Values{"csrf": {csrf}, "name": {"fwd"}, "tenant": {tenant}, "role": {"ingest"}, "days": {"7"}}).Code; code != want {
			t.Errorf("ada makes an ingest token of %s: %d, want %d", tenant, code, want)
		}
	}
	if code := w.do("POST", "/admin/tokens", ada, url.Values{"csrf": {csrf}, "principal": {w.ids["alice"]}, "days": {"7"}}).Code; code != http.StatusForbidden {
		t.Errorf("ada makes alice's token: %d", code)
	}
	// Grants of her tenant's events only.
	for owner, want := range map[string]int{"team-a": http.StatusSeeOther, "team-b": http.StatusForbidden} {
		form := url.Values{"csrf": {csrf}, "owner": {owner}, "grantee_kind": {"tenant"}, "grantee": {"team-b"}, "days": {"3"}, "reason": {"mssp"}}
		if code := w.do("POST", "/admin/grants", ada, form).Code; code != want {
			t.Errorf("ada shares %s's events: %d, want %d", owner, code, want)
		}
	}
}

func TestConsoleAdminEscapes(t *testing.T) {
	w := newAdminWorld(t)
	root := w.login("root")
	csrf := w.csrfOf(root)
	// Hostile text wherever the directory takes free text: display
	// names, token names, grant filters and reasons, export reasons.
	for path, form := range map[string]url.Values{
		"/admin/principals": {"name": {"mallory"}, "kind": {"service"}, "display": {xssAttr}},
		"/admin/groups":     {"name": {"csirt"}, "description": {xssScript}},
		"/admin/grants": {"owner": {"team-a"}, "grantee_kind": {"principal"}, "grantee": {"bob"}, "days": {"3"},
			"filter": {`message:"` + xssScript + `"`}, "reason": {xssAttr + " " + xssScript}, "redact": {"user_agent"}},
	} {
		form.Set("csrf", csrf)
		if rec := w.do("POST", path, root, form); rec.Code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	rec := w.do("POST", "/admin/tokens", root, url.Values{"csrf": {csrf}, "name": {xssAttr}, "tenant": {"team-a"}, "role": {"ingest"}, "days": {"1"}})
	assertEscaped(t, "the token made", rec.Body.String())
	// A failed form shows what was typed, escaped.
	rec = w.do("POST", "/admin/grants", root, url.Values{"csrf": {csrf}, "owner": {"team-a"}, "grantee_kind": {"group"}, "grantee": {xssAttr},
		"days": {"3"}, "reason": {xssScript}})
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a grant to a hostile group: %d", rec.Code)
	}
	assertEscaped(t, "a failed grant", rec.Body.String())
	for _, path := range []string{"/admin", "/admin/tokens", "/admin/grants", "/admin/exports", "/admin/audit", "/admin/audit?action=" + url.QueryEscape(xssAttr)} {
		rec := w.do("GET", path, root, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
		assertEscaped(t, path, body)
		if path != "/admin/audit?action="+url.QueryEscape(xssAttr) && !strings.Contains(body, "&lt;script&gt;") && !strings.Contains(body, "&#34;&gt;&lt;img") {
			t.Errorf("GET %s shows no payload as text", path)
		}
	}
	// The audit trail says what was done, escaped.
	body := w.do("GET", "/admin/audit?action=grant.create", root, nil).Body.String()
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, `href="/events/`) {
		t.Errorf("the trail lacks the grant: %s", body)
	}
}

func TestConsoleAdminTokenSecretOnce(t *testing.T) {
	w := newAdminWorld(t)
	root := w.login("root")
	csrf := w.csrfOf(root)
	rec := w.do("POST", "/admin/tokens", root, url.Values{"csrf": {csrf}, "name": {"alice's laptop"}, "principal": {w.ids["alice"]},
		"tenant": {"team-a"}, "role": {"admin"}, "days": {"2"}})
	body := rec.Body.String()
	m := regexp.MustCompile(`value="(vgl_[^"]+)"`).FindStringSubmatch(body)
	if rec.Code != http.StatusCreated || m == nil || !strings.Contains(body, "shown this once") {
		t.Fatalf("making a token: %d %s", rec.Code, body)
	}
	secret := m[1]
	tok, err := w.tokens.Authenticate(context.Background(), secret)
	if err != nil || tok.Principal != w.ids["alice"] || tok.Role != "" || time.Until(tok.Expires) > 49*time.Hour {
		t.Fatalf("the token made: %+v %v", tok, err)
	}
	// Never again: not in the list, nor in the audit trail.
	for _, path := range []string{"/admin/tokens", "/admin/audit", "/admin/audit?action=token.create"} {
		body := w.do("GET", path, root, nil).Body.String()
		if strings.Contains(body, secret) || strings.Contains(body, secret[len(secret)-10:]) {
			t.Errorf("GET %s shows the secret again", path)
		}
		if path == "/admin/tokens" && !strings.Contains(body, "alice&#39;s laptop") {
			t.Errorf("the list lacks the token: %s", body)
		}
	}
	if rec := w.do("POST", "/admin/tokens/"+tok.ID+"/revoke", root, url.Values{"csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Errorf("revoking: %d", rec.Code)
	}
	if _, err := w.tokens.Authenticate(context.Background(), secret); !errors.Is(err, access.ErrRevokedToken) {
		t.Errorf("the revoked token: %v", err)
	}
	// A token that does not expire is not for the console to make.
	if rec := w.do("POST", "/admin/tokens", root, url.Values{"csrf": {csrf}, "principal": {w.ids["alice"]}, "days": {"0"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("a token without expiry: %d", rec.Code)
	}
}

func TestConsoleAdminAuditorScope(t *testing.T) {
	w := newAdminWorld(t)
	root, ada := w.login("root"), w.login("ada")
	// An action in team-a, and one in team-b.
	if rec := w.do("POST", "/admin/bindings", ada, url.Values{"csrf": {w.csrfOf(ada)}, "kind": {"principal"}, "name": {"alice"}, "tenant": {"team-a"}, "role": {"viewer"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("ada binds: %d", rec.Code)
	}
	if rec := w.do("POST", "/admin/bindings", root, url.Values{"csrf": {w.csrfOf(root)}, "kind": {"principal"}, "name": {"bob"}, "tenant": {"team-b"}, "role": {"analyst"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("root binds: %d", rec.Code)
	}
	dave := w.login("dave")
	// The section's first page sends an auditor to the trail; the rest
	// of the section is not his.
	if rec := w.do("GET", "/admin", dave, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/audit" {
		t.Errorf("an auditor's /admin: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := w.do("GET", "/admin/grants", dave, nil); rec.Code != http.StatusForbidden {
		t.Errorf("an auditor's /admin/grants: %d", rec.Code)
	}
	rec := w.do("GET", "/admin/audit?action=role.bind", dave, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "principal:"+w.ids["alice"]) || !strings.Contains(body, "<td>ada ") {
		t.Errorf("dave does not see team-a's binding: %d %s", rec.Code, body)
	}
	if strings.Contains(body, "principal:"+w.ids["bob"]) || strings.Contains(body, "team-b") {
		t.Errorf("dave sees team-b's binding: %s", body)
	}
	// Logins name no tenant: they are the trail of every tenant's
	// auditors, and an administrator of all sees them and both bindings.
	if body := w.do("GET", "/admin/audit?action=login", dave, nil).Body.String(); !strings.Contains(body, "No records match") {
		t.Errorf("dave sees logins: %s", body)
	}
	body = w.do("GET", "/admin/audit?action=role.bind&outcome=success&actor=root", root, nil).Body.String()
	if !strings.Contains(body, "principal:"+w.ids["bob"]) || strings.Contains(body, "principal:"+w.ids["alice"]) {
		t.Errorf("root's filtered trail: %s", body)
	}
	if body := w.do("GET", "/admin/audit?action=login&outcome=success", root, nil).Body.String(); strings.Count(body, "<tr") != 4 {
		t.Errorf("root sees %d rows of logins, want 3: %s", strings.Count(body, "<tr")-1, body)
	}
	// Each record links to its event, which the auditor may open.
	link := regexp.MustCompile(`href="(/events/\d+)"`).FindStringSubmatch(w.do("GET", "/admin/audit?action=role.bind", dave, nil).Body.String())
	if link == nil {
		t.Fatal("no link to a record's event")
	}
	if rec := w.do("GET", link[1], dave, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "role.bind") {
		t.Errorf("the record's event page: %d", rec.Code)
	}
	// Filters it cannot read are said so.
	for _, q := range []string{"outcome=maybe", "from=yesterday-ish"} {
		if rec := w.do("GET", "/admin/audit?"+q, dave, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("/admin/audit?%s: %d", q, rec.Code)
		}
	}
}

// TestConsoleOwnExports: whoever made an export sees it in the console
// and revokes it there, as the API lets them, without managing access;
// another tenant's reader sees none of it.
func TestConsoleOwnExports(t *testing.T) {
	w := newAdminWorld(t)
	ctx := context.Background()
	alice, bob := w.login("alice"), w.login("bob")
	mine, err := w.dir.RecordExport(ctx, access.Export{ID: access.NewExportID(), Tenants: []string{"team-a"}, Query: "action:StopLogging",
		Reason: "case 12", CreatedBy: "alice", Creator: "principal:" + w.ids["alice"], Events: 1, SHA256: "00",
		Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	body := w.do("GET", "/admin/exports", alice, nil).Body.String()
	if !strings.Contains(body, "case 12") || !strings.Contains(body, `action="/admin/exports/`+mine.ID+`/revoke"`) ||
		strings.Contains(body, `action="/admin/exports/`+w.export+`/revoke"`) {
		t.Errorf("alice's exports page: hers revocable, root's not:\n%s", body)
	}
	if body := w.do("GET", "/admin/exports", bob, nil).Body.String(); strings.Contains(body, "case 12") || strings.Contains(body, w.export) {
		t.Error("bob sees team-a's exports")
	}
	if rec := w.do("POST", "/admin/exports/"+mine.ID+"/revoke", bob, url.Values{"csrf": {w.csrfOf(bob)}}); rec.Code != http.StatusNotFound {
		t.Errorf("bob revokes alice's export: %d", rec.Code)
	}
	rec := w.do("POST", "/admin/exports/"+mine.ID+"/revoke", alice, url.Values{"csrf": {w.csrfOf(alice)}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("alice revokes her export: %d %s", rec.Code, rec.Body)
	}
	if e, err := w.dir.Export(ctx, mine.ID); err != nil || e.Revoked.IsZero() || e.RevokedBy != "alice" {
		t.Errorf("after the revocation: %+v %v", e, err)
	}
}

// TestConsoleAuditPages: the trail is read a page at a time, each
// linking to the records before its oldest, until none are left; no
// record is on two pages or on none.
func TestConsoleAuditPages(t *testing.T) {
	w := newAdminWorld(t)
	root := w.login("root")
	for _, name := range []string{"alice", "bob", "dave", "ada", "root"} {
		w.login(name)
	}
	want := strings.Count(w.do("GET", "/admin/audit?action=login", root, nil).Body.String(), `data-row-link`)
	if want < 6 {
		t.Fatalf("%d logins in the trail", want)
	}
	seen := map[string]bool{}
	next := "/admin/audit?action=login&limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > want {
			t.Fatal("the pages never end")
		}
		body := w.do("GET", next, root, nil).Body.String()
		for _, m := range regexp.MustCompile(`href="(/events/\d+)" data-row-link`).FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Errorf("record %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" id="older"`).FindStringSubmatch(body); m != nil {
			next = html.UnescapeString(m[1])
		}
	}
	if len(seen) != want {
		t.Errorf("the pages hold %d records, want %d", len(seen), want)
	}
}

// TestConsoleTenants: an administrator sees the tenants they manage, each
// with what it sent and the roles held in it, and no other.
func TestConsoleTenants(t *testing.T) {
	w := newAdminWorld(t)
	root, ada := w.login("root"), w.login("ada")
	rowOf := func(body, tenant string) string {
		m := regexp.MustCompile(`(?s)<tr>\s*<td><a href="[^"]*" data-row-link>` + regexp.QuoteMeta(tenant) + `</a>.*?</tr>`).FindString(body)
		return m
	}
	cells := func(row string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<td class="num">(\d+)</td>`).FindAllStringSubmatch(row, -1) {
			out = append(out, m[1])
		}
		return out
	}
	body := w.do("GET", "/admin/tenants", root, nil).Body.String()
	// team-a: ada, alice and dave hold roles; team-b: bob. The audit
	// trail is no tenant's here: it is read under Audit trail.
	for tenant, want := range map[string]string{"team-a": "0 3 0", "team-b": "0 1 0"} {
		if got := strings.Join(cells(rowOf(body, tenant)), " "); got != want {
			t.Errorf("root's row of %s: events, roles, grants = %q, want %q", tenant, got, want)
		}
	}
	if rowOf(body, access.SystemTenant) != "" {
		t.Errorf("root's tenants list the audit trail's")
	}
	body = w.do("GET", "/admin/tenants", ada, nil).Body.String()
	if rowOf(body, "team-a") == "" || rowOf(body, "team-b") != "" || rowOf(body, access.SystemTenant) != "" {
		t.Errorf("ada's tenants:\n%s", body)
	}
	if rec := w.do("GET", "/admin/tenants", w.login("alice"), nil); rec.Code != http.StatusForbidden {
		t.Errorf("an analyst's tenants page: %d", rec.Code)
	}
}
