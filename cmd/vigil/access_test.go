package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// apiAs sends a request with a bearer token and returns the status and
// body of the answer.
func (s *served) apiAs(token, method, path string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// searchAs runs a search as token and returns the status and the rows
// as maps of column to value.
func (s *served) searchAs(token, q string) (int, []map[string]any, string) {
	s.t.Helper()
	code, body := s.apiAs(token, "GET", "/api/v1/search?limit=1000&q="+url.QueryEscape(q), nil)
	if code != 200 {
		return code, nil, string(body)
	}
	var res struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		s.t.Fatalf("search %q: %v: %s", q, err, body)
	}
	rows := make([]map[string]any, len(res.Rows))
	for i, r := range res.Rows {
		rows[i] = map[string]any{}
		for j, c := range res.Columns {
			rows[i][c] = r[j]
		}
	}
	return code, rows, string(body)
}

// accessWorld is a server holding two teams' CloudTrail (Stratus Red
// Team detonations: team-a stopped a trail, team-b read an instance's
// password data), and the people who use it: tokens, ids and the grant
// shared with the partner.
type accessWorld struct {
	srv  *served
	data string
	// admin is the local administrator's token; alice is team-a's
	// analyst, bob team-b's viewer, carol a CSIRT viewer of every
	// tenant, dave team-a's auditor, partner holds a grant of team-a's
	// trail stops without requestParameters, late a grant of events
	// from before any there are.
	admin, alice, bob, carol, dave, partner, late string
	aliceID, bobID                                string
	grant                                         string // the partner's grant
}

