package playbook

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// The statuses of runs and steps. A run is running, waiting (a step
// waits for approval), or has ended: done, or failed, refused, rejected,
// expired, halted as its step did.
const (
	Pending  = "pending"
	Running  = "running"
	Waiting  = "waiting"
	Done     = "done"
	Failed   = "failed"
	Skipped  = "skipped"  // the act was done already, by this run or another
	Refused  = "refused"  // a target is on the deny list, or off the allow list
	Rejected = "rejected" // a person said no
	Expired  = "expired"  // no one approved in time
	Halted   = "halted"   // the kill switch is on
	// DryRun (a mode) is also the status of a step that was not done.
)

// An Executor carries out actions outside vigil: a cloud's API, a web
// hook. Run does one action with its inputs and returns its outputs.
type Executor interface {
	Run(ctx context.Context, action string, in map[string]string) (map[string]string, error)
}

// Cases are where runs report: the case of their alert.
type Cases interface {
	OpenCase(ctx context.Context, tenants []string, title, owner, actor string, alertIDs []string) (meta.Case, error)
	AddToCase(ctx context.Context, tenants []string, id, kind, ref, text, actor string) (meta.Case, error)
}

// A Record is one thing a run did, appended to the ledger so that
// response actions are as tamper-evident as the events that caused them.
type Record struct {
	Time     time.Time         `json:"time"`
	Tenant   string            `json:"tenant,omitempty"`
	Kind     string            `json:"kind"` // run.started, run.<status>, step.<status>, step.approved
	Run      string            `json:"run"`
	Playbook string            `json:"playbook"`
	Alert    string            `json:"alert,omitempty"`
	Case     string            `json:"case,omitempty"`
	Step     string            `json:"step,omitempty"`
	Action   string            `json:"action,omitempty"`
	Mode     string            `json:"mode,omitempty"`
	Actor    string            `json:"actor"`
	Inputs   map[string]string `json:"inputs,omitempty"`
	Outputs  map[string]string `json:"outputs,omitempty"`
	Attempts int               `json:"attempts,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// An Approval is a request for a person to approve a waiting step, sent
// to the playbook's approval channels.
type Approval struct {
	Run      *meta.Run
	Step     *meta.RunStep
	Channels []string
}

// Builtins are vigil's own actions, which the runner's caller provides:
// notifications, searches and evidence bundles.
type Builtins interface {
	// Notify sends a message to a notification channel.
	Notify(ctx context.Context, channel, title, text, link string, run *meta.Run) error
	// Search runs a search over the tenant's events ("" for all) and
	// returns how many matched and a few lines of them.
	Search(ctx context.Context, tenant, query string, from, to time.Time, limit int) (int, []string, error)
	// Export writes an evidence bundle of what the search matches, and
	// returns its name and how many events it holds.
	Export(ctx context.Context, tenant, query string, from, to time.Time) (string, int, error)
}

// Options configure a Runner.
type Options struct {
	DB *meta.DB
	// Executors carry out the actions outside vigil, by action name.
	Executors map[string]Executor
	Builtins  Builtins
	Cases     Cases
	// Event reads the event of a tenant at a ledger index, for a run a
	// person starts on an alert.
	Event func(ctx context.Context, tenant string, seq uint64) (*event.Event, error)
	// Stored is the ledger index below which the store holds every
	// event. Events calls fn with the events a search matches among the
	// seqs from to to, inclusive, in every tenant. Playbooks triggered
	// by a search need both.
	Stored func() uint64
	Events func(ctx context.Context, q *query.Query, from, to uint64, fn func(*event.Event) error) error
	// Audit appends a record to the ledger; Ask requests an approval.
	Audit func(context.Context, Record) error
	Ask   func(Approval)
	// Deny are patterns (path.Match, any case) of principals, keys,
	// instances no step may act on: break-glass accounts. Allow, if set,
	// are the only ones destructive steps may act on.
	Deny, Allow []string
	// MaxPerHour is how many destructive steps may act in an hour
	// without a person approving each (default 10; negative: no limit).
	MaxPerHour int
	// Expires is how long an approval is waited for (default 4h).
	Expires time.Duration
	// Backoff is the pause before a step's next attempt (default 1s,
	// doubling, up to 30s).
	Backoff func(attempt int) time.Duration
	// Link is the console's address, for links to runs.
	Link       string
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// KillSwitch is the setting that stops every playbook from acting.
const KillSwitch = "playbooks.kill_switch"

// A Runner runs playbooks: on the alerts that trigger them, and when a
// person starts one or approves a waiting step. Its methods are safe for
// concurrent use.
type Runner struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu        sync.Mutex
	playbooks []*Playbook
	// busy are the runs being carried on, which no one else may take.
	busy map[string]bool
	wg   sync.WaitGroup
	// slots bound the runs acting at once: a burst of alerts queues
	// rather than opening a connection to a cloud API per alert.
	slots chan struct{}
	// acting counts the destructive steps acting now, which the rate
	// limit counts with those done.
	limitMu sync.Mutex
	acting  int
}

// MaxConcurrent is how many runs act at once.
const MaxConcurrent = 8

type metrics struct {
	runs    *prometheus.CounterVec
	steps   *prometheus.CounterVec
	audit   prometheus.Counter
	dropped prometheus.Counter
}

// NewRunner returns a Runner.
func NewRunner(opts Options) *Runner {
	if opts.MaxPerHour == 0 {
		opts.MaxPerHour = 10
	}
	if opts.Expires <= 0 {
		opts.Expires = 4 * time.Hour
	}
	if opts.Backoff == nil {
		opts.Backoff = func(n int) time.Duration { return min(time.Second<<n, 30*time.Second) }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		runs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_playbook_runs_total", Help: "Playbook runs ended, by status."}, []string{"status"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_playbook_steps_total", Help: "Playbook steps ended or paused, by action and status."}, []string{"action", "status"}),
		audit: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_playbook_audit_failures_total", Help: "Run records the ledger did not take (each is logged)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_playbook_search_matches_not_run_total",
			Help: "Events a search-triggered playbook matched past the runs it may start at once, which it did not run on."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.runs, m.steps, m.audit, m.dropped)
	}
	return &Runner{opts: opts, log: opts.Logger, metrics: m, busy: map[string]bool{}, slots: make(chan struct{}, MaxConcurrent)}
}

// SetPlaybooks replaces the playbooks alerts trigger and people start.
func (r *Runner) SetPlaybooks(ps []*Playbook) {
	r.mu.Lock()
	r.playbooks = ps
	r.mu.Unlock()
}

// Playbooks returns the playbooks.
func (r *Runner) Playbooks() []*Playbook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.playbooks
}

func (r *Runner) playbook(name string) *Playbook {
	for _, p := range r.Playbooks() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Wait waits for the runs being carried on to stop: to end, or to wait
// for a person.
func (r *Runner) Wait() { r.wg.Wait() }

// runData is what a run's inputs are written from, as kept with it.
type runData struct {
	Alert *meta.Alert  `json:"alert,omitempty"`
	Event *event.Event `json:"event,omitempty"`
}

// Opened starts the runs of the playbooks the new alerts trigger, each
// with its alert's first event (nil when unknown), in the background.
func (r *Runner) Opened(as []meta.Alert, events []*event.Event) {
	type start struct {
		p  *Playbook
		a  *meta.Alert
		ev *event.Event
	}
	var starts []start
	for i := range as {
		a := &as[i]
		var ev *event.Event
		if i < len(events) {
			ev = events[i]
		}
		for _, p := range r.Playbooks() {
			if p.Matches(a, ev) {
				starts = append(starts, start{p, a, ev})
			}
		}
	}
	if len(starts) == 0 {
		return
	}
	// Alerts open on the detection path: recording the runs (in the
	// database and the ledger, which the same pipeline feeds) is done
	// beside it, never in its way.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for _, s := range starts {
			run, err := r.newRun(context.Background(), s.p, s.a, s.ev, "alert")
			if err != nil {
				r.log.Error("starting a playbook", "playbook", s.p.Name, "alert", s.a.ID, "err", err)
				continue
			}
			r.claim(run.ID)
			r.carryOn(run, s.p, "")
		}
	}()
}

// Start starts a playbook by name for an alert (nil for none) and its
// event, on a person's (actor's) word, and returns the run as it is when
// it starts; it goes on in the background. A person may start a manual
// playbook, or any other.
func (r *Runner) Start(ctx context.Context, name string, a *meta.Alert, ev *event.Event, actor string) (*meta.Run, error) {
	p := r.playbook(name)
	if p == nil {
		return nil, fmt.Errorf("playbook: no playbook %q", name)
	}
	if !p.conditionsHold(a, ev) {
		return nil, fmt.Errorf("playbook %s: alert %s does not meet its conditions", name, a.ID)
	}
	run, err := r.newRun(ctx, p, a, ev, actor)
	if err != nil {
		return nil, err
	}
	r.claim(run.ID)
	r.carryOn(run, p, "")
	return run, nil
}

// StartFor starts a playbook by name on an alert, with the alert's first
// event, on a person's (actor's) word.
func (r *Runner) StartFor(ctx context.Context, name string, a *meta.Alert, actor string) (*meta.Run, error) {
	var ev *event.Event
	if len(a.Seqs) > 0 && r.opts.Event != nil {
		var err error
		if ev, err = r.opts.Event(ctx, a.Tenant, a.Seqs[0]); err != nil {
			return nil, fmt.Errorf("playbook %s: reading the alert's event: %w", name, err)
		}
	}
	return r.Start(ctx, name, a, ev, actor)
}

func (r *Runner) newRun(ctx context.Context, p *Playbook, a *meta.Alert, ev *event.Event, actor string) (*meta.Run, error) {
	data, err := json.Marshal(runData{Alert: a, Event: ev})
	if err != nil {
		return nil, fmt.Errorf("playbook %s: keeping its data: %w", p.Name, err)
	}
	now := r.opts.Now().UTC()
	run := &meta.Run{ID: newRunID(now), Playbook: p.Name, Status: Running, Actor: actor, Data: data, Created: now, Updated: now}
	if a != nil {
		run.Tenant, run.AlertID = a.Tenant, a.ID
		if run.CaseID, err = r.opts.DB.CaseOfAlert(ctx, a.ID); err != nil {
			return nil, err
		}
	} else if ev != nil {
		run.Tenant = ev.Tenant
	}
	for i, s := range p.Steps {
		act := Actions[s.Action]
		run.Steps = append(run.Steps, meta.RunStep{Index: i, Name: s.Name, Action: s.Action, Mode: s.Mode, Destructive: act.Destructive, Status: Pending})
	}
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		return nil, err
	}
	r.audit(ctx, run, nil, "run.started", actor, "")
	return run, nil
}

func newRunID(t time.Time) string {
	var b [5]byte
	rand.Read(b[:])
	return "run-" + t.Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// carryOn carries a run claimed on in the background, from its first
// step not yet ended, and releases it; approver, if set, approved the
// step that waited.
func (r *Runner) carryOn(run *meta.Run, p *Playbook, approver string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.release(run.ID)
		r.slots <- struct{}{}
		defer func() { <-r.slots }()
		r.execute(context.Background(), run, p, approver)
	}()
}

// claim takes a run for this goroutine, unless another has it: a run is
// carried on, approved or expired by one at a time.
func (r *Runner) claim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[id] {
		return false
	}
	r.busy[id] = true
	return true
}

func (r *Runner) release(id string) {
	r.mu.Lock()
	delete(r.busy, id)
	r.mu.Unlock()
}

// Resume carries on the runs that were running when vigil stopped. Runs
// waiting for approval go on waiting.
func (r *Runner) Resume(ctx context.Context) error {
	rs, err := r.opts.DB.Runs(ctx, meta.RunQuery{AllTenants: true, Status: []string{Running}, Limit: 10_000, Steps: true})
	if err != nil {
		return err
	}
	for i := range rs {
		run := &rs[i]
		p := r.playbook(run.Playbook)
		if p == nil {
			r.end(ctx, run, Failed, fmt.Sprintf("playbook %q is no longer loaded", run.Playbook))
			continue
		}
		if !r.claim(run.ID) {
			continue
		}
		r.log.Info("resuming a playbook run", "run", run.ID, "playbook", run.Playbook)
		r.carryOn(run, p, "")
	}
	return nil
}

// Approve approves the step a run waits on, for a person (actor) who
// sees tenants (nil: every tenant), and carries the run on. It returns
// the run as approved.
func (r *Runner) Approve(ctx context.Context, tenants []string, id, actor string) (*meta.Run, error) {
	return r.decide(ctx, tenants, id, actor, "")
}

// Reject says no to the step a run waits on, which ends the run.
func (r *Runner) Reject(ctx context.Context, tenants []string, id, actor, reason string) (*meta.Run, error) {
	return r.decide(ctx, tenants, id, actor, cmp.Or(reason, "rejected"))
}

// ErrNotWaiting is returned for an approval of a run that waits for none.
var ErrNotWaiting = errors.New("playbook: the run is not waiting for approval")

func (r *Runner) decide(ctx context.Context, tenants []string, id, actor, reject string) (*meta.Run, error) {
	if !r.claim(id) {
		return nil, fmt.Errorf("%w: it is being carried on", ErrNotWaiting)
	}
	handed := false // to carryOn, which releases it
	defer func() {
		if !handed {
			r.release(id)
		}
	}()
	run, err := r.load(ctx, tenants, id)
	if err != nil {
		return nil, err
	}
	i := waitingStep(run)
	if run.Status != Waiting || i < 0 {
		return run, fmt.Errorf("%w (it is %s)", ErrNotWaiting, run.Status)
	}
	s := &run.Steps[i]
	now := r.opts.Now().UTC()
	if now.After(s.Expires) {
		r.expire(ctx, run, s)
		return run, fmt.Errorf("%w: the approval expired at %s", ErrNotWaiting, s.Expires.Format(time.RFC3339))
	}
	if reject != "" {
		s.Status, s.Approver, s.Error, s.Done = Rejected, actor, reject, now
		r.stepEnded(ctx, run, s, actor)
		r.end(ctx, run, Rejected, fmt.Sprintf("step %s rejected by %s: %s", s.Name, actor, reject))
		return run, nil
	}
	p := r.playbook(run.Playbook)
	if p == nil {
		return run, fmt.Errorf("playbook: the run's playbook %q is no longer loaded", run.Playbook)
	}
	s.Approver = actor
	s.Status = Pending
	run.Status = Running
	run.Updated = now
	if err := r.opts.DB.SaveRun(ctx, run); err != nil {
		return run, err
	}
	r.audit(ctx, run, s, "step.approved", actor, "")
	r.note(ctx, run, fmt.Sprintf("%s approved step %s (%s) of playbook %s", actor, s.Name, s.Action, run.Playbook), actor)
	handed = true
	r.carryOn(run, p, actor)
	return run, nil
}

func waitingStep(run *meta.Run) int {
	return slices.IndexFunc(run.Steps, func(s meta.RunStep) bool { return s.Status == Waiting })
}

// MaxSearchRuns is how many runs one search-triggered playbook starts in a
// SearchTick; the matches past it are counted and logged, not run.
const MaxSearchRuns = 100

// searchPosition is the setting that keeps where a search-triggered
// playbook has read the ledger to.
func searchPosition(name string) string { return "playbooks.search." + name }

// SearchTick starts the runs of the playbooks a search triggers: one per
// event the search matches among those stored since the last tick. A
// playbook's first tick starts it at the store's end: it acts on new
// events, not on history. Where each has read to is kept in the
// database, across restarts.
func (r *Runner) SearchTick(ctx context.Context) error {
	if r.opts.Stored == nil || r.opts.Events == nil {
		return nil
	}
	mark := r.opts.Stored()
	var errs []error
	for _, p := range r.Playbooks() {
		if p.Trigger.search == nil {
			continue
		}
		set, err := r.opts.DB.Setting(ctx, searchPosition(p.Name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		from, err := strconv.ParseUint(set.Value, 10, 64)
		if err != nil || set.Value == "" {
			from = mark // a new playbook: from now on
		}
		if from < mark {
			started, dropped := 0, 0
			err = r.opts.Events(ctx, p.Trigger.search, from, mark-1, func(ev *event.Event) error {
				if !p.conditionsHold(nil, ev) {
					return nil
				}
				if started >= MaxSearchRuns {
					dropped++
					return nil
				}
				started++
				run, err := r.newRun(ctx, p, nil, ev, "search")
				if err != nil {
					return err
				}
				r.claim(run.ID)
				r.carryOn(run, p, "")
				return nil
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("playbook %s: search: %w", p.Name, err))
				continue
			}
			if dropped > 0 {
				r.metrics.dropped.Add(float64(dropped))
				r.log.Warn("a search-triggered playbook matched more events than it may run on at once; the rest are not run",
					"playbook", p.Name, "started", started, "not_run", dropped)
			}
		}
		if err := r.opts.DB.SetSetting(ctx, meta.Setting{Name: searchPosition(p.Name), Value: strconv.FormatUint(mark, 10), Actor: "vigil", Updated: r.opts.Now().UTC()}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Runs returns the runs q selects.
func (r *Runner) Runs(ctx context.Context, q meta.RunQuery) ([]meta.Run, error) {
	return r.opts.DB.Runs(ctx, q)
}

// Run returns a run with its steps, if tenants (nil: every tenant) see it.
func (r *Runner) Run(ctx context.Context, tenants []string, id string) (*meta.Run, error) {
	return r.load(ctx, tenants, id)
}

func (r *Runner) load(ctx context.Context, tenants []string, id string) (*meta.Run, error) {
	rs, err := r.opts.DB.Runs(ctx, meta.RunQuery{Tenants: tenants, AllTenants: tenants == nil, ID: id, Limit: 1, Steps: true})
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, meta.ErrNotFound
	}
	return &rs[0], nil
}

// Kill turns the kill switch on or off: while it is on, no step acts
// (dry runs go on), and runs that reach an act end halted.
func (r *Runner) Kill(ctx context.Context, on bool, actor string) error {
	v := "off"
	if on {
		v = "on"
	}
	if err := r.opts.DB.SetSetting(ctx, meta.Setting{Name: KillSwitch, Value: v, Actor: actor, Updated: r.opts.Now().UTC()}); err != nil {
		return err
	}
	r.log.Warn("playbook kill switch", "state", v, "by", actor)
	return nil
}

// Killed returns the kill switch's setting, and whether it is on.
func (r *Runner) Killed(ctx context.Context) (meta.Setting, bool, error) {
	s, err := r.opts.DB.Setting(ctx, KillSwitch)
	return s, s.Value == "on", err
}

// Tick ends the runs whose approvals expired.
func (r *Runner) Tick(ctx context.Context) error {
	rs, err := r.opts.DB.Runs(ctx, meta.RunQuery{AllTenants: true, Status: []string{Waiting}, Limit: 10_000, Steps: true})
	if err != nil {
		return err
	}
	now := r.opts.Now()
	for i := range rs {
		run := &rs[i]
		if j := waitingStep(run); j < 0 || !now.After(run.Steps[j].Expires) || !r.claim(run.ID) {
			continue
		}
		// Read again, claimed: a person may have decided since.
		if cur, err := r.load(ctx, nil, run.ID); err == nil && cur.Status == Waiting {
			if j := waitingStep(cur); j >= 0 && now.After(cur.Steps[j].Expires) {
				r.expire(ctx, cur, &cur.Steps[j])
			}
		}
		r.release(run.ID)
	}
	return nil
}

func (r *Runner) expire(ctx context.Context, run *meta.Run, s *meta.RunStep) {
	s.Status, s.Done, s.Error = Expired, r.opts.Now().UTC(), "no one approved it by "+s.Expires.Format(time.RFC3339)
	r.stepEnded(ctx, run, s, "vigil")
	r.end(ctx, run, Expired, fmt.Sprintf("step %s: %s", s.Name, s.Error))
}

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
	run.Status = Running
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
