package main

import (
	"context"
	"encoding/json"
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
	d.register(fs)
	from := fs.String("from", "", "start of the time range: RFC 3339, a date, now, or relative (-24h, -7d)")
	to := fs.String("to", "", "end of the time range (exclusive), in the same forms")
	limit := fs.Int("limit", 100, "most events to return (0: no limit)")
	format := fs.String("format", "table", "output: "+strings.Join(outputFormats, ", "))
	tenant := fs.String("tenant", "", "search only this tenant's events (default: all)")
	quarantine := fs.Bool("quarantine", false, "search quarantined records: their reason, origin and raw bytes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil search [--data DIR] [--from T] [--to T] [--limit N] [--format F] QUERY\n\nThe query language is described in docs/query.md. Examples:\n  vigil search 'eventName:StopLogging'\n  vigil search --from -7d 'src_ip:203.0.113.0/24 | stats count() by action'\n\nFlags:")
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
	if base, token := d.server(ctx); base != "" {
		// A server holds the database: ask it.
		res, err = remoteSearch(ctx, base, token, text, *from, *to, *tenant, *limit, *quarantine)
	} else {
		res, err = localSearch(ctx, &d, q, text, scope, fromT, toT, *limit, *quarantine)
	}
	if err != nil {
		return err
	}
	return render(stdout, *format, res)
}

func localSearch(ctx context.Context, d *dataFlags, q *query.Query, text string, scope query.Scope, from, to time.Time, limit int, quarantine bool) (*store.Result, error) {
	path := d.path(storeFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no events in %s yet: run 'vigil import PATH' or 'vigil serve --demo' first", d.dir)
	}
	db, err := openReadOnly(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if quarantine {
		return db.SearchQuarantine(ctx, text, scope, from, to, limit)
	}
	return db.Search(ctx, query.Request{Query: q, Scope: scope, From: from, To: to, Limit: limit})
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

// remoteSearch asks a running server.
func remoteSearch(ctx context.Context, base, token, text, from, to, tenant string, limit int, quarantine bool) (*store.Result, error) {
	v := url.Values{"q": {text}, "from": {from}, "to": {to}, "limit": {strconv.Itoa(limit)}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	if quarantine {
		v.Set("quarantine", "1")
	}
	body, err := serverGet(ctx, base, token, "/api/v1/search?"+v.Encode())
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var res store.Result
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("reading the server's answer: %w", err)
	}
	return &res, nil
}

// serverGet asks a running server's API for path, as the local
// administrator, and returns the body of its answer; an answer other than
// 2xx is an error carrying the server's message.
func serverGet(ctx context.Context, base, token, path string) (io.ReadCloser, error) {
	return serverDo(ctx, http.MethodGet, base, token, path, nil)
}

// serverDo sends a request with a JSON body (or none) to a running
// server's API and returns the body of a 2xx answer, or the server's
// error.
func serverDo(ctx context.Context, method, base, token, path string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the server: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return nil, errors.New(e.Error)
	}
	return resp.Body, nil
}
