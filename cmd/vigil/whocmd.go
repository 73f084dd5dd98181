package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/query"
)

func runWho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("who", stderr)
	var d dataFlags
	d.registerClient(fs)
	fromArg := fs.String("from", "", "events from this time: RFC 3339, a date, or relative (-30d); default all")
	toArg := fs.String("to", "", "events before this time; default now")
	tenant := fs.String("tenant", "", "this tenant's events only")
	format := fs.String("format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil who [--data DIR | --server URL] [--from T] [--to T] [--tenant T] [--format text|json] KEY_ID|ARN|SERVICE_ACCOUNT_EMAIL\n\nWho is behind a credential: the chain of temporary credentials from it back to\nthe identity that started it (a user, root, a federated user, an AWS service,\nan instance), across accounts, as the logs' STS calls, GCP's service-account\nimpersonations and Azure's managed-identity tokens issued them; and every event done under\nthe chain, oldest first. A session of an instance's role used off the instance\nis flagged.\n\nFlags:")
		fs.PrintDefaults()
	}
	ref, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format: %q is not text or json", *format)
	}
	now := time.Now()
	from, err := query.ParseTimeArg(*fromArg, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := query.ParseTimeArg(*toArg, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	src, closeSrc, err := contextSourceOf(ctx, &d, *tenant)
	if err != nil {
		return err
	}
	defer closeSrc()
	rep, err := src.who(ctx, ref, from, to)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printWho(stdout, rep)
}

// finder reads the events a search matches from a store, in a scope: the
// inventory's view of it.
type finder struct {
	db    eventStore
	scope query.Scope
}

// An eventStore is what the inventory reads events from and corrects
// their origins in: the embedded store, or ClickHouse on a scale-out.
type eventStore interface {
	Seqs(ctx context.Context, req query.Request) ([]uint64, error)
	EventsAt(ctx context.Context, seqs []uint64, fn func(*event.Event) error) error
	Sessions(ctx context.Context, req query.Request, fn func(*event.Event) error) error
	SetOrigins(ctx context.Context, origins map[uint64]string) error
}

func (f finder) Find(ctx context.Context, q string, from, to time.Time, limit int, fn func(*event.Event) error) error {
	parsed, err := query.Parse(q)
	if err != nil {
		return err
	}
	if limit <= 0 {
		limit = 1_000_000
	}
	seqs, err := f.db.Seqs(ctx, query.Request{Query: parsed, Scope: f.scope, From: from, To: to, Limit: limit})
	if err != nil {
		return err
	}
	return f.db.EventsAt(ctx, seqs, fn)
}

// Sessions reads only the seq, time, actor and session of the events a
// search matches, for identity reassembly's backfill.
func (f finder) Sessions(ctx context.Context, q string, from, to time.Time, fn func(*event.Event) error) error {
	parsed, err := query.Parse(q)
	if err != nil {
		return err
	}
	return f.db.Sessions(ctx, query.Request{Query: parsed, Scope: f.scope, From: from, To: to}, fn)
}

// SetOrigins corrects the origins of events. It does not look at the
// scope: the seqs come from the finder's own reads.
func (f finder) SetOrigins(ctx context.Context, origins map[uint64]string) error {
	return f.db.SetOrigins(ctx, origins)
}

// printWho writes a report for people: the chain, its origin, and the
// events done under it.
func printWho(w io.Writer, r *inventory.Report) error {
	for i, l := range r.Chain {
		who := l.As.String()
		if l.As.Key != "" {
			who += " (key " + l.As.Key + ")"
		}
		if i == 0 {
			fmt.Fprintln(w, who)
		} else {
			fmt.Fprintln(w, "  ← "+who)
		}
		if is := l.Issue; is != nil {
			fmt.Fprintf(w, "      issued by %s at %s in account %s", is.Kind, is.Time.Format(time.RFC3339), is.Account)
			if is.Source != "" {
				fmt.Fprintf(w, ", source identity %s", is.Source)
			}
			if is.Seq != 0 {
				fmt.Fprintf(w, " (event %d)", is.Seq)
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Chain) < 2 {
		fmt.Fprintln(w, "\nno STS call in the logs issued this credential: it is long-term, or issued outside the logs' time range")
	} else {
		fmt.Fprintf(w, "\norigin: %s\n", r.Origin)
	}
	if len(r.Uses) == 0 {
		fmt.Fprintln(w, "no event done under it")
		return nil
	}
	fmt.Fprintf(w, "\n%d events done under it, oldest first:\n", len(r.Uses))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACCOUNT\tREGION\tACTION\tACTOR\tKEY\tSRC_IP\tOUTCOME")
	var flags []string
	for _, u := range r.Uses {
		src := ""
		if u.SrcIP.IsValid() {
			src = u.SrcIP.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Time.Format(time.RFC3339), u.Account, u.Region, u.Action, u.Actor, u.Key, src, u.Outcome)
		if u.OffInstance != "" && (len(flags) == 0 || flags[len(flags)-1] != u.OffInstance) {
			flags = append(flags, u.OffInstance)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.More {
		fmt.Fprintf(w, "(the first %d only)\n", inventory.MaxUses)
	}
	for _, f := range flags {
		fmt.Fprintln(w, "! "+f)
	}
	return nil
}
