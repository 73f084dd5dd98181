package playbook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/meta"
)

// stepEnded records a step's new status: in the database, the ledger
// and the case.
func (r *Runner) stepEnded(ctx context.Context, run *meta.Run, s *meta.RunStep, actor string) {
	run.Updated = r.opts.Now().UTC()
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		r.log.Error("recording a playbook run", "run", run.ID, "err", err)
	}
	r.metrics.steps.WithLabelValues(s.Action, s.Status).Inc()
	r.audit(ctx, run, s, "step."+s.Status, actor, s.Error)
	if s.Status == DryRun {
		return
	}
	text := fmt.Sprintf("playbook %s, step %s (%s %s): %s", run.Playbook, s.Name, s.Action, formatInputs(s.Inputs), s.Status)
	if len(s.Outputs) > 0 && s.Status == Done {
		text += " → " + formatInputs(s.Outputs)
	}
	if s.Error != "" {
		text += ": " + s.Error
	}
	r.note(ctx, run, text, actor)
}

// end ends a run.
func (r *Runner) end(ctx context.Context, run *meta.Run, status, msg string) {
	run.Status, run.Error, run.Updated = status, msg, r.opts.Now().UTC()
	if status != Done {
		r.ensureCase(ctx, run)
	}
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		r.log.Error("recording a playbook run", "run", run.ID, "err", err)
	}
	r.metrics.runs.WithLabelValues(status).Inc()
	r.audit(ctx, run, nil, "run."+status, "vigil", msg)
	text := fmt.Sprintf("playbook %s ended %s", run.Playbook, status)
	if msg != "" {
		text += ": " + msg
	}
	r.note(ctx, run, text, "vigil")
	lvl := slog.LevelInfo
	if status != Done {
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, "playbook run ended", "run", run.ID, "playbook", run.Playbook, "alert", run.AlertID, "status", status, "err", msg)
}

// ensureCase gives a run that needs a person (a failure, an approval)
// a case: its alert's, or a new one with its alert.
func (r *Runner) ensureCase(ctx context.Context, run *meta.Run) {
	// A rehearsal (every step a dry run) asks nothing of anyone.
	rehearsal := !slices.ContainsFunc(run.Steps, func(s meta.RunStep) bool { return s.Mode != DryRun })
	if run.CaseID != "" || r.opts.Cases == nil || run.AlertID == "" || rehearsal {
		return
	}
	var rd runData
	title := "Playbook " + run.Playbook
	if json.Unmarshal(run.Data, &rd) == nil && rd.Alert != nil {
		title += ": " + rd.Alert.Title
	}
	c, err := r.opts.Cases.OpenCase(ctx, nil, title, "", "playbook/"+run.Playbook, []string{run.AlertID})
	if err != nil {
		r.log.Error("opening a case for a playbook run", "run", run.ID, "err", err)
		return
	}
	run.CaseID = c.ID
}

// note adds an action to the run's case timeline, if it has a case.
func (r *Runner) note(ctx context.Context, run *meta.Run, text, actor string) {
	if run.CaseID == "" || r.opts.Cases == nil {
		return
	}
	if actor == "vigil" {
		actor = "playbook/" + run.Playbook
	}
	if _, err := r.opts.Cases.AddToCase(ctx, nil, run.CaseID, "action", run.ID, text, actor); err != nil {
		r.log.Error("writing a playbook run in its case", "run", run.ID, "case", run.CaseID, "err", err)
	}
}

func (r *Runner) audit(ctx context.Context, run *meta.Run, s *meta.RunStep, kind, actor, msg string) {
	if r.opts.Audit == nil {
		return
	}
	rec := Record{Time: r.opts.Now().UTC(), Tenant: run.Tenant, Kind: kind, Run: run.ID, Playbook: run.Playbook, Alert: run.AlertID,
		Case: run.CaseID, Actor: actor, Error: msg}
	if s != nil {
		rec.Step, rec.Action, rec.Mode, rec.Inputs, rec.Outputs, rec.Attempts = s.Name, s.Action, s.Mode, s.Inputs, s.Outputs, s.Attempts
	}
	// Where the run acts, so that its records are found with the events
	// of that account and environment.
	var rd runData
	if json.Unmarshal(run.Data, &rd) == nil {
		switch {
		case rd.Event != nil:
			rec.Provider, rec.Account, rec.Environment = rd.Event.Cloud.Provider, rd.Event.Cloud.Account, rd.Event.Environment
		case rd.Alert != nil:
			rec.Account, rec.Environment = rd.Alert.Context["vigil.account"], rd.Alert.Context["vigil.environment"]
		}
	}
	if err := r.opts.Audit(ctx, rec); err != nil {
		r.metrics.audit.Inc()
		r.log.Error("appending a playbook record to the ledger", "run", run.ID, "kind", kind, "err", err)
	}
}

// formatInputs writes inputs as k=v, sorted, for people to read.
func formatInputs(in map[string]string) string {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := in[k]
		if len(v) > 200 {
			v = v[:200] + "…"
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, " ")
}
