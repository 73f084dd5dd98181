package playbook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// fakeExec stands in for the clouds' executors: it records each call and
// answers with the errors queued for its action, then success.
type fakeExec struct {
	mu    sync.Mutex
	calls []string // action k=v …
	fail  map[string][]error
	block bool // wait for the context to end
}

func (f *fakeExec) Run(ctx context.Context, action string, in map[string]string) (map[string]string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, action+" "+formatInputs(in))
	var err error
	if q := f.fail[action]; len(q) > 0 {
		err, f.fail[action] = q[0], q[1:]
	}
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"acted": action}, nil
}

func (f *fakeExec) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeBuiltins records notifications.
type fakeBuiltins struct {
	mu   sync.Mutex
	sent []string
}

func (b *fakeBuiltins) Notify(ctx context.Context, channel, title, text, link string, run *meta.Run) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, channel+": "+text)
	return nil
}

func (b *fakeBuiltins) Search(ctx context.Context, tenant, query string, from, to time.Time, limit int) (int, []string, error) {
	return 3, []string{"action=CreateAccessKey"}, nil
}

func (b *fakeBuiltins) Export(ctx context.Context, tenant, query string, from, to time.Time) (string, int, error) {
	return "bundle.zip", 3, nil
}

type harness struct {
	t       *testing.T
	db      *meta.DB
	alerts  *alert.Manager
	exec    *fakeExec
	runner  *Runner
	ev      *event.Event
	mu      sync.Mutex
	now     time.Time
	records []Record
	asked   []Approval
}

func newHarness(t *testing.T, opts Options, files ...string) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	am, err := alert.NewManager(ctx, db, alert.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, alerts: am, exec: &fakeExec{fail: map[string][]error{}}, ev: createKeyEvent(t),
		now: time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)}
	opts.DB, opts.Cases, opts.Builtins = db, am, &fakeBuiltins{}
	if opts.Executors == nil {
		opts.Executors = map[string]Executor{}
		for name, a := range Actions {
			if !a.Internal {
				opts.Executors[name] = h.exec
			}
		}
	}
	opts.Audit = func(_ context.Context, r Record) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.records = append(h.records, r)
		return nil
	}
	opts.Ask = func(a Approval) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.asked = append(h.asked, a)
	}
	opts.Now = func() time.Time {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.now
	}
	if opts.Backoff == nil {
		opts.Backoff = func(int) time.Duration { return 0 }
	}
	h.runner = NewRunner(opts)
	var ps []*Playbook
	for _, f := range files {
		p, err := Parse(fmt.Sprintf("playbook%d.yml", len(ps)+1), []byte(f))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	h.runner.SetPlaybooks(ps)
	return h
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// alert records an alert of the backdoor-key rule for the event, as the
// alert manager would, and hands it to the runner.
func (h *harness) alert(id string) *meta.Run {
	h.t.Helper()
	a := meta.Alert{ID: id, Tenant: "acme", RuleID: "1bc4d2e3-23a1-40b8-9e99-6406cc022632", Title: "Access key created for another user",
		Severity: "medium", Key: id, Status: "open", Count: 1, FirstSeen: h.ev.Time, LastSeen: h.ev.Time, Created: h.now, Updated: h.now,
		Group: map[string]string{"vigil.actor": h.ev.Actor.Name}, Context: map[string]string{"vigil.environment": "prod"}}
	if err := h.db.SaveAlerts(context.Background(), []meta.Alert{a}); err != nil {
		h.t.Fatal(err)
	}
	h.runner.Opened([]meta.Alert{a}, []*event.Event{h.ev})
	h.runner.Wait()
	rs, err := h.runner.Runs(context.Background(), meta.RunQuery{AllTenants: true, AlertID: id, Steps: true})
	if err != nil || len(rs) != 1 {
		h.t.Fatalf("runs of alert %s: %v %v", id, rs, err)
	}
	return &rs[0]
}

func (h *harness) run(id string) *meta.Run {
	h.t.Helper()
	r, err := h.runner.Run(context.Background(), nil, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// timeline returns the texts of a case's entries.
func (h *harness) timeline(caseID string) string {
	h.t.Helper()
	_, es, err := h.alerts.Case(context.Background(), nil, caseID)
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s %s: %s\n", e.Kind, e.Actor, e.Text)
	}
	return b.String()
}

func (h *harness) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, strings.TrimSpace(r.Kind+" "+r.Step))
	}
	return out
}

