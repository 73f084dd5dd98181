package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web"
)

func runHunt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hunt", stderr)
	var d dataFlags
	d.registerClient(fs)
	from := fs.String("from", "", "start of the hunted range: RFC 3339, a date, or relative (-30d) (default: the beginning)")
	to := fs.String("to", "", "end of the hunted range (exclusive), in the same forms (default: now)")
	var rules stringList
	fs.Var(&rules, "rules", "a directory (or file) of Sigma rules to run (repeatable)")
	tenant := fs.String("tenant", "", "hunt only this tenant's events (default: all)")
	format := fs.String("format", "table", "output: table or ndjson")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil hunt [--data DIR | --server URL] [--from T] [--to T] [--rules DIR]... [--format ndjson] [RULE_FILE...]\n\nRuns Sigma rules over stored events, oldest first, and prints a line per\nmatching event: rule_id, title, level, seq, time, action, event_id. A\ncorrelation's match prints a line per contributing event under the\ncorrelation's id. With no rule files it runs the built-in pack and every\n--rules directory; with rule files, those and the --rules directories only,\nso that a new rule can be backtested before it is enabled. A rule that does\nnot load stops the hunt, naming its file, line and reason.\n\nFlags:")
		fs.PrintDefaults()
	}
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "ndjson" {
		return fmt.Errorf("unknown --format %q (want table or ndjson)", *format)
	}
	now := time.Now()
	fromT, err := query.ParseTimeArg(*from, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	toT, err := query.ParseTimeArg(*to, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	req := web.HuntRequest{Builtin: len(files) == 0, From: *from, To: *to, Tenant: *tenant}
	for _, p := range append(append([]string(nil), rules...), files...) {
		if err := readRuleFiles(p, &req.Rules); err != nil {
			return err
		}
	}
	// The rules are checked here first, so that their errors name the
	// files as the user knows them.
	e, err := req.Engine()
	if err != nil {
		for _, err := range unjoin(err) {
			fmt.Fprintln(stderr, err)
		}
		return &exitError{1, errors.New("rules do not load; nothing was hunted")}
	}
	out := newHitWriter(stdout, *format)
	defer out.flush()
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	if c != nil {
		body, _ := json.Marshal(req)
		resp, err := c.open(ctx, "POST", "/api/v1/hunt", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Close()
		sc := bufio.NewScanner(resp)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var line struct {
				detect.Hit
				Error string `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				return fmt.Errorf("reading the server's answer: %w", err)
			}
			if line.Error != "" {
				return errors.New(line.Error)
			}
			out.write(line.Hit)
		}
		return sc.Err()
	}
	db, err := d.openStore(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	scope := query.Scope{All: true}
	if *tenant != "" {
		scope = query.Scope{Tenants: []string{*tenant}}
	}
	end := toT
	if end.IsZero() {
		end = now
	}
	return detect.HuntStore(ctx, e, db, query.Request{Scope: scope, From: fromT, To: toT}, end,
		func(h detect.Hit) error { out.write(h); return nil })
}

// readRuleFiles adds the rule files at path (a file or a directory) to
// rules.
func readRuleFiles(path string, rules *[]web.HuntRule) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		if d.IsDir() || (p != path && !detect.IsRuleFile(p)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		*rules = append(*rules, web.HuntRule{File: p, Content: string(b)})
		return nil
	})
}

// hitWriter prints hunt hits as a table or as NDJSON.
type hitWriter struct {
	format string
	tw     *tabwriter.Writer
	enc    *json.Encoder
	header bool
}

func newHitWriter(w io.Writer, format string) *hitWriter {
	return &hitWriter{format: format, tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), enc: json.NewEncoder(w)}
}

func (h *hitWriter) write(hit detect.Hit) {
	if h.format == "ndjson" {
		h.enc.Encode(hit)
		return
	}
	if !h.header {
		fmt.Fprintln(h.tw, "RULE_ID\tTITLE\tLEVEL\tSEQ\tTIME\tACTION\tEVENT_ID")
		h.header = true
	}
	fmt.Fprintf(h.tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", hit.RuleID, strings.ReplaceAll(hit.Title, "\t", " "), hit.Level, hit.Seq,
		hit.Time.UTC().Format(time.RFC3339Nano), hit.Action, hit.EventID)
}

func (h *hitWriter) flush() { h.tw.Flush() }
