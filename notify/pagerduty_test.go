package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The tests of the paging channels check their requests against the APIs'
// documentation:
//
//   - PagerDuty Events API v2, "Send an Alert Event"
//     (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/,
//     and its OpenAPI schema, github.com/PagerDuty/api-schema,
//     reference/events-v2/openapiv3.json): POST JSON to
//     https://events.pagerduty.com/v2/enqueue with routing_key,
//     event_action (trigger, acknowledge or resolve) and dedup_key (at
//     most 255 characters); a trigger adds payload.summary (at most 1024
//     characters), payload.source and payload.severity (critical, error,
//     warning or info), and optionally payload.timestamp,
//     payload.custom_details (an object) and links ([{href, text}]); an
//     acknowledge or resolve carries only routing_key, event_action and
//     dedup_key. The answer is 202 for an accepted event, 400 for an
//     invalid one ({"status", "message", "errors": [...]}, not to be
//     retried), 429 and 5xx to be retried later.
//   - Opsgenie Alert API (https://docs.opsgenie.com/docs/alert-api and
//     https://docs.opsgenie.com/docs/response): requests carry the header
//     "Authorization: GenieKey <key>"; POST /v2/alerts creates an alert
//     from message (at most 130 characters), alias (512), description
//     (15000), priority (P1 to P5), details (an object, 8000 characters),
//     source (100) and tags; POST /v2/alerts/{alias}/acknowledge and
//     /close with ?identifierType=alias act on one, their body {user,
//     source, note}. The answer is 202 for a request queued; errors are
//     {"message", "errors": {...}, "requestId", "took"}.

// pagingMessage is a message with everything set.
var pagingMessage = Message{
	Key:      "9f2c1d7e-alert-0042",
	Action:   Trigger,
	Title:    "Console login without MFA",
	Severity: "high",
	Fields:   []Field{{"actor", "alice"}, {"source address", "203.0.113.9"}, {"account", "111122223333"}},
	Link:     "https://vigil.example.com/alerts/9f2c1d7e-alert-0042",
	Time:     time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC),
}

// The secrets, recognisable in any error that would leak them.
const (
	pagingRoutingKey = "R0UT1NGKEYr0ut1ngkeyR0UT1NGKEY42"
	pagingAPIKey     = "a1b2c3d4-APIKEY-e5f6-7890-SECRETSECRET"
)

// pagingServer stands in for a paging API: it keeps the requests it gets
// and answers each with the same status and body.
type pagingServer struct {
	*httptest.Server
	mu     sync.Mutex
	got    []pagingRequest
	status int
	body   string
}

// pagingRequest is what pagingServer keeps of a request.
type pagingRequest struct {
	Method, Path, EscapedPath, RawQuery string
	Header                              http.Header
	Body                                []byte
}

