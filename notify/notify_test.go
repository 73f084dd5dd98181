package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

var testMessage = Message{
	Key: "18edae1360a318b9d1a01bee8d64", Action: Trigger, Title: "Root Account Used", Severity: "critical",
	Fields: []Field{{"actor", "root"}, {"source address", "198.51.100.7"}, {"account", "143434273843"}, {"action", "ConsoleLogin"}},
	Link:   "https://vigil.example.com/alerts/18edae1360a318b9d1a01bee8d64",
	Time:   time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC),
}

// fakeChannel answers with the errors it is given, in turn, then nil.
type fakeChannel struct {
	name  string
	errs  []error
	block chan struct{} // if set, Send waits for it or the context
	// started, if set, is sent to as each Send begins.
	started chan struct{}
	mu      sync.Mutex
	sent    []Message
}

func (c *fakeChannel) Name() string { return c.name }

func (c *fakeChannel) Send(ctx context.Context, m Message) error {
	if c.started != nil {
		c.started <- struct{}{}
	}
	if c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, m)
	if len(c.errs) > 0 {
		err := c.errs[0]
		c.errs = c.errs[1:]
		return err
	}
	return nil
}

// recorder keeps the deliveries a Dispatcher records.
type recorder struct {
	mu sync.Mutex
	ds []Delivery
	ch chan Delivery
}

func newRecorder() *recorder { return &recorder{ch: make(chan Delivery, 100)} }

func (r *recorder) record(d Delivery) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
	r.ch <- d
}

func (r *recorder) next(t *testing.T) Delivery {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery recorded")
		return Delivery{}
	}
}

// noSleep makes retries immediate, counting the waits asked for.
func noSleep(waits *[]time.Duration) func(context.Context, time.Duration) error {
	var mu sync.Mutex
	return func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
}

// TestDispatcherRetries: a failing delivery is retried with growing
// waits until it succeeds, or until its attempts run out, or at once
// not at all when the receiver refused it for good; each outcome is
// recorded with its attempts and last error.
func TestDispatcherRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		errs     []error
		status   string
		attempts int
	}{
		{"first time", nil, "delivered", 1},
		{"after two failures", []error{errors.New("503"), errors.New("503")}, "delivered", 3},
		{"out of attempts", []error{errors.New("a"), errors.New("b"), errors.New("c"), errors.New("d")}, "failed", 4},
		{"refused for good", []error{&PermanentError{errors.New("400 invalid")}}, "failed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeChannel{name: "c", errs: tc.errs}
			rec := newRecorder()
			var waits []time.Duration
			d := NewDispatcher([]Channel{c}, Options{Attempts: 4, Backoff: time.Second, MaxBackoff: 3 * time.Second, Record: rec.record, sleep: noSleep(&waits)})
			defer d.Close(time.Second)
			d.Send(testMessage, "c")
			del := rec.next(t)
			if del.Status != tc.status || del.Attempts != tc.attempts || del.Channel != "c" || del.Key != testMessage.Key {
				t.Fatalf("delivery %+v", del)
			}
			if tc.status == "failed" && del.Err == "" {
				t.Error("a failed delivery without its error")
			}
			if len(waits) != tc.attempts-1 {
				t.Fatalf("waits %v", waits)
			}
			// Each wait is the doubling backoff, capped, with jitter
			// below it of at most a half.
			want := time.Second
			for i, w := range waits {
				if w < want/2 || w > want {
					t.Errorf("wait %d: %v, want between %v and %v", i, w, want/2, want)
				}
				want = min(2*want, 3*time.Second)
			}
		})
	}
}

// TestDispatcherIsolation: a channel that hangs delays no other; it is
// given up on at its timeout, and recorded.
func TestDispatcherIsolation(t *testing.T) {
	hung := &fakeChannel{name: "hung", block: make(chan struct{})}
	fine := &fakeChannel{name: "fine"}
	rec := newRecorder()
	var waits []time.Duration
	d := NewDispatcher([]Channel{hung, fine}, Options{Attempts: 2, Timeout: 200 * time.Millisecond, Record: rec.record, sleep: noSleep(&waits)})
	for i := range 3 {
		m := testMessage
		m.Key = strconv.Itoa(i)
		d.Send(m, "hung", "fine")
	}
	for range 3 {
		if del := rec.next(t); del.Channel != "fine" || del.Status != "delivered" {
			t.Fatalf("first deliveries: %+v; the hung channel held the other back", del)
		}
	}
	if del := rec.next(t); del.Channel != "hung" || del.Status != "failed" || del.Attempts != 2 || !strings.Contains(del.Err, "deadline") {
		t.Errorf("hung delivery: %+v", del)
	}
	close(hung.block)
	d.Close(5 * time.Second)
}

