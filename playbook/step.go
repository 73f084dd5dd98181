package playbook

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/meta"
)

// execute carries a run on from its first step not ended, until it ends
// or a step waits for approval. approver approved the step that waited.
func (r *Runner) execute(ctx context.Context, run *meta.Run, p *Playbook, approver string) {
	var rd runData
	if err := json.Unmarshal(run.Data, &rd); err != nil {
		r.end(ctx, run, Failed, "reading the run's data: "+err.Error())
		return
	}
	data, err := NewData(rd.Alert, rd.Event)
	if err != nil {
		r.end(ctx, run, Failed, err.Error())
		return
	}
	var failed []string
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.Status != Pending && s.Status != Running {
			data.Steps[s.Name] = s.Outputs
			if s.Status == Failed {
				failed = append(failed, s.Name)
			}
			continue
		}
		if i >= len(p.Steps) || p.Steps[i].Name != s.Name || p.Steps[i].Action != s.Action {
			r.end(ctx, run, Failed, fmt.Sprintf("playbook %s changed since the run started: it has no step %s (%s) at %d", p.Name, s.Name, s.Action, i+1))
			return
		}
		var status string
		if s.Status == Running && Actions[s.Action].Repeats {
			// vigil stopped while the step acted: it may have, and would
			// act twice.
			status = r.fail(ctx, run, s, "vigil stopped during the step, which may have acted; not tried again, as it would act twice")
		} else {
			if s.Status == Running && s.Approver != "" {
				approver = s.Approver // approved before vigil stopped
			}
			status = r.step(ctx, run, &p.Steps[i], s, data, approver)
		}
		approver = "" // for this step only
		data.Steps[s.Name] = s.Outputs
		switch status {
		case Waiting:
			return
		case Failed:
			if p.Steps[i].OnError == "continue" {
				failed = append(failed, s.Name)
				continue
			}
			r.end(ctx, run, Failed, fmt.Sprintf("step %s failed: %s", s.Name, s.Error))
			return
		case Refused, Halted:
			r.end(ctx, run, status, fmt.Sprintf("step %s %s: %s", s.Name, status, s.Error))
			return
		}
	}
	msg := ""
	if len(failed) > 0 {
		msg = "steps that failed, and the run went on: " + strings.Join(failed, ", ")
	}
	r.end(ctx, run, Done, msg)
}

// step carries one step through, and returns its status.
func (r *Runner) step(ctx context.Context, run *meta.Run, ps *Step, s *meta.RunStep, data *Data, approver string) string {
	act := Actions[s.Action]
	if ok, err := ps.Applies(data); err != nil {
		return r.fail(ctx, run, s, err.Error())
	} else if !ok {
		s.Status, s.Error, s.Done = Skipped, "its if does not hold", r.opts.Now().UTC()
		r.stepEnded(ctx, run, s, "vigil")
		return Skipped
	}
	in, err := ps.Inputs(data)
	if err != nil {
		return r.fail(ctx, run, s, err.Error())
	}
	s.Inputs = in
	s.Key = actKey(s.Action, in)
	if why := r.offLimits(act, in); why != "" {
		s.Status, s.Error, s.Done = Refused, why, r.opts.Now().UTC()
		r.stepEnded(ctx, run, s, "vigil")
		return Refused
	}
	if s.Mode == DryRun {
		s.Status, s.Done, s.Outputs = DryRun, r.opts.Now().UTC(), placeholders(ps)
		r.stepEnded(ctx, run, s, "vigil")
		return DryRun
	}
	if _, on, err := r.Killed(ctx); on || err != nil {
		s.Status, s.Done, s.Error = Halted, r.opts.Now().UTC(), "the playbooks' kill switch is on"
		if err != nil {
			s.Error = "the kill switch cannot be read, so nothing acts: " + err.Error()
		}
		r.stepEnded(ctx, run, s, "vigil")
		return Halted
	}
	if !act.Internal {
		by, outs, ok, err := r.opts.DB.ActDone(ctx, s.Key, Done)
		if err != nil {
			return r.fail(ctx, run, s, err.Error())
		}
		if ok {
			s.Status, s.Outputs, s.Done = Skipped, outs, r.opts.Now().UTC()
			s.Error = "done already by run " + by
			r.stepEnded(ctx, run, s, "vigil")
			return Skipped
		}
	}
	if approver == "" && s.Mode == Approve {
		return r.wait(ctx, run, s, "the step waits for a person's approval")
	}
	if act.Destructive {
		why, err := r.reserve(ctx, approver != "")
		if err != nil {
			return r.fail(ctx, run, s, err.Error())
		}
		if why != "" {
			return r.wait(ctx, run, s, why)
		}
		defer func() {
			r.limitMu.Lock()
			r.acting--
			r.limitMu.Unlock()
		}()
	}
	return r.act(ctx, run, ps, s, act)
}

