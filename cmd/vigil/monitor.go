package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"
	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/query"
)

// monitorConfig is the monitor section of the config file.
type monitorConfig struct {
	// Probes are the checks vigil serve makes, on their schedules, of
	// the services the organization depends on.
	Probes []monitor.Probe `yaml:"probes"`
	// Scrape are the Prometheus endpoints vigil serve reads, each on its
	// schedule.
	Scrape []monitor.ScrapeTarget `yaml:"scrape"`
	// Sources are the sources that must send, each with the longest it
	// may be quiet; others are learned from what arrives.
	Sources []monitor.ExpectedSource `yaml:"sources"`
	// Rules say which strays of which metrics are anomalies (the
	// defaults, monitor.DefaultRules, when none).
	Rules []monitor.Rule `yaml:"rules"`
}

// rules returns the configured rules, or the defaults.
func (c *monitorConfig) rules() []monitor.Rule {
	if len(c.Rules) > 0 {
		return c.Rules
	}
	return monitor.DefaultRules()
}

// A sampleStore keeps metric samples: the embedded store, or ClickHouse
// on a scale-out.
type sampleStore interface {
	monitor.SampleAppender
	Samples(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error)
	Downsample(ctx context.Context, before time.Time) (int64, error)
}

// flowSums reads a store's samples with the parts of each flow-rollup
// bucket summed (monitor.SumBuckets).
func flowSums(st sampleStore) func(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error) {
	return func(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error) {
		series, err := st.Samples(ctx, scope, name, match, from, to)
		return monitor.SumBuckets(series), err
	}
}

// flowsEvery is how often the network use of flow logs is stored, and
// how long a bucket goes without a record before it is (tests shorten
// it).
var flowsEvery = time.Minute

// newFlowRollup returns the rollup storeFlows stores.
func newFlowRollup() *monitor.FlowRollup { return &monitor.FlowRollup{Quiet: flowsEvery} }

// storeFlows stores the network use flow logs gave every flowsEvery, and
// what is left when ctx is done.
func storeFlows(ctx context.Context, flows *monitor.FlowRollup, st monitor.SampleAppender, logger *slog.Logger) {
	t := time.NewTicker(flowsEvery)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
		}
		for tenant, series := range flows.Flush(done) {
			if err := st.AppendSamples(context.WithoutCancel(ctx), tenant, series); err != nil {
				logger.Error("storing the network use of flow logs", "tenant", tenant, "err", err)
			}
		}
	}
}

// rawSamplesFor is how long metric samples are kept as they came;
// older, each series keeps an hour's mean (downsampling).
const rawSamplesFor = 7 * 24 * time.Hour

// downsample rolls the samples older than rawSamplesFor up into hours,
// at start and every hour after, until ctx is done.
func downsample(ctx context.Context, db sampleStore, logger *slog.Logger) {
	roll := func() {
		n, err := db.Downsample(ctx, time.Now().Add(-rawSamplesFor))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("downsampling metric samples", "err", err)
		case n > 0:
			logger.Info("downsampled metric samples into hours", "samples", n)
		}
	}
	roll()
	everyTick(ctx, time.Hour, roll)
}

// evaluateEvery is how often vigil serve evaluates the monitoring rules.
// Tests shorten it.
var evaluateEvery = 5 * time.Minute

// monitorSource is the source of the events of vigil's monitoring: the
// anomalies, the silent sources, the probes' changes.
const monitorSource = "vigil.monitor"

// anomalyAlerter raises the anomalies the monitoring rules find in the
// stored series, each once: as an event in the ledger, which says what
// was expected and what was seen, and which is an alert of its rule
// (anomalyFindings).
type anomalyAlerter struct {
	rules    []monitor.Rule
	store    sampleStore
	intake   ingest.Acceptor
	logger   *slog.Logger
	reported map[string]time.Time // anomaly key → when it was reported
}

