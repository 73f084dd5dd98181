package alert

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
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
		Context:   map[string]string{"vigil.actor": "not this one", "vigil.account": "143434273843", "vigil.action": "ConsoleLogin"},
		FirstSeen: time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC), LastSeen: time.Date(2024, 7, 10, 12, 5, 0, 0, time.UTC)}
	m := Message(a, notify.Acknowledge, "https://vigil.example.com/")
	var names []string
	for _, f := range m.Fields {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "actor,source address,account,action,requestParameters.userName,tenant,rule,status,events,first seen" || m.Fields[0].Value != "root" {
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
		if got := strings.Join(n.channels(&tc.a, time.Now()), ","); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.a.Tenant, tc.a.Severity, got, tc.want)
		}
	}
}

func TestQuietHours(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	night := &QuietHours{From: 22 * time.Hour, To: 7 * time.Hour, Location: paris}
	lunch := &QuietHours{From: 12 * time.Hour, To: 13*time.Hour + 30*time.Minute, Location: time.UTC}
	for _, tc := range []struct {
		q    *QuietHours
		at   string
		want bool
	}{
		{night, "2024-07-10T19:59:00Z", false}, // 21:59 in Paris
		{night, "2024-07-10T20:00:00Z", true},  // 22:00
		{night, "2024-07-11T02:00:00Z", true},
		{night, "2024-07-11T04:59:59Z", true}, // 06:59:59
		{night, "2024-07-11T05:00:00Z", false},
		{lunch, "2024-07-10T12:00:00Z", true},
		{lunch, "2024-07-10T13:30:00Z", false},
		{lunch, "2024-07-10T11:59:59Z", false},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := tc.q.In(at); got != tc.want {
			t.Errorf("%v–%v at %s: %v, want %v", tc.q.From, tc.q.To, tc.at, got, tc.want)
		}
	}
}

// TestQuietAndEscalate: quiet hours hold back all but critical alerts,
// which go out when they end if still open; an alert nobody acknowledges
// goes to the escalation channels once, after the delay, and not again
// after a restart; an acknowledged one does not. Time is injected.
func TestQuietAndEscalate(t *testing.T) {
	ctx := context.Background()
	m, _, mnow, _ := testManager(t, Config{})
	now := t0
	*mnow = now
	sent := map[string][]string{} // channel → "action key"
	var mu sync.Mutex
	chans := []notify.Channel{}
	for _, name := range []string{"chat", "pager", "boss"} {
		chans = append(chans, recordingChannel{name, func(c string, msg notify.Message) {
			mu.Lock()
			defer mu.Unlock()
			sent[c] = append(sent[c], string(msg.Action)+" "+msg.Title)
		}})
	}
	d := notify.NewDispatcher(chans, notify.Options{})
	n := &Notifier{Dispatcher: d, Manager: m, Now: func() time.Time { return now }, Routes: []Route{
		{Channels: []string{"chat"}, Quiet: &QuietHours{From: 22 * time.Hour, To: 7 * time.Hour, Location: time.UTC}},
		{MinSeverity: "high", Channels: []string{"pager"}, Escalate: &Escalation{After: 15 * time.Minute, Channels: []string{"boss"}}},
	}}
	m.OnNew, m.OnChange = func(as []meta.Alert, _ []*event.Event) { n.Opened(as) }, n.Changed
	get := func(c string) string {
		d.Close(5 * time.Second) // deliver what is queued
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(sent[c], "; ")
	}
	restart := func() {
		d = notify.NewDispatcher(chans, notify.Options{Record: func(del notify.Delivery) {
			m.db.AddDelivery(ctx, meta.Delivery{AlertID: del.Key, Channel: del.Channel, Action: string(del.Action), Status: del.Status, Queued: del.Queued, Done: del.Done})
		}})
		n.Dispatcher = d
	}
	restart()

	// 23:00: a medium alert is held back from chat, a critical one is not.
	now = t0.Add(11 * time.Hour)
	*mnow = now
	medium := &detect.Rule{ID: "m", Title: "medium thing", Level: "medium"}
	critical := &detect.Rule{ID: "c", Title: "critical thing", Level: "critical"}
	m.Detected([]detect.Detection{hit(medium, "acme", "alice", 11*time.Hour, 1), hit(critical, "acme", "bob", 11*time.Hour, 2)})
	if got := get("chat"); got != "trigger critical thing" {
		t.Fatalf("chat during quiet hours: %q", got)
	}
	restart()
	if err := n.Tick(ctx); err != nil { // 23:00, still quiet: nothing released
		t.Fatal(err)
	}
	if got := get("pager"); got != "trigger critical thing" {
		t.Fatalf("pager: %q", got)
	}
	restart()

	// 23:10: not yet time to escalate. 23:16: the critical alert, not
	// acknowledged, goes to boss, once.
	now = now.Add(10 * time.Minute)
	n.Tick(ctx)
	now = now.Add(6 * time.Minute)
	n.Tick(ctx)
	n.Tick(ctx)
	if got := get("boss"); got != "trigger critical thing" {
		t.Fatalf("boss: %q", got)
	}
	// After a restart (a new notifier), the deliveries recorded say it
	// was escalated.
	restart()
	n2 := &Notifier{Dispatcher: d, Manager: m, Routes: n.Routes, Now: n.Now}
	n2.Tick(ctx)
	if got := get("boss"); got != "trigger critical thing" {
		t.Fatalf("boss after a restart: %q", got)
	}

	// 07:00: quiet hours are over; the medium alert, still open, goes to
	// chat.
	restart()
	now = t0.Add(19 * time.Hour)
	n.Tick(ctx)
	if got := get("chat"); got != "trigger critical thing; trigger medium thing" {
		t.Fatalf("chat after quiet hours: %q", got)
	}

	// An acknowledged high alert is not escalated.
	restart()
	*mnow = now
	high := &detect.Rule{ID: "h", Title: "high thing", Level: "high"}
	m.Detected([]detect.Detection{hit(high, "acme", "carol", 19*time.Hour, 3)})
	as, _ := m.Alerts(ctx, meta.AlertQuery{AllTenants: true, RuleID: "h"})
	if _, err := m.SetStatus(ctx, nil, as[0].ID, Acknowledged, "ann", ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	n.Tick(ctx)
	if got := get("boss"); got != "trigger critical thing" {
		t.Fatalf("boss after an acknowledged alert: %q", got)
	}
}

// recordingChannel hands each message it is sent to a function.
type recordingChannel struct {
	name string
	fn   func(string, notify.Message)
}

func (c recordingChannel) Name() string { return c.name }
func (c recordingChannel) Send(_ context.Context, m notify.Message) error {
	c.fn(c.name, m)
	return nil
}
