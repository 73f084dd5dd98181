package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/monitor"
)

// monitorConfig is the monitor section of the config file.
type monitorConfig struct {
	// Probes are the checks vigil serve makes, on their schedules, of
	// the services the organization depends on.
	Probes []monitor.Probe `yaml:"probes"`
	// Sources are the sources that must send, each with the longest it
	// may be quiet; others are learned from what arrives.
	Sources []monitor.ExpectedSource `yaml:"sources"`
}

// silenceEvery is how often vigil serve looks for silent sources. Tests
// shorten it.
var silenceEvery = time.Minute

// watchSilence records, until ctx is done, each source that has gone
// quiet for longer than its bound as an event, which the built-in rule
// "Log Source Went Silent" alerts on.
func watchSilence(ctx context.Context, w *monitor.Watch, intake *ingest.Intake, logger *slog.Logger) {
	t := time.NewTicker(silenceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range w.Silent(time.Now()) {
			if err := acceptPatiently(ctx, intake, ingest.Batch{Source: "monitor", Events: []*event.Event{silenceEvent(s)}}); err != nil && ctx.Err() == nil {
				logger.Error("recording a silent source", "source", s.String(), "err", err)
			}
		}
	}
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
	ev := &event.Event{Time: now, Received: now, Tenant: s.Tenant, Source: "vigil.monitor", Class: "availability",
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
func startProbes(ctx context.Context, cfg *config, dd *data, intake *ingest.Intake, logger *slog.Logger) {
	if len(cfg.Monitor.Probes) == 0 {
		return
	}
	pr := &monitor.Prober{Probes: cfg.Monitor.Probes, Store: dd.db, Tenant: cfg.Tenant, Logger: logger,
		Changed: func(p *monitor.Probe, r monitor.Result) {
			if err := acceptProbeEvent(ctx, intake, cfg.Tenant, p, r); err != nil && ctx.Err() == nil {
				logger.Error("recording a probe's change", "probe", p.Name, "err", err)
			}
		}}
	logger.Info("running probes", "probes", len(pr.Probes))
	pr.Run(ctx)
}

// acceptProbeEvent records that a probe went down or came back up.
func acceptProbeEvent(ctx context.Context, intake *ingest.Intake, tenant string, p *monitor.Probe, r monitor.Result) error {
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