// run evaluates the rules every evaluateEvery until ctx is done.
func (a *anomalyAlerter) run(ctx context.Context) {
	a.reported = map[string]time.Time{}
	everyTick(ctx, evaluateEvery, func() {
		now := time.Now()
		for i := range a.rules {
			if err := a.evaluate(ctx, &a.rules[i], now); err != nil && ctx.Err() == nil {
				a.logger.Error("evaluating a monitoring rule", "rule", a.rules[i].Name, "err", err)
			}
		}
		for k, at := range a.reported {
			if now.Sub(at) > 48*time.Hour {
				delete(a.reported, k)
			}
		}
	})
}

// evaluate runs one rule over the last day of its metric, with the
// history its baseline needs, and raises what it finds that was not
// raised before.
func (a *anomalyAlerter) evaluate(ctx context.Context, r *monitor.Rule, now time.Time) error {
	from := now.Add(-24 * time.Hour)
	series, err := flowSums(a.store)(ctx, query.Scope{All: true}, r.Metric, r.Match, from.Add(-r.HistorySpan()-24*time.Hour), now)
	if err != nil {
		return err
	}
	// Each tenant's series are judged apart.
	rule := *r
	if len(rule.By) > 0 && !slices.Contains(rule.By, "tenant") {
		rule.By = append(slices.Clip(rule.By), "tenant")
	}
	for _, an := range rule.EvaluateAll(series, from, now) {
		key := an.Rule + an.Labels.String() + an.Start.String()
		if _, done := a.reported[key]; done {
			continue
		}
		if err := acceptPatiently(ctx, a.intake, ingest.Batch{Source: "monitor", Events: []*event.Event{anomalyEvent(an)}}); err != nil {
			return fmt.Errorf("recording an anomaly: %w", err)
		}
		a.reported[key] = now
	}
	return nil
}

// anomalyFindings returns the alerts of the anomalies' events among evs,
// which have their seqs: the event is the alert's evidence, so the alert
// is raised where the event is numbered (the intake's detection, a
// process node's partition), not where the anomaly was found.
func anomalyFindings(rules []monitor.Rule) func(evs []*event.Event) []detect.Detection {
	described := map[string]string{}
	for _, r := range rules {
		described[r.Name] = r.Description
	}
	return func(evs []*event.Event) []detect.Detection {
		var ds []detect.Detection
		for _, ev := range evs {
			// Parsers name their formats as sources: vigil.monitor is
			// vigil's own.
			if ev.Source != monitorSource || ev.Action != "anomaly" {
				continue
			}
			var an monitor.Anomaly
			if err := json.Unmarshal(ev.Raw, &an); err != nil || an.Rule == "" {
				continue
			}
			ds = append(ds, detect.Detection{
				Rule: &detect.Rule{ID: "vigil-monitor-" + an.Rule, Title: "KPI anomaly: " + an.Rule, Level: an.Severity,
					Description: described[an.Rule], Tags: []string{monitorSource}},
				Group:  an.Labels.Map(),
				Events: []detect.EventRef{{Seq: ev.Seq, Time: ev.Time, ID: ev.ID, Tenant: ev.Tenant, Action: ev.Action}},
			})
		}
		return ds
	}
}

// anomalyEvent is the event of an anomaly: the series, what was seen
// and what was expected, in its message, and the samples in its
// document.
func anomalyEvent(an monitor.Anomaly) *event.Event {
	labels := an.Labels.Map()
	msg := fmt.Sprintf("%s%s %s: %.4g at %s against %.4g expected (%.1f scales), from %s to %s", an.Metric, an.Labels, an.Direction,
		an.Peak.Value, an.Peak.Time.UTC().Format(time.RFC3339), an.Expected, an.Score,
		an.Start.UTC().Format(time.RFC3339), an.End.UTC().Format(time.RFC3339))
	doc, _ := json.Marshal(an)
	now := time.Now()
	ev := &event.Event{Time: an.End, Received: now, Tenant: labels["tenant"], Source: monitorSource, Class: "kpi",
		Action: "anomaly", Service: an.Metric, Message: msg, Raw: doc, Outcome: event.Outcome{Result: event.OutcomeUnknown}}
	if acct := labels["account"]; acct != "" {
		ev.Cloud = event.Cloud{Provider: labels["provider"], Account: acct}
	}
	return ev
}

