package alert

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	for _, c := range r.Channels {
		if !slices.Contains(channels, c) {
			return fmt.Errorf("no channel named %q", c)
		}
	}
	return nil
}

// A Notifier sends alerts to the channels their routes name: a trigger
// when an alert opens, and an acknowledge or resolve when it is
// acknowledged, resolved or closed, so that paging services follow the
// alert's lifecycle.
type Notifier struct {
	Routes     []Route
	Dispatcher *notify.Dispatcher
	// Link is the console's address; an alert's link is Link/alerts/ID.
	Link string
}

// channels returns the channels of the routes that take a, each once.
func (n *Notifier) channels(a *meta.Alert) []string {
	env := a.Group["vigil.environment"]
	var out []string
	for i := range n.Routes {
		if r := &n.Routes[i]; r.matches(a, env) {
			for _, c := range r.Channels {
				if !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// Opened notifies of new alerts.
func (n *Notifier) Opened(as []meta.Alert) {
	for i := range as {
		n.send(&as[i], notify.Trigger)
	}
}

// Changed notifies of an alert's change of status.
func (n *Notifier) Changed(a meta.Alert) {
	switch a.Status {
	case Acknowledged:
		n.send(&a, notify.Acknowledge)
	case Resolved, Closed:
		n.send(&a, notify.Resolve)
	case Open:
		n.send(&a, notify.Trigger) // reopened
	}
}

func (n *Notifier) send(a *meta.Alert, action notify.Action) {
	channels := n.channels(a)
	if len(channels) == 0 {
		return
	}
	n.Dispatcher.Send(Message(a, action, n.Link), channels...)
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
	// The facts a responder looks at first, in the order they look.
	for _, f := range []struct{ name, field string }{
		{"actor", "vigil.actor"}, {"source address", "vigil.src_ip"}, {"account", "vigil.account"},
		{"environment", "vigil.environment"}, {"action", "vigil.action"},
	} {
		add(f.name, a.Group[f.field])
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
