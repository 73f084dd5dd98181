package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/notify"
	"github.com/vigilsec/vigil/playbook"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// playbooksConfig is the playbooks section of the config file.
type playbooksConfig struct {
	// Dir is the folder of playbook files, reloaded when they change.
	Dir string `yaml:"dir"`
	// Deny are principals, keys and instances no playbook may act on
	// (break-glass accounts), as patterns (*, ?) matched against a
	// step's targets, whole or the last part of an ARN or path. Allow,
	// if set, are the only ones destructive steps may act on.
	Deny  []string `yaml:"deny"`
	Allow []string `yaml:"allow"`
	// MaxPerHour is how many destructive steps may act in an hour before
	// each further one waits for approval (default 10; -1: no limit).
	MaxPerHour int `yaml:"max_per_hour"`
	// ApprovalExpires is how long a step waits for approval (default 4h).
	ApprovalExpires string `yaml:"approval_expires"`
	// KillSwitch, if true, keeps every playbook from acting from start,
	// whatever was set at run time.
	KillSwitch bool `yaml:"kill_switch"`
	AWS        *struct {
		Region string `yaml:"region"`
		// Accounts maps account ids to the role assumed to act in them.
		Accounts   map[string]string `yaml:"accounts"`
		ExternalID string            `yaml:"external_id"`
		// Endpoints override the services' addresses (iam, ec2, sts):
		// VPC endpoints, or a local server in tests.
		Endpoints map[string]string `yaml:"endpoints"`
	} `yaml:"aws"`
	GCP *struct {
		// Credentials is a service account key (JSON), as file:PATH or
		// env:NAME.
		Credentials string `yaml:"credentials"`
		Endpoint    string `yaml:"endpoint"`
	} `yaml:"gcp"`
	Graph *struct {
		TenantID     string `yaml:"tenant_id"`
		ClientID     string `yaml:"client_id"`
		ClientSecret string `yaml:"client_secret"`
		LoginURL     string `yaml:"login_url"`
		Endpoint     string `yaml:"endpoint"`
	} `yaml:"graph"`
	HTTP struct {
		// Secrets are the Authorization headers http steps name with
		// auth: NAME, as values or env:NAME, file:PATH.
		Secrets map[string]string `yaml:"secrets"`
	} `yaml:"http"`

	expires time.Duration
	built   map[string]playbook.Executor // by action name, by check
}

// check validates the section.
func (c *playbooksConfig) check() error {
	if e := c.ApprovalExpires; e != "" {
		d, err := time.ParseDuration(e)
		if err != nil || d <= 0 {
			return &configError{"playbooks.approval_expires", fmt.Errorf("%q is not a positive duration", e)}
		}
		c.expires = d
	}
	if c.MaxPerHour < -1 {
		return &configError{"playbooks.max_per_hour", errors.New("want a number ≥ 0, or -1 for no limit")}
	}
	for name, list := range map[string][]string{"deny": c.Deny, "allow": c.Allow} {
		for i, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return &configError{fmt.Sprintf("playbooks.%s[%d]", name, i), fmt.Errorf("%q: %w", p, err)}
			}
		}
	}
	// The executors' settings and secrets, checked at load as the
	// notification channels' are; the executors built are the ones
	// vigil serve runs with.
	var err error
	c.built, err = c.executors(context.Background())
	return err
}