// TestDispatcherQueue: an unknown channel, a full queue and a closed
// dispatcher are recorded as failed, never block the sender.
func TestDispatcherQueue(t *testing.T) {
	hung := &fakeChannel{name: "hung", block: make(chan struct{}), started: make(chan struct{}, 10)}
	rec := newRecorder()
	d := NewDispatcher([]Channel{hung}, Options{Queue: 1, Record: rec.record})
	d.Send(testMessage, "nowhere")
	if del := rec.next(t); del.Status != "failed" || del.Err != "no such channel" {
		t.Errorf("unknown channel: %+v", del)
	}
	// One message in delivery, one in the queue, the third refused.
	d.Send(testMessage, "hung")
	<-hung.started
	d.Send(testMessage, "hung")
	d.Send(testMessage, "hung")
	if del := rec.next(t); del.Status != "failed" || !strings.Contains(del.Err, "queue") {
		t.Errorf("full queue: %+v", del)
	}
	close(hung.block)
	d.Close(5 * time.Second)
	for range 2 {
		if del := rec.next(t); del.Status != "delivered" {
			t.Errorf("queued: %+v", del)
		}
	}
	d.Send(testMessage, "hung")
	if del := rec.next(t); del.Status != "failed" {
		t.Errorf("after Close: %+v", del)
	}
}

// receiver is a local HTTP server that keeps the requests it gets and
// answers with the statuses it is given, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	statuses []int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests, r.bodies = append(r.requests, req), append(r.bodies, body)
		status := 200
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "said so")
	}))
	t.Cleanup(r.Close)
	return r
}

// TestWebhook: the body carries the message, and the signature is the
// HMAC-SHA256 of the timestamp and the body, which a receiver checks.
func TestWebhook(t *testing.T) {
	r := newReceiver(t)
	at := time.Unix(1720612800, 0)
	w := &Webhook{URL: r.URL + "/hook?token=s3cret", Secret: "shared secret", now: func() time.Time { return at }}
	if err := w.Send(context.Background(), testMessage); err != nil {
		t.Fatal(err)
	}
	req, body := r.requests[0], r.bodies[0]
	if req.Method != "POST" || req.URL.Path != "/hook" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %s", req.Method, req.URL, req.Header.Get("Content-Type"))
	}
	ts := req.Header.Get("X-Vigil-Timestamp")
	if ts != "1720612800" || req.Header.Get("X-Vigil-Signature") != Sign("shared secret", ts, body) {
		t.Errorf("timestamp %q, signature %q", ts, req.Header.Get("X-Vigil-Signature"))
	}
	if Sign("another secret", ts, body) == Sign("shared secret", ts, body) || Sign("shared secret", "1720612801", body) == Sign("shared secret", ts, body) {
		t.Error("the signature does not depend on the secret and the timestamp")
	}
	var got WebhookBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Key != testMessage.Key || got.Action != Trigger || got.Title != testMessage.Title || got.Severity != "critical" ||
		got.Fields["actor"] != "root" || got.Link != testMessage.Link || !got.Time.Equal(testMessage.Time) {
		t.Errorf("body %+v", got)
	}
}

// TestHTTPStatuses: how each answer is taken, for every HTTP channel;
// and no error names the URL, which for Slack and Teams is the secret.
func TestHTTPStatuses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok, retry bool
	}{{200, true, false}, {202, true, false}, {400, false, false}, {403, false, false}, {404, false, false}, {408, false, true}, {429, false, true}, {500, false, true}, {503, false, true}} {
		for _, mk := range []func(string) Channel{
			func(u string) Channel { return &Webhook{URL: u} },
			func(u string) Channel { return &Slack{URL: u} },
			func(u string) Channel { return &Teams{URL: u} },
		} {
			r := newReceiver(t, tc.status)
			c := mk(r.URL + "/services/T000/B000/XXXXSECRET")
			err := c.Send(context.Background(), testMessage)
			var perm *PermanentError
			switch {
			case tc.ok && err != nil, !tc.ok && err == nil:
				t.Errorf("%s, %d: %v", c.Name(), tc.status, err)
			case err != nil && errors.As(err, &perm) == tc.retry:
				t.Errorf("%s, %d: %v, retry %v", c.Name(), tc.status, err, tc.retry)
			case err != nil && (strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "said so")):
				t.Errorf("%s, %d: error %q", c.Name(), tc.status, err)
			}
		}
	}
	// Unreachable: the error says so, without the URL.
	r := newReceiver(t)
	r.Close()
	err := (&Slack{URL: r.URL + "/services/XXXXSECRET"}).Send(context.Background(), testMessage)
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("unreachable: %v", err)
	}
}

