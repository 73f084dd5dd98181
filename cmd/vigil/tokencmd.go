package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
)

var tokenCommands = []command{
	{"create", "create a token and print its secret", runTokenCreate},
	{"list", "list the tokens", runTokenList},
	{"revoke", "revoke a token", runTokenRevoke},
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "token", "API tokens, kept in the data directory's metadata database. They work at\nonce, in a 'vigil serve' running on the same data directory too.", tokenCommands, args, stdout, stderr)
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token create", stderr)
	var d dataFlags
	d.register(fs)
	tenant := fs.String("tenant", "", "the tenant the token acts within (required, except for an admin over every tenant)")
	role := fs.String("role", "", "what the token may do: "+roleList()+" (required)")
	name := fs.String("name", "", "what the token is for, shown by 'vigil token list' (default TENANT-ROLE)")
	expires := fs.String("expires", "", "how long the token works, in days (90d) or as a duration (2160h) (default: until revoked)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token create [--data DIR] --tenant T --role ROLE [--name N] [--expires 90d]\n\nCreates an API token and prints its secret alone on the last line. The secret\nis shown only now: vigil keeps only its hash. An ingest token sends events\ninto its tenant and nowhere else.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *role == "" {
		return fmt.Errorf("--role is required: one of %s", roleList())
	}
	r, err := access.ParseRole(*role)
	if err != nil {
		return err
	}
	spec := access.Spec{Name: *name, Tenant: *tenant, Role: r}
	if *expires != "" {
		dur, err := parseDays(*expires)
		if err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		if dur <= 0 {
			return errors.New("--expires: must be more than 0; leave it out for a token that works until revoked")
		}
		spec.Expires = time.Now().Add(dur)
	}

	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	db, err := openMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	secret, tok, err := access.NewTokens(db, access.Options{}).Create(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created token %s %q: role %s, tenant %s, expires %s\n",
		tok.ID, tok.Name, tok.Role, tenantOrAll(tok.Tenant), timeOr(tok.Expires, "never"))
	fmt.Fprintln(stdout, "its secret, shown only now (vigil keeps only a hash of it):")
	fmt.Fprintln(stdout, secret)
	return nil
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token list", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token list [--data DIR]\n\nLists the API tokens, revoked and expired ones included. Their secrets are\nnot kept and cannot be shown.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	toks, err := access.NewTokens(db, access.Options{}).List(ctx)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		fmt.Fprintln(stdout, "no tokens")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTENANT\tROLE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range toks {
		exp := timeOr(t.Expires, "never")
		if !t.Expires.IsZero() && !now.Before(t.Expires) {
			exp += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, tenantOrAll(t.Tenant), t.Role,
			timeOr(t.Created, ""), exp, timeOr(t.LastUsed, "never"), timeOr(t.Revoked, "-"))
	}
	return tw.Flush()
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token revoke [--data DIR] ID\n\nRevokes a token for good, at once, in a running 'vigil serve' too. The ID is\nthe first column of 'vigil token list'.\n\nFlags:")
		fs.PrintDefaults()
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := access.NewTokens(db, access.Options{}).Revoke(ctx, arg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked token %s\n", arg)
	return nil
}

// openMeta opens the data directory's metadata database, with warnings
// on stderr.
func openMeta(ctx context.Context, d *dataFlags, stderr io.Writer) (*meta.DB, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	return openMetaOf(ctx, d, cfg, false, stderr)
}

// openExistingMeta is openMeta for commands with nothing to do in a new
// data directory, where a mistyped --data should be an error rather than
// an empty database.
func openExistingMeta(ctx context.Context, d *dataFlags, stderr io.Writer) (*meta.DB, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	return openMetaOf(ctx, d, cfg, true, stderr)
}

// openMetaOf opens the metadata database cfg names; with existing, only
// one that is there.
func openMetaOf(ctx context.Context, d *dataFlags, cfg *config, existing bool, stderr io.Writer) (*meta.DB, error) {
	loc := d.metaLocation(cfg)
	if existing && !meta.IsPostgres(loc) {
		if _, err := os.Stat(loc); err != nil {
			return nil, fmt.Errorf("no metadata database in %s: %w", d.dir, err)
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return meta.Open(ctx, loc, logger)
}

func roleList() string {
	var names []string
	for _, r := range access.Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

func tenantOrAll(tenant string) string {
	if tenant == "" {
		return "(all)"
	}
	return tenant
}

// timeOr formats t for a table, or returns none for the zero time.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
