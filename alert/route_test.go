package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/notify"
)

func TestRouteMatches(t *testing.T) {
	a := &meta.Alert{ID: "a1", Tenant: "acme", RuleID: "r1", Severity: "high", Tags: []string{"attack.t1078", "attack.initial-access"},
		Group: map[string]string{"vigil.environment": "prod"}}
	for _, tc := range []struct {
		name string
		r    Route
		want bool
	}{
		{"everything", Route{}, true},
		{"tenant", Route{Tenants: []string{"acme"}}, true},
		{"other tenant", Route{Tenants: []string{"beta"}}, false},
		{"environment", Route{Environments: []string{"prod"}}, true},
		{"other environment", Route{Environments: []string{"dev"}}, false},
		{"severity", Route{Severities: []string{"high"}}, true},
		{"other severity", Route{Severities: []string{"critical"}}, false},
		{"at least medium", Route{MinSeverity: "medium"}, true},
		{"at least high", Route{MinSeverity: "high"}, true},
		{"at least critical", Route{MinSeverity: "critical"}, false},
		{"rule", Route{Rules: []string{"r1"}}, true},
		{"other rule", Route{Rules: []string{"r2"}}, false},
		{"one of the tags", Route{Tags: []string{"attack.t1110", "attack.t1078"}}, true},
		{"no tag", Route{Tags: []string{"attack.t1110"}}, false},
		{"all must hold", Route{Tenants: []string{"acme"}, MinSeverity: "critical"}, false},
	} {
		if got := tc.r.matches(a, a.Group["vigil.environment"]); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRouteCheck(t *testing.T) {
	chans := []string{"pager", "chat"}
	for _, tc := range []struct {
		r    Route
		want string
	}{
		{Route{Channels: []string{"pager"}}, ""},
		{Route{}, "needs channels"},
		{Route{Channels: []string{"fax"}}, `no channel named "fax"`},
		{Route{Channels: []string{"chat"}, MinSeverity: "dire"}, `unknown severity "dire"`},
		{Route{Channels: []string{"chat"}, Severities: []string{"low", "urgent"}}, `unknown severity "urgent"`},
	} {
		err := tc.r.Check(chans)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.want)
		}
	}
}

// TestMessage: the facts a responder looks at first come first, then
// the rest of the group, then the alert's own.
func TestMessage(t *testing.T) {
	a := &meta.Alert{ID: "a1", Tenant: "acme", RuleID: "r1", Title: "Root Account Used", Severity: "critical", Status: Open, Count: 3,
		Group:     map[string]string{"vigil.src_ip": "198.51.100.7", "vigil.actor": "root", "requestParameters.userName": "bob"},
		FirstSeen: time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC), LastSeen: time.Date(2024, 7, 10, 12, 5, 0, 0, time.UTC)}
	m := Message(a, notify.Acknowledge, "https://vigil.example.com/")
	var names []string
	for _, f := range m.Fields {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "actor,source address,requestParameters.userName,tenant,rule,status,events,first seen" {
		t.Errorf("fields %s", got)
	}
	if m.Key != "a1" || m.Action != notify.Acknowledge || m.Link != "https://vigil.example.com/alerts/a1" || !m.Time.Equal(a.LastSeen) {
		t.Errorf("message %+v", m)
	}
}

// TestNotifierChannels: an alert goes to the channels of every route
// that takes it, each once, and to none when no route does.
func TestNotifierChannels(t *testing.T) {
	n := &Notifier{Routes: []Route{
		{MinSeverity: "high", Channels: []string{"pager", "chat"}},
		{Tenants: []string{"acme"}, Channels: []string{"chat", "mail"}},
	}}
	for _, tc := range []struct {
		a    meta.Alert
		want string
	}{
		{meta.Alert{Tenant: "acme", Severity: "critical"}, "pager,chat,mail"},
		{meta.Alert{Tenant: "beta", Severity: "critical"}, "pager,chat"},
		{meta.Alert{Tenant: "acme", Severity: "low"}, "chat,mail"},
		{meta.Alert{Tenant: "beta", Severity: "low"}, ""},
	} {
		if got := strings.Join(n.channels(&tc.a), ","); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.a.Tenant, tc.a.Severity, got, tc.want)
		}
	}
}
