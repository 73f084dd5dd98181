package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// A coverageReport says what vigil could see over a span: which sources
// sent, how late, and which rules had nothing to run on.
type coverageReport struct {
	From    time.Time              `json:"from"`
	To      time.Time              `json:"to"`
	Sources []store.SourceCoverage `json:"sources"`
	// Blind are the enabled rules none of whose sources sent anything in
	// the span, or that no source of vigil's feeds.
	Blind []blindRule `json:"rules_without_data"`
}

type blindRule struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Sources []string `json:"sources,omitempty"`
	Reason  string   `json:"reason"`
}

// A coverer is a store that reports what its sources sent: the embedded
// one, or a scale-out's ClickHouse cluster.
type coverer interface {
	Coverage(ctx context.Context, scope query.Scope, from, to time.Time) ([]store.SourceCoverage, error)
}

// coverage reports the coverage of the tenants in scope over the days
// to now.
func coverage(ctx context.Context, db coverer, e *detect.Engine, scope query.Scope, days int, now time.Time) (*coverageReport, error) {
	r := &coverageReport{From: now.Add(-time.Duration(days) * 24 * time.Hour), To: now}
	var err error
	if r.Sources, err = db.Coverage(ctx, scope, r.From, r.To); err != nil {
		return nil, err
	}
	sent := map[string]bool{}
	for _, s := range r.Sources {
		sent[s.Source] = true
	}
	disabled := map[*detect.Rule]bool{}
	for _, d := range e.Disabled() {
		disabled[d.Rule] = true
	}
	for _, rule := range e.Rules() {
		if disabled[rule] {
			continue
		}
		srcs := e.RuleSources(rule)
		switch {
		case len(srcs) == 0:
			r.Blind = append(r.Blind, blindRule{rule.ID, rule.Title, nil, "no source of vigil's gives its logsource"})
		case !slices.ContainsFunc(srcs, func(s string) bool { return sent[s] }):
			r.Blind = append(r.Blind, blindRule{rule.ID, rule.Title, srcs, fmt.Sprintf("nothing from %s in %d days", strings.Join(srcs, ", "), days)})
		}
	}
	return r, nil
}

// runCoverage prints what vigil could see: `vigil coverage`.
func runCoverage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coverage", stderr)
	var d dataFlags
	d.registerClient(fs)
	days := fs.Int("days", 7, "the span, in days to now")
	tenant := fs.String("tenant", "", "only this tenant's sources")
	format := fs.String("format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil coverage [--data DIR | --server URL] [--days 7] [--tenant T] [--format text|json]\n\n"+
			"Says what vigil could see over the last days: each source that sent (a tenant's log\n"+
			"format from an account or host, in its environment), how many events, when last, how\n"+
			"late they arrive; and the enabled detection rules that had nothing to run on.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *days <= 0 || (*format != "text" && *format != "json") {
		fs.Usage()
		return errUsage
	}
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	var r *coverageReport
	if c != nil {
		// A server holds the store, or the user named one: ask it, for
		// the tenants the caller may read.
		v := url.Values{"days": {strconv.Itoa(*days)}}
		if *tenant != "" {
			v.Set("tenant", *tenant)
		}
		r = new(coverageReport)
		err = c.get(ctx, "/api/v1/coverage?"+v.Encode(), r)
	} else {
		r, err = localCoverage(ctx, &d, *tenant, *days, stderr)
	}
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sources that sent, %s to %s:\n", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	fmt.Fprintln(tw, "TENANT\tENVIRONMENT\tSOURCE\tFROM\tEVENTS\tLAST SEEN\tDELAY (MEDIAN, P95)\tSKEWED")
	for _, s := range r.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s, %s\t%d\n", s.Tenant, s.Environment, s.Source, s.From, s.Events,
			s.LastSeen.Format(time.RFC3339), delay(s.Delay), delay(s.DelayP95), s.Skewed)
	}
	if len(r.Sources) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	fmt.Fprintf(tw, "\nrules without data (%d):\n", len(r.Blind))
	for _, b := range r.Blind {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.ID, b.Title, b.Reason)
	}
	return tw.Flush()
}

func localCoverage(ctx context.Context, d *dataFlags, tenant string, days int, stderr io.Writer) (*coverageReport, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	dd, _, err := d.offline(ctx, cfg, stderr)
	if err != nil {
		return nil, err
	}
	defer dd.Close()
	mdb, err := meta.Open(ctx, d.metaLocation(cfg), nil)
	if err != nil {
		return nil, err
	}
	defer mdb.Close()
	e, _ := loadEngine(ctx, cfg.Detect, nil, mdb)
	scope := query.Scope{All: true}
	if tenant != "" {
		scope = scope.Narrow(tenant)
	}
	return coverage(ctx, dd.db, e, scope, days, time.Now())
}

// delay writes a delay for people: in days past two.
func delay(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.0fd", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}
