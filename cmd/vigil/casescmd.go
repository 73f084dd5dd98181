package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/meta"
)

var casesCommands = []command{
	{"list", "list cases, most recently updated first", runCasesList},
	{"show", "show a case and its timeline", runCasesShow},
	{"open", "open a case of alerts", runCasesOpen},
	{"add", "add a note, an action, an alert or an export to a case", runCasesAdd},
	{"set", "change a case's status or owner", runCasesSet},
}

func runCases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "cases", "Cases: incidents being worked, grouping alerts, with an owner, a status and a\ntimeline of who added and changed what. Kept in the data directory's metadata\ndatabase; through a server (--server, "+serverEnv+", vigil login), its API's.", casesCommands, args, stdout, stderr)
}

// alertManager opens the metadata database and the alert manager over
// it, for the alerts and cases commands.
func alertManager(ctx context.Context, d *dataFlags, stderr io.Writer) (*alert.Manager, func(), error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	db, err := openMetaOf(ctx, d, cfg, true, stderr)
	if err != nil {
		return nil, nil, err
	}
	m, err := alert.NewManager(ctx, db, cfg.alerts, nil)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return m, func() { db.Close() }, nil
}

func runCasesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cases list", stderr)
	var d dataFlags
	d.registerClient(fs)
	status := fs.String("status", "open,investigating", "the statuses to list, comma-separated, or all")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil cases list [--data DIR | --server URL] [--status S,...]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	q := meta.CaseQuery{AllTenants: true, Limit: 1000}
	if *status != "all" {
		for _, s := range strings.Split(*status, ",") {
			if s != alert.CaseOpen && s != alert.CaseInvestigating && s != alert.CaseClosed {
				return fmt.Errorf("--status: %q is not open, investigating, closed or all", s)
			}
			q.Status = append(q.Status, s)
		}
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	var cs []meta.Case
	if c != nil {
		v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
		if len(q.Status) > 0 {
			v.Set("status", strings.Join(q.Status, ","))
		}
		err = c.get(ctx, "/api/v1/cases?"+v.Encode(), &cs)
	} else {
		cs, err = localCases(ctx, &d, q, stderr)
	}
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		fmt.Fprintln(stdout, "no cases")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tOWNER\tTENANT\tTITLE\tUPDATED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Owner, tenantOrAll(c.Tenant), c.Title, c.Updated.Format(time.RFC3339))
	}
	return tw.Flush()
}

func localCases(ctx context.Context, d *dataFlags, q meta.CaseQuery, stderr io.Writer) ([]meta.Case, error) {
	m, done, err := alertManager(ctx, d, stderr)
	if err != nil {
		return nil, err
	}
	defer done()
	return m.Cases(ctx, q)
}

// caseRemote sends a request about a case to the server and decodes
// its answer into out; a case the server does not show the caller is
// said so.
func caseRemote(ctx context.Context, c *client, method, id, path string, in, out any) error {
	err := c.do(ctx, method, path, in, out)
	if isStatus(err, http.StatusNotFound) && id != "" {
		return fmt.Errorf("no case %s among those you may see (or an alert it names is not)", id)
	}
	return err
}

// noBy refuses --by through a server, which records who the caller is.
func noBy(by string) error {
	if by != "" {
		return errors.New("--by: the server records who you are; --by is for commands on the data directory")
	}
	return nil
}

func runCasesShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cases show", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil cases show [--data DIR | --server URL] ID\n\nFlags:")
		fs.PrintDefaults()
	}
	id, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	rc, err := d.remote()
	if err != nil {
		return err
	}
	var (
		c  meta.Case
		es []meta.CaseEntry
	)
	if rc != nil {
		var detail struct {
			meta.Case
			Timeline []meta.CaseEntry `json:"timeline"`
		}
		if err := caseRemote(ctx, rc, http.MethodGet, id, "/api/v1/cases/"+url.PathEscape(id), nil, &detail); err != nil {
			return err
		}
		c, es = detail.Case, detail.Timeline
	} else {
		m, done, err := alertManager(ctx, &d, stderr)
		if err != nil {
			return err
		}
		defer done()
		c, es, err = m.Case(ctx, nil, id)
		if errors.Is(err, meta.ErrNotFound) {
			return fmt.Errorf("no case %s", id)
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s  %s\nstatus: %s\nowner:  %s\ntenant: %s\n", c.ID, c.Title, c.Status, c.Owner, tenantOrAll(c.Tenant))
	for _, e := range es {
		what := e.Kind
		if e.Ref != "" {
			what += " " + e.Ref
		}
		fmt.Fprintf(stdout, "%s  %s by %s%s\n", e.At.Format(time.RFC3339), what, e.Actor, reasonText(e.Text))
	}
	return nil
}

func runCasesOpen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cases open", stderr)
	var d dataFlags
	d.registerClient(fs)
	title := fs.String("title", "", "what the case is about (required)")
	owner := fs.String("owner", "", "who works it (default who opens it)")
	by := fs.String("by", "", "who opens it (default the local user)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil cases open [--data DIR | --server URL] --title T [--owner O] [ALERT_ID...]\n\nFlags:")
		fs.PrintDefaults()
	}
	ids, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if rc, err := d.remote(); err != nil || rc != nil {
		if err == nil {
			err = noBy(*by)
		}
		if err != nil {
			return err
		}
		var c meta.Case
		body := map[string]any{"title": *title, "owner": *owner, "alerts": ids}
		if err := caseRemote(ctx, rc, http.MethodPost, "", "/api/v1/cases", body, &c); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "opened case %s %q, owner %s\n", c.ID, c.Title, c.Owner)
		return nil
	}
	m, done, err := alertManager(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer done()
	c, err := m.OpenCase(ctx, nil, *title, *owner, cmp.Or(*by, localUser()), ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "opened case %s %q, owner %s\n", c.ID, c.Title, c.Owner)
	return nil
}

func runCasesAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cases add", stderr)
	var d dataFlags
	d.registerClient(fs)
	note := fs.String("note", "", "a note")
	action := fs.String("action", "", "an action taken")
	alertID := fs.String("alert", "", "an alert's id")
	export := fs.String("export", "", "the name of an evidence bundle exported")
	by := fs.String("by", "", "who adds it (default the local user)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil cases add [--data DIR | --server URL] (--note TEXT | --action TEXT | --alert ID | --export NAME [--note WHAT]) CASE_ID\n\nFlags:")
		fs.PrintDefaults()
	}
	id, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	kind, ref, text := alert.EntryNote, "", *note
	switch {
	case *action != "":
		kind, text = alert.EntryAction, *action
	case *alertID != "":
		kind, ref = alert.EntryAlert, *alertID
	case *export != "":
		kind, ref = alert.EntryExport, *export
	}
	if rc, err := d.remote(); err != nil || rc != nil {
		if err == nil {
			err = noBy(*by)
		}
		if err != nil {
			return err
		}
		body := map[string]string{"kind": kind, "ref": ref, "text": text}
		if err := caseRemote(ctx, rc, http.MethodPost, id, "/api/v1/cases/"+url.PathEscape(id)+"/timeline", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added a %s to case %s\n", kind, id)
		return nil
	}
	m, done, err := alertManager(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer done()
	if _, err := m.AddToCase(ctx, nil, id, kind, ref, text, cmp.Or(*by, localUser())); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added a %s to case %s\n", kind, id)
	return nil
}

func runCasesSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cases set", stderr)
	var d dataFlags
	d.registerClient(fs)
	status := fs.String("status", "", "open, investigating or closed")
	owner := fs.String("owner", "", "who works it now")
	by := fs.String("by", "", "who changes it (default the local user)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil cases set [--data DIR | --server URL] [--status S] [--owner O] CASE_ID\n\nFlags:")
		fs.PrintDefaults()
	}
	id, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if rc, err := d.remote(); err != nil || rc != nil {
		if err == nil {
			err = noBy(*by)
		}
		if err != nil {
			return err
		}
		var c meta.Case
		body := map[string]string{"status": *status, "owner": *owner}
		if err := caseRemote(ctx, rc, http.MethodPost, id, "/api/v1/cases/"+url.PathEscape(id), body, &c); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "case %s is %s, owner %s\n", c.ID, c.Status, c.Owner)
		return nil
	}
	m, done, err := alertManager(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer done()
	c, err := m.SetCase(ctx, nil, id, *status, *owner, cmp.Or(*by, localUser()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "case %s is %s, owner %s\n", c.ID, c.Status, c.Owner)
	return nil
}