const backdoorKey = `
name: deactivate
mode: approve
approval: {channels: [oncall], expires: 1h}
trigger: {rules: [1bc4d2e3-23a1-40b8-9e99-6406cc022632]}
steps:
  - name: tell
    action: notify
    mode: auto
    with: {channel: oncall, text: "{{ .Event.Actor.Name }} created a key for {{ .Event.Raw.requestParameters.userName }}"}
  - name: deactivate
    action: aws.iam.deactivate_access_key
    retries: 2
    with:
      user: "{{ .Event.Raw.requestParameters.userName }}"
      access_key_id: "{{ .Event.Raw.responseElements.accessKey.accessKeyId }}"
      account: "{{ .Event.Cloud.Account }}"
`

// TestApproval: a destructive step waits, with a case opened and the
// approvers asked; approved, it acts once with the event's key; a second
// run for the same key does not act again; every change is recorded.
func TestApproval(t *testing.T) {
	h := newHarness(t, Options{}, backdoorKey)
	run := h.alert("a1")
	if run.Status != Waiting || run.Steps[0].Status != Done || run.Steps[1].Status != Waiting {
		t.Fatalf("run %s, steps %s", run.Status, stepsOf(run))
	}
	if h.exec.count() != 0 {
		t.Fatalf("acted before approval: %v", h.exec.calls)
	}
	if len(h.asked) != 1 || h.asked[0].Channels[0] != "oncall" || h.asked[0].Step.Name != "deactivate" {
		t.Errorf("asked %+v", h.asked)
	}
	if run.CaseID == "" || !strings.Contains(h.timeline(run.CaseID), "waits for approval of step deactivate") {
		t.Fatalf("case %q: %s", run.CaseID, h.timeline(run.CaseID))
	}
	if _, err := h.runner.Approve(context.Background(), []string{"other"}, run.ID, "eve"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("another tenant's approval: %v", err)
	}
	if _, err := h.runner.Approve(context.Background(), []string{"acme"}, run.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	h.runner.Wait()
	run = h.run(run.ID)
	want := "aws.iam.deactivate_access_key access_key_id=AKIAL80DWDVKKM0UXEER account=" + h.ev.Cloud.Account + " user=stratus-red-team-backdoor-u-user"
	if run.Status != Done || len(h.exec.calls) != 1 || h.exec.calls[0] != want {
		t.Fatalf("run %s %s; calls %q, want %q", run.Status, run.Error, h.exec.calls, want)
	}
	if s := run.Steps[1]; s.Approver != "alice" || s.Attempts != 1 || s.Outputs["acted"] == "" {
		t.Errorf("step %+v", s)
	}
	if _, err := h.runner.Approve(context.Background(), nil, run.ID, "alice"); !errors.Is(err, ErrNotWaiting) {
		t.Errorf("approving a run done: %v", err)
	}
	wantKinds := []string{"run.started", "step.done tell", "step.waiting deactivate", "step.approved deactivate", "step.done deactivate", "run.done"}
	if got := h.kinds(); !slices.Equal(got, wantKinds) {
		t.Errorf("records %q, want %q", got, wantKinds)
	}
	tl := h.timeline(run.CaseID)
	for _, want := range []string{"alice approved step deactivate", "deactivate (aws.iam.deactivate_access_key", ": done", "ended done"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}

	// The same key again: it is not deactivated twice, nor is anyone
	// asked to approve what is done.
	again := h.alert("a2")
	if again.Status != Done || again.Steps[1].Status != Skipped || !strings.Contains(again.Steps[1].Error, run.ID) || h.exec.count() != 1 {
		t.Errorf("second run: %s (%s), %d calls", stepsOf(again), again.Steps[1].Error, h.exec.count())
	}
}

func stepsOf(r *meta.Run) string {
	var parts []string
	for _, s := range r.Steps {
		parts = append(parts, s.Name+":"+s.Status)
	}
	return strings.Join(parts, " ")
}

// TestRejectAndExpire: a step said no to, or not approved in time, never
// acts, and its run ends so.
func TestRejectAndExpire(t *testing.T) {
	h := newHarness(t, Options{}, backdoorKey)
	run := h.alert("a1")
	if _, err := h.runner.Reject(context.Background(), nil, run.ID, "bob", "it is our deploy key"); err != nil {
		t.Fatal(err)
	}
	if r := h.run(run.ID); r.Status != Rejected || r.Steps[1].Status != Rejected || r.Steps[1].Approver != "bob" {
		t.Errorf("rejected: %s %s", r.Status, stepsOf(r))
	}
	late := h.alert("a2")
	h.advance(61 * time.Minute) // the playbook's approvals expire in an hour
	if _, err := h.runner.Approve(context.Background(), nil, late.ID, "alice"); !errors.Is(err, ErrNotWaiting) {
		t.Errorf("a late approval: %v", err)
	}
	if r := h.run(late.ID); r.Status != Expired || r.Steps[1].Status != Expired {
		t.Errorf("expired: %s %s", r.Status, stepsOf(r))
	}
	third := h.alert("a3")
	h.advance(2 * time.Hour)
	if err := h.runner.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := h.run(third.ID); r.Status != Expired {
		t.Errorf("after a tick: %s", r.Status)
	}
	if h.exec.count() != 0 {
		t.Errorf("acted: %v", h.exec.calls)
	}
}

const autoDeactivate = `
name: auto-deactivate
mode: auto
trigger: {rules: [1bc4d2e3-23a1-40b8-9e99-6406cc022632]}
steps:
  - name: deactivate
    action: aws.iam.deactivate_access_key
    mode: auto
    retries: 2
    timeout: 50ms
    with:
      user: "{{ .Event.Raw.requestParameters.userName }}"
      access_key_id: "{{ .Event.Raw.responseElements.accessKey.accessKeyId }}"
`

// TestDenyList: a break-glass principal on the deny list is never acted
// on, even by an automatic playbook when a rule fires on it.
func TestDenyList(t *testing.T) {
	for _, deny := range []string{"stratus-red-team-backdoor-u-*", "arn:aws:iam::*:user/stratus-*", "AKIAL80DWDVKKM0UXEER"} {
		h := newHarness(t, Options{Deny: []string{"break-glass", deny}}, autoDeactivate)
		run := h.alert("a1")
		if run.Status != Refused || run.Steps[0].Status != Refused || !strings.Contains(run.Steps[0].Error, "deny list") {
			t.Errorf("deny %s: run %s %s: %s", deny, run.Status, stepsOf(run), run.Steps[0].Error)
		}
		if h.exec.count() != 0 {
			t.Errorf("deny %s: acted %v", deny, h.exec.calls)
		}
		if run.CaseID == "" || !strings.Contains(h.timeline(run.CaseID), "refused") {
			t.Errorf("deny %s: the refusal is not in a case", deny)
		}
	}
	h := newHarness(t, Options{Allow: []string{"sandbox-*"}}, autoDeactivate)
	if run := h.alert("a1"); run.Status != Refused || h.exec.count() != 0 {
		t.Errorf("off the allow list: %s", run.Status)
	}
}

// TestFailures: throttling is retried; a refusal (403) is not; a timeout
// is retried for an idempotent action only; each ends in a clear state,
// recorded in the case.
func TestFailures(t *testing.T) {
	throttled := &APIError{Service: "aws", Status: 400, Code: "Throttling", Message: "Rate exceeded"}
	denied := &APIError{Service: "aws", Status: 403, Code: "AccessDenied", Message: "not authorized to perform iam:UpdateAccessKey"}

	h := newHarness(t, Options{}, autoDeactivate)
	h.exec.fail["aws.iam.deactivate_access_key"] = []error{throttled, throttled}
	run := h.alert("a1")
	if run.Status != Done || run.Steps[0].Attempts != 3 || !strings.Contains(run.Steps[0].Error, "Throttling") {
		t.Errorf("throttled twice: %s, %+v", run.Status, run.Steps[0])
	}

	h = newHarness(t, Options{}, autoDeactivate)
	h.exec.fail["aws.iam.deactivate_access_key"] = []error{denied}
	run = h.alert("a1")
	if run.Status != Failed || run.Steps[0].Attempts != 1 || !strings.Contains(run.Error, "AccessDenied") {
		t.Errorf("denied: %s %q, %+v", run.Status, run.Error, run.Steps[0])
	}
	if tl := h.timeline(run.CaseID); !strings.Contains(tl, "AccessDenied") || !strings.Contains(tl, "ended failed") {
		t.Errorf("the failure is not in the case:\n%s", tl)
	}

	h = newHarness(t, Options{}, autoDeactivate)
	h.exec.block = true
	run = h.alert("a1")
	if run.Status != Failed || run.Steps[0].Attempts != 3 || !strings.Contains(run.Steps[0].Error, "no answer within 50ms") {
		t.Errorf("timing out: %s, %+v", run.Status, run.Steps[0])
	}

	snap := strings.NewReplacer("aws.iam.deactivate_access_key", "aws.ec2.snapshot", "user:", "instance_id:", "access_key_id:", "description:").Replace(autoDeactivate)
	h = newHarness(t, Options{}, snap)
	h.exec.block = true
	run = h.alert("a1")
	if run.Status != Failed || run.Steps[0].Attempts != 1 || !strings.Contains(run.Steps[0].Error, "would act twice") {
		t.Errorf("a snapshot timing out: %s, %+v", run.Status, run.Steps[0])
	}
}

// TestKillSwitchAndRateLimit: with the kill switch on nothing acts; past
// the hourly limit, automatic containment waits for a person.
func TestKillSwitchAndRateLimit(t *testing.T) {
	h := newHarness(t, Options{MaxPerHour: 1}, autoDeactivate)
	ctx := context.Background()
	if err := h.runner.Kill(ctx, true, "alice"); err != nil {
		t.Fatal(err)
	}
	if run := h.alert("a1"); run.Status != Halted || h.exec.count() != 0 {
		t.Errorf("killed: %s, %d calls", run.Status, h.exec.count())
	}
	if err := h.runner.Kill(ctx, false, "alice"); err != nil {
		t.Fatal(err)
	}
	if run := h.alert("a2"); run.Status != Done || h.exec.count() != 1 {
		t.Errorf("first: %s, %d calls", run.Status, h.exec.count())
	}
	// Another key: the limit of one an hour is reached.
	other := strings.Replace(autoDeactivate, `"{{ .Event.Raw.requestParameters.userName }}"`, "bob", 1)
	h.runner.SetPlaybooks(mustParse(t, other))
	run := h.alert("a3")
	if run.Status != Waiting || !strings.Contains(run.Steps[0].Error, "containment actions in the last hour") || h.exec.count() != 1 {
		t.Errorf("past the limit: %s %s, %d calls", run.Status, run.Steps[0].Error, h.exec.count())
	}
}

func mustParse(t *testing.T, files ...string) []*Playbook {
	t.Helper()
	var ps []*Playbook
	for _, f := range files {
		p, err := Parse("p.yml", []byte(f))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// noNetwork fails the test on any HTTP request made through the default
// transport while it is in force.
func noNetwork(t *testing.T) {
	orig := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("a network call to %s", r.URL)
		return nil, errors.New("no network in a dry run")
	})
	t.Cleanup(func() { http.DefaultTransport = orig })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDryRun: a dry-run playbook records what each step would do, with
// its inputs, and calls nothing: not the executors, not the network.
func TestDryRun(t *testing.T) {
	noNetwork(t)
	dry := strings.Replace(autoDeactivate, "mode: auto\ntrigger", "mode: dry-run\ntrigger", 1) + `
  - name: ticket
    action: http
    with: {url: "http://127.0.0.1:1/ticket", body: "{}"}
`
	h := newHarness(t, Options{}, dry)
	h.runner.opts.Executors["http"] = &HTTP{}
	run := h.alert("a1")
	if run.Status != Done || run.Steps[0].Status != DryRun || run.Steps[1].Status != DryRun || h.exec.count() != 0 {
		t.Fatalf("dry run: %s %s, %d calls", run.Status, stepsOf(run), h.exec.count())
	}
	if run.Steps[0].Inputs["access_key_id"] != "AKIAL80DWDVKKM0UXEER" {
		t.Errorf("inputs %v", run.Steps[0].Inputs)
	}
}

// TestApproveRace: two people approving at once make one act.
func TestApproveRace(t *testing.T) {
	h := newHarness(t, Options{}, backdoorKey)
	run := h.alert("a1")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := h.runner.Approve(context.Background(), nil, run.ID, "alice")
			errs <- err
		}()
	}
	ok := 0
	for range 4 {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrNotWaiting):
			t.Errorf("approving: %v", err)
		}
	}
	h.runner.Wait()
	if ok != 1 || h.exec.count() != 1 {
		t.Errorf("%d approvals taken, %d calls; want 1 and 1", ok, h.exec.count())
	}
}

