package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// A PagerDuty channel sends messages to a PagerDuty service through the
// Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
// a trigger opens or updates the alert whose dedup_key is the message's
// Key, and an acknowledge or resolve changes it.
type PagerDuty struct {
	ChannelName string // default "pagerduty"
	// RoutingKey is the integration key of the service's Events API v2
	// integration. It is a secret: anyone holding it can page.
	RoutingKey string
	URL        string       // default "https://events.pagerduty.com/v2/enqueue"
	Client     *http.Client // default one that gives up after 30s and follows no redirect
	Source     string       // payload.source of triggers, default "vigil"
}

// PagerDutyURL is the Events API v2 endpoint.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// The Events API v2 limits
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
const (
	pagerDutySummaryMax = 1024
	pagerDutyDedupMax   = 255
)

// pagerDutyEvent is the body of an Events API v2 request. Acknowledge
// and resolve events carry only the routing key, action and dedup key.
type pagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction Action            `json:"event_action"`
	DedupKey    string            `json:"dedup_key,omitempty"`
	Payload     *pagerDutyPayload `json:"payload,omitempty"`
	Links       []pagerDutyLink   `json:"links,omitempty"`
}

type pagerDutyPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

type pagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Name returns the channel's name.
func (p *PagerDuty) Name() string { return cmp.Or(p.ChannelName, "pagerduty") }

// Send sends m as a trigger, acknowledge or resolve event.
func (p *PagerDuty) Send(ctx context.Context, m Message) error {
	channel := fmt.Sprintf("pagerduty channel %q", p.Name())
	if p.RoutingKey == "" {
		return &PermanentError{fmt.Errorf("%s: no routing key configured", channel)}
	}
	// PagerDuty counts the key's characters; cutting it the same way for
	// every action keeps a trigger and its resolve on the same alert.
	ev := pagerDutyEvent{RoutingKey: p.RoutingKey, EventAction: m.Action, DedupKey: cut(m.Key, pagerDutyDedupMax)}
	switch m.Action {
	case Trigger, "":
		ev.EventAction = Trigger
		ev.Payload = &pagerDutyPayload{
			Summary:       clip(pagingTitle(m), pagerDutySummaryMax),
			Source:        cmp.Or(p.Source, "vigil"),
			Severity:      pagerDutySeverity(m.Severity),
			CustomDetails: pagingDetails(m.Fields, 0),
		}
		if !m.Time.IsZero() {
			ev.Payload.Timestamp = m.Time.UTC().Format(time.RFC3339Nano)
		}
		if m.Link != "" {
			ev.Links = []pagerDutyLink{{Href: m.Link, Text: "vigil"}}
		}
	case Acknowledge, Resolve:
		// Without a dedup key PagerDuty cannot tell which alert is meant,
		// and refuses the event.
		if ev.DedupKey == "" {
			return &PermanentError{fmt.Errorf("%s: %s: the message has no key", channel, m.Action)}
		}
	default:
		return &PermanentError{fmt.Errorf("%s: unknown action %q", channel, m.Action)}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return &PermanentError{fmt.Errorf("%s: %s: encoding the event: %w", channel, ev.EventAction, err)}
	}
	what := channel + ": " + string(ev.EventAction)
	return post(ctx, p.Client, what, cmp.Or(p.URL, PagerDutyURL), nil, body, p.RoutingKey)
}

