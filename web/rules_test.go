package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
)

// noMFARule is the built-in "AWS Console Login Without MFA".
const noMFARule = "8713a488-84e2-49a2-830e-e5036c88b1f3"

// rulesWorld is the API over a real store holding the CloudTrail examples
// of AWS's user guide, every other one in team-a and the rest in team-b,
// timed over the last day, and the built-in rules; with alice (analyst
// of team-a), bob (viewer of team-b) and carol (analyst of every
// tenant).
type rulesWorld struct {
	*consoleWorld
	book *RuleBook
	mdb  *meta.DB
	opts Options
	// logins counts the ConsoleLogin events by tenant.
	logins map[string]int
}

func newRulesWorld(t *testing.T) *rulesWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	mdb, directory, _ := newTestDirectory(t, dir, "", append(consoleTeams, consolePerson{"carol", access.AllTenants, access.Analyst})...)
	_, _, db := openLedgerStore(t, dir)

	f, err := os.Open("testdata/aws-docs-examples/cloudtrail_user_guide_examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now().UTC()
	w := &rulesWorld{mdb: mdb, logins: map[string]int{}}
	var evs []*event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Event json.RawMessage }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		tenant := []string{"team-a", "team-b"}[len(evs)%2]
		_, err := parse.Parse(strings.NewReader(string(line.Event)), "aws.cloudtrail", parse.Options{Tenant: tenant, Backfill: true}, func(r parse.Result) error {
			if r.Err != nil {
				t.Fatalf("parsing an example: %v", r.Err)
			}
			r.Event.Time = now.Add(-time.Duration(len(evs)+1) * time.Hour)
			if r.Event.Action == "ConsoleLogin" {
				w.logins[tenant]++
			}
			evs = append(evs, r.Event)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(evs) < 20 || w.logins["team-a"] == 0 || w.logins["team-b"] == 0 {
		t.Fatalf("%d events, logins %v", len(evs), w.logins)
	}
	for i, e := range evs {
		e.Seq = uint64(i + 1)
	}
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Hits: two detections of the built-in rule in team-a, one in team-b.
	var ds []meta.Detection
	for i, tenant := range []string{"team-a", "team-a", "team-b"} {
		seq := uint64(i + 1)
		ds = append(ds, meta.Detection{Created: now.Add(-time.Duration(i) * time.Minute), Tenant: tenant, RuleID: noMFARule, Title: "AWS Console Login Without MFA", Level: "medium", Seq: &seq})
	}
	if err := mdb.AddDetections(ctx, ds); err != nil {
		t.Fatal(err)
	}

	var running atomic.Pointer[detect.Engine]
	reload := func(ctx context.Context) error {
		rules, err := detect.Builtin()
		if err != nil {
			return err
		}
		saved, err := mdb.SavedRules(ctx)
		if err != nil {
			return err
		}
		for _, s := range saved {
			rs, err := detect.Parse(SavedRuleFile(s.ID), []byte(s.Body))
			if err != nil {
				return err
			}
			rules = append(rules, rs...)
		}
		offs, err := mdb.RulesOff(ctx)
		if err != nil {
			return err
		}
		off := map[string]bool{}
		for _, s := range offs {
			off[s.RuleID] = true
		}
		e, err := detect.NewEngine(rules, detect.Options{Off: off})
		running.Store(e)
		return err
	}
	if err := reload(ctx); err != nil {
		t.Fatal(err)
	}
	w.book = &RuleBook{DB: mdb, Running: running.Load, Reload: reload}
	w.consoleWorld = &consoleWorld{t: t}
	w.opts = Options{Store: db, Hunter: db, Rules: w.book, Access: directory, Gatherer: prometheus.NewRegistry(),
		Audit: func(_ context.Context, r *access.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.records = append(w.records, *r)
			return nil
		}}
	w.h = Handler(w.opts)
	return w
}

// api sends a JSON request as a console session would, with its CSRF
// token.
func (w *rulesWorld) api(method, path, session string, body any) *httptest.ResponseRecorder {
	w.t.Helper()
	var req *http.Request
	if body != nil {
		b, _ := json.Marshal(body)
		req = httptest.NewRequest(method, path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	req.Header.Set("X-CSRF-Token", w.csrfOf(session))
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec
}

// csrfOf reads a session's CSRF token from the rules page.
func (w *rulesWorld) csrfOf(session string) string {
	w.t.Helper()
	m := csrfField.FindStringSubmatch(w.do("GET", "/rules", session, nil).Body.String())
	if m == nil {
		w.t.Fatal("no CSRF token in the rules page")
	}
	return m[1]
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	return v
}

// loginRule is a rule of console logins, its title a payload.
const loginRule = `title: Console logins ` + xssScript + `
id: 0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01
status: experimental
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: signin.amazonaws.com
        eventName: ConsoleLogin
    condition: selection
level: low
`

func TestRulesAPI(t *testing.T) {
	w := newRulesWorld(t)
	alice, bob, carol := w.login("alice"), w.login("bob"), w.login("carol")

	t.Run("list", func(t *testing.T) {
		for _, tt := range []struct {
			session string
			hits    int64
		}{{alice, 2}, {bob, 1}, {carol, 3}} {
			rec := w.api("GET", "/api/v1/rules", tt.session, nil)
			rules := decode[[]RuleInfo](t, rec)
			builtin, _ := detect.Builtin()
			if rec.Code != 200 || len(rules) < len(builtin) {
				t.Fatalf("%d, %d rules, want at least %d", rec.Code, len(rules), len(builtin))
			}
			found := false
			for _, r := range rules {
				if r.ID == noMFARule {
					found = true
					if r.Hits != tt.hits || r.LastMatch.IsZero() || r.Origin != "builtin" || r.Kind != "detection" ||
						len(r.Sources) != 1 || r.Sources[0] != "aws.cloudtrail" || r.Off != nil {
						t.Errorf("the built-in rule: %+v, want %d hits", r, tt.hits)
					}
				}
				if r.Origin != "builtin" || strings.Contains(r.ID, "#") {
					t.Errorf("rule %s: origin %s", r.ID, r.Origin)
				}
			}
			if !found {
				t.Errorf("no rule %s", noMFARule)
			}
		}
		rec := w.api("GET", "/api/v1/rules/"+noMFARule, alice, nil)
		got := decode[struct {
			ID, Content string
		}](t, rec)
		if rec.Code != 200 || !strings.Contains(got.Content, "additionalEventData.MFAUsed: 'No'") {
			t.Errorf("GET rule: %d %+v", rec.Code, got)
		}
		if rec := w.api("GET", "/api/v1/rules/no-such-rule", alice, nil); rec.Code != 404 {
			t.Errorf("a missing rule: %d", rec.Code)
		}
	})

	t.Run("lint", func(t *testing.T) {
		tests := []struct {
			name, content string
			ok            bool
			line          int    // of the first problem
			want          string // in its message
		}{
			{"good", loginRule, true, 0, ""},
			{"yaml", "title: x\nid: 1\ndetection:\n  s: [\n", false, 4, ""},
			{"no id", strings.Replace(loginRule, "id: 0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01\n", "", 1), false, 0, "needs an id"},
			{"taken id", strings.Replace(loginRule, "0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01", noMFARule, 1), false, 0, "builtin/console_login_without_mfa.yml"},
			{"unknown modifier", strings.Replace(loginRule, "eventName:", "eventName|sideways:", 1), false, 10, "sideways"},
			{"no source", strings.Replace(loginRule, "product: aws", "product: mainframe", 1), true, 0, "no vigil source"},
			{"correlation of a running rule", `title: Many logins without MFA
id: 4c1d9d4e-3f7a-4e55-9a3b-6a1f0c2d8e11
correlation:
    type: event_count
    rules: [` + noMFARule + `]
    group-by: [userIdentity.arn]
    timespan: 1h
    condition: {gte: 3}
level: high
`, true, 0, ""},
			{"correlation of nothing", `title: Many of nothing
id: 4c1d9d4e-3f7a-4e55-9a3b-6a1f0c2d8e12
correlation:
    type: event_count
    rules: [no-such-rule]
    timespan: 1h
    condition: {gte: 3}
`, false, 0, "no-such-rule"},
			{"empty", "  \n", false, 0, "empty"},
			{"NUL", loginRule + "\x00", false, 0, "UTF-8"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := w.api("POST", "/api/v1/rules/lint", bob, RuleRequest{Content: tt.content})
				res := decode[LintResult](t, rec)
				if rec.Code != 200 || res.OK != tt.ok {
					t.Fatalf("%d %+v, want ok %v", rec.Code, res, tt.ok)
				}
				if tt.ok && tt.want == "" {
					if len(res.Problems) != 0 {
						t.Errorf("problems: %+v", res.Problems)
					}
					return
				}
				if len(res.Problems) == 0 {
					t.Fatalf("no problem found")
				}
				p := res.Problems[0]
				if tt.line != 0 && p.Line != tt.line || !strings.Contains(p.Message+" "+p.Rule, tt.want) {
					t.Errorf("problem %+v, want line %d and %q", p, tt.line, tt.want)
				}
			})
		}
	})

	// JSON carries only UTF-8: a form may carry anything.
	if res, e := w.book.lint(loginRule+"# \xff\n", ""); res.OK || e != nil || !strings.Contains(res.Problems[0].Message, "UTF-8") {
		t.Errorf("lint of a file that is not UTF-8: %+v", res)
	}

	t.Run("backtest", func(t *testing.T) {
		for _, tt := range []struct {
			who, session string
			want         map[string]int64
		}{
			{"alice", alice, map[string]int64{"team-a": int64(w.logins["team-a"])}},
			{"carol", carol, map[string]int64{"team-a": int64(w.logins["team-a"]), "team-b": int64(w.logins["team-b"])}},
		} {
			rec := w.api("POST", "/api/v1/rules/backtest", tt.session, RuleRequest{Content: loginRule, Days: 2})
			bt := decode[Backtest](t, rec)
			var total, days int64
			for _, n := range tt.want {
				total += n
			}
			for _, d := range bt.Days {
				days += d.Hits
			}
			if rec.Code != 200 || bt.Total != total || days != total || len(bt.Days) != 2 || len(bt.Sample) != int(total) ||
				len(bt.Tenants) != len(tt.want) || bt.Hits["0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01"] != total {
				t.Errorf("%s: %d %+v, want %v", tt.who, rec.Code, bt, tt.want)
			}
			for tenant, n := range tt.want {
				if bt.Tenants[tenant] != n {
					t.Errorf("%s: %d hits in %s, want %d", tt.who, bt.Tenants[tenant], tenant, n)
				}
			}
		}
		if rec := w.api("POST", "/api/v1/rules/backtest", bob, RuleRequest{Content: loginRule}); rec.Code != http.StatusForbidden {
			t.Errorf("a viewer backtests: %d", rec.Code)
		}
		rec := w.api("POST", "/api/v1/rules/backtest", alice, RuleRequest{Content: "title: x\n"})
		if bt := decode[Backtest](t, rec); rec.Code != http.StatusUnprocessableEntity || bt.Lint.OK || bt.Total != 0 {
			t.Errorf("a broken rule backtests: %d %+v", rec.Code, bt)
		}
		if rec := w.api("POST", "/api/v1/rules/backtest", alice, RuleRequest{Content: loginRule, Days: 400}); rec.Code != 400 {
			t.Errorf("400 days: %d", rec.Code)
		}
	})

	t.Run("change", func(t *testing.T) {
		const id = "0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01"
		for _, s := range []string{alice, bob} {
			if rec := w.api("POST", "/api/v1/rules", s, RuleRequest{Content: loginRule}); rec.Code != http.StatusForbidden {
				t.Errorf("a team's member saves a rule of every tenant: %d %s", rec.Code, rec.Body)
			}
			if rec := w.api("POST", "/api/v1/rules/"+noMFARule+"/off", s, RuleRequest{Reason: "noisy"}); rec.Code != http.StatusForbidden {
				t.Errorf("a team's member turns a rule off: %d", rec.Code)
			}
		}
		if w.book.Running().Rule(id) != nil {
			t.Fatal("a refused save runs")
		}
		bad := strings.Replace(loginRule, "eventName:", "eventName|sideways:", 1)
		if rec := w.api("POST", "/api/v1/rules", carol, RuleRequest{Content: bad}); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("a broken rule is saved: %d", rec.Code)
		}
		rec := w.api("POST", "/api/v1/rules", carol, RuleRequest{Content: loginRule})
		if rec.Code != 200 || decode[struct{ File string }](t, rec).File != id {
			t.Fatalf("save: %d %s", rec.Code, rec.Body)
		}
		if r := w.book.Running().Rule(id); r == nil || r.File != SavedRuleFile(id) {
			t.Fatalf("the saved rule does not run: %+v", r)
		}
		got := decode[struct {
			Origin, Content string
			SavedFile       string `json:"saved_file"`
		}](t, w.api("GET", "/api/v1/rules/"+id, alice, nil))
		if got.Origin != "console" || got.SavedFile != id || got.Content != loginRule {
			t.Errorf("the saved rule: %+v", got)
		}
		// Saving it again replaces it: its own id is no collision.
		edited := strings.Replace(loginRule, "level: low", "level: medium", 1)
		if rec := w.api("PUT", "/api/v1/rules/files/"+id, carol, RuleRequest{Content: edited}); rec.Code != 200 || w.book.Running().Rule(id).Level != "medium" {
			t.Errorf("edit: %d %s", rec.Code, rec.Body)
		}
		if rec := w.api("PUT", "/api/v1/rules/files/no-such-file", carol, RuleRequest{Content: edited}); rec.Code != 404 {
			t.Errorf("edit of a missing file: %d", rec.Code)
		}

		if rec := w.api("POST", "/api/v1/rules/"+noMFARule+"/off", carol, RuleRequest{}); rec.Code != 400 {
			t.Errorf("off without a reason: %d", rec.Code)
		}
		if rec := w.api("POST", "/api/v1/rules/"+noMFARule+"/off", carol, RuleRequest{Reason: "every login here is federated"}); rec.Code != 204 {
			t.Fatalf("off: %d %s", rec.Code, rec.Body)
		}
		e := w.book.Running()
		if !e.IsOff(e.Rule(noMFARule)) {
			t.Error("the rule turned off runs on")
		}
		for _, r := range decode[[]RuleInfo](t, w.api("GET", "/api/v1/rules", bob, nil)) {
			if r.ID == noMFARule && (r.Off == nil || r.Off.By != "carol" || r.Off.Reason != "every login here is federated") {
				t.Errorf("the list says %+v", r.Off)
			}
		}
		if rec := w.api("POST", "/api/v1/rules/"+noMFARule+"/on", carol, nil); rec.Code != 204 || w.book.Running().IsOff(w.book.Running().Rule(noMFARule)) {
			t.Errorf("on: %d", rec.Code)
		}
		if rec := w.api("POST", "/api/v1/rules/no-such-rule/off", carol, RuleRequest{Reason: "x"}); rec.Code != 404 {
			t.Errorf("off of a missing rule: %d", rec.Code)
		}
		if rec := w.api("DELETE", "/api/v1/rules/files/"+id, carol, nil); rec.Code != 204 || w.book.Running().Rule(id) != nil {
			t.Errorf("delete: %d", rec.Code)
		}
		if rec := w.api("DELETE", "/api/v1/rules/files/"+id, carol, nil); rec.Code != 404 {
			t.Errorf("delete again: %d", rec.Code)
		}
		want := []string{"saved rule file " + id, "saved rule file " + id, "turned rule " + noMFARule + " off: every login here is federated",
			"turned rule " + noMFARule + " on", "deleted rule file " + id}
		var got2 []string
		w.mu.Lock()
		for _, r := range w.records {
			if r.Action == "rule.change" && r.Status < 300 {
				if r.Actor != "carol" {
					t.Errorf("a change by %s", r.Actor)
				}
				got2 = append(got2, r.Detail)
			}
		}
		w.mu.Unlock()
		if strings.Join(got2, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(got2, "\n"), strings.Join(want, "\n"))
		}
	})
}

