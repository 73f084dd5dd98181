package monitor

// Silent sources: logs only help while they keep arriving. A Watch keeps
// the sources that send (a tenant's log format from an account or host),
// when each was last heard from and how long its gaps usually are, and
// says when one has been quiet for longer than it should: the trail was
// stopped, the forwarder died, the account was cut off. What disabled
// logging, when the logs said so before going quiet, is named with it.

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
)

// A SourceKey names a source: what sends one tenant's logs of a format,
// from an account (a cloud's) or a host (syslog's).
type SourceKey struct {
	Tenant string `yaml:"tenant" json:"tenant"`
	Source string `yaml:"source" json:"source"`
	From   string `yaml:"from" json:"from"` // the account, project, subscription or host
}

func (k SourceKey) String() string { return k.Tenant + "/" + k.Source + "/" + k.From }

// An ExpectedSource is a source the config says must send, and the
// longest it may be quiet.
type ExpectedSource struct {
	SourceKey `yaml:",inline"`
	MaxGap    Duration `yaml:"max_gap"`
}

// A Tampering is an event that disabled or narrowed logging.
type Tampering struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq,omitempty"`
	EventID string    `json:"event_id,omitempty"`
	Action  string    `json:"action"`
	Actor   string    `json:"actor,omitempty"`
	Target  string    `json:"target,omitempty"`

	received time.Time // when vigil received it
}

// A Silence is a source that has been quiet for longer than its bound.
type Silence struct {
	SourceKey
	LastSeen  time.Time     `json:"last_seen"`
	Bound     time.Duration `json:"bound"`
	Expected  bool          `json:"expected"` // the config names it
	Tampering []Tampering   `json:"tampering,omitempty"`
}

// WatchOptions configure a Watch.
type WatchOptions struct {
	// Expected are the sources the config names; a source not yet heard
	// from counts as heard from when the Watch starts.
	Expected []ExpectedSource
	// MinGap is the least bound a source learned from its gaps gets (30m
	// by default): a source that sends every second is not silent after
	// a few.
	MinGap time.Duration
	// Start is when watching began.
	Start time.Time
}

// A Watch follows sources. Its methods are safe for concurrent use.
type Watch struct {
	opts WatchOptions

	mu      sync.Mutex
	sources map[SourceKey]*heard
	// tampering, by tenant and account: the events that disabled
	// logging there, the latest last.
	tampering map[[2]string][]Tampering
}

// heard is what a Watch knows of a source.
type heard struct {
	last     time.Time       // when it was last heard from (receipt time)
	gaps     []time.Duration // the latest gaps between batches, at most maxGaps
	bound    time.Duration   // the configured one, if any
	expected bool
	silent   bool // reported silent, not heard from since
}

const maxGaps = 64

// NewWatch returns a Watch of the expected sources.
func NewWatch(opts WatchOptions) *Watch {
	if opts.MinGap == 0 {
		opts.MinGap = 30 * time.Minute
	}
	w := &Watch{opts: opts, sources: map[SourceKey]*heard{}, tampering: map[[2]string][]Tampering{}}
	for _, e := range opts.Expected {
		w.sources[e.SourceKey] = &heard{last: opts.Start, bound: time.Duration(e.MaxGap), expected: true}
	}
	return w
}

// Observe notes a batch of events, each heard from when it was
// received (now, if it does not say), and the events in it that
// disabled logging.
func (w *Watch) Observe(evs []*event.Event, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	latest := map[SourceKey]time.Time{}
	for _, ev := range evs {
		if strings.HasPrefix(ev.Source, "vigil.") {
			continue // vigil's own records: a probe's, a playbook's, this
		}
		k, at := keyOf(ev), ev.Received
		if at.IsZero() {
			at = now
		}
		if at.After(latest[k]) {
			latest[k] = at
		}
		if t, ok := tampering(ev); ok {
			t.received = at
			a := [2]string{ev.Tenant, ev.Cloud.Account}
			w.tampering[a] = append(w.tampering[a], t)
			if n := len(w.tampering[a]); n > 16 {
				w.tampering[a] = slices.Delete(w.tampering[a], 0, n-16)
			}
		}
	}
	for k, at := range latest {
		w.heard(k, at)
	}
}

func (w *Watch) heard(k SourceKey, now time.Time) {
	h := w.sources[k]
	if h == nil {
		h = &heard{last: now}
		w.sources[k] = h
		// An expected source named without an account stands for all
		// of its format's.
		for _, e := range w.opts.Expected {
			if e.Tenant == k.Tenant && e.Source == k.Source && e.From == "" {
				h.bound = time.Duration(e.MaxGap)
			}
		}
		return
	}
	if !now.After(h.last) {
		return // a batch read again from the ledger, or out of order
	}
	h.gaps = append(h.gaps, now.Sub(h.last))
	if len(h.gaps) > maxGaps {
		h.gaps = h.gaps[1:]
	}
	h.last, h.silent = now, false
}

