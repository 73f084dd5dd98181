package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/web"
)

var rulesCommands = []command{
	{"lint", "check that rules load", runRulesLint},
	{"test", "run the tests kept beside rules", runRulesTest},
	{"list", "list the rules a server runs, with their hits", runRulesList},
	{"off", "turn a rule off on a server, saying why", runRulesSwitch(true)},
	{"on", "turn a rule back on", runRulesSwitch(false)},
	{"backtest", "run a rule file over a server's recent events", runRulesBacktest},
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
			fmt.Fprintf(stderr, "  %-9s %s\n", c.name, c.summary)
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

// The commands below work through a server's API, as the console's rules
// pages do: the server checks the caller may, and audits the change.

func runRulesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("rules list", "rules list [--server URL | --data DIR] [--json]", stderr)
	_, rs, err := fetchList[web.RuleInfo](ctx, fs, d, args, "/api/v1/rules")
	if err != nil {
		return err
	}
	return printList(stdout, *asJSON, rs, "no rules", "ID\tSTATE\tLEVEL\tKIND\tFROM\tHITS(30D)\tLAST MATCH\tTITLE", func(r web.RuleInfo) []string {
		state := "on"
		switch {
		case r.Off != nil:
			state = "off"
		case r.NotRunning != "":
			state = "not running"
		}
		return []string{r.ID, state, cmp.Or(r.Level, "-"), r.Kind, r.Origin, strconv.FormatInt(r.Hits, 10), timeOr(r.LastMatch, "never"), r.Title}
	})
}

func runRulesSwitch(off bool) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, usage := "rules on", "rules on [--server URL | --data DIR] RULE-ID"
	if off {
		name, usage = "rules off", "rules off [--server URL | --data DIR] --reason TEXT RULE-ID"
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs, d, _ := accessFlags(name, usage, stderr)
		reason := new(string)
		if off {
			reason = fs.String("reason", "", "why the rule is turned off, kept with it (required)")
		}
		rest, err := parseArgs(fs, args, 1)
		if err != nil {
			return err
		}
		if off && strings.TrimSpace(*reason) == "" {
			return &exitError{2, errors.New("--reason: say why the rule is turned off")}
		}
		c, err := d.needClient(ctx)
		if err != nil {
			return err
		}
		path, state := "/api/v1/rules/"+url.PathEscape(rest[0])+"/on", "on"
		var body any
		if off {
			path, state, body = "/api/v1/rules/"+url.PathEscape(rest[0])+"/off", "off", web.RuleRequest{Reason: *reason}
		}
		if err := c.do(ctx, http.MethodPost, path, body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "turned rule %s %s\n", rest[0], state)
		return nil
	}
}

func runRulesBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("rules backtest", "rules backtest [--server URL | --data DIR] [--days N | --from T [--to T]] FILE", stderr)
	days := fs.Int("days", 7, "run over the last N days (at most 90)")
	from := fs.String("from", "", "run from this time instead (a date, a time, or relative as -36h)")
	to := fs.String("to", "", "and up to this time (default now)")
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(rest[0])
	if err != nil {
		return err
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	// Linted first, so that a file that does not load is told line by
	// line, as vigil rules lint tells it.
	var lint web.LintResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/rules/lint", web.RuleRequest{Content: string(content)}, &lint); err != nil {
		return err
	}
	for _, p := range lint.Problems {
		fmt.Fprintf(stderr, "%s:%d: %s: %s\n", rest[0], p.Line, p.Severity, p.Message)
	}
	if !lint.OK {
		return &exitError{1, fmt.Errorf("%s does not load; not run", rest[0])}
	}
	var bt web.Backtest
	if err := c.do(ctx, http.MethodPost, "/api/v1/rules/backtest", web.RuleRequest{Content: string(content), Days: *days, From: *from, To: *to}, &bt); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, bt)
	}
	fmt.Fprintf(stdout, "%d hits from %s to %s\n", bt.Total, bt.From.Format(time.RFC3339), bt.To.Format(time.RFC3339))
	for _, h := range bt.Sample {
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\tseq %d\n", h.Time.Format(time.RFC3339), h.Tenant, h.RuleID, h.Action, h.Seq)
	}
	return nil
}