var testedField = regexp.MustCompile(`name="tested" value="([0-9a-f]+)"`)

func TestConsoleRules(t *testing.T) {
	w := newRulesWorld(t)
	alice, carol := w.login("alice"), w.login("carol")
	const id = "0b5e2f4c-9a7e-4d1b-8c3a-2f6e1d7c9b01"

	body := w.do("GET", "/rules", alice, nil).Body.String()
	if !strings.Contains(body, "AWS Console Login Without MFA") || strings.Contains(body, `href="/rules/new"`) {
		t.Errorf("alice's rules page: has the built-in rule %v, offers new rules %v",
			strings.Contains(body, "AWS Console Login Without MFA"), strings.Contains(body, `href="/rules/new"`))
	}
	if rec := w.do("GET", "/rules/new", w.login("bob"), nil); rec.Code != http.StatusForbidden {
		t.Errorf("a viewer opens the editor: %d", rec.Code)
	}
	body = w.do("GET", "/rules?q=mfa&origin=builtin", carol, nil).Body.String()
	if !strings.Contains(body, `href="/rules/new"`) || !strings.Contains(body, noMFARule) || strings.Contains(body, "Root Account") {
		t.Errorf("carol's filtered rules page:\n%s", body)
	}
	csrf := w.csrfOf(carol)

	rec := w.do("GET", "/rules/new?from="+noMFARule, carol, nil)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "id: "+noMFARule) || !strings.Contains(rec.Body.String(), "MFAUsed") {
		t.Errorf("a copy keeps its id or loses its detection: %d", rec.Code)
	}

	// A backtest shows the hits of carol's tenants, the payload in the
	// rule's title as text, and a save form tied to what was tested.
	rec = w.do("POST", "/rules/backtest", carol, url.Values{"csrf": {csrf}, "content": {loginRule}, "days": {"7"}})
	body = rec.Body.String()
	total := w.logins["team-a"] + w.logins["team-b"]
	if rec.Code != 200 || !strings.Contains(body, `data-total="`+itoa(total)+`"`) || !strings.Contains(body, "chart-bar") {
		t.Fatalf("backtest: %d\n%s", rec.Code, body)
	}
	assertEscaped(t, "backtest", body)
	m := testedField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no save form after the backtest")
	}
	if rec := w.do("POST", "/rules/save", carol, url.Values{"csrf": {csrf}, "content": {loginRule + "# changed\n"}, "tested": {m[1]}}); rec.Code != http.StatusConflict {
		t.Errorf("a save of what was not backtested: %d", rec.Code)
	}
	if rec := w.do("POST", "/rules/save", carol, url.Values{"content": {loginRule}, "tested": {m[1]}}); rec.Code != http.StatusForbidden {
		t.Errorf("a save without the CSRF token: %d", rec.Code)
	}
	if w.book.Running().Rule(id) != nil {
		t.Fatal("a refused save runs")
	}
	rec = w.do("POST", "/rules/save", carol, url.Values{"csrf": {csrf}, "content": {loginRule}, "tested": {m[1]}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/rules/"+id+"?done=saved" || w.book.Running().Rule(id) == nil {
		t.Fatalf("save: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	body = w.do("GET", "/rules/"+id+"?done=saved", carol, nil).Body.String()
	assertEscaped(t, "the saved rule", body)
	if !strings.Contains(body, "Saved.") || !strings.Contains(body, "/rules/files/"+id+"/edit") {
		t.Errorf("the saved rule's page:\n%s", body)
	}
	assertEscaped(t, "the rules", w.do("GET", "/rules", alice, nil).Body.String())

	// Turning off needs the CSRF token and a reason.
	if rec := w.do("POST", "/rules/"+id+"/off", carol, url.Values{"reason": {"noisy"}}); rec.Code != http.StatusForbidden {
		t.Errorf("off without the CSRF token: %d", rec.Code)
	}
	if rec := w.do("POST", "/rules/"+id+"/off", alice, url.Values{"csrf": {w.csrfOf(alice)}, "reason": {"noisy"}}); rec.Code != http.StatusForbidden {
		t.Errorf("alice turns a rule off: %d", rec.Code)
	}
	if rec := w.do("POST", "/rules/"+id+"/off", carol, url.Values{"csrf": {csrf}}); rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "why=") {
		t.Errorf("off without a reason: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if e := w.book.Running(); e.IsOff(e.Rule(id)) {
		t.Fatal("a refused switch took")
	}
	rec = w.do("POST", "/rules/"+id+"/off", carol, url.Values{"csrf": {csrf}, "reason": {"noisy " + xssAttr}})
	if e := w.book.Running(); rec.Code != http.StatusSeeOther || !e.IsOff(e.Rule(id)) {
		t.Fatalf("off: %d", rec.Code)
	}
	body = w.do("GET", "/rules/"+id, carol, nil).Body.String()
	assertEscaped(t, "a rule turned off", body)
	if !strings.Contains(body, "state-off") || !strings.Contains(body, "Turn on") {
		t.Errorf("the rule's page does not say it is off")
	}
	if body := w.do("GET", "/rules?state=off", alice, nil).Body.String(); !strings.Contains(body, id) || strings.Contains(body, noMFARule) {
		t.Error("the list of rules turned off")
	}
	rec = w.do("POST", "/rules/files/"+id+"/delete", carol, url.Values{"csrf": {csrf}})
	if rec.Code != http.StatusSeeOther || w.book.Running().Rule(id) != nil {
		t.Errorf("delete: %d", rec.Code)
	}
	if rec := w.do("GET", "/rules/files/"+id+"/edit", carol, nil); rec.Code != 404 {
		t.Errorf("the editor of a deleted file: %d", rec.Code)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestBacktestRange(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		days     int
		from, to string
		want     [2]string // RFC 3339, or the error's text
	}{
		{7, "", "", [2]string{"2026-11-27T00:00:00Z", "2026-12-03T15:04:05Z"}},
		{1, "", "", [2]string{"2026-12-03T00:00:00Z", "2026-12-03T15:04:05Z"}},
		{0, "", "", [2]string{"days must be from 1 to 90"}},
		{91, "", "", [2]string{"days must be from 1 to 90"}},
		{7, "2024-07-30", "2024-08-02", [2]string{"2024-07-30T00:00:00Z", "2024-08-02T00:00:00Z"}},
		{7, "-36h", "", [2]string{"2026-12-02T03:04:05Z", "2026-12-03T15:04:05Z"}},
		{7, "2024-08-02", "2024-07-30", [2]string{"the range ends before it starts"}},
		{7, "2024-01-01", "2024-08-02", [2]string{"the range is longer than 90 days"}},
		{7, "yesterday", "", [2]string{"from: "}},
	}
	for _, tt := range tests {
		from, to, err := backtestRange(tt.days, tt.from, tt.to, now)
		var got [2]string
		if err != nil {
			got[0] = err.Error()
			if strings.HasPrefix(got[0], tt.want[0]) && tt.want[1] == "" {
				continue
			}
		} else {
			got = [2]string{from.Format(time.RFC3339), to.Format(time.RFC3339)}
		}
		if got != tt.want {
			t.Errorf("backtestRange(%d, %q, %q) = %q, want %q", tt.days, tt.from, tt.to, got, tt.want)
		}
	}
}

// gatedScanner holds each scan until released.
type gatedScanner struct {
	detect.Scanner
	started, release chan struct{}
}

func (g gatedScanner) Scan(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	g.started <- struct{}{}
	<-g.release
	return g.Scanner.Scan(ctx, req, fn)
}

// TestBacktestsBounded: backtests beyond the few a server runs at once
// are refused with a time to retry, not queued behind them.
func TestBacktestsBounded(t *testing.T) {
	w := newRulesWorld(t)
	gate := gatedScanner{Scanner: w.opts.Hunter, started: make(chan struct{}, 2*maxScans), release: make(chan struct{})}
	w.opts.Hunter, w.opts.Gatherer = gate, prometheus.NewRegistry()
	w.h = Handler(w.opts)
	carol := w.login("carol")
	csrf := w.csrfOf(carol)
	codes := make(chan int, maxScans)
	for range maxScans {
		go func() {
			codes <- w.api("POST", "/api/v1/rules/backtest", carol, RuleRequest{Content: loginRule}).Code
		}()
		<-gate.started
	}
	rec := w.api("POST", "/api/v1/rules/backtest", carol, RuleRequest{Content: loginRule})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a backtest beyond the bound: %d %s", rec.Code, rec.Header())
	}
	if rec := w.do("POST", "/rules/backtest", carol, url.Values{"csrf": {csrf}, "content": {loginRule}}); rec.Code != http.StatusTooManyRequests ||
		!strings.Contains(rec.Body.String(), "try again in a moment") {
		t.Errorf("the console's backtest beyond the bound: %d", rec.Code)
	}
	close(gate.release)
	for range maxScans {
		if code := <-codes; code != 200 {
			t.Errorf("a backtest within the bound: %d", code)
		}
	}
	if rec := w.api("POST", "/api/v1/rules/backtest", carol, RuleRequest{Content: loginRule}); rec.Code != 200 {
		t.Errorf("a backtest once the others ended: %d", rec.Code)
	}
}
