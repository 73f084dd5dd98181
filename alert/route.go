package alert

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/notify"
)

// A Route sends the alerts it matches to channels. Each criterion left
// empty matches every alert; those given must all hold.
type Route struct {
	Tenants      []string
	Environments []string
	Severities   []string // exactly these
	MinSeverity  string   // or this and above
	Rules        []string // rule ids
	Tags         []string // any of these (attack.t1078, attack.initial-access)
	Channels     []string
	// Quiet, if set, holds back the route's notifications of alerts
	// below critical while it lasts; they are sent when it ends, if the
	// alert is still open.
	Quiet *QuietHours
	// Escalate, if set, sends an alert to more channels when it is
	// still open (not acknowledged) that long after it was opened.
	Escalate *Escalation
}

// QuietHours are a daily span of local time, such as 22:00 to 07:00.
type QuietHours struct {
	From, To time.Duration // since midnight; From > To spans midnight
	Location *time.Location
}

// In reports whether t is within the quiet hours.
func (q *QuietHours) In(t time.Time) bool {
	t = t.In(q.Location)
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if q.From <= q.To {
		return q.From <= d && d < q.To
	}
	return d >= q.From || d < q.To
}

// An Escalation is who else to tell about an alert nobody acknowledged.
type Escalation struct {
	After    time.Duration
	Channels []string
}

// matches reports whether the route takes a.
func (r *Route) matches(a *meta.Alert, environment string) bool {
	switch {
	case len(r.Tenants) > 0 && !slices.Contains(r.Tenants, a.Tenant),
		len(r.Environments) > 0 && !slices.Contains(r.Environments, environment),
		len(r.Severities) > 0 && !slices.Contains(r.Severities, a.Severity),
		r.MinSeverity != "" && severityRank(a.Severity) < severityRank(r.MinSeverity),
		len(r.Rules) > 0 && !slices.Contains(r.Rules, a.RuleID):
		return false
	}
	if len(r.Tags) > 0 && !slices.ContainsFunc(a.Tags, func(t string) bool { return slices.Contains(r.Tags, t) }) {
		return false
	}
	return true
}

func severityRank(s string) int { return slices.Index(Severities, s) }

// Check reports a route that names what does not exist.
func (r *Route) Check(channels []string) error {
	for _, s := range append(slices.Clone(r.Severities), r.MinSeverity) {
		if s != "" && !slices.Contains(Severities, s) {
			return fmt.Errorf("unknown severity %q (%s)", s, strings.Join(Severities, ", "))
		}
	}
	if len(r.Channels) == 0 {
		return fmt.Errorf("a route needs channels")
	}
	names := r.Channels
	if r.Escalate != nil {
		if r.Escalate.After <= 0 || len(r.Escalate.Channels) == 0 {
			return fmt.Errorf("escalate needs a positive after and channels")
		}
		names = append(slices.Clone(names), r.Escalate.Channels...)
	}
	for _, c := range names {
		if !slices.Contains(channels, c) {
			return fmt.Errorf("no channel named %q", c)
		}
	}
	return nil
}