// silenceEvery is how often vigil serve looks for silent sources. Tests
// shorten it.
var silenceEvery = time.Minute

// watchSilence records, until ctx is done, each source that has gone
// quiet for longer than its bound as an event, which the built-in rule
// "Log Source Went Silent" alerts on.
func watchSilence(ctx context.Context, w *monitor.Watch, intake ingest.Acceptor, logger *slog.Logger) {
	everyTick(ctx, silenceEvery, func() {
		for _, s := range w.Silent(time.Now()) {
			if err := acceptPatiently(ctx, intake, ingest.Batch{Source: "monitor", Events: []*event.Event{silenceEvent(s)}}); err != nil && ctx.Err() == nil {
				logger.Error("recording a silent source", "source", s.String(), "err", err)
			}
		}
	})
}

// silenceEvent is the event of a silent source: its account (or host),
// the format it sends as service, and what disabled logging before it
// went quiet, in its message and its document.
func silenceEvent(s monitor.Silence) *event.Event {
	now := time.Now()
	msg := fmt.Sprintf("%s from %s has sent nothing since %s (%s quiet, more than %s)", s.Source, s.From,
		s.LastSeen.UTC().Format(time.RFC3339), now.Sub(s.LastSeen).Round(time.Second), s.Bound)
	for _, t := range s.Tampering {
		msg += fmt.Sprintf("; before it went quiet: %s by %s at %s (event %s)", t.Action, cmp.Or(t.Actor, "someone"), t.Time.UTC().Format(time.RFC3339), t.EventID)
	}
	doc, _ := json.Marshal(s)
	ev := &event.Event{Time: now, Received: now, Tenant: s.Tenant, Source: monitorSource, Class: "availability",
		Action: "source_silent", Service: s.Source, Outcome: event.Outcome{Result: event.OutcomeFailure}, Message: msg, Raw: doc}
	switch provider, _, _ := strings.Cut(s.Source, "."); provider {
	case "aws", "gcp", "azure":
		ev.Cloud = event.Cloud{Provider: provider, Account: s.From}
	default:
		ev.Host = s.From
	}
	for _, t := range s.Tampering {
		ev.Resources = append(ev.Resources, t.EventID)
	}
	return ev
}

// startProbes runs the configured probes until ctx is done: their
// samples go to the store, and each change between up and down is an
// availability event, through the intake like any other.
func startProbes(ctx context.Context, cfg *config, st monitor.SampleAppender, intake ingest.Acceptor, logger *slog.Logger) {
	if len(cfg.Monitor.Probes) == 0 {
		return
	}
	pr := &monitor.Prober{Probes: cfg.Monitor.Probes, Store: st, Tenant: cfg.Tenant, Logger: logger,
		Changed: func(p *monitor.Probe, r monitor.Result) {
			if err := acceptProbeEvent(ctx, intake, cfg.Tenant, p, r); err != nil && ctx.Err() == nil {
				logger.Error("recording a probe's change", "probe", p.Name, "err", err)
			}
		}}
	logger.Info("running probes", "probes", len(pr.Probes))
	pr.Run(ctx)
}

// acceptProbeEvent records that a probe went down or came back up.
func acceptProbeEvent(ctx context.Context, intake ingest.Acceptor, tenant string, p *monitor.Probe, r monitor.Result) error {
	state, result := "up", event.OutcomeSuccess
	msg := fmt.Sprintf("probe %s: %s is up again", p.Name, p.Target)
	if !r.Up {
		state, result = "down", event.OutcomeFailure
		msg = fmt.Sprintf("probe %s: %s is down: %s", p.Name, p.Target, r.Error)
	}
	ev := &event.Event{Time: r.Time, Received: time.Now(), Tenant: tenant, Source: "vigil.probe", Class: "availability",
		Action: "probe_" + state, Host: p.Target, Service: p.Name, Environment: p.Labels["environment"],
		Outcome: event.Outcome{Result: result}, Message: msg, Raw: []byte(msg)}
	return acceptPatiently(ctx, intake, ingest.Batch{Source: "probe", Events: []*event.Event{ev}})
}

