// Package notify delivers messages to people and their tools: webhooks,
// chat (Slack, Microsoft Teams), paging (PagerDuty, Opsgenie) and email.
// It knows messages, not alerts: the alert layer says what to send, and
// a Dispatcher sends it to each channel on its own, retrying with backoff
// and recording every delivery, so that a slow or failing channel never
// delays another.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"text/template"
	"time"
)

// An Action is what a message does to the incident it is about, for
// the channels that track incidents (PagerDuty, Opsgenie); the others
// show it in the text.
type Action string

// The actions.
const (
	Trigger     Action = "trigger"
	Acknowledge Action = "acknowledge"
	Resolve     Action = "resolve"
)

// A Message is one notification.
type Message struct {
	// Key identifies the incident across its messages: the alert's id.
	// Paging services deduplicate on it.
	Key      string
	Action   Action
	Title    string
	Severity string // informational, low, medium, high, critical
	// Fields are the key facts, in order: actor, source address,
	// account, environment, action, count, …
	Fields []Field
	// Link points at the alert in the console.
	Link string
	// Body, if set, is the text below the title, in place of the
	// fields (a template's; see Templated).
	Body string
	// Time is when what the message reports happened.
	Time time.Time
}

// A Field is a named value of a message.
type Field struct{ Name, Value string }

// Text is the message as plain text: its title, then its body or a line
// a field.
func (m *Message) Text() string {
	s := m.Title
	if m.Action != Trigger && m.Action != "" {
		s = "[" + string(m.Action) + "] " + s
	}
	if m.Body != "" {
		s += "\n" + m.Body
	} else {
		for _, f := range m.Fields {
			s += "\n" + f.Name + ": " + f.Value
		}
	}
	if m.Link != "" {
		s += "\n" + m.Link
	}
	return s
}

// Templated is a channel whose messages' titles and bodies templates
// write (text/template, over a TemplateData). A template left nil keeps
// what the message has.
type Templated struct {
	Channel
	Title, Body *template.Template
}

// TemplateData is what a Templated channel's templates see: the
// message, and its fields by name ({{.Field "source address"}}).
type TemplateData struct {
	Message
}

// Field returns the value of the message's field of that name, or "".
func (d TemplateData) Field(name string) string {
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Send writes m's title and body with the templates, then sends it. A
// template that fails sends the message as it was, rather than nothing.
func (t *Templated) Send(ctx context.Context, m Message) error {
	data := TemplateData{m}
	for _, x := range []struct {
		tmpl *template.Template
		dst  *string
	}{{t.Title, &m.Title}, {t.Body, &m.Body}} {
		if x.tmpl == nil {
			continue
		}
		var b strings.Builder
		if err := x.tmpl.Execute(&b, data); err == nil {
			*x.dst = strings.TrimSpace(b.String())
		}
	}
	return t.Channel.Send(ctx, m)
}

// A Channel sends messages somewhere. Send returns an error for a
// delivery that failed; a *PermanentError for one that retrying cannot
// fix (a rejected request), any other error for one worth retrying.
type Channel interface {
	Name() string
	Send(ctx context.Context, m Message) error
}

// A PermanentError is a delivery the receiver refused for good.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// A Delivery is the outcome of sending one message to one channel.
type Delivery struct {
	Channel  string
	Key      string
	Action   Action
	Title    string
	Status   string // delivered, failed
	Attempts int
	Err      string // the last error
	Queued   time.Time
	Done     time.Time
}

// Options configure a Dispatcher.
type Options struct {
	// Attempts is how many times a message is tried (default 5).
	Attempts int
	// Backoff is the wait before the second attempt (default 1s), which
	// doubles, with jitter, for each further one, up to MaxBackoff
	// (default 1m).
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Queue is how many messages a channel holds before Send drops the
	// next ones, recording them as failed (default 1000).
	Queue int
	// Record, if set, is given every delivery once it is done.
	Record func(Delivery)
	Logger *slog.Logger
	// sleep waits, for tests.
	sleep func(ctx context.Context, d time.Duration) error
}

// A Dispatcher sends messages to channels, each channel from its own
// queue and goroutine.
type Dispatcher struct {
	opts   Options
	mu     sync.Mutex
	queues map[string]chan queued
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

type queued struct {
	m  Message
	at time.Time
}

// NewDispatcher returns a Dispatcher for channels.
func NewDispatcher(channels []Channel, opts Options) *Dispatcher {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.sleep == nil {
		opts.sleep = sleep
	}
	d := &Dispatcher{opts: opts, queues: map[string]chan queued{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, c := range channels {
		q := make(chan queued, opts.Queue)
		d.queues[c.Name()] = q
		d.wg.Add(1)
		go d.run(c, q)
	}
	return d
}

// Send queues m for the named channels. A channel it does not know, or
// one whose queue is full, gets a failed delivery recorded.
func (d *Dispatcher) Send(m Message, channels ...string) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range channels {
		q, ok := d.queues[name]
		if !ok {
			d.record(Delivery{Channel: name, Key: m.Key, Action: m.Action, Title: m.Title, Status: "failed", Err: "no such channel", Queued: now, Done: now})
			continue
		}
		if d.ctx.Err() != nil {
			d.record(Delivery{Channel: name, Key: m.Key, Action: m.Action, Title: m.Title, Status: "failed", Err: "the dispatcher is closed", Queued: now, Done: now})
			continue
		}
		select {
		case q <- queued{m, now}:
		default:
			d.record(Delivery{Channel: name, Key: m.Key, Action: m.Action, Title: m.Title, Status: "failed", Err: fmt.Sprintf("the channel's queue of %d is full", d.opts.Queue), Queued: now, Done: now})
		}
	}
}

// Close stops taking messages, waits up to grace for the queued ones to
// be delivered, then gives up on the rest.
func (d *Dispatcher) Close(grace time.Duration) {
	d.mu.Lock()
	for _, q := range d.queues {
		close(q)
	}
	d.queues = map[string]chan queued{}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.cancel()
		<-done
	}
	d.cancel()
}

func (d *Dispatcher) run(c Channel, q chan queued) {
	defer d.wg.Done()
	for item := range q {
		d.deliver(c, item)
	}
}

// deliver tries a message until it is delivered, refused for good, or
// out of attempts.
func (d *Dispatcher) deliver(c Channel, item queued) {
	del := Delivery{Channel: c.Name(), Key: item.m.Key, Action: item.m.Action, Title: item.m.Title, Queued: item.at}
	wait := d.opts.Backoff
	for {
		del.Attempts++
		ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
		err := c.Send(ctx, item.m)
		cancel()
		if err == nil {
			del.Status, del.Err = "delivered", ""
			break
		}
		del.Status, del.Err = "failed", err.Error()
		var perm *PermanentError
		if errors.As(err, &perm) || del.Attempts >= d.opts.Attempts || d.ctx.Err() != nil {
			break
		}
		// Full jitter around the doubling wait, so that many alerts
		// failing at once do not retry in step.
		if d.opts.sleep(d.ctx, wait/2+rand.N(wait/2+1)) != nil {
			break
		}
		wait = min(2*wait, d.opts.MaxBackoff)
	}
	del.Done = time.Now()
	if del.Status == "failed" {
		d.opts.Logger.Warn("notification failed", "channel", del.Channel, "key", del.Key, "attempts", del.Attempts, "err", del.Err)
	}
	d.record(del)
}

func (d *Dispatcher) record(del Delivery) {
	if d.opts.Record != nil {
		d.opts.Record(del)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
