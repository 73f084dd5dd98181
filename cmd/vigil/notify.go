package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/alert"
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
		chans, names = append(chans, ch), append(names, cc.Name)
	}
	var routes []alert.Route
	for i, rc := range c.Routes {
		r := alert.Route{Tenants: rc.Tenants, Environments: rc.Environments, Severities: rc.Severities, MinSeverity: rc.MinSeverity,
			Rules: rc.Rules, Tags: rc.Tags, Channels: rc.Channels}
		if err := r.Check(names); err != nil {
			return nil, nil, &configError{fmt.Sprintf("notify.routes[%d]", i), err}
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
// delivery is recorded. The returned function stops it, delivering what
// is queued first for a while.
func startNotifier(m *alert.Manager, mdb *meta.DB, cfg notifyConfig, logger *slog.Logger) (func(), error) {
	chans, routes, err := cfg.build()
	if err != nil || len(chans) == 0 {
		return func() {}, err
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
	n := &alert.Notifier{Routes: routes, Dispatcher: d, Link: cfg.Link}
	opened := m.OnNew
	m.OnNew = func(as []meta.Alert) {
		if opened != nil {
			opened(as)
		}
		n.Opened(as)
	}
	m.OnChange = n.Changed
	return func() { d.Close(10 * time.Second) }, nil
}