// TestSearchTrigger: a playbook triggered by a search runs once on each
// event acknowledged after it was loaded, across ticks and restarts, in
// the event's tenant; history before it is left alone.
func TestSearchTrigger(t *testing.T) {
	var (
		mu    sync.Mutex
		head  uint64 = 10 // the store's end
		asked [][2]uint64
	)
	ev := createKeyEvent(t)
	events := func(ctx context.Context, q *query.Query, from, to uint64, fn func(*event.Event) error) error {
		mu.Lock()
		asked = append(asked, [2]uint64{from, to})
		mu.Unlock()
		if q.String() != `action:CreateAccessKey` {
			t.Errorf("query %s", q)
		}
		for seq := from; seq <= to; seq++ {
			if seq%5 == 0 { // every fifth event matches
				e := *ev
				e.Seq = seq
				if err := fn(&e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	opts := Options{Stored: func() ([]uint64, error) { mu.Lock(); defer mu.Unlock(); return []uint64{head}, nil }, Events: events}
	h := newHarness(t, opts, `
name: on-key
mode: dry-run
trigger: {search: "action:CreateAccessKey"}
steps:
  - {name: note, action: notify, with: {channel: soc, text: "{{ .Event.Actor.Name }} {{ .Event.Seq }}"}}
`)
	ctx := context.Background()
	grow := func(n uint64) {
		mu.Lock()
		head += n
		mu.Unlock()
	}
	tick := func() {
		t.Helper()
		if err := h.runner.SearchTick(ctx); err != nil {
			t.Fatal(err)
		}
		h.runner.Wait()
	}
	tick() // the playbook starts at the store's end: the history below 10 is not its
	grow(10)
	tick() // seqs 10 to 19: 10 and 15
	tick() // nothing new
	grow(10)
	tick() // 20 to 29: 20 and 25
	rs, err := h.runner.Runs(ctx, meta.RunQuery{AllTenants: true, Steps: true})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, r := range rs {
		if r.Actor != "search" || r.Tenant != "acme" || r.Status != Done {
			t.Errorf("run %+v", r)
		}
		seqs = append(seqs, strings.Fields(r.Steps[0].Inputs["text"])[1])
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []string{"10", "15", "20", "25"}) {
		t.Errorf("runs on seqs %v; asked %v", seqs, asked)
	}

	// A new runner (a restart) goes on from where the last one read.
	h.runner = NewRunner(h.runner.opts)
	h.runner.SetPlaybooks(mustParse(t, `
name: on-key
mode: dry-run
trigger: {search: "action:CreateAccessKey"}
steps:
  - {name: note, action: notify, with: {channel: soc, text: "{{ .Event.Seq }}"}}
`))
	grow(6)
	tick() // 30 to 35
	if rs, _ := h.runner.Runs(ctx, meta.RunQuery{AllTenants: true}); len(rs) != 6 {
		t.Errorf("%d runs after the restart, want 6 (30 and 35 added)", len(rs))
	}
	if want := [][2]uint64{{10, 19}, {20, 29}, {30, 35}}; !slices.Equal(asked, want) {
		t.Errorf("searched %v, want %v: each event once", asked, want)
	}

	if _, err := Parse("p.yml", []byte("name: x\ntrigger: {search: 'action:X', rules: [r]}\nsteps: [{action: notify, with: {channel: c}}]\n")); err == nil {
		t.Error("a search with rules loads")
	}
	if _, err := Parse("p.yml", []byte("name: x\ntrigger: {search: 'action:X | stats count()'}\nsteps: [{action: notify, with: {channel: c}}]\n")); err == nil {
		t.Error("a search with a pipe loads")
	}
}

// TestSearchTriggerLedgers: on a scale-out each partition's ledger is a
// range of seqs of its own, with its own mark; a search-triggered
// playbook reads each from where it read it to, and a position of
// another number of ledgers starts again from now rather than from
// zero.
func TestSearchTriggerLedgers(t *testing.T) {
	const p1 = 1 << 40 // partition 1's first seq
	var (
		mu    sync.Mutex
		marks = []uint64{10, p1 + 3}
		asked [][2]uint64
		fail  error // of the next search in partition 1
	)
	events := func(ctx context.Context, q *query.Query, from, to uint64, fn func(*event.Event) error) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, [2]uint64{from, to})
		if err := fail; err != nil && from >= p1 {
			fail = nil
			return err
		}
		return nil
	}
	stored := func() ([]uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(marks), nil
	}
	h := newHarness(t, Options{Stored: stored, Events: events}, `
name: on-key
mode: dry-run
trigger: {search: "action:CreateAccessKey"}
steps:
  - {name: note, action: notify, with: {channel: soc, text: "{{ .Event.Seq }}"}}
`)
	tick := func() {
		t.Helper()
		if err := h.runner.SearchTick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tick() // from now on
	mu.Lock()
	marks = []uint64{15, p1 + 3}
	mu.Unlock()
	tick()
	mu.Lock()
	marks = []uint64{15, p1 + 9}
	mu.Unlock()
	tick()
	if want := [][2]uint64{{10, 14}, {p1 + 3, p1 + 8}}; !slices.Equal(asked, want) {
		t.Errorf("searched %v, want %v", asked, want)
	}
	// A search that fails in one partition is run again there, and
	// only there.
	mu.Lock()
	marks, asked, fail = []uint64{18, p1 + 12}, nil, errors.New("the store went away")
	mu.Unlock()
	if err := h.runner.SearchTick(context.Background()); err == nil {
		t.Error("a failed search is not reported")
	}
	tick()
	if want := [][2]uint64{{15, 17}, {p1 + 9, p1 + 11}, {p1 + 9, p1 + 11}}; !slices.Equal(asked, want) {
		t.Errorf("after a failure in partition 1, searched %v, want %v", asked, want)
	}
	// Three partitions now: the position of two says nothing of them.
	mu.Lock()
	marks, asked = []uint64{20, p1 + 9, 2*p1 + 4}, nil
	mu.Unlock()
	tick()
	tick()
	if len(asked) != 0 {
		t.Errorf("after the partitions changed, searched %v; want nothing before the new marks", asked)
	}
}

// TestResumeIdle: at start, one node resumes every run left running; on
// a scale-out (Options.Idle) only those idle long enough that their node
// is gone, not those another node is carrying on.
func TestResumeIdle(t *testing.T) {
	const book = `
name: tell
mode: dry-run
trigger: {manual: true}
steps:
  - {name: note, action: notify, with: {channel: soc, text: "hello"}}
`
	h := newHarness(t, Options{}, book)
	ctx := context.Background()
	left := func(id string, idle time.Duration) {
		t.Helper()
		at := h.now.Add(-idle)
		run := &meta.Run{ID: id, Playbook: "tell", Status: Running, Actor: "alert", Data: []byte("{}"), Created: at, Updated: at,
			Steps: []meta.RunStep{{Name: "note", Action: "notify", Status: Pending}}}
		if err := h.db.SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	left("run-busy", time.Minute)
	left("run-orphan", 20*time.Minute)

	scaled := NewRunner(h.runner.opts)
	scaled.opts.Idle = 10 * time.Minute
	scaled.SetPlaybooks(mustParse(t, book))
	if err := scaled.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	scaled.Wait()
	if got := h.run("run-orphan").Status; got != Done {
		t.Errorf("the run idle 20 minutes is %s, want %s: resumed", got, Done)
	}
	if got := h.run("run-busy").Status; got != Running {
		t.Errorf("the run idle a minute is %s, want it left %s to the node carrying it", got, Running)
	}

	if err := h.runner.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	h.runner.Wait()
	if got := h.run("run-busy").Status; got != Done {
		t.Errorf("without Idle, the run is %s, want %s", got, Done)
	}
}

// TestApproveAsItWaits: an approval that comes while the run's goroutine
// is still letting go of it (the run is saved as waiting just before)
// waits for it, rather than failing.
func TestApproveAsItWaits(t *testing.T) {
	h := newHarness(t, Options{}, backdoorKey)
	run := h.alert("a1")
	h.runner.claim(run.ID) // as the goroutine that made it wait still does
	go func() {
		time.Sleep(50 * time.Millisecond)
		h.runner.release(run.ID)
	}()
	if _, err := h.runner.Approve(context.Background(), nil, run.ID, "alice"); err != nil {
		t.Fatalf("approving as the run is let go of: %v", err)
	}
	h.runner.Wait()
	if r := h.run(run.ID); r.Status != Done || h.exec.count() != 1 {
		t.Errorf("run %s, %d calls", r.Status, h.exec.count())
	}
}