// reserve takes a place for a destructive step among those the rate
// limit allows in the last hour (counting those acting now), or says why
// it must wait for a person. A step a person approved always has one.
func (r *Runner) reserve(ctx context.Context, approved bool) (string, error) {
	r.limitMu.Lock()
	defer r.limitMu.Unlock()
	if !approved && r.opts.MaxPerHour > 0 {
		n, err := r.opts.DB.DestructiveSince(ctx, Done, r.opts.Now().Add(-time.Hour))
		if err != nil {
			return "", err
		}
		if n+r.acting >= r.opts.MaxPerHour {
			return fmt.Sprintf("%d containment actions in the last hour, the most allowed without approval", n+r.acting), nil
		}
	}
	r.acting++
	return "", nil
}

// placeholders are the outputs a step would give, named, for the steps
// after a dry run's.
func placeholders(s *Step) map[string]string {
	outs := map[string]string{}
	for _, o := range Actions[s.Action].Outputs {
		outs[o] = "<" + s.Name + "." + o + ">"
	}
	return outs
}

// offLimits says why a step may not act on its targets, or "".
func (r *Runner) offLimits(act Action, in map[string]string) string {
	for _, t := range act.Targets {
		v := in[t]
		if v == "" {
			continue
		}
		if pat := matchAny(r.opts.Deny, v, true); pat != "" {
			return fmt.Sprintf("%s %q is on the deny list (%s): playbooks never act on it", t, v, pat)
		}
		if act.Destructive && len(r.opts.Allow) > 0 && matchAny(r.opts.Allow, v, false) == "" {
			return fmt.Sprintf("%s %q is not on the allow list", t, v)
		}
	}
	return ""
}

// matchAny returns the first pattern that v matches, in any case: whole,
// or by name, the last part of an ARN or resource path
// (arn:aws:iam::1:user/ops/NAME, projects/p/serviceAccounts/NAME). A
// step's input often names a user where the list has its ARN, or the
// reverse; so for a deny list (loose) an ARN pattern's name matches a
// name too, erring on the side of not acting, while for an allow list
// only a pattern that is a bare name matches by name.
func matchAny(patterns []string, v string, loose bool) string {
	v = strings.ToLower(v)
	for _, p := range patterns {
		lp := strings.ToLower(p)
		if ok, _ := path.Match(lp, v); ok {
			return p
		}
		name := lastPart(v)
		if pn := lastPart(lp); pn == lp || loose {
			if ok, _ := path.Match(pn, name); ok {
				return p
			}
		}
	}
	return ""
}

func lastPart(s string) string {
	if i := strings.LastIndexAny(s, "/:"); i >= 0 && i < len(s)-1 {
		return s[i+1:]
	}
	return s
}

// actKey identifies an act: the action and its inputs.
func actKey(action string, in map[string]string) string {
	h := sha256.New()
	h.Write([]byte(action))
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s\x00%s", k, in[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (r *Runner) wait(ctx context.Context, run *meta.Run, s *meta.RunStep, why string) string {
	now := r.opts.Now().UTC()
	ttl := r.opts.Expires
	p := r.playbook(run.Playbook)
	if p != nil && p.Expires > 0 {
		ttl = p.Expires
	}
	s.Status, s.Expires, s.Error = Waiting, now.Add(ttl), why
	run.Status, run.Updated = Waiting, now
	r.ensureCase(ctx, run)
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		r.log.Error("recording a playbook run", "run", run.ID, "err", err)
	}
	r.metrics.steps.WithLabelValues(s.Action, Waiting).Inc()
	r.audit(ctx, run, s, "step.waiting", "vigil", "")
	r.note(ctx, run, fmt.Sprintf("playbook %s waits for approval of step %s (%s %s) until %s: %s; approve with: vigil approve %s",
		run.Playbook, s.Name, s.Action, formatInputs(s.Inputs), s.Expires.Format(time.RFC3339), why, run.ID), "vigil")
	if r.opts.Ask != nil && p != nil && len(p.Ask) > 0 {
		r.opts.Ask(Approval{Run: run, Step: s, Channels: p.Ask})
	}
	return Waiting
}

// act does the step, trying again where that is safe.
func (r *Runner) act(ctx context.Context, run *meta.Run, ps *Step, s *meta.RunStep, act Action) string {
	s.Status, s.Started, s.Error = Running, r.opts.Now().UTC(), ""
	// Updated too: Resume tells a run still carried on from one whose
	// node is gone by how long it has been idle.
	run.Status, run.Updated = Running, s.Started
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		r.log.Error("recording a playbook run", "run", run.ID, "err", err)
	}
	var errs []string
	for attempt := 0; ; attempt++ {
		s.Attempts++
		actx, cancel := context.WithTimeout(ctx, ps.Timeout)
		outs, err := r.call(actx, run, s)
		cancel()
		if err == nil {
			s.Status, s.Outputs, s.Done = Done, outs, r.opts.Now().UTC()
			if len(errs) > 0 {
				s.Error = "after: " + strings.Join(errs, "; ")
			}
			r.stepEnded(ctx, run, s, cmp.Or(s.Approver, "vigil"))
			return Done
		}
		if errors.Is(err, context.DeadlineExceeded) && actx.Err() != nil {
			err = fmt.Errorf("no answer within %s: %w", ps.Timeout, err)
		}
		kind := failure(err)
		errs = append(errs, fmt.Sprintf("attempt %d: %v", attempt+1, err))
		retry := kind == failThrottled || kind == failUnknown && !act.Repeats
		if !retry || attempt >= ps.Retries {
			why := ""
			switch {
			case kind == failUnknown && act.Repeats:
				why = " (not tried again: it may have acted, and would act twice)"
			case retry && attempt > 0:
				why = fmt.Sprintf(" (gave up after %d attempts)", attempt+1)
			case retry:
				why = " (the step allows no retries)"
			}
			return r.fail(ctx, run, s, strings.Join(errs, "; ")+why)
		}
		select {
		case <-time.After(r.opts.Backoff(attempt)):
		case <-ctx.Done():
			return r.fail(ctx, run, s, strings.Join(errs, "; "))
		}
	}
}

