package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/duckdb"
)

func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("search", stderr)
	var d dataFlags
	d.registerClient(fs)
	from := fs.String("from", "", "start of the time range: RFC 3339, a date, now, or relative (-24h, -7d)")
	to := fs.String("to", "", "end of the time range (exclusive), in the same forms")
	limit := fs.Int("limit", 100, "most events to return (0: no limit)")
	format := fs.String("format", "table", "output: "+strings.Join(outputFormats, ", "))
	tenant := fs.String("tenant", "", "search only this tenant's events (default: all)")
	quarantine := fs.Bool("quarantine", false, "search quarantined records: their reason, origin and raw bytes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil search [--data DIR | --server URL] [--from T] [--to T] [--limit N] [--format F] QUERY\n\nThe query language is described in docs/query.md. Examples:\n  vigil search 'eventName:StopLogging'\n  vigil search --from -7d 'src_ip:203.0.113.0/24 | stats count() by action'\n\nFlags:")
		fs.PrintDefaults()
	}
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if !slices.Contains(outputFormats, *format) {
		return fmt.Errorf("unknown --format %q (want %s)", *format, strings.Join(outputFormats, ", "))
	}
	text := strings.Join(rest, " ")
	if text == "" && !*quarantine {
		fs.Usage()
		return errUsage
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
	var q *query.Query
	if !*quarantine {
		if q, err = query.Parse(text); err != nil {
			fmt.Fprintln(stderr, query.Caret(text, err))
			return err
		}
	}
	// The local administrator sees every tenant unless told otherwise.
	scope := query.Scope{All: true}
	if *tenant != "" {
		scope = query.Scope{Tenants: []string{*tenant}}
	}

	var res *store.Result
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	if c != nil {
		// A server holds the database, or the user named one: ask it.
		res, err = remoteSearch(ctx, c, text, *from, *to, *tenant, *limit, *quarantine)
	} else {
		res, err = localSearch(ctx, &d, q, text, scope, fromT, toT, *limit, *quarantine)
	}
	if err != nil {
		return err
	}
	return render(stdout, *format, res)
}

func localSearch(ctx context.Context, d *dataFlags, q *query.Query, text string, scope query.Scope, from, to time.Time, limit int, quarantine bool) (*store.Result, error) {
	db, err := d.openStore(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if quarantine {
		return db.SearchQuarantine(ctx, text, scope, from, to, limit)
	}
	return db.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: limit})
}

// openStore opens the data directory's store for reading, for a command
// that runs without a server.
func (d *dataFlags) openStore(ctx context.Context) (*duckdb.DB, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	if err := d.embedded(cfg); err != nil {
		return nil, err
	}
	path := d.path(storeFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no events in %s yet: run 'vigil import PATH' or 'vigil serve --demo' first", d.dir)
	}
	return openReadOnly(ctx, path)
}

// embedded fails for the data directory of a scale-out's node, whose
// events are not in it, for a command that reads or writes the embedded
// store.
func (d *dataFlags) embedded(cfg *config) error {
	if !cfg.Scale.configured() {
		return nil
	}
	return fmt.Errorf("%s is a scale-out node's data directory (its config has a scale section): its events are in ClickHouse, not here; "+
		"run the command while 'vigil serve' runs on the directory, or against a query node with --server URL", d.dir)
}

// openReadOnly opens the store for reading. While an import writes to
// it, DuckDB refuses readers, so wait for the import to finish rather than
// fail.
func openReadOnly(ctx context.Context, path string) (*duckdb.DB, error) {
	const wait = 2 * time.Minute
	deadline := time.Now().Add(wait)
	warned := false
	for {
		db, err := duckdb.Open(duckdb.Options{Path: path, ReadOnly: true})
		if !errors.Is(err, duckdb.ErrLocked) || time.Now().After(deadline) {
			return db, err
		}
		if !warned {
			fmt.Fprintln(os.Stderr, "vigil search: the store is busy (an import is writing to it); waiting…")
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// remoteSearch asks a server, which answers within the caller's scope.
func remoteSearch(ctx context.Context, c *client, text, from, to, tenant string, limit int, quarantine bool) (*store.Result, error) {
	v := url.Values{"q": {text}, "from": {from}, "to": {to}, "limit": {strconv.Itoa(limit)}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	if quarantine {
		v.Set("quarantine", "1")
	}
	var res store.Result
	if err := c.get(ctx, "/api/v1/search?"+v.Encode(), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// serverDo sends a request with a JSON body (or none) to a running
// server's API with token and returns the body of a 2xx answer, or the
// server's error; for callers with a base URL and token rather than a
// client.
func serverDo(ctx context.Context, method, base, token, path string, body io.Reader) (io.ReadCloser, error) {
	c := &client{base: base, token: token, tokenFrom: "the token", hc: http.DefaultClient}
	return c.open(ctx, method, path, body)
}