// executors builds the executors of the actions outside vigil that the
// config sets up.
func (c *playbooksConfig) executors(ctx context.Context) (map[string]playbook.Executor, error) {
	secrets := map[string]string{}
	for name, v := range c.HTTP.Secrets {
		s, err := secretValue(v)
		if err != nil {
			return nil, &configError{"playbooks.http.secrets." + name, err}
		}
		secrets[name] = s
	}
	xs := map[string]playbook.Executor{"http": &playbook.HTTP{Secrets: secrets}}
	add := func(x playbook.Executor, prefix string) {
		for name := range playbook.Actions {
			if strings.HasPrefix(name, prefix) {
				xs[name] = x
			}
		}
	}
	if a := c.AWS; a != nil {
		// The standard chain: environment, shared files, SSO, the
		// instance's or task's role.
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cmp.Or(a.Region, "us-east-1")))
		if err != nil {
			return nil, &configError{"playbooks.aws", err}
		}
		extID, err := secretValue(a.ExternalID)
		if err != nil {
			return nil, &configError{"playbooks.aws.external_id", err}
		}
		add(&playbook.AWS{Config: cfg, Endpoints: a.Endpoints, Accounts: a.Accounts, ExternalID: extID}, "aws.")
	}
	if g := c.GCP; g != nil {
		creds, err := secretValue(g.Credentials)
		if err == nil && creds == "" {
			err = errors.New("missing")
		}
		if err != nil {
			return nil, &configError{"playbooks.gcp.credentials", err}
		}
		add(&playbook.GCP{CredentialsJSON: []byte(creds), Endpoint: g.Endpoint}, "gcp.")
	}
	if g := c.Graph; g != nil {
		secret, err := secretValue(g.ClientSecret)
		if err == nil && (secret == "" || g.TenantID == "" || g.ClientID == "") {
			err = errors.New("tenant_id, client_id and client_secret are all needed")
		}
		if err != nil {
			return nil, &configError{"playbooks.graph", err}
		}
		add(&playbook.Graph{TenantID: g.TenantID, ClientID: g.ClientID, ClientSecret: secret, LoginURL: g.LoginURL, Endpoint: g.Endpoint}, "graph.")
	}
	return xs, nil
}

// playbookGate hands new alerts to the playbook runner once it is ready,
// keeping those opened before (while the store catches up at start).
type playbookGate struct {
	mu      sync.Mutex
	runner  *playbook.Runner
	pending []pendingAlerts
}

type pendingAlerts struct {
	alerts []meta.Alert
	events []*event.Event
}

func (g *playbookGate) opened(as []meta.Alert, evs []*event.Event) {
	g.mu.Lock()
	r := g.runner
	if r == nil {
		g.pending = append(g.pending, pendingAlerts{as, evs})
	}
	g.mu.Unlock()
	if r != nil {
		r.Opened(as, evs)
	}
}

func (g *playbookGate) ready(r *playbook.Runner) {
	g.mu.Lock()
	g.runner = r
	pending := g.pending
	g.pending = nil
	g.mu.Unlock()
	for _, p := range pending {
		r.Opened(p.alerts, p.events)
	}
}

// playbookDeps are what the runner works with.
type playbookDeps struct {
	cfg        *config
	dataDir    *dataFlags
	mdb        *meta.DB
	alerts     *alert.Manager
	dispatcher *notify.Dispatcher // nil without channels
	channels   []string
	// accept takes the records of runs to the ledgers; store reads the
	// events runs search, act on and are triggered by, whose every
	// ledger's seqs below stored's marks it holds.
	accept ingest.Acceptor
	store  eventReader
	stored func() ([]uint64, error)
	// evidence writes the bundles of export steps.
	evidence evidenceWriter
	// lead runs the jobs of which one node runs at a time: resuming runs
	// left by their node, expiring approvals, search triggers.
	lead   leader
	idle   time.Duration // playbook.Options.Idle
	logger *slog.Logger
	reg    prometheus.Registerer
	demo   bool // vigil serve --demo: the example playbooks, rehearsed
}

// An eventReader reads the events that playbooks search and act on: the
// embedded store, or ClickHouse on a scale-out.
type eventReader interface {
	Seqs(ctx context.Context, req query.Request) ([]uint64, error)
	Search(ctx context.Context, req query.Request) (*store.Result, error)
	Events(ctx context.Context, from, to uint64, fn func(*event.Event) error) error
}