func (r *Runner) fail(ctx context.Context, run *meta.Run, s *meta.RunStep, msg string) string {
	s.Status, s.Error, s.Done = Failed, msg, r.opts.Now().UTC()
	r.ensureCase(ctx, run)
	r.stepEnded(ctx, run, s, "vigil")
	return Failed
}

// call does one attempt of a step.
func (r *Runner) call(ctx context.Context, run *meta.Run, s *meta.RunStep) (map[string]string, error) {
	in := s.Inputs
	switch s.Action {
	case "case.open":
		if run.CaseID != "" {
			return map[string]string{"case": run.CaseID, "existing": "true"}, nil
		}
		var alerts []string
		if run.AlertID != "" {
			alerts = []string{run.AlertID}
		}
		c, err := r.opts.Cases.OpenCase(ctx, nil, in["title"], in["owner"], "playbook/"+run.Playbook, alerts)
		if err != nil {
			return nil, err
		}
		run.CaseID = c.ID
		return map[string]string{"case": c.ID}, nil
	case "case.note":
		id := cmp.Or(in["case"], run.CaseID)
		if id == "" {
			return nil, errors.New("the run has no case to write in (open one with case.open first, or give the input case)")
		}
		_, err := r.opts.Cases.AddToCase(ctx, nil, id, "note", "", in["text"], "playbook/"+run.Playbook)
		return map[string]string{"case": id}, err
	}
	if r.opts.Builtins != nil {
		switch s.Action {
		case "notify":
			err := r.opts.Builtins.Notify(ctx, in["channel"], cmp.Or(in["title"], run.Playbook), in["text"], r.link(run), run)
			return map[string]string{"channel": in["channel"]}, err
		case "enrich", "evidence.export":
			from, to, err := window(in, r.opts.Now())
			if err != nil {
				return nil, err
			}
			if s.Action == "evidence.export" {
				name, n, err := r.opts.Builtins.Export(ctx, run.Tenant, in["query"], from, to)
				if err == nil && run.CaseID != "" {
					_, err = r.opts.Cases.AddToCase(ctx, nil, run.CaseID, "export", name, fmt.Sprintf("%d events: %s", n, in["query"]), "playbook/"+run.Playbook)
				}
				return map[string]string{"bundle": name, "events": fmt.Sprint(n)}, err
			}
			n, lines, err := r.opts.Builtins.Search(ctx, run.Tenant, in["query"], from, to, 20)
			if err != nil {
				return nil, err
			}
			if run.CaseID != "" {
				text := fmt.Sprintf("%s (%s to %s): %d events", in["query"], from.Format(time.RFC3339), to.Format(time.RFC3339), n)
				if len(lines) > 0 {
					text += "\n" + strings.Join(lines, "\n")
				}
				if _, err := r.opts.Cases.AddToCase(ctx, nil, run.CaseID, "note", "", text, "playbook/"+run.Playbook); err != nil {
					return nil, err
				}
			}
			return map[string]string{"count": fmt.Sprint(n)}, nil
		}
	}
	x := r.opts.Executors[s.Action]
	if x == nil {
		return nil, fmt.Errorf("no executor for %s is configured", s.Action)
	}
	return x.Run(ctx, s.Action, in)
}

// window reads a search's time range from a step's inputs: last (a
// duration before now, default 24h), or from and to (RFC 3339).
func window(in map[string]string, now time.Time) (from, to time.Time, err error) {
	to = now
	if in["to"] != "" {
		if to, err = time.Parse(time.RFC3339, in["to"]); err != nil {
			return from, to, fmt.Errorf("input to: %w", err)
		}
	}
	if in["from"] != "" {
		from, err = time.Parse(time.RFC3339, in["from"])
		if err != nil {
			err = fmt.Errorf("input from: %w", err)
		}
		return from, to, err
	}
	last := 24 * time.Hour
	if in["last"] != "" {
		if last, err = time.ParseDuration(in["last"]); err != nil || last <= 0 {
			return from, to, fmt.Errorf("input last: %q is not a positive duration", in["last"])
		}
	}
	return to.Add(-last), to, nil
}

func (r *Runner) link(run *meta.Run) string {
	if r.opts.Link == "" {
		return ""
	}
	return strings.TrimSuffix(r.opts.Link, "/") + "/playbook-runs/" + run.ID
}
