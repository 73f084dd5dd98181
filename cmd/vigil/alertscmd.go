package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os/user"
	"slices"
	"strconv"
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
	return runSubcommand(ctx, "alerts", "Alerts: the rules' detections grouped by rule, tenant and actor (or the fields\nthe config's alerts.group_by names), kept in the data directory's metadata\ndatabase. Changes made here show at once in a 'vigil serve' on the same\ndata directory. Through a server (--server, "+serverEnv+", vigil login), its API\nshows and changes those of the tenants you may see.", alertsCommands, args, stdout, stderr)
}

func runAlertsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("alerts list", stderr)
	var d dataFlags
	d.registerClient(fs)
	status := fs.String("status", "open,acknowledged", "the statuses to list, comma-separated, or all")
	tenant := fs.String("tenant", "", "list this tenant's alerts only (default every tenant's)")
	rule := fs.String("rule", "", "list this rule's alerts only")
	limit := fs.Int("limit", 100, "list at most this many")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil alerts list [--data DIR | --server URL] [--status S,...] [--tenant T] [--rule ID] [--limit N]\n\nFlags:")
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
	c, err := d.remote()
	if err != nil {
		return err
	}
	var as []meta.Alert
	if c != nil {
		as, err = remoteAlerts(ctx, c, q)
	} else {
		as, err = localAlerts(ctx, &d, q, stderr)
	}
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

func localAlerts(ctx context.Context, d *dataFlags, q meta.AlertQuery, stderr io.Writer) ([]meta.Alert, error) {
	db, err := openExistingMeta(ctx, d, stderr)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Alerts(ctx, q)
}

// remoteAlerts lists the alerts of q the server lets the caller see. The
// API lists the caller's tenants and takes no tenant to narrow them to,
// so a tenant asked for is picked here, from as many as the server
// gives.
func remoteAlerts(ctx context.Context, c *client, q meta.AlertQuery) ([]meta.Alert, error) {
	v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
	if len(q.Tenants) > 0 {
		v.Set("limit", strconv.Itoa(max(q.Limit, remoteFilterLimit)))
	}
	if q.RuleID != "" {
		v.Set("rule", q.RuleID)
	}
	if len(q.Status) > 0 {
		v.Set("status", strings.Join(q.Status, ","))
	}
	var as []meta.Alert
	if err := c.get(ctx, "/api/v1/alerts?"+v.Encode(), &as); err != nil {
		return nil, err
	}
	if len(q.Tenants) > 0 {
		as = slices.DeleteFunc(as, func(a meta.Alert) bool { return !slices.Contains(q.Tenants, a.Tenant) })
	}
	return as[:min(len(as), q.Limit)], nil
}

// remoteFilterLimit is how many items a remote list asks for when it
// picks a tenant's among them itself.
const remoteFilterLimit = 10000

func runAlertsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("alerts show", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil alerts show [--data DIR | --server URL] ID\n\nFlags:")
		fs.PrintDefaults()
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	if c != nil {
		var detail struct {
			meta.Alert
			Transitions []meta.Transition `json:"transitions"`
			Deliveries  []meta.Delivery   `json:"deliveries"`
		}
		err := c.get(ctx, "/api/v1/alerts/"+url.PathEscape(arg), &detail)
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("no alert %s among those you may see", arg)
		}
		if err != nil {
			return err
		}
		printAlert(stdout, detail.Alert, detail.Transitions, detail.Deliveries)
		return nil
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
	ds, err := db.AlertDeliveries(ctx, a.ID)
	if err != nil {
		return err
	}
	printAlert(stdout, a, ts, ds)
	return nil
}

// printAlert writes an alert, who changed it and where it was sent.
func printAlert(stdout io.Writer, a meta.Alert, ts []meta.Transition, ds []meta.Delivery) {
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
	for _, d := range ds {
		fmt.Fprintf(stdout, "%s  %s to %s: %s after %d attempts%s\n", d.Done.Format(time.RFC3339), d.Action, d.Channel, d.Status, d.Attempts, reasonText(d.Error))
	}
}

// alertsSetter returns the command that moves an alert to a status.
func alertsSetter(name, to string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlags("alerts "+name, stderr)
		var d dataFlags
		d.registerClient(fs)
		reason := fs.String("reason", "", "why (required to close)")
		by := fs.String("by", "", "who does it (default the local user; through a server, the server records who you are)")
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: vigil alerts %s [--data DIR | --server URL] [--reason R] [--by NAME] ID\n\nFlags:\n", name)
			fs.PrintDefaults()
		}
		arg, err := parseOneArg(fs, args)
		if err != nil {
			return err
		}
		c, err := d.remote()
		if err != nil {
			return err
		}
		if c != nil {
			if err := noBy(*by); err != nil {
				return err
			}
			var a meta.Alert
			err := c.do(ctx, http.MethodPost, "/api/v1/alerts/"+url.PathEscape(arg)+"/"+name, map[string]string{"reason": *reason}, &a)
			if isStatus(err, http.StatusNotFound) {
				return fmt.Errorf("no alert %s among those you may see", arg)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "alert %s is %s\n", a.ID, a.Status)
			return nil
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
