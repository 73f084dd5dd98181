package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

var rulesCommands = []command{
	{"lint", "check that rules load", runRulesLint},
	{"test", "run the tests kept beside rules", runRulesTest},
}

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "rules", "Sigma detection and correlation rules.", rulesCommands, args, stdout, stderr)
}

// runSubcommand runs the command of a group (vigil token, vigil rules)
// that args name, or prints the group's usage.
func runSubcommand(ctx context.Context, group, about string, cmds []command, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: vigil %s COMMAND [flags] [args]\n\n%s\n\nCommands:\n", group, about)
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-7s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(stderr, "\nRun 'vigil %s COMMAND -h' for a command's flags.\n", group)
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage()
		return flag.ErrHelp
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
		names[i] = c.name
	}
	return &exitError{2, fmt.Errorf("unknown command %q; the commands are: %s", args[0], strings.Join(names, ", "))}
}

func runRulesLint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules lint", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil rules lint PATH...\n\nLoads every rule file (*.yml, *.yaml) under the paths and compiles it as\nvigil serve would. Prints each rule that cannot be loaded with its file,\nline and reason, and the rules that load but will not run (a placeholder\nwithout values) or see no events (a logsource no vigil parser produces).\nExits 0 only when every rule loads, so that rule repositories can run it\nin CI.")
	}
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return errUsage
	}
	rules, lerr := detect.LoadPaths(paths...)
	e, cerr := detect.NewEngine(rules, detect.Options{})
	failed := 0
	for _, err := range []error{lerr, cerr} {
		for _, err := range unjoin(err) {
			fmt.Fprintln(stdout, err)
			failed++
		}
	}
	for _, d := range e.Disabled() {
		fmt.Fprintf(stdout, "%s:%d: rule %s: disabled: %s\n", d.Rule.File, d.Line, d.Rule.ID, d.Reason)
	}
	for _, r := range e.Unmatched() {
		fmt.Fprintf(stdout, "%s:%d: rule %s: warning: logsource %q: no vigil source produces these logs, so the rule sees no events\n", r.File, r.Line, r.ID, r.Logsource)
	}
	fmt.Fprintf(stdout, "%d rules loaded, %d refused, %d disabled, %d without a vigil source\n", len(e.Rules()), failed, len(e.Disabled()), len(e.Unmatched()))
	if failed > 0 {
		return &exitError{1, fmt.Errorf("%d rules do not load", failed)}
	}
	return nil
}

// unjoin returns the errors joined in err, one level deep for each join.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
