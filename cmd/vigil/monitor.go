package main

import (
	"context"
	"fmt"
	"log/slog"
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
