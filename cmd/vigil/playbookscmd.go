package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/playbook"
)

var playbooksCommands = []command{
	{"lint", "check playbook files", runPlaybooksLint},
	{"test", "show what a playbook would do for an event, calling nothing", runPlaybooksTest},
}

func runPlaybooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "playbooks", "Response playbooks: steps that act when an alert opens.", playbooksCommands, args, stdout, stderr)
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
	severity := fs.String("severity", "high", "the alert's severity")
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
		fmt.Fprintf(stdout, "%d. %s: %s (%s)\n", i+1, s.Step, s.Action, s.Mode)
		for _, k := range slices.Sorted(maps.Keys(s.Inputs)) {
			fmt.Fprintf(stdout, "     %s: %s\n", k, s.Inputs[k])
		}
	}
	return err
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
