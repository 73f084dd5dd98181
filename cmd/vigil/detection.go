package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/web"
)

// detectConfig is the detect section of the config file.
type detectConfig struct {
	// Rules are Sigma rule files and directories, loaded besides the
	// built-in pack and reloaded when they change.
	Rules []string `yaml:"rules"`
	// Builtin loads the built-in rule pack (default true).
	Builtin *bool `yaml:"builtin"`
	// Placeholders are the values of the placeholders (%name%) of rules
	// with the expand modifier.
	Placeholders map[string][]string `yaml:"placeholders"`
}

// loadEngine loads the rules the config and flags name, and those
// written in the console that mdb keeps (none when mdb is nil), with the
// rules turned off there off. Rules that do not load are left out and
// returned as errors, each naming its file, line and reason; the engine
// holds the rest.
func loadEngine(ctx context.Context, cfg detectConfig, extra []string, mdb *meta.DB) (*detect.Engine, []error) {
	var (
		rules []*detect.Rule
		errs  []error
		off   map[string]bool
	)
	if cfg.Builtin == nil || *cfg.Builtin {
		rs, err := detect.Builtin()
		rules = append(rules, rs...)
		errs = append(errs, unjoin(err)...)
	}
	paths := append(append([]string(nil), cfg.Rules...), extra...)
	if len(paths) > 0 {
		rs, err := detect.LoadPaths(paths...)
		rules = append(rules, rs...)
		errs = append(errs, unjoin(err)...)
	}
	if mdb != nil {
		saved, err := mdb.SavedRules(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the rules written in the console: %w", err))
		}
		for _, s := range saved {
			rs, err := detect.Parse(web.SavedRuleFile(s.ID), []byte(s.Body))
			rules = append(rules, rs...)
			errs = append(errs, unjoin(err)...)
		}
		switches, err := mdb.RulesOff(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading which rules are turned off: %w", err))
		}
		off = map[string]bool{}
		for _, s := range switches {
			off[s.RuleID] = true
		}
	}
	e, err := detect.NewEngine(rules, detect.Options{Placeholders: cfg.Placeholders, Off: off})
	return e, append(errs, unjoin(err)...)
}

// logEngine reports what a loaded engine holds, and what it refused.
func logEngine(logger *slog.Logger, e *detect.Engine, errs []error) {
	for _, err := range errs {
		logger.Error("rule not loaded", "err", err)
	}
	for _, d := range e.Disabled() {
		logger.Warn("rule disabled", "rule", d.Rule.ID, "file", d.Rule.File, "reason", d.Reason)
	}
	logger.Info("detection rules loaded", "rules", len(e.Rules()), "refused", len(errs), "disabled", len(e.Disabled()), "without_source", len(e.Unmatched()))
}

// rulesSignature summarizes the rule files under paths (names, sizes and
// modification times), so that a change can be noticed by polling.
func rulesSignature(paths []string) string {
	var parts []string
	for _, p := range paths {
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !detect.IsRuleFile(path) {
				return nil
			}
			if info, err := d.Info(); err == nil {
				parts = append(parts, fmt.Sprintf("%s %d %d", path, info.Size(), info.ModTime().UnixNano()))
			}
			return nil
		})
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// A ruleLoader loads the rules a server runs and swaps them into its
// runner: when their files change, on a signal, and when the console
// changes them.
type ruleLoader struct {
	// swap runs the loaded rules: in the runner, or the process node's.
	swap  func(*detect.Engine)
	cfg   func() detectConfig
	extra []string
	mdb   *meta.DB
	// warm rebuilds the new rules' correlation state.
	warm   func(*detect.Engine) error
	logger *slog.Logger

	mu sync.Mutex // one reload at a time
}

// reload loads the rules and runs them. A reload that refuses rules
// keeps the rest, and says which in the log. Correlation state that
// cannot be rebuilt is logged too: the new rules run all the same, their
// correlations counting from now.
func (l *ruleLoader) reload(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, errs := loadEngine(ctx, l.cfg(), l.extra, l.mdb)
	logEngine(l.logger, e, errs)
	l.swap(e)
	l.logger.Info("reloaded detection rules")
	if err := l.warm(e); err != nil {
		l.logger.Error("rebuilding correlation state for the reloaded rules", "err", err)
	}
	return nil
}

// signature summarizes what the rules are loaded from: the files, and
// the version of the rules in the metadata database, which every node
// sharing it sees change.
func (l *ruleLoader) signature(ctx context.Context) string {
	sig := rulesSignature(append(append([]string(nil), l.cfg().Rules...), l.extra...))
	v, err := l.mdb.RulesVersion(ctx)
	if err != nil {
		l.logger.Error("reading the version of the rules", "err", err)
	}
	return fmt.Sprintf("%s\nconsole %d", sig, v)
}

// watch reloads the rules when what they are loaded from changes, or on
// a signal on reload, until ctx is done.
func (l *ruleLoader) watch(ctx context.Context, every time.Duration, reload <-chan struct{}) {
	sig := l.signature(ctx)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			next := l.signature(ctx)
			if next == sig {
				continue
			}
			sig = next
		case <-reload:
			sig = l.signature(ctx)
		}
		l.reload(ctx)
	}
}

// detectionSink records detections in the metadata database, where the
// API lists them, and logs each at debug level: what a person sees is the
// alert they are grouped into, which the alert manager logs.
type detectionSink struct {
	db    *meta.DB
	log   *slog.Logger
	count atomic.Int64
}

func (s *detectionSink) Detected(ds []detect.Detection) {
	s.count.Add(int64(len(ds)))
	rows := make([]meta.Detection, 0, len(ds))
	now := time.Now().UTC()
	for i := range ds {
		d := &ds[i]
		row := meta.Detection{
			Created: now, Tenant: d.Tenant(), RuleID: d.Rule.ID, Title: d.Rule.Title, Level: d.Rule.Level,
			Tags: d.Rule.Tags, Fields: d.Fields, Group: d.Group,
		}
		if d.Event != nil {
			seq := d.Event.Seq
			row.Seq, row.EventTime, row.EventID = &seq, d.Event.Time, d.Event.ID
		}
		for _, e := range d.Events {
			row.Events = append(row.Events, e.Seq)
		}
		// A correlation across tenants keeps each tenant's events, which
		// is what lets that tenant see its part of it.
		for _, p := range d.Parts() {
			part := meta.DetectionPart{Tenant: p.Tenant}
			for _, e := range p.Events {
				part.Seqs = append(part.Seqs, e.Seq)
			}
			row.Parts = append(row.Parts, part)
		}
		rows = append(rows, row)
		if d.Event != nil {
			s.log.Debug("detection", "rule", d.Rule.ID, "title", d.Rule.Title, "level", d.Rule.Level, "tenant", row.Tenant, "seq", d.Event.Seq)
		} else {
			s.log.Debug("detection", "rule", d.Rule.ID, "title", d.Rule.Title, "level", d.Rule.Level, "tenant", row.Tenant, "events", len(row.Events))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.db.AddDetections(ctx, rows); err != nil {
		s.log.Error("recording detections; they are in the log above", "err", err)
	}
}

// checkRulePaths refuses rule paths that do not exist, so that a typo in
// --rules is not a silently empty rule set.
func checkRulePaths(paths []string) error {
	var errs []error
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("rules: %w", err))
		}
	}
	return errors.Join(errs...)
}
