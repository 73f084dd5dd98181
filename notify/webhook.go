package notify

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A Webhook posts messages as JSON to any HTTP endpoint (a SOAR, a
// ticketing system, a script), signed so that the receiver can tell
// them from forgeries.
//
// The body is a WebhookBody. X-Vigil-Timestamp is the Unix time of
// sending, and X-Vigil-Signature is "sha256=" and the hex HMAC-SHA256,
// keyed with Secret, of the timestamp, a dot and the body. A receiver
// recomputes it and refuses old timestamps, which stops replays.
type Webhook struct {
	ChannelName string // default "webhook"
	URL         string
	Secret      string // signs the requests; sent with none when empty
	Header      http.Header
	Client      *http.Client
	now         func() time.Time
}

// WebhookBody is the JSON body of a Webhook's requests.
type WebhookBody struct {
	Key      string            `json:"key"`
	Action   Action            `json:"action"`
	Title    string            `json:"title"`
	Severity string            `json:"severity"`
	Fields   map[string]string `json:"fields"`
	Link     string            `json:"link,omitempty"`
	Time     time.Time         `json:"time,omitzero"`
}

// Name returns the channel's name.
func (w *Webhook) Name() string { return cmp.Or(w.ChannelName, "webhook") }

// Send posts m.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	fields := make(map[string]string, len(m.Fields))
	for _, f := range m.Fields {
		fields[f.Name] = f.Value
	}
	body, err := json.Marshal(WebhookBody{Key: m.Key, Action: m.Action, Title: m.Title, Severity: m.Severity, Fields: fields, Link: m.Link, Time: m.Time})
	if err != nil {
		return &PermanentError{fmt.Errorf("%s: encoding the message: %w", w.Name(), err)}
	}
	h := w.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if w.Secret != "" {
		now := time.Now
		if w.now != nil {
			now = w.now
		}
		ts := strconv.FormatInt(now().Unix(), 10)
		h.Set("X-Vigil-Timestamp", ts)
		h.Set("X-Vigil-Signature", Sign(w.Secret, ts, body))
	}
	return post(ctx, w.Client, w.Name(), w.URL, h, body, w.Secret)
}

// Sign returns the X-Vigil-Signature of a webhook request.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// A Slack channel posts to a Slack incoming webhook, whose URL is the
// secret. The message is Block Kit: a header, the fields, and a button to
// the alert, with the plain text for notifications.
type Slack struct {
	ChannelName string // default "slack"
	URL         string
	Client      *http.Client
}

// Name returns the channel's name.
func (s *Slack) Name() string { return cmp.Or(s.ChannelName, "slack") }

// Send posts m.
func (s *Slack) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(slackMessage(m))
	if err != nil {
		return &PermanentError{fmt.Errorf("%s: encoding the message: %w", s.Name(), err)}
	}
	return post(ctx, s.Client, s.Name(), s.URL, nil, body, "")
}

// slackMessage is m in Block Kit, within Slack's limits: a header's text
// is at most 150 characters, a section at most 10 fields of 2,000.
func slackMessage(m Message) map[string]any {
	title := m.Title
	if m.Action != Trigger && m.Action != "" {
		title = "[" + string(m.Action) + "] " + title
	}
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": clip(title, 150)}},
		map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": "*" + escapeSlack(m.Severity) + "* · vigil"}}},
	}
	var fields []any
	for _, f := range m.Fields {
		if len(fields) == 10 {
			break
		}
		fields = append(fields, map[string]any{"type": "mrkdwn", "text": clip("*"+escapeSlack(f.Name)+"*\n"+escapeSlack(f.Value), 2000)})
	}
	if len(fields) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	if m.Link != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{
			map[string]any{"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open in vigil"}, "url": m.Link},
		}})
	}
	return map[string]any{"text": clip(m.Text(), 3000), "blocks": blocks}
}

// escapeSlack escapes the characters Slack's mrkdwn gives meaning to.
func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// A Teams channel posts to a Microsoft Teams workflow webhook (the
// "When a Teams webhook request is received" trigger of Workflows),
// whose URL is the secret. The message is an Adaptive Card: the title,
// the fields as facts, and a button to the alert.
type Teams struct {
	ChannelName string // default "teams"
	URL         string
	Client      *http.Client
}

// Name returns the channel's name.
func (t *Teams) Name() string { return cmp.Or(t.ChannelName, "teams") }

// Send posts m.
func (t *Teams) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(teamsMessage(m))
	if err != nil {
		return &PermanentError{fmt.Errorf("%s: encoding the message: %w", t.Name(), err)}
	}
	return post(ctx, t.Client, t.Name(), t.URL, nil, body, "")
}

func teamsMessage(m Message) map[string]any {
	title := m.Title
	if m.Action != Trigger && m.Action != "" {
		title = "[" + string(m.Action) + "] " + title
	}
	facts := []any{map[string]any{"title": "Severity", "value": m.Severity}}
	for _, f := range m.Fields {
		facts = append(facts, map[string]any{"title": f.Name, "value": f.Value})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true},
			map[string]any{"type": "FactSet", "facts": facts},
		},
	}
	if m.Link != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open in vigil", "url": m.Link}}
	}
	return map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}