// startPlaybooks starts the playbook runner: it loads the playbooks
// (reloading them when their files change), resumes the runs vigil
// stopped in, and expires approvals. The returned function stops it.
func startPlaybooks(ctx context.Context, deps playbookDeps, gate *playbookGate) (*playbook.Runner, func(), error) {
	cfg := &deps.cfg.Playbooks
	if cfg.Dir != "" {
		fi, err := os.Stat(cfg.Dir)
		if err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("playbooks.dir: %w", err)
		}
	}
	b := &builtins{deps: deps}
	r := playbook.NewRunner(playbook.Options{
		DB:         deps.mdb,
		Executors:  cfg.built,
		Builtins:   b,
		Cases:      deps.alerts,
		Event:      b.event,
		Stored:     deps.stored,
		Events:     b.events,
		Audit:      b.audit,
		Ask:        b.ask,
		Deny:       cfg.Deny,
		Allow:      cfg.Allow,
		MaxPerHour: cfg.MaxPerHour,
		Expires:    cfg.expires,
		Idle:       deps.idle,
		Link:       deps.cfg.Notify.Link,
		Logger:     deps.logger,
		Registerer: deps.reg,
	})
	if cfg.KillSwitch {
		if err := r.Kill(ctx, true, "config"); err != nil {
			return nil, nil, err
		}
	}
	load := func() {
		if cfg.Dir == "" && deps.demo {
			// The demo shows what the example playbooks would do, and
			// does nothing.
			ps, errs := playbook.LoadFS(playbook.Examples())
			for _, p := range ps {
				p.Rehearse()
			}
			r.SetPlaybooks(ps)
			deps.logger.Info("demo: the example playbooks run as dry runs", "playbooks", len(ps), "refused", len(errs))
			return
		}
		if cfg.Dir == "" {
			return
		}
		ps, errs := playbook.LoadDir(cfg.Dir)
		for _, err := range errs {
			deps.logger.Error("playbook not loaded", "err", err)
		}
		r.SetPlaybooks(ps)
		deps.logger.Info("playbooks loaded", "dir", cfg.Dir, "playbooks", len(ps), "refused", len(errs))
	}
	load()
	gate.ready(r)
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		sig := playbooksSignature(cfg.Dir)
		reload := time.NewTicker(2 * time.Second)
		defer reload.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-reload.C:
				if next := playbooksSignature(cfg.Dir); next != sig {
					sig = next
					load()
				}
			}
		}
	})
	wg.Go(func() { deps.lead(loopCtx, "playbooks", func(ctx context.Context) { leadPlaybooks(ctx, r, deps) }) })
	return r, func() {
		cancel()
		wg.Wait()
		r.Wait()
	}, nil
}

// leadPlaybooks runs the playbook jobs of which one node runs at a time,
// until ctx ends: it resumes the runs that their node left (at start, and
// on a scale-out as they go idle), expires approvals, and runs the
// search triggers.
func leadPlaybooks(ctx context.Context, r *playbook.Runner, deps playbookDeps) {
	resume := func() {
		if err := r.Resume(ctx); err != nil && ctx.Err() == nil {
			deps.logger.Error("resuming playbook runs", "err", err)
		}
	}
	resume()
	expire := time.NewTicker(30 * time.Second)
	defer expire.Stop()
	search := time.NewTicker(searchEvery)
	defer search.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-search.C:
			if err := r.SearchTick(ctx); err != nil && ctx.Err() == nil {
				deps.logger.Error("running search-triggered playbooks", "err", err)
			}
		case <-expire.C:
			if err := r.Tick(ctx); err != nil && ctx.Err() == nil {
				deps.logger.Error("expiring playbook approvals", "err", err)
			}
			if deps.idle > 0 {
				resume()
			}
		}
	}
}

// searchEvery is how often search-triggered playbooks look at the new
// events: a match starts its run within this, once stored.
var searchEvery = 10 * time.Second

// playbooksSignature summarizes the playbook files under dir (names,
// sizes, modification times), so that a change is noticed by polling.
func playbooksSignature(dir string) string {
	if dir == "" {
		return ""
	}
	var parts []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && playbook.IsPlaybookFile(path) {
			if info, err := d.Info(); err == nil {
				parts = append(parts, fmt.Sprintf("%s %d %d", path, info.Size(), info.ModTime().UnixNano()))
			}
		}
		return nil
	})
	return strings.Join(parts, "\n")
}

