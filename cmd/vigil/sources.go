package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/ingest"
)

func runSources(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sources", stderr)
	var d dataFlags
	d.registerClient(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil sources [--data DIR | --server URL] [--json]\n\nLists every source a running 'vigil serve' has received events from since it\nstarted: events, rate, the newest event's time, clock skew (receipt minus\nevent time) and quarantined records.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("no vigil server is running on %s: sources are counted by 'vigil serve'", d.dir)
	}
	var srcs []ingest.SourceStats
	if err := c.get(ctx, "/api/v1/sources", &srcs); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(srcs)
	}
	return printSources(stdout, srcs, time.Now())
}

func printSources(w io.Writer, srcs []ingest.SourceStats, now time.Time) error {
	if len(srcs) == 0 {
		_, err := fmt.Fprintln(w, "no events received since the server started")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tEVENTS\tRATE/S\tLAST EVENT\tLAST RECEIVED\tSKEW\tQUARANTINED")
	for _, s := range srcs {
		last := "-"
		if !s.LastEvent.IsZero() {
			last = s.LastEvent.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s ago\t%s\t%d\n", s.Name, s.Events, s.Rate, last,
			now.Sub(s.LastSeen).Round(time.Second), s.Skew.Round(time.Second), s.Quarantined)
	}
	return tw.Flush()
}
