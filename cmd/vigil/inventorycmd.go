package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/query"
)

func runInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inventory", stderr)
	var d dataFlags
	d.register(fs)
	atArg := fs.String("at", "", "what held at this time: RFC 3339, a date, or relative (-2h); default: all history")
	tenant := fs.String("tenant", "", "this tenant's events only")
	format := fs.String("format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil inventory [--data DIR] [--at T] [--tenant T] [--format text|json] IP|INSTANCE_ID|ARN|NAME\n\nWhat an address, an instance, a user or a role was: the assets it names and\ntheir facts (addresses, type, image, tags, existence) over time, as the audit\nlogs made and ended them; with --at, only what held at that time. An address\nreused by several instances has one answer at any time.\n\nFlags:")
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
	var found []inventory.Found
	if base, token := d.server(ctx); base != "" {
		v := url.Values{"q": {ref}, "at": {*atArg}, "tenant": {*tenant}}
		body, err := serverGet(ctx, base, token, "/api/v1/inventory?"+v.Encode())
		if err != nil {
			return err
		}
		defer body.Close()
		if err := json.NewDecoder(body).Decode(&found); err != nil {
			return fmt.Errorf("reading the server's answer: %w", err)
		}
	} else {
		path := d.path(storeFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no events in %s yet: run 'vigil import PATH' or 'vigil serve --demo' first", d.dir)
		}
		db, err := openReadOnly(ctx, path)
		if err != nil {
			return err
		}
		defer db.Close()
		scope := query.Scope{All: true}
		if *tenant != "" {
			scope = scope.Narrow(*tenant)
		}
		inv, err := inventory.Build(ctx, finder{db, scope}, time.Time{})
		if err != nil {
			return err
		}
		found = inv.Lookup(ref, at)
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
