package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/playbook"
)

var playbooksCommands = []command{
	{"lint", "check playbook files", runPlaybooksLint},
	{"test", "show what a playbook would do for an event, calling nothing", runPlaybooksTest},
	{"runs", "list playbook runs, most recently updated first", runPlaybooksRuns},
	{"show", "show a run's steps: inputs, outputs, approvals, errors", runPlaybooksShow},
	{"run", "start a playbook on an alert (through the running server)", runPlaybooksRun},
	{"kill", "turn the kill switch on or off: while on, no playbook acts", runPlaybooksKill},
}

func runPlaybooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "playbooks", "Response playbooks: steps that act when an alert opens.", playbooksCommands, args, stdout, stderr)
}

func runPlaybooksRuns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks runs", stderr)
	var d dataFlags
	d.registerClient(fs)
	status := fs.String("status", "", "the statuses to list, comma-separated (waiting, running, done, failed, …); default all")
	tenant := fs.String("tenant", "", "list this tenant's runs only (default every tenant's)")
	name := fs.String("playbook", "", "list this playbook's runs only")
	limit := fs.Int("limit", 100, "list at most this many")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil playbooks runs [--data DIR | --server URL] [--status S,...] [--tenant T] [--playbook NAME] [--limit N]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	q := meta.RunQuery{AllTenants: *tenant == "", Playbook: *name, Limit: *limit, Steps: true}
	if *tenant != "" {
		q.Tenants = []string{*tenant}
	}
	if *status != "" {
		q.Status = strings.Split(*status, ",")
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	var rs []meta.Run
	if c != nil {
		rs, err = remoteRuns(ctx, c, q)
	} else {
		rs, err = localRuns(ctx, &d, q, stderr)
	}
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintln(stdout, "no playbook runs")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPLAYBOOK\tTENANT\tALERT\tCASE\tSTEPS\tUPDATED")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Playbook, tenantOrAll(r.Tenant), cmp.Or(r.AlertID, "-"),
			cmp.Or(r.CaseID, "-"), stepsText(r.Steps), r.Updated.Format(time.RFC3339))
	}
	return tw.Flush()
}

func localRuns(ctx context.Context, d *dataFlags, q meta.RunQuery, stderr io.Writer) ([]meta.Run, error) {
	db, err := openExistingMeta(ctx, d, stderr)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Runs(ctx, q)
}

// remoteRuns lists the runs of q the server lets the caller see; as for
// alerts, a tenant asked for is picked here.
func remoteRuns(ctx context.Context, c *client, q meta.RunQuery) ([]meta.Run, error) {
	v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
	if len(q.Tenants) > 0 {
		v.Set("limit", strconv.Itoa(max(q.Limit, remoteFilterLimit)))
	}
	if q.Playbook != "" {
		v.Set("playbook", q.Playbook)
	}
	if len(q.Status) > 0 {
		v.Set("status", strings.Join(q.Status, ","))
	}
	var rs []meta.Run
	if err := c.get(ctx, "/api/v1/playbook-runs?"+v.Encode(), &rs); err != nil {
		return nil, err
	}
	if len(q.Tenants) > 0 {
		rs = slices.DeleteFunc(rs, func(r meta.Run) bool { return !slices.Contains(q.Tenants, r.Tenant) })
	}
	return rs[:min(len(rs), q.Limit)], nil
}

// stepsText summarizes a run's steps: each one's name and status.
func stepsText(ss []meta.RunStep) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.Name + ":" + s.Status
	}
	return strings.Join(parts, " ")
}

func runPlaybooksShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks show", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() { fmt.Fprintln(stderr, "Usage: vigil playbooks show [--data DIR | --server URL] RUN_ID") }
	id, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	var r meta.Run
	if c != nil {
		err := c.get(ctx, "/api/v1/playbook-runs/"+url.PathEscape(id), &r)
		if isStatus(err, http.StatusNotFound) {
			return &exitError{1, fmt.Errorf("no playbook run %s among those you may see", id)}
		}
		if err != nil {
			return err
		}
	} else {
		db, err := openExistingMeta(ctx, &d, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		rs, err := db.Runs(ctx, meta.RunQuery{AllTenants: true, ID: id, Limit: 1, Steps: true})
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return &exitError{1, fmt.Errorf("no playbook run %s", id)}
		}
		r = rs[0]
	}
	fmt.Fprintf(stdout, "run %s of playbook %s: %s\n", r.ID, r.Playbook, r.Status)
	fmt.Fprintf(stdout, "  started %s by %s; tenant %s; alert %s; case %s\n", r.Created.Format(time.RFC3339), r.Actor, tenantOrAll(r.Tenant),
		cmp.Or(r.AlertID, "-"), cmp.Or(r.CaseID, "-"))
	if r.Error != "" {
		fmt.Fprintf(stdout, "  %s\n", r.Error)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(stdout, "%d. %s: %s (%s) %s", s.Index+1, s.Name, s.Action, s.Mode, s.Status)
		if s.Attempts > 0 {
			fmt.Fprintf(stdout, " after %d attempts", s.Attempts)
		}
		if s.Approver != "" {
			fmt.Fprintf(stdout, ", approved by %s", s.Approver)
		}
		if s.Status == playbook.Waiting {
			fmt.Fprintf(stdout, " until %s; vigil approve %s", s.Expires.Format(time.RFC3339), r.ID)
		}
		fmt.Fprintln(stdout)
		for _, k := range slices.Sorted(maps.Keys(s.Inputs)) {
			fmt.Fprintf(stdout, "     %s: %s\n", k, s.Inputs[k])
		}
		for _, k := range slices.Sorted(maps.Keys(s.Outputs)) {
			fmt.Fprintf(stdout, "     → %s: %s\n", k, s.Outputs[k])
		}
		if s.Error != "" {
			fmt.Fprintf(stdout, "     %s\n", s.Error)
		}
	}
	return nil
}