// serveTwoTeams serves a new data directory holding team-a's and
// team-b's CloudTrail (Stratus Red Team detonations: team-a stopped a
// trail, team-b read an instance's password data).
func serveTwoTeams(t *testing.T) (*served, string) {
	t.Helper()
	needFixtures(t)
	data := t.TempDir()
	srv := serve(t, data)
	var want []string // "tenant count"
	for tenant, file := range map[string]string{
		"team-a": "aws.defense-evasion.cloudtrail-stop.json",
		"team-b": "aws.credential-access.ec2-get-password-data.json",
	} {
		b, err := os.ReadFile(filepath.Join(stratus, file))
		if err != nil {
			t.Fatal(err)
		}
		srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant="+tenant, b)
		var records []json.RawMessage
		if err := json.Unmarshal(b, &records); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s %d", tenant, len(records)))
	}
	slices.Sort(want)
	// Every event, not only some of each tenant: a scale-out stores each
	// partition's on its own.
	srv.wait("both tenants' events", func() bool {
		_, rows, _ := srv.searchAs(srv.token, "source:aws.cloudtrail | stats count() by tenant")
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%v %v", r["tenant"], r["count"]))
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
	return srv, data
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	srv, data := serveTwoTeams(t)
	w := &accessWorld{srv: srv, data: data, admin: srv.token}
	principal := func(name, password string) string {
		return w.mustAPI("POST", "/api/v1/access/principals", map[string]any{"name": name, "password": password})["id"].(string)
	}
	tokenOf := func(id string) string {
		return w.mustAPI("POST", "/api/v1/access/tokens", map[string]any{"principal": id, "days": 1})["secret"].(string)
	}
	bind := func(subject, tenant, role string) {
		w.mustAPI("POST", "/api/v1/access/bindings", map[string]any{"subject": subject, "tenant": tenant, "role": role})
	}
	w.aliceID, w.bobID = principal("alice", "correct horse battery"), principal("bob", "")
	carolID, daveID := principal("carol", ""), principal("dave", "")
	partnerID, lateID := principal("partner", ""), principal("late-partner", "")
	bind("principal:"+w.aliceID, "team-a", "analyst")
	bind("principal:"+w.bobID, "team-b", "viewer")
	w.mustAPI("POST", "/api/v1/access/groups", map[string]any{"name": "csirt"})
	w.mustAPI("POST", "/api/v1/access/groups/csirt/members", map[string]any{"principal": "carol"})
	bind("group:csirt", "*", "viewer")
	bind("principal:"+daveID, "team-a", "auditor")
	w.grant = w.mustAPI("POST", "/api/v1/grants", map[string]any{
		"owner": "team-a", "grantee": "principal:" + partnerID, "filter": "eventName:StopLogging",
		"redact": []string{"requestParameters"}, "reason": "incident 42 with the MSSP", "expires": time.Now().Add(24 * time.Hour),
	})["id"].(string)
	w.mustAPI("POST", "/api/v1/grants", map[string]any{
		"owner": "team-a", "grantee": "principal:" + lateID, "to": "2020-01-01T00:00:00Z",
		"reason": "events before the engagement only", "expires": time.Now().Add(24 * time.Hour),
	})
	w.alice, w.bob, w.carol, w.dave = tokenOf(w.aliceID), tokenOf(w.bobID), tokenOf(carolID), tokenOf(daveID)
	w.partner, w.late = tokenOf(partnerID), tokenOf(lateID)
	return w
}

// auditCounts checks the audit trail holds as many records as want says
// for each query (over source:vigil.audit). Records reach the store a
// moment after their requests are answered, so it waits for them.
func (w *accessWorld) auditCounts(want map[string]int) {
	w.srv.t.Helper()
	got := map[string]int{}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for q := range want {
			_, rows, _ := w.srv.searchAs(w.admin, "source:vigil.audit "+q)
			got[q] = len(rows)
		}
		if maps.Equal(got, want) || time.Now().After(deadline) {
			break
		}
	}
	for q, n := range want {
		if got[q] != n {
			w.srv.t.Errorf("audit records of %s: %d, want %d", q, got[q], n)
		}
	}
}

// mustAPI sends a request as the administrator and returns its JSON
// object answer, failing the test on anything but a 2xx.
func (w *accessWorld) mustAPI(method, path string, body any) map[string]any {
	w.srv.t.Helper()
	code, out := w.srv.apiAs(w.admin, method, path, body)
	if code/100 != 2 {
		w.srv.t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	var v map[string]any
	json.Unmarshal(out, &v)
	return v
}

// TestAccessMatrix checks, for each kind of caller, that what the API
// answers holds exactly what its roles and grants allow: events,
// aggregates, alerts, detections, the audit trail and error messages,
// with the query tricks a caller would try.
func TestAccessMatrix(t *testing.T) {
	w := newAccessWorld(t)
	srv, data := w.srv, w.data
	alice, bob, carol, dave, partner, late := w.alice, w.bob, w.carol, w.dave, w.partner, w.late
	aliceID, bobID := w.aliceID, w.bobID
	mustAPI := w.mustAPI

	tenants := func(rows []map[string]any) []string {
		var ts []string
		for _, r := range rows {
			if t, _ := r["tenant"].(string); !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
		slices.Sort(ts)
		return ts
	}
	for _, tc := range []struct {
		who, token, q string
		status        int
		tenants       []string
		rows          int // -1: any number
	}{
		{"analyst of team-a", alice, "*", 200, []string{"team-a"}, -1},
		{"analyst of team-a, OR injection", alice, "tenant:team-b OR *", 200, []string{"team-a"}, -1},
		{"analyst of team-a, naming team-b", alice, "tenant:team-b", 200, nil, 0},
		{"analyst of team-a, stats over all", alice, "| stats count() by tenant", 200, []string{"team-a"}, 1},
		{"analyst of team-a, raw JSON path", alice, "recipientAccountId:* | stats count() by tenant", 200, []string{"team-a"}, 1},
		{"analyst of team-a, the audit trail", alice, "source:vigil.audit", 200, nil, 0},
		{"viewer of team-b", bob, "| stats count() by tenant", 200, []string{"team-b"}, 1},
		{"CSIRT viewer of every tenant", carol, "| stats count() by tenant", 200, []string{"team-a", "team-b"}, 2},
		{"partner, shared events", partner, "*", 200, []string{"team-a"}, 1},
		{"partner, stats over all", partner, "| stats count() by tenant, eventName", 200, []string{"team-a"}, 1},
		{"partner, redacted field", partner, "requestParameters.name:*", 400, nil, 0},
		{"partner, redacted field by another case", partner, "RequestParameters.Name:*", 400, nil, 0},
		{"partner, redacted field in stats", partner, "| stats values(requestParameters.name)", 400, nil, 0},
		{"partner, free text over hidden fields", partner, "stratus", 400, nil, 0},
		{"partner outside the grant's time range", late, "*", 200, nil, 0},
	} {
		t.Run(tc.who+": "+tc.q, func(t *testing.T) {
			code, rows, body := srv.searchAs(tc.token, tc.q)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if got := tenants(rows); !slices.Equal(got, tc.tenants) {
				t.Errorf("tenants %v, want %v", got, tc.tenants)
			}
			if tc.rows >= 0 && len(rows) != tc.rows {
				t.Errorf("%d rows, want %d: %s", len(rows), tc.rows, body)
			}
			if strings.Contains(body, "team-b") && !slices.Contains(tc.tenants, "team-b") && tc.q != "tenant:team-b" && !strings.Contains(tc.q, "team-b") {
				t.Errorf("the answer names team-b: %s", body)
			}
		})
	}
	// The partner's event comes without what the grant hides.
	_, rows, body := srv.searchAs(partner, "*")
	if len(rows) != 1 || strings.Contains(body, "requestParameters") || strings.Contains(body, "stratus-red-team-ct-stop-trail") || !strings.Contains(body, "StopLogging") {
		t.Errorf("the partner's event is not redacted: %s", body)
	}

	// Alerts and detections: team-a's trail stop raised one, which
	// team-b's viewer neither lists nor reads.
	var aAlert string
	srv.wait("team-a's alert", func() bool {
		_, out := srv.apiAs(alice, "GET", "/api/v1/alerts", nil)
		var as []map[string]any
		json.Unmarshal(out, &as)
		for _, a := range as {
			if a["tenant"] == "team-a" {
				aAlert = a["id"].(string)
			}
		}
		return aAlert != ""
	})
	for _, path := range []string{"/api/v1/alerts", "/api/v1/detections?since=-1000000h", "/api/v1/cases"} {
		code, out := srv.apiAs(bob, "GET", path, nil)
		if code != 200 || strings.Contains(string(out), "team-a") || strings.Contains(string(out), aAlert) {
			t.Errorf("team-b's viewer, %s: %d %s", path, code, out)
		}
	}
	code, out := srv.apiAs(bob, "GET", "/api/v1/alerts/"+aAlert, nil)
	code2, out2 := srv.apiAs(bob, "GET", "/api/v1/alerts/no-such-alert", nil)
	if code != 404 || code2 != 404 || strings.Contains(string(out), "team-a") {
		t.Errorf("team-b's viewer reading team-a's alert: %d %s (a missing one: %d %s)", code, out, code2, out2)
	}
	if code, out := srv.apiAs(bob, "POST", "/api/v1/alerts/"+aAlert+"/acknowledge", map[string]string{}); code != 403 {
		t.Errorf("a viewer acknowledged an alert: %d %s", code, out)
	}
	// A grant shares events, not the owner's alerts.
	if code, out := srv.apiAs(partner, "GET", "/api/v1/alerts", nil); code != 200 || string(bytes.TrimSpace(out)) != "[]" {
		t.Errorf("a partner with a grant of events listed alerts: %d %s", code, out)
	}
	// Managing access is an administrator's: an analyst may not bind
	// roles, share another tenant's events, or make principals.
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/access/bindings", map[string]any{"subject": "principal:" + aliceID, "tenant": "team-b", "role": "admin"}},
		{"POST", "/api/v1/grants", map[string]any{"owner": "team-b", "grantee": "tenant:team-a", "reason": "x", "expires": time.Now().Add(time.Hour)}},
		{"POST", "/api/v1/access/principals", map[string]any{"name": "mallory"}},
		{"POST", "/api/v1/access/tokens", map[string]any{"principal": bobID, "days": 1}},
	} {
		if code, out := srv.apiAs(alice, req.method, req.path, req.body); code != 403 {
			t.Errorf("analyst %s %s: %d %s", req.method, req.path, code, out)
		}
	}

	// Revoked, the grant shares nothing: the partner, with no role
	// anywhere, may no longer search.
	mustAPI("DELETE", "/api/v1/grants/"+w.grant, nil)
	if code, rows, body := srv.searchAs(partner, "*"); code != 403 || len(rows) != 0 {
		t.Errorf("after the grant was revoked, the partner searched: %d %s", code, body)
	}

	// A console login: a session cookie that is HttpOnly, Secure and
	// SameSite; its changes need the CSRF token.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	post := func(path string, body any, csrf string) *http.Response {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.base+path, bytes.NewReader(b))
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := post("/api/v1/login", map[string]string{"name": "alice", "password": fmt.Sprint("wrong ", i)}, ""); resp.StatusCode != 401 {
			t.Fatalf("a wrong password: %s", resp.Status)
		}
	}
	b, _ := json.Marshal(map[string]string{"name": "alice", "password": "correct horse battery"})
	resp, err := client.Post(srv.base+"/api/v1/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 || login.CSRF == "" || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login: %s, cookie %q", resp.Status, cookie)
	}
	// The jar keeps a Secure cookie for https only: send it by hand.
	sess := resp.Cookies()[0]
	whoami, _ := http.NewRequest("GET", srv.base+"/api/v1/whoami", nil)
	whoami.AddCookie(sess)
	if resp, err := http.DefaultClient.Do(whoami); err != nil || resp.StatusCode != 200 {
		t.Fatalf("whoami with the session: %v %v", resp, err)
	}
	logout := func(csrf string) int {
		req, _ := http.NewRequest("POST", srv.base+"/api/v1/logout", nil)
		req.AddCookie(sess)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := logout(""); code != 403 {
		t.Errorf("a change without the CSRF token: %d", code)
	}
	if code := logout(login.CSRF); code != 200 {
		t.Errorf("logout with the CSRF token: %d", code)
	}
	if resp, err := http.DefaultClient.Do(whoami); err != nil || resp.StatusCode != 401 {
		t.Errorf("whoami after logout: %v %v", resp, err)
	}
	// Five wrong passwords lock the name out, the right one included.
	for i := range 3 {
		post("/api/v1/login", map[string]string{"name": "alice", "password": fmt.Sprint("again ", i)}, "")
	}
	if resp := post("/api/v1/login", map[string]string{"name": "alice", "password": "correct horse battery"}, ""); resp.StatusCode != 429 {
		t.Errorf("after five wrong passwords, login: %s", resp.Status)
	}

	// The audit trail: team-a's auditor reads the records of actions in
	// team-a and no other; every search above is one record; the logins,
	// failed and not, are there; vigil verify proves them.
	w.auditCounts(map[string]int{
		"action:search actor:alice":                       6,
		"action:login outcome:failure":                    7,
		"action:login outcome:success":                    1,
		"action:logout":                                   2, // one refused without the CSRF token
		"action:grant.* outcome:success":                  3, // two made, one revoked
		"action:grant.create outcome:failure actor:alice": 1,
		"action:role.bind outcome:success":                4,
		"action:role.bind outcome:failure actor:alice":    1,
		"action:group.add outcome:success":                1,
		"action:principal.create outcome:success":         6,
		"action:token.create outcome:success":             6,
	})
	_, recs, body := srv.searchAs(dave, "*")
	if len(recs) == 0 || tenants(recs)[0] != "_system" || len(tenants(recs)) != 1 || strings.Contains(body, `tenant:team-b"`) {
		t.Errorf("team-a's auditor reads %d records of tenants %v", len(recs), tenants(recs))
	}
	if code, rows, _ := srv.searchAs(dave, "tenant:team-a"); code != 200 || len(rows) != 0 {
		t.Errorf("an auditor read events: %d, %d rows", code, len(rows))
	}
	srv.stop()
	if code, out := verifyData(t, data); code != 0 {
		t.Errorf("vigil verify:\n%s", out)
	}
}
