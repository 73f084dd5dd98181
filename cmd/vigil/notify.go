package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"
	_ "time/tzdata" // quiet hours name time zones, which a host may lack

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/notify"
)

// notifyConfig is the notify section of the config file: the channels
// alerts go to, and the routes that pick them.
type notifyConfig struct {
	// Link is the console's address, for links to alerts.
	Link     string          `yaml:"link"`
	Channels []channelConfig `yaml:"channels"`
	Routes   []routeConfig   `yaml:"routes"`
}

// A channelConfig is one channel. Secrets (url for slack and teams,
// secret, routing_key, api_key, password) may be given as env:NAME or
// file:PATH, so that the config file need not hold them.
type channelConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // webhook, slack, teams, pagerduty, opsgenie, email
	URL  string `yaml:"url"`
	// Title and Body, if set, are text/template templates that write the
	// messages' titles and bodies, over notify.TemplateData.
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
	// webhook
	Secret string `yaml:"secret"`
	// pagerduty
	RoutingKey string `yaml:"routing_key"`
	// opsgenie
	APIKey string `yaml:"api_key"`
	// email
	Addr           string   `yaml:"addr"`
	From           string   `yaml:"from"`
	To             []string `yaml:"to"`
	Username       string   `yaml:"username"`
	Password       string   `yaml:"password"`
	AllowPlaintext bool     `yaml:"allow_plaintext"`
	ImplicitTLS    bool     `yaml:"implicit_tls"`
}

type routeConfig struct {
	Tenants      []string `yaml:"tenants"`
	Environments []string `yaml:"environments"`
	Severities   []string `yaml:"severities"`
	MinSeverity  string   `yaml:"min_severity"`
	Rules        []string `yaml:"rules"`
	Tags         []string `yaml:"tags"`
	Channels     []string `yaml:"channels"`
	// QuietHours hold back the route's alerts below critical, daily
	// from From to To (HH:MM) in TimeZone (default UTC), until they end.
	QuietHours *struct {
		From     string `yaml:"from"`
		To       string `yaml:"to"`
		TimeZone string `yaml:"time_zone"`
	} `yaml:"quiet_hours"`
	// Escalate sends alerts still open, not acknowledged, After they
	// opened to more channels.
	Escalate *struct {
		After    string   `yaml:"after"`
		Channels []string `yaml:"channels"`
	} `yaml:"escalate"`
}

// clock parses HH:MM as a time of day.
func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// channels builds the configured channels and routes, or names the bad
// setting.
func (c *notifyConfig) build() ([]notify.Channel, []alert.Route, error) {
	var (
		chans []notify.Channel
		names []string
	)
	for i, cc := range c.Channels {
		path := fmt.Sprintf("notify.channels[%d]", i)
		if cc.Name == "" {
			return nil, nil, &configError{path + ".name", fmt.Errorf("missing")}
		}
		if slices.Contains(names, cc.Name) {
			return nil, nil, &configError{path + ".name", fmt.Errorf("%q is the name of another channel", cc.Name)}
		}
		ch, err := cc.channel(path)
		if err != nil {
			return nil, nil, err
		}
		if cc.Title != "" || cc.Body != "" {
			t := &notify.Templated{Channel: ch}
			for _, x := range []struct {
				field, text string
				dst         **template.Template
			}{{"title", cc.Title, &t.Title}, {"body", cc.Body, &t.Body}} {
				if x.text == "" {
					continue
				}
				if *x.dst, err = template.New(cc.Name + "." + x.field).Parse(x.text); err != nil {
					return nil, nil, &configError{path + "." + x.field, err}
				}
			}
			ch = t
		}
		chans, names = append(chans, ch), append(names, cc.Name)
	}
	var routes []alert.Route
	for i, rc := range c.Routes {
		path := fmt.Sprintf("notify.routes[%d]", i)
		r := alert.Route{Tenants: rc.Tenants, Environments: rc.Environments, Severities: rc.Severities, MinSeverity: rc.MinSeverity,
			Rules: rc.Rules, Tags: rc.Tags, Channels: rc.Channels}
		if q := rc.QuietHours; q != nil {
			from, err := clock(q.From)
			if err != nil {
				return nil, nil, &configError{path + ".quiet_hours.from", err}
			}
			to, err := clock(q.To)
			if err != nil {
				return nil, nil, &configError{path + ".quiet_hours.to", err}
			}
			loc, err := time.LoadLocation(q.TimeZone)
			if err != nil {
				return nil, nil, &configError{path + ".quiet_hours.time_zone", err}
			}
			r.Quiet = &alert.QuietHours{From: from, To: to, Location: loc}
		}
		if e := rc.Escalate; e != nil {
			after, err := time.ParseDuration(e.After)
			if err != nil || after <= 0 {
				return nil, nil, &configError{path + ".escalate.after", fmt.Errorf("%q is not a positive duration", e.After)}
			}
			r.Escalate = &alert.Escalation{After: after, Channels: e.Channels}
		}
		if err := r.Check(names); err != nil {
			return nil, nil, &configError{path, err}
		}
		routes = append(routes, r)
	}
	return chans, routes, nil
}