// pagerDutySeverity maps a vigil severity to one of the four PagerDuty
// knows.
func pagerDutySeverity(s string) string {
	switch strings.ToLower(s) {
	case "critical":
		return "critical"
	case "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "info"
}

// What follows is shared by the HTTP channels, whose URLs and keys are
// secrets that must stay out of errors and logs.

// httpClient is the HTTP client of the channels that name none.
// The Dispatcher's timeout usually ends an attempt first; this one bounds
// those made without it. It follows no redirect: neither API sends one,
// and following it would carry the key (in PagerDuty's body) elsewhere.
var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// answerMax bounds how much of an answer is read: the APIs say why
// they refuse in a few hundred bytes, and a proxy's error page needs
// none of it.
const answerMax = 16 << 10

// post posts the JSON body to target, what naming the request in
// errors, and sorts the answer: 2xx delivered; 408, 429 and 5xx worth
// retrying; any other status permanent, since the same request would be
// refused again. secret is removed from anything the receiver says.
func post(ctx context.Context, client *http.Client, what, target string, h http.Header, body []byte, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The error quotes the URL, which may be a relay's with a token.
		return &PermanentError{fmt.Errorf("%s: the URL is not valid", what)}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vigil")
	resp, err := cmp.Or(client, httpClient).Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // leave the URL out, as above
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		// Read a little of the answer so that the connection can be
		// reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, answerMax))
		return nil
	}
	said, _ := io.ReadAll(io.LimitReader(resp.Body, answerMax))
	msg := what + ": " + resp.Status
	if reason := refusal(said, secret); reason != "" {
		msg += ": " + reason
	}
	err = errors.New(msg)
	if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return err
	}
	return &PermanentError{err}
}

// refusal is why a paging API refused a request, from the JSON body
// of its answer: PagerDuty's {"message", "errors": [...]} or Opsgenie's
// {"message", "errors": {field: problem}}, or a line of plain text. It is
// cut short, and secret, should the receiver echo it, is blanked out. An
// HTML page (a proxy's, say) gives "", the status having to do.
func refusal(body []byte, secret string) string {
	var r struct {
		Message string          `json:"message"`
		Errors  json.RawMessage `json:"errors"`
	}
	var parts []string
	if json.Unmarshal(body, &r) != nil {
		// Slack and Teams answer in a word or a line of plain text
		// (invalid_payload, no_service); an HTML page says nothing.
		if t := strings.TrimSpace(string(body)); !strings.HasPrefix(t, "<") {
			parts = append(parts, t)
		}
	}
	if r.Message != "" {
		parts = append(parts, r.Message)
	}
	var list []string
	var byField map[string]string
	switch {
	case json.Unmarshal(r.Errors, &list) == nil:
		parts = append(parts, list...)
	case json.Unmarshal(r.Errors, &byField) == nil:
		for _, k := range slices.Sorted(maps.Keys(byField)) {
			parts = append(parts, k+": "+byField[k])
		}
	}
	s := strings.Join(parts, "; ")
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	// Control characters would let the receiver forge log lines.
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return clip(s, 300)
}

// pagingTitle is the title of m, which both APIs require: a message
// without one still pages, named by its key.
func pagingTitle(m Message) string {
	if strings.TrimSpace(m.Title) != "" {
		return m.Title
	}
	if m.Key != "" {
		return "vigil alert " + m.Key
	}
	return "vigil alert"
}

// pagingDetails is fields as an object, for PagerDuty's custom_details
// and Opsgenie's details; a name given twice keeps both values. When
// limit > 0 the names and values total at most limit characters: values are
// cut, and fields that no longer fit are left out (all of them are in the
// text anyway), the first fields, the most telling, keeping the room. No
// fields give nil, so that the object is omitted.
func pagingDetails(fields []Field, limit int) map[string]string {
	if len(fields) == 0 {
		return nil
	}
	var names []string
	merged := make(map[string]string, len(fields))
	for _, f := range fields {
		if old, ok := merged[f.Name]; ok {
			merged[f.Name] = old + "\n" + f.Value
			continue
		}
		names = append(names, f.Name)
		merged[f.Name] = f.Value
	}
	if limit <= 0 {
		return merged
	}
	d := make(map[string]string, len(names))
	left := limit
	for _, name := range names {
		room := left - utf8.RuneCountInString(name)
		if room < 1 {
			continue
		}
		v := clip(merged[name], room)
		d[name] = v
		left = room - utf8.RuneCountInString(v)
	}
	return d
}

// clip cuts s to at most n characters, marking the cut, for text
// people read.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return cut(s, n-1) + "…"
}

// cut cuts s to at most n characters, unmarked, for keys: the cut
// is the same every time, so a key cut for a trigger is cut the same for
// its resolve.
func cut(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
