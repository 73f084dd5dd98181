package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// runTimeline answers "what was the state at T": the asset an entity
// named then, the identity behind it, and the events around T.
func runTimeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("timeline", stderr)
	var d dataFlags
	d.registerClient(fs)
	atArg := fs.String("at", "", "the time: RFC 3339, a date, or relative (-2h) (required)")
	around := fs.Duration("around", 30*time.Minute, "the events this long before and after")
	tenant := fs.String("tenant", "", "this tenant's events only")
	limit := fs.Int("limit", 200, "list at most this many events")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil timeline [--data DIR | --server URL] --at T [--around 30m] [--tenant T] IP|KEY_ID|ARN|INSTANCE_ID|NAME\n\nThe state of things at T for an address, a principal or an asset: the assets it\nnamed then (as the audit logs made and ended them), the chain of credentials\nbehind it, and the events that name it from T-around to T+around.\n\nFlags:")
		fs.PrintDefaults()
	}
	ref, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *atArg == "" {
		fs.Usage()
		return errUsage
	}
	at, err := query.ParseTimeArg(*atArg, time.Now())
	if err != nil {
		return fmt.Errorf("--at: %w", err)
	}
	if *around <= 0 {
		return errors.New("--around: want a positive duration")
	}
	from, to := at.Add(-*around), at.Add(*around)
	src, closeSrc, err := contextSourceOf(ctx, &d, *tenant)
	if err != nil {
		return err
	}
	defer closeSrc()

	fmt.Fprintf(stdout, "%s at %s (events from %s to %s)\n\n", ref, at.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	found, err := src.inventory(ctx, ref, at)
	if err != nil {
		return err
	}
	key := strings.HasPrefix(ref, "ASIA") || strings.HasPrefix(ref, "AKIA")
	if len(found) == 0 && !key {
		fmt.Fprintln(stdout, "asset: none the logs know of, then")
	}
	for _, f := range found {
		a := f.Asset
		fmt.Fprintf(stdout, "asset: %s %s (%s account %s %s)\n", a.Kind, a.ID, a.Provider, a.Account, a.Region)
		for _, x := range f.Facts {
			fmt.Fprintf(stdout, "  %s: %s (since %s)\n", x.Attr, x.Value, x.From.Format(time.RFC3339))
		}
	}
	// A principal, or an asset's principals: the identity behind it.
	if key || strings.HasPrefix(ref, "arn:") {
		rep, err := src.who(ctx, ref, from, to)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		if len(rep.Chain) > 1 {
			fmt.Fprintf(stdout, "identity: %s\n", rep.Chain[0].As)
			for _, l := range rep.Chain[1:] {
				fmt.Fprintf(stdout, "  ← %s\n", l.As)
			}
		} else {
			fmt.Fprintln(stdout, "identity: no STS call in the logs issued it")
		}
	}

	q := timelineQuery(ref)
	res, err := src.search(ctx, q, from, to, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nevents (%s):\n", q)
	if len(res.Rows) == 0 {
		fmt.Fprintln(stdout, "none")
		return nil
	}
	return render(stdout, "table", res)
}

// timelineQuery is the search for the events that name an entity: an
// address as a source or destination, a key as the credential used, an
// ARN as the actor; anything else as a word of the raw event.
func timelineQuery(ref string) string {
	q := query.Quote(ref)
	switch {
	case isAddr(ref):
		return "src_ip:" + ref + " OR dst_ip:" + ref
	case strings.HasPrefix(ref, "ASIA"), strings.HasPrefix(ref, "AKIA"):
		return "session:" + q
	case strings.HasPrefix(ref, "arn:"):
		return "actor_id:" + q + " OR " + q
	}
	return q
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// A contextSource answers the context commands: from the data
// directory, or from a server (the one running on it, or a remote one)
// within the caller's scope.
type contextSource struct {
	inventory func(ctx context.Context, ref string, at time.Time) ([]inventory.Found, error)
	who       func(ctx context.Context, ref string, from, to time.Time) (*inventory.Report, error)
	search    func(ctx context.Context, q string, from, to time.Time, limit int) (*store.Result, error)
}

func contextSourceOf(ctx context.Context, d *dataFlags, tenant string) (*contextSource, func(), error) {
	c, err := d.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	if c != nil {
		get := func(path string, v any) error { return c.get(ctx, path, v) }
		rfc := func(t time.Time) string {
			if t.IsZero() {
				return "" // unbounded, as the API reads an empty time
			}
			return t.UTC().Format(time.RFC3339Nano)
		}
		return &contextSource{
			inventory: func(ctx context.Context, ref string, at time.Time) ([]inventory.Found, error) {
				var found []inventory.Found
				err := get("/api/v1/inventory?"+url.Values{"q": {ref}, "at": {rfc(at)}, "tenant": {tenant}}.Encode(), &found)
				return found, err
			},
			who: func(ctx context.Context, ref string, from, to time.Time) (*inventory.Report, error) {
				var rep inventory.Report
				err := get("/api/v1/identities/"+url.PathEscape(ref)+"?"+url.Values{"from": {rfc(from)}, "to": {rfc(to)}, "tenant": {tenant}}.Encode(), &rep)
				return &rep, err
			},
			search: func(ctx context.Context, q string, from, to time.Time, limit int) (*store.Result, error) {
				return remoteSearch(ctx, c, q, rfc(from), rfc(to), tenant, limit, false)
			},
		}, func() {}, nil
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	db, err := d.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	scope := query.Scope{All: true}
	if tenant != "" {
		scope = scope.Narrow(tenant)
	}
	f := finder{db, scope}
	return &contextSource{
		inventory: func(ctx context.Context, ref string, at time.Time) ([]inventory.Found, error) {
			e, err := newEnrichment(ctx, f, nil, &cfg.Context, slog.New(slog.DiscardHandler))
			if err != nil {
				return nil, err
			}
			return e.Lookup(scope, ref, at), nil
		},
		who: func(ctx context.Context, ref string, from, to time.Time) (*inventory.Report, error) {
			book := &lazyBook{build: func() (*enrichment, error) {
				return newEnrichment(ctx, f, nil, &cfg.Context, slog.New(slog.DiscardHandler))
			}}
			rep, err := inventory.Who(ctx, f, book, ref, from, to)
			if err == nil {
				err = book.err
			}
			return rep, err
		},
		search: func(ctx context.Context, q string, from, to time.Time, limit int) (*store.Result, error) {
			parsed, err := query.Parse(q)
			if err != nil {
				return nil, err
			}
			return db.Search(ctx, query.Request{Query: parsed, Scope: scope, From: from, To: to, Limit: limit})
		},
	}, func() { db.Close() }, nil
}

// lazyBook is the inventory of an offline command's data directory and
// configured snapshots, read when Who first asks for an instance's
// addresses: only an instance's credential needs them. Who's caller
// reports err.
type lazyBook struct {
	build func() (*enrichment, error)
	once  sync.Once
	e     *enrichment
	err   error
}

func (b *lazyBook) Addrs(tenant string, a inventory.Asset, t time.Time) []netip.Addr {
	b.once.Do(func() { b.e, b.err = b.build() })
	if b.e == nil {
		return nil
	}
	return b.e.Addrs(tenant, a, t)
}