func (cc *channelConfig) channel(path string) (notify.Channel, error) {
	need := func(field, v string) (string, error) {
		v, err := secretValue(v)
		if err == nil && v == "" {
			err = fmt.Errorf("missing")
		}
		if err != nil {
			return "", &configError{path + "." + field, err}
		}
		return v, nil
	}
	switch cc.Type {
	case "webhook":
		u, err := need("url", cc.URL)
		if err != nil {
			return nil, err
		}
		secret, err := secretValue(cc.Secret)
		if err != nil {
			return nil, &configError{path + ".secret", err}
		}
		return &notify.Webhook{ChannelName: cc.Name, URL: u, Secret: secret}, nil
	case "slack":
		u, err := need("url", cc.URL)
		return &notify.Slack{ChannelName: cc.Name, URL: u}, err
	case "teams":
		u, err := need("url", cc.URL)
		return &notify.Teams{ChannelName: cc.Name, URL: u}, err
	case "pagerduty":
		key, err := need("routing_key", cc.RoutingKey)
		return &notify.PagerDuty{ChannelName: cc.Name, RoutingKey: key, URL: cc.URL}, err
	case "opsgenie":
		key, err := need("api_key", cc.APIKey)
		return &notify.Opsgenie{ChannelName: cc.Name, APIKey: key, URL: cc.URL}, err
	case "email":
		password, err := secretValue(cc.Password)
		if err != nil {
			return nil, &configError{path + ".password", err}
		}
		e := &notify.Email{ChannelName: cc.Name, Addr: cc.Addr, From: cc.From, To: cc.To, Username: cc.Username, Password: password,
			AllowPlaintext: cc.AllowPlaintext, ImplicitTLS: cc.ImplicitTLS}
		if err := e.Check(); err != nil {
			return nil, &configError{path, err}
		}
		return e, nil
	}
	return nil, &configError{path + ".type", fmt.Errorf("%q is not a channel type (webhook, slack, teams, pagerduty, opsgenie, email)", cc.Type)}
}

// secretValue reads a secret given as env:NAME or file:PATH, or returns
// v as it is.
func secretValue(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "env:"):
		s, ok := os.LookupEnv(strings.TrimPrefix(v, "env:"))
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", strings.TrimPrefix(v, "env:"))
		}
		return s, nil
	case strings.HasPrefix(v, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(v, "file:"))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}

// startNotifier wires the alert manager to the channels: new alerts and
// changes of status go to the channels their routes name, and every
// delivery is recorded. It returns the dispatcher (nil without
// channels), which playbooks send through too, and its channels' names.
// lead runs its escalation timers: on one node of a scale-out at a time.
// The returned function stops it, delivering what is queued first for a
// while.
func startNotifier(m *alert.Manager, mdb *meta.DB, cfg notifyConfig, lead leader, logger *slog.Logger) (*notify.Dispatcher, []string, func(), error) {
	chans, routes, err := cfg.build()
	if err != nil || len(chans) == 0 {
		return nil, nil, func() {}, err
	}
	names := make([]string, len(chans))
	for i, c := range chans {
		names[i] = c.Name()
	}
	d := notify.NewDispatcher(chans, notify.Options{
		Logger: logger,
		Record: func(del notify.Delivery) {
			err := mdb.AddDelivery(context.Background(), meta.Delivery{AlertID: del.Key, Channel: del.Channel, Action: string(del.Action),
				Status: del.Status, Attempts: del.Attempts, Error: del.Err, Queued: del.Queued, Done: del.Done})
			if err != nil {
				logger.Error("recording a notification", "err", err)
			}
		},
	})
	n := &alert.Notifier{Routes: routes, Dispatcher: d, Manager: m, Link: cfg.Link}
	opened := m.OnNew
	m.OnNew = func(as []meta.Alert, events []*event.Event) {
		if opened != nil {
			opened(as, events)
		}
		n.Opened(as)
	}
	m.OnChange = n.Changed
	// Quiet hours end and escalations fall due whether or not an alert
	// comes; one node at a time sees to it.
	ctx, cancel := context.WithCancel(context.Background())
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		lead(ctx, "escalation", func(ctx context.Context) {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if err := n.Tick(ctx); err != nil && ctx.Err() == nil {
						logger.Error("escalating alerts", "err", err)
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}()
	return d, names, func() {
		cancel()
		<-ticked
		d.Close(10 * time.Second)
	}, nil
}
