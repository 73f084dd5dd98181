// Command vigil is the cloud detection and response platform in one
// binary: it imports and receives logs, stores and searches them, and
// serves the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"import", "import log files and directories", runImport},
	{"search", "search the events", runSearch},
	{"serve", "run the server: HTTP API, ingest, search", runServe},
	{"verify", "check the ledger and the store for tampering", runVerify},
	{"key", "print the public key of the ledger's checkpoints", runKey},
	{"token", "create, list and revoke API tokens", runToken},
	{"export", "write an evidence bundle of events with their proofs", runExport},
	{"verify-bundle", "check an evidence bundle offline", runVerifyBundle},
	{"rebuild", "rebuild the store from the ledger", runRebuild},
	{"redact", "erase events' content, keeping the ledger's proofs", runRedact},
	{"retention", "apply the retention policy now", runRetention},
	{"sources", "list the sources a running server receives from", runSources},
	{"formats", "list the log formats vigil parses", runFormats},
	{"rules", "check Sigma detection rules", runRules},
	{"hunt", "run Sigma rules over stored events", runHunt},
	{"alerts", "list, acknowledge, resolve and close alerts", runAlerts},
	{"cases", "open and work cases of alerts", runCases},
	{"playbooks", "response playbooks: check, test, list runs, kill switch", runPlaybooks},
	{"who", "who is behind a temporary credential: its chain back to its origin, and its events", runWho},
	{"inventory", "what an address, instance, user or role was, at a time", runInventory},
	{"timeline", "the state at a time of an address, principal or asset, and the events around it", runTimeline},
	{"cost", "import cloud cost exports as daily cost metrics", runCost},
	{"coverage", "which sources sent, how late, and which rules had no data", runCoverage},
	{"approve", "approve the step a playbook run waits on", runApprove},
	{"reject", "say no to the step a playbook run waits on", runReject},
	{"login", "check an API token with a server and save both, for the commands that follow", runLogin},
	{"logout", "forget the saved login", runLogout},
	{"whoami", "say which server the commands ask, and who they act as there", runWhoami},
	{"principals", "list, create and disable users and service accounts; set passwords", runPrincipals},
	{"groups", "list and create groups of principals; add and remove members", runGroups},
	{"roles", "list, bind and unbind roles in tenants", runRoles},
	{"grants", "share a tenant's events with others; list and revoke grants", runGrants},
	{"break-glass", "hold a role in every tenant for a while, for a reason everyone is told", runBreakGlass},
	{"version", "print the version", runVersion},
}

// localOnly are the commands that work on a data directory and never
// through a server. When one fails while a server is set up, the user
// is told, lest they think it worked on the server's data.
var localOnly = map[string]bool{
	"serve": true, "verify": true, "key": true, "rebuild": true, "redact": true, "retention": true, "cost": true,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "vigil %s: %v\n", c.name, err)
		if from := remoteConfigured(); localOnly[c.name] && from != "" {
			fmt.Fprintf(stderr, "(vigil %s works on a data directory, --data or $VIGIL_DATA, not through the server of %s)\n", c.name, from)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage says a flag error was already printed.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "vigil — cloud detection and response\n\nUsage: vigil COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil COMMAND -h' for a command's flags.\n\n"+
		"Commands that read or change data work through a server when one is named:\n"+
		"--server URL, else $"+serverEnv+" with $"+tokenEnv+", else the server and token\n"+
		"'vigil login' saved; with --data DIR on the command line, or none of these, on the\n"+
		"data directory (through the 'vigil serve' running on it, if one does).")
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	fmt.Fprintf(stdout, "vigil %s\n", version)
	return nil
}

// newFlags returns a flag set that reports errors through errUsage, so
// that a mistyped flag exits 2 with the flag package's message.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (`vigil search 'eventName:X' --format ndjson`), as users type them.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