// TestSlackMessage: Block Kit within Slack's limits, its mrkdwn escaped.
func TestSlackMessage(t *testing.T) {
	m := testMessage
	m.Action = Resolve
	m.Title = strings.Repeat("x", 200)
	for i := range 12 {
		m.Fields = append(m.Fields, Field{strconv.Itoa(i), "<!channel> & " + strings.Repeat("y", 2100)})
	}
	r := newReceiver(t)
	if err := (&Slack{URL: r.URL}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
			Fields []struct {
				Text string `json:"text"`
			} `json:"fields"`
			Elements []struct {
				URL string `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	header, fields, actions := got.Blocks[0], got.Blocks[2], got.Blocks[3]
	if header.Type != "header" || len([]rune(header.Text.Text)) != 150 || !strings.HasPrefix(header.Text.Text, "[resolve] ") {
		t.Errorf("header %q", header.Text.Text)
	}
	if fields.Type != "section" || len(fields.Fields) != 10 {
		t.Fatalf("section %+v", fields.Type)
	}
	for _, f := range fields.Fields {
		if len([]rune(f.Text)) > 2000 || strings.Contains(f.Text, "<!channel>") {
			t.Errorf("field %.40q… (%d characters)", f.Text, len([]rune(f.Text)))
		}
	}
	if actions.Type != "actions" || actions.Elements[0].URL != m.Link || got.Text == "" {
		t.Errorf("actions %+v, text %q", actions, got.Text)
	}
}

// TestTeamsMessage: an Adaptive Card in the envelope Teams workflows
// take, with the fields as facts.
func TestTeamsMessage(t *testing.T) {
	r := newReceiver(t, 202)
	if err := (&Teams{URL: r.URL}).Send(context.Background(), testMessage); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type  string `json:"type"`
					Text  string `json:"text"`
					Facts []struct{ Title, Value string }
				} `json:"body"`
				Actions []struct{ Type, URL string } `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "message" || len(got.Attachments) != 1 || got.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("envelope %+v", got)
	}
	card := got.Attachments[0].Content
	if card.Type != "AdaptiveCard" || card.Body[0].Text != testMessage.Title || len(card.Body[1].Facts) != 1+len(testMessage.Fields) ||
		card.Body[1].Facts[1].Title != "actor" || card.Actions[0].URL != testMessage.Link {
		t.Errorf("card %+v", card)
	}
}

// TestTemplated: templates write a message's title and body from its
// fields; a template that fails leaves the message as it was.
func TestTemplated(t *testing.T) {
	inner := &fakeChannel{name: "chat"}
	title := template.Must(template.New("t").Parse(`[{{.Severity}}] {{.Title}} by {{.Field "actor"}}`))
	body := template.Must(template.New("b").Parse("From {{.Field \"source address\"}} in account {{.Field \"account\"}}.\n{{.Link}}"))
	c := &Templated{Channel: inner, Title: title, Body: body}
	if c.Name() != "chat" {
		t.Errorf("Name = %q", c.Name())
	}
	if err := c.Send(context.Background(), testMessage); err != nil {
		t.Fatal(err)
	}
	got := inner.sent[0]
	if got.Title != "[critical] Root Account Used by root" || got.Body != "From 198.51.100.7 in account 143434273843.\n"+testMessage.Link {
		t.Errorf("title %q, body %q", got.Title, got.Body)
	}
	if txt := got.Text(); !strings.HasPrefix(txt, got.Title+"\nFrom 198.51.100.7") || strings.Contains(txt, "actor: root") {
		t.Errorf("text %q", txt)
	}
	bad := template.Must(template.New("x").Parse(`{{.Nope}}`))
	inner.sent = nil
	(&Templated{Channel: inner, Title: bad}).Send(context.Background(), testMessage)
	if inner.sent[0].Title != testMessage.Title {
		t.Errorf("a failing template gave %q", inner.sent[0].Title)
	}
}