func newPagingServer(t *testing.T, status int, body string) *pagingServer {
	t.Helper()
	s := &pagingServer{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, pagingRequest{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		io.WriteString(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns the requests received so far.
func (s *pagingServer) requests() []pagingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// only returns the one request received, failing the test if there were
// more or none.
func (s *pagingServer) only(t *testing.T) pagingRequest {
	t.Helper()
	got := s.requests()
	if len(got) != 1 {
		t.Fatalf("the server got %d requests, want 1", len(got))
	}
	return got[0]
}

// jsonObject decodes b, failing the test if it is not a JSON object.
func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("the body is not a JSON object: %v\n%s", err, b)
	}
	return v
}

// sortedKeys returns the names of an object's members.
func sortedKeys(v any) []string {
	o, _ := v.(map[string]any)
	return slices.Sorted(maps.Keys(o))
}

// checkPagingError checks that err is what a status calls for and that
// it names the channel but not the secret.
func checkPagingError(t *testing.T, err error, ok, retry bool, channel, secret string) {
	t.Helper()
	if ok {
		if err != nil {
			t.Errorf("error %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatal("no error")
	}
	var perm *PermanentError
	if got := !errors.As(err, &perm); got != retry {
		t.Errorf("error %q: retryable %v, want %v", err, got, retry)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q holds the secret", err)
	}
	if !strings.Contains(err.Error(), channel) {
		t.Errorf("error %q does not name the channel %q", err, channel)
	}
}

// TestPagerDutyEvents checks each event's request against the Events API
// v2 as documented (see the top of this file).
func TestPagerDutyEvents(t *testing.T) {
	long := strings.Repeat("é", 2000) // two bytes a character, so that a byte cut would show
	for _, tc := range []struct {
		name   string
		source string
		m      func(m *Message)
		check  func(t *testing.T, ev map[string]any)
	}{{
		name: "trigger",
		check: func(t *testing.T, ev map[string]any) {
			if got, want := sortedKeys(ev), []string{"dedup_key", "event_action", "links", "payload", "routing_key"}; !slices.Equal(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			if ev["routing_key"] != pagingRoutingKey || ev["event_action"] != "trigger" || ev["dedup_key"] != pagingMessage.Key {
				t.Errorf("routing_key %v, event_action %v, dedup_key %v", ev["routing_key"], ev["event_action"], ev["dedup_key"])
			}
			p, _ := ev["payload"].(map[string]any)
			if got, want := sortedKeys(p), []string{"custom_details", "severity", "source", "summary", "timestamp"}; !slices.Equal(got, want) {
				t.Errorf("payload members %v, want %v", got, want)
			}
			if p["summary"] != pagingMessage.Title || p["source"] != "vigil" || p["severity"] != "error" {
				t.Errorf("summary %v, source %v, severity %v", p["summary"], p["source"], p["severity"])
			}
			ts, _ := p["timestamp"].(string)
			if at, err := time.Parse(time.RFC3339, ts); err != nil || !at.Equal(pagingMessage.Time) {
				t.Errorf("timestamp %q: %v, want %v", ts, at, pagingMessage.Time)
			}
			want := map[string]any{"actor": "alice", "source address": "203.0.113.9", "account": "111122223333"}
			if got, _ := p["custom_details"].(map[string]any); !maps.Equal(got, want) {
				t.Errorf("custom_details %v, want %v", got, want)
			}
			links, _ := ev["links"].([]any)
			if len(links) != 1 || !maps.Equal(links[0].(map[string]any), map[string]any{"href": pagingMessage.Link, "text": "vigil"}) {
				t.Errorf("links %v", ev["links"])
			}
		},
	}, {
		name:   "trigger with only a title",
		source: "vigil-prod",
		m: func(m *Message) {
			m.Action, m.Fields, m.Link, m.Time = "", nil, "", time.Time{}
		},
		check: func(t *testing.T, ev map[string]any) {
			if got, want := sortedKeys(ev), []string{"dedup_key", "event_action", "payload", "routing_key"}; !slices.Equal(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			p, _ := ev["payload"].(map[string]any)
			if got, want := sortedKeys(p), []string{"severity", "source", "summary"}; !slices.Equal(got, want) {
				t.Errorf("payload members %v, want %v", got, want)
			}
			if ev["event_action"] != "trigger" || p["source"] != "vigil-prod" {
				t.Errorf("event_action %v, source %v", ev["event_action"], p["source"])
			}
		},
	}, {
		name: "summary of at most 1024 characters",
		m:    func(m *Message) { m.Title = long },
		check: func(t *testing.T, ev map[string]any) {
			s, _ := ev["payload"].(map[string]any)["summary"].(string)
			if n := utf8.RuneCountInString(s); n != 1024 || !utf8.ValidString(s) || !strings.HasPrefix(long, strings.TrimSuffix(s, "…")) {
				t.Errorf("summary of %d characters: %.40q…", n, s)
			}
		},
	}, {
		name: "summary of exactly 1024 characters",
		m:    func(m *Message) { m.Title = long[:2*1024] },
		check: func(t *testing.T, ev map[string]any) {
			if s := ev["payload"].(map[string]any)["summary"]; s != long[:2*1024] {
				t.Errorf("summary %.40q…, want the title whole", s)
			}
		},
	}, {
		name: "summary of a message without title",
		m:    func(m *Message) { m.Title = "" },
		check: func(t *testing.T, ev map[string]any) {
			if s, _ := ev["payload"].(map[string]any)["summary"].(string); !strings.Contains(s, pagingMessage.Key) {
				t.Errorf("summary %q, want one naming the key", s)
			}
		},
	}, {
		name: "dedup_key of at most 255 characters",
		m:    func(m *Message) { m.Key = long },
		check: func(t *testing.T, ev map[string]any) {
			if k := ev["dedup_key"]; k != long[:2*255] {
				t.Errorf("dedup_key %.40q…, want the key's first 255 characters", k)
			}
		},
	}, {
		name: "duplicate field names",
		m:    func(m *Message) { m.Fields = []Field{{"ip", "192.0.2.1"}, {"user", "bob"}, {"ip", "192.0.2.2"}} },
		check: func(t *testing.T, ev map[string]any) {
			want := map[string]any{"ip": "192.0.2.1\n192.0.2.2", "user": "bob"}
			if got, _ := ev["payload"].(map[string]any)["custom_details"].(map[string]any); !maps.Equal(got, want) {
				t.Errorf("custom_details %v, want %v", got, want)
			}
		},
	}, {
		name: "acknowledge",
		m:    func(m *Message) { m.Action = Acknowledge },
		check: func(t *testing.T, ev map[string]any) {
			want := map[string]any{"routing_key": pagingRoutingKey, "event_action": "acknowledge", "dedup_key": pagingMessage.Key}
			if !maps.Equal(ev, want) {
				t.Errorf("event %v, want %v", ev, want)
			}
		},
	}, {
		name: "resolve",
		m:    func(m *Message) { m.Action = Resolve },
		check: func(t *testing.T, ev map[string]any) {
			want := map[string]any{"routing_key": pagingRoutingKey, "event_action": "resolve", "dedup_key": pagingMessage.Key}
			if !maps.Equal(ev, want) {
				t.Errorf("event %v, want %v", ev, want)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPagingServer(t, http.StatusAccepted, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
			p := &PagerDuty{RoutingKey: pagingRoutingKey, URL: s.URL + "/v2/enqueue", Source: tc.source}
			m := pagingMessage
			if tc.m != nil {
				tc.m(&m)
			}
			if err := p.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			r := s.only(t)
			if r.Method != http.MethodPost || r.Path != "/v2/enqueue" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request %s %s, Content-Type %q", r.Method, r.Path, r.Header.Get("Content-Type"))
			}
			tc.check(t, jsonObject(t, r.Body))
		})
	}
}

// TestPagerDutySeverity checks the mapping of vigil's severities to the
// four of PagerDuty.
func TestPagerDutySeverity(t *testing.T) {
	for _, tc := range []struct{ severity, want string }{
		{"critical", "critical"},
		{"high", "error"},
		{"medium", "warning"},
		{"low", "info"},
		{"informational", "info"},
		{"", "info"},
		{"bogus", "info"},
		{"High", "error"},
	} {
		s := newPagingServer(t, http.StatusAccepted, "")
		m := pagingMessage
		m.Severity = tc.severity
		if err := (&PagerDuty{RoutingKey: pagingRoutingKey, URL: s.URL}).Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		p, _ := jsonObject(t, s.only(t).Body)["payload"].(map[string]any)
		if p["severity"] != tc.want {
			t.Errorf("severity %q: %v, want %q", tc.severity, p["severity"], tc.want)
		}
	}
}

// TestPagerDutyResponses checks how each answer is taken: 2xx delivered,
// 400 (an invalid event) and other refusals permanent, 429 and 5xx to be
// retried; and that errors give PagerDuty's reason but never the key.
func TestPagerDutyResponses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		ok, retry bool
		want      []string // in the error
		notWant   []string
	}{
		{name: "accepted", status: 202, body: `{"status":"success","message":"Event processed","dedup_key":"x"}`, ok: true},
		{name: "ok", status: 200, body: `{}`, ok: true},
		{
			name: "invalid event", status: 400,
			body: `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}`,
			want: []string{"400", "Event object is invalid", "Length of 'routing_key' is incorrect"},
		},
		{
			name: "invalid event naming the key", status: 400,
			body: `{"status":"invalid event","message":"Unknown routing key ` + pagingRoutingKey + `","errors":["routing_key ` + pagingRoutingKey + ` not found"]}`,
			want: []string{"400", "Unknown routing key [redacted]"},
		},
		{
			name: "long reason", status: 400,
			body: `{"message":"` + strings.Repeat("x", 5000) + `","errors":["\u001b[31mforged\nlog line"]}`,
			want: []string{"400", "…"}, notWant: []string{strings.Repeat("x", 301), "\n", "\x1b"},
		},
		{name: "forbidden", status: 403, body: `{"message":"Forbidden"}`, want: []string{"403", "Forbidden"}},
		{name: "not found", status: 404, want: []string{"404"}},
		{name: "request timeout", status: 408, retry: true, want: []string{"408"}},
		{name: "throttled", status: 429, body: `{"status":"throttle exceeded","message":"Requests for this service are arriving too quickly.  Please retry later."}`, retry: true, want: []string{"429", "retry later"}},
		{name: "server error", status: 500, body: `{"status":"Unrecognized object","message":"Event object format is unrecognized","errors":["JSON parse error"]}`, retry: true, want: []string{"500", "JSON parse error"}},
		{name: "proxy page", status: 502, body: `<html><body>Bad Gateway</body></html>`, retry: true, want: []string{"502"}, notWant: []string{"<html>"}},
		{name: "unavailable", status: 503, retry: true, want: []string{"503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPagingServer(t, tc.status, tc.body)
			p := &PagerDuty{ChannelName: "pd-security", RoutingKey: pagingRoutingKey, URL: s.URL + "/v2/enqueue"}
			err := p.Send(context.Background(), pagingMessage)
			t.Logf("error: %v", err)
			checkPagingError(t, err, tc.ok, tc.retry, "pd-security", pagingRoutingKey)
			for _, w := range tc.want {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to hold %q", err, w)
				}
			}
			for _, w := range tc.notWant {
				if err != nil && strings.Contains(err.Error(), w) {
					t.Errorf("error %q holds %q", err, w)
				}
			}
		})
	}
}

// TestPagerDutyRefused checks the messages refused without asking
// PagerDuty, which would refuse them too.
func TestPagerDutyRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		m    func(m *Message)
	}{
		{name: "no routing key"},
		{name: "acknowledge without key", key: pagingRoutingKey, m: func(m *Message) { m.Action, m.Key = Acknowledge, "" }},
		{name: "resolve without key", key: pagingRoutingKey, m: func(m *Message) { m.Action, m.Key = Resolve, "" }},
		{name: "unknown action", key: pagingRoutingKey, m: func(m *Message) { m.Action = "escalate" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPagingServer(t, http.StatusAccepted, "")
			m := pagingMessage
			if tc.m != nil {
				tc.m(&m)
			}
			err := (&PagerDuty{RoutingKey: tc.key, URL: s.URL}).Send(context.Background(), m)
			checkPagingError(t, err, false, false, "pagerduty", pagingRoutingKey)
			if n := len(s.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestPagerDutyUnreachable: a PagerDuty that cannot be reached is worth
// retrying, and the error still keeps the key out.
func TestPagerDutyUnreachable(t *testing.T) {
	s := newPagingServer(t, http.StatusAccepted, "")
	s.Close()
	err := (&PagerDuty{RoutingKey: pagingRoutingKey, URL: s.URL + "/v2/enqueue"}).Send(context.Background(), pagingMessage)
	checkPagingError(t, err, false, true, "pagerduty", pagingRoutingKey)
}

// TestPagerDutyNoRedirect: the default client follows no redirect, which
// would send the routing key, in the body, to another server.
func TestPagerDutyNoRedirect(t *testing.T) {
	elsewhere := newPagingServer(t, http.StatusAccepted, "")
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/v2/enqueue", http.StatusTemporaryRedirect)
	}))
	defer s.Close()
	err := (&PagerDuty{RoutingKey: pagingRoutingKey, URL: s.URL + "/v2/enqueue"}).Send(context.Background(), pagingMessage)
	checkPagingError(t, err, false, false, "pagerduty", pagingRoutingKey)
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("the redirect was followed: %d requests elsewhere", n)
	}
}

// TestPagerDutyDefaults checks the defaults a zero configuration gets.
func TestPagerDutyDefaults(t *testing.T) {
	if got := (&PagerDuty{}).Name(); got != "pagerduty" {
		t.Errorf("Name() = %q, want pagerduty", got)
	}
	if got := (&PagerDuty{ChannelName: "oncall"}).Name(); got != "oncall" {
		t.Errorf("Name() = %q, want oncall", got)
	}
	if PagerDutyURL != "https://events.pagerduty.com/v2/enqueue" {
		t.Errorf("PagerDutyURL = %q", PagerDutyURL)
	}
	var _ Channel = (*PagerDuty)(nil)
}