// builtins are the playbook actions within vigil: notifications,
// searches, evidence bundles, and the audit of runs in the ledger.
type builtins struct {
	deps playbookDeps
}

func (b *builtins) Notify(ctx context.Context, channel, title, text, link string, run *meta.Run) error {
	d := b.deps.dispatcher
	if d == nil || !slices.Contains(b.deps.channels, channel) {
		return fmt.Errorf("no notification channel %q is configured (notify.channels)", channel)
	}
	m := notify.Message{Key: run.ID, Action: notify.Trigger, Title: title, Time: time.Now().UTC(), Link: link,
		Fields: []notify.Field{{Name: "text", Value: text}, {Name: "playbook", Value: run.Playbook}, {Name: "run", Value: run.ID}}}
	if run.AlertID != "" {
		m.Fields = append(m.Fields, notify.Field{Name: "alert", Value: run.AlertID})
	}
	d.Send(m, channel)
	return nil
}

// ask sends a request for approval to the playbook's approval channels.
func (b *builtins) ask(a playbook.Approval) {
	d := b.deps.dispatcher
	if d == nil {
		b.deps.logger.Warn("a playbook step waits for approval, and no notification channel is configured to ask", "run", a.Run.ID, "step", a.Step.Name)
		return
	}
	m := notify.Message{
		Key: a.Run.ID + "/" + a.Step.Name, Action: notify.Trigger, Severity: "high", Time: time.Now().UTC(),
		Title: fmt.Sprintf("Approve %s in playbook %s?", a.Step.Action, a.Run.Playbook),
		Fields: []notify.Field{
			{Name: "step", Value: a.Step.Name}, {Name: "action", Value: a.Step.Action},
			{Name: "run", Value: a.Run.ID}, {Name: "why", Value: a.Step.Error},
			{Name: "expires", Value: a.Step.Expires.Format(time.RFC3339)},
			{Name: "approve", Value: "vigil approve " + a.Run.ID + "  (or POST /api/v1/playbook-runs/" + a.Run.ID + "/approve)"},
		},
	}
	for _, k := range slices.Sorted(maps.Keys(a.Step.Inputs)) {
		m.Fields = append(m.Fields, notify.Field{Name: k, Value: a.Step.Inputs[k]})
	}
	if a.Run.AlertID != "" {
		m.Fields = append(m.Fields, notify.Field{Name: "alert", Value: a.Run.AlertID})
	}
	if l := b.deps.cfg.Notify.Link; l != "" {
		m.Link = strings.TrimSuffix(l, "/") + "/playbook-runs/" + a.Run.ID
	}
	d.Send(m, a.Channels...)
}

func scopeOf(tenant string) query.Scope {
	s := query.Scope{All: true}
	if tenant != "" {
		s = s.Narrow(tenant)
	}
	return s
}