// runPlaybooksRun starts a playbook through the running server, which
// carries runs out.
func runPlaybooksRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks run", stderr)
	var d dataFlags
	d.registerClient(fs)
	alertID := fs.String("alert", "", "the alert the playbook acts on (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil playbooks run [--data DIR | --server URL] --alert ID PLAYBOOK\n\nStarts the playbook on the alert in the server: the one named, or the 'vigil serve'\nrunning on the data directory.")
	}
	name, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *alertID == "" {
		fs.Usage()
		return errUsage
	}
	body, _ := json.Marshal(map[string]string{"alert_id": *alertID})
	return serverRunCommand(ctx, &d, stdout, http.MethodPost, "/api/v1/playbooks/"+url.PathEscape(name)+"/run", body)
}

// runApprove approves the step a run waits on, through the running
// server, which carries the run on.
func runApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decideCommand(ctx, "approve", args, stdout, stderr)
}

func runReject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decideCommand(ctx, "reject", args, stdout, stderr)
}

func decideCommand(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(action, stderr)
	var d dataFlags
	d.registerClient(fs)
	reason := fs.String("reason", "", "why (recorded with the decision)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vigil %s [--data DIR | --server URL] [--reason TEXT] RUN_ID\n\nDecides the step a playbook run waits on, in the server: the one named, or the\n'vigil serve' running on the data directory. 'vigil playbooks runs --status waiting' lists the runs waiting.\n", action)
	}
	id, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"reason": *reason})
	return serverRunCommand(ctx, &d, stdout, http.MethodPost, "/api/v1/playbook-runs/"+url.PathEscape(id)+"/"+action, body)
}

// serverRunCommand sends a request about a run to the running server and
// prints the run it answers with.
func serverRunCommand(ctx context.Context, d *dataFlags, stdout io.Writer, method, path string, body []byte) error {
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("no 'vigil serve' answers on %s, and no server is named (--server, %s, vigil login): playbook runs are carried out by the server", d.dir, serverEnv)
	}
	resp, err := c.open(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Close()
	var r meta.Run
	if err := json.NewDecoder(resp).Decode(&r); err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	fmt.Fprintf(stdout, "run %s of playbook %s: %s\n", r.ID, r.Playbook, r.Status)
	return nil
}

func runPlaybooksKill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks kill", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil playbooks kill [--data DIR | --server URL] on|off|status\n\nThe kill switch: while on, no playbook step acts (dry runs go on), and a run\nthat reaches an act ends halted. It is kept in the metadata database, so it\nholds at once for every vigil serve on it, and across restarts.")
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if arg != "on" && arg != "off" && arg != "status" {
		fs.Usage()
		return errUsage
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	if c != nil {
		var s struct {
			On      bool      `json:"on"`
			Actor   string    `json:"actor"`
			Updated time.Time `json:"updated"`
		}
		if arg == "status" {
			err = c.get(ctx, "/api/v1/playbooks/kill-switch", &s)
		} else {
			err = c.do(ctx, http.MethodPost, "/api/v1/playbooks/kill-switch", map[string]bool{"on": arg == "on"}, &s)
		}
		if err != nil {
			return err
		}
		state := map[bool]string{true: "on", false: "off"}[s.On]
		if s.Updated.IsZero() {
			fmt.Fprintf(stdout, "kill switch: %s\n", state)
		} else {
			fmt.Fprintf(stdout, "kill switch: %s (set by %s at %s)\n", state, s.Actor, s.Updated.Format(time.RFC3339))
		}
		return nil
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if arg != "status" {
		if err := db.SetSetting(ctx, meta.Setting{Name: playbook.KillSwitch, Value: arg, Actor: localUser(), Updated: time.Now().UTC()}); err != nil {
			return err
		}
	}
	s, err := db.Setting(ctx, playbook.KillSwitch)
	if err != nil {
		return err
	}
	state := cmp.Or(s.Value, "off")
	if s.Updated.IsZero() {
		fmt.Fprintf(stdout, "kill switch: %s\n", state)
	} else {
		fmt.Fprintf(stdout, "kill switch: %s (set by %s at %s)\n", state, s.Actor, s.Updated.Format(time.RFC3339))
	}
	return nil
}

func runPlaybooksLint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks lint", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil playbooks lint PATH...\n\nChecks every playbook file (*.yml, *.yaml) under the paths; exits 0 only if all load.")
	}
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return errUsage
	}
	n, bad := 0, 0
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !slices.Contains([]string{".yml", ".yaml"}, filepath.Ext(path)) {
				return nil
			}
			n++
			if _, err := playbook.ParseFile(path); err != nil {
				bad++
				fmt.Fprintln(stdout, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%d playbooks, %d with errors\n", n, bad)
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d playbooks do not load", bad)}
	}
	return nil
}

func runPlaybooksTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("playbooks test", stderr)
	eventFile := fs.String("event", "", "a log file whose first event the alert is of (required)")
	rule := fs.String("rule", "", "the alert's rule id (default the trigger's first)")
	severity := fs.String("severity", "high", "the alert's severity (default its rule's level)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil playbooks test --event FILE [--rule ID] [--severity S] PLAYBOOK\n\nShows whether the playbook would run for an alert of the event, and the steps it\nwould take with their inputs written, without calling anything.\n\nFlags:")
		fs.PrintDefaults()
	}
	file, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *eventFile == "" {
		return errors.New("--event is required")
	}
	p, err := playbook.ParseFile(file)
	if err != nil {
		return err
	}
	ev, err := firstEvent(*eventFile)
	if err != nil {
		return err
	}
	a := &meta.Alert{ID: "test", Tenant: ev.Tenant, RuleID: *rule, Severity: *severity, Status: "open", Count: 1,
		FirstSeen: ev.Time, LastSeen: ev.Time, Group: map[string]string{"vigil.actor": ev.Actor.Name}}
	a.Context = map[string]string{}
	for _, f := range []string{"vigil.actor", "vigil.src_ip", "vigil.account", "vigil.environment", "vigil.action"} {
		if v, _ := detect.Normalized(ev, f); v != "" {
			a.Context[f] = v
		}
	}
	// The alert is the one a built-in rule the event matches would open:
	// the rule named, else one of the trigger's, else the first.
	if r := builtinRuleFor(ev, a.RuleID, p.Trigger.Rules); r != nil {
		a.RuleID, a.Title, a.Tags = r.ID, r.Title, r.Tags
		if r.Level != "" && !flagSet(fs, "severity") {
			a.Severity = r.Level
		}
	}
	if a.RuleID == "" && len(p.Trigger.Rules) > 0 {
		a.RuleID = p.Trigger.Rules[0]
	}
	if p.Matches(a, ev) {
		fmt.Fprintf(stdout, "playbook %q runs for an alert of rule %s on %s by %s:\n", p.Name, a.RuleID, ev.Action, ev.Actor.Name)
	} else {
		fmt.Fprintf(stdout, "playbook %q does not run for this alert; were it started by hand:\n", p.Name)
	}
	data, err := playbook.NewData(a, ev)
	if err != nil {
		return err
	}
	plan, err := p.Plan(data)
	for i, s := range plan {
		if s.Skipped {
			fmt.Fprintf(stdout, "%d. %s: %s (%s), skipped: its if does not hold\n", i+1, s.Step, s.Action, s.Mode)
			continue
		}
		fmt.Fprintf(stdout, "%d. %s: %s (%s)\n", i+1, s.Step, s.Action, s.Mode)
		for _, k := range slices.Sorted(maps.Keys(s.Inputs)) {
			fmt.Fprintf(stdout, "     %s: %s\n", k, s.Inputs[k])
		}
	}
	return err
}

// builtinRuleFor returns the built-in rule named id (if set), or else
// the first built-in rule the event matches, preferring those in want.
func builtinRuleFor(ev *event.Event, id string, want []string) *detect.Rule {
	rules, err := detect.Builtin()
	if err != nil {
		return nil
	}
	e, err := detect.NewEngine(rules, detect.Options{})
	if e == nil || err != nil && len(e.Rules()) == 0 {
		return nil
	}
	if id != "" {
		return e.Rule(id)
	}
	var matched []*detect.Rule
	e.NewMatcher().Match(ev, func(r *detect.Rule) { matched = append(matched, r) })
	for _, r := range matched {
		if slices.Contains(want, r.ID) {
			return r
		}
	}
	if len(matched) > 0 {
		return matched[0]
	}
	return nil
}

// flagSet reports whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// firstEvent parses a log file and returns its first event.
func firstEvent(path string) (*event.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var first *event.Event
	errFound := errors.New("found")
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "default", Origin: path, Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil {
			first = r.Event
			return errFound
		}
		return nil
	})
	if first == nil {
		if err == nil || errors.Is(err, errFound) {
			err = errors.New("no event in it")
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return first, nil
}