// Summary returns what a Watch needs of evs, as events: for each source,
// one received at the latest time it was (now, for events that do not
// say), and each event that disabled logging, with only the fields a
// Watch reads. A Watch observes a summary as it would the events. On a
// scale-out, where events arrive at several nodes and one watches, the
// others send it their summaries.
func Summary(evs []*event.Event, now time.Time) []*event.Event {
	latest := map[SourceKey]time.Time{}
	var out []*event.Event
	for _, ev := range evs {
		if strings.HasPrefix(ev.Source, "vigil.") {
			continue
		}
		at := ev.Received
		if at.IsZero() {
			at = now
		}
		if k := keyOf(ev); at.After(latest[k]) {
			latest[k] = at
		}
		if _, ok := tampering(ev); ok {
			out = append(out, &event.Event{Time: ev.Time, Received: at, Seq: ev.Seq, ID: ev.ID, Tenant: ev.Tenant, Source: ev.Source,
				Action: ev.Action, Actor: event.Actor{Name: ev.Actor.Name}, Resources: ev.Resources, Outcome: ev.Outcome,
				Cloud: event.Cloud{Account: ev.Cloud.Account}, Host: ev.Host})
		}
	}
	for k, at := range latest {
		// keyOf reads the account, else the host: either gives From back.
		out = append(out, &event.Event{Tenant: k.Tenant, Source: k.Source, Cloud: event.Cloud{Account: k.From}, Received: at})
	}
	slices.SortStableFunc(out, func(a, b *event.Event) int { return a.Received.Compare(b.Received) })
	return out
}

// keyOf names the source of an event.
func keyOf(ev *event.Event) SourceKey {
	from := ev.Cloud.Account
	if from == "" {
		from = ev.Host
	}
	return SourceKey{Tenant: ev.Tenant, Source: ev.Source, From: from}
}

// Silent returns the sources quiet at now for longer than their bound,
// each once until it is heard from again, with what disabled logging in
// their account, received in the day before they went quiet.
func (w *Watch) Silent(now time.Time) []Silence {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Silence
	for k, h := range w.sources {
		if h.silent || h.last.IsZero() {
			continue
		}
		bound := h.bound
		if bound == 0 {
			bound = w.learned(h)
		}
		if now.Sub(h.last) <= bound {
			continue
		}
		h.silent = true
		s := Silence{SourceKey: k, LastSeen: h.last, Bound: bound, Expected: h.expected}
		for _, t := range w.tampering[[2]string{k.Tenant, k.From}] {
			// Received, not logged: an archive read late is in its order
			// of arrival, as the source's own last word is.
			if t.received.After(h.last.Add(-24 * time.Hour)) {
				s.Tampering = append(s.Tampering, t)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Silence) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// learned is the bound of a source the config does not bound: four
// times its usual longest gap (the 90th percentile of its latest), and
// at least MinGap.
func (w *Watch) learned(h *heard) time.Duration {
	if len(h.gaps) == 0 {
		return w.opts.MinGap
	}
	gaps := slices.Clone(h.gaps)
	slices.Sort(gaps)
	return max(4*gaps[len(gaps)*9/10], w.opts.MinGap)
}

// tampering reports whether an event disabled or narrowed logging, as
// the built-in rules for it say (detect/builtin/logging_disabled_*.yml),
// in outline: a trail stopped, deleted or changed; a GCP sink deleted or
// changed, or an exclusion made; Azure diagnostic settings deleted.
func tampering(ev *event.Event) (Tampering, bool) {
	if ev.Outcome.Result == event.OutcomeFailure && ev.Outcome.Code != "AccessDenied" {
		return Tampering{}, false
	}
	ok := false
	switch ev.Source {
	case "aws.cloudtrail":
		switch ev.Action {
		case "StopLogging", "DeleteTrail", "PutEventSelectors", "UpdateTrail", "PutAdvancedEventSelectors":
			ok = true
		}
	case "gcp.audit":
		a := ev.Action
		ok = strings.Contains(a, "ConfigServiceV2.DeleteSink") || strings.Contains(a, "ConfigServiceV2.UpdateSink") ||
			strings.Contains(a, "ConfigServiceV2.CreateExclusion") || strings.Contains(a, "ConfigServiceV2.UpdateExclusion")
	case "azure.activity":
		ok = strings.EqualFold(ev.Action, "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE")
	}
	if !ok {
		return Tampering{}, false
	}
	t := Tampering{Time: ev.Time, Seq: ev.Seq, EventID: ev.ID, Action: ev.Action, Actor: ev.Actor.Name}
	if len(ev.Resources) > 0 {
		t.Target = ev.Resources[0]
	}
	return t, true
}
