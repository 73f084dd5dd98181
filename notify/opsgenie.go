package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// An Opsgenie channel sends messages to Opsgenie through the Alert API v2
// (https://docs.opsgenie.com/docs/alert-api): a trigger creates the alert
// whose alias is the message's Key (or counts one more occurrence of it,
// while it is open), and an acknowledge or resolve acknowledges or closes
// it.
//
// Opsgenie answers 202 once it has queued a request and processes it
// afterwards, so a delivered acknowledge or close may still find no
// alert, for instance one already closed by hand.
type Opsgenie struct {
	ChannelName string // default "opsgenie"
	// APIKey is the key of an API integration. It is a secret: anyone
	// holding it can raise and close alerts.
	APIKey string
	// URL is the API's base: default "https://api.opsgenie.com";
	// accounts in the EU instance need OpsgenieEUURL.
	URL    string
	Client *http.Client // default one that gives up after 30s and follows no redirect
	Source string       // the alerts' and actions' source, default "vigil"
}

// The Alert API's bases.
const (
	OpsgenieURL   = "https://api.opsgenie.com"
	OpsgenieEUURL = "https://api.eu.opsgenie.com"
)

// The Alert API's limits, in characters
// (https://docs.opsgenie.com/docs/alert-api).
const (
	opsgenieMessageMax     = 130
	opsgenieAliasMax       = 512
	opsgenieDescriptionMax = 15000
	opsgenieDetailsMax     = 8000 // keys and values together
	opsgenieSourceMax      = 100
	opsgenieNoteMax        = 25000
)

// opsgenieAlert is the body of a create alert request.
type opsgenieAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias,omitempty"`
	Description string            `json:"description,omitempty"`
	Priority    string            `json:"priority"`
	Details     map[string]string `json:"details,omitempty"`
	Source      string            `json:"source"`
	Tags        []string          `json:"tags"`
}

// opsgenieAction is the body of an acknowledge or close alert request.
type opsgenieAction struct {
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// Name returns the channel's name.
func (o *Opsgenie) Name() string { return cmp.Or(o.ChannelName, "opsgenie") }

// Send creates, acknowledges or closes the alert of m.
func (o *Opsgenie) Send(ctx context.Context, m Message) error {
	channel := fmt.Sprintf("opsgenie channel %q", o.Name())
	if o.APIKey == "" {
		return &PermanentError{fmt.Errorf("%s: no API key configured", channel)}
	}
	base := strings.TrimRight(cmp.Or(o.URL, OpsgenieURL), "/")
	source := cut(cmp.Or(o.Source, "vigil"), opsgenieSourceMax)
	// Cutting the alias the same way for every action keeps a create and
	// its close on the same alert.
	alias := cut(m.Key, opsgenieAliasMax)
	var target string
	var body any
	switch m.Action {
	case Trigger, "":
		m.Action = Trigger
		target = base + "/v2/alerts"
		body = opsgenieAlert{
			Message:     clip(pagingTitle(m), opsgenieMessageMax),
			Alias:       alias,
			Description: clip(m.Text(), opsgenieDescriptionMax),
			Priority:    opsgeniePriority(m.Severity),
			Details:     pagingDetails(m.Fields, opsgenieDetailsMax),
			Source:      source,
			Tags:        []string{"vigil"},
		}
	case Acknowledge, Resolve:
		if alias == "" {
			return &PermanentError{fmt.Errorf("%s: %s: the message has no key", channel, m.Action)}
		}
		verb := "acknowledge"
		if m.Action == Resolve {
			verb = "close"
		}
		target = base + "/v2/alerts/" + opsgenieEscape(alias) + "/" + verb + "?identifierType=alias"
		body = opsgenieAction{Source: source, Note: clip(m.Text(), opsgenieNoteMax)}
	default:
		return &PermanentError{fmt.Errorf("%s: unknown action %q", channel, m.Action)}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &PermanentError{fmt.Errorf("%s: %s: encoding the request: %w", channel, m.Action, err)}
	}
	h := http.Header{"Authorization": {"GenieKey " + o.APIKey}}
	return post(ctx, o.Client, channel+": "+string(m.Action), target, h, b, o.APIKey)
}

// opsgeniePriority maps a vigil severity to an Opsgenie priority, P1
// the highest.
func opsgeniePriority(s string) string {
	switch strings.ToLower(s) {
	case "critical":
		return "P1"
	case "high":
		return "P2"
	case "medium":
		return "P3"
	case "low":
		return "P4"
	}
	return "P5"
}

// opsgenieEscape escapes an alias as one segment of a URL path. "." and
// "..", which url.PathEscape leaves alone, are escaped too, lest a server
// or proxy take them for path steps.
func opsgenieEscape(alias string) string {
	if alias == "." || alias == ".." {
		return strings.Repeat("%2E", len(alias))
	}
	return url.PathEscape(alias)
}
