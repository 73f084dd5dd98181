package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/query"
)

func runInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inventory", stderr)
	var d dataFlags
	d.registerClient(fs)
	atArg := fs.String("at", "", "what held at this time: RFC 3339, a date, or relative (-2h); default: all history")
	tenant := fs.String("tenant", "", "this tenant's events only")
	format := fs.String("format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil inventory [--data DIR | --server URL] [--at T] [--tenant T] [--format text|json] IP|INSTANCE_ID|ARN|NAME\n\nWhat an address, an instance, a user or a role was: the assets it names and\ntheir facts (addresses, type, image, tags, existence) over time, as the audit\nlogs and the configured snapshots (context.inventory) tell; with --at, only what held at that time. An address\nreused by several instances has one answer at any time.\n\nFlags:")
		fs.PrintDefaults()
	}
	ref, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format: %q is not text or json", *format)
	}
	at, err := query.ParseTimeArg(*atArg, time.Now())
	if err != nil {
		return fmt.Errorf("--at: %w", err)
	}
	src, closeSrc, err := contextSourceOf(ctx, &d, *tenant)
	if err != nil {
		return err
	}
	defer closeSrc()
	found, err := src.inventory(ctx, ref, at)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(found)
	}
	if len(found) == 0 {
		when := "ever"
		if !at.IsZero() {
			when = "at " + at.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "no asset the logs know of was %s %s\n", ref, when)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, f := range found {
		a := f.Asset
		fmt.Fprintf(tw, "%s %s (%s account %s %s)\n", a.Kind, a.ID, a.Provider, a.Account, a.Region)
		for _, x := range f.Facts {
			to := "now"
			if !x.To.IsZero() {
				to = x.To.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s → %s\t%s\n", x.Attr, x.Value, x.From.Format(time.RFC3339), to, x.Source)
		}
	}
	return tw.Flush()
}
