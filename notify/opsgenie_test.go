package notify

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The Alert API as documented is summed up at the top of
// pagerduty_test.go, which also holds the stand-in server and the
// helpers these tests share.

// TestOpsgenieRequests checks each action's request against the Alert
// API as documented: URL, header, and body.
func TestOpsgenieRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		base    string // after the server's URL
		m       func(m *Message)
		path    string // decoded
		query   string
		escaped string // the path as sent, if not path
		check   func(t *testing.T, body map[string]any)
	}{{
		name: "create",
		path: "/v2/alerts",
		check: func(t *testing.T, body map[string]any) {
			if got, want := sortedKeys(body), []string{"alias", "description", "details", "message", "priority", "source", "tags"}; !slices.Equal(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			if body["message"] != pagingMessage.Title || body["alias"] != pagingMessage.Key || body["priority"] != "P2" || body["source"] != "vigil" {
				t.Errorf("message %v, alias %v, priority %v, source %v", body["message"], body["alias"], body["priority"], body["source"])
			}
			if body["description"] != pagingMessage.Text() {
				t.Errorf("description %q, want %q", body["description"], pagingMessage.Text())
			}
			want := map[string]any{"actor": "alice", "source address": "203.0.113.9", "account": "111122223333"}
			if got, _ := body["details"].(map[string]any); !maps.Equal(got, want) {
				t.Errorf("details %v, want %v", got, want)
			}
			if tags, _ := body["tags"].([]any); !slices.Equal(tags, []any{"vigil"}) {
				t.Errorf("tags %v, want [vigil]", body["tags"])
			}
		},
	}, {
		name: "create with only a title",
		m:    func(m *Message) { m.Action, m.Key, m.Fields, m.Link = "", "", nil, "" },
		path: "/v2/alerts",
		check: func(t *testing.T, body map[string]any) {
			// Without an alias, Opsgenie makes one up.
			if got, want := sortedKeys(body), []string{"description", "message", "priority", "source", "tags"}; !slices.Equal(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
		},
	}, {
		name:  "acknowledge",
		m:     func(m *Message) { m.Action = Acknowledge },
		path:  "/v2/alerts/" + pagingMessage.Key + "/acknowledge",
		query: "identifierType=alias",
		check: func(t *testing.T, body map[string]any) {
			want := map[string]any{"source": "vigil", "note": "[acknowledge] " + pagingMessage.Text()}
			if !maps.Equal(body, want) {
				t.Errorf("body %v, want %v", body, want)
			}
		},
	}, {
		name:  "close",
		m:     func(m *Message) { m.Action = Resolve },
		path:  "/v2/alerts/" + pagingMessage.Key + "/close",
		query: "identifierType=alias",
		check: func(t *testing.T, body map[string]any) {
			want := map[string]any{"source": "vigil", "note": "[resolve] " + pagingMessage.Text()}
			if !maps.Equal(body, want) {
				t.Errorf("body %v, want %v", body, want)
			}
		},
	}, {
		name:    "alias escaped in the path",
		m:       func(m *Message) { m.Action, m.Key = Resolve, "a/b c?d#e%f" },
		path:    "/v2/alerts/a/b c?d#e%f/close",
		escaped: "/v2/alerts/a%2Fb%20c%3Fd%23e%25f/close",
		query:   "identifierType=alias",
	}, {
		name:    "alias that is a path step",
		m:       func(m *Message) { m.Action, m.Key = Acknowledge, ".." },
		path:    "/v2/alerts/../acknowledge",
		escaped: "/v2/alerts/%2E%2E/acknowledge",
		query:   "identifierType=alias",
	}, {
		name: "base with a path and a trailing slash",
		base: "/opsgenie/",
		path: "/opsgenie/v2/alerts",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPagingServer(t, http.StatusAccepted, `{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}`)
			o := &Opsgenie{APIKey: pagingAPIKey, URL: s.URL + tc.base}
			m := pagingMessage
			if tc.m != nil {
				tc.m(&m)
			}
			if err := o.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			r := s.only(t)
			escaped := cmp.Or(tc.escaped, tc.path)
			if r.Method != http.MethodPost || r.Path != tc.path || r.EscapedPath != escaped || r.RawQuery != tc.query {
				t.Errorf("request %s %s (%s) ?%s, want POST %s (%s) ?%s", r.Method, r.Path, r.EscapedPath, r.RawQuery, tc.path, escaped, tc.query)
			}
			if got := r.Header.Get("Authorization"); got != "GenieKey "+pagingAPIKey {
				t.Errorf("Authorization %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			body := jsonObject(t, r.Body)
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// TestOpsgeniePriority checks the mapping of vigil's severities to
// Opsgenie's priorities.
func TestOpsgeniePriority(t *testing.T) {
	for _, tc := range []struct{ severity, want string }{
		{"critical", "P1"},
		{"high", "P2"},
		{"medium", "P3"},
		{"low", "P4"},
		{"informational", "P5"},
		{"", "P5"},
		{"bogus", "P5"},
		{"CRITICAL", "P1"},
	} {
		s := newPagingServer(t, http.StatusAccepted, "")
		m := pagingMessage
		m.Severity = tc.severity
		if err := (&Opsgenie{APIKey: pagingAPIKey, URL: s.URL}).Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if got := jsonObject(t, s.only(t).Body)["priority"]; got != tc.want {
			t.Errorf("severity %q: priority %v, want %q", tc.severity, got, tc.want)
		}
	}
}

// TestOpsgenieLimits: every field is cut to what the Alert API takes,
// by characters, and the alias the same way for every action.
func TestOpsgenieLimits(t *testing.T) {
	long := strings.Repeat("é", 30000) // two bytes a character, so that a byte cut would show
	m := pagingMessage
	m.Title, m.Key = long, long
	m.Fields = []Field{{"first", strings.Repeat("a", 5000)}, {"second", strings.Repeat("b", 5000)}, {"third", "c"}}
	s := newPagingServer(t, http.StatusAccepted, "")
	o := &Opsgenie{APIKey: pagingAPIKey, URL: s.URL, Source: strings.Repeat("s", 200)}
	for _, a := range []Action{Trigger, Acknowledge, Resolve} {
		m.Action = a
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	create := jsonObject(t, got[0].Body)
	for _, tc := range []struct {
		field string
		max   int
	}{{"message", 130}, {"alias", 512}, {"description", 15000}, {"source", 100}} {
		v, _ := create[tc.field].(string)
		if n := utf8.RuneCountInString(v); n == 0 || n > tc.max || !utf8.ValidString(v) {
			t.Errorf("%s of %d characters, want at most %d", tc.field, n, tc.max)
		}
	}
	details, _ := create["details"].(map[string]any)
	n := 0
	for k, v := range details {
		n += utf8.RuneCountInString(k) + utf8.RuneCountInString(v.(string))
	}
	// The first fields keep their room; what does not fit is cut, or
	// left out.
	second, _ := details["second"].(string)
	if n > 8000 || details["first"] != strings.Repeat("a", 5000) || !strings.HasSuffix(second, "b…") || details["third"] != nil {
		t.Errorf("details of %d characters: first whole %v, second %.10q…, third %v", n, details["first"] == strings.Repeat("a", 5000), second, details["third"])
	}
	alias := create["alias"].(string)
	for _, r := range got[1:] {
		if !strings.HasPrefix(r.Path, "/v2/alerts/"+alias+"/") {
			t.Errorf("%s for another alias than the create's", r.Path)
		}
		body := jsonObject(t, r.Body)
		if note, _ := body["note"].(string); utf8.RuneCountInString(note) > 25000 {
			t.Errorf("note of %d characters", utf8.RuneCountInString(note))
		}
	}
}

// TestOpsgenieResponses checks how each answer is taken: 2xx delivered,
// 400, 401, 403, 404 and 422 permanent, 429 and 5xx to be retried; and
// that errors give Opsgenie's reason but never the key.
func TestOpsgenieResponses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		ok, retry bool
		want      string // in the error
	}{
		{status: 202, body: `{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c"}`, ok: true},
		{status: 200, ok: true},
		{status: 201, ok: true},
		{status: 400, body: `{"message":"Invalid JSON body","took":0.001,"requestId":"r"}`, want: "Invalid JSON body"},
		{status: 401, body: `{"message":"Key ` + pagingAPIKey + ` is invalid","took":0.001,"requestId":"r"}`, want: "Key [redacted] is invalid"},
		{status: 402, want: "402"},
		{status: 403, body: `{"message":"You do not have the permission","took":0.001}`, want: "permission"},
		{status: 404, body: `{"message":"Alert does not exist","took":0.001}`, want: "Alert does not exist"},
		{status: 422, body: `{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty.","priority":"should be one of [P1, P2, P3, P4, P5]"},"took":0.001}`, want: "not processable. Please check the errors.; message: Message can not be empty.; priority: should be"},
		{status: 429, body: `{"message":"Rate limit exceeded"}`, retry: true, want: "Rate limit exceeded"},
		{status: 500, retry: true, want: "500"},
		{status: 503, body: "<html>down</html>", retry: true, want: "503 Service Unavailable"},
	} {
		for _, a := range []Action{Trigger, Acknowledge, Resolve} {
			s := newPagingServer(t, tc.status, tc.body)
			m := pagingMessage
			m.Action = a
			err := (&Opsgenie{ChannelName: "og-eu", APIKey: pagingAPIKey, URL: s.URL}).Send(context.Background(), m)
			t.Logf("%d, %s: error: %v", tc.status, a, err)
			checkPagingError(t, err, tc.ok, tc.retry, "og-eu", pagingAPIKey)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%d, %s: error %q, want it to hold %q", tc.status, a, err, tc.want)
			}
		}
	}
}

// TestOpsgenieRefused checks the messages refused without asking
// Opsgenie, which would refuse them too.
func TestOpsgenieRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		m    func(m *Message)
	}{
		{name: "no API key"},
		{name: "acknowledge without key", key: pagingAPIKey, m: func(m *Message) { m.Action, m.Key = Acknowledge, "" }},
		{name: "close without key", key: pagingAPIKey, m: func(m *Message) { m.Action, m.Key = Resolve, "" }},
		{name: "unknown action", key: pagingAPIKey, m: func(m *Message) { m.Action = "snooze" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPagingServer(t, http.StatusAccepted, "")
			m := pagingMessage
			if tc.m != nil {
				tc.m(&m)
			}
			err := (&Opsgenie{APIKey: tc.key, URL: s.URL}).Send(context.Background(), m)
			checkPagingError(t, err, false, false, "opsgenie", pagingAPIKey)
			if n := len(s.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestOpsgenieUnreachable: an Opsgenie that cannot be reached is worth
// retrying, and the error still keeps the key out.
func TestOpsgenieUnreachable(t *testing.T) {
	s := newPagingServer(t, http.StatusAccepted, "")
	s.Close()
	err := (&Opsgenie{APIKey: pagingAPIKey, URL: s.URL}).Send(context.Background(), pagingMessage)
	checkPagingError(t, err, false, true, "opsgenie", pagingAPIKey)
}

// TestOpsgenieDefaults checks the defaults a zero configuration gets.
func TestOpsgenieDefaults(t *testing.T) {
	if got := (&Opsgenie{}).Name(); got != "opsgenie" {
		t.Errorf("Name() = %q, want opsgenie", got)
	}
	if got := (&Opsgenie{ChannelName: "og-eu"}).Name(); got != "og-eu" {
		t.Errorf("Name() = %q, want og-eu", got)
	}
	if OpsgenieURL != "https://api.opsgenie.com" || OpsgenieEUURL != "https://api.eu.opsgenie.com" {
		t.Errorf("OpsgenieURL = %q, OpsgenieEUURL = %q", OpsgenieURL, OpsgenieEUURL)
	}
	var _ Channel = (*Opsgenie)(nil)
}
