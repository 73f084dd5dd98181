package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// alertsConfig is the alerts section of the config file.
type alertsConfig struct {
	// Window is how long after an alert's last event a new hit of its
	// dedup key still joins it (default 1h).
	Window string `yaml:"window"`
	// GroupBy are the fields whose values, with the rule and the tenant,
	// make an alert's dedup key (default [vigil.actor]).
	GroupBy []string `yaml:"group_by"`
	// Rules override group_by and the severity, by rule id.
	Rules map[string]alertRuleConfig `yaml:"rules"`
}

type alertRuleConfig struct {
	GroupBy  []string `yaml:"group_by"`
	Severity string   `yaml:"severity"`
}

// config returns the alert package's view of the section, or the bad
// setting.
func (c *alertsConfig) config() (alert.Config, error) {
	var cfg alert.Config
	if c.Window != "" {
		d, err := time.ParseDuration(c.Window)
		if err != nil || d <= 0 {
			return cfg, &configError{"alerts.window", fmt.Errorf("%q is not a positive duration", c.Window)}
		}
		cfg.Window = d
	}
	cfg.GroupBy = c.GroupBy
	for id, rc := range c.Rules {
		if rc.Severity != "" && !slices.Contains(alert.Severities, rc.Severity) {
			return cfg, &configError{"alerts.rules." + id + ".severity", fmt.Errorf("%q is not a severity (%s)", rc.Severity, strings.Join(alert.Severities, ", "))}
		}
		if cfg.Rules == nil {
			cfg.Rules = map[string]alert.RuleConfig{}
		}
		cfg.Rules[id] = alert.RuleConfig{GroupBy: rc.GroupBy, Severity: rc.Severity}
	}
	return cfg, nil
}

// detectionSinks hands detections to each sink in turn: the detections
// record and the alert manager.
type detectionSinks []detect.Sink

func (s detectionSinks) Detected(ds []detect.Detection) {
	for _, sink := range s {
		sink.Detected(ds)
	}
}

// newAlertManager opens the alert manager over mdb, logging each alert
// it opens.
func newAlertManager(ctx context.Context, mdb *meta.DB, cfg alert.Config, logger *slog.Logger) (*alert.Manager, error) {
	m, err := alert.NewManager(ctx, mdb, cfg, logger)
	if err != nil {
		return nil, err
	}
	m.OnNew = func(as []meta.Alert, events []*event.Event) {
		for _, a := range as {
			logger.Warn("alert", "id", a.ID, "rule", a.RuleID, "title", a.Title, "severity", a.Severity, "tenant", a.Tenant, "group", a.Group)
		}
	}
	return m, nil
}