func (b *builtins) Search(ctx context.Context, tenant, q string, from, to time.Time, limit int) (int, []string, error) {
	parsed, err := query.Parse(q)
	if err != nil {
		return 0, nil, err
	}
	req := query.Request{Query: parsed, Scope: scopeOf(tenant), From: from, To: to}
	seqs, err := b.deps.store.Seqs(ctx, query.Request{Query: parsed, Scope: req.Scope, From: from, To: to, Limit: 100_000})
	if err != nil {
		return 0, nil, err
	}
	req.Limit = limit
	res, err := b.deps.store.Search(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	var lines []string
	for _, row := range res.Rows {
		var parts []string
		for i, c := range res.Columns {
			switch c {
			case "time", "tenant", "environment", "account", "action", "actor", "src_ip", "outcome":
				if i < len(row) && row[i] != nil && fmt.Sprint(row[i]) != "" {
					parts = append(parts, c+"="+fmt.Sprint(row[i]))
				}
			}
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	return len(seqs), lines, nil
}

// event reads one event of a tenant ("" for any) by its ledger index.
func (b *builtins) event(ctx context.Context, tenant string, seq uint64) (*event.Event, error) {
	var found *event.Event
	err := b.deps.store.Events(ctx, seq, seq+1, func(e *event.Event) error {
		if tenant == "" || e.Tenant == tenant {
			found = e
		}
		return nil
	})
	if err == nil && found == nil {
		err = fmt.Errorf("no event %d in the store", seq)
	}
	return found, err
}

// events calls fn with the events of every tenant with seqs in [from, to]
// that q matches: their seqs found by the query, then each read by seq
// (a scan would read every day of event time the store holds).
func (b *builtins) events(ctx context.Context, q *query.Query, from, to uint64, fn func(*event.Event) error) error {
	db := b.deps.store
	seqs, err := db.Seqs(ctx, query.Request{Query: q, Scope: query.Scope{All: true}, SeqRanges: [][2]uint64{{from, to}}, Limit: 100_000})
	if err != nil {
		return err
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		if err := db.Events(ctx, seq, seq+1, fn); err != nil {
			return err
		}
	}
	return nil
}

func (b *builtins) Export(ctx context.Context, tenant, q string, from, to time.Time) (string, int, error) {
	parsed, err := query.Parse(q)
	if err != nil {
		return "", 0, err
	}
	dir := b.deps.dataDir.path("exports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	now := time.Now().UTC()
	out := filepath.Join(dir, "playbook-"+now.Format("20060102T150405.000000000")+".zip")
	host, _ := os.Hostname()
	custody := ledger.Custody{ExportedBy: "vigil playbook", ExportedAt: now, Query: q, From: from, To: to, Tool: "vigil " + version, Host: host,
		Reason: "playbook run"}
	n, _, err := b.deps.evidence(ctx, query.Request{Query: parsed, Scope: scopeOf(tenant), From: from, To: to}, custody, out)
	if err != nil {
		return "", 0, err
	}
	return out, n, nil
}

// audit appends a run's record to the ledger, as an event of the run's
// tenant (the default tenant for a run across tenants), source
// vigil.playbook, so that it is searched, exported and proved like any
// other.
func (b *builtins) audit(ctx context.Context, rec playbook.Record) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ev := &event.Event{
		Time: rec.Time, Received: rec.Time, Tenant: cmp.Or(rec.Tenant, b.deps.cfg.Tenant), Source: "vigil.playbook", Class: event.ClassRemediation,
		ID: rec.Run + "/" + rec.Kind + "/" + rec.Step, Actor: event.Actor{Name: rec.Actor, Type: "vigil"}, Service: "vigil.playbook",
		Action: rec.Kind, Origin: "playbook/" + rec.Playbook, Raw: raw,
		Cloud: event.Cloud{Provider: rec.Provider, Account: rec.Account}, Environment: rec.Environment,
		Outcome: event.Outcome{Result: event.OutcomeSuccess},
		Message: fmt.Sprintf("playbook %s run %s: %s %s %s", rec.Playbook, rec.Run, rec.Kind, rec.Step, rec.Action),
	}
	if rec.Error != "" && (strings.HasSuffix(rec.Kind, "failed") || strings.HasSuffix(rec.Kind, "refused")) {
		ev.Outcome = event.Outcome{Result: event.OutcomeFailure, Code: rec.Kind}
	}
	if act, ok := playbook.Actions[rec.Action]; ok {
		for _, t := range act.Targets {
			if v := rec.Inputs[t]; v != "" {
				ev.Resources = append(ev.Resources, v)
			}
		}
	}
	return acceptPatiently(ctx, b.deps.accept, ingest.Batch{Source: "playbook", Events: []*event.Event{ev}})
}

// acceptPatiently hands vigil's own records (a playbook's steps, a
// probe's changes) to the intake. The intake pushes back when the
// pipeline is behind; a record waits its turn, for up to a minute,
// rather than being lost.
func acceptPatiently(ctx context.Context, a ingest.Acceptor, b ingest.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := a.Accept(ctx, b)
		if !errors.Is(err, ingest.ErrBusy) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