// probeAvailability is a probed target's availability: the share of its
// checks that found it up over the last hour, day and week.
type probeAvailability struct {
	Probe  string             `json:"probe"`
	Target string             `json:"target"`
	Tenant string             `json:"tenant"`
	Up     bool               `json:"up"` // at the last check
	Last   time.Time          `json:"last_check"`
	Shares map[string]float64 `json:"availability"` // "1h", "24h", "7d"
	Checks map[string]int     `json:"checks"`
}

// probeReport gives the availability of every probed target in scope.
func probeReport(ctx context.Context, db sampleStore, scope query.Scope, now time.Time) ([]probeAvailability, error) {
	series, err := db.Samples(ctx, scope, monitor.ProbeUp, nil, now.Add(-7*24*time.Hour), now)
	if err != nil {
		return nil, err
	}
	out := []probeAvailability{}
	for i := range series {
		s := &series[i]
		p := probeAvailability{Probe: s.Labels.Get("probe"), Target: s.Labels.Get("target"), Tenant: s.Labels.Get("tenant"),
			Shares: map[string]float64{}, Checks: map[string]int{}}
		if n := len(s.Samples); n > 0 {
			p.Up, p.Last = s.Samples[n-1].Value >= 1, s.Samples[n-1].Time
		}
		for name, span := range map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour} {
			p.Shares[name], p.Checks[name] = monitor.Availability(s, now.Add(-span), now.Add(time.Nanosecond))
		}
		out = append(out, p)
	}
	return out, nil
}

// hearing is the acceptor of an ingest node of a scale-out, which also
// keeps the summary (monitor.Summary) of what it accepted since it last
// sent one to the node that watches for silent sources: events arrive at
// every ingest node, and silence is of them all.
type hearing struct {
	ingest.Acceptor
	mu      sync.Mutex
	pending []*event.Event
}

func (h *hearing) Accept(ctx context.Context, b ingest.Batch) error {
	if err := h.Acceptor.Accept(ctx, b); err != nil {
		return err
	}
	h.mu.Lock()
	h.pending = monitor.Summary(append(h.pending, b.Events...), time.Now())
	h.mu.Unlock()
	return nil
}

// heardEvery is how often an ingest node sends what it heard from: soon
// enough that a source bound to a gap of seconds is not taken for silent
// while its events are on their way; a small message a second a node.
const heardEvery = time.Second

// send sends the summary every heardEvery, and once more when ctx ends.
func (h *hearing) send(ctx context.Context, heard *bus.Topic, logger *slog.Logger) {
	flush := func(ctx context.Context) {
		h.mu.Lock()
		evs := h.pending
		h.pending = nil
		h.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		data, err := json.Marshal(evs)
		if err == nil {
			err = heard.Publish(ctx, []bus.Msg{{ID: nuid.Next(), Data: data}})
		}
		if err != nil {
			logger.Warn("sending what this node heard from to the silence watch; sent with the next", "err", err)
			h.mu.Lock()
			h.pending = monitor.Summary(append(evs, h.pending...), time.Now())
			h.mu.Unlock()
		}
	}
	everyTick(ctx, heardEvery, func() { flush(ctx) })
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	flush(stop)
}

// watchHeard feeds w what the ingest nodes heard from, from the oldest
// summary the bus keeps (a new watcher learns the sources' gaps again),
// until ctx ends.
func watchHeard(ctx context.Context, heard *bus.Topic, w *monitor.Watch, logger *slog.Logger) {
	var after uint64
	for ctx.Err() == nil {
		r, err := heard.ReadAfter(ctx, 0, after)
		for err == nil {
			var msgs []bus.Msg
			msgs, err = r.Next(ctx, 64, time.Second)
			for _, m := range msgs {
				var evs []*event.Event
				if jerr := json.Unmarshal(m.Data, &evs); jerr != nil {
					logger.Error("a summary of what an ingest node heard from is not one; skipped", "message", m.Seq, "err", jerr)
				} else {
					w.Observe(evs, time.Now())
				}
				after = m.Seq
			}
		}
		if ctx.Err() == nil {
			logger.Warn("reading what the ingest nodes heard from; reading on", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}
