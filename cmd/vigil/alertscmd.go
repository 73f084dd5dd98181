package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
)

var alertsCommands = []command{
	{"list", "list alerts, most recently updated first", runAlertsList},
	{"show", "show an alert and who changed it", runAlertsShow},
	{"ack", "acknowledge an alert", alertsSetter("ack", alert.Acknowledged)},
	{"resolve", "resolve an alert", alertsSetter("resolve", alert.Resolved)},
	{"close", "close an alert as a false positive (--reason required)", alertsSetter("close", alert.Closed)},
	{"reopen", "reopen a resolved or closed alert", alertsSetter("reopen", alert.Open)},
}

func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "alerts", "Alerts: the rules' detections grouped by rule, tenant and actor (or the fields\nthe config's alerts.group_by names), kept in the data directory's metadata\ndatabase. Changes made here show at once in a 'vigil serve' on the same\ndata directory.", alertsCommands, args, stdout, stderr)
}

func runAlertsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("alerts list", stderr)
	var d dataFlags
	d.register(fs)
	status := fs.String("status", "open,acknowledged", "the statuses to list, comma-separated, or all")
	tenant := fs.String("tenant", "", "list this tenant's alerts only (default every tenant's)")
	rule := fs.String("rule", "", "list this rule's alerts only")
	limit := fs.Int("limit", 100, "list at most this many")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil alerts list [--data DIR] [--status S,...] [--tenant T] [--rule ID] [--limit N]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	q := meta.AlertQuery{AllTenants: *tenant == "", RuleID: *rule, Limit: *limit}
	if *tenant != "" {
		q.Tenants = []string{*tenant}
	}
	if *status != "all" {
		for _, s := range strings.Split(*status, ",") {
			if _, err := statusArg(s); err != nil {
				return err
			}
			q.Status = append(q.Status, s)
		}
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	as, err := db.Alerts(ctx, q)
	if err != nil {
		return err
	}
	if len(as) == 0 {
		fmt.Fprintln(stdout, "no alerts")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tTENANT\tTITLE\tGROUP\tCOUNT\tFIRST SEEN\tLAST SEEN")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Status, a.Severity, tenantOrAll(a.Tenant), a.Title,
			groupText(a.Group), a.Count, a.FirstSeen.Format(time.RFC3339), a.LastSeen.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runAlertsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("alerts show", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil alerts show [--data DIR] ID\n\nFlags:")
		fs.PrintDefaults()
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	as, err := db.Alerts(ctx, meta.AlertQuery{AllTenants: true, ID: arg, Limit: 1})
	if err != nil {
		return err
	}
	if len(as) == 0 {
		return fmt.Errorf("no alert %s", arg)
	}
	a := as[0]
	ts, err := db.AlertTransitions(ctx, a.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %s  %s\n", a.ID, a.Severity, a.Title)
	fmt.Fprintf(stdout, "status:     %s%s\n", a.Status, reasonText(a.Reason))
	fmt.Fprintf(stdout, "rule:       %s\ntenant:     %s\ngroup:      %s\n", a.RuleID, tenantOrAll(a.Tenant), groupText(a.Group))
	fmt.Fprintf(stdout, "events:     %d, from %s to %s\n", a.Count, a.FirstSeen.Format(time.RFC3339), a.LastSeen.Format(time.RFC3339))
	seqs := make([]string, len(a.Seqs))
	for i, s := range a.Seqs {
		seqs[i] = fmt.Sprint(s)
	}
	more := ""
	if int64(len(a.Seqs)) < a.Count {
		more = fmt.Sprintf(" (the first %d)", len(a.Seqs))
	}
	fmt.Fprintf(stdout, "seqs:       %s%s\n", strings.Join(seqs, " "), more)
	if len(a.Tags) > 0 {
		fmt.Fprintf(stdout, "tags:       %s\n", strings.Join(a.Tags, " "))
	}
	for _, t := range ts {
		fmt.Fprintf(stdout, "%s  %s → %s by %s%s\n", t.At.Format(time.RFC3339), t.From, t.To, t.Actor, reasonText(t.Reason))
	}
	ds, err := db.AlertDeliveries(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		fmt.Fprintf(stdout, "%s  %s to %s: %s after %d attempts%s\n", d.Done.Format(time.RFC3339), d.Action, d.Channel, d.Status, d.Attempts, reasonText(d.Error))
	}
	return nil
}

// alertsSetter returns the command that moves an alert to a status.
func alertsSetter(name, to string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags("alerts "+name, stderr)
		var d dataFlags
		d.register(fs)
		reason := fs.String("reason", "", "why (required to close)")
		by := fs.String("by", "", "who does it (default the local user)")
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: vigil alerts %s [--data DIR] [--reason R] [--by NAME] ID\n\nFlags:\n", name)
			fs.PrintDefaults()
		}
		arg, err := parseOneArg(fs, args)
		if err != nil {
			return err
		}
		actor := *by
		if actor == "" {
			actor = localUser()
		}
		m, done, err := alertManager(ctx, &d, stderr)
		if err != nil {
			return err
		}
		defer done()
		a, err := m.SetStatus(ctx, nil, arg, to, actor, *reason)
		if errors.Is(err, meta.ErrNotFound) {
			return fmt.Errorf("no alert %s", arg)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "alert %s is %s\n", a.ID, a.Status)
		return nil
	}
}

func statusArg(s string) (string, error) {
	switch s {
	case alert.Open, alert.Acknowledged, alert.Resolved, alert.Closed:
		return s, nil
	}
	return "", fmt.Errorf("--status: %q is not open, acknowledged, resolved, closed or all", s)
}

// localUser names who runs a command on the data directory itself.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username + " (local)"
	}
	return "local"
}

func groupText(g map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(g)) {
		parts = append(parts, k+"="+g[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func reasonText(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}
