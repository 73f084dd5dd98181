package playbook

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	Skipped  = "skipped"  // its if does not hold, or its act was done already
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
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant,omitempty"`
	// Provider, Account and Environment are where the run's event was.
	Provider    string            `json:"provider,omitempty"`
	Account     string            `json:"account,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Kind        string            `json:"kind"` // run.started, run.<status>, step.<status>, step.approved
	Run         string            `json:"run"`
	Playbook    string            `json:"playbook"`
	Alert       string            `json:"alert,omitempty"`
	Case        string            `json:"case,omitempty"`
	Step        string            `json:"step,omitempty"`
	Action      string            `json:"action,omitempty"`
	Mode        string            `json:"mode,omitempty"`
	Actor       string            `json:"actor"`
	Inputs      map[string]string `json:"inputs,omitempty"`
	Outputs     map[string]string `json:"outputs,omitempty"`
	Attempts    int               `json:"attempts,omitempty"`
	Error       string            `json:"error,omitempty"`
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
	// Stored is, for each ledger, the seq below which the store holds
	// every event of that ledger: one mark for one node's ledger, one
	// per partition on a scale-out, where a partition's seqs are a range
	// of their own. Events calls fn with the events a search matches
	// among the seqs from to to, inclusive, in every tenant. Playbooks
	// triggered by a search need both.
	Stored func() ([]uint64, error)
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
	// Idle, if set, is how long a running run goes without a change
	// before Resume takes it: on a scale-out every node carries runs, and
	// one left that long by its node is one whose node is gone. Zero
	// means every running run, which suits one node: at start, it
	// carries none.
	Idle time.Duration
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

// Resume carries on the runs that were running when vigil stopped (with
// Options.Idle, those idle that long). Runs waiting for approval go on
// waiting.
func (r *Runner) Resume(ctx context.Context) error {
	rs, err := r.opts.DB.Runs(ctx, meta.RunQuery{AllTenants: true, Status: []string{Running}, Limit: 10_000, Steps: true})
	if err != nil {
		return err
	}
	idleSince := r.opts.Now().Add(-r.opts.Idle)
	for i := range rs {
		run := &rs[i]
		if r.opts.Idle > 0 && run.Updated.After(idleSince) {
			continue
		}
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
	// The run may be saved as waiting a moment before the goroutine that
	// carried it there lets go of it: a person quick to approve waits
	// that moment, not for a step that is acting.
	for deadline := time.Now().Add(3 * time.Second); !r.claim(id); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: it is being carried on", ErrNotWaiting)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
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