// A Notifier sends alerts to the channels their routes name: a trigger
// when an alert opens, and an acknowledge or resolve when it is
// acknowledged, resolved or closed, so that paging services follow the
// alert's lifecycle. Tick, called every so often, sends what quiet hours
// held back once they end, and escalates alerts nobody acknowledged.
type Notifier struct {
	Routes     []Route
	Dispatcher *notify.Dispatcher
	Manager    *Manager // the alerts, for Tick
	// Link is the console's address; an alert's link is Link/alerts/ID.
	Link string
	Now  func() time.Time // default time.Now

	mu sync.Mutex
	// held are, by route, the alerts quiet hours held back.
	held map[int]map[string]bool
	// escalated are the alerts escalated, by route and alert id, so
	// that an escalation is sent once even before its delivery is
	// recorded.
	escalated map[[2]string]bool
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// channels returns the channels of the routes that take a now, each
// once; quiet routes hold back alerts below critical, noting them.
func (n *Notifier) channels(a *meta.Alert, now time.Time) []string {
	env := cmp.Or(a.Group["vigil.environment"], a.Context["vigil.environment"])
	var out []string
	for i := range n.Routes {
		r := &n.Routes[i]
		if !r.matches(a, env) {
			continue
		}
		if r.Quiet != nil && a.Severity != "critical" && r.Quiet.In(now) {
			n.hold(i, a.ID)
			continue
		}
		for _, c := range r.Channels {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func (n *Notifier) hold(route int, id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held == nil {
		n.held = map[int]map[string]bool{}
	}
	if n.held[route] == nil {
		n.held[route] = map[string]bool{}
	}
	n.held[route][id] = true
}

// Opened notifies of new alerts.
func (n *Notifier) Opened(as []meta.Alert) {
	now := n.now()
	for i := range as {
		n.send(&as[i], notify.Trigger, n.channels(&as[i], now))
	}
}

// Changed notifies of an alert's change of status.
func (n *Notifier) Changed(a meta.Alert) {
	action := notify.Trigger // reopened
	switch a.Status {
	case Acknowledged:
		action = notify.Acknowledge
	case Resolved, Closed:
		action = notify.Resolve
	}
	n.send(&a, action, n.channels(&a, n.now()))
}

func (n *Notifier) send(a *meta.Alert, action notify.Action, channels []string) {
	if len(channels) > 0 {
		n.Dispatcher.Send(Message(a, action, n.Link), channels...)
	}
}

// Tick sends, for each route whose quiet hours are over, the alerts they
// held back that are still open; and for each route that escalates, the
// alerts still open (not acknowledged) past its delay to its escalation
// channels, once.
func (n *Notifier) Tick(ctx context.Context) error {
	now := n.now()
	for i := range n.Routes {
		r := &n.Routes[i]
		if r.Quiet != nil && !r.Quiet.In(now) {
			if err := n.release(ctx, i); err != nil {
				return err
			}
		}
		if r.Escalate != nil {
			if err := n.escalate(ctx, i, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// release sends a route the alerts quiet hours held back.
func (n *Notifier) release(ctx context.Context, route int) error {
	n.mu.Lock()
	ids := n.held[route]
	delete(n.held, route)
	n.mu.Unlock()
	for id := range ids {
		as, err := n.Manager.Alerts(ctx, meta.AlertQuery{AllTenants: true, ID: id, Status: []string{Open, Acknowledged}, Limit: 1})
		if err != nil {
			return err
		}
		if len(as) == 1 {
			n.send(&as[0], notify.Trigger, n.Routes[route].Channels)
		}
	}
	return nil
}

// escalate sends a route's escalation channels the alerts open past its
// delay. An alert once escalated, here or (per the deliveries recorded)
// before a restart, is not escalated again.
func (n *Notifier) escalate(ctx context.Context, route int, now time.Time) error {
	r := &n.Routes[route]
	as, err := n.Manager.Alerts(ctx, meta.AlertQuery{AllTenants: true, Status: []string{Open}, Limit: 10_000})
	if err != nil {
		return err
	}
	// Forget the escalations of alerts no longer open: the map stays the
	// size of what is open.
	open := make(map[string]bool, len(as))
	for _, a := range as {
		open[a.ID] = true
	}
	n.mu.Lock()
	for key := range n.escalated {
		if key[0] == strconv.Itoa(route) && !open[key[1]] {
			delete(n.escalated, key)
		}
	}
	n.mu.Unlock()
	for i := range as {
		a := &as[i]
		key := [2]string{strconv.Itoa(route), a.ID}
		if now.Sub(a.Created) < r.Escalate.After || !r.matches(a, cmp.Or(a.Group["vigil.environment"], a.Context["vigil.environment"])) {
			continue
		}
		n.mu.Lock()
		done := n.escalated[key]
		n.mu.Unlock()
		if done {
			continue
		}
		ds, err := n.Manager.db.AlertDeliveries(ctx, a.ID)
		if err != nil {
			return err
		}
		var todo []string
		for _, c := range r.Escalate.Channels {
			if !slices.ContainsFunc(ds, func(d meta.Delivery) bool { return d.Channel == c && d.Action == string(notify.Trigger) }) {
				todo = append(todo, c)
			}
		}
		n.mu.Lock()
		if n.escalated == nil {
			n.escalated = map[[2]string]bool{}
		}
		n.escalated[key] = true
		n.mu.Unlock()
		n.send(a, notify.Trigger, todo)
	}
	return nil
}

// Message is the notification of an alert: its title, severity and key
// facts, the dedup key paging services follow it by, and its link.
func Message(a *meta.Alert, action notify.Action, link string) notify.Message {
	m := notify.Message{Key: a.ID, Action: action, Title: a.Title, Severity: a.Severity, Time: a.LastSeen}
	if link != "" {
		m.Link = strings.TrimSuffix(link, "/") + "/alerts/" + a.ID
	}
	add := func(name, value string) {
		if value != "" {
			m.Fields = append(m.Fields, notify.Field{Name: name, Value: value})
		}
	}
	// The facts a responder looks at first, in the order they look: the
	// group's, else the first event's.
	for _, f := range []struct{ name, field string }{
		{"actor", "vigil.actor"}, {"source address", "vigil.src_ip"}, {"account", "vigil.account"},
		{"environment", "vigil.environment"}, {"action", "vigil.action"},
	} {
		add(f.name, cmp.Or(a.Group[f.field], a.Context[f.field]))
	}
	for _, k := range sortedKeys(a.Group) {
		switch k {
		case "vigil.actor", "vigil.src_ip", "vigil.account", "vigil.environment", "vigil.action":
		default:
			add(k, a.Group[k])
		}
	}
	add("tenant", a.Tenant)
	add("rule", a.RuleID)
	add("status", a.Status)
	add("events", strconv.FormatInt(a.Count, 10))
	add("first seen", a.FirstSeen.Format("2006-01-02T15:04:05Z07:00"))
	return m
}
